//! What the console keeps: the sessions of the people signed in (server-side, so signing
//! out or deleting an account ends them on every instance) and the audit log of every
//! change made through it, with the person. Kept in the ledger's store: the SQLite database
//! on the embedded default, items of the ledger table on DynamoDB.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ports::ledger::LedgerError;

/// One session. The store knows it only by the SHA-256 of its token (a copy of the store
/// signs nobody in); `csrf` is the token every form of the session carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account (local sign-in) or the identity the load balancer vouched for.
    pub user: String,
    pub csrf: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// One change, with who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub who: String,
    /// What was done, said in a line ("acknowledged page 3").
    pub what: String,
}

#[async_trait]
pub trait ConsoleStore: Send + Sync {
    async fn put_session(&self, key: &str, session: &Session) -> Result<(), LedgerError>;
    /// The session under `key`, unless it expired by `now`.
    async fn session(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Session>, LedgerError>;
    async fn end_session(&self, key: &str) -> Result<(), LedgerError>;
    async fn audit(&self, entry: &AuditEntry) -> Result<(), LedgerError>;
    /// The latest entries, newest first.
    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, LedgerError>;
}
