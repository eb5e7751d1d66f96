//! Where each message goes, by its channel: the providers configured for SMS, e-mail and
//! voice, and the person's own webhook. A channel with no provider fails its messages with
//! the setting that is missing, so the failure is on the page's timeline (and the other
//! channels still reach the person) rather than silently dropped.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::page::Channel;
use crate::ports::PortError;
use crate::ports::pages::{OutMessage, Transport};

/// One transport per channel.
#[derive(Default, Clone)]
pub struct Channels {
    pub sms: Option<Arc<dyn Transport>>,
    pub email: Option<Arc<dyn Transport>>,
    pub voice: Option<Arc<dyn Transport>>,
    pub webhook: Option<Arc<dyn Transport>>,
    /// The support desk, for what the AWS case is told.
    pub case: Option<Arc<dyn Transport>>,
}

#[async_trait]
impl Transport for Channels {
    async fn send(&self, m: &OutMessage) -> Result<(), PortError> {
        let (transport, missing) = match m.channel {
            Channel::Sms => (&self.sms, "no SMS provider is configured"),
            Channel::Email => (&self.email, "no e-mail provider: set PAGE_EMAIL_FROM"),
            Channel::Voice => (&self.voice, "no voice provider is configured"),
            Channel::Webhook => (&self.webhook, "no webhook client"),
            Channel::Case => (&self.case, "no support desk"),
        };
        match transport {
            Some(t) => t.send(m).await,
            None => Err(PortError::from(missing)),
        }
    }
}

/// A person's own webhook (`webhook` in the on-duty file, https): the message posted as a
/// Slack-compatible `{"text": ...}`, with the page's number.
pub struct PersonalWebhook {
    client: reqwest::Client,
}

impl PersonalWebhook {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // A redirect could carry the page elsewhere: the URL in the file is the one.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .build()?;
        Ok(Self { client })
    }
}

#[async_trait]
impl Transport for PersonalWebhook {
    async fn send(&self, m: &OutMessage) -> Result<(), PortError> {
        let body = serde_json::json!({
            "text": crate::escape::slack(&m.text),
            "page": m.page.0,
        });
        super::webhook::post_json(&self.client, &m.to, &body).await
    }
}
