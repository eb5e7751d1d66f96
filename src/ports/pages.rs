//! The page ledger: every page, where it stands in its policy, the messages it sent and the
//! callouts it made, kept in the ledger's store. Each escalation step is claimed under a
//! lease and committed as one transaction (the messages it queues, the callouts, the
//! timeline, where the page stands next), so a crash or a second instance never skips a
//! step nor runs one twice; messages carry an idempotency key recorded before they are sent.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::notice::Notice;
use crate::domain::page::{Channel, PageId, PageState, Position, Via};
use crate::ports::PortError;
use crate::ports::ledger::LedgerError;

/// Where a page's messages go out: the channels' providers (SMS, e-mail, voice, webhooks),
/// or on the embedded default the local outbox (the message's own record is what a person
/// reads, with `pages show`).
#[async_trait]
pub trait Transport: Send + Sync {
    /// Hands one message to its channel; `Ok` once the provider accepted it.
    async fn send(&self, message: &OutMessage) -> Result<(), PortError>;
}

/// A page to open for an alarm (or to attach the alarm to, when one is live for its key).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPage {
    /// What pages are kept apart by: the alarm's group, or the alarm's own key.
    pub key: String,
    pub alarm: String,
    pub policy: String,
    /// One line saying what is wrong, sent in every message.
    pub summary: String,
    /// The alarm event that raised it: an event raised twice (a redelivery) changes nothing.
    pub event: String,
    pub at: DateTime<Utc>,
    /// When its first step is due.
    pub first_due: DateTime<Utc>,
    /// What the alarm's own description says (its runbook line, often), for the timeline.
    pub description: Option<String>,
}

impl NewPage {
    /// The first line of a new page's timeline.
    pub fn opened_line(&self) -> String {
        let mut line = format!(
            "opened for {} (policy {}): {}",
            self.alarm, self.policy, self.summary
        );
        if let Some(d) = self
            .description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            line.push_str(&format!(". The alarm's description: {d}"));
        }
        line
    }
}

/// What raising did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    Opened(PageId),
    /// A page was live for the key: the alarm was put on its timeline; nobody is called again.
    Attached(PageId),
    /// This very event was raised before.
    Again(PageId),
}

impl Raised {
    pub fn page(self) -> PageId {
        match self {
            Self::Opened(p) | Self::Attached(p) | Self::Again(p) => p,
        }
    }
}

/// A page as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageSummary {
    pub id: PageId,
    pub alarm: String,
    pub key: String,
    pub state: PageState,
    pub policy: String,
    pub summary: String,
    pub opened_at: DateTime<Utc>,
    /// Who acknowledged it.
    pub owner: Option<String>,
    /// Where it stands in its policy (internal: counted from 0, and a stage past the last
    /// is the round's answer time), and when its next step is due (while open).
    #[serde(skip)]
    pub position: Position,
    pub next_at: Option<DateTime<Utc>>,
    /// When someone first said "I have it" (time to acknowledge counts to here).
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// When it was resolved (time to resolve counts to here).
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One message a page sent (or is sending).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageRecord {
    pub key: String,
    pub person: String,
    pub channel: Channel,
    pub to: String,
    pub text: String,
    /// When it was queued.
    pub at: DateTime<Utc>,
    /// The stage (1-based) and round (0 is the first) it was sent for; none for what is
    /// told to everyone paged (acknowledged, resolved).
    pub stage: Option<u32>,
    pub round: Option<u32>,
    /// `queued`, `sent` or `failed`.
    pub state: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// A line on a page's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub text: String,
}

/// A page with everything that happened on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageRecord {
    #[serde(flatten)]
    pub page: PageSummary,
    pub messages: Vec<MessageRecord>,
    pub timeline: Vec<TimelineEntry>,
}

/// A message to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub key: String,
    pub person: String,
    pub channel: Channel,
    pub to: String,
    pub text: String,
    pub stage: Option<u32>,
    pub round: Option<u32>,
}

/// A message taken from the queue to send, leased to whoever took it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutMessage {
    pub id: i64,
    pub page: PageId,
    pub key: String,
    pub person: String,
    pub channel: Channel,
    pub to: String,
    pub text: String,
    pub attempts: u32,
}

