//! The local ledger: decisions, handled deliveries, open cases, claims, storm-control slots
//! and held alarms, in `DATA_DIR/ledger.sqlite3`. Every decision is one SQLite transaction,
//! so a decision that was answered 200 survives a crash. The notice outbox, in the same
//! database and the same transactions, is in `outbox`.

mod console;
mod outbox;
mod pages;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Db, from_json, parse_time, to_json};
use crate::domain::delivery::DeliveryKind;
use crate::domain::outcome::{DecisionState, Outcome};
use crate::ports::ledger::{
    CaseLedger, Claim, ClaimOutcome, Commit, Decision, DecisionFilter, DuplicateTally, HeldAlarm,
    HoldChange, LedgerError, OpenCase, OpenCaseChange, StaleClaim, slot_hour,
};
use outbox::insert_notices;

pub struct SqliteLedger {
    pub(super) db: Arc<Db>,
    /// Duplicates answered from memory, one line per event (see [`CaseLedger::note`]).
    pub(super) notes: DuplicateTally,
}

const DECISION_COLUMNS: &str = "d.seq, d.at, d.delivery_kind, d.delivery_id, d.alarm_key, \
     d.alarm_name, d.state, d.state_change_time, d.outcome, d.case_id, d.note, d.severity";

fn decision_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Decision> {
    let outcome: String = r.get(8)?;
    Ok(Decision {
        seq: r.get(0)?,
        at: parse_time(&r.get::<_, String>(1)?)?,
        delivery_kind: {
            let kind: String = r.get(2)?;
            DeliveryKind::parse(&kind).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Text,
                    format!("unknown delivery kind {kind:?}").into(),
                )
            })?
        },
        delivery_id: r.get(3)?,
        alarm_key: r.get(4)?,
        alarm_name: r.get(5)?,
        state: {
            let state: String = r.get(6)?;
            DecisionState::parse(&state).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    6,
                    rusqlite::types::Type::Text,
                    format!("unknown decision state {state:?}").into(),
                )
            })?
        },
        state_change_time: r.get(7)?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                8,
                rusqlite::types::Type::Text,
                format!("unknown outcome {outcome:?}").into(),
            )
        })?,
        case_id: r.get(9)?,
        note: r.get(10)?,
        // An unknown severity (written by a later version) reads as none: it only
        // costs the report a row.
        severity: r.get::<_, Option<String>>(11)?.and_then(|s| s.parse().ok()),
    })
}

impl SqliteLedger {
    /// Noted lines, written by the writer without waiting for them.
    fn write_noted(&self, noted: Vec<Decision>) -> Result<(), LedgerError> {
        if noted.is_empty() {
            return Ok(());
        }
        self.db.write_detached(move |c| {
            for decision in &noted {
                insert_decision(c, decision)?;
            }
            Ok(())
        })
    }

    /// Transactions committed so far: with group commit, fewer than the writes (what the
    /// benchmarks and tests look at).
    pub fn transactions(&self) -> u64 {
        self.db.batches()
    }
}

/// Appends a decision to the history; returns its sequence number.
fn insert_decision(c: &rusqlite::Connection, d: &Decision) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "INSERT INTO decisions (at, delivery_kind, delivery_id, alarm_key, alarm_name, \
         state, state_change_time, outcome, case_id, note, severity) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        d.at.to_rfc3339(),
        d.delivery_kind.as_str(),
        d.delivery_id,
        d.alarm_key,
        d.alarm_name,
        d.state.as_str(),
        d.state_change_time,
        d.outcome.as_str(),
        d.case_id,
        d.note,
        d.severity.map(|s| s.as_str())
    ])?;
    Ok(c.last_insert_rowid())
}

