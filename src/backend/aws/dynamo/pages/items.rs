//! The shapes of the page items: keys, the page and its live copy, messages (queued and
//! done), timeline lines and callouts, each written from and read back into the port's
//! records. Times are numbers of microseconds since the epoch: they compare in conditions
//! and filters, and read back to the microsecond, as the SQLite ledger's stamps do.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::backend::aws::dynamo::{Item, get_n, get_s, n, s};
use crate::domain::page::{PageId, Position};
use crate::ports::ledger::LedgerError;
use crate::ports::pages::{
    Callout, MessageRecord, NewMessage, OutMessage, PageSummary, TimelineEntry,
};

pub(super) const PAGE_SK: &str = "page";
pub(super) const LIVE_PK: &str = "pages#live";
pub(super) const QUEUE_PK: &str = "pagemsgs#queued";
pub(super) const COUNTER_PK: &str = "pages";
pub(super) const COUNTER_SK: &str = "counter";
pub(super) const KEY_SK: &str = "live";
pub(super) const EVENT_SK: &str = "-";
pub(super) const QUEUED: &str = "queued";
/// A message's id is its page's number times this, plus its place in the page's queue
/// (from 1): so the id alone finds the message's item, and ids stay small numbers.
const MESSAGES_PER_PAGE: i64 = 1_000_000;

pub(super) fn page_pk(id: PageId) -> String {
    format!("page#{id}")
}

pub(super) fn key_pk(key: &str) -> String {
    format!("pagekey#{key}")
}

pub(super) fn event_pk(event: &str) -> String {
    format!("pageevent#{event}")
}

/// A page number as a sort key: zero-padded, so it sorts as a number.
pub(super) fn padded(id: PageId) -> String {
    format!("{:020}", id.0)
}

pub(super) fn queue_sk(page: PageId, idx: i64) -> String {
    format!("{}#{idx:06}", padded(page))
}

pub(super) fn message_sk(idx: i64) -> String {
    format!("msg#{idx:06}")
}

pub(super) fn line_sk(seq: i64) -> String {
    format!("line#{seq:010}")
}

pub(super) fn callouts_pk(at: DateTime<Utc>) -> String {
    format!("callouts#{}", at.format("%Y-%m"))
}

/// The sort key of a callout at `at`: its time first, so a month's callouts are a range.
pub(super) fn callout_sk_at(at: i64) -> String {
    format!("{at:020}")
}

pub(super) fn micros(t: DateTime<Utc>) -> AttributeValue {
    n(t.timestamp_micros())
}

fn corrupt(what: &str) -> LedgerError {
    LedgerError::corrupt_said(format!("page item without a readable {what}"))
}

pub(super) fn time_opt(item: &Item, key: &str) -> Result<Option<DateTime<Utc>>, LedgerError> {
    match get_n(item, key) {
        None => Ok(None),
        Some(us) => DateTime::from_timestamp_micros(us)
            .map(Some)
            .ok_or_else(|| corrupt(key)),
    }
}

pub(super) fn time(item: &Item, key: &str) -> Result<DateTime<Utc>, LedgerError> {
    time_opt(item, key)?.ok_or_else(|| corrupt(key))
}

pub(super) fn text(item: &Item, key: &str) -> Result<String, LedgerError> {
    get_s(item, key)
        .map(str::to_owned)
        .ok_or_else(|| corrupt(key))
}

fn text_opt(item: &Item, key: &str) -> Option<String> {
    get_s(item, key).map(str::to_owned)
}

fn named<T: std::str::FromStr>(item: &Item, key: &str) -> Result<T, LedgerError> {
    get_s(item, key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(key))
}

fn small(item: &Item, key: &str) -> Result<Option<u32>, LedgerError> {
    get_n(item, key)
        .map(|v| u32::try_from(v).map_err(|_| corrupt(key)))
        .transpose()
}

pub(super) fn page_of(item: &Item, key: &str) -> Result<PageId, LedgerError> {
    get_n(item, key)
        .and_then(|v| u64::try_from(v).ok())
        .map(PageId)
        .ok_or_else(|| corrupt(key))
}

