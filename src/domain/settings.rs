//! Per-alarm settings: how urgent an alarm is, what the support engineer should do, who is
//! copied. The stored form ([`AlarmConfigRecord`]) keeps the original service's DynamoDB item
//! fields (`priority`, `action`, `ccemail`) so existing tables and files keep working; the
//! case logic only ever sees the parsed form ([`AlarmSettings`]), in which every value is
//! valid. A malformed stored field never blocks a case: it falls back to the default and the
//! problem is written into the case body.

pub use super::documents::Document;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;

use crate::domain::maintenance::MaintenanceWindow;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The action text used when an alarm has no settings, as the original service did.
pub const DEFAULT_ACTION: &str = "Please contact us for more information";

/// AWS Support allows at most ten cc addresses on a case.
pub const MAX_CC: usize = 10;

/// AWS Support severity codes, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Normal,
    High,
    Urgent,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Self::Low,
        Self::Normal,
        Self::High,
        Self::Urgent,
        Self::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Urgent => "urgent",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown priority {s:?}: expected low, normal, high, urgent or critical")
            })
    }
}

/// An email address that AWS Support will accept in `ccEmailAddresses`. The check is
/// deliberately simple (one `@`, a dotted domain, no spaces): its job is to catch typos
/// before AWS refuses the whole case, not to implement RFC 5322.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct EmailAddress(String);

impl TryFrom<String> for EmailAddress {
    type Error = NotAnEmail;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> Self {
        e.0
    }
}

/// A `ccemail` entry that is not an e-mail address (left out of the case, with a note).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an email address")]
pub struct NotAnEmail(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, NotAnEmail> {
        let s = s.trim();
        let ok = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && match s.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NotAnEmail(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The runbook text for the support engineer: JSON (pretty-printed in the case, as the
/// original service did) or plain text used as it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ActionText {
    Json(Value),
    Plain(String),
}

impl ActionText {
    pub fn parse(text: &str) -> Self {
        match serde_json::from_str::<Value>(text) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => Self::Json(v),
            _ => Self::Plain(text.to_owned()),
        }
    }

    pub fn render(&self) -> String {
        match self {
            Self::Json(v) => serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()),
            Self::Plain(s) => s.clone(),
        }
    }
}

/// `ccemail` was one address in the original table; lists are accepted too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CcField {
    One(String),
    Many(Vec<String>),
}