/// Someone called out: the first message of a page to a person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Callout {
    pub page: PageId,
    pub person: String,
    /// The schedule that named them (none: the policy named them directly).
    pub schedule: Option<String>,
    pub at: DateTime<Utc>,
    /// The time on their own clock, `2027-03-02T03:12 Europe/Berlin`.
    pub local_time: String,
    /// Outside their working hours.
    pub off_hours: bool,
}

/// A page whose next step is due, leased to whoever took it.
#[derive(Debug, Clone, PartialEq)]
pub struct DuePage {
    pub id: PageId,
    pub alarm: String,
    pub policy: String,
    pub summary: String,
    pub owner: Option<String>,
    pub position: Position,
    pub due: DateTime<Utc>,
}

/// One step of one page, as the engine decided it: committed only if the page still
/// stands where it stood when it was taken (open, at `from`).
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    pub page: PageId,
    pub from: Position,
    pub messages: Vec<NewMessage>,
    pub callouts: Vec<Callout>,
    pub timeline: Vec<String>,
    /// Where the page stands next and when that is due; `None`: unanswered.
    pub next: Option<(Position, DateTime<Utc>)>,
    /// Told to the team's notice sinks with the step (nobody acknowledged).
    pub notices: Vec<Notice>,
}

/// What someone did to a page.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// "I have it": `by` owns the page; nobody else is called.
    Acknowledge { by: String, via: Via },
    /// Call the next stage now.
    Escalate { by: Option<String>, via: Via },
    /// It is over.
    Resolve { by: Option<String>, via: Via },
}

/// What an action did.
#[derive(Debug, Clone, PartialEq)]
pub enum Acted {
    Done(PageSummary),
    /// The page was not in a state the action applies to (acknowledging a resolved page).
    Refused(PageState),
    NoSuchPage,
}

/// Told to everyone a page reached so far, with an action (it was acknowledged, it is
/// resolved), except `except` (the person who acted).
#[derive(Debug, Clone, PartialEq)]
pub struct Tell {
    pub text: String,
    pub except: Option<String>,
    /// Queued as they are, with the action (the AWS case told who owns the page).
    pub also: Vec<NewMessage>,
}

#[async_trait]
pub trait PageLedger: Send + Sync {
    /// Opens a page, or attaches the event to the live page of its key.
    async fn raise(&self, page: NewPage) -> Result<Raised, LedgerError>;
    /// The live page of a key, if any.
    async fn live(&self, key: &str) -> Result<Option<PageSummary>, LedgerError>;
    /// Up to `limit` open pages whose step is due at `now`, each leased until `until`.
    async fn due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DuePage>, LedgerError>;
    /// Commits one step; `false`: the page moved meanwhile (acknowledged, escalated by
    /// hand, or stepped by another instance), and nothing was written.
    async fn advance(&self, step: Advance, now: DateTime<Utc>) -> Result<bool, LedgerError>;
    /// Acknowledges, escalates or resolves a page, with its line on the timeline and what
    /// is told to the people it reached.
    async fn act(
        &self,
        page: PageId,
        action: Action,
        tell: Option<Tell>,
        now: DateTime<Utc>,
    ) -> Result<Acted, LedgerError>;
    /// Pages, newest first: live ones only, or all.
    async fn pages(&self, live_only: bool, limit: usize) -> Result<Vec<PageSummary>, LedgerError>;
    /// Pages opened at or after `since`, newest first (the report and a review read a span,
    /// never the whole history).
    async fn pages_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PageSummary>, LedgerError>;
    async fn page(&self, id: PageId) -> Result<Option<PageRecord>, LedgerError>;
    /// Up to `limit` queued messages, each leased until `until`.
    async fn take_messages(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutMessage>, LedgerError>;
    /// A message was handed to its channel (`Ok`), or failed: tried again at `retry`, or
    /// given up (`retry` none), on the page's timeline either way.
    async fn message_done(
        &self,
        id: i64,
        result: Result<(), String>,
        retry: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError>;
    /// Callouts made in `[from, until)`.
    async fn callouts(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Callout>, LedgerError>;
}
