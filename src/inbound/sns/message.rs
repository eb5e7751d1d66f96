//! The SNS HTTP(S) message envelope: strict parsing of the JSON body into typed fields and
//! the canonical "string to sign" the signature covers.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use crate::domain::delivery::MessageKind;

use super::error::SnsError;
use super::topic::TopicArn;

impl FromStr for MessageKind {
    type Err = SnsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Notification" => Ok(MessageKind::Notification),
            "SubscriptionConfirmation" => Ok(MessageKind::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Ok(MessageKind::UnsubscribeConfirmation),
            _ => Err(SnsError::malformed(
                "Type",
                "is not a known SNS message type",
            )),
        }
    }
}

/// A parsed SNS message. Values are kept exactly as JSON-decoded: the signature covers
/// them byte for byte (notably `timestamp`, which must never be re-formatted).
///
/// Fields are public so callers can read them freely; a message is only trustworthy after
/// [`Verifier::verify`](super::Verifier::verify) returned `Ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    pub kind: MessageKind,
    pub message_id: String,
    pub topic_arn: TopicArn,
    /// Notification only; JSON `null` and absence both mean "no subject".
    pub subject: Option<String>,
    pub message: String,
    /// Verbatim, e.g. `2024-01-01T00:00:00.000Z`.
    pub timestamp: String,
    pub signature_version: String,
    /// Base64 text as received.
    pub signature: String,
    pub signing_cert_url: String,
    /// Confirmations only. For UnsubscribeConfirmation it RE-subscribes: never visit it
    /// automatically.
    pub subscribe_url: Option<String>,
    /// Confirmations only.
    pub token: Option<String>,
    /// Notification only (not signed).
    pub unsubscribe_url: Option<String>,
}

