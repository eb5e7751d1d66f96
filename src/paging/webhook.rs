//! A Slack-compatible incoming webhook (`NOTIFY_WEBHOOK_URL`): `{"text": ...}`, the text
//! escaped for Slack's mrkdwn.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::notice::Notice;
use crate::ports::PortError;
use crate::ports::notify::NoticeSink;

/// A Slack-compatible incoming webhook: `{"text": ...}`.
pub struct WebhookSink {
    pub client: reqwest::Client,
    pub url: String,
}

impl WebhookSink {
    pub fn new(url: String) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, url })
    }
}

#[async_trait]
impl NoticeSink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, notice: &Notice) -> Result<(), PortError> {
        // mrkdwn: payload text never becomes a mention or a disguised link.
        let body = serde_json::json!({ "text": notice.slack_text() });
        post_json(&self.client, &self.url, &body).await
    }
}

/// Posts JSON to a webhook: `Ok` on a 2xx answer. The URL is a secret (it is the webhook's
/// credential): never in the error.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), PortError> {
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| {
            let e = e.without_url();
            PortError::caused(format!("webhook request failed: {e}"), e)
        })?;
    match resp.status() {
        s if s.is_success() => Ok(()),
        s => Err(format!("webhook answered HTTP {}", s.as_u16()).into()),
    }
}
