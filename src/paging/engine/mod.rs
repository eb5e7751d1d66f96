//! The pager: opens a page when an alarm routed to people fires (or attaches it to the
//! live one), resolves it when the alarm is OK again, and runs the escalation engine, after
//! GoAlert's: each cycle takes the pages whose step is due (leased, so one instance of a
//! fleet runs each), decides the step as plain code ([`super::escalation`]) and commits it
//! in one transaction: the messages it queues (each under its idempotency key), the
//! callouts, the timeline and where the page stands next. Sending is a separate queue, so
//! a slow provider never delays an escalation; nothing lives only in memory, so a crash or
//! a restart carries on from the last commit within the lease.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::notice::Notice;
use crate::domain::settings::{AlarmConfigStore, StoreError};
use crate::oncall::file::OnCall;
use crate::ports::ledger::LedgerError;
use crate::ports::metrics::{Event, Measure, MetricsSink, NoMetrics};
use crate::ports::pages::{
    Acted, Action, Advance, Callout, DuePage, NewMessage, NewPage, PageLedger, PageSummary, Raised,
    Tell, Transport,
};

use super::escalation::{self, Recipient, Step};
use super::text;
use crate::domain::page::PageId;

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How long a due page or a taken message is this instance's: a step's commit and a
/// provider's answer fit in it many times; if the instance dies, another carries on once
/// it lapses.
const LEASE: chrono::Duration = chrono::Duration::seconds(30);
/// How often the ledger is asked what is due when nothing wakes the engine: a step fires
/// within this of its due time.
pub const POLL: Duration = Duration::from_millis(250);
/// Pages stepped, and messages taken, per round.
const BATCH: usize = 256;
/// Steps committed, and messages sent, at once: enough for SQLite's group commit to take
/// many in one fsync, few enough not to swamp a store or a provider that serialises.
const AT_ONCE: usize = 16;
/// Attempts per message before it is given up (its failure is on the page's timeline).
const ATTEMPTS: u32 = 3;
/// The pause before a failed message is tried again (doubled each time).
const RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum PagingError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the saved on-duty file no longer reads: {0}")]
    OnCall(#[from] crate::oncall::file::FileError),
}

/// What an alarm event did to pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paged {
    Opened(PageId),
    /// A page was live for the alarm (or its group): the alarm joined it.
    Attached(PageId),
    /// This very event was handled before.
    Again(PageId),
    /// The alarm is OK again: its live page was resolved.
    Resolved(PageId),
    /// Nothing to do (OK with no live page, INSUFFICIENT_DATA).
    Nothing,
}

impl From<Raised> for Paged {
    fn from(r: Raised) -> Self {
        match r {
            Raised::Opened(p) => Self::Opened(p),
            Raised::Attached(p) => Self::Attached(p),
            Raised::Again(p) => Self::Again(p),
        }
    }
}

/// Opens, acts on and escalates pages.
pub struct Pager {
    pages: Arc<dyn PageLedger>,
    config: Arc<dyn AlarmConfigStore>,
    transport: Arc<dyn Transport>,
    metrics: Arc<dyn MetricsSink>,
    /// Whether the team's notice sinks are on (an unanswered page is told to them).
    notices: crate::paging::notices::Notifier,
    /// The policy of pages whose alarm names none (`PAGE_POLICY`).
    default_policy: Option<String>,
    clock: Clock,
    wake: tokio::sync::Notify,
    /// Makes the acknowledgement link each message carries (`PUBLIC_URL`).
    links: Option<super::links::PageLinks>,
    /// Where the alarms' open cases are known, so that the case is told who owns the page.
    cases: Option<Arc<dyn crate::ports::ledger::CaseLedger>>,
}

impl Pager {
    pub fn new(
        pages: Arc<dyn PageLedger>,
        config: Arc<dyn AlarmConfigStore>,
        transport: Arc<dyn Transport>,
        default_policy: Option<String>,
    ) -> Self {
        Self {
            pages,
            config,
            transport,
            metrics: Arc::new(NoMetrics),
            notices: crate::paging::notices::Notifier::none(),
            default_policy,
            clock: Arc::new(Utc::now),
            wake: tokio::sync::Notify::new(),
            links: None,
            cases: None,
        }
    }

