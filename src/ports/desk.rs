//! Where cases go: the support desk. [`NewCase`] is exactly what CreateCase receives; the
//! desk behind the trait is AWS Support in production or the local dry-run desk, which records
//! the case it would have opened.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::settings::{EmailAddress, Severity};

/// AWS Support accepts at most this many characters in a communication body.
pub const MAX_BODY_CHARS: usize = 8000;

/// A case as CreateCase takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewCase {
    pub subject: String,
    pub communication_body: CaseBody,
    pub severity_code: Severity,
    pub service_code: String,
    pub category_code: String,
    pub cc_email_addresses: Vec<EmailAddress>,
    pub language: String,
    pub issue_type: String,
    /// The AWS account the alarm came from, and the role assumed to open the case there
    /// (`ACCOUNT_ROLES`); no role: the service's own account opens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_role: Option<String>,
    /// Files attached to the case (the alarm's graph): sent with AddAttachmentsToSet, kept
    /// as files by the dry-run desk. Not part of the case's JSON record.
    #[serde(skip)]
    pub attachments: Vec<crate::ports::graph::Attachment>,
}

/// A communication added to an open case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Communication {
    pub communication_body: CaseBody,
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

/// The service and category codes AWS Support knows (DescribeServices), so a setting with
/// a code it would refuse is caught before CreateCase: when the settings are stored, by
/// `check`, and at case time (where the defaults are used instead, with a note).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceCatalog {
    services: std::collections::BTreeMap<String, Vec<String>>,
}

/// What is wrong with a pair of codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeProblem {
    #[error("AWS Support knows no service code {code:?}{}", hint(close))]
    UnknownService { code: String, close: Vec<String> },
    #[error("service {service:?} has no category code {code:?}{}", hint(close))]
    UnknownCategory {
        service: String,
        code: String,
        close: Vec<String>,
    },
}

fn hint(close: &[String]) -> String {
    match close {
        [] => String::new(),
        _ => format!(" (did you mean {}?)", close.join(", ")),
    }
}

impl ServiceCatalog {
    pub fn new(services: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        Self {
            services: services.into_iter().collect(),
        }
    }

    /// Reads the bundled format: one service a line, `code category category ...`; `#`
    /// starts a comment.
    pub fn parse(text: &str) -> Self {
        Self::new(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| {
                    let mut words = l.split_whitespace().map(str::to_owned);
                    Some((words.next()?, words.collect()))
                }),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Checks a service code and, when given, a category code of it.
    pub fn check(&self, service: &str, category: Option<&str>) -> Result<(), CodeProblem> {
        let Some(categories) = self.services.get(service) else {
            return Err(CodeProblem::UnknownService {
                code: service.to_owned(),
                close: close_matches(service, self.services.keys()),
            });
        };
        match category {
            Some(c) if !categories.iter().any(|k| k == c) => Err(CodeProblem::UnknownCategory {
                service: service.to_owned(),
                code: c.to_owned(),
                close: close_matches(c, categories.iter()),
            }),
            _ => Ok(()),
        }
    }
}

/// Up to three known codes that look like `wanted`: sharing a word with it, or a few
/// edits away.
fn close_matches<'a>(wanted: &str, known: impl Iterator<Item = &'a String>) -> Vec<String> {
    let words: Vec<&str> = wanted.split('-').filter(|w| w.len() > 2).collect();
    let mut scored: Vec<(usize, &String)> = known
        .filter_map(|k| {
            let d = edit_distance(wanted, k);
            let shared = k.split('-').filter(|w| words.contains(w)).count();
            (d <= 3 || shared > 0).then(|| (d.saturating_sub(shared * 4), k))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, k)| k.clone()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[async_trait]
pub trait SupportDesk: Send + Sync {
    /// The newest communication AWS Support itself added to the case, when the desk can
    /// say (for the notice "AWS replied").
    async fn latest_reply(&self, _case_id: &str) -> Result<Option<String>, DeskError> {
        Ok(None)
    }

    /// The codes the desk knows, when it can say (cached by the desk); None: no check.
    async fn services(&self) -> Result<Option<std::sync::Arc<ServiceCatalog>>, DeskError> {
        Ok(None)
    }
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
    /// The case's communications, oldest first (its opening text among them), for the
    /// console's case view; empty where the desk cannot say.
    async fn communications(&self, _case_id: &str) -> Result<Vec<CaseMessage>, DeskError> {
        Ok(Vec::new())
    }
    /// The graph attached when the case was opened, if there is one.
    async fn graph(
        &self,
        _case_id: &str,
    ) -> Result<Option<crate::ports::graph::Attachment>, DeskError> {
        Ok(None)
    }
}

/// One communication on a case: when, who, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseMessage {
    pub at: chrono::DateTime<chrono::Utc>,
    pub by: String,
    pub body: String,
}

/// A case or communication body, never longer than AWS Support accepts: it is cut (saying
/// how much was left out) when it is built, so no code path can send one the API refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct CaseBody(String);

impl CaseBody {
    pub fn new(body: impl Into<String>) -> Self {
        Self(truncate_body(body.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for CaseBody {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for CaseBody {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<CaseBody> for String {
    fn from(b: CaseBody) -> Self {
        b.0
    }
}

impl std::ops::Deref for CaseBody {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CaseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The reference on a communication's first line, if it carries one: the desks look for it
/// before sending a communication again after an uncertain answer.
pub fn communication_reference(body: &str) -> Option<&str> {
    let rest = body.lines().next()?.strip_prefix("Reference: ")?;
    rest.split_whitespace()
        .next()
        .filter(|r| r.starts_with("cwsu-"))
}

/// Cuts a body to what AWS Support accepts, saying how much was left out. Counts characters,
/// not bytes, as the API does.
fn truncate_body(body: String) -> String {
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
    fn unknown_codes_are_named_with_close_matches() {
        let catalog = ServiceCatalog::parse(
            "# comment\namazon-elastic-compute-cloud-linux other instance-issue\n\
             amazon-dynamodb other performance\ngeneral-info other\n",
        );
        assert!(
            catalog
                .check("amazon-dynamodb", Some("performance"))
                .is_ok()
        );
        assert!(catalog.check("amazon-dynamodb", None).is_ok());
        let err = catalog
            .check("amazon-dynamo-db", None)
            .expect_err("unknown");
        assert!(
            err.to_string().contains("did you mean amazon-dynamodb"),
            "{err}"
        );
        let err = catalog
            .check("amazon-dynamodb", Some("perfromance"))
            .expect_err("unknown category");
        assert!(err.to_string().contains("performance"), "{err}");
        let err = catalog.check("zzz", None).expect_err("unknown");
        assert_eq!(err.to_string(), "AWS Support knows no service code \"zzz\"");
    }

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

    #[test]
    fn a_body_is_cut_however_it_is_made() {
        let long = "x".repeat(MAX_BODY_CHARS + 10);
        for body in [
            CaseBody::new(long.clone()),
            CaseBody::from(long.as_str()),
            serde_json::from_value::<CaseBody>(serde_json::json!(long)).expect("json"),
        ] {
            assert!(body.chars().count() <= MAX_BODY_CHARS);
            assert!(body.contains("characters omitted]"));
        }
    }
}
