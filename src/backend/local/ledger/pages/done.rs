//! What became of a message: sent, tried again later, or given up, the last two with their
//! line on the page's timeline.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::super::outbox::stamp;
use super::timeline;

pub(super) fn message_done(
    c: &Connection,
    id: i64,
    result: Result<(), String>,
    retry: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let (page, person, channel): (i64, String, String) = c.query_row(
        "SELECT page, person, channel FROM page_messages WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    match (result, retry) {
        (Ok(()), _) => {
            c.execute(
                "UPDATE page_messages SET state = 'sent', sent_at = ?2, attempts = attempts + 1, \
                 error = NULL WHERE id = ?1",
                params![id, stamp(now)],
            )?;
        }
        (Err(e), Some(next)) => {
            c.execute(
                "UPDATE page_messages SET attempts = attempts + 1, error = ?2, next_at = ?3, \
                 lease_until = ?3 WHERE id = ?1",
                params![id, e, stamp(next)],
            )?;
            timeline(
                c,
                page,
                now,
                &format!("{channel} to {person} failed, tried again soon: {e}"),
            )?;
        }
        (Err(e), None) => {
            c.execute(
                "UPDATE page_messages SET state = 'failed', attempts = attempts + 1, error = ?2 \
                 WHERE id = ?1",
                params![id, e],
            )?;
            timeline(
                c,
                page,
                now,
                &format!("{channel} to {person} failed, given up: {e}"),
            )?;
        }
    }
    Ok(())
}
