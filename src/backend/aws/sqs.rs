//! The work queue on SQS: long polls, with the system and message attributes the worker
//! daemon's headers carry.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use tracing::warn;

use crate::ports::queue::{QueueError, QueueMessage, WorkQueue};

pub struct SqsQueue {
    client: Client,
    url: String,
    name: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: &str) -> Self {
        Self {
            client,
            url: url.to_owned(),
            name: url.rsplit('/').next().unwrap_or(url).to_owned(),
        }
    }
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// The message as the consumer sees it; `None` (with a warning) when SQS left out its id or
/// receipt handle, which nothing can be done with.
fn message(m: Message) -> Option<QueueMessage> {
    let attr = |a: MessageSystemAttributeName| m.attributes().and_then(|x| x.get(&a)).cloned();
    let receive_count = attr(MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let sender_id = attr(MessageSystemAttributeName::SenderId);
    let attributes = m
        .message_attributes()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned())))
        .collect();
    let (Some(id), Some(receipt)) = (m.message_id, m.receipt_handle) else {
        warn!("SQS answered a message without an id or receipt handle; left to the queue");
        return None;
    };
    Some(QueueMessage {
        id,
        receipt,
        body: m.body.unwrap_or_default(),
        receive_count,
        sender_id,
        attributes,
    })
}

fn failed(operation: &'static str, detail: String) -> QueueError {
    QueueError { operation, detail }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        hide_for: Option<Duration>,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(seconds(wait))
            .set_visibility_timeout(hide_for.map(seconds))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| failed("ReceiveMessage", super::describe(&e)))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(message)
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("DeleteMessage", super::describe(&e)))
    }

    async fn hide(&self, receipt: &str, hidden_for: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(hidden_for))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("ChangeMessageVisibility", super::describe(&e)))
    }

    async fn hand_back(&self, receipts: &[String]) -> usize {
        use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry as Entry;
        let mut returned = 0;
        for chunk in receipts.chunks(10) {
            let entries: Vec<Entry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, receipt)| {
                    Entry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            match self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    for f in out.failed() {
                        warn!(
                            code = f.code(),
                            message = f.message().unwrap_or("-"),
                            "a message could not be handed back; it returns after the queue's visibility timeout"
                        );
                    }
                    returned += out.successful().len();
                }
                Err(e) => {
                    warn!(error = %super::describe(&e), messages = chunk.len(), "messages could not be handed back; they return after the queue's visibility timeout")
                }
            }
        }
        returned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_keeps_what_the_worker_daemons_headers_need() {
        let m = Message::builder()
            .message_id("m-1")
            .receipt_handle("r")
            .body("{}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .attributes(MessageSystemAttributeName::SenderId, "AIDAEXAMPLE")
            .message_attributes(
                "team",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("db")
                    .build()
                    .expect("attr"),
            )
            .build();
        let m = message(m).expect("a message");
        assert_eq!((m.id.as_str(), m.receipt.as_str()), ("m-1", "r"));
        assert_eq!(m.receive_count, 3);
        assert_eq!(m.sender_id.as_deref(), Some("AIDAEXAMPLE"));
        assert_eq!(m.attributes, [("team".to_owned(), "db".to_owned())]);
        assert!(message(Message::builder().body("{}").build()).is_none());
        let q = SqsQueue::new(
            Client::from_conf(
                aws_sdk_sqs::Config::builder()
                    .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                    .build(),
            ),
            "https://sqs.us-east-1.amazonaws.com/123456789012/alarms",
        );
        assert_eq!(q.name(), "alarms");
    }
}
