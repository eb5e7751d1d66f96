//! The console's sessions and audit log in the SQLite database. Sessions that expired are
//! swept whenever one is made, so the table holds only live ones and those of the last
//! day's sign-ins at most.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::SqliteLedger;
use super::outbox::stamp;
use crate::backend::local::parse_time;
use crate::ports::console::{AuditEntry, ConsoleStore, Session};
use crate::ports::ledger::LedgerError;

#[async_trait]
impl ConsoleStore for SqliteLedger {
    async fn put_session(&self, key: &str, session: &Session) -> Result<(), LedgerError> {
        let (key, s) = (key.to_owned(), session.clone());
        self.db
            .write(true, move |tx| {
                tx.execute(
                    "DELETE FROM console_sessions WHERE expires <= ?1",
                    [stamp(s.created)],
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO console_sessions (key, user, csrf, created, expires) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![key, s.user, s.csrf, stamp(s.created), stamp(s.expires)],
                )
                .map(drop)
            })
            .await
    }

    async fn session(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Session>, LedgerError> {
        let key = key.to_owned();
        self.db
            .reading(move |c| {
                c.query_row(
                    "SELECT user, csrf, created, expires FROM console_sessions \
                     WHERE key = ?1 AND expires > ?2",
                    params![key, stamp(now)],
                    |r| {
                        Ok(Session {
                            user: r.get(0)?,
                            csrf: r.get(1)?,
                            created: parse_time(&r.get::<_, String>(2)?)?,
                            expires: parse_time(&r.get::<_, String>(3)?)?,
                        })
                    },
                )
                .optional()
            })
            .await
    }

    async fn end_session(&self, key: &str) -> Result<(), LedgerError> {
        let key = key.to_owned();
        self.db
            .write(true, move |tx| {
                tx.execute("DELETE FROM console_sessions WHERE key = ?1", [key])
                    .map(drop)
            })
            .await
    }

    async fn audit(&self, entry: &AuditEntry) -> Result<(), LedgerError> {
        let e = entry.clone();
        self.db
            .write(true, move |tx| {
                tx.execute(
                    "INSERT INTO audit (at, who, what) VALUES (?1, ?2, ?3)",
                    params![stamp(e.at), e.who, e.what],
                )
                .map(drop)
            })
            .await
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .reading(move |c| {
                let mut q =
                    c.prepare("SELECT at, who, what FROM audit ORDER BY seq DESC LIMIT ?1")?;
                q.query_map([limit], |r| {
                    Ok(AuditEntry {
                        at: parse_time(&r.get::<_, String>(0)?)?,
                        who: r.get(1)?,
                        what: r.get(2)?,
                    })
                })?
                .collect()
            })
            .await
    }
}
