//! People told: what the service did about a case, sent to the team, not only to AWS
//! Support's cc list. A case opened, AWS replied, a case resolved, an alarm that could not
//! become a case, an alarm folded into the storm case.
//!
//! Sent off the request path: the case logic hands a [`Notice`] to the [`Notifier`], which
//! queues it (bounded) and returns at once; a background task sends it to every sink, retrying
//! with backoff. A notice that cannot be sent is logged and counted (`Notify/Failed`), and
//! never blocks or fails a delivery. Sinks: an SNS topic (`NOTIFY_TOPIC_ARN`), a
//! Slack-compatible incoming webhook (`NOTIFY_WEBHOOK_URL`), and on the embedded default the
//! local ledger itself (`cases show` lists what would have been sent).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::warn;

use crate::metrics::{Event, MetricsSink};

/// One thing to tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Notice {
    Opened {
        case_id: String,
        subject: String,
        severity: String,
        alarm: String,
    },
    Replied {
        case_id: String,
        display_id: Option<String>,
        /// The first lines of AWS's communication, when the desk can say.
        excerpt: Option<String>,
    },
    Resolved {
        case_id: String,
        alarm: String,
    },
    Failed {
        alarm: String,
        reason: String,
    },
    Folded {
        case_id: String,
        alarm: String,
    },
}

/// Where a case is seen in the AWS Support Center.
pub fn case_link(case_id: &str, display_id: Option<&str>) -> String {
    match display_id {
        Some(d) => format!(
            "https://support.console.aws.amazon.com/support/home#/case/?displayId={d}&language=en"
        ),
        None => {
            format!("https://support.console.aws.amazon.com/support/home#/case/?caseId={case_id}")
        }
    }
}

impl Notice {
    /// The case it is about, if any.
    pub fn case_id(&self) -> Option<&str> {
        match self {
            Self::Opened { case_id, .. }
            | Self::Replied { case_id, .. }
            | Self::Resolved { case_id, .. }
            | Self::Folded { case_id, .. } => Some(case_id),
            Self::Failed { .. } => None,
        }
    }

    /// One short message, the same for every sink, as plain text (control characters in the
    /// payload's parts removed).
    pub fn text(&self) -> String {
        self.render(&|s| crate::escape::printable(s).into_owned())
    }

    /// The message for a Slack-compatible webhook: the payload's parts (and the link's `&`)
    /// escaped for mrkdwn, the message's own formatting (the quote's `>`) kept.
    pub fn slack_text(&self) -> String {
        self.render(&crate::escape::slack)
    }

    /// The message, with every part that comes from outside (names, subjects, AWS's reply,
    /// reasons, ids, links) passed through `esc`.
    fn render(&self, esc: &dyn Fn(&str) -> String) -> String {
        let link = |case_id: &str, display_id: Option<&str>| esc(&case_link(case_id, display_id));
        match self {
            Self::Opened {
                case_id,
                subject,
                severity,
                alarm,
            } => format!(
                "AWS Support case opened for alarm {}: \"{}\" (severity {}). {}",
                esc(alarm),
                esc(subject),
                esc(severity),
                link(case_id, None)
            ),
            Self::Replied {
                case_id,
                display_id,
                excerpt,
            } => {
                let mut t = format!(
                    "AWS Support replied on case {}. {}",
                    esc(display_id.as_deref().unwrap_or(case_id)),
                    link(case_id, display_id.as_deref())
                );
                if let Some(e) = excerpt {
                    t.push_str("\n> ");
                    t.push_str(&esc(e).replace('\n', "\n> "));
                }
                t
            }
            Self::Resolved { case_id, alarm } => format!(
                "AWS Support case {} (alarm {}) was resolved; the next alarm opens a new case. {}",
                esc(case_id),
                esc(alarm),
                link(case_id, None)
            ),
            Self::Failed { alarm, reason } => format!(
                "Alarm {} could not become an AWS Support case: {}. The message stays \
                 in the dead-letter queue until redriven.",
                esc(alarm),
                esc(reason)
            ),
            Self::Folded { case_id, alarm } => format!(
                "Alarm storm: {} was added to the storm case {} instead of opening its own. {}",
                esc(alarm),
                esc(case_id),
                link(case_id, None)
            ),
        }
    }
}

/// The first few lines of a communication, for a notice.
pub fn excerpt(body: &str) -> String {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    let mut text = lines.join("\n");
    if text.chars().count() > 300 {
        text = text.chars().take(300).collect::<String>() + "…";
    }
    text
}

