//! The web console for the people on duty (issue 28): who is let in and as whom. Two ways
//! in: behind an Application Load Balancer with OIDC (`alb` verifies the
//! `x-amzn-oidc-data` token the load balancer adds; `roles` maps the identity to a role), or
//! local accounts (`accounts`: Argon2id hashes in a settings document; `throttle` slows
//! guessing). Either way the visitor holds a server-side session, whose CSRF token every
//! form carries, and every change is written to the audit log with the person
//! (`ports::console`). The pages themselves are `inbound::http::console`.

pub mod accounts;
pub mod alb;
pub mod chart;
pub mod roles;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::documents::Document;
use crate::domain::settings::AlarmConfigStore;
use crate::errors::BoxError;
use crate::ports::console::{AuditEntry, ConsoleStore, Session};
use accounts::Accounts;
use alb::AlbVerifier;
use roles::{Role, Roles};
use throttle::Throttle;

/// How long a session lasts: a shift, then sign in again.
pub const SESSION_HOURS: i64 = 12;

/// How people sign in.
#[derive(Debug)]
pub enum SignIn {
    /// Through the load balancer's OIDC sign-in, its token verified here.
    Alb { verifier: AlbVerifier, roles: Roles },
    /// With a local account's name and password (`users add`).
    Local,
}

/// The console's gate and what it keeps.
pub struct Console {
    pub sign_in: SignIn,
    pub store: Arc<dyn ConsoleStore>,
    /// Where the local accounts are kept (the settings store).
    pub settings: Arc<dyn AlarmConfigStore>,
    pub throttle: Throttle,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("sign_in", &self.sign_in)
            .finish_non_exhaustive()
    }
}

/// Someone signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub name: String,
    pub role: Role,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The session's key in the store.
    pub key: String,
}

/// What the request shows of who it is.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// The load balancer's `x-amzn-oidc-data`.
    pub alb_token: Option<&'a str>,
    /// The session cookie of a local sign-in.
    pub session: Option<&'a str>,
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
    #[error("no session, or one that ended")]
    NoSession,
    #[error("the session's account {0:?} is no longer an account")]
    NoAccount(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("not let in: {0}")]
    Refused(#[from] Refused),
    #[error("{what}")]
    Unavailable {
        what: &'static str,
        #[source]
        source: BoxError,
    },
}

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("too many failed sign-ins: wait {0:?}")]
    Throttled(Duration),
    #[error("not an account's name and password")]
    Wrong,
    #[error("this console signs in through the load balancer")]
    NotLocal,
    #[error(transparent)]
    Unavailable(#[from] ConsoleError),
}

fn unavailable(what: &'static str) -> impl FnOnce(BoxError) -> ConsoleError {
    move |source| ConsoleError::Unavailable { what, source }
}

/// A session's key in the store: the SHA-256 of its token, so that whoever reads the store
/// cannot sign in with what they read.
pub fn session_key(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn fresh() -> Result<String, ConsoleError> {
    crate::domain::signing::fresh_secret().ok_or_else(|| ConsoleError::Unavailable {
        what: "no randomness for a session",
        source: "the system's random source failed".into(),
    })
}

impl Console {
    pub fn is_local(&self) -> bool {
        matches!(self.sign_in, SignIn::Local)
    }

    async fn accounts(&self) -> Result<Accounts, ConsoleError> {
        let text = self
            .settings
            .document(Document::Users)
            .await
            .map_err(|e| unavailable("the accounts cannot be read")(e.into()))?;
        Accounts::read(text.as_deref())
            .map_err(|e| unavailable("the accounts do not read")(e.into()))
    }

    /// Who is signed in, with their session.
    pub async fn visitor(
        &self,
        creds: Credentials<'_>,
        now: DateTime<Utc>,
    ) -> Result<Visitor, ConsoleError> {
        match &self.sign_in {
            SignIn::Alb { verifier, roles } => {
                let token = creds.alb_token.ok_or(Refused::NoToken)?;
                let id = verifier.verify(token, now).await.map_err(Refused::from)?;
                let name = id.email.clone().unwrap_or(id.subject.clone());
                let role = roles
                    .of(id.email.as_deref(), &id.groups)
                    .ok_or_else(|| Refused::NoRole(name.clone()))?;
                // The load balancer keeps the sign-in; the service keeps only the
                // identity's CSRF token, shared by every instance.
                let key = session_key(&format!("alb\0{}", id.subject));
                let session = match self.session(&key, now).await? {
                    Some(s) => s,
                    None => self.open_session(&key, &name, now).await?,
                };
                Ok(Visitor {
                    name,
                    role,
                    csrf: session.csrf,
                    key,
                })
            }
            SignIn::Local => {
                let token = creds.session.ok_or(Refused::NoSession)?;
                let key = session_key(token);
                let session = self.session(&key, now).await?.ok_or(Refused::NoSession)?;
                let role = self
                    .accounts()
                    .await?
                    .role_of(&session.user)
                    .ok_or_else(|| Refused::NoAccount(session.user.clone()))?;
                Ok(Visitor {
                    name: session.user,
                    role,
                    csrf: session.csrf,
                    key,
                })
            }
        }
    }

    async fn session(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, ConsoleError> {
        self.store
            .session(key, now)
            .await
            .map_err(|e| unavailable("the sessions cannot be read")(e.into()))
    }

    async fn open_session(
        &self,
        key: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Session, ConsoleError> {
        let session = Session {
            user: user.to_owned(),
            csrf: fresh()?,
            created: now,
            expires: now + chrono::Duration::hours(SESSION_HOURS),
        };
        self.store
            .put_session(key, &session)
            .await
            .map_err(|e| unavailable("the session cannot be kept")(e.into()))?;
        Ok(session)
    }

    /// Signs a local account in: the new session's token (for its cookie).
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        address: std::net::IpAddr,
        now: DateTime<Utc>,
    ) -> Result<String, LoginError> {
        if !self.is_local() {
            return Err(LoginError::NotLocal);
        }
        self.throttle
            .check(name, address)
            .map_err(LoginError::Throttled)?;
        let accounts = self.accounts().await?;
        let (who, pw) = (name.to_owned(), password.to_owned());
        // Argon2id takes tens of milliseconds of CPU: off the request threads.
        let role = tokio::task::spawn_blocking(move || accounts.check(&who, &pw))
            .await
            .map_err(|e| unavailable("the password check failed")(e.into()))?;
        if role.is_none() {
            self.throttle.failed(name, address);
            return Err(LoginError::Wrong);
        }
        self.throttle.succeeded(name);
        let token = fresh()?;
        self.open_session(&session_key(&token), name, now).await?;
        self.audit(name, "signed in", now).await;
        Ok(token)
    }

    /// Ends a session (signing out).
    pub async fn logout(&self, visitor: &Visitor, now: DateTime<Utc>) -> Result<(), ConsoleError> {
        self.store
            .end_session(&visitor.key)
            .await
            .map_err(|e| unavailable("the session cannot be ended")(e.into()))?;
        self.audit(&visitor.name, "signed out", now).await;
        Ok(())
    }

    /// Writes a change to the audit log. A change already made is not undone when its line
    /// cannot be written: that is said in the service's log, with the line.
    pub async fn audit(&self, who: &str, what: &str, at: DateTime<Utc>) {
        let entry = AuditEntry {
            at,
            who: who.to_owned(),
            what: what.to_owned(),
        };
        if let Err(e) = self.store.audit(&entry).await {
            tracing::error!(error = %crate::errors::Chain(&e), who, what, "an audit line could not be written");
        }
    }
}
