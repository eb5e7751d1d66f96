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

use crate::domain::alarm::{Alarm, AlarmState};
use crate::domain::notice::Notice;
use crate::domain::settings::{AlarmConfigStore, AlarmSettings, StoreError};
use crate::oncall::file::OnCall;
use crate::ports::ledger::LedgerError;
use crate::ports::metrics::{Event, MetricsSink, NoMetrics};
use crate::ports::pages::{
    Acted, Action, Advance, Callout, DuePage, NewMessage, NewPage, PageLedger, PageSummary, Raised,
    Tell, Transport,
};

use super::escalation::{self, Recipient, Step};
use super::text;
use crate::domain::page::{PageId, Via};

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

    /// What a page is kept apart by: the alarm's group, so its members share one page.
    pub fn key(alarm: &Alarm, settings: &AlarmSettings) -> String {
        match &settings.group {
            Some(g) => format!("group:{g}"),
            None => alarm.key().to_owned(),
        }
    }

    /// An alarm event whose route includes people: ALARM opens a page (or attaches to the
    /// live one); OK resolves the live one and tells the people it reached. Idempotent by
    /// the event: a redelivery changes nothing.
    pub async fn on_alarm(
        &self,
        alarm: &Alarm,
        settings: &AlarmSettings,
    ) -> Result<Paged, PagingError> {
        if !settings.route.pages() {
            return Ok(Paged::Nothing);
        }
        let key = Self::key(alarm, settings);
        let now = self.now();
        match alarm.state {
            AlarmState::Alarm => {
                let policy = settings
                    .policy
                    .clone()
                    .or_else(|| self.default_policy.clone())
                    .unwrap_or_default();
                let on_call = self.on_call().await?;
                let named = escalation::policy_named(&on_call, &policy);
                let health = self.health_issue(alarm).await;
                let grace = match (&health, &named) {
                    (Some(_), Some(p)) => p.health_grace,
                    _ => Duration::ZERO,
                };
                let first = named
                    .as_ref()
                    .map_or(Duration::ZERO, escalation::first_wait)
                    + grace;
                let summary = match &health {
                    Some(h) => text::with_health(&text::summary(alarm), h),
                    None => text::summary(alarm),
                };
                let raised = self
                    .pages
                    .raise(NewPage {
                        key,
                        alarm: alarm.name.clone(),
                        policy,
                        summary,
                        event: alarm.event_key(),
                        at: now,
                        first_due: now + first,
                    })
                    .await?;
                if let Raised::Opened(_) = raised {
                    self.metrics.record(Event::PageOpened);
                    self.wake.notify_one();
                }
                Ok(raised.into())
            }
            AlarmState::Ok => {
                let Some(live) = self.pages.live(&key).await? else {
                    return Ok(Paged::Nothing);
                };
                // Kept open by its policy once anyone was called; during its `wait`, before
                // anyone was, an OK always ends it.
                let called = live.position != crate::domain::page::Position::START;
                let on_call = self.on_call().await?;
                let keep = escalation::policy_named(&on_call, &live.policy)
                    .is_some_and(|p| !p.resolve_on_ok);
                if called && keep {
                    return Ok(Paged::Nothing);
                }
                let tell = Tell {
                    text: text::resolved(live.id, &alarm.name, live.owner.as_deref()),
                    except: None,
                    also: Vec::new(),
                };
                let acted = self
                    .pages
                    .act(
                        live.id,
                        Action::Resolve {
                            by: None,
                            via: Via::Alarm,
                        },
                        Some(tell),
                        now,
                    )
                    .await?;
                self.wake.notify_one();
                Ok(match acted {
                    Acted::Done(_) => Paged::Resolved(live.id),
                    _ => Paged::Nothing,
                })
            }
            AlarmState::InsufficientData => Ok(Paged::Nothing),
        }
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
        let acted = self.pages.act(page, action, tell, self.now()).await?;
        if let (Acted::Done(_), Some(e)) = (&acted, event) {
            self.metrics.record(e);
        }
        self.wake.notify_one();
        Ok(acted)
    }

    /// The message to the alarm's open AWS case saying who has the page (none when no case
    /// is open for it, or the case ledger cannot say).
    async fn case_told(&self, page: &PageSummary, by: &str) -> Vec<NewMessage> {
        let Some(ledger) = &self.cases else {
            return Vec::new();
        };
        let case = match page.key.strip_prefix("group:") {
            Some(group) => ledger.open_cases().await.map(|open| {
                open.into_iter()
                    .find(|c| c.group.as_deref() == Some(group))
                    .map(|c| c.case_id)
            }),
            None => ledger
                .open_case(&page.key)
                .await
                .map(|c| c.map(|c| c.case_id)),
        };
        let case = match case {
            Ok(Some(case)) if !case.is_empty() => case,
            Ok(_) => return Vec::new(),
            Err(e) => {
                tracing::warn!(page = %page.id, error = %crate::errors::Chain(&e), "the page's case could not be looked up; it is not told who owns the page");
                return Vec::new();
            }
        };
        let name = match self.on_call().await {
            Ok(on_call) => on_call
                .people
                .iter()
                .find(|p| p.id.as_str() == by)
                .map(|p| p.name.clone()),
            Err(_) => None,
        };
        let now = self.now();
        vec![NewMessage {
            key: format!("{}/case@{}", page.id, now.timestamp_micros()),
            person: by.to_owned(),
            channel: crate::domain::page::Channel::Case,
            to: case,
            text: text::case_owner(page.id, by, name.as_deref(), now),
            stage: None,
            round: None,
        }]
    }

    /// What AWS Health says while it reports an open issue with the alarm's service in the
    /// alarm's region (an open case of a Health event names both in its ARN).
    async fn health_issue(&self, alarm: &Alarm) -> Option<String> {
        let (ledger, service) = (self.cases.as_ref()?, alarm.aws_service()?);
        let region = alarm.identity.region.clone()?;
        let open = match ledger.open_cases().await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %crate::errors::Chain(&e), "AWS Health's open issues could not be read; the page does not wait for them");
                return None;
            }
        };
        open.iter()
            .filter_map(|c| crate::domain::alarm::service::health_issue(&c.alarm_key))
            .find(|(s, r)| *s == service && (*r == region || r == "global"))
            .map(|(s, r)| format!("AWS reports an issue with {s} in {r}"))
    }

    /// Runs every step due now: how many were committed.
    pub async fn cycle(&self) -> Result<usize, PagingError> {
        let now = self.now();
        let due = self.pages.due(now, now + LEASE, BATCH).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let on_call = self.on_call().await?;
        // The steps are committed side by side: the ledger writes those waiting together in
        // one transaction (SQLite's group commit), so a thousand due pages cost a few
        // fsyncs, not a thousand.
        let mut steps = tokio::task::JoinSet::new();
        let at_once = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
        for page in due {
            let step = self.plan(&page, &on_call, now);
            let unanswered = step.next.is_none();
            let escalated = page.position.stage > 0 && !step.messages.is_empty();
            let (pages, at_once) = (self.pages.clone(), at_once.clone());
            steps.spawn(async move {
                let _turn = at_once.acquire_owned().await;
                let id = step.page;
                (id, unanswered, escalated, pages.advance(step, now).await)
            });
        }
        let mut done = 0;
        while let Some(joined) = steps.join_next().await {
            let Ok((id, unanswered, escalated, advanced)) = joined else {
                continue;
            };
            match advanced {
                Ok(true) => {
                    done += 1;
                    if unanswered {
                        self.metrics.record(Event::PageUnanswered);
                        self.notices.wake();
                    }
                    if escalated {
                        self.metrics.record(Event::PageEscalated);
                    }
                }
                Ok(false) => {}
                // One page that cannot be stepped (its store refuses the write) must not
                // hold back the others: it is in the log, and taken again after its lease.
                Err(e) => {
                    tracing::error!(page = %id, error = %crate::errors::Chain(&e), "a page's step could not be committed; tried again after its lease");
                }
            }
        }
        Ok(done)
    }

    /// One page's due step, decided.
    fn plan(&self, page: &DuePage, on_call: &OnCall, now: DateTime<Utc>) -> Advance {
        let mut advance = Advance {
            page: page.id,
            from: page.position,
            messages: Vec::new(),
            callouts: Vec::new(),
            timeline: Vec::new(),
            next: None,
            notices: Vec::new(),
        };
        let Some(policy) = escalation::policy_named(on_call, &page.policy) else {
            advance.timeline.push(text::no_policy(&page.policy));
            advance.notices = self.unanswered(page);
            return advance;
        };
        match escalation::step(&policy, page.position) {
            Step::Notify {
                targets,
                next,
                wait,
            } => {
                let (reached, problems) = escalation::recipients(on_call, &targets, now);
                advance
                    .timeline
                    .push(text::stage_line(page.position, &reached));
                advance.timeline.extend(problems);
                for r in &reached {
                    self.reach(page, r, now, &mut advance);
                }
                advance.next = Some((next, now + wait));
            }
            Step::NextRound { next, wait } => {
                advance.timeline.push(format!(
                    "nobody acknowledged: round {} begins",
                    next.round + 1
                ));
                advance.next = Some((next, now + wait));
            }
            Step::Exhausted => {
                advance
                    .timeline
                    .push("nobody acknowledged after every stage: unanswered".into());
                advance.notices = self.unanswered(page);
            }
        }
        advance
    }

    /// The messages and the callout of one person reached by a stage.
    fn reach(&self, page: &DuePage, r: &Recipient, now: DateTime<Utc>, advance: &mut Advance) {
        let person = r.person.id.as_str();
        let link = self.links.as_ref().map(|l| l.link(page.id, person, now));
        for (channel, to) in escalation::contacts(&r.person) {
            advance.messages.push(NewMessage {
                key: escalation::message_key(page.id, page.position, person, channel),
                person: person.to_owned(),
                channel,
                to,
                text: text::page_message(page, channel, link.as_deref()),
                stage: Some(page.position.stage),
                round: Some(page.position.round),
            });
        }
        let tz = r.person.time_zone;
        advance.callouts.push(Callout {
            page: page.id,
            person: person.to_owned(),
            schedule: r.schedule.clone(),
            at: now,
            local_time: format!(
                "{} {}",
                now.with_timezone(&tz).format("%Y-%m-%dT%H:%M"),
                tz.name()
            ),
            off_hours: r.person.off_hours(now),
        });
    }

    fn unanswered(&self, page: &DuePage) -> Vec<Notice> {
        match self.notices.is_on() {
            true => vec![Notice::Unanswered {
                page: page.id.0,
                alarm: page.alarm.clone(),
                summary: page.summary.clone(),
            }],
            false => Vec::new(),
        }
    }

    /// Hands every queued message to its channel: how many went.
    pub async fn send_due(&self) -> Result<usize, PagingError> {
        let now = self.now();
        let taken = self.pages.take_messages(now, now + LEASE, BATCH).await?;
        // Sent side by side: one slow provider call holds back no other message.
        let mut sends = tokio::task::JoinSet::new();
        let at_once = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
        for m in taken {
            let (transport, pages) = (self.transport.clone(), self.pages.clone());
            let (metrics, clock) = (self.metrics.clone(), self.clock.clone());
            let at_once = at_once.clone();
            sends.spawn(async move {
                let _turn = at_once.acquire_owned().await;
                send_one(m, transport, pages, metrics, clock).await
            });
        }
        let mut sent = 0;
        while let Some(joined) = sends.join_next().await {
            match joined {
                Ok(Ok(true)) => sent += 1,
                Ok(Ok(false)) | Err(_) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        }
        Ok(sent)
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

/// Hands one message to its channel and records what became of it: `true` when it went.
async fn send_one(
    m: crate::ports::pages::OutMessage,
    transport: Arc<dyn Transport>,
    pages: Arc<dyn PageLedger>,
    metrics: Arc<dyn MetricsSink>,
    clock: Clock,
) -> Result<bool, LedgerError> {
    let result = transport.send(&m).await;
    let now = clock();
    let retry = match &result {
        Err(_) if m.attempts + 1 < ATTEMPTS => {
            let pause = RETRY * 2u32.pow(m.attempts);
            Some(now + chrono::Duration::from_std(pause).unwrap_or(LEASE))
        }
        _ => None,
    };
    let outcome = result.map_err(|e| e.to_string());
    let went = outcome.is_ok();
    match &outcome {
        Ok(()) => metrics.record(Event::PageMessageSent),
        Err(e) => {
            tracing::warn!(page = %m.page, channel = m.channel.as_str(), error = %e, "a page's message failed");
            metrics.record(Event::PageMessageFailed);
        }
    }
    pages.message_done(m.id, outcome, retry, now).await?;
    Ok(went)
}
