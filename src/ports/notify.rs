//! Where notices go, and where they wait until they have gone: the sinks the team is told
//! through, and the durable outbox in the ledger's own store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::notice::Notice;
use crate::ports::PortError;
use crate::ports::ledger::LedgerError;

/// One destination for notices.
#[async_trait]
pub trait NoticeSink: Send + Sync {
    fn name(&self) -> &'static str;
    async fn send(&self, notice: &Notice) -> Result<(), PortError>;
}

/// A notice in the outbox, leased to whoever took it.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub id: String,
    pub notice: Notice,
    /// Attempts made so far (per notice: each round tries every sink still pending).
    pub attempts: u32,
    /// The sinks still to be told; `None`: every sink (no attempt yet).
    pub pending: Option<Vec<String>>,
}

/// What the outbox says about one notice, for `cases show`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxState {
    pub notice: Notice,
    pub queued_at: DateTime<Utc>,
    /// `pending` (to be sent, or tried again at `next_at`) or `failed` (given up).
    pub state: String,
    pub attempts: u32,
    pub pending: Option<Vec<String>>,
    pub error: Option<String>,
}

/// Where notices wait until they are delivered: the ledger's own store, so that a notice is
/// written in the same transaction as the decision it reports.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Queues notices that no decision carries (they are durable when this returns).
    async fn enqueue(&self, notices: Vec<Notice>) -> Result<(), LedgerError>;
    /// Up to `limit` notices due at `now` (not failed, their next attempt due, no live
    /// lease), each leased to the caller until `until`: whoever takes one sends it.
    async fn take_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Queued>, LedgerError>;
    /// Told every sink: out of the queue.
    async fn delivered(&self, id: &str) -> Result<(), LedgerError>;
    /// Some sinks failed: try those again at `next` (`attempts` made so far).
    async fn retry(
        &self,
        id: &str,
        pending: Vec<String>,
        attempts: u32,
        next: DateTime<Utc>,
        error: String,
    ) -> Result<(), LedgerError>;
    /// Given up: kept, marked failed, with the sinks not told and why.
    async fn failed(
        &self,
        id: &str,
        pending: Vec<String>,
        error: String,
    ) -> Result<(), LedgerError>;
    /// What is queued or failed about a case (delivered notices leave the queue).
    async fn about_case(&self, case_id: &str) -> Result<Vec<OutboxState>, LedgerError>;
}
