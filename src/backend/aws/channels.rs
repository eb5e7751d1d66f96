//! Where pages' messages go on AWS: text messages through Amazon SNS (`Publish` to a phone
//! number, as transactional SMS) and e-mail through Amazon SES (`SendEmail`, API v2, from
//! `PAGE_EMAIL_FROM`, a verified identity). Each is one call through the SDK; what the
//! provider refuses comes back as the message's failure, on the page's timeline.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sns::types::MessageAttributeValue;

use crate::domain::page::Channel;
use crate::ports::PortError;
use crate::ports::pages::{OutMessage, Transport};

/// Text messages through Amazon SNS.
pub struct SnsSms {
    pub client: aws_sdk_sns::Client,
}

#[async_trait]
impl Transport for SnsSms {
    async fn send(&self, m: &OutMessage) -> Result<(), PortError> {
        debug_assert_eq!(m.channel, Channel::Sms);
        // Transactional: delivered for reliability rather than cost (a page is not an
        // advert), and not held back by quiet hours the way promotional SMS may be.
        let kind = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("Transactional")
            .build()
            .map_err(|e| PortError::caused(format!("SMS attributes: {e}"), e))?;
        self.client
            .publish()
            .phone_number(&m.to)
            .message(&m.text)
            .message_attributes("AWS.SNS.SMS.SMSType", kind)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PortError::caused(super::describe(&e), e))
    }
}

/// E-mail through Amazon SES.
pub struct SesEmail {
    pub client: aws_sdk_sesv2::Client,
    /// `PAGE_EMAIL_FROM`: an identity verified in SES.
    pub from: String,
}

/// A mail's subject: the message's first sentence, bounded.
fn subject(m: &OutMessage) -> String {
    let first = m.text.split(". ").next().unwrap_or(&m.text);
    match first.chars().count() > 120 {
        true => first.chars().take(120).collect::<String>() + "…",
        false => first.to_owned(),
    }
}

#[async_trait]
impl Transport for SesEmail {
    async fn send(&self, m: &OutMessage) -> Result<(), PortError> {
        let content = |text: String| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| PortError::caused(format!("e-mail content: {e}"), e))
        };
        // Plain text only: nothing from an alarm is ever rendered as HTML in a mail client.
        let message = Message::builder()
            .subject(content(subject(m))?)
            .body(Body::builder().text(content(m.text.clone())?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&m.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PortError::caused(super::describe(&e), e))
    }
}

/// One-way voice calls through AWS End User Messaging (`SendVoiceMessage`): the message
/// spoken slowly, twice; acknowledged by the other means (the link, a reply, the command).
pub struct EndUserVoice {
    pub client: aws_sdk_pinpointsmsvoicev2::Client,
    /// `PAGE_VOICE_FROM`: the origination phone number (or its ARN).
    pub from: String,
}

/// The spoken message as SSML: slow, said twice, the text escaped.
fn ssml(text: &str) -> String {
    let t = crate::escape::html(text);
    format!(
        "<speak><prosody rate=\"slow\">{t}</prosody><break time=\"2s\"/>\
         <prosody rate=\"slow\">{t}</prosody></speak>"
    )
}

#[async_trait]
impl Transport for EndUserVoice {
    async fn send(&self, m: &OutMessage) -> Result<(), PortError> {
        use aws_sdk_pinpointsmsvoicev2::types::{VoiceId, VoiceMessageBodyTextType};
        debug_assert_eq!(m.channel, Channel::Voice);
        self.client
            .send_voice_message()
            .destination_phone_number(&m.to)
            .origination_identity(&self.from)
            .message_body(ssml(&m.text))
            .message_body_text_type(VoiceMessageBodyTextType::Ssml)
            .voice_id(VoiceId::Joanna)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PortError::caused(super::describe(&e), e))
    }
}