impl CcField {
    pub fn addresses(&self) -> Vec<&str> {
        match self {
            Self::One(s) => s
                .split([',', ';'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect(),
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Per-alarm settings as stored, field for field: the original DynamoDB item's attributes plus
/// this service's optional ones. Values are checked when they are used, not when read, so a
/// hand-edited typo degrades one field of one case instead of failing a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlarmConfigRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ccemail: Option<CcField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Alarm names or globs (`*`, `?`), comma-separated: while one of them has an open
    /// case, this alarm's ALARM goes to that case as a note instead of opening its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inhibited_by: Option<String>,
    /// Alarms of one group share one open case: the first opens it, the others add a
    /// communication naming themselves, and it recovers when every member is OK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Where the alarm goes: `case` (the default), `page` or `both`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The escalation policy its pages follow (an id in the on-duty file); `PAGE_POLICY`
    /// when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// What is wrong with stored or typed per-alarm settings: each field's problem, said
/// together (`; `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct InvalidSettings(Vec<String>);

impl AlarmConfigRecord {
    /// Checks every field strictly, for the `alarms put` command: a person typing settings
    /// should hear about a mistake at once rather than find it in a case later.
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        let (_, problems) = AlarmSettings::parse(self);
        match problems.is_empty() {
            true => Ok(()),
            false => Err(InvalidSettings(
                problems.into_iter().map(|(what, _)| what).collect(),
            )),
        }
    }
}

/// Per-alarm settings, parsed: every value here is one AWS Support accepts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmSettings {
    pub priority: Severity,
    pub action: ActionText,
    pub cc: Vec<EmailAddress>,
    pub subject: Option<String>,
    pub service_code: Option<String>,
    pub category_code: Option<String>,
    pub enabled: bool,
    /// Alarm names or globs whose open case takes this alarm's news instead of a case of
    /// its own.
    pub inhibited_by: Vec<String>,
    /// The group whose one case this alarm shares.
    pub group: Option<String>,
    /// Whether the alarm opens a case, pages the people on duty, or both.
    pub route: Route,
    /// The escalation policy of its pages, when not the default.
    pub policy: Option<String>,
}

/// Where an alarm goes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Route {
    /// An AWS Support case, as the service always did.
    #[default]
    Case,
    /// A page to the people on duty, and no case.
    Page,
    /// Both.
    Both,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn cases(self) -> bool {
        matches!(self, Self::Case | Self::Both)
    }

    pub fn pages(self) -> bool {
        matches!(self, Self::Page | Self::Both)
    }
}

impl Default for AlarmSettings {
    fn default() -> Self {
        Self {
            priority: Severity::Low,
            action: ActionText::Plain(DEFAULT_ACTION.into()),
            cc: Vec::new(),
            subject: None,
            service_code: None,
            category_code: None,
            enabled: true,
            inhibited_by: Vec::new(),
            group: None,
            route: Route::Case,
            policy: None,
        }
    }
}

impl AlarmSettings {
    /// Parses a stored record; each field that cannot be used falls back to its default and
    /// leaves a note saying so (the notes go into the case body and the log).
    pub fn from_record(r: &AlarmConfigRecord) -> (Self, Vec<String>) {
        let (s, problems) = Self::parse(r);
        let notes = problems
            .into_iter()
            .map(|(what, fallback)| format!("{what}; {fallback}"))
            .collect();
        (s, notes)
    }

    /// The settings, and each problem with what is used instead: a stored record is read
    /// with fallbacks (`from_record`), a record about to be stored is refused
    /// (`AlarmConfigRecord::validate`).
    fn parse(r: &AlarmConfigRecord) -> (Self, Vec<(String, &'static str)>) {
        let mut s = Self::default();
        let mut notes = Vec::new();
        if let Some(p) = r.priority.as_deref() {
            match p.parse() {
                Ok(p) => s.priority = p,
                Err(e) => notes.push((e.to_string(), "using priority low")),
            }
        }
        if let Some(a) = r.action.as_deref().filter(|a| !a.trim().is_empty()) {
            s.action = ActionText::parse(a);
        }
        if let Some(cc) = &r.ccemail {
            for addr in cc.addresses() {
                match EmailAddress::parse(addr) {
                    Ok(e) if s.cc.len() < MAX_CC => s.cc.push(e),
                    Ok(e) => notes.push((
                        format!("more than {MAX_CC} cc addresses: {}", e.as_str()),
                        "left out",
                    )),
                    Err(e) => notes.push((format!("ccemail: {e}"), "left out")),
                }
            }
        }
        let nonempty = |o: &Option<String>| {
            o.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        s.subject = nonempty(&r.subject);
        s.service_code = nonempty(&r.service_code);
        s.category_code = nonempty(&r.category_code);
        s.enabled = r.enabled.unwrap_or(true);
        if let Some(list) = &r.inhibited_by {
            for pattern in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if pattern.chars().any(char::is_control) || pattern.chars().count() > 255 {
                    notes.push((
                        format!("inhibited_by: {pattern:?} is not an alarm name or glob"),
                        "left out",
                    ));
                } else {
                    s.inhibited_by.push(pattern.to_owned());
                }
            }
        }
        if let Some(g) = r.group.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
            if g.chars().any(char::is_control) || g.chars().count() > 255 {
                notes.push((format!("group: {g:?} is not a group name"), "no group"));
            } else {
                s.group = Some(g.to_owned());
            }
        }
        if let Some(route) = r.route.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            match route.parse() {
                Ok(route) => s.route = route,
                Err(_) => notes.push((
                    format!("route: {route:?} is not case, page or both"),
                    "opening a case",
                )),
            }
        }
        if let Some(p) = r.policy.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            if p.chars().any(char::is_control) || p.chars().count() > 64 {
                notes.push((
                    format!("policy: {p:?} is not a policy id"),
                    "the default policy",
                ));
            } else {
                s.policy = Some(p.to_owned());
            }
        }
        (s, notes)
    }
}

/// What went wrong reading or writing per-alarm settings. Always worth a retry from the
/// caller's point of view: the settings themselves never fail a request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("config store I/O failed")]
    Io(#[from] std::io::Error),
    #[error("config file {path} is not valid JSON")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
    #[error("config store backend failed: {what}")]
    Backend {
        what: String,
        #[source]
        source: Option<crate::errors::BoxError>,
    },
}