/// One destination for notices.
#[async_trait]
pub trait NoticeSink: Send + Sync {
    fn name(&self) -> &'static str;
    async fn send(&self, notice: &Notice) -> Result<(), String>;
}

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

    async fn send(&self, notice: &Notice) -> Result<(), String> {
        let subject = match notice {
            Notice::Opened { .. } => "AWS Support case opened",
            Notice::Replied { .. } => "AWS Support replied",
            Notice::Resolved { .. } => "AWS Support case resolved",
            Notice::Failed { .. } => "Alarm could not become a case",
            Notice::Folded { .. } => "Alarm storm",
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
            .map_err(|e| crate::errors::describe(&e))
    }
}

/// A Slack-compatible incoming webhook: `{"text": ...}`.
pub struct WebhookSink {
    pub client: reqwest::Client,
    pub url: String,
}

impl WebhookSink {
    pub fn new(url: String) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client, url })
    }
}

#[async_trait]
impl NoticeSink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, notice: &Notice) -> Result<(), String> {
        let resp = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            // mrkdwn: payload text never becomes a mention or a disguised link.
            .body(serde_json::json!({ "text": notice.slack_text() }).to_string())
            .send()
            .await
            // The URL is a secret (it is the webhook's credential): never in the error.
            .map_err(|e| format!("webhook request failed: {}", e.without_url()))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(format!("webhook answered HTTP {}", s.as_u16())),
        }
    }
}

/// How many notices may wait to be sent before new ones are dropped (and counted).
const QUEUE: usize = 1024;

/// Hands notices to a background sender; `notify` never waits.
#[derive(Clone)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Notice>>,
    metrics: Arc<dyn MetricsSink>,
}

impl Notifier {
    /// Tells nobody.
    pub fn none() -> Self {
        Self {
            tx: None,
            metrics: Arc::new(crate::metrics::NoMetrics),
        }
    }

    /// Starts the sender for these sinks; `retry` is the first pause between attempts
    /// (doubled, three attempts in all).
    pub fn start(
        sinks: Vec<Arc<dyn NoticeSink>>,
        metrics: Arc<dyn MetricsSink>,
        retry: Duration,
    ) -> Self {
        if sinks.is_empty() {
            return Self { tx: None, metrics };
        }
        let (tx, mut rx) = mpsc::channel::<Notice>(QUEUE);
        let counted = metrics.clone();
        tokio::spawn(async move {
            while let Some(notice) = rx.recv().await {
                for sink in &sinks {
                    let mut pause = retry;
                    let mut attempt = 1;
                    loop {
                        match sink.send(&notice).await {
                            Ok(()) => break,
                            Err(e) if attempt < 3 => {
                                warn!(sink = sink.name(), attempt, error = %e, "notice not sent; retrying");
                                tokio::time::sleep(pause).await;
                                pause *= 2;
                                attempt += 1;
                            }
                            Err(e) => {
                                warn!(sink = sink.name(), error = %e, notice = ?notice, "notice could not be sent");
                                counted.record(Event::NotifyFailed);
                                break;
                            }
                        }
                    }
                }
            }
        });
        Self {
            tx: Some(tx),
            metrics,
        }
    }

    pub fn notify(&self, notice: Notice) {
        let Some(tx) = &self.tx else {
            return;
        };
        if let Err(e) = tx.try_send(notice) {
            warn!(error = %crate::errors::Chain(&e), "too many notices waiting; one was dropped");
            self.metrics.record(Event::NotifyFailed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_say_what_happened_with_a_link() {
        let n = Notice::Opened {
            case_id: "case-1".into(),
            subject: "prod-db-cpu".into(),
            severity: "high".into(),
            alarm: "prod-db-cpu".into(),
        };
        assert_eq!(
            n.text(),
            "AWS Support case opened for alarm prod-db-cpu: \"prod-db-cpu\" (severity high). \
             https://support.console.aws.amazon.com/support/home#/case/?caseId=case-1"
        );
        let r = Notice::Replied {
            case_id: "case-1".into(),
            display_id: Some("1234563851".into()),
            excerpt: Some(excerpt("Hello,\n\nwe are looking into it.\nline 3\nline 4")),
        };
        assert!(r.text().contains("displayId=1234563851"), "{}", r.text());
        assert!(
            r.text()
                .ends_with("> Hello,\n> we are looking into it.\n> line 3"),
            "{}",
            r.text()
        );
    }
}