fn num(id: PageId) -> AttributeValue {
    AttributeValue::N(id.0.to_string())
}

fn set_opt(item: &mut Item, key: &str, v: Option<AttributeValue>) {
    if let Some(v) = v {
        item.insert(key.to_owned(), v);
    }
}

/// The id of the `idx`th message of `page`.
pub(super) fn message_id(page: PageId, idx: i64) -> Result<i64, LedgerError> {
    i64::try_from(page.0)
        .ok()
        .and_then(|p| p.checked_mul(MESSAGES_PER_PAGE))
        .and_then(|p| p.checked_add(idx))
        .filter(|_| idx < MESSAGES_PER_PAGE)
        .ok_or_else(|| LedgerError::storage_said(format!("page {page} has too many messages")))
}

/// The page and the place of a message id; `None`: no message has it.
pub(super) fn split_message_id(id: i64) -> Option<(PageId, i64)> {
    let page = u64::try_from(id / MESSAGES_PER_PAGE).ok()?;
    let idx = id % MESSAGES_PER_PAGE;
    (page > 0 && idx > 0).then_some((PageId(page), idx))
}

/// The summary's attributes, as both the page item and its live copy hold them.
fn summary_attributes(p: &PageSummary) -> Item {
    let mut item = Item::from([
        ("id".to_owned(), num(p.id)),
        ("key".to_owned(), s(p.key.clone())),
        ("alarm".to_owned(), s(p.alarm.clone())),
        ("policy".to_owned(), s(p.policy.clone())),
        ("summary".to_owned(), s(p.summary.clone())),
        ("state".to_owned(), s(p.state.as_str())),
        ("round".to_owned(), n(i64::from(p.position.round))),
        ("stage".to_owned(), n(i64::from(p.position.stage))),
        ("opened_at".to_owned(), micros(p.opened_at)),
    ]);
    set_opt(&mut item, "owner", p.owner.clone().map(s));
    set_opt(&mut item, "next_at", p.next_at.map(micros));
    set_opt(&mut item, "acked_at", p.acknowledged_at.map(micros));
    set_opt(&mut item, "resolved_at", p.resolved_at.map(micros));
    item
}

pub(super) fn summary_from(item: &Item) -> Result<PageSummary, LedgerError> {
    Ok(PageSummary {
        id: page_of(item, "id")?,
        key: text(item, "key")?,
        alarm: text(item, "alarm")?,
        policy: text(item, "policy")?,
        summary: text(item, "summary")?,
        state: named(item, "state")?,
        owner: text_opt(item, "owner"),
        position: Position {
            round: small(item, "round")?.ok_or_else(|| corrupt("round"))?,
            stage: small(item, "stage")?.ok_or_else(|| corrupt("stage"))?,
        },
        opened_at: time(item, "opened_at")?,
        next_at: time_opt(item, "next_at")?,
        acknowledged_at: time_opt(item, "acked_at")?,
        resolved_at: time_opt(item, "resolved_at")?,
    })
}

/// A page as its item holds it: the summary, the revision every write of the page checks
/// and bumps, the counters of its timeline and messages, and what makes steps idempotent
/// (the message keys queued, the people called out).
#[derive(Debug, Clone)]
pub(super) struct PageRow {
    pub(super) summary: PageSummary,
    pub(super) rev: i64,
    pub(super) line_seq: i64,
    pub(super) msg_seq: i64,
    pub(super) msg_keys: BTreeSet<String>,
    pub(super) called: BTreeSet<String>,
}

fn string_set(item: &Item, key: &str) -> BTreeSet<String> {
    item.get(key)
        .and_then(|v| v.as_ss().ok())
        .map(|v| v.iter().cloned().collect())
        .unwrap_or_default()
}

impl PageRow {
    pub(super) fn from_item(item: &Item) -> Result<Self, LedgerError> {
        Ok(Self {
            summary: summary_from(item)?,
            rev: get_n(item, "page_rev").ok_or_else(|| corrupt("page_rev"))?,
            line_seq: get_n(item, "line_seq").unwrap_or(0),
            msg_seq: get_n(item, "msg_seq").unwrap_or(0),
            msg_keys: string_set(item, "msg_keys"),
            called: string_set(item, "called"),
        })
    }

