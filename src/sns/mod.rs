//! Amazon SNS messages (placeholder until the verifier lands).

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "Notification",
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SnsMessage {
    pub kind: MessageKind,
    pub message_id: String,
    pub topic_arn: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    #[error("malformed SNS message: field {0}")]
    Malformed(&'static str),
}

impl SnsMessage {
    pub fn parse(v: &Value) -> Result<Self, SnsError> {
        let s = |k: &'static str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(SnsError::Malformed(k))
        };
        let kind = match s("Type")?.as_str() {
            "Notification" => MessageKind::Notification,
            "SubscriptionConfirmation" => MessageKind::SubscriptionConfirmation,
            "UnsubscribeConfirmation" => MessageKind::UnsubscribeConfirmation,
            _ => return Err(SnsError::Malformed("Type")),
        };
        Ok(Self {
            kind,
            message_id: s("MessageId")?,
            topic_arn: s("TopicArn")?,
            message: s("Message")?,
        })
    }
}
