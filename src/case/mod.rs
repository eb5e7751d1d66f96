//! What is decided: the case logic. Given one validated alarm event and how it was
//! delivered, decide whether to open a case, add to the open one, or do nothing, then do it
//! and record it. Plain code over three small traits (config store, ledger, support desk),
//! so it runs the same on AWS and on the local backend, and is tested with no network.
//!
//! A delivery takes three steps, one file each: [`facts`] reads what the decision needs,
//! [`plan::decide`] decides with no I/O at all (what the `process` command shows, every
//! fallback included), and [`execute`] carries the plan out and records it in one commit.
//! [`CaseService::handle`] runs the three while holding the alarm's lock, so two
//! concurrent deliveries of one alarm cannot both open a case. [`text`] holds what the
//! cases say; [`support_event`] AWS Support's own events; [`periodic`] the work the service
//! gives itself (reconcile, claims left by a stopped process).

mod execute;
mod facts;
use facts::{Dedupe, Reading};
mod held;
mod opening;
mod paged;
mod periodic;
pub mod plan;
mod policy;
mod preview;
pub mod readiness;
mod recent;
mod records;
pub mod report;
pub mod review;
mod support_event;
pub mod text;
pub mod told;
pub mod windows;

#[cfg(test)]
mod tests;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::domain::alarm::Alarm;
use crate::domain::delivery::Delivery;
use crate::domain::outcome::DecisionState;
pub use crate::domain::outcome::Outcome;
use crate::domain::settings::{AlarmConfigStore, StoreError};
use crate::ports::desk::{DeskError, SupportDesk};
use crate::ports::ledger::{CaseLedger, Commit, Decision, LedgerError};

pub use periodic::RecoveredClaims;
pub use plan::{Action, Facts, IfGone, Plan, Storm, decide};
pub use policy::{CasePolicy, HealthFilter};
use recent::Earlier;

pub use crate::ports::ledger::STORM_KEY;

/// What a reconcile run found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    /// Open cases asked about.
    pub checked: usize,
    /// Cases found resolved (or gone) and no longer held open.
    pub closed: Vec<String>,
    /// Alarms held during a maintenance window that has ended, handled now.
    pub raised: Vec<Handled>,
}

/// What [`CaseService::stop_claims`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoppedClaims {
    /// Let go at once: nothing had reached the desk under them.
    pub released: usize,
    /// Left to lapse within `CLAIM_TTL`: the desk may have acted under them.
    pub lapsing: usize,
}

/// The answer for one handled delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handled {
    pub outcome: Outcome,
    pub case_id: Option<String>,
    pub alarm: String,
    /// Why, when the outcome alone does not say (the decision's note in the ledger): what
    /// held a recovery note back, what a duplicate repeats, which window suppressed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a delivery could not be handled now. All of these are worth a retry except a
/// refusal by the desk itself.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Config(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Desk(#[from] DeskError),
    /// Another delivery (perhaps on another instance) is opening this alarm's case now.
    #[error("another delivery is opening a case for this alarm")]
    Busy,
    /// The claim found the event handled already (by another instance, or before a
    /// restart): [`CaseService::handle`] answers it as a duplicate, so it never gets past.
    #[error("the event was handled already")]
    Handled(Box<Decision>),
    /// The claim found a case open for the alarm, which the decision did not know of:
    /// `handle` decides again with what it found.
    #[error("a case was opened for this alarm since the decision")]
    Changed(Box<crate::ports::ledger::Lookup>),
    /// This process is stopping and gave up on the work before it reached the desk (its
    /// shutdown grace ran out): the delivery is handed back, for another instance.
    #[error("the service is shutting down")]
    Stopping,
    /// The alarm comes from an account this service does not serve (neither its own nor one
    /// of `ACCOUNT_ROLES`): nothing is opened, with anyone's credentials.
    #[error(
        "the alarm comes from AWS account {0}, which this service does not serve: add \
         `{0}=<role ARN>` to ACCOUNT_ROLES to open its cases there"
    )]
    AccountNotServed(String),
    #[error(transparent)]
    Paging(#[from] crate::paging::engine::PagingError),
}

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Serialises the handling of each alarm within this process without a lock per alarm
/// ever being allocated: alarms hash onto a fixed set of stripes, so memory stays bounded
/// whatever the input. Two alarms sharing a stripe only wait for each other.
struct AlarmLocks {
    stripes: Vec<Mutex<()>>,
}

