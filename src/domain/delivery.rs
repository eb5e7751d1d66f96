//! How something reached the service and what it turned out to be: who delivered it (with
//! the ids that make a redelivery recognisable), the kind of SNS message it came in, and
//! what its body means once opened. `inbound` reads these from requests; the case logic
//! and the ledger decide and record by them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::alarm::Alarm;
use crate::domain::case_event::CaseUpdate;

/// Who delivered the request (recorded with each decision as `sqsd`, `sns`, `direct`, `task`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum DeliveryKind {
    Sqsd,
    Sns,
    Direct,
    /// Work the service gives itself (an alarm held during maintenance, raised later).
    Task,
}

impl DeliveryKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Reads a recorded kind back.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

impl fmt::Display for DeliveryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What makes a delivery recognisable when it comes again, in the one form the ledger keeps
/// (`sqs:ID`, `sns:ID`, `event:KEY`, `support-event:ID`): written here only, so a key made
/// by the HTTP edge, the consumer, the case logic and the memory of recent keys is the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HandledKey {
    /// The SQS message (`X-Aws-Sqsd-Msgid`): every receive of it.
    Sqs(String),
    /// The SNS message: every retry of one notification.
    Sns(String),
    /// The alarm's state change itself, by any path (`Alarm::event_key`).
    Event(String),
    /// An AWS Support case update event, by its EventBridge id.
    SupportEvent(String),
}

impl fmt::Display for HandledKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqs(id) => write!(f, "sqs:{id}"),
            Self::Sns(id) => write!(f, "sns:{id}"),
            Self::Event(key) => write!(f, "event:{key}"),
            Self::SupportEvent(id) => write!(f, "support-event:{id}"),
        }
    }
}

impl From<HandledKey> for String {
    fn from(key: HandledKey) -> Self {
        key.to_string()
    }
}

/// How a request reached the service, with the ids that make a redelivery recognisable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub kind: DeliveryKind,
    /// `X-Aws-Sqsd-Msgid`: the same on every receive of one SQS message.
    pub sqsd_message_id: Option<String>,
    pub sqsd_receive_count: Option<u32>,
    pub sqsd_queue: Option<String>,
    /// The SNS MessageId: the same on every retry of one notification.
    pub sns_message_id: Option<String>,
    pub sns_topic_arn: Option<String>,
    /// `x-amz-sns-rawdelivery: true`: SNS sent the bare message, unsigned.
    pub sns_raw: bool,
}

impl Delivery {
    pub fn new(kind: DeliveryKind) -> Self {
        Self {
            kind,
            sqsd_message_id: None,
            sqsd_receive_count: None,
            sqsd_queue: None,
            sns_message_id: None,
            sns_topic_arn: None,
            sns_raw: false,
        }
    }

    /// The delivery's own id, for the log and the ledger.
    pub fn id(&self) -> Option<&str> {
        self.sns_message_id
            .as_deref()
            .or(self.sqsd_message_id.as_deref())
    }

    /// Keys under which this delivery is remembered once handled.
    pub fn dedupe_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(id) = &self.sqsd_message_id {
            keys.push(HandledKey::Sqs(id.clone()).into());
        }
        if let Some(id) = &self.sns_message_id {
            keys.push(HandledKey::Sns(id.clone()).into());
        }
        keys
    }
}

/// The `Type` of an SNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Notification => "Notification",
            MessageKind::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageKind::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a body means, once opened.
#[derive(Debug, Clone)]
pub enum Message {
    Alarm(Box<Alarm>),
    /// AWS Support about one of its cases.
    CaseUpdate(CaseUpdate),
    /// News no case needs (an alarm's configuration changed): recorded as ignored, with why.
    Ignored {
        about: String,
        why: String,
    },
    /// A group of alerts in one body (Alertmanager, Grafana): each an alarm of its own.
    Alarms(Vec<Alarm>),
    /// A text message a person sent back ("ACK 12"), as AWS delivers two-way SMS.
    SmsReply(crate::domain::sms_reply::SmsReply),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_keys_keep_the_forms_the_ledger_has_always_held() {
        // Stored in SQLite and DynamoDB by earlier versions: a change would make every
        // redelivery of an old message look new.
        let forms = [
            (HandledKey::Sqs("abc-123".into()), "sqs:abc-123"),
            (HandledKey::Sns("m-1".into()), "sns:m-1"),
            (HandledKey::Event("k|ALARM|t".into()), "event:k|ALARM|t"),
            (HandledKey::SupportEvent("e-9".into()), "support-event:e-9"),
        ];
        for (key, stored) in forms {
            assert_eq!(String::from(key), stored);
        }
        let mut d = Delivery::new(DeliveryKind::Sqsd);
        d.sqsd_message_id = Some("abc-123".into());
        d.sns_message_id = Some("m-1".into());
        assert_eq!(d.dedupe_keys(), ["sqs:abc-123", "sns:m-1"]);
    }
}
