//! The case ledger: the durable record of what the service did and why. It answers the two
//! questions the case logic asks before acting (was this delivery or event handled already?
//! is a case open for this alarm?) and takes each decision as one atomic [`Commit`], so a
//! crash leaves either all of a decision or none of it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::alarm::Alarm;
use crate::domain::delivery::{Delivery, DeliveryKind};
use crate::domain::outcome::{DecisionState, Outcome};
use crate::errors::BoxError;

mod tally;
pub use tally::DuplicateTally;

/// The storm-control bucket of an instant: its UTC clock hour.
pub fn slot_hour(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H").to_string()
}

/// The ledger key of the storm case. It starts with a control character, which no alarm
/// key can hold (alarm names with control characters are refused, ARNs start with `arn:`),
/// so no alarm can ever share the storm case's record ([`OpenCase::is_storm`]).
pub const STORM_KEY: &str = "\u{1}storm";

/// The case currently open for one alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenCase {
    /// The alarm's ledger key (ARN, or name when there is none).
    pub alarm_key: String,
    pub alarm_name: String,
    pub case_id: String,
    pub opened_at: DateTime<Utc>,
    /// When the case last received a communication (its opening counts).
    pub last_update_at: DateTime<Utc>,
    /// ALARM notifications folded into the case within the update cooldown.
    pub coalesced: u64,
    /// Communications added after the case was opened.
    pub updates: u64,
    /// Whether the alarm has gone back to OK since the case was opened or last updated.
    pub recovered: bool,
    /// A digest of what the case was last told, where repeating it would be noise (an AWS
    /// Health event's description: an update adds a communication only when it changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When the alarm came back to ALARM after a recovery, within the flap window: more
    /// than `FLAP_LIMIT` of them and it is flapping.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycles: Vec<DateTime<Utc>>,
    /// The case was told the alarm is flapping; cycles are counted, not sent, until it
    /// calms down.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flapping: bool,
    /// The group this alarm's case is shared by (its members' records point at one case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl OpenCase {
    /// Whether this is the storm case, which alarms fold into when the hour's cases are
    /// spent, rather than one alarm's own.
    pub fn is_storm(&self) -> bool {
        self.alarm_key == STORM_KEY
    }
}

/// One decision, as recorded: who asked, about what, and what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Assigned by the ledger; 0 until recorded.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub delivery_kind: DeliveryKind,
    pub delivery_id: Option<String>,
    pub alarm_key: String,
    pub alarm_name: String,
    pub state: DecisionState,
    pub state_change_time: String,
    pub outcome: Outcome,
    pub case_id: Option<String>,
    /// Why, in a few words, when the outcome alone does not say.
    pub note: Option<String>,
    /// The severity a case was opened with (on `created` decisions): the report counts
    /// cases by it and holds AWS's first reply to the support plan's target for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<crate::domain::settings::Severity>,
}

impl Decision {
    /// A decision (not yet recorded: `seq` 0) about the record `alarm_key`, made for the
    /// delivery that asked: no alarm state, case or note until they are set.
    pub fn new(
        delivery: &Delivery,
        alarm_key: impl Into<String>,
        alarm_name: impl Into<String>,
        outcome: Outcome,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            seq: 0,
            at,
            delivery_kind: delivery.kind,
            delivery_id: delivery.id().map(str::to_owned),
            alarm_key: alarm_key.into(),
            alarm_name: alarm_name.into(),
            state: DecisionState::None,
            state_change_time: String::new(),
            outcome,
            case_id: None,
            note: None,
            severity: None,
        }
    }

    /// A decision about one alarm event: its key, name, state and state-change time.
    pub fn about(delivery: &Delivery, alarm: &Alarm, outcome: Outcome, at: DateTime<Utc>) -> Self {
        let mut d = Self::new(delivery, alarm.key(), alarm.name.clone(), outcome, at);
        d.state = DecisionState::Alarm(alarm.state);
        d.state_change_time = alarm.state_change_time.raw.clone();
        d
    }

    pub fn on_case(mut self, case_id: Option<String>) -> Self {
        self.case_id = case_id;
        self
    }

    pub fn noted(mut self, note: impl Into<Option<String>>) -> Self {
        self.note = note.into();
        self
    }

    pub fn with_severity(mut self, severity: Option<crate::domain::settings::Severity>) -> Self {
        self.severity = severity;
        self
    }
}