impl StoreError {
    /// A backend failure, with its cause.
    pub fn backend(what: impl Into<String>, source: impl Into<crate::errors::BoxError>) -> Self {
        Self::Backend {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// A backend failure whose description says it all (an SDK error's one line).
    pub fn backend_said(what: impl Into<String>) -> Self {
        Self::Backend {
            what: what.into(),
            source: None,
        }
    }
}

/// Where per-alarm settings live (a local file, or the original DynamoDB table).
#[async_trait]
pub trait AlarmConfigStore: Send + Sync {
    /// The settings stored for this alarm name, if any.
    async fn get(&self, alarm_name: &str) -> Result<Option<AlarmConfigRecord>, StoreError>;
    async fn put(&self, alarm_name: &str, record: &AlarmConfigRecord) -> Result<(), StoreError>;
    /// All stored settings, sorted by alarm name.
    async fn list(&self) -> Result<Vec<(String, AlarmConfigRecord)>, StoreError>;
    /// Returns whether there was anything to delete.
    async fn delete(&self, alarm_name: &str) -> Result<bool, StoreError>;
    /// Maintenance windows, past, present and future.
    async fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError>;
    /// Replaces the stored windows (the `maintenance` commands read, change and save).
    async fn save_windows(&self, windows: &[MaintenanceWindow]) -> Result<(), StoreError>;
    /// A document kept beside the settings, so every instance sees the same one; `None`
    /// when it was never saved.
    async fn document(&self, doc: Document) -> Result<Option<String>, StoreError>;
    /// Replaces a document (checked whole by the caller first).
    async fn save_document(&self, doc: Document, text: &str) -> Result<(), StoreError>;
    /// The on-duty file as last imported (`oncall::file`'s canonical TOML), if any.
    async fn on_call(&self) -> Result<Option<String>, StoreError> {
        self.document(Document::OnCall).await
    }
    /// Replaces the on-duty file.
    async fn save_on_call(&self, text: &str) -> Result<(), StoreError> {
        self.save_document(Document::OnCall, text).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original_service() {
        let (s, notes) = AlarmSettings::from_record(&AlarmConfigRecord::default());
        assert!(notes.is_empty());
        assert_eq!(s.priority, Severity::Low);
        assert_eq!(s.action.render(), DEFAULT_ACTION);
        assert!(s.enabled);
    }

    #[test]
    fn original_item_fields_parse() {
        let r: AlarmConfigRecord = serde_json::from_str(
            r#"{"priority":"URGENT","action":"{\"do\":\"restart\"}","ccemail":"ops@example.com"}"#,
        )
        .expect("record");
        let (s, notes) = AlarmSettings::from_record(&r);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(s.priority, Severity::Urgent);
        assert_eq!(s.action.render(), "{\n  \"do\": \"restart\"\n}");
        assert_eq!(
            s.cc,
            vec![EmailAddress::parse("ops@example.com").expect("email")]
        );
    }

    /// Route and policy: read, refused by `alarms put`, a stored mistake a case with a note.
    #[test]
    fn route_and_policy_are_read_and_checked() {
        let r = AlarmConfigRecord {
            route: Some("both".into()),
            policy: Some(" night ".into()),
            ..Default::default()
        };
        let (s, notes) = AlarmSettings::from_record(&r);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!((s.route, s.policy.as_deref()), (Route::Both, Some("night")));
        assert!(
            s.route.cases() && s.route.pages() && AlarmSettings::default().route == Route::Case
        );
        let bad = AlarmConfigRecord {
            route: Some("sometimes".into()),
            policy: Some("a\u{7}b".into()),
            ..Default::default()
        };
        let e = bad.validate().expect_err("refused").to_string();
        assert!(
            e.contains("route: \"sometimes\" is not case, page or both"),
            "{e}"
        );
        assert!(e.contains("is not a policy id"), "{e}");
        let (s, notes) = AlarmSettings::from_record(&bad);
        assert_eq!(
            (s.route, s.policy, notes.len()),
            (Route::Case, None, 2),
            "{notes:?}"
        );
        assert!(notes[0].ends_with("; opening a case"), "{notes:?}");
    }

    #[test]
    fn malformed_fields_fall_back_with_a_note() {
        let r = AlarmConfigRecord {
            priority: Some("asap".into()),
            ccemail: Some(CcField::Many(vec![
                "good@example.com".into(),
                "not an email".into(),
            ])),
            ..Default::default()
        };
        let (s, notes) = AlarmSettings::from_record(&r);
        assert_eq!(s.priority, Severity::Low);
        assert_eq!(s.cc.len(), 1);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(r.validate().is_err());
    }

    #[test]
    fn plain_action_text_is_kept() {
        assert_eq!(
            ActionText::parse("Restart the box").render(),
            "Restart the box"
        );
        // A bare JSON string or number is text, not a runbook object.
        assert_eq!(ActionText::parse("42"), ActionText::Plain("42".into()));
    }

    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(EmailAddress::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a@com.",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn at_most_ten_cc() {
        let many: Vec<String> = (0..12).map(|i| format!("u{i}@example.com")).collect();
        let r = AlarmConfigRecord {
            ccemail: Some(CcField::Many(many)),
            ..Default::default()
        };
        let (s, notes) = AlarmSettings::from_record(&r);
        assert_eq!(s.cc.len(), MAX_CC);
        assert_eq!(notes.len(), 2);
    }
}