    pub(super) fn item(&self) -> Item {
        let mut item = summary_attributes(&self.summary);
        item.insert("pk".into(), s(page_pk(self.summary.id)));
        item.insert("sk".into(), s(PAGE_SK));
        item.insert("page_rev".into(), n(self.rev));
        item.insert("line_seq".into(), n(self.line_seq));
        item.insert("msg_seq".into(), n(self.msg_seq));
        // DynamoDB refuses an empty set: an absent attribute is one.
        for (key, set) in [("msg_keys", &self.msg_keys), ("called", &self.called)] {
            if !set.is_empty() {
                item.insert(
                    key.into(),
                    AttributeValue::Ss(set.iter().cloned().collect()),
                );
            }
        }
        item
    }

    /// The copy of a live page under the live pages' partition, with the lease of its step.
    pub(super) fn live_item(&self, lease_until: DateTime<Utc>) -> Item {
        let mut item = summary_attributes(&self.summary);
        item.insert("pk".into(), s(LIVE_PK));
        item.insert("sk".into(), s(padded(self.summary.id)));
        item.insert("lease_until".into(), micros(lease_until));
        item
    }
}

/// One message: queued (its item under the queue's partition) or done (under its page).
#[derive(Debug, Clone)]
pub(super) struct MessageRow {
    pub(super) page: PageId,
    pub(super) idx: i64,
    pub(super) key: String,
    pub(super) person: String,
    pub(super) channel: crate::domain::page::Channel,
    pub(super) to: String,
    pub(super) text: String,
    /// 0-based, as the engine gives it.
    pub(super) stage: Option<u32>,
    pub(super) round: Option<u32>,
    pub(super) queued_at: DateTime<Utc>,
    pub(super) state: String,
    pub(super) sent_at: Option<DateTime<Utc>>,
    pub(super) error: Option<String>,
    pub(super) attempts: u32,
    pub(super) next_at: DateTime<Utc>,
    pub(super) lease_until: DateTime<Utc>,
}

impl MessageRow {
    pub(super) fn queued(page: PageId, idx: i64, m: &NewMessage, at: DateTime<Utc>) -> Self {
        Self {
            page,
            idx,
            key: m.key.clone(),
            person: m.person.clone(),
            channel: m.channel,
            to: m.to.clone(),
            text: m.text.clone(),
            stage: m.stage,
            round: m.round,
            queued_at: at,
            state: QUEUED.to_owned(),
            sent_at: None,
            error: None,
            attempts: 0,
            next_at: at,
            lease_until: at,
        }
    }

    fn attributes(&self, pk: String, sk: String) -> Item {
        let mut item = Item::from([
            ("pk".to_owned(), s(pk)),
            ("sk".to_owned(), s(sk)),
            ("page".to_owned(), num(self.page)),
            ("idx".to_owned(), n(self.idx)),
            ("msg_key".to_owned(), s(self.key.clone())),
            ("person".to_owned(), s(self.person.clone())),
            ("channel".to_owned(), s(self.channel.as_str())),
            ("to_addr".to_owned(), s(self.to.clone())),
            ("text".to_owned(), s(self.text.clone())),
            ("queued_at".to_owned(), micros(self.queued_at)),
            ("state".to_owned(), s(self.state.clone())),
            ("attempts".to_owned(), n(i64::from(self.attempts))),
            ("next_at".to_owned(), micros(self.next_at)),
            ("lease_until".to_owned(), micros(self.lease_until)),
        ]);
        set_opt(&mut item, "stage", self.stage.map(|v| n(i64::from(v))));
        set_opt(&mut item, "round", self.round.map(|v| n(i64::from(v))));
        set_opt(&mut item, "sent_at", self.sent_at.map(micros));
        set_opt(&mut item, "error", self.error.clone().map(s));
        item
    }

    pub(super) fn queue_item(&self) -> Item {
        self.attributes(QUEUE_PK.to_owned(), queue_sk(self.page, self.idx))
    }