impl AlarmLocks {
    fn new(n: usize) -> Self {
        Self {
            stripes: (0..n).map(|_| Mutex::new(())).collect(),
        }
    }

    fn stripe(&self, key: &str) -> &Mutex<()> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let i = (h.finish() % self.stripes.len() as u64) as usize;
        &self.stripes[i]
    }
}

pub struct CaseService {
    config: Arc<dyn AlarmConfigStore>,
    ledger: Arc<dyn CaseLedger>,
    desk: Arc<dyn SupportDesk>,
    policy: CasePolicy,
    locks: AlarmLocks,
    clock: Clock,
    /// Tells people what happened (off the request path).
    notifier: crate::paging::notices::Notifier,
    /// Draws the graph attached to a metric alarm's new case.
    grapher: Arc<dyn crate::ports::graph::Grapher>,
    /// The alarm's own `cw-support:` tags, between its stored settings and the defaults.
    tags: Arc<dyn crate::ports::tags::TagSource>,
    /// Handled keys known to be durable: a redelivery is answered from here.
    recent: recent::RecentKeys,
    /// The claims work is running under, for a shutdown that gives up on that work.
    held: held::HeldClaims,
    /// Events already told as failed (`Notice::Failed`): a message that fails on every
    /// redelivery until the dead-letter queue is told once per process.
    told_failed: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Pages the people on duty for alarms routed to them ([`paged`]).
    pager: Option<Arc<crate::paging::engine::Pager>>,
    /// Where the time to AWS's first reply is measured (CloudWatch on the aws backend).
    metrics: Arc<dyn crate::ports::metrics::MetricsSink>,
}

/// The note of a duplicate: which decision it repeats.
fn first_handled(earlier: &Earlier) -> String {
    format!(
        "first handled as #{} ({})",
        earlier.seq,
        earlier.outcome.as_str()
    )
}

impl CaseService {
    pub fn new(
        config: Arc<dyn AlarmConfigStore>,
        ledger: Arc<dyn CaseLedger>,
        desk: Arc<dyn SupportDesk>,
        policy: CasePolicy,
    ) -> Self {
        Self {
            config,
            ledger,
            desk,
            locks: AlarmLocks::new(64),
            clock: Arc::new(Utc::now),
            notifier: crate::paging::notices::Notifier::none(),
            grapher: Arc::new(crate::ports::graph::NoGrapher),
            tags: Arc::new(crate::ports::tags::NoTags),
            recent: recent::RecentKeys::new(recent::PER_GENERATION, policy.remember_handled),
            held: held::HeldClaims::default(),
            told_failed: Default::default(),
            pager: None,
            metrics: Arc::new(crate::ports::metrics::NoMetrics),
            policy,
        }
    }