/// What a decision does to an alarm's open case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenCaseChange {
    Put(OpenCase),
    Remove { alarm_key: String },
}

/// An ALARM that arrived during a maintenance window, kept so that the case is raised when
/// the window ends if the alarm is still in ALARM then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldAlarm {
    pub alarm_key: String,
    pub alarm_name: String,
    pub window_id: String,
    pub window_ends_at: DateTime<Utc>,
    pub held_at: DateTime<Utc>,
    /// The alarm exactly as received, parsed again when it is raised.
    pub raw: serde_json::Value,
}

/// What a decision does to an alarm held during maintenance.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldChange {
    Put(HeldAlarm),
    Remove { alarm_key: String },
}

/// Everything one decision writes, applied atomically.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Delivery and event keys to mark as handled.
    pub handled_keys: Vec<String>,
    pub decision: Decision,
    /// Changes to open cases (none, one, or the alarm's and the storm case's).
    pub open_cases: Vec<OpenCaseChange>,
    /// The claim under which a new case was opened; the commit releases it, and fails if
    /// the claim is no longer ours.
    pub claim: Option<Claim>,
    pub hold: Option<HoldChange>,
    /// Notices to send about it, queued in the outbox with it (`notify`).
    pub notices: Vec<crate::domain::notice::Notice>,
}

impl Commit {
    /// A decision that changes nothing but the record.
    pub fn record(handled_keys: Vec<String>, decision: Decision) -> Self {
        Self {
            handled_keys,
            decision,
            open_cases: Vec::new(),
            claim: None,
            hold: None,
            notices: Vec::new(),
        }
    }

    /// With these notices queued in the same transaction.
    pub fn telling(mut self, notices: Vec<crate::domain::notice::Notice>) -> Self {
        self.notices = notices;
        self
    }
}

/// The right to open a case for one alarm, held while CreateCase is in flight, so that two
/// instances sharing a ledger can never both open a case for one alarm. It is a lease: its
/// owner renews it while the work is in flight, so a claim whose owner died lapses within
/// one lease and can then be taken over; its `reference` (written into the case it was
/// opening) lets the next owner find that case instead of opening another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub alarm_key: String,
    pub token: String,
    /// The instance that holds it ([`instance_id`]).
    pub owner: String,
    /// A short, unique tag put in the first line of the case body.
    pub reference: String,
    pub claimed_at: DateTime<Utc>,
    /// When the lease lapses unless renewed.
    pub expires_at: DateTime<Utc>,
    /// The open case this new one replaces (support resolved it); None when no case may be
    /// open for the alarm.
    pub replaces: Option<String>,
    /// The alarm's name and the delivery's handled keys, so that whoever finds the case
    /// by its reference later (the next start, or a takeover) can record it fully.
    pub alarm_name: String,
    pub handled_keys: Vec<String>,
}

/// This process, as the owner of the claims it takes: host, process id and start time.
pub fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|| "host".into());
        format!(
            "{host}/{}/{:x}",
            std::process::id(),
            Utc::now().timestamp_millis()
        )
    })
}

impl Claim {
    pub fn new(
        alarm_key: &str,
        claimed_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        replaces: Option<String>,
    ) -> Self {
        use sha2::{Digest, Sha256};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let token = format!("{}-{nanos:x}-{n}", std::process::id());
        let digest = Sha256::digest(format!("{alarm_key}|{token}").as_bytes());
        let reference: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Self {
            alarm_key: alarm_key.to_owned(),
            token,
            owner: instance_id().to_owned(),
            reference: format!("cwsa-{reference}"),
            claimed_at,
            expires_at,
            replaces,
            alarm_name: alarm_key.to_owned(),
            handled_keys: Vec::new(),
        }
    }

