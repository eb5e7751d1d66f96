//! The console's sessions and audit log as items of the ledger table (no table or index of
//! their own):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a session (TTL at its expiry) | `session#<SHA-256 of its token>` | `-` |
//! | an audit entry | `audit#<YYYY-MM of at>` | `<at µs, 20 digits>#<8 random hex>` |
//!
//! DynamoDB deletes expired items only eventually, so a session is checked against its
//! expiry as it is read. The audit log is read month by month, newest first.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Months, Utc};

use super::ledger::requests::ledger_error;
use super::{DynamoLedger, Item, TTL_ATTRIBUTE, get_n, get_s, n, s};
use crate::ports::console::{AuditEntry, ConsoleStore, Session};
use crate::ports::ledger::LedgerError;

const SESSION_SK: &str = "-";
/// How many months back the audit log is looked for.
const AUDIT_MONTHS: u32 = 13;

fn session_pk(key: &str) -> String {
    format!("session#{key}")
}

fn audit_pk(at: DateTime<Utc>) -> String {
    format!("audit#{}", at.format("%Y-%m"))
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(item: &Item, key: &str) -> Result<DateTime<Utc>, LedgerError> {
    get_n(item, key)
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| LedgerError::corrupt_said(format!("a console item has no {key}")))
}

fn text(item: &Item, key: &str) -> Result<String, LedgerError> {
    get_s(item, key)
        .map(str::to_owned)
        .ok_or_else(|| LedgerError::corrupt_said(format!("a console item has no {key}")))
}

#[async_trait]
impl ConsoleStore for DynamoLedger {
    async fn put_session(&self, key: &str, session: &Session) -> Result<(), LedgerError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(session_pk(key)))
            .item("sk", s(SESSION_SK))
            .item("user", s(&session.user))
            .item("csrf", s(&session.csrf))
            .item("created", n(micros(session.created)))
            .item("expires", n(micros(session.expires)))
            .item(TTL_ATTRIBUTE, n(session.expires.timestamp()))
            .send()
            .await
            .map_err(|e| ledger_error("PutItem (console session)", e))?;
        Ok(())
    }

    async fn session(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Session>, LedgerError> {
        let Some(item) = self.get(session_pk(key), SESSION_SK).await? else {
            return Ok(None);
        };
        let session = Session {
            user: text(&item, "user")?,
            csrf: text(&item, "csrf")?,
            created: time(&item, "created")?,
            expires: time(&item, "expires")?,
        };
        Ok((session.expires > now).then_some(session))
    }

    async fn end_session(&self, key: &str) -> Result<(), LedgerError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(key)))
            .key("sk", s(SESSION_SK))
            .send()
            .await
            .map_err(|e| ledger_error("DeleteItem (console session)", e))?;
        Ok(())
    }

    async fn audit(&self, entry: &AuditEntry) -> Result<(), LedgerError> {
        // The random tail keeps two entries of one microsecond apart.
        let tail = crate::domain::signing::fresh_secret()
            .map(|h| h[..8].to_owned())
            .unwrap_or_default();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(audit_pk(entry.at)))
            .item("sk", s(format!("{:020}#{tail}", micros(entry.at))))
            .item("who", s(&entry.who))
            .item("what", s(&entry.what))
            .item("at", n(micros(entry.at)))
            .send()
            .await
            .map_err(|e| ledger_error("PutItem (audit)", e))?;
        Ok(())
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, LedgerError> {
        let mut out = Vec::new();
        let now = Utc::now();
        let first = now.with_day(1).unwrap_or(now);
        for back in 0..AUDIT_MONTHS {
            if out.len() >= limit {
                break;
            }
            let Some(month) = first.checked_sub_months(Months::new(back)) else {
                break;
            };
            let q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(audit_pk(month)))
                .scan_index_forward(false);
            for item in self.query_items(q, limit - out.len()).await? {
                out.push(AuditEntry {
                    at: time(&item, "at")?,
                    who: text(&item, "who")?,
                    what: text(&item, "what")?,
                });
            }
        }
        Ok(out)
    }
}
