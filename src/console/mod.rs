//! The web console for the people on duty (issue 28). This slice is its edge behind an
//! Application Load Balancer with OIDC sign-in: `alb` verifies the `x-amzn-oidc-data`
//! token the load balancer adds (nothing else is believed of that header), `roles` maps the
//! identity to what it may do, and the dashboard (`inbound::http::console`) shows what is
//! burning and who is on duty.

pub mod accounts;
pub mod alb;
pub mod roles;

use chrono::{DateTime, Utc};

use alb::{AlbIdentity, AlbVerifier};
use roles::{Role, Roles};

/// The console's gate: who is signed in, and with which role.
#[derive(Debug)]
pub struct Console {
    pub verifier: AlbVerifier,
    pub roles: Roles,
}

/// Why nobody is let in (said only in the log; the answer is the same for all).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("no x-amzn-oidc-data header (not signed in through the load balancer)")]
    NoToken,
    #[error(transparent)]
    Token(#[from] alb::AlbError),
    #[error("{0} has no role in CONSOLE_ROLES")]
    NoRole(String),
}

impl Console {
    /// The signed-in person and their role, from the load balancer's header.
    pub async fn who(
        &self,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(AlbIdentity, Role), Refused> {
        let token = token.ok_or(Refused::NoToken)?;
        let id = self.verifier.verify(token, now).await?;
        match self.roles.of(id.email.as_deref()) {
            Some(role) => Ok((id, role)),
            None => Err(Refused::NoRole(
                id.email.clone().unwrap_or(id.subject.clone()),
            )),
        }
    }
}