    /// The claim of one delivery: what to record if the case is found later.
    pub fn for_delivery(mut self, alarm_name: &str, handled_keys: Vec<String>) -> Self {
        self.alarm_name = alarm_name.to_owned();
        self.handled_keys = handled_keys;
        self
    }
}

/// A claim that was taken over after it expired: its owner may have opened a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleClaim {
    pub reference: String,
    pub claimed_at: DateTime<Utc>,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Taken {
        stale: Option<StaleClaim>,
    },
    /// A live claim or an open case exists.
    Refused,
}

/// What a decision reads from the ledger about one alarm event, in one go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lookup {
    /// The decision that handled one of the event's keys already.
    pub earlier: Option<Decision>,
    /// The alarm's open case (not read when `earlier` is set).
    pub open: Option<OpenCase>,
    /// New cases opened in the hour (not read when `earlier` is set).
    pub slots_taken: usize,
}

/// [`CaseLedger::claim_counted`] in two steps: the slot, then the claim.
pub async fn claim_counted_in_steps<L: CaseLedger + ?Sized>(
    ledger: &L,
    claim: &Claim,
    cap: usize,
    now: DateTime<Utc>,
) -> Result<CountedClaim, LedgerError> {
    if !ledger.take_case_slot(cap, now).await? {
        return Ok(CountedClaim::Full);
    }
    let claimed = ledger.claim(claim, now).await;
    if !matches!(claimed, Ok(ClaimOutcome::Taken { .. })) {
        // The case will not be opened under this claim: the slot goes back.
        if let Err(e) = ledger.return_case_slot(now).await {
            tracing::warn!(error = %crate::errors::Chain(&e), "could not give a storm slot back");
        }
    }
    match claimed? {
        ClaimOutcome::Taken { stale } => Ok(CountedClaim::Taken { stale }),
        ClaimOutcome::Refused => Ok(CountedClaim::Refused),
    }
}

/// [`CaseLedger::lookup`] read by read: the handled keys first, and the rest only when the
/// event is new.
pub async fn lookup_each<L: CaseLedger + ?Sized>(
    ledger: &L,
    keys: &[String],
    alarm_key: &str,
    now: DateTime<Utc>,
) -> Result<Lookup, LedgerError> {
    let earlier = ledger.find_handled(keys).await?;
    if earlier.is_some() {
        return Ok(Lookup {
            earlier,
            ..Default::default()
        });
    }
    Ok(Lookup {
        earlier,
        open: ledger.open_case(alarm_key).await?,
        slots_taken: ledger.case_slots_taken(now).await?,
    })
}

/// The answer to a claim that also takes one of the hour's case slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountedClaim {
    /// The slot and the claim are ours.
    Taken { stale: Option<StaleClaim> },
    /// The hour's slots are all taken (a storm); no claim was made.
    Full,
    /// A live claim exists; no slot was taken.
    Refused,
    /// What the decision read or assumed no longer holds: a case is open for the alarm
    /// (this one, as the claim found it, when the ledger can say). Nothing was taken;
    /// decide again.
    Changed(Option<Box<OpenCase>>),
    /// The event was handled already: the decision that did (the earliest of its keys').
    /// Nothing was taken.
    Handled(Box<Decision>),
}

/// Which decisions `cases list` shows.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub alarm_key: Option<String>,
    pub case_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store could not be read or written; worth a retry.
    #[error("ledger storage failed: {what}")]
    Storage {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("ledger record is unreadable: {what}")]
    Corrupt {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Another delivery recorded the same keys, or took over our claim, first.
    #[error("ledger conflict: {0}")]
    Conflict(String),
}