    pub fn with_metrics(mut self, metrics: Arc<dyn MetricsSink>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Messages carry an acknowledgement link.
    pub fn with_links(mut self, links: Option<super::links::PageLinks>) -> Self {
        self.links = links;
        self
    }

    /// The AWS case of an acknowledged page's alarm is told who owns it.
    pub fn with_cases(mut self, cases: Arc<dyn crate::ports::ledger::CaseLedger>) -> Self {
        self.cases = Some(cases);
        self
    }

    pub fn links(&self) -> Option<&super::links::PageLinks> {
        self.links.as_ref()
    }

    pub fn with_notifier(mut self, notices: crate::paging::notices::Notifier) -> Self {
        self.notices = notices;
        self
    }

    /// Replaces the wall clock (tests on tokio's paused clock).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn ledger(&self) -> &Arc<dyn PageLedger> {
        &self.pages
    }

    /// The saved on-duty file (an empty setup when none was imported). Read at each use, so
    /// an import on any instance is seen at the next step.
    /// The saved on-duty file, as the console shows it.
    pub async fn on_call_file(&self) -> Result<OnCall, PagingError> {
        self.on_call().await
    }

    async fn on_call(&self) -> Result<OnCall, PagingError> {
        match self.config.on_call().await? {
            Some(text) => Ok(crate::oncall::file::import(&text)?),
            None => Ok(OnCall::default()),
        }
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Whether the team pages by default (`PAGE_POLICY` is set).
    pub fn has_default_policy(&self) -> bool {
        self.default_policy.is_some()
    }

    /// `PAGE_POLICY`.
    pub(super) fn default_policy(&self) -> Option<&str> {
        self.default_policy.as_deref()
    }

    /// Something became due: look now rather than at the next poll.
    pub(super) fn woken(&self) {
        self.wake.notify_one();
    }

    /// Acknowledges, escalates or resolves a page, telling the people it reached.
    pub async fn act(&self, page: PageId, action: Action) -> Result<Acted, PagingError> {
        let Some(record) = self.pages.page(page).await? else {
            return Ok(Acted::NoSuchPage);
        };
        let alarm = &record.page.alarm;
        let tell = match &action {
            Action::Acknowledge { by, .. } => Some(Tell {
                text: text::acknowledged(page, alarm, by),
                except: Some(by.clone()),
                also: self.case_told(&record.page, by).await,
            }),
            Action::Resolve { by, .. } => Some(Tell {
                text: text::resolved(page, alarm, by.as_deref().or(record.page.owner.as_deref())),
                except: by.clone(),
                also: Vec::new(),
            }),
            Action::Escalate { .. } => None,
        };
        let event = match &action {
            Action::Acknowledge { .. } => Some(Event::PageAcknowledged),
            Action::Escalate { .. } => Some(Event::PageEscalated),
            Action::Resolve { .. } => None,
        };
        // The first "I have it" ends the page's time to acknowledge.
        let first_ack =
            matches!(action, Action::Acknowledge { .. }) && record.page.acknowledged_at.is_none();
        let now = self.now();
        let acted = self.pages.act(page, action, tell, now).await?;
        if let (Acted::Done(_), Some(e)) = (&acted, event) {
            self.metrics.record(e);
            if first_ack {
                let waited = (now - record.page.opened_at).num_milliseconds() as f64 / 1000.0;
                self.metrics.observe(Measure::TimeToAcknowledge, waited);
            }
        }
        self.wake.notify_one();
        Ok(acted)
    }

    /// Escalates and sends until `stop`, looking every [`POLL`] or when woken.
    pub async fn run_until(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let (stepped, sent) = (self.cycle().await, self.send_due().await);
            // A full batch: more is waiting; take it now rather than after a poll.
            let more =
                matches!(&stepped, Ok(n) if *n >= BATCH) || matches!(&sent, Ok(n) if *n >= BATCH);
            for (what, r) in [("escalate", stepped), ("send", sent)] {
                if let Err(e) = r {
                    tracing::warn!(error = %crate::errors::Chain(&e), what, "paging could not run; trying again");
                }
            }
            if more {
                continue;
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

mod alarms;
mod steps;
