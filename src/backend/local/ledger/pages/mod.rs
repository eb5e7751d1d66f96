//! Pages in the ledger's database: the page rows (state, position, next step, lease), the
//! events attached to each, its timeline, its messages (an outbox keyed by idempotency key)
//! and the callouts. Each step and each action is one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteLedger;
use super::outbox::{insert_notices, stamp};
use crate::backend::local::parse_time;
use crate::domain::page::{PageId, PageState, Position};
use crate::ports::ledger::LedgerError;
use crate::ports::pages::{
    Acted, Action, Advance, Callout, DuePage, MessageRecord, NewMessage, NewPage, OutMessage,
    PageLedger, PageRecord, PageSummary, Raised, Tell, TimelineEntry,
};

const SUMMARY_COLUMNS: &str = "id, key, alarm, policy, summary, state, owner, round, stage, \
     opened_at, next_at, acked_at, resolved_at";

/// A text column that must hold one of a type's names.
fn named<T: std::str::FromStr>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unexpected value {s:?}").into(),
        )
    })
}

fn time_opt(s: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_time).transpose()
}

fn page_id(id: i64) -> PageId {
    PageId(u64::try_from(id).unwrap_or_default())
}

fn sql_id(id: PageId) -> i64 {
    i64::try_from(id.0).unwrap_or(i64::MAX)
}

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PageSummary> {
    Ok(PageSummary {
        id: page_id(r.get(0)?),
        key: r.get(1)?,
        alarm: r.get(2)?,
        policy: r.get(3)?,
        summary: r.get(4)?,
        state: named(r, 5)?,
        owner: r.get(6)?,
        position: Position {
            round: r.get(7)?,
            stage: r.get(8)?,
        },
        opened_at: parse_time(&r.get::<_, String>(9)?)?,
        next_at: time_opt(r.get(10)?)?,
        acknowledged_at: time_opt(r.get(11)?)?,
        resolved_at: time_opt(r.get(12)?)?,
    })
}

fn summary(c: &Connection, id: i64) -> rusqlite::Result<Option<PageSummary>> {
    c.query_row(
        &format!("SELECT {SUMMARY_COLUMNS} FROM pages WHERE id = ?1"),
        [id],
        summary_row,
    )
    .optional()
}

fn timeline(c: &Connection, page: i64, at: DateTime<Utc>, text: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO page_timeline (page, at, text) VALUES (?1, ?2, ?3)",
        params![page, stamp(at), text],
    )
    .map(|_| ())
}

/// Queues messages; one whose key is already queued (the step ran before) is not queued
/// again.
fn queue(
    c: &Connection,
    page: i64,
    messages: &[NewMessage],
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let now = stamp(at);
    for m in messages {
        c.execute(
            "INSERT OR IGNORE INTO page_messages (page, key, person, channel, to_addr, text, \
             stage, round, queued_at, next_at, lease_until) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9)",
            params![
                page,
                m.key,
                m.person,
                m.channel.as_str(),
                m.to,
                m.text,
                m.stage,
                m.round,
                now
            ],
        )?;
    }
    Ok(())
}

