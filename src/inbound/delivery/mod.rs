//! What arrives: one POST, classified by its headers and body (never by Content-Type: SNS
//! sends text/plain and the worker daemon sends whatever it was configured with).
//!
//! - Elastic Beanstalk worker daemon (sqsd): `X-Aws-Sqsd-*` headers; its periodic tasks add
//!   `X-Aws-Sqsd-Taskname` and have an empty body.
//! - Amazon SNS over HTTP(S): `x-amz-sns-message-type`, or an SNS envelope in the body (which
//!   is also what an SQS body holds when a topic fans out to a queue).
//! - Anything else is a direct post (curl from a monitor).
//!
//! This module only reads the request; the SNS signature is checked by the server before the
//! envelope is opened with [`Received::into_alarm`].

use axum::http::HeaderMap;
use serde_json::Value;

use crate::domain::alarm::{Alarm, PayloadError};
use crate::domain::case_event::CaseUpdate;
use crate::domain::delivery::{Delivery, DeliveryKind, Message, MessageKind};
use crate::inbound::sns::SnsMessage;

/// What the body holds, once read.
#[derive(Debug, Clone)]
pub enum Body {
    /// A signed SNS message (posted by SNS, or inside an SQS body).
    Sns(Box<SnsMessage>),
    /// An alarm or event with no envelope: a JSON object, not parsed into values until the
    /// request is admitted.
    Bare(Vec<u8>),
    /// A worker-daemon periodic task (cron.yaml), by name. Not [`DeliveryKind::Task`],
    /// which is work the service gives itself.
    Periodic(String),
}

/// A classified request.
#[derive(Debug, Clone)]
pub struct Received {
    pub delivery: Delivery,
    pub body: Body,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

const SNS_TYPES: [&str; 3] = [
    "Notification",
    "SubscriptionConfirmation",
    "UnsubscribeConfirmation",
];

/// The largest alarm or event accepted outside an envelope: what SNS and SQS carry at most
/// (256 KiB). Anything larger could only be hand-written, and would not fit the ledger's
/// records (DynamoDB: 400 KB an item).
pub const MAX_ALARM_BYTES: usize = 256 * 1024;

/// The most JSON values (objects, arrays, scalars) one body may hold. Real alarms hold a
/// few hundred; the bound keeps what one request's parse can allocate to a few megabytes
/// (a 1 MiB body of `[0,0,0,...]` would otherwise become half a million values).
pub const MAX_JSON_VALUES: usize = 20_000;

/// Parses JSON into values, refusing bodies with more than [`MAX_JSON_VALUES`] values
/// before any allocation (a count over the bytes, strings skipped).
pub fn parse_json(bytes: &[u8]) -> Result<Value, PayloadError> {
    let mut values = 1usize;
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            // Each comma and each opening bracket starts (at most) one more value.
            b',' | b'[' | b'{' => values += 1,
            _ => {}
        }
        if values > MAX_JSON_VALUES {
            return Err(PayloadError::TooComplex(MAX_JSON_VALUES));
        }
    }
    serde_json::from_slice(bytes).map_err(|e| PayloadError::NotJson(e.to_string()))
}

/// A top-level field as the probe sees it: its text when it is a string, else only what
/// kind of thing it was (the value itself is skipped without being kept).
#[derive(Debug, Default)]
enum Loose {
    #[default]
    Absent,
    Null,
    Str(String),
    Other,
}