#[async_trait]
impl CaseLedger for SqliteLedger {
    async fn find_handled(&self, keys: &[String]) -> Result<Option<Decision>, LedgerError> {
        let keys = keys.to_vec();
        self.db
            .reading(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {DECISION_COLUMNS} FROM handled h JOIN decisions d ON d.seq = h.seq \
                     WHERE h.key = ?1"
                ))?;
                let mut earliest: Option<Decision> = None;
                for key in &keys {
                    let found = stmt.query_row([key], decision_row).optional()?;
                    if let Some(d) =
                        found.filter(|d| earliest.as_ref().is_none_or(|e| d.seq < e.seq))
                    {
                        earliest = Some(d);
                    }
                }
                Ok(earliest)
            })
            .await
    }

    async fn open_case(&self, alarm_key: &str) -> Result<Option<OpenCase>, LedgerError> {
        let key = alarm_key.to_owned();
        self.db
            .reading(move |c| {
                let record: Option<String> = c
                    .prepare_cached("SELECT record FROM open_cases WHERE alarm_key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?;
                record.map(|r| from_json(&r)).transpose()
            })
            .await
    }

    async fn open_cases(&self) -> Result<Vec<OpenCase>, LedgerError> {
        self.db
            .reading(|c| {
                let mut stmt = c.prepare("SELECT record FROM open_cases ORDER BY alarm_key")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.map(|r| r.and_then(|s| from_json(&s))).collect()
            })
            .await
    }

    async fn claim(&self, claim: &Claim, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError> {
        let claim = claim.clone();
        self.db
            .write(true, move |c| {
                let tx = c.savepoint()?;
                let open: Option<String> = tx
                    .query_row(
                        "SELECT record FROM open_cases WHERE alarm_key = ?1",
                        [&claim.alarm_key],
                        |r| r.get(0),
                    )
                    .optional()?;
                let blocked_by_open_case = match open {
                    Some(record) => {
                        let open: OpenCase = from_json(&record)?;
                        claim.replaces.as_deref() != Some(open.case_id.as_str())
                    }
                    None => false,
                };
                let held: Option<(String, String, String, String)> = tx
                    .query_row(
                        "SELECT token, reference, claimed_at, expires_at FROM claims WHERE alarm_key = ?1",
                        [&claim.alarm_key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let (live, stale) = match held {
                    Some((token, _, _, _)) if token == claim.token => (false, None),
                    Some((_, reference, claimed_at, expires)) => {
                        let live = parse_time(&expires)? > now;
                        let stale = StaleClaim {
                            reference,
                            claimed_at: parse_time(&claimed_at)?,
                        };
                        (live, Some(stale))
                    }
                    None => (false, None),
                };
                if blocked_by_open_case || live {
                    return Ok(ClaimOutcome::Refused);
                }
                tx.execute(
                    "INSERT OR REPLACE INTO claims (alarm_key, token, reference, claimed_at, \
                     expires_at, owner, alarm_name, handled_keys, replaces) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        claim.alarm_key,
                        claim.token,
                        claim.reference,
                        claim.claimed_at.to_rfc3339(),
                        claim.expires_at.to_rfc3339(),
                        claim.owner,
                        claim.alarm_name,
                        to_json(&claim.handled_keys)?,
                        claim.replaces
                    ],
                )?;
                tx.commit()?;
                Ok(ClaimOutcome::Taken { stale })
            })
            .await
    }

    async fn release(&self, claim: &Claim) -> Result<(), LedgerError> {
        let claim = claim.clone();
        self.db
            .write(true, move |c| {
                c.execute(
                    "DELETE FROM claims WHERE alarm_key = ?1 AND token = ?2",
                    params![claim.alarm_key, claim.token],
                )
                .map(|_| ())
            })
            .await
    }

    async fn renew(&self, claim: &Claim, until: DateTime<Utc>) -> Result<bool, LedgerError> {
        let claim = claim.clone();
        self.db
            .write(true, move |c| {
                c.execute(
                    "UPDATE claims SET expires_at = ?3 WHERE alarm_key = ?1 AND token = ?2",
                    params![claim.alarm_key, claim.token, until.to_rfc3339()],
                )
                .map(|n| n == 1)
            })
            .await
    }

    async fn claims(&self) -> Result<Vec<Claim>, LedgerError> {
        self.db
            .reading(|c| {
                let mut stmt = c.prepare(
                    "SELECT alarm_key, token, reference, claimed_at, expires_at, owner, \
                     alarm_name, handled_keys, replaces FROM claims ORDER BY alarm_key",
                )?;
                let rows = stmt.query_map([], |r| {
                    let alarm_key: String = r.get(0)?;
                    let name: String = r.get(6)?;
                    Ok(Claim {
                        token: r.get(1)?,
                        reference: r.get(2)?,
                        claimed_at: parse_time(&r.get::<_, String>(3)?)?,
                        expires_at: parse_time(&r.get::<_, String>(4)?)?,
                        owner: r.get(5)?,
                        alarm_name: if name.is_empty() {
                            alarm_key.clone()
                        } else {
                            name
                        },
                        handled_keys: from_json(&r.get::<_, String>(7)?)?,
                        replaces: r.get(8)?,
                        alarm_key,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    async fn commit(&self, commit: Commit) -> Result<i64, LedgerError> {
        // A decision that changes nothing but the record (a duplicate) is written without
        // waiting for the disk: a power cut could lose that line of history, never a case or
        // a dedupe key. Everything else waits for fsync (synchronous=FULL).
        let record_only = commit.handled_keys.is_empty()
            && commit.open_cases.is_empty()
            && commit.claim.is_none()
            && commit.hold.is_none()
            && commit.notices.is_empty();
        let result = self
            .db
            .write(!record_only, move |c| {
                let tx = c.savepoint()?;
                if let Some(claim) = &commit.claim {
                    let released = tx.execute(
                        "DELETE FROM claims WHERE alarm_key = ?1 AND token = ?2",
                        params![claim.alarm_key, claim.token],
                    )?;
                    if released == 0 {
                        return Ok(None);
                    }
                }
                let seq = insert_decision(&tx, &commit.decision)?;
                for key in &commit.handled_keys {
                    tx.execute(
                        "INSERT OR IGNORE INTO handled (key, seq) VALUES (?1, ?2)",
                        params![key, seq],
                    )?;
                }
                for change in &commit.open_cases {
                    match change {
                        OpenCaseChange::Put(open) => {
                            tx.execute(
                                "INSERT OR REPLACE INTO open_cases (alarm_key, record) VALUES (?1, ?2)",
                                params![open.alarm_key, to_json(open)?],
                            )?;
                        }
                        OpenCaseChange::Remove { alarm_key } => {
                            tx.execute("DELETE FROM open_cases WHERE alarm_key = ?1", [alarm_key])?;
                        }
                    }
                }
                insert_notices(&tx, &commit.notices)?;
                match &commit.hold {
                    None => {}
                    Some(HoldChange::Put(held)) => {
                        tx.execute(
                            "INSERT OR REPLACE INTO held (alarm_key, record) VALUES (?1, ?2)",
                            params![held.alarm_key, to_json(held)?],
                        )?;
                    }
                    Some(HoldChange::Remove { alarm_key }) => {
                        tx.execute("DELETE FROM held WHERE alarm_key = ?1", [alarm_key])?;
                    }
                }
                tx.commit()?;
                Ok(Some(seq))
            })
            .await?;
        result.ok_or_else(|| {
            LedgerError::Conflict("the claim to open this case was taken over".into())
        })
    }

    async fn case_slots_taken(&self, now: DateTime<Utc>) -> Result<usize, LedgerError> {
        let hour = slot_hour(now);
        self.db
            .reading(move |c| {
                c.query_row("SELECT n FROM case_slots WHERE hour = ?1", [hour], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()
                .map(|n| usize::try_from(n.unwrap_or(0)).unwrap_or(0))
            })
            .await
    }

    async fn take_case_slot(&self, cap: usize, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        let hour = slot_hour(now);
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        self.db
            .write(true, move |c| {
                let tx = c.savepoint()?;
                let n: i64 = tx
                    .query_row("SELECT n FROM case_slots WHERE hour = ?1", [&hour], |r| {
                        r.get(0)
                    })
                    .optional()?
                    .unwrap_or(0);
                if n >= cap {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO case_slots (hour, n) VALUES (?1, 1) \
                     ON CONFLICT (hour) DO UPDATE SET n = n + 1",
                    [&hour],
                )?;
                // Old hours are of no use: keep the table a few rows long.
                tx.execute("DELETE FROM case_slots WHERE hour < ?1", [&hour])?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    async fn return_case_slot(&self, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let hour = slot_hour(now);
        self.db
            .write(true, move |c| {
                c.execute(
                    "UPDATE case_slots SET n = n - 1 WHERE hour = ?1 AND n > 0",
                    [hour],
                )
                .map(|_| ())
            })
            .await
    }

    async fn held(&self) -> Result<Vec<HeldAlarm>, LedgerError> {
        self.db
            .reading(|c| {
                let mut stmt = c.prepare("SELECT record FROM held ORDER BY alarm_key")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.map(|r| r.and_then(|s| from_json(&s))).collect()
            })
            .await
    }

    /// Counted per event, one line per event written without waiting for the disk, for
    /// eight events at a time, after ten seconds, before a listing and at shutdown.
    async fn note(&self, decision: Decision) -> Result<(), LedgerError> {
        match self.notes.add(decision) {
            Some(due) => self.write_noted(due),
            None => Ok(()),
        }
    }

    async fn flush(&self) -> Result<(), LedgerError> {
        self.write_noted(self.notes.take())?;
        self.db.write(false, |_| Ok(())).await
    }

    async fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>, LedgerError> {
        // Decisions noted without waiting are written first, so the list is complete.
        self.flush().await?;
        let filter = filter.clone();
        self.db
            .reading(move |c| {
                let limit = if filter.limit == 0 {
                    i64::MAX
                } else {
                    filter.limit as i64
                };
                let mut stmt = c.prepare(&format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions d \
                     WHERE (?1 IS NULL OR d.alarm_key = ?1) \
                       AND (?2 IS NULL OR d.case_id = ?2) \
                       AND (?3 IS NULL OR d.at >= ?3) \
                     ORDER BY d.seq DESC LIMIT ?4"
                ))?;
                let rows = stmt.query_map(
                    params![
                        filter.alarm_key,
                        filter.case_id,
                        filter.since.map(|t| t.to_rfc3339()),
                        limit
                    ],
                    decision_row,
                )?;
                rows.collect()
            })
            .await
    }
}

#[cfg(test)]
mod tests;
