//! How something reached the service and what it turned out to be: who delivered it (with
//! the ids that make a redelivery recognisable), the kind of SNS message it came in, and
//! what its body means once opened. `inbound` reads these from requests; the case logic
//! and the ledger decide and record by them.

use std::fmt;

use serde::Serialize;

use crate::domain::alarm::Alarm;
use crate::domain::case_event::CaseUpdate;

/// Who delivered the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    Sqsd,
    Sns,
    Direct,
    /// Work the service gives itself (an alarm held during maintenance, raised later).
    Task,
}

impl DeliveryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqsd => "sqsd",
            Self::Sns => "sns",
            Self::Direct => "direct",
            Self::Task => "task",
        }
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
            keys.push(format!("sqs:{id}"));
        }
        if let Some(id) = &self.sns_message_id {
            keys.push(format!("sns:{id}"));
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
}