/// What is told to everyone the page reached (each address once), but the one who acted.
fn tell(
    c: &Connection,
    page: i64,
    tell: &Tell,
    what: &str,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let reached: Vec<(String, String, String)> = {
        let mut stmt = c.prepare(
            "SELECT DISTINCT person, channel, to_addr FROM page_messages \
             WHERE page = ?1 AND stage IS NOT NULL ORDER BY person, channel",
        )?;
        let rows = stmt.query_map([page], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut messages: Vec<NewMessage> = reached
        .into_iter()
        .filter(|(person, _, _)| tell.except.as_deref() != Some(person.as_str()))
        .filter_map(|(person, channel, to)| {
            Some(NewMessage {
                key: format!("{page}/{what}@{}/{person}/{channel}", stamp(at)),
                channel: channel.parse().ok()?,
                person,
                to,
                text: tell.text.clone(),
                stage: None,
                round: None,
            })
        })
        .collect();
    messages.extend(tell.also.iter().cloned());
    queue(c, page, &messages, at)
}

fn raise(c: &Connection, p: &NewPage) -> rusqlite::Result<Raised> {
    if let Some(page) = c
        .query_row(
            "SELECT page FROM page_events WHERE event = ?1",
            [&p.event],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
    {
        return Ok(Raised::Again(page_id(page)));
    }
    let live: Option<i64> = c
        .query_row(
            "SELECT id FROM pages WHERE key = ?1 AND state IN ('open', 'acknowledged') \
             ORDER BY id DESC LIMIT 1",
            [&p.key],
            |r| r.get(0),
        )
        .optional()?;
    let raised =
        match live {
            Some(id) => {
                timeline(
                    c,
                    id,
                    p.at,
                    &format!("{} fired again: {}", p.alarm, p.summary),
                )?;
                Raised::Attached(page_id(id))
            }
            None => {
                c.execute(
                "INSERT INTO pages (key, alarm, policy, summary, state, round, stage, opened_at, \
                 next_at, lease_until) VALUES (?1, ?2, ?3, ?4, 'open', 0, 0, ?5, ?6, ?5)",
                params![p.key, p.alarm, p.policy, p.summary, stamp(p.at), stamp(p.first_due)],
            )?;
                let id = c.last_insert_rowid();
                timeline(c, id, p.at, &p.opened_line())?;
                Raised::Opened(page_id(id))
            }
        };
    c.execute(
        "INSERT INTO page_events (event, page) VALUES (?1, ?2)",
        params![p.event, sql_id(raised.page())],
    )?;
    Ok(raised)
}

fn advance(c: &Connection, s: &Advance, now: DateTime<Utc>) -> rusqlite::Result<bool> {
    let id = sql_id(s.page);
    let (state, next_at) = match s.next {
        Some((_, at)) => (PageState::Open, Some(stamp(at))),
        None => (PageState::Unanswered, None),
    };
    let next = s.next.map_or(s.from, |(p, _)| p);
    let changed = c.execute(
        "UPDATE pages SET state = ?2, round = ?3, stage = ?4, next_at = ?5, lease_until = ?6 \
         WHERE id = ?1 AND state = 'open' AND round = ?7 AND stage = ?8",
        params![
            id,
            state.as_str(),
            next.round,
            next.stage,
            next_at,
            stamp(now),
            s.from.round,
            s.from.stage
        ],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    queue(c, id, &s.messages, now)?;
    for co in &s.callouts {
        c.execute(
            "INSERT OR IGNORE INTO callouts (page, person, schedule, at, local_time, off_hours) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id,
                co.person,
                co.schedule,
                stamp(co.at),
                co.local_time,
                co.off_hours
            ],
        )?;
    }
    for line in &s.timeline {
        timeline(c, id, now, line)?;
    }
    insert_notices(c, &s.notices)?;
    Ok(true)
}

fn act(
    c: &Connection,
    page: PageId,
    action: &Action,
    told: Option<&Tell>,
    now: DateTime<Utc>,
) -> rusqlite::Result<Acted> {
    let id = sql_id(page);
    let Some(before) = summary(c, id)? else {
        return Ok(Acted::NoSuchPage);
    };
    let who = |by: &Option<String>| {
        by.as_deref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default()
    };
    let (applies, line, what) = match action {
        Action::Acknowledge { by, via } => (
            before.state == PageState::Open,
            format!("acknowledged by {by} (via {})", via.as_str()),
            "ack",
        ),
        Action::Escalate { by, via } => (
            before.state.is_live(),
            format!("escalated{} (via {})", who(by), via.as_str()),
            "escalated",
        ),
        Action::Resolve { by, via } => (
            before.state.is_live(),
            format!("resolved{} (via {})", who(by), via.as_str()),
            "resolved",
        ),
    };
    if !applies {
        return Ok(Acted::Refused(before.state));
    }
    match action {
        // The first acknowledgement is the one time to acknowledge counts to.
        Action::Acknowledge { by, .. } => c.execute(
            "UPDATE pages SET state = 'acknowledged', owner = ?2, next_at = NULL, \
             acked_at = COALESCE(acked_at, ?3) WHERE id = ?1",
            params![id, by, stamp(now)],
        )?,
        // Passed on: whoever owned it no longer does, and the next step is due now.
        Action::Escalate { .. } => c.execute(
            "UPDATE pages SET state = 'open', owner = NULL, next_at = ?2, lease_until = ?2 \
             WHERE id = ?1",
            params![id, stamp(now)],
        )?,
        Action::Resolve { .. } => c.execute(
            "UPDATE pages SET state = 'resolved', next_at = NULL, resolved_at = ?2 WHERE id = ?1",
            params![id, stamp(now)],
        )?,
    };
    timeline(c, id, now, &line)?;
    if let Some(t) = told {
        tell(c, id, t, what, now)?;
    }
    Ok(summary(c, id)?.map_or(Acted::NoSuchPage, Acted::Done))
}

fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRecord> {
    Ok(MessageRecord {
        key: r.get(0)?,
        person: r.get(1)?,
        channel: named(r, 2)?,
        to: r.get(3)?,
        text: r.get(4)?,
        stage: r.get::<_, Option<u32>>(5)?.map(|s| s + 1),
        round: r.get(6)?,
        at: parse_time(&r.get::<_, String>(7)?)?,
        state: r.get(8)?,
        sent_at: time_opt(r.get(9)?)?,
        error: r.get(10)?,
    })
}

fn record(c: &Connection, id: i64) -> rusqlite::Result<Option<PageRecord>> {
    let Some(page) = summary(c, id)? else {
        return Ok(None);
    };
    let messages = {
        let mut stmt = c.prepare(
            "SELECT key, person, channel, to_addr, text, stage, round, queued_at, state, \
             sent_at, error FROM page_messages WHERE page = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], message_row)?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let timeline = {
        let mut stmt =
            c.prepare("SELECT at, text FROM page_timeline WHERE page = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([id], |r| {
            Ok(TimelineEntry {
                at: parse_time(&r.get::<_, String>(0)?)?,
                text: r.get(1)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    Ok(Some(PageRecord {
        page,
        messages,
        timeline,
    }))
}

/// Whether any page's step is due (`?1`: now).
const DUE_PAGES: &str = "SELECT EXISTS (SELECT 1 FROM pages WHERE state = 'open' \
     AND next_at <= ?1 AND lease_until <= ?1)";
/// Whether any message is waiting to be sent (`?1`: now).
const DUE_MESSAGES: &str = "SELECT EXISTS (SELECT 1 FROM page_messages WHERE state = 'queued' \
     AND next_at <= ?1 AND lease_until <= ?1)";

impl SqliteLedger {
    /// Whether a query of [`DUE_PAGES`]' form finds anything, read without writing.
    async fn any(&self, query: &'static str, now: String) -> Result<bool, LedgerError> {
        self.db
            .reading(move |c| c.query_row(query, [now], |r| r.get::<_, bool>(0)))
            .await
    }
}

#[async_trait]
impl PageLedger for SqliteLedger {
    async fn raise(&self, page: NewPage) -> Result<Raised, LedgerError> {
        self.db.write(true, move |c| raise(c, &page)).await
    }

    async fn live(&self, key: &str) -> Result<Option<PageSummary>, LedgerError> {
        let key = key.to_owned();
        self.db
            .reading(move |c| {
                c.query_row(
                    &format!(
                        "SELECT {SUMMARY_COLUMNS} FROM pages WHERE key = ?1 \
                         AND state IN ('open', 'acknowledged') ORDER BY id DESC LIMIT 1"
                    ),
                    [key],
                    summary_row,
                )
                .optional()
            })
            .await
    }

    async fn due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DuePage>, LedgerError> {
        let (now, until) = (stamp(now), stamp(until));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Looked at on the reader first: the engine asks four times a second, and an idle
        // service should not write (and fsync) to learn that nothing is due.
        if !self.any(DUE_PAGES, now.clone()).await? {
            return Ok(Vec::new());
        }
        self.db
            .write(true, move |c| {
                let due: Vec<DuePage> = {
                    let mut stmt = c.prepare(
                        "SELECT id, alarm, policy, summary, owner, round, stage, next_at FROM pages \
                         WHERE state = 'open' AND next_at <= ?1 AND lease_until <= ?1 \
                         ORDER BY next_at LIMIT ?2",
                    )?;
                    let rows = stmt.query_map(params![now, limit], |r| {
                        Ok(DuePage {
                            id: page_id(r.get(0)?),
                            alarm: r.get(1)?,
                            policy: r.get(2)?,
                            summary: r.get(3)?,
                            owner: r.get(4)?,
                            position: Position {
                                round: r.get(5)?,
                                stage: r.get(6)?,
                            },
                            due: parse_time(&r.get::<_, String>(7)?)?,
                        })
                    })?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for p in &due {
                    c.execute(
                        "UPDATE pages SET lease_until = ?2 WHERE id = ?1",
                        params![sql_id(p.id), until],
                    )?;
                }
                Ok(due)
            })
            .await
    }

    async fn advance(&self, step: Advance, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        self.db.write(true, move |c| advance(c, &step, now)).await
    }

    async fn act(
        &self,
        page: PageId,
        action: Action,
        tell: Option<Tell>,
        now: DateTime<Utc>,
    ) -> Result<Acted, LedgerError> {
        self.db
            .write(true, move |c| act(c, page, &action, tell.as_ref(), now))
            .await
    }

    async fn pages(&self, live_only: bool, limit: usize) -> Result<Vec<PageSummary>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .reading(move |c| {
                let filter = match live_only {
                    true => "WHERE state IN ('open', 'acknowledged')",
                    false => "",
                };
                let mut stmt = c.prepare(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM pages {filter} ORDER BY id DESC LIMIT ?1"
                ))?;
                let rows = stmt.query_map([limit], summary_row)?;
                rows.collect()
            })
            .await
    }

    async fn pages_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PageSummary>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let since = stamp(since);
        self.db
            .reading(move |c| {
                let mut stmt = c.prepare(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM pages WHERE opened_at >= ?1 \
                     ORDER BY id DESC LIMIT ?2"
                ))?;
                let rows = stmt.query_map(params![since, limit], summary_row)?;
                rows.collect()
            })
            .await
    }

    async fn page(&self, id: PageId) -> Result<Option<PageRecord>, LedgerError> {
        self.db.reading(move |c| record(c, sql_id(id))).await
    }

    async fn take_messages(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutMessage>, LedgerError> {
        let (now, until) = (stamp(now), stamp(until));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if !self.any(DUE_MESSAGES, now.clone()).await? {
            return Ok(Vec::new());
        }
        self.db
            .write(true, move |c| {
                let due: Vec<OutMessage> = {
                    let mut stmt = c.prepare(
                        "SELECT id, page, key, person, channel, to_addr, text, attempts \
                         FROM page_messages WHERE state = 'queued' AND next_at <= ?1 \
                         AND lease_until <= ?1 ORDER BY id LIMIT ?2",
                    )?;
                    let rows = stmt.query_map(params![now, limit], |r| {
                        Ok(OutMessage {
                            id: r.get(0)?,
                            page: page_id(r.get(1)?),
                            key: r.get(2)?,
                            person: r.get(3)?,
                            channel: named(r, 4)?,
                            to: r.get(5)?,
                            text: r.get(6)?,
                            attempts: r.get(7)?,
                        })
                    })?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for m in &due {
                    c.execute(
                        "UPDATE page_messages SET lease_until = ?2 WHERE id = ?1",
                        params![m.id, until],
                    )?;
                }
                Ok(due)
            })
            .await
    }

    async fn message_done(
        &self,
        id: i64,
        result: Result<(), String>,
        retry: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.db
            .write(true, move |c| message_done(c, id, result, retry, now))
            .await
    }

    async fn callouts(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Callout>, LedgerError> {
        let (from, until) = (stamp(from), stamp(until));
        self.db
            .reading(move |c| {
                let mut stmt = c.prepare(
                    "SELECT page, person, schedule, at, local_time, off_hours FROM callouts \
                     WHERE at >= ?1 AND at < ?2 ORDER BY at, person",
                )?;
                let rows = stmt.query_map(params![from, until], |r| {
                    Ok(Callout {
                        page: page_id(r.get(0)?),
                        person: r.get(1)?,
                        schedule: r.get(2)?,
                        at: parse_time(&r.get::<_, String>(3)?)?,
                        local_time: r.get(4)?,
                        off_hours: r.get(5)?,
                    })
                })?;
                rows.collect()
            })
            .await
    }
}

mod done;
use done::message_done;