impl LedgerError {
    /// A storage failure, with its cause.
    pub fn storage(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Storage {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// A storage failure whose description says it all (an SDK error's one line).
    pub fn storage_said(what: impl Into<String>) -> Self {
        Self::Storage {
            what: what.into(),
            source: None,
        }
    }

    /// An unreadable record, with why.
    pub fn corrupt(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Corrupt {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    pub fn corrupt_said(what: impl Into<String>) -> Self {
        Self::Corrupt {
            what: what.into(),
            source: None,
        }
    }
}

#[async_trait]
pub trait CaseLedger: Send + Sync {
    /// The earliest decision recorded under any of these keys, if one was.
    async fn find_handled(&self, keys: &[String]) -> Result<Option<Decision>, LedgerError>;
    async fn open_case(&self, alarm_key: &str) -> Result<Option<OpenCase>, LedgerError>;
    /// Whether the event was handled and, if not, the alarm's open case and the hour's new
    /// cases: what deciding reads, which a ledger may answer in one request (DynamoDB does).
    async fn lookup(
        &self,
        keys: &[String],
        alarm_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Lookup, LedgerError> {
        lookup_each(self, keys, alarm_key, now).await
    }
    async fn open_cases(&self) -> Result<Vec<OpenCase>, LedgerError>;
    /// Takes the claim for its alarm unless a live claim or an open case exists.
    async fn claim(&self, claim: &Claim, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError>;
    /// Takes one of the hour's `cap` case slots and the claim together: both or neither. By
    /// default two steps (the slot, then the claim, the slot given back if the claim is
    /// refused); DynamoDB does it in one transaction when it can, which also checks that
    /// none of the claim's handled keys is recorded ([`CaseLedger::checks_at_claim`]).
    async fn claim_counted(
        &self,
        claim: &Claim,
        cap: usize,
        now: DateTime<Utc>,
    ) -> Result<CountedClaim, LedgerError> {
        claim_counted_in_steps(self, claim, cap, now).await
    }
    /// Whether [`CaseLedger::claim_counted`] itself checks what a new alarm's decision
    /// reads (none of the handled keys recorded, nothing held under the alarm's key) in the
    /// same atomic write, answering [`CountedClaim::Handled`] or [`CountedClaim::Changed`]
    /// otherwise. Then the case logic
    /// may decide a new ALARM without reading first: one request fewer on DynamoDB. The
    /// local ledger reads in microseconds and says no.
    fn checks_at_claim(&self) -> bool {
        false
    }
    /// Gives a claim back (the case could not be opened).
    async fn release(&self, claim: &Claim) -> Result<(), LedgerError>;
    /// Extends a claim's lease to `until`; false if it is no longer ours.
    async fn renew(&self, claim: &Claim, until: DateTime<Utc>) -> Result<bool, LedgerError>;
    /// Every claim held, whoever holds it. The local backend, which one process owns at a
    /// time, reads them at start: they were all left by a process that stopped.
    async fn claims(&self) -> Result<Vec<Claim>, LedgerError> {
        Ok(Vec::new())
    }
    /// Records a decision that changes nothing but the record (a duplicate answered from
    /// memory). A ledger may batch these and write them without waiting for the disk (a
    /// power cut may lose such a line of history, never a case or a handled key); by
    /// default it is a commit like any other.
    async fn note(&self, decision: Decision) -> Result<(), LedgerError> {
        self.commit(Commit::record(Vec::new(), decision))
            .await
            .map(|_| ())
    }
    /// Writes what [`CaseLedger::note`] kept waiting (periodically, and at shutdown).
    async fn flush(&self) -> Result<(), LedgerError> {
        Ok(())
    }
    /// Records a decision and its effects in one transaction; returns its sequence number.
    async fn commit(&self, commit: Commit) -> Result<i64, LedgerError>;
    /// Decisions, newest first.
    async fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>, LedgerError>;
    /// How many new cases took a slot in the clock hour of `now` (storm control).
    async fn case_slots_taken(&self, now: DateTime<Utc>) -> Result<usize, LedgerError>;
    /// Takes one of the `cap` new-case slots of the hour of `now`, atomically across every
    /// instance sharing the ledger; false when they are all taken (a storm).
    async fn take_case_slot(&self, cap: usize, now: DateTime<Utc>) -> Result<bool, LedgerError>;
    /// Gives a slot back: the case it was taken for was definitely not opened.
    async fn return_case_slot(&self, now: DateTime<Utc>) -> Result<(), LedgerError>;
    /// Alarms held during maintenance windows.
    async fn held(&self) -> Result<Vec<HeldAlarm>, LedgerError>;
}
