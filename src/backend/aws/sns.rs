//! Notices to an SNS topic (`NOTIFY_TOPIC_ARN`): e-mail, SMS, chat, whatever the topic's
//! subscribers are.

use async_trait::async_trait;

use crate::domain::notice::Notice;
use crate::ports::PortError;
use crate::ports::notify::NoticeSink;

/// An SNS topic: the message is the notice's text, the subject its kind.
pub struct SnsSink {
    pub client: aws_sdk_sns::Client,
    pub topic_arn: String,
}

#[async_trait]
impl NoticeSink for SnsSink {
    fn name(&self) -> &'static str {
        "sns"
    }

    async fn send(&self, notice: &Notice) -> Result<(), PortError> {
        let subject = match notice {
            Notice::Opened { .. } => "AWS Support case opened",
            Notice::Replied { .. } => "AWS Support replied",
            Notice::Resolved { .. } => "AWS Support case resolved",
            Notice::Failed { .. } => "Alarm could not become a case",
            Notice::Unanswered { .. } => "Nobody acknowledged a page",
            Notice::Folded { .. } | Notice::Storm { .. } => "Alarm storm",
        };
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            // E-mail and SMS are plain text: nothing from a payload may rewrite the screen.
            .message(notice.text())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PortError::caused(super::describe(&e), e))
    }
}