    /// Where the time to AWS's first reply is measured.
    pub fn with_metrics(mut self, metrics: Arc<dyn crate::ports::metrics::MetricsSink>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The service's own account, once known (STS): alarms from other accounts not in
    /// `ACCOUNT_ROLES` are refused.
    pub fn with_own_account(mut self, account: Option<String>) -> Self {
        self.policy.own_account = account;
        self
    }

    /// Why an alarm may open nothing at all: it comes from an account this service does not
    /// serve.
    fn refusal(&self, alarm: &Alarm) -> Option<CaseError> {
        alarm
            .identity
            .account
            .as_deref()
            .filter(|a| !self.policy.serves(a))
            .map(|a| CaseError::AccountNotServed(a.to_owned()))
    }

    /// The notices to queue with a decision: none when nobody is told.
    fn told(
        &self,
        notices: Vec<crate::domain::notice::Notice>,
    ) -> Vec<crate::domain::notice::Notice> {
        match self.notifier.is_on() {
            true => notices,
            false => Vec::new(),
        }
    }

    /// The notice that an alarm could not become a case, once per event in this process
    /// (a message refused on every redelivery until the dead-letter queue is told once).
    fn failed_notice(&self, alarm: &Alarm, reason: String) -> Vec<crate::domain::notice::Notice> {
        let mut told = self.told_failed.lock().unwrap_or_else(|p| p.into_inner());
        if told.len() >= 4096 {
            told.clear();
        }
        match told.insert(alarm.event_key()) {
            true => self.told(vec![crate::domain::notice::Notice::Failed {
                alarm: alarm.name.clone(),
                reason,
            }]),
            false => Vec::new(),
        }
    }

    /// Where alarm tags are read (CloudWatch on the aws backend).
    pub fn with_tags(mut self, tags: Arc<dyn crate::ports::tags::TagSource>) -> Self {
        self.tags = tags;
        self
    }

    /// Who draws the graphs (CloudWatch on the aws backend).
    pub fn with_grapher(mut self, grapher: Arc<dyn crate::ports::graph::Grapher>) -> Self {
        self.grapher = grapher;
        self
    }

    /// Replaces the rules (tests of cooldowns, leases and storms).
    pub fn with_policy(mut self, policy: CasePolicy) -> Self {
        self.recent = recent::RecentKeys::new(recent::PER_GENERATION, policy.remember_handled);
        self.policy = policy;
        self
    }

    /// Who is told what happened.
    pub fn with_notifier(mut self, notifier: crate::paging::notices::Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    /// Replaces the wall clock, for tests of the update cooldown.
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn ledger(&self) -> &Arc<dyn CaseLedger> {
        &self.ledger
    }

    /// The support desk (the console reads a case's communications and graph from it).
    pub fn desk(&self) -> &Arc<dyn SupportDesk> {
        &self.desk
    }

    /// Who is told: `serve` and `consume` run its sender.
    pub fn notifier(&self) -> &crate::paging::notices::Notifier {
        &self.notifier
    }

    /// For a shutdown whose grace ran out with work still running (its deliveries are
    /// handed back): no work reaches the desk under a claim from now on, and the claims
    /// whose work had not reached it are let go at once, so the next instance takes the
    /// deliveries up without waiting for them to lapse. Claims under which the desk may have
    /// acted are left to lapse (`CLAIM_TTL`): whoever takes one over looks for its case
    /// first.
    pub async fn stop_claims(&self) -> StoppedClaims {
        let (free, lapsing) = self.held.stop();
        let mut released = 0;
        for claim in &free {
            match self.ledger.release(claim).await {
                Ok(()) => released += 1,
                Err(e) => {
                    tracing::warn!(key = %claim.alarm_key, error = %crate::errors::Chain(&e), "could not let a claim go at shutdown; it lapses by itself")
                }
            }
        }
        StoppedClaims { released, lapsing }
    }

    /// Decides what to do with an alarm event without changing anything.
    pub async fn plan(&self, delivery: &Delivery, alarm: &Alarm) -> Result<Plan, CaseError> {
        self.plan_with(delivery, alarm, Dedupe::Check, Reading::Read)
            .await
            .map(|(plan, _)| plan)
    }

    async fn plan_with(
        &self,
        delivery: &Delivery,
        alarm: &Alarm,
        dedupe: Dedupe,
        reading: Reading,
    ) -> Result<(Plan, Reading), CaseError> {
        let (facts, reading) = self.facts(delivery, alarm, dedupe, reading).await?;
        let plan = decide(alarm, facts, &self.policy);
        if reading == Reading::Assume && !matches!(plan.action, Action::Create { .. }) {
            let (facts, _) = self.facts(delivery, alarm, dedupe, Reading::Read).await?;
            return Ok((decide(alarm, facts, &self.policy), Reading::Read));
        }
        Ok((plan, reading))
    }

    /// Decides and acts, then records the decision. Nothing is recorded unless the desk
    /// accepted the action, so a failure here leaves the delivery to be retried.
    /// Decides and acts. When another delivery holds the alarm's claim (it is opening the
    /// case right now, perhaps on another instance), waits for it, up to `busy_wait`, and
    /// decides again: the usual answer is then `duplicate` with the case it opened.
    pub async fn handle(&self, delivery: &Delivery, alarm: &Alarm) -> Result<Handled, CaseError> {
        // A redelivery of what this process recorded is answered from memory: no lock, no
        // settings, no ledger read.
        let keys = records::handled_keys(delivery, alarm);
        if let Some(earlier) = self.recent.find(&keys) {
            return Ok(self.duplicate(delivery, alarm, &earlier).await);
        }
        if let Some(refused) = self.refusal(alarm) {
            tracing::warn!(alarm = %alarm.name, error = %refused, "an alarm from an account this service does not serve; nothing opened");
            // No decision is recorded (the message goes back to its queue): the notice is
            // queued on its own, before the answer.
            self.notifier
                .enqueue(self.failed_notice(alarm, refused.to_string()))
                .await?;
            return Err(refused);
        }
        if let Some(handled) = self.page(delivery, alarm).await? {
            return Ok(handled);
        }
        let deadline = tokio::time::Instant::now() + self.policy.busy_wait;
        // Waiting for another delivery of the same alarm: 50 ms, doubling, at most 1 s.
        let backoff =
            crate::retry::Backoff::new(Duration::from_millis(50), 2, Duration::from_secs(1));
        let mut waits = 0;
        let mut reading = Reading::Assume;
        loop {
            let (result, assumed) = {
                let _guard = self.locks.stripe(alarm.key()).lock().await;
                match self
                    .plan_with(
                        delivery,
                        alarm,
                        Dedupe::Check,
                        std::mem::replace(&mut reading, Reading::Read),
                    )
                    .await
                {
                    Ok((plan, how)) => (
                        self.execute(delivery, alarm, plan, Dedupe::Check).await,
                        how == Reading::Assume,
                    ),
                    Err(e) => (Err(e), false),
                }
            };
            // A conflict means another delivery recorded this event (or took the claim
            // over) first: deciding again finds what it did.
            let again = matches!(
                result,
                Err(CaseError::Busy | CaseError::Ledger(LedgerError::Conflict(_)))
            );
            match result {
                // The claim's check found the first decision: a duplicate, as from memory.
                Err(CaseError::Handled(earlier)) => {
                    let earlier = Earlier::of(&earlier);
                    self.recent.remember(&keys, earlier.clone());
                    return Ok(self.duplicate(delivery, alarm, &earlier).await);
                }
                // The claim found the alarm's open case: decide again with it, at once.
                Err(CaseError::Changed(found)) => reading = Reading::Found(found),
                // What was assumed did not hold: read it, at once.
                Err(_) if again && assumed => {}
                Err(_)
                    if again
                        && tokio::time::Instant::now() + backoff.after(waits + 1) < deadline =>
                {
                    waits += 1;
                    tokio::time::sleep(backoff.after(waits)).await;
                }
                Err(CaseError::Desk(DeskError::Rejected(reason))) => {
                    self.record_failure(delivery, alarm, &reason).await;
                    return Err(CaseError::Desk(DeskError::Rejected(reason)));
                }
                other => return other,
            }
        }
    }

    /// A worker-daemon redelivery of an alarm this process recorded, answered from its
    /// message id before its body is even parsed: SQS redelivers a message under the same
    /// id with the same body, so the id says which event it is (the daemon is trusted for
    /// its headers at admission). `None`: not known here; handle it as usual.
    pub async fn redelivered(&self, delivery: &Delivery) -> Option<Handled> {
        if delivery.kind != crate::domain::delivery::DeliveryKind::Sqsd {
            return None;
        }
        let id = delivery.sqsd_message_id.as_deref()?;
        let earlier = self
            .recent
            .find(&[crate::domain::delivery::HandledKey::Sqs(id.to_owned()).into()])?;
        let first = earlier.about.as_ref()?;
        let mut decision = Decision::new(
            delivery,
            first.alarm_key.clone(),
            first.alarm_name.clone(),
            Outcome::Duplicate,
            (self.clock)(),
        );
        decision.state = first.state;
        decision.state_change_time = first.state_change_time.clone();
        Some(self.noted_duplicate(decision, &earlier).await)
    }

    /// A duplicate answered from memory: noted in the ledger (a line of history the ledger
    /// may batch and need not make durable first), answered with the first decision's case.
    async fn duplicate(&self, delivery: &Delivery, alarm: &Alarm, earlier: &Earlier) -> Handled {
        let decision = Decision::about(delivery, alarm, Outcome::Duplicate, (self.clock)());
        self.noted_duplicate(decision, earlier).await
    }

    async fn noted_duplicate(&self, decision: Decision, earlier: &Earlier) -> Handled {
        let reason = first_handled(earlier);
        let decision = decision
            .on_case(earlier.case_id.clone())
            .noted(reason.clone());
        let alarm = decision.alarm_name.clone();
        if let Err(e) = self.ledger.note(decision).await {
            tracing::warn!(error = %crate::errors::Chain(&e), "could not note a duplicate");
        }
        Handled {
            outcome: Outcome::Duplicate,
            case_id: earlier.case_id.clone(),
            alarm,
            reason: Some(reason),
        }
    }

    /// A group of alerts delivered together (an Alertmanager or Grafana webhook): each is
    /// handled as an alarm of its own, one after another. The delivery's own ids are not
    /// theirs (one message carries them all), so each is known by its own event key. The
    /// first failure answers for the group: its sender retries it, and what was done is
    /// then a duplicate.
    pub async fn handle_all(
        &self,
        delivery: &Delivery,
        alarms: &[Alarm],
    ) -> Result<Vec<Handled>, CaseError> {
        let mut each = delivery.clone();
        each.sqsd_message_id = None;
        each.sns_message_id = None;
        let mut handled = Vec::with_capacity(alarms.len());
        for alarm in alarms {
            handled.push(self.handle(&each, alarm).await?);
        }
        Ok(handled)
    }

    /// A delivery that is news to no case (an alarm's configuration changed): recorded as
    /// ignored, with why, so the audit trail shows it arrived; a redelivery is a duplicate.
    pub async fn ignore(
        &self,
        delivery: &Delivery,
        about: &str,
        why: String,
    ) -> Result<Handled, CaseError> {
        let keys = delivery.dedupe_keys();
        if let Some(earlier) = self.recent.find(&keys) {
            return Ok(Handled {
                outcome: Outcome::Duplicate,
                case_id: None,
                alarm: about.to_owned(),
                reason: Some(first_handled(&earlier)),
            });
        }
        let decision = Decision::new(delivery, about, about, Outcome::Ignored, (self.clock)())
            .noted(why.clone());
        let seq = self
            .commit_retrying(Commit::record(keys.clone(), decision))
            .await?;
        self.recent.remember(
            &keys,
            Earlier {
                seq,
                outcome: Outcome::Ignored,
                case_id: None,
                about: None,
            },
        );
        Ok(Handled {
            outcome: Outcome::Ignored,
            case_id: None,
            alarm: about.to_owned(),
            reason: Some(why),
        })
    }

    /// The desk refused what no retry can fix: recorded as `failed` with its reason (the
    /// event is not marked handled, so a redelivery tries again after a fix).
    async fn record_failure(&self, delivery: &Delivery, alarm: &Alarm, reason: &str) {
        tracing::error!(alarm = %alarm.name, reason, "the support desk refused the case, with the default codes too");
        let notices = self.failed_notice(
            alarm,
            format!(
                "AWS Support refused it ({})",
                reason.chars().take(300).collect::<String>()
            ),
        );
        let decision = Decision::about(delivery, alarm, Outcome::Failed, (self.clock)())
            .noted(reason.chars().take(500).collect::<String>());
        match self
            .ledger
            .commit(Commit::record(Vec::new(), decision).telling(notices))
            .await
        {
            Ok(_) => self.notifier.wake(),
            Err(e) => {
                tracing::warn!(error = %crate::errors::Chain(&e), "could not record a failed decision")
            }
        }
    }

    /// Records a subscription event (confirmed, unsubscribed) in the ledger, so the audit
    /// trail shows when this endpoint started or stopped hearing from a topic.
    pub async fn record_subscription(
        &self,
        delivery: &Delivery,
        topic_arn: &str,
        kind: crate::domain::delivery::MessageKind,
        timestamp: &str,
        outcome: Outcome,
        note: Option<String>,
    ) -> Result<(), CaseError> {
        let mut decision =
            Decision::new(delivery, topic_arn, topic_arn, outcome, (self.clock)()).noted(note);
        decision.state = DecisionState::Subscription(kind);
        decision.state_change_time = timestamp.to_owned();
        self.ledger
            .commit(Commit::record(delivery.dedupe_keys(), decision))
            .await?;
        Ok(())
    }
}
