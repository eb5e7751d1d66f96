//! A text message someone sent back ("ACK 12"), as AWS End User Messaging SMS publishes a
//! two-way message to an SNS topic: `{"originationNumber", "destinationNumber",
//! "messageBody", "inboundMessageId", ...}`. Believed only as AWS delivers it (a verified
//! SNS message or the worker queue): the number is what AWS says sent it.

use serde_json::Value;

use crate::domain::alarm::PayloadError;

/// The longest reply read: a concatenated SMS is at most a few segments.
const MAX_BODY_CHARS: usize = 1600;

/// Whether a text is a phone number in E.164 form: `+`, then 7 to 15 digits, the first not 0.
pub fn is_e164(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or_default();
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A reply, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsReply {
    /// Who sent it (E.164).
    pub from: String,
    pub body: String,
    /// AWS's id of the inbound message, when given.
    pub id: Option<String>,
}

impl SmsReply {
    /// `None` when the value is not a two-way SMS message at all; otherwise the reply, or
    /// why it cannot be one.
    pub fn parse(value: &Value) -> Option<Result<Self, PayloadError>> {
        let obj = value.as_object()?;
        if !(obj.contains_key("originationNumber") && obj.contains_key("messageBody")) {
            return None;
        }
        let invalid = |field: &str, problem: String| PayloadError::InvalidField {
            field: field.to_owned(),
            problem,
        };
        let text = |k: &'static str| match obj.get(k) {
            Some(Value::String(s)) => Ok(s.as_str()),
            _ => Err(invalid(k, "not a string".into())),
        };
        Some((|| {
            let from = text("originationNumber")?;
            if !is_e164(from) {
                return Err(invalid(
                    "originationNumber",
                    "not a phone number in E.164 form".into(),
                ));
            }
            let body = text("messageBody")?;
            if body.chars().count() > MAX_BODY_CHARS {
                return Err(invalid(
                    "messageBody",
                    format!("longer than {MAX_BODY_CHARS} characters"),
                ));
            }
            Ok(Self {
                from: from.to_owned(),
                body: crate::escape::printable(body).into_owned(),
                id: obj
                    .get("inboundMessageId")
                    .and_then(Value::as_str)
                    .map(|s| s.chars().take(128).collect()),
            })
        })())
    }

    /// The page a reply acknowledges: `ACK 12` (any case, the space optional).
    pub fn acknowledges(&self) -> Option<u64> {
        let t = self.body.trim().to_ascii_uppercase();
        let rest = t.strip_prefix("ACK")?.trim_start();
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() || !rest[digits.len()..].trim().is_empty() {
            return None;
        }
        digits.parse().ok().filter(|n| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(body: &str) -> SmsReply {
        SmsReply::parse(&json!({"originationNumber": "+15555550100", "destinationNumber": "+15555550199", "messageBody": body}))
            .expect("an sms reply")
            .expect("valid")
    }

    #[test]
    fn replies_are_recognised_read_and_bounded() {
        assert!(
            SmsReply::parse(&json!({"AlarmName": "x"})).is_none(),
            "an alarm is not a reply"
        );
        let r = SmsReply::parse(&json!({
            "originationNumber": "+15555550100",
            "messageBody": "ACK 12",
            "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
        }))
        .expect("reply")
        .expect("valid");
        assert_eq!(
            (r.from.as_str(), r.body.as_str()),
            ("+15555550100", "ACK 12")
        );
        assert_eq!(
            r.id.as_deref(),
            Some("cae173d2-66b9-564c-8309-21f858e9fb84")
        );
        for (bad, want) in [
            (
                json!({"originationNumber": "555-0100", "messageBody": "ACK 1"}),
                "originationNumber",
            ),
            (
                json!({"originationNumber": 15555550100u64, "messageBody": "ACK 1"}),
                "originationNumber",
            ),
            (
                json!({"originationNumber": "+15555550100", "messageBody": ["ACK"]}),
                "messageBody",
            ),
            (
                json!({"originationNumber": "+15555550100", "messageBody": "x".repeat(1601)}),
                "messageBody",
            ),
        ] {
            let e = SmsReply::parse(&bad).expect("a reply").expect_err(want);
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn ack_names_its_page() {
        for (body, want) in [
            ("ACK 12", Some(12)),
            ("ack 12", Some(12)),
            ("  Ack12 ", Some(12)),
            ("ACK 0", None),
            ("ACK", None),
            ("ACK 12 13", None),
            ("ACK twelve", None),
            ("OK 12", None),
            ("ACK 99999999999999999999999", None),
        ] {
            assert_eq!(reply(body).acknowledges(), want, "{body}");
        }
    }
}