impl<'de> serde::Deserialize<'de> for Loose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Loose;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Loose, E> {
                Ok(Loose::Str(v))
            }
            fn visit_unit<E>(self) -> Result<Loose, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E>(self) -> Result<Loose, E> {
                Ok(Loose::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Loose, E> {
                Ok(Loose::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Loose, E> {
                Ok(Loose::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Loose, E> {
                Ok(Loose::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Loose, E> {
                Ok(Loose::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Loose, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Loose, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Loose::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields that make a body an SNS message, read without building a value tree: the
/// rest of the body is skipped. An unauthenticated post costs this much and no more. As
/// with a parsed JSON object, a repeated key takes its last value.
#[derive(Debug, Default)]
struct Probe {
    kind: Loose,
    topic_arn: Loose,
    message: Loose,
    message_id: Loose,
    subject: Loose,
    timestamp: Loose,
    signature_version: Loose,
    signature: Loose,
    signing_cert_url: Loose,
    subscribe_url: Loose,
    token: Loose,
    unsubscribe_url: Loose,
    /// A Lambda event's `Records` (an SNS notification a forwarder passed on as it got it).
    records: Loose,
}

impl<'de> serde::Deserialize<'de> for Probe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Probe;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Probe, A::Error> {
                let mut p = Probe::default();
                while let Some(key) = a.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "Type" => &mut p.kind,
                        "TopicArn" => &mut p.topic_arn,
                        "Message" => &mut p.message,
                        "MessageId" => &mut p.message_id,
                        "Subject" => &mut p.subject,
                        "Timestamp" => &mut p.timestamp,
                        "SignatureVersion" => &mut p.signature_version,
                        "Signature" => &mut p.signature,
                        "SigningCertURL" => &mut p.signing_cert_url,
                        "SubscribeURL" => &mut p.subscribe_url,
                        "Token" => &mut p.token,
                        "UnsubscribeURL" => &mut p.unsubscribe_url,
                        "Records" => &mut p.records,
                        _ => {
                            a.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = a.next_value()?;
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

impl Probe {
    fn read(body: &[u8]) -> Result<Self, PayloadError> {
        let start = body.iter().position(|b| !b.is_ascii_whitespace());
        if start.is_none_or(|i| body[i] != b'{') {
            // Valid JSON of another kind, or not JSON at all: say which (with the same
            // bounds, and the same nesting limit, as any other parse).
            return match parse_json(body) {
                Ok(_) => Err(PayloadError::NotAnObject),
                Err(e) => Err(e),
            };
        }
        serde_json::from_slice(body).map_err(|e| PayloadError::NotJson(e.to_string()))
    }

    fn looks_sns(&self) -> bool {
        matches!(&self.kind, Loose::Str(t) if SNS_TYPES.contains(&t.as_str()))
            || (!matches!(self.topic_arn, Loose::Absent) && !matches!(self.message, Loose::Absent))
    }

    /// The probed fields as a small JSON object, so the one strict SNS parser reads them.
    fn into_sns(self) -> Result<SnsMessage, PayloadError> {
        let mut map = serde_json::Map::new();
        for (key, field) in [
            ("Type", self.kind),
            ("TopicArn", self.topic_arn),
            ("Message", self.message),
            ("MessageId", self.message_id),
            ("Subject", self.subject),
            ("Timestamp", self.timestamp),
            ("SignatureVersion", self.signature_version),
            ("Signature", self.signature),
            ("SigningCertURL", self.signing_cert_url),
            ("SubscribeURL", self.subscribe_url),
            ("Token", self.token),
            ("UnsubscribeURL", self.unsubscribe_url),
        ] {
            let value = match field {
                Loose::Absent => continue,
                Loose::Null => Value::Null,
                Loose::Str(s) => Value::String(s),
                // Present but not a string: the parser names the field.
                Loose::Other => Value::Bool(false),
            };
            map.insert(key.to_owned(), value);
        }
        SnsMessage::parse(&Value::Object(map))
            .map_err(|e| PayloadError::MalformedSns(e.to_string()))
    }
}

/// The SNS notification inside a Lambda event (`{"Records": [{"EventSource": "aws:sns",
/// "Sns": {...}}]}`), read as the SNS envelope it is: Lambda spells two keys its own way
/// (`SigningCertUrl`, `UnsubscribeUrl`) and writes an absent subject as null. Its signature
/// is SNS's, checked as any other.
fn lambda_sns_record(body: &[u8]) -> Result<SnsMessage, PayloadError> {
    let value = parse_json(body)?;
    let records = value["Records"]
        .as_array()
        .ok_or_else(|| PayloadError::InvalidField {
            field: "Records".into(),
            problem: "expected an array of Lambda event records".into(),
        })?;
    let [record] = records.as_slice() else {
        return Err(PayloadError::InvalidField {
            field: "Records".into(),
            problem: format!("expected one SNS record, got {}", records.len()),
        });
    };
    let Some(Value::Object(sns)) = record.get("Sns") else {
        return Err(PayloadError::UnsupportedEvent(format!(
            "a Lambda event from {}, not from SNS",
            record["EventSource"]
                .as_str()
                .unwrap_or("an unknown source")
        )));
    };
    let mut map = serde_json::Map::new();
    for (key, v) in sns {
        let key = match key.as_str() {
            "SigningCertUrl" => "SigningCertURL",
            "UnsubscribeUrl" => "UnsubscribeURL",
            "SubscribeUrl" => "SubscribeURL",
            other => other,
        };
        if !v.is_null() {
            map.insert(key.to_owned(), v.clone());
        }
    }
    SnsMessage::parse(&Value::Object(map)).map_err(|e| PayloadError::MalformedSns(e.to_string()))
}

/// Whether a request carries any worker-daemon header.
pub fn has_sqsd_headers(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .any(|k| k.as_str().starts_with("x-aws-sqsd-"))
}

/// Reads one request, believing its worker-daemon headers (for commands and tests that
/// have no network peer; the server decides with [`receive_from`]).
pub fn receive(headers: &HeaderMap, body: &[u8]) -> Result<Received, PayloadError> {
    receive_from(headers, body, true)
}

/// Reads one request: who sent it and what its body is. `believe_sqsd` says whether the
/// worker-daemon headers, if any, may be taken at their word (the gate decides: a request
/// from outside the instance is never the daemon's, whatever it claims). Bodies that are
/// not JSON objects are refused here; a bare body is only probed, and parsed into values
/// by [`Received::into_alarm`] once the request is admitted.
pub fn receive_from(
    headers: &HeaderMap,
    body: &[u8],
    believe_sqsd: bool,
) -> Result<Received, PayloadError> {
    let is_sqsd = believe_sqsd && has_sqsd_headers(headers);
    let sns_type = header(headers, "x-amz-sns-message-type");
    let raw_delivery =
        header(headers, "x-amz-sns-rawdelivery").is_some_and(|v| v.eq_ignore_ascii_case("true"));

    let mut delivery = Delivery::new(if is_sqsd {
        DeliveryKind::Sqsd
    } else if sns_type.is_some() || raw_delivery {
        DeliveryKind::Sns
    } else {
        DeliveryKind::Direct
    });
    if is_sqsd {
        delivery.sqsd_message_id = id_header(headers, "x-aws-sqsd-msgid")?;
        delivery.sqsd_receive_count =
            header(headers, "x-aws-sqsd-receive-count").and_then(|c| c.parse().ok());
        delivery.sqsd_queue = header(headers, "x-aws-sqsd-queue").map(str::to_owned);
        if let Some(task) = header(headers, "x-aws-sqsd-taskname") {
            return Ok(Received {
                delivery,
                body: Body::Periodic(task.to_owned()),
            });
        }
    }
    delivery.sns_raw = raw_delivery;
    if raw_delivery {
        delivery.sns_message_id = id_header(headers, "x-amz-sns-message-id")?;
        delivery.sns_topic_arn = header(headers, "x-amz-sns-topic-arn").map(str::to_owned);
    }

    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(PayloadError::EmptyBody);
    }
    let probe = Probe::read(body)?;

    // An SNS envelope: the header says so, or the body carries an SNS Type, or (as the
    // original service decided) it has both TopicArn and Message; or a Lambda function's
    // SNS event passed on whole (`Records[0].Sns`).
    let lambda = !raw_delivery && !probe.looks_sns() && !matches!(probe.records, Loose::Absent);
    if !raw_delivery && (sns_type.is_some() || probe.looks_sns() || lambda) {
        let msg = match lambda {
            true => lambda_sns_record(body)?,
            false => probe.into_sns()?,
        };
        if let Some(t) = sns_type.filter(|t| *t != msg.kind.as_str()) {
            return Err(PayloadError::InvalidField {
                field: "Type".into(),
                problem: format!("header says {t}, body says {}", msg.kind.as_str()),
            });
        }
        delivery.sns_message_id = Some(msg.message_id.clone());
        delivery.sns_topic_arn = Some(msg.topic_arn.as_str().to_owned());
        return Ok(Received {
            delivery,
            body: Body::Sns(Box::new(msg)),
        });
    }
    Ok(Received {
        delivery,
        body: Body::Bare(body.to_vec()),
    })
}

/// A message id from a header: it becomes a ledger key, so it is bounded (SQS and SNS ids are
/// 36 to 100 characters).
fn id_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, PayloadError> {
    match header(headers, name) {
        Some(id) if id.len() > 128 => Err(PayloadError::InvalidField {
            field: name.to_owned(),
            problem: "longer than 128 characters".into(),
        }),
        other => Ok(other.map(str::to_owned)),
    }
}

impl Received {
    /// Opens the envelope (if any) and parses the alarm inside. For an SNS message, call
    /// this only once its signature has been checked (or deliberately not checked).
    pub fn into_alarm(self) -> Result<(Delivery, Alarm), PayloadError> {
        match self.into_message()? {
            (delivery, Message::Alarm(alarm)) => Ok((delivery, *alarm)),
            (_, Message::CaseUpdate(u)) => Err(PayloadError::UnsupportedEvent(format!(
                "an AWS Support event about {}, not an alarm",
                u.label()
            ))),
            (_, Message::Ignored { why, .. }) => Err(PayloadError::UnsupportedEvent(why)),
            (_, Message::SmsReply(_)) => Err(PayloadError::UnsupportedEvent(
                "a text message reply, not an alarm".into(),
            )),
            (delivery, Message::Alarms(mut alarms)) if alarms.len() == 1 => {
                Ok((delivery, alarms.remove(0)))
            }
            (_, Message::Alarms(alarms)) => Err(PayloadError::UnsupportedEvent(format!(
                "a webhook of {} alerts, each an alarm of its own",
                alarms.len()
            ))),
        }
    }

    /// Opens the envelope (if any) and parses what is inside: an alarm, or an AWS Support
    /// event about a case.
    pub fn into_message(self) -> Result<(Delivery, Message), PayloadError> {
        let mut bare_len = 0;
        let value = match self.body {
            Body::Bare(bytes) => {
                bare_len = bytes.len();
                parse_json(&bytes)?
            }
            Body::Sns(msg) => {
                if msg.kind != MessageKind::Notification {
                    return Err(PayloadError::UnsupportedEvent(format!(
                        "SNS {} carries no alarm",
                        msg.kind.as_str()
                    )));
                }
                match parse_json(msg.message.as_bytes()) {
                    Err(PayloadError::NotJson(e)) => {
                        return Err(PayloadError::SnsMessageNotJson(e));
                    }
                    other => other?,
                }
            }
            Body::Periodic(name) => {
                return Err(PayloadError::UnsupportedEvent(format!(
                    "periodic task {name:?} carries no alarm"
                )));
            }
        };
        // Each field is checked first (its error names it); then the whole. An SNS Message is
        // bounded the same way, by SNS and in `SnsMessage::parse`.
        let too_large =
            |parsed: &Result<_, PayloadError>| parsed.is_ok() && bare_len > MAX_ALARM_BYTES;
        if let Some(update) = CaseUpdate::parse(&value) {
            if too_large(&update) {
                return Err(PayloadError::TooLarge(MAX_ALARM_BYTES));
            }
            return Ok((self.delivery, Message::CaseUpdate(update?)));
        }
        if let Some(reply) = crate::domain::sms_reply::SmsReply::parse(&value) {
            return Ok((self.delivery, Message::SmsReply(reply?)));
        }
        if let Some(why) = value.as_object().and_then(crate::domain::alarm::ignorable) {
            crate::domain::alarm::check_strings(&value)?;
            let about = value["detail"]["alarmName"]
                .as_str()
                .filter(|n| {
                    crate::domain::alarm::check_strings(&Value::String((*n).into())).is_ok()
                })
                .map(|n| crate::escape::printable(n).chars().take(255).collect())
                .unwrap_or_else(|| "CloudWatch".to_owned());
            return Ok((self.delivery, Message::Ignored { about, why }));
        }
        if let Some(obj) = value
            .as_object()
            .filter(|o| crate::domain::alarm::alertmanager::is_webhook(o))
        {
            let alarms = crate::domain::alarm::alertmanager::parse(obj)?;
            if bare_len > MAX_ALARM_BYTES {
                return Err(PayloadError::TooLarge(MAX_ALARM_BYTES));
            }
            return Ok((self.delivery, Message::Alarms(alarms)));
        }
        let alarm = Alarm::parse(value).map_err(|e| match e {
            // Inside an envelope, "not an object" means the Message held JSON of the
            // wrong kind: say where.
            PayloadError::NotAnObject if self.delivery.sns_message_id.is_some() => {
                PayloadError::SnsMessageNotJson("the Message is JSON but not an object".into())
            }
            other => other,
        })?;
        if bare_len > MAX_ALARM_BYTES {
            return Err(PayloadError::TooLarge(MAX_ALARM_BYTES));
        }
        Ok((self.delivery, Message::Alarm(Box::new(alarm))))
    }
}

#[cfg(test)]
mod tests;
