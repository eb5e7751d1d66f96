//! What people do to a page (acknowledge, escalate, resolve, with what is told to the
//! others) and what became of a message (sent, tried again, given up): each one
//! TransactWriteItems with its timeline line.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::items::{MessageRow, PageRow, QUEUE_PK, QUEUED, queue_sk, split_message_id};
use super::writes::{ATTEMPTS, busy, pause};
use crate::backend::aws::dynamo::ledger::requests::build_error;
use crate::backend::aws::dynamo::{DynamoLedger, Item, s};
use crate::domain::page::{Channel, PageId, PageState};
use crate::ports::ledger::LedgerError;
use crate::ports::pages::{Acted, Action, NewMessage, Tell};

/// Written only over the queued message read (another sender may have finished it).
const STILL_QUEUED: &str = "attribute_exists(pk)";

/// Whether the action applies to a page in `state`, its timeline line, and the word its
/// told messages' keys carry.
fn applies(action: &Action, state: PageState) -> (bool, String, &'static str) {
    let who = |by: &Option<String>| {
        by.as_deref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default()
    };
    match action {
        Action::Acknowledge { by, via } => (
            state == PageState::Open,
            format!("acknowledged by {by} (via {})", via.as_str()),
            "ack",
        ),
        Action::Escalate { by, via } => (
            state.is_live(),
            format!("escalated{} (via {})", who(by), via.as_str()),
            "escalated",
        ),
        Action::Resolve { by, via } => (
            state.is_live(),
            format!("resolved{} (via {})", who(by), via.as_str()),
            "resolved",
        ),
    }
}

/// The page after the action.
fn acted(row: &mut PageRow, action: &Action, now: DateTime<Utc>) {
    let p = &mut row.summary;
    match action {
        // The first acknowledgement is the one time to acknowledge counts to.
        Action::Acknowledge { by, .. } => {
            p.state = PageState::Acknowledged;
            p.owner = Some(by.clone());
            p.next_at = None;
            p.acknowledged_at = p.acknowledged_at.or(Some(now));
        }
        // Passed on: whoever owned it no longer does, and the next step is due now.
        Action::Escalate { .. } => {
            p.state = PageState::Open;
            p.owner = None;
            p.next_at = Some(now);
        }
        Action::Resolve { .. } => {
            p.state = PageState::Resolved;
            p.next_at = None;
            p.resolved_at = Some(now);
        }
    }
}

/// The SQLite ledger's time stamp, which told messages' keys carry.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// What is told to everyone the page reached by a stage (each address once, ordered by
/// person then channel), but the one who acted.
fn told(
    page: PageId,
    reached: &[MessageRow],
    tell: &Tell,
    what: &str,
    at: DateTime<Utc>,
) -> Vec<NewMessage> {
    let addresses: BTreeMap<(&str, &str, &str), Channel> = reached
        .iter()
        .filter(|m| m.stage.is_some())
        .filter(|m| tell.except.as_deref() != Some(m.person.as_str()))
        .map(|m| {
            (
                (m.person.as_str(), m.channel.as_str(), m.to.as_str()),
                m.channel,
            )
        })
        .collect();
    let mut messages: Vec<NewMessage> = addresses
        .into_iter()
        .map(|((person, name, to), channel)| NewMessage {
            key: format!("{page}/{what}@{}/{person}/{name}", stamp(at)),
            person: person.to_owned(),
            channel,
            to: to.to_owned(),
            text: tell.text.clone(),
            stage: None,
            round: None,
        })
        .collect();
    messages.extend(tell.also.iter().cloned());
    messages
}

impl DynamoLedger {
    /// Acts on a page as it stands: refused unless the action applies to its state; else
    /// the page, its line, what is told and its live copy (or, resolved, none) in one
    /// transaction.
    pub(super) async fn act_on(
        &self,
        page: PageId,
        action: &Action,
        tell: Option<&Tell>,
        now: DateTime<Utc>,
    ) -> Result<Acted, LedgerError> {
        for attempt in 0..ATTEMPTS {
            let Some(mut row) = self.page_row(page).await? else {
                return Ok(Acted::NoSuchPage);
            };
            let (applies, line, what) = applies(action, row.summary.state);
            if !applies {
                return Ok(Acted::Refused(row.summary.state));
            }
            let messages = match tell {
                Some(t) => told(page, &self.page_contents(page).await?.0, t, what, now),
                None => Vec::new(),
            };
            let read = row.rev;
            acted(&mut row, action, now);
            let mut items = vec![];
            items.extend(self.line_put(&mut row, now, &[line])?);
            items.extend(self.queue_new(&mut row, &messages, now)?);
            items.push(self.page_put(&mut row, Some(read))?);
            items.extend(self.live_writes(&row, now)?);
            if self.page_tx("act", &items).await? {
                return Ok(Acted::Done(row.summary));
            }
            pause(attempt).await;
        }
        Err(busy("act"))
    }

    /// Records what became of a message, with its line on the page's timeline when it
    /// failed (which makes it a write of the page, so under the page's revision).
    pub(super) async fn finish_message(
        &self,
        id: i64,
        result: &Result<(), String>,
        retry: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let unknown = || LedgerError::storage_said(format!("no page message {id}"));
        let (page, idx) = split_message_id(id).ok_or_else(unknown)?;
        for attempt in 0..ATTEMPTS {
            let Some((mut m, queued)) = self.message_row(page, idx).await? else {
                return Err(unknown());
            };
            m.attempts += 1;
            let line = match (result, retry) {
                (Ok(()), _) => {
                    (m.state, m.sent_at, m.error) = ("sent".into(), Some(now), None);
                    None
                }
                (Err(e), Some(next)) => {
                    (m.error, m.next_at, m.lease_until) = (Some(e.clone()), next, next);
                    Some(format!(
                        "{} to {} failed, tried again soon: {e}",
                        m.channel.as_str(),
                        m.person
                    ))
                }
                (Err(e), None) => {
                    (m.state, m.error) = ("failed".into(), Some(e.clone()));
                    Some(format!(
                        "{} to {} failed, given up: {e}",
                        m.channel.as_str(),
                        m.person
                    ))
                }
            };
            let mut items = self.message_writes(&m, queued)?;
            if let Some(line) = line {
                let Some(mut row) = self.page_row(page).await? else {
                    return Err(unknown());
                };
                let read = row.rev;
                items.extend(self.line_put(&mut row, now, &[line])?);
                items.push(self.page_put(&mut row, Some(read))?);
            }
            if self.page_tx("message done", &items).await? {
                return Ok(());
            }
            pause(attempt).await;
        }
        Err(busy("message done"))
    }

    /// A message as it now stands: still queued (tried again), or moved from the queue to
    /// its page once sent or given up; one done before is rewritten where it is.
    fn message_writes(
        &self,
        m: &MessageRow,
        queued: bool,
    ) -> Result<Vec<TransactWriteItem>, LedgerError> {
        let still = Some((STILL_QUEUED, Item::new()));
        if !queued {
            return Ok(vec![self.put(m.done_item(), None)?]);
        }
        if m.state == QUEUED {
            return Ok(vec![self.put(m.queue_item(), still)?]);
        }
        let remove = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(QUEUE_PK))
            .key("sk", s(queue_sk(m.page, m.idx)))
            .condition_expression(STILL_QUEUED)
            .build()
            .map_err(build_error)?;
        Ok(vec![
            TransactWriteItem::builder().delete(remove).build(),
            self.put(m.done_item(), None)?,
        ])
    }
}
