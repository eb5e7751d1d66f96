//! Where cases go: the support desk. [`NewCase`] is exactly what CreateCase receives; the
//! desk behind the trait is AWS Support in production or the local dry-run desk, which records
//! the case it would have opened.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::alarm_config::{EmailAddress, Severity};

/// AWS Support accepts at most this many characters in a communication body.
pub const MAX_BODY_CHARS: usize = 8000;

/// A case as CreateCase takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewCase {
    pub subject: String,
    pub communication_body: String,
    pub severity_code: Severity,
    pub service_code: String,
    pub category_code: String,
    pub cc_email_addresses: Vec<EmailAddress>,
    pub language: String,
    pub issue_type: String,
}

/// A communication added to an open case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Communication {
    pub communication_body: String,
    pub cc_email_addresses: Vec<EmailAddress>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// The case is gone (or never existed): the caller opens a new one.
    #[error("support case {0} was not found")]
    CaseNotFound(String),
    /// Throttling, limits, outages: the request was not carried out; it can succeed later.
    #[error("support desk unavailable: {0}")]
    Unavailable(String),
    /// No answer (timeout, connection lost, a 5xx): the request may or may not have been
    /// carried out. A new case may exist: the claim is kept until it expires, and the next
    /// attempt looks for the case by its reference before opening another.
    #[error("support desk did not answer: {0}")]
    Uncertain(String),
    /// The desk refused the request itself; repeating it will not help.
    #[error("support desk refused the request: {0}")]
    Rejected(String),
    /// The account's support plan does not include the AWS Support API. Answered 503 so
    /// the alarm is kept (and retried) while someone upgrades the plan.
    #[error(
        "the AWS account has no Business, Enterprise On-Ramp or Enterprise support plan, \
         which the AWS Support API requires (SubscriptionRequiredException): {0}"
    )]
    SubscriptionRequired(String),
}

/// What the desk knows about a case now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseInfo {
    pub case_id: String,
    pub display_id: Option<String>,
    pub subject: String,
    /// The desk's own status word (`opened`, `resolved`, ...).
    pub status: String,
    pub severity_code: Option<String>,
    pub resolved: bool,
}

#[async_trait]
pub trait SupportDesk: Send + Sync {
    /// Opens a case and returns its id.
    async fn create_case(&self, case: &NewCase) -> Result<String, DeskError>;
    async fn add_communication(&self, case_id: &str, comm: &Communication)
    -> Result<(), DeskError>;
    async fn resolve_case(&self, case_id: &str) -> Result<(), DeskError>;
    /// The case's current state, or None when the desk does not know it.
    async fn case_info(&self, case_id: &str) -> Result<Option<CaseInfo>, DeskError>;
    /// The case opened since `since` whose first communication carries this reference: a
    /// case an instance opened but could not record before it stopped.
    async fn find_case(
        &self,
        reference: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<String>, DeskError>;
}

/// Cuts a body to what AWS Support accepts, saying how much was left out. Counts characters,
/// not bytes, as the API does.
pub fn truncate_body(body: String) -> String {
    let total = body.chars().count();
    if total <= MAX_BODY_CHARS {
        return body;
    }
    // Reserve room for the marker itself so the result still fits.
    let marker_room = 64;
    let keep = MAX_BODY_CHARS - marker_room;
    let mut out: String = body.chars().take(keep).collect();
    out.push_str(&format!(
        "\n[... truncated: {} characters omitted]",
        total - keep
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bodies_are_untouched() {
        assert_eq!(truncate_body("hello".into()), "hello");
        let exact = "é".repeat(MAX_BODY_CHARS);
        assert_eq!(truncate_body(exact.clone()), exact);
    }

    #[test]
    fn long_bodies_are_cut_with_a_marker() {
        let long = "é".repeat(MAX_BODY_CHARS * 2);
        let cut = truncate_body(long);
        assert!(cut.chars().count() <= MAX_BODY_CHARS);
        assert!(
            cut.ends_with("characters omitted]"),
            "{}",
            &cut[cut.len() - 60..]
        );
        assert!(cut.contains(&format!(
            "truncated: {} characters",
            MAX_BODY_CHARS * 2 - (MAX_BODY_CHARS - 64)
        )));
    }
}