    pub(super) fn done_item(&self) -> Item {
        self.attributes(page_pk(self.page), message_sk(self.idx))
    }

    pub(super) fn from_item(item: &Item) -> Result<Self, LedgerError> {
        Ok(Self {
            page: page_of(item, "page")?,
            idx: get_n(item, "idx").ok_or_else(|| corrupt("idx"))?,
            key: text(item, "msg_key")?,
            person: text(item, "person")?,
            channel: named(item, "channel")?,
            to: text(item, "to_addr")?,
            text: text(item, "text")?,
            stage: small(item, "stage")?,
            round: small(item, "round")?,
            queued_at: time(item, "queued_at")?,
            state: text(item, "state")?,
            sent_at: time_opt(item, "sent_at")?,
            error: text_opt(item, "error"),
            attempts: small(item, "attempts")?.unwrap_or(0),
            next_at: time(item, "next_at")?,
            lease_until: time(item, "lease_until")?,
        })
    }

    pub(super) fn record(&self) -> MessageRecord {
        MessageRecord {
            key: self.key.clone(),
            person: self.person.clone(),
            channel: self.channel,
            to: self.to.clone(),
            text: self.text.clone(),
            at: self.queued_at,
            // Shown 1-based, as the SQLite ledger shows it.
            stage: self.stage.map(|s| s + 1),
            round: self.round,
            state: self.state.clone(),
            sent_at: self.sent_at,
            error: self.error.clone(),
        }
    }

    pub(super) fn out(&self) -> Result<OutMessage, LedgerError> {
        Ok(OutMessage {
            id: message_id(self.page, self.idx)?,
            page: self.page,
            key: self.key.clone(),
            person: self.person.clone(),
            channel: self.channel,
            to: self.to.clone(),
            text: self.text.clone(),
            attempts: self.attempts,
        })
    }
}

/// The lines one write adds to a page's timeline, in one item (they share their time):
/// fewer items in the step's transaction.
pub(super) fn line_item(page: PageId, seq: i64, at: DateTime<Utc>, lines: &[String]) -> Item {
    Item::from([
        ("pk".to_owned(), s(page_pk(page))),
        ("sk".to_owned(), s(line_sk(seq))),
        ("at".to_owned(), micros(at)),
        (
            "lines".to_owned(),
            AttributeValue::L(lines.iter().cloned().map(s).collect()),
        ),
    ])
}

pub(super) fn lines_from(item: &Item) -> Result<Vec<TimelineEntry>, LedgerError> {
    let at = time(item, "at")?;
    let lines = item
        .get("lines")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| corrupt("lines"))?;
    lines
        .iter()
        .map(|l| {
            l.as_s()
                .map(|text| TimelineEntry {
                    at,
                    text: text.clone(),
                })
                .map_err(|_| corrupt("line"))
        })
        .collect()
}

/// A callout under the month of its time.
pub(super) fn callout_item(page: PageId, c: &Callout) -> Item {
    let at = c.at.timestamp_micros();
    let mut item = Item::from([
        ("pk".to_owned(), s(callouts_pk(c.at))),
        (
            "sk".to_owned(),
            s(format!(
                "{}#{}#{}",
                callout_sk_at(at),
                padded(page),
                c.person
            )),
        ),
        ("page".to_owned(), num(page)),
        ("person".to_owned(), s(c.person.clone())),
        ("at".to_owned(), n(at)),
        ("local_time".to_owned(), s(c.local_time.clone())),
        ("off_hours".to_owned(), AttributeValue::Bool(c.off_hours)),
    ]);
    set_opt(&mut item, "schedule", c.schedule.clone().map(s));
    item
}

pub(super) fn callout_from(item: &Item) -> Result<Callout, LedgerError> {
    Ok(Callout {
        page: page_of(item, "page")?,
        person: text(item, "person")?,
        schedule: text_opt(item, "schedule"),
        at: time(item, "at")?,
        local_time: text(item, "local_time")?,
        off_hours: item
            .get("off_hours")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .ok_or_else(|| corrupt("off_hours"))?,
    })
}
