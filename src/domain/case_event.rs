//! What AWS Support says about a case: EventBridge `Support Case Update` events (source
//! `aws.support`), delivered like any other body (through SNS or SQS, or posted). They are
//! the case's life after it was opened: AWS replied, the case was resolved or reopened.
//! Each is recorded against the case (`cases show` prints the timeline); a resolved case is
//! let go at once, so the next alarm opens a new case without waiting for `reconcile`.
//! Event types this service does not know are recorded and answered 200, never retried.

use serde_json::Value;

use crate::domain::alarm::PayloadError;

/// What happened to the case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEventKind {
    Created,
    /// A communication was added; `origin` says by whom (`AWS`, or `CUSTOMER`: this
    /// service or a person on the account).
    Communication {
        origin: Option<String>,
    },
    Resolved,
    Reopened,
    /// An `aws.support` event of a type this service does not know (its name).
    Other(String),
}

/// One event about one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseUpdate {
    /// EventBridge's event id: the same on every redelivery of the event.
    pub event_id: String,
    pub case_id: Option<String>,
    pub display_id: Option<String>,
    pub communication_id: Option<String>,
    pub kind: CaseEventKind,
    /// When AWS says it happened, verbatim.
    pub time: String,
    /// The account the event says it is about (EventBridge's `account`).
    pub account: Option<String>,
}

/// The account an AWS Support case id names: `case-111122223333-muen-2022-...`. The dry-run
/// desk's ids name none.
pub fn account_of_case(case_id: &str) -> Option<&str> {
    case_id
        .strip_prefix("case-")?
        .split('-')
        .next()
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// What an AWS Support event's ids and names may hold: they become ledger keys and
/// appear in logs. AWS's case ids are about 45 characters, event ids 36.
const MAX_ID_CHARS: usize = 256;

/// `text`, refused (naming the field) beyond [`MAX_ID_CHARS`] or with control characters.
fn id<'a>(v: &'a Value, key: &str, path: &str) -> Result<Option<&'a str>, PayloadError> {
    match text(v, key) {
        Some(s) if s.len() > MAX_ID_CHARS || s.chars().any(char::is_control) => {
            Err(PayloadError::InvalidField {
                field: path.to_owned(),
                problem: format!(
                    "longer than {MAX_ID_CHARS} characters, or holds control characters"
                ),
            })
        }
        other => Ok(other),
    }
}

impl CaseUpdate {
    /// `None` when the body is not an `aws.support` event at all.
    pub fn parse(v: &Value) -> Option<Result<Self, PayloadError>> {
        if text(v, "source") != Some("aws.support") {
            return None;
        }
        Some(Self::parse_support(v))
    }

    fn parse_support(v: &Value) -> Result<Self, PayloadError> {
        crate::domain::alarm::check_strings(v)?;
        let event_id = id(v, "id", "id")?
            .ok_or_else(|| PayloadError::MissingField("id".into()))?
            .to_owned();
        let time = id(v, "time", "time")?.unwrap_or("-").to_owned();
        let detail_type = id(v, "detail-type", "detail-type")?.unwrap_or_default();
        let detail = v.get("detail").unwrap_or(&Value::Null);
        let account = id(v, "account", "account")?.map(str::to_owned);
        if detail_type != "Support Case Update" {
            return Ok(Self {
                event_id,
                case_id: id(detail, "case-id", "detail.case-id")?.map(str::to_owned),
                display_id: None,
                communication_id: None,
                kind: CaseEventKind::Other(detail_type.to_owned()),
                time,
                account,
            });
        }
        let case_id = id(detail, "case-id", "detail.case-id")?
            .ok_or_else(|| PayloadError::MissingField("detail.case-id".into()))?
            .to_owned();
        let kind = match id(detail, "event-name", "detail.event-name")?.unwrap_or_default() {
            "CreateCase" => CaseEventKind::Created,
            "AddCommunicationToCase" => CaseEventKind::Communication {
                origin: id(detail, "origin", "detail.origin")?.map(str::to_owned),
            },
            "ResolveCase" => CaseEventKind::Resolved,
            "ReopenCase" => CaseEventKind::Reopened,
            other => CaseEventKind::Other(format!("Support Case Update {other}")),
        };
        Ok(Self {
            event_id,
            case_id: Some(case_id),
            display_id: id(detail, "display-id", "detail.display-id")?.map(str::to_owned),
            communication_id: id(detail, "communication-id", "detail.communication-id")?
                .map(str::to_owned),
            kind,
            time,
            account,
        })
    }

    /// The key under which the event is remembered once recorded.
    pub fn dedupe_key(&self) -> String {
        crate::domain::delivery::HandledKey::SupportEvent(self.event_id.clone()).into()
    }

    /// The id the Support Center shows, else the case id (`-` when the event names none).
    pub fn shown_id(&self) -> &str {
        self.display_id
            .as_deref()
            .or(self.case_id.as_deref())
            .unwrap_or("-")
    }

    /// How the case is named in logs and answers: its Support Center id when known.
    pub fn label(&self) -> String {
        match (&self.display_id, &self.case_id) {
            (Some(d), _) => format!("support case {d}"),
            (None, Some(c)) => format!("support case {c}"),
            (None, None) => "AWS Support".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/data/support-events/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
    }

    #[test]
    fn each_documented_event_shape_parses() {
        let kinds = [
            ("create", CaseEventKind::Created),
            (
                "communication-aws",
                CaseEventKind::Communication {
                    origin: Some("AWS".into()),
                },
            ),
            (
                "communication-customer",
                CaseEventKind::Communication {
                    origin: Some("CUSTOMER".into()),
                },
            ),
            ("resolve", CaseEventKind::Resolved),
            ("reopen", CaseEventKind::Reopened),
        ];
        for (name, kind) in kinds {
            let u = CaseUpdate::parse(&fixture(name))
                .expect("aws.support")
                .expect(name);
            assert_eq!(u.kind, kind, "{name}");
            assert_eq!(
                u.case_id.as_deref(),
                Some("case-111122223333-muen-2022-7118885805350839")
            );
            assert_eq!(u.display_id.as_deref(), Some("1234563851"));
        }
        let c = CaseUpdate::parse(&fixture("create"))
            .expect("x")
            .expect("y");
        assert_eq!(c.communication_id, None, "empty means none");
    }

    #[test]
    fn unknown_support_events_are_kept_and_bad_ones_named() {
        let mut v = fixture("create");
        v["detail-type"] = "Support Case Escalation".into();
        let u = CaseUpdate::parse(&v).expect("aws.support").expect("kept");
        assert_eq!(
            u.kind,
            CaseEventKind::Other("Support Case Escalation".into())
        );
        let mut v = fixture("create");
        v["detail"]["event-name"] = "TransferCase".into();
        let u = CaseUpdate::parse(&v).expect("aws.support").expect("kept");
        assert!(matches!(u.kind, CaseEventKind::Other(_)));
        let mut v = fixture("resolve");
        v["detail"]
            .as_object_mut()
            .expect("detail")
            .remove("case-id");
        assert_eq!(
            CaseUpdate::parse(&v).expect("aws.support"),
            Err(PayloadError::MissingField("detail.case-id".into()))
        );
        assert!(CaseUpdate::parse(&serde_json::json!({"source": "aws.cloudwatch"})).is_none());
    }
}
