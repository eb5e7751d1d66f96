//! The notice outbox, in the ledger's database: notices are queued in their decision's own
//! transaction, taken under a lease, deleted once delivered and kept when given up.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::SqliteLedger;
use crate::backend::local::{from_json, parse_time, to_json};
use crate::ports::ledger::LedgerError;

/// A time in the outbox's columns: one fixed form, so that they compare as text.
pub(super) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Queues notices in the outbox, in the caller's transaction.
pub(super) fn insert_notices(
    tx: &rusqlite::Connection,
    notices: &[crate::domain::notice::Notice],
) -> rusqlite::Result<()> {
    let now = stamp(Utc::now());
    for notice in notices {
        tx.execute(
            "INSERT INTO outbox (notice, case_id, queued_at, next_at, lease_until) \
             VALUES (?1, ?2, ?3, ?3, ?3)",
            params![to_json(notice)?, notice.case_id(), now],
        )?;
    }
    Ok(())
}

#[async_trait]
impl crate::ports::notify::Outbox for SqliteLedger {
    async fn enqueue(
        &self,
        notices: Vec<crate::domain::notice::Notice>,
    ) -> Result<(), LedgerError> {
        if notices.is_empty() {
            return Ok(());
        }
        self.db
            .write(true, move |c| {
                let tx = c.savepoint()?;
                insert_notices(&tx, &notices)?;
                tx.commit()
            })
            .await
    }

    async fn take_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<crate::ports::notify::Queued>, LedgerError> {
        let (now, until) = (stamp(now), stamp(until));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .write(true, move |c| {
                let tx = c.savepoint()?;
                let due: Vec<crate::ports::notify::Queued> = {
                    let mut stmt = tx.prepare(
                        "SELECT id, notice, attempts, pending FROM outbox \
                         WHERE state = 'pending' AND next_at <= ?1 AND lease_until <= ?1 \
                         ORDER BY id LIMIT ?2",
                    )?;
                    let rows = stmt.query_map(params![now, limit], |r| {
                        let id: i64 = r.get(0)?;
                        let notice: String = r.get(1)?;
                        let attempts: u32 = r.get(2)?;
                        let pending: Option<String> = r.get(3)?;
                        Ok(crate::ports::notify::Queued {
                            id: id.to_string(),
                            notice: from_json(&notice)?,
                            attempts,
                            pending: pending.as_deref().map(from_json).transpose()?,
                        })
                    })?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for q in &due {
                    tx.execute(
                        "UPDATE outbox SET lease_until = ?2 WHERE id = ?1",
                        params![q.id, until],
                    )?;
                }
                tx.commit()?;
                Ok(due)
            })
            .await
    }

    async fn delivered(&self, id: &str) -> Result<(), LedgerError> {
        let id = id.to_owned();
        self.db
            .write(true, move |c| {
                c.execute("DELETE FROM outbox WHERE id = ?1", [id])
                    .map(|_| ())
            })
            .await
    }

    async fn retry(
        &self,
        id: &str,
        pending: Vec<String>,
        attempts: u32,
        next: DateTime<Utc>,
        error: String,
    ) -> Result<(), LedgerError> {
        let (id, next) = (id.to_owned(), stamp(next));
        self.db
            .write(true, move |c| {
                c.execute(
                    "UPDATE outbox SET pending = ?2, attempts = ?3, next_at = ?4, \
                     lease_until = ?4, error = ?5 WHERE id = ?1",
                    params![id, to_json(&pending)?, attempts, next, error],
                )
                .map(|_| ())
            })
            .await
    }

    async fn failed(
        &self,
        id: &str,
        pending: Vec<String>,
        error: String,
    ) -> Result<(), LedgerError> {
        let id = id.to_owned();
        self.db
            .write(true, move |c| {
                c.execute(
                    "UPDATE outbox SET state = 'failed', pending = ?2, error = ?3, \
                     attempts = attempts + 1 WHERE id = ?1",
                    params![id, to_json(&pending)?, error],
                )
                .map(|_| ())
            })
            .await
    }

    async fn about_case(
        &self,
        case_id: &str,
    ) -> Result<Vec<crate::ports::notify::OutboxState>, LedgerError> {
        let case_id = case_id.to_owned();
        self.db.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT notice, queued_at, state, attempts, pending, error FROM outbox \
                 WHERE case_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([case_id], |r| {
                let notice: String = r.get(0)?;
                let queued: String = r.get(1)?;
                let pending: Option<String> = r.get(4)?;
                Ok(crate::ports::notify::OutboxState {
                    notice: from_json(&notice)?,
                    queued_at: parse_time(&queued)?,
                    state: r.get(2)?,
                    attempts: r.get(3)?,
                    pending: pending.as_deref().map(from_json).transpose()?,
                    error: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }
}
