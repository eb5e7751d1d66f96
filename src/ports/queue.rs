//! The work queue `consume` and `redrive` read (SQS on AWS), as the consumer needs it: a
//! message is received hidden, then deleted when done, hidden again for a retry, or handed
//! back at once.

use std::time::Duration;

use async_trait::async_trait;

/// One message received from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    /// What deletes or hides this receipt of it.
    pub receipt: String,
    pub body: String,
    /// How many times it was received, this time included.
    pub receive_count: u32,
    pub sender_id: Option<String>,
    /// Its string message attributes, by name.
    pub attributes: Vec<(String, String)>,
}

/// A queue call that failed.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {detail}")]
pub struct QueueError {
    pub operation: &'static str,
    pub detail: String,
}

#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// The queue's name, for the worker daemon's `X-Aws-Sqsd-Queue` header and the log.
    fn name(&self) -> &str;
    /// Up to `max` messages (at most 10), waiting up to `wait` for the first; each hidden
    /// for `hide_for`, or the queue's own visibility timeout.
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        hide_for: Option<Duration>,
    ) -> Result<Vec<QueueMessage>, QueueError>;
    /// Done: out of the queue.
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;
    /// Hidden for `hidden_for` from now (zero: visible again at once).
    async fn hide(&self, receipt: &str, hidden_for: Duration) -> Result<(), QueueError>;
    /// Visible again at once, as many at a time as the queue takes; how many it took back
    /// (the others come back after the queue's visibility timeout).
    async fn hand_back(&self, receipts: &[String]) -> usize;
}