impl SnsMessage {
    /// Parses raw body bytes (the body is JSON whatever the Content-Type says).
    pub fn from_slice(body: &[u8]) -> Result<Self, SnsError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| SnsError::malformed("body", "is not valid JSON"))?;
        SnsMessage::parse(&value)
    }

    /// Parses an already-decoded JSON body. Missing or mistyped required fields are an
    /// error naming the field.
    pub fn parse(value: &Value) -> Result<Self, SnsError> {
        let obj = value
            .as_object()
            .ok_or_else(|| SnsError::malformed("body", "is not a JSON object"))?;

        let kind: MessageKind = required(obj, "Type")?.parse()?;
        let topic_arn = TopicArn::parse(required(obj, "TopicArn")?)
            .map_err(|_| SnsError::malformed("TopicArn", "is not an SNS topic ARN"))?;

        let (subject, subscribe_url, token, unsubscribe_url) = match kind {
            MessageKind::Notification => (
                optional(obj, "Subject")?,
                None,
                None,
                optional(obj, "UnsubscribeURL")?,
            ),
            MessageKind::SubscriptionConfirmation | MessageKind::UnsubscribeConfirmation => (
                None,
                Some(required(obj, "SubscribeURL")?.to_owned()),
                Some(required(obj, "Token")?.to_owned()),
                None,
            ),
        };

        Ok(SnsMessage {
            kind,
            message_id: required(obj, "MessageId")?.to_owned(),
            topic_arn,
            subject,
            message: required(obj, "Message")?.to_owned(),
            timestamp: required(obj, "Timestamp")?.to_owned(),
            signature_version: required(obj, "SignatureVersion")?.to_owned(),
            signature: required(obj, "Signature")?.to_owned(),
            signing_cert_url: required(obj, "SigningCertURL")?.to_owned(),
            subscribe_url,
            token,
            unsubscribe_url,
        })
    }

    /// The exact bytes SNS signed: `Key\nValue\n` for each signed key present, in the
    /// documented order for the message type.
    pub fn string_to_sign(&self) -> String {
        let topic = self.topic_arn.as_str();
        let kind = self.kind.as_str();
        let fields: Vec<(&str, Option<&str>)> = match self.kind {
            MessageKind::Notification => vec![
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("Subject", self.subject.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("TopicArn", Some(topic)),
                ("Type", Some(kind)),
            ],
            // The same key list for both confirmations: the official JS validator used the
            // Notification list for UnsubscribeConfirmation and rejected genuine ones.
            MessageKind::SubscriptionConfirmation | MessageKind::UnsubscribeConfirmation => vec![
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("SubscribeURL", self.subscribe_url.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("Token", self.token.as_deref()),
                ("TopicArn", Some(topic)),
                ("Type", Some(kind)),
            ],
        };
        let mut out = String::with_capacity(
            fields
                .iter()
                .map(|(k, v)| k.len() + v.map_or(0, str::len) + 2)
                .sum(),
        );
        for (key, value) in fields {
            if let Some(value) = value {
                out.push_str(key);
                out.push('\n');
                out.push_str(value);
                out.push('\n');
            }
        }
        out
    }

    /// The Timestamp as a date, when it parses as RFC 3339 (for logs or a freshness policy;
    /// the signature uses the verbatim text).
    pub fn timestamp_utc(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.timestamp)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The most each field of an SNS message may hold: SNS's own limits (a message of 256 KiB,
/// a subject of 100 characters) with room to spare, and ids and URLs as long as SNS ever
/// writes them. The message id becomes a ledger key.
fn max_len(field: &str) -> usize {
    match field {
        "Message" => 256 * 1024,
        "MessageId" | "Type" | "SignatureVersion" => 128,
        "Timestamp" => 64,
        "Subject" => 256,
        "TopicArn" => 1024,
        _ => 4096, // Signature, certificate and subscription URLs, Token
    }
}

fn required<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, SnsError> {
    match obj.get(field) {
        Some(Value::String(s)) if s.len() > max_len(field) => Err(SnsError::malformed(
            field,
            "is longer than SNS ever makes it (Message 256 KiB, MessageId 128 bytes)",
        )),
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(SnsError::malformed(field, "is missing")),
        Some(_) => Err(SnsError::malformed(field, "is not a string")),
    }
}

fn optional(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, SnsError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => required(obj, field).map(|s| Some(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notification() -> Value {
        json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Subject": "My First Message",
            "Message": "Hello world!\nsecond line",
            "Timestamp": "2012-05-02T00:54:06.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
            "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
            "MessageAttributes": {"a": {"Type": "String", "Value": "b"}}
        })
    }

    fn confirmation(kind: &str) -> Value {
        json!({
            "Type": kind,
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Message": "You have chosen to subscribe to the topic.\nTo confirm...",
            "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37",
            "Timestamp": "2012-04-26T20:45:04.751Z",
            "SignatureVersion": "2",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
        })
    }

    #[test]
    fn every_field_is_bounded_by_what_sns_sends() {
        for (field, len) in [
            ("MessageId", 129),
            ("Message", 256 * 1024 + 1),
            ("Timestamp", 65),
            ("Subject", 257),
            ("SigningCertURL", 4097),
        ] {
            let mut v = notification();
            v[field] = json!("x".repeat(len));
            match SnsMessage::parse(&v) {
                Err(SnsError::MalformedMessage { field: f, problem }) => {
                    assert_eq!(f, field);
                    assert!(
                        problem.contains("longer than SNS ever makes it"),
                        "{problem}"
                    );
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut v = notification();
        v["Message"] = json!("x".repeat(256 * 1024));
        assert!(SnsMessage::parse(&v).is_ok(), "SNS's own limit is accepted");
    }

    #[test]
    fn parses_notification() {
        let m = SnsMessage::parse(&notification()).expect("parses");
        assert_eq!(m.kind, MessageKind::Notification);
        assert_eq!(m.topic_arn.region(), "us-west-2");
        assert_eq!(m.subject.as_deref(), Some("My First Message"));
        assert_eq!(m.timestamp, "2012-05-02T00:54:06.000Z");
        assert!(m.unsubscribe_url.is_some());
        assert!(m.subscribe_url.is_none() && m.token.is_none());
        assert_eq!(
            m.string_to_sign(),
            "Message\nHello world!\nsecond line\n\
             MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
             Subject\nMy First Message\n\
             Timestamp\n2012-05-02T00:54:06.000Z\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
             Type\nNotification\n"
        );
        assert_eq!(
            m.timestamp_utc().map(|t| t.timestamp()),
            Some(1_335_920_046)
        );
    }

    #[test]
    fn null_or_absent_subject_is_left_out() {
        let mut with_null = notification();
        with_null["Subject"] = Value::Null;
        let mut without = notification();
        remove(&mut without, "Subject");
        for body in [with_null, without] {
            let m = SnsMessage::parse(&body).expect("parses");
            assert_eq!(m.subject, None);
            assert!(m.string_to_sign().starts_with("Message\n"));
            assert!(!m.string_to_sign().contains("Subject"));
        }
    }

    #[test]
    fn parses_confirmations_with_their_key_list() {
        for kind in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
            let m = SnsMessage::parse(&confirmation(kind)).expect("parses");
            assert_eq!(m.kind.as_str(), kind);
            assert_eq!(m.token.as_deref(), Some("2336412f37"));
            assert_eq!(
                m.string_to_sign(),
                format!(
                    "Message\nYou have chosen to subscribe to the topic.\nTo confirm...\n\
                     MessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n\
                     SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37\n\
                     Timestamp\n2012-04-26T20:45:04.751Z\n\
                     Token\n2336412f37\n\
                     TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
                     Type\n{kind}\n"
                )
            );
        }
    }

    fn remove(body: &mut Value, field: &str) {
        if let Some(obj) = body.as_object_mut() {
            obj.remove(field);
        }
    }

    fn field_error(body: &Value) -> (&'static str, &'static str) {
        match SnsMessage::parse(body) {
            Err(SnsError::MalformedMessage { field, problem }) => (field, problem),
            other => panic!("expected MalformedMessage, got {other:?}"),
        }
    }

    #[test]
    fn missing_required_fields_are_named() {
        for field in [
            "Type",
            "MessageId",
            "TopicArn",
            "Message",
            "Timestamp",
            "SignatureVersion",
            "Signature",
            "SigningCertURL",
        ] {
            let mut body = notification();
            remove(&mut body, field);
            assert_eq!(field_error(&body), (field, "is missing"));
            body[field] = json!(42);
            assert_eq!(field_error(&body), (field, "is not a string"));
        }
        for field in ["SubscribeURL", "Token"] {
            let mut body = confirmation("SubscriptionConfirmation");
            remove(&mut body, field);
            assert_eq!(field_error(&body), (field, "is missing"));
        }
        let mut body = notification();
        body["Subject"] = json!(["x"]);
        assert_eq!(field_error(&body).0, "Subject");
    }

    #[test]
    fn rejects_unknown_type_bad_topic_and_non_objects() {
        let mut body = notification();
        body["Type"] = json!("Notice");
        assert_eq!(field_error(&body).0, "Type");
        let mut body = notification();
        body["TopicArn"] = json!("arn:aws:sqs:us-west-2:123456789012:q");
        assert_eq!(field_error(&body).0, "TopicArn");
        assert_eq!(field_error(&json!([1, 2])).0, "body");
        assert!(matches!(
            SnsMessage::from_slice(b"not json"),
            Err(SnsError::MalformedMessage { field: "body", .. })
        ));
    }

    #[test]
    fn errors_do_not_leak_the_body() {
        let mut body = notification();
        body["Type"] = json!("SECRET-VALUE");
        let err = SnsMessage::parse(&body).expect_err("unknown type");
        assert!(!err.to_string().contains("SECRET"));
    }

    #[test]
    fn from_slice_matches_parse() {
        let bytes = serde_json::to_vec(&notification()).expect("serializes");
        assert_eq!(
            SnsMessage::from_slice(&bytes).expect("parses"),
            SnsMessage::parse(&notification()).expect("parses")
        );
    }
}
