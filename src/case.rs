//! What is decided: the case logic. Given one validated alarm event and how it was
//! delivered, decide whether to open a case, add to the open one, or do nothing, then do it
//! and record it. Plain code over three small traits (config store, ledger, support desk),
//! so it runs the same on AWS and on the local backend, and is tested with no network.
//!
//! Deciding ([`CaseService::plan`]) reads but never writes, which is what the `process`
//! command shows; [`CaseService::handle`] plans and carries the plan out while holding the
//! alarm's lock, so two concurrent deliveries of one alarm cannot both open a case.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::alarm::{Alarm, AlarmState};
use crate::alarm_config::{AlarmConfigStore, AlarmSettings, StoreError};
use crate::case_event::{CaseEventKind, CaseUpdate};
use crate::delivery::{Delivery, DeliveryKind};
use crate::desk::{CodeProblem, Communication, DeskError, NewCase, SupportDesk, truncate_body};
use crate::ledger::{
    CaseLedger, Claim, ClaimOutcome, Commit, Decision, HeldAlarm, HoldChange, LedgerError,
    OpenCase, OpenCaseChange,
};
use crate::maintenance;

/// What the service did with one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new case was opened.
    Created,
    /// A communication was added to the alarm's open case.
    Updated,
    /// The alarm fired again within the update cooldown: counted on the open case only.
    Coalesced,
    /// The alarm went back to OK while its case is open: a recovery note was added.
    Recovered,
    /// OK or INSUFFICIENT_DATA with nothing to tell support.
    Ignored,
    /// The alarm is muted.
    Suppressed,
    /// This delivery or this very state change was handled before.
    Duplicate,
    /// An SNS subscription to this endpoint was confirmed.
    Confirmed,
    /// SNS reported that this endpoint was unsubscribed from a topic.
    Unsubscribed,
    /// Too many new cases this hour: added to the storm case.
    Folded,
    /// The periodic reconcile found the case resolved at the desk: no longer held open.
    Closed,
    /// The desk refused the case, with the default codes too: no case; the delivery is
    /// answered 5xx so it ends where someone sees it (the dead-letter queue).
    Failed,
    /// AWS Support added a communication to the case (it replied, or asks something).
    Replied,
    /// AWS Support reopened a case this service had let go: held open again.
    Reopened,
    /// An AWS Support event recorded on the case's timeline, changing nothing else.
    Noted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Coalesced => "coalesced",
            Self::Recovered => "recovered",
            Self::Ignored => "ignored",
            Self::Suppressed => "suppressed",
            Self::Duplicate => "duplicate",
            Self::Confirmed => "confirmed",
            Self::Unsubscribed => "unsubscribed",
            Self::Folded => "folded",
            Self::Closed => "closed",
            Self::Failed => "failed",
            Self::Replied => "replied",
            Self::Reopened => "reopened",
            Self::Noted => "noted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Created,
            Self::Updated,
            Self::Coalesced,
            Self::Recovered,
            Self::Ignored,
            Self::Suppressed,
            Self::Duplicate,
            Self::Confirmed,
            Self::Unsubscribed,
            Self::Folded,
            Self::Closed,
            Self::Failed,
            Self::Replied,
            Self::Reopened,
            Self::Noted,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// The service-wide rules the case logic follows.
#[derive(Debug, Clone)]
pub struct CasePolicy {
    /// At most one "it happened again" communication per alarm within this time.
    pub update_cooldown: Duration,
    /// Add a short note to the open case when its alarm returns to OK.
    pub recovery_note: bool,
    /// Resolve the case when its alarm returns to OK (off: a person closes it).
    pub close_on_recovery: bool,
    pub default_service_code: String,
    pub default_category_code: String,
    /// The lease of a claim to open a case: renewed every third of it while CreateCase is
    /// in flight, so a claim whose owner died lapses (and is taken over) within it.
    pub claim_ttl: Duration,
    /// How long a delivery waits for another one (on this instance or another) that is
    /// opening the same alarm's case, before answering 503. At most the request timeout.
    pub busy_wait: Duration,
    /// New cases per hour before further new alarms are folded into one storm case. AWS
    /// Support allows about ten per hour; the storm case itself needs one of them.
    pub storm_cap: usize,
    /// Which AWS Health events are worth a case.
    pub health: HealthFilter,
    /// More than this many ALARM → OK → ALARM cycles within `flap_window` and the alarm
    /// is flapping: one communication says so, further cycles are only counted.
    pub flap_limit: usize,
    pub flap_window: Duration,
    /// Account id → the role assumed to open that account's cases (`ACCOUNT_ROLES`).
    pub account_roles: std::collections::BTreeMap<String, String>,
}

/// Which AWS Health events are worth a case: by category (`issue` by default: scheduled
/// changes and account notifications are not incidents), service and region. An empty
/// list lets everything through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthFilter {
    pub categories: Vec<String>,
    pub services: Vec<String>,
    pub regions: Vec<String>,
}

impl Default for HealthFilter {
    fn default() -> Self {
        Self {
            categories: vec!["issue".into()],
            services: Vec::new(),
            regions: Vec::new(),
        }
    }
}

impl HealthFilter {
    /// Why the event is filtered out, or None when it passes.
    pub fn refuses(&self, alarm: &Alarm) -> Option<String> {
        let detail = alarm.raw.get("detail");
        let field = |k: &str| {
            detail
                .and_then(|d| d.get(k))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let region = match field("eventRegion") {
            r if r.is_empty() => alarm.raw["region"].as_str().unwrap_or_default().to_owned(),
            r => r,
        };
        for (what, value, allowed) in [
            ("category", field("eventTypeCategory"), &self.categories),
            ("service", field("service"), &self.services),
            ("region", region, &self.regions),
        ] {
            if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&value)) {
                return Some(format!(
                    "AWS Health event {what} {value:?} is not in HEALTH_{}S ({})",
                    match what {
                        "category" => "CATEGORIE",
                        "service" => "SERVICE",
                        _ => "REGION",
                    },
                    allowed.join(",")
                ));
            }
        }
        None
    }
}

/// A duration as people write it: `1h`, `30m`, `45s`.
fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// What an AWS Health event says, to tell an update with news from one without.
fn health_digest(alarm: &Alarm) -> Option<String> {
    use sha2::{Digest, Sha256};
    if alarm.kind != crate::alarm::AlarmKind::Health {
        return None;
    }
    let text = alarm.description.as_deref().unwrap_or_default();
    let d = Sha256::digest(text.as_bytes());
    Some(d.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

impl Default for CasePolicy {
    fn default() -> Self {
        Self {
            claim_ttl: Duration::from_secs(15),
            busy_wait: Duration::from_secs(10),
            update_cooldown: Duration::from_secs(600),
            recovery_note: true,
            close_on_recovery: false,
            default_service_code: "amazon-elastic-compute-cloud-linux".into(),
            default_category_code: "other".into(),
            storm_cap: 8,
            health: HealthFilter::default(),
            flap_limit: 3,
            flap_window: Duration::from_secs(3600),
            account_roles: Default::default(),
        }
    }
}

/// The ledger key of the storm case. It starts with a control character, which no alarm
/// key can hold (alarm names with control characters are refused, ARNs start with `arn:`),
/// so no alarm can ever share the storm case's record.
pub const STORM_KEY: &str = "\u{1}storm";

/// What the case logic will do, decided but not yet done.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Another alarm's open case takes this alarm's news (it is inhibited by that alarm,
    /// or they are one group): tell that case, open none.
    Join {
        parent: OpenCase,
        communication: Communication,
        why: String,
    },
    Duplicate {
        earlier: Decision,
    },
    Suppressed {
        why: String,
    },
    Ignored {
        why: String,
    },
    Create {
        case: NewCase,
    },
    Update {
        open: OpenCase,
        communication: Communication,
    },
    Coalesce {
        open: OpenCase,
    },
    Recover {
        open: OpenCase,
        communication: Option<Communication>,
        resolve: bool,
    },
    /// Too many new cases this hour: open the storm case, listing this alarm.
    CreateStorm {
        case: NewCase,
    },
    /// Too many new cases this hour: add this alarm to the open storm case.
    Fold {
        storm: OpenCase,
        communication: Communication,
    },
}

/// A decision about one alarm event.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub outcome: Outcome,
    #[serde(flatten)]
    pub action: Action,
    /// Problems with the alarm's stored settings (they fell back to defaults).
    pub config_notes: Vec<String>,
    #[serde(skip)]
    settings: AlarmSettings,
    /// What the decision does to a hold (maintenance windows).
    #[serde(skip)]
    hold: Option<HoldChange>,
}

impl Plan {
    /// The case this plan acts on, when it already exists.
    pub fn case_id(&self) -> Option<&str> {
        match &self.action {
            Action::Duplicate { earlier } => earlier.case_id.as_deref(),
            Action::Update { open, .. }
            | Action::Coalesce { open }
            | Action::Recover { open, .. } => Some(&open.case_id),
            Action::Fold { storm, .. } => Some(&storm.case_id),
            Action::Join { parent, .. } => Some(&parent.case_id),
            _ => None,
        }
    }
}

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

/// The answer for one handled delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handled {
    pub outcome: Outcome,
    pub case_id: Option<String>,
    pub alarm: String,
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
    /// New cases are opened one at a time, so storm control counts them exactly (per
    /// instance; across instances the count can overshoot by one per instance).
    opening: Mutex<()>,
    clock: Clock,
    /// Tells people what happened (off the request path).
    notifier: crate::notify::Notifier,
    /// Draws the graph attached to a metric alarm's new case.
    grapher: Arc<dyn crate::graph::Grapher>,
    /// The alarm's own `cw-support:` tags, between its stored settings and the defaults.
    tags: Arc<dyn crate::tags::TagSource>,
}

/// Whether a plan looks for an earlier decision on the same keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dedupe {
    Check,
    /// Raising an alarm held during maintenance: its event was recorded as suppressed.
    Skip,
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
            policy,
            locks: AlarmLocks::new(64),
            opening: Mutex::new(()),
            clock: Arc::new(Utc::now),
            notifier: crate::notify::Notifier::none(),
            grapher: Arc::new(crate::graph::LocalGrapher),
            tags: Arc::new(crate::tags::NoTags),
        }
    }

    /// The alarm's graph attached to its new case, or the case says why there is none: a
    /// support engineer looks at the picture first. A graph that cannot be drawn costs the
    /// picture, never the case.
    async fn with_evidence(&self, alarm: &Alarm, mut case: NewCase) -> NewCase {
        match self.grapher.graph(alarm).await {
            Ok(graph) => {
                let what =
                    crate::graph::metric_label(&alarm.raw).unwrap_or_else(|| "the metric".into());
                case.communication_body = truncate_body(format!(
                    "{}\n\nGraph attached: {} ({what}: the threshold and the moment the alarm \
                     fired are marked).",
                    case.communication_body, graph.file_name
                ));
                case.attachments.push(graph);
            }
            Err(why) => {
                case.communication_body = truncate_body(format!(
                    "{}\n\nGraph: none attached ({why}).",
                    case.communication_body
                ));
            }
        }
        case
    }

    /// Where alarm tags are read (CloudWatch on the aws backend).
    pub fn with_tags(mut self, tags: Arc<dyn crate::tags::TagSource>) -> Self {
        self.tags = tags;
        self
    }

    /// Who draws the graphs (CloudWatch on the aws backend).
    pub fn with_grapher(mut self, grapher: Arc<dyn crate::graph::Grapher>) -> Self {
        self.grapher = grapher;
        self
    }

    /// Who is told what happened.
    pub fn with_notifier(mut self, notifier: crate::notify::Notifier) -> Self {
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

    /// Decides what to do with an alarm event without changing anything.
    pub async fn plan(&self, delivery: &Delivery, alarm: &Alarm) -> Result<Plan, CaseError> {
        self.plan_with(delivery, alarm, Dedupe::Check).await
    }

    /// The settings to use: a store that cannot be read at all (a hand-edited file with a
    /// typo) gives the defaults with a note, rather than no case at 3 a.m.
    async fn settings(&self, alarm: &Alarm) -> Result<(AlarmSettings, Vec<String>), CaseError> {
        let record = match self.config.get(&alarm.name).await {
            Ok(r) => r.unwrap_or_default(),
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::error!(error = %e, "per-alarm settings unreadable; using the defaults");
                let (s, _) = AlarmSettings::from_record(&Default::default());
                return Ok((s, vec![format!("settings unreadable ({e}); defaults used")]));
            }
            Err(e) => return Err(e.into()),
        };
        // The alarm's own tags fill what the stored settings leave open; reading them
        // never blocks a case.
        let mut tag_notes = Vec::new();
        let record = match alarm
            .identity
            .arn
            .as_deref()
            .filter(|a| crate::tags::is_alarm_arn(a))
        {
            Some(arn) => match self.tags.tags(arn).await {
                Ok(tags) => crate::tags::merge(&record, &crate::tags::record_from_tags(&tags)).0,
                Err(e) => {
                    tracing::warn!(alarm = %alarm.name, error = %e, "alarm tags not read; stored settings and defaults used");
                    tag_notes.push(format!("the alarm's tags could not be read ({e})"));
                    record
                }
            },
            None => record,
        };
        let (settings, mut notes) = AlarmSettings::from_record(&record);
        notes.extend(tag_notes);
        for note in &notes {
            tracing::warn!(alarm = %alarm.name, note = %note, "malformed per-alarm setting");
        }
        Ok((settings, notes))
    }

    async fn plan_with(
        &self,
        delivery: &Delivery,
        alarm: &Alarm,
        dedupe: Dedupe,
    ) -> Result<Plan, CaseError> {
        let now = (self.clock)();
        let (mut settings, mut config_notes) = self.settings(alarm).await?;
        self.check_codes(&mut settings, &mut config_notes).await;
        let plan = |outcome, action, hold| Plan {
            outcome,
            action,
            config_notes: config_notes.clone(),
            settings: settings.clone(),
            hold,
        };

        if dedupe == Dedupe::Check {
            let keys = handled_keys(delivery, alarm);
            if let Some(earlier) = self.ledger.find_handled(&keys).await? {
                return Ok(plan(
                    Outcome::Duplicate,
                    Action::Duplicate { earlier },
                    None,
                ));
            }
        }
        if !settings.enabled {
            let why = "alarm is muted (enabled = false)".to_owned();
            return Ok(plan(Outcome::Suppressed, Action::Suppressed { why }, None));
        }
        if alarm.kind == crate::alarm::AlarmKind::Health
            && let Some(why) = self.policy.health.refuses(alarm)
        {
            return Ok(plan(Outcome::Ignored, Action::Ignored { why }, None));
        }
        let windows = match self.config.windows().await {
            Ok(w) => w,
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::error!(error = %e, "maintenance windows unreadable; none applied");
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        if let Some((window, until)) = maintenance::covering(&windows, &alarm.name, now) {
            // Remember the latest state: still ALARM when the window ends means a case then.
            let hold = match alarm.state {
                AlarmState::Alarm => Some(HoldChange::Put(HeldAlarm {
                    alarm_key: alarm.key().to_owned(),
                    alarm_name: alarm.name.clone(),
                    window_id: window.id.clone(),
                    // The end of this occurrence (a recurring window's next one is later).
                    window_ends_at: until,
                    held_at: now,
                    raw: alarm.raw.clone(),
                })),
                AlarmState::Ok => Some(HoldChange::Remove {
                    alarm_key: alarm.key().to_owned(),
                }),
                AlarmState::InsufficientData => None,
            };
            let why = window.describe_until(until);
            return Ok(plan(Outcome::Suppressed, Action::Suppressed { why }, hold));
        }
        // Outside any window, the alarm's own state is what counts from now on.
        let hold = (alarm.state != AlarmState::InsufficientData).then(|| HoldChange::Remove {
            alarm_key: alarm.key().to_owned(),
        });

        let open = self.ledger.open_case(alarm.key()).await?;
        // Another alarm's open case may take this one's news (inhibition, groups): the open
        // cases are read once, and only when one of those settings asks for them.
        let routed = alarm.state == AlarmState::Alarm
            && open.is_none()
            && (!settings.inhibited_by.is_empty() || settings.group.is_some());
        let others = match routed {
            true => self.ledger.open_cases().await?,
            false => Vec::new(),
        };
        if let Some(parent) = others
            .iter()
            .find(|o| {
                o.alarm_key != STORM_KEY
                    && o.alarm_key != alarm.key()
                    && settings
                        .inhibited_by
                        .iter()
                        .any(|p| maintenance::glob_match(p, &o.alarm_name))
            })
            .cloned()
        {
            let communication = Communication {
                communication_body: referenced(
                    alarm,
                    format!(
                        "{} is also in ALARM (it is inhibited by {}, whose case this is).\n\n{}",
                        alarm.name,
                        parent.alarm_name,
                        details(alarm)
                    ),
                ),
                cc_email_addresses: settings.cc.clone(),
            };
            let why = format!("inhibited by {}", parent.alarm_name);
            return Ok(plan(
                Outcome::Suppressed,
                Action::Join {
                    parent,
                    communication,
                    why,
                },
                hold,
            ));
        }
        // A group shares one case: a member with none of its own joins the group's.
        if let Some(group) = &settings.group
            && let Some(parent) = others
                .iter()
                .find(|o| o.group.as_ref() == Some(group) && o.alarm_key != alarm.key())
                .cloned()
        {
            let communication = Communication {
                communication_body: referenced(
                    alarm,
                    format!(
                        "{} also in ALARM (group {group}).\n\n{}",
                        alarm.name,
                        details(alarm)
                    ),
                ),
                cc_email_addresses: settings.cc.clone(),
            };
            return Ok(plan(
                Outcome::Updated,
                Action::Join {
                    parent,
                    communication,
                    why: format!("group {group}"),
                },
                hold,
            ));
        }
        Ok(match (alarm.state, open) {
            (AlarmState::Alarm, None) => {
                // A preview: the slot itself is taken atomically when the case is opened.
                if self.ledger.case_slots_taken(now).await? < self.policy.storm_cap {
                    let case = self.new_case(alarm, &settings, &config_notes);
                    plan(Outcome::Created, Action::Create { case }, hold)
                } else {
                    match self.ledger.open_case(STORM_KEY).await? {
                        Some(storm) => {
                            let communication = Communication {
                                communication_body: referenced(
                                    alarm,
                                    storm_body(alarm, &settings, self.policy.storm_cap, false),
                                ),
                                cc_email_addresses: settings.cc.clone(),
                            };
                            plan(
                                Outcome::Folded,
                                Action::Fold {
                                    storm,
                                    communication,
                                },
                                hold,
                            )
                        }
                        None => {
                            let case = self.storm_case(alarm, &settings);
                            plan(Outcome::Created, Action::CreateStorm { case }, hold)
                        }
                    }
                }
            }
            (AlarmState::Alarm, Some(mut open)) => {
                let since = now.signed_duration_since(open.last_update_at);
                let cooling = since
                    .to_std()
                    .is_ok_and(|s| s < self.policy.update_cooldown);
                // An AWS Health update that says nothing new is counted, not sent.
                let same_news =
                    health_digest(alarm).is_some_and(|d| open.digest.as_deref() == Some(&d));
                // A fresh ALARM after a recovery is news, whatever the cooldown says, unless
                // the alarm keeps doing it (flapping): then one communication says so and
                // further cycles are counted.
                let mut tell_flapping = false;
                if open.recovered {
                    let window = chrono::Duration::from_std(self.policy.flap_window)
                        .unwrap_or(chrono::Duration::MAX);
                    open.cycles
                        .retain(|t| now.signed_duration_since(*t) < window);
                    open.cycles.push(now);
                    if open.cycles.len() > self.policy.flap_limit {
                        tell_flapping = !open.flapping;
                        open.flapping = true;
                    } else {
                        open.flapping = false;
                    }
                }
                let counted = (cooling || same_news) && !open.recovered;
                if counted || (open.flapping && !tell_flapping) {
                    // Back in ALARM: the next OK is a (silent, while flapping) recovery.
                    open.recovered = false;
                    plan(Outcome::Coalesced, Action::Coalesce { open }, hold)
                } else {
                    let mut body = update_body(alarm, &open);
                    if tell_flapping {
                        body = format!(
                            "The alarm is flapping: {} times ALARM again after a recovery within {}. \
                             Further cycles are counted on this case, not sent, until it settles.\n\n{body}",
                            open.cycles.len(),
                            humantime(self.policy.flap_window)
                        );
                    }
                    let communication = Communication {
                        communication_body: referenced(alarm, body),
                        cc_email_addresses: settings.cc.clone(),
                    };
                    plan(
                        Outcome::Updated,
                        Action::Update {
                            open,
                            communication,
                        },
                        hold,
                    )
                }
            }
            (AlarmState::Ok, Some(open)) if !open.recovered => {
                // A group's case recovers when its last member in ALARM is OK.
                let others_alarming = match &open.group {
                    Some(g) => self.ledger.open_cases().await?.iter().any(|o| {
                        o.group.as_ref() == Some(g)
                            && o.alarm_key != open.alarm_key
                            && o.case_id == open.case_id
                            && !o.recovered
                    }),
                    None => false,
                };
                let resolve = self.policy.close_on_recovery
                    && open.alarm_key != STORM_KEY
                    && !others_alarming;
                // A flapping alarm's recoveries are counted too, not sent.
                let note =
                    (self.policy.recovery_note && !open.flapping && !others_alarming) || resolve;
                let communication = note.then(|| Communication {
                    communication_body: referenced(alarm, recovery_body(alarm, resolve)),
                    cc_email_addresses: settings.cc.clone(),
                });
                plan(
                    Outcome::Recovered,
                    Action::Recover {
                        open,
                        communication,
                        resolve,
                    },
                    hold,
                )
            }
            (AlarmState::Ok, Some(_)) => plan(
                Outcome::Ignored,
                Action::Ignored {
                    why: "the open case already has a recovery note".into(),
                },
                hold,
            ),
            (state, _) => plan(
                Outcome::Ignored,
                Action::Ignored {
                    why: format!("{state} with no open case"),
                },
                hold,
            ),
        })
    }

    /// Decides and acts, then records the decision. Nothing is recorded unless the desk
    /// accepted the action, so a failure here leaves the delivery to be retried.
    /// Decides and acts. When another delivery holds the alarm's claim (it is opening the
    /// case right now, perhaps on another instance), waits for it, up to `busy_wait`, and
    /// decides again: the usual answer is then `duplicate` with the case it opened.
    pub async fn handle(&self, delivery: &Delivery, alarm: &Alarm) -> Result<Handled, CaseError> {
        let deadline = tokio::time::Instant::now() + self.policy.busy_wait;
        let mut pause = Duration::from_millis(50);
        loop {
            let result = {
                let _guard = self.locks.stripe(alarm.key()).lock().await;
                match self.plan(delivery, alarm).await {
                    Ok(plan) => self.execute(delivery, alarm, plan, Dedupe::Check).await,
                    Err(e) => Err(e),
                }
            };
            // A conflict means another delivery recorded this event (or took the claim
            // over) first: deciding again finds what it did.
            let again = matches!(
                result,
                Err(CaseError::Busy | CaseError::Ledger(LedgerError::Conflict(_)))
            );
            match result {
                Err(_) if again && tokio::time::Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(CaseError::Desk(DeskError::Rejected(reason))) => {
                    self.record_failure(delivery, alarm, &reason).await;
                    return Err(CaseError::Desk(DeskError::Rejected(reason)));
                }
                other => return other,
            }
        }
    }

    /// An AWS Support event about a case: recorded on the case's timeline; a resolved case
    /// is let go at once (every open-case record pointing at it, folded alarms included);
    /// a case reopened at AWS while no other case is open for its alarm is held open again.
    pub async fn case_update(
        &self,
        delivery: &Delivery,
        update: &CaseUpdate,
    ) -> Result<Handled, CaseError> {
        let _guard = self
            .locks
            .stripe(update.case_id.as_deref().unwrap_or("-"))
            .lock()
            .await;
        let now = (self.clock)();
        let mut keys = delivery.dedupe_keys();
        keys.push(update.dedupe_key());
        let label = update.label();
        if let Some(earlier) = self.ledger.find_handled(&keys).await? {
            return Ok(Handled {
                outcome: Outcome::Duplicate,
                case_id: earlier.case_id,
                alarm: label,
            });
        }
        let holding: Vec<OpenCase> = match &update.case_id {
            Some(id) => self
                .ledger
                .open_cases()
                .await?
                .into_iter()
                .filter(|o| &o.case_id == id)
                .collect(),
            None => Vec::new(),
        };
        // Whose case it is, for the record: the alarm holding it open, else the alarm of
        // the last decision about it.
        let owner = match holding
            .iter()
            .find(|o| o.alarm_key != STORM_KEY)
            .or(holding.first())
        {
            Some(o) => Some((o.alarm_key.clone(), o.alarm_name.clone())),
            None => match &update.case_id {
                Some(id) => self
                    .ledger
                    .decisions(&crate::ledger::DecisionFilter {
                        case_id: Some(id.clone()),
                        limit: 1,
                        ..Default::default()
                    })
                    .await?
                    .into_iter()
                    .next()
                    .map(|d| (d.alarm_key, d.alarm_name)),
                None => None,
            },
        };
        let mut open_cases = Vec::new();
        let shown = update
            .display_id
            .as_deref()
            .or(update.case_id.as_deref())
            .unwrap_or("-");
        let (outcome, note) = match &update.kind {
            CaseEventKind::Resolved if !holding.is_empty() => {
                for o in &holding {
                    open_cases.push(OpenCaseChange::Remove {
                        alarm_key: o.alarm_key.clone(),
                    });
                }
                (
                    Outcome::Closed,
                    format!(
                        "resolved at AWS Support (case {shown}): let go, the next alarm opens a new case"
                    ),
                )
            }
            CaseEventKind::Resolved => (
                Outcome::Noted,
                format!("resolved at AWS Support (case {shown}); not held open here"),
            ),
            CaseEventKind::Reopened => {
                let free = match (&owner, holding.is_empty()) {
                    (Some((key, _)), true) => self.ledger.open_case(key).await?.is_none(),
                    _ => false,
                };
                match (&owner, &update.case_id) {
                    (Some((key, name)), Some(id)) if free => {
                        open_cases.push(OpenCaseChange::Put(fresh_open_case(
                            key,
                            name,
                            id.clone(),
                            now,
                        )));
                        (
                            Outcome::Reopened,
                            format!("reopened at AWS Support (case {shown}): held open again"),
                        )
                    }
                    _ => (
                        Outcome::Noted,
                        format!("reopened at AWS Support (case {shown})"),
                    ),
                }
            }
            CaseEventKind::Communication { origin } if origin.as_deref() == Some("AWS") => (
                Outcome::Replied,
                format!(
                    "AWS Support added a communication ({})",
                    update.communication_id.as_deref().unwrap_or("-")
                ),
            ),
            CaseEventKind::Communication { .. } => (
                Outcome::Noted,
                "a communication was added on the account's side".into(),
            ),
            CaseEventKind::Created => (Outcome::Noted, "opened at AWS Support".into()),
            CaseEventKind::Other(what) => (
                Outcome::Noted,
                format!("an AWS Support event this service does not know: {what}"),
            ),
        };
        let (alarm_key, alarm_name) =
            owner.unwrap_or_else(|| (format!("support:{shown}"), label.clone()));
        let told = alarm_name.clone();
        let decision = Decision {
            seq: 0,
            at: now,
            delivery_kind: delivery.kind.as_str().into(),
            delivery_id: delivery.id().map(str::to_owned),
            alarm_key,
            alarm_name,
            state: "-".into(),
            state_change_time: update.time.clone(),
            outcome,
            case_id: update.case_id.clone(),
            note: Some(note),
        };
        self.commit_retrying(Commit {
            handled_keys: keys,
            decision,
            open_cases,
            claim: None,
            hold: None,
        })
        .await?;
        if let Some(case_id) = update.case_id.clone() {
            match outcome {
                Outcome::Closed => self.notifier.notify(crate::notify::Notice::Resolved {
                    case_id,
                    alarm: told,
                }),
                Outcome::Replied => {
                    // The event does not carry the text: it is read off the request path.
                    let (desk, notifier) = (self.desk.clone(), self.notifier.clone());
                    let display_id = update.display_id.clone();
                    tokio::spawn(async move {
                        let excerpt = match desk.latest_reply(&case_id).await {
                            Ok(body) => body.as_deref().map(crate::notify::excerpt),
                            Err(e) => {
                                tracing::warn!(error = %e, "could not read AWS's reply");
                                None
                            }
                        };
                        notifier.notify(crate::notify::Notice::Replied {
                            case_id,
                            display_id,
                            excerpt,
                        });
                    });
                }
                _ => {}
            }
        }
        Ok(Handled {
            outcome,
            case_id: update.case_id.clone(),
            alarm: label,
        })
    }

    /// The desk refused what no retry can fix: recorded as `failed` with its reason (the
    /// event is not marked handled, so a redelivery tries again after a fix).
    async fn record_failure(&self, delivery: &Delivery, alarm: &Alarm, reason: &str) {
        tracing::error!(alarm = %alarm.name, reason, "the support desk refused the case, with the default codes too");
        let decision = Decision {
            seq: 0,
            at: (self.clock)(),
            delivery_kind: delivery.kind.as_str().into(),
            delivery_id: delivery.id().map(str::to_owned),
            alarm_key: alarm.key().to_owned(),
            alarm_name: alarm.name.clone(),
            state: alarm.state.as_str().into(),
            state_change_time: alarm.state_change_time.raw.clone(),
            outcome: Outcome::Failed,
            case_id: None,
            note: Some(reason.chars().take(500).collect()),
        };
        if let Err(e) = self
            .ledger
            .commit(Commit::record(Vec::new(), decision))
            .await
        {
            tracing::warn!(error = %e, "could not record a failed decision");
        }
    }

    /// At start on a backend one process owns (local), every claim in the ledger was left
    /// by a process that stopped mid-way: each case it may have opened is looked up by its
    /// reference at once, and recorded if found; the claim is released either way. So a
    /// redelivery right after a restart finds the alarm settled, not claimed.
    pub async fn recover_claims(&self) -> Result<RecoveredClaims, CaseError> {
        let mut report = RecoveredClaims::default();
        for claim in self.ledger.claims().await? {
            let _guard = self.locks.stripe(&claim.alarm_key).lock().await;
            match self
                .desk
                .find_case(&claim.reference, claim.claimed_at)
                .await
            {
                Ok(Some(case_id)) => {
                    let now = (self.clock)();
                    let decision = Decision {
                        seq: 0,
                        at: now,
                        delivery_kind: DeliveryKind::Task.as_str().into(),
                        delivery_id: None,
                        alarm_key: claim.alarm_key.clone(),
                        alarm_name: claim.alarm_name.clone(),
                        state: "ALARM".into(),
                        state_change_time: "-".into(),
                        outcome: Outcome::Created,
                        case_id: Some(case_id.clone()),
                        note: Some(format!(
                            "recovered at start: case {} was opened before the process stopped",
                            claim.reference
                        )),
                    };
                    let open = fresh_open_case(&claim.alarm_key, &claim.alarm_name, case_id, now);
                    let commit = Commit {
                        handled_keys: claim.handled_keys.clone(),
                        decision,
                        open_cases: vec![OpenCaseChange::Put(open)],
                        claim: Some(claim.clone()),
                        hold: None,
                    };
                    self.commit_retrying(commit).await?;
                    report.adopted += 1;
                }
                Ok(None) => {
                    self.ledger.release(&claim).await?;
                    report.released += 1;
                }
                // Left for a takeover once its lease lapses: the next delivery of that
                // alarm looks the case up by its reference then.
                Err(e) => {
                    tracing::warn!(key = %claim.alarm_key, error = %e, "could not look up a claim's case at start");
                    report.left += 1;
                }
            }
        }
        Ok(report)
    }

    /// Commits, retrying a storage failure a few times with backoff: once the desk has
    /// acted, the record must follow, or the next delivery would act again. A conflict (the
    /// claim was taken over) is not retried.
    async fn commit_retrying(&self, commit: Commit) -> Result<i64, CaseError> {
        let mut pause = Duration::from_millis(100);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.ledger.commit(commit.clone()).await {
                Ok(seq) => return Ok(seq),
                Err(LedgerError::Storage(e)) if attempts < COMMIT_ATTEMPTS => {
                    tracing::warn!(attempt = attempts, error = %e, "ledger commit failed after the desk acted; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 3;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn execute(
        &self,
        delivery: &Delivery,
        alarm: &Alarm,
        plan: Plan,
        dedupe: Dedupe,
    ) -> Result<Handled, CaseError> {
        let now = (self.clock)();
        let mut outcome = plan.outcome;
        let mut note = None;
        let mut claim = None;
        let mut hold = plan.hold.clone();
        // A duplicate's keys are recorded already (under the first decision), and so are
        // those of an alarm raised after maintenance (under its suppression).
        let keys = match (&plan.action, dedupe) {
            (Action::Duplicate { .. }, _) | (_, Dedupe::Skip) => Vec::new(),
            _ => handled_keys(delivery, alarm),
        };
        let mut open_cases = Vec::new();
        let headline = match &plan.action {
            Action::Create { case } | Action::CreateStorm { case } => case.subject.clone(),
            _ => plan
                .settings
                .subject
                .clone()
                .unwrap_or_else(|| alarm.name.clone()),
        };
        let case_id = match plan.action {
            Action::Join {
                parent,
                communication,
                why,
            } => match self
                .desk
                .add_communication(&parent.case_id, &communication)
                .await
            {
                Ok(()) => {
                    note = Some(format!("{why}: noted on case {}", parent.case_id));
                    // Its later news (repeats, recovery) goes to the same case, within the
                    // same cooldown, as a folded alarm's does.
                    open_cases.push(opened_for(alarm, parent.case_id.clone(), now));
                    Some(parent.case_id)
                }
                // The parent's case is gone: let its record go and decide again.
                Err(DeskError::CaseNotFound(_)) => {
                    let commit = let_go(
                        delivery,
                        &parent,
                        now,
                        "no longer open at AWS Support".into(),
                    );
                    self.ledger.commit(commit).await?;
                    return Err(CaseError::Busy);
                }
                Err(e) => return Err(e.into()),
            },
            Action::Duplicate { earlier } => {
                note = Some(format!(
                    "first handled as #{} ({})",
                    earlier.seq,
                    earlier.outcome.as_str()
                ));
                hold = None;
                earlier.case_id
            }
            Action::Suppressed { why } => {
                note = Some(why);
                None
            }
            Action::Ignored { why } => {
                note = Some(why);
                None
            }
            Action::Create { case } => {
                let case = self.with_evidence(alarm, case).await;
                match self
                    .open_counted(alarm.key(), alarm, &keys, &case, None, now)
                    .await?
                {
                    Some(opened) => {
                        claim = Some(opened.claim);
                        note = opened.note;
                        open_cases.push(opened_for(alarm, opened.case_id.clone(), now));
                        Some(opened.case_id)
                    }
                    None => {
                        let storm = self
                            .storm_instead(alarm, &plan.settings, &keys, now)
                            .await?;
                        outcome = storm.outcome;
                        note = Some(storm.note);
                        claim = storm.claim;
                        open_cases.extend(storm.open_cases);
                        Some(storm.case_id)
                    }
                }
            }
            Action::Update {
                mut open,
                communication,
            } => match self
                .desk
                .add_communication(&open.case_id, &communication)
                .await
            {
                Ok(()) => {
                    open.updates += 1;
                    open.last_update_at = now;
                    open.recovered = false;
                    open.digest = health_digest(alarm);
                    let id = open.case_id.clone();
                    open_cases.push(OpenCaseChange::Put(open));
                    Some(id)
                }
                // Support resolved or removed the case: the problem is back, so it needs a
                // case again.
                Err(DeskError::CaseNotFound(_)) => {
                    let old = open.case_id.clone();
                    let case = self.new_case(alarm, &plan.settings, &plan.config_notes);
                    // A new case like any other: it counts against the storm cap.
                    match self
                        .open_counted(alarm.key(), alarm, &keys, &case, Some(old.clone()), now)
                        .await?
                    {
                        Some(opened) => {
                            claim = Some(opened.claim);
                            outcome = Outcome::Created;
                            note = Some(format!("previous case {old} no longer open"));
                            open_cases.push(opened_for(alarm, opened.case_id.clone(), now));
                            Some(opened.case_id)
                        }
                        None => {
                            let storm = self
                                .storm_instead(alarm, &plan.settings, &keys, now)
                                .await?;
                            outcome = storm.outcome;
                            note = Some(format!(
                                "previous case {old} no longer open; {}",
                                storm.note
                            ));
                            claim = storm.claim;
                            open_cases.extend(storm.open_cases);
                            Some(storm.case_id)
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            },
            Action::Coalesce { mut open } => {
                open.coalesced += 1;
                let id = open.case_id.clone();
                open_cases.push(OpenCaseChange::Put(open));
                Some(id)
            }
            Action::Recover {
                mut open,
                communication,
                resolve,
            } => {
                let gone = match &communication {
                    Some(c) => match self.desk.add_communication(&open.case_id, c).await {
                        Ok(()) => false,
                        Err(DeskError::CaseNotFound(_)) => true,
                        Err(e) => return Err(e.into()),
                    },
                    None => false,
                };
                if resolve && !gone {
                    match self.desk.resolve_case(&open.case_id).await {
                        Ok(()) | Err(DeskError::CaseNotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                let id = open.case_id.clone();
                if resolve || gone {
                    if gone {
                        note = Some("case no longer open at AWS Support".into());
                    }
                    open_cases.push(OpenCaseChange::Remove {
                        alarm_key: alarm.key().to_owned(),
                    });
                } else {
                    open.recovered = true;
                    open.last_update_at = now;
                    // Folded alarms point at the storm case: their record is theirs alone.
                    open.alarm_key = alarm.key().to_owned();
                    open_cases.push(OpenCaseChange::Put(open));
                }
                Some(id)
            }
            Action::CreateStorm { case } => {
                let opened = self
                    .open_case(STORM_KEY, alarm, &keys, &case, None, now)
                    .await?;
                claim = Some(opened.claim);
                note = Some(format!(
                    "storm: {} new cases within an hour; this alarm opened the storm case",
                    self.policy.storm_cap
                ));
                let id = opened.case_id;
                open_cases.extend(storm_opened(alarm, &id, now));
                Some(id)
            }
            Action::Fold {
                mut storm,
                communication,
            } => match self
                .desk
                .add_communication(&storm.case_id, &communication)
                .await
            {
                Ok(()) => {
                    note = Some("storm: folded into the storm case".into());
                    storm.updates += 1;
                    storm.last_update_at = now;
                    let id = storm.case_id.clone();
                    open_cases.push(opened_for(alarm, id.clone(), now));
                    open_cases.push(OpenCaseChange::Put(storm));
                    Some(id)
                }
                // The storm case was resolved: this alarm starts a new one.
                Err(DeskError::CaseNotFound(_)) => {
                    let old = storm.case_id.clone();
                    let case = self.storm_case(alarm, &plan.settings);
                    let opened = self
                        .open_case(STORM_KEY, alarm, &keys, &case, Some(old), now)
                        .await?;
                    claim = Some(opened.claim);
                    outcome = Outcome::Created;
                    note = Some("storm: the storm case was resolved; a new one was opened".into());
                    let id = opened.case_id;
                    open_cases.extend(storm_opened(alarm, &id, now));
                    Some(id)
                }
                Err(e) => return Err(e.into()),
            },
        };

        // The alarm's own record carries its group, so the group's other members find it.
        for change in &mut open_cases {
            if let OpenCaseChange::Put(o) = change
                && o.alarm_key == alarm.key()
            {
                o.group = plan.settings.group.clone();
            }
        }
        let decision = Decision {
            seq: 0,
            at: now,
            delivery_kind: delivery.kind.as_str().into(),
            delivery_id: delivery.id().map(str::to_owned),
            alarm_key: alarm.key().to_owned(),
            alarm_name: alarm.name.clone(),
            state: alarm.state.as_str().into(),
            state_change_time: alarm.state_change_time.raw.clone(),
            outcome,
            case_id: case_id.clone(),
            note,
        };
        self.commit_retrying(Commit {
            handled_keys: keys,
            decision,
            open_cases,
            claim,
            hold,
        })
        .await?;
        match (outcome, &case_id) {
            (Outcome::Created, Some(id)) => self.notifier.notify(crate::notify::Notice::Opened {
                case_id: id.clone(),
                subject: headline,
                severity: plan.settings.priority.as_str().to_owned(),
                alarm: alarm.name.clone(),
            }),
            (Outcome::Folded, Some(id)) => self.notifier.notify(crate::notify::Notice::Folded {
                case_id: id.clone(),
                alarm: alarm.name.clone(),
            }),
            _ => {}
        }
        Ok(Handled {
            outcome,
            case_id,
            alarm: alarm.name.clone(),
        })
    }

    /// The periodic task: asks the desk about every case the ledger holds open and lets go
    /// of those support resolved (so the next alarm opens a new case at once instead of
    /// discovering it on update), then raises the alarms held during maintenance windows
    /// that have ended.
    pub async fn reconcile(&self, delivery: &Delivery) -> Result<Reconciled, CaseError> {
        let mut report = Reconciled::default();
        for open in self.ledger.open_cases().await? {
            report.checked += 1;
            let _guard = self.locks.stripe(&open.alarm_key).lock().await;
            // Re-read under the lock: a delivery may have changed it meanwhile.
            let Some(open) = self.ledger.open_case(&open.alarm_key).await? else {
                continue;
            };
            let status = match self.desk.case_info(&open.case_id).await? {
                Some(info) if !info.resolved => continue,
                Some(info) => info.status,
                None => "unknown to the support desk".into(),
            };
            let commit = let_go(delivery, &open, (self.clock)(), format!("case {status}"));
            self.ledger.commit(commit).await?;
            self.notifier.notify(crate::notify::Notice::Resolved {
                case_id: open.case_id.clone(),
                alarm: open.alarm_name.clone(),
            });
            report.closed.push(open.case_id);
        }

        let now = (self.clock)();
        let windows = self.config.windows().await?;
        for held in self.ledger.held().await? {
            if held.window_ends_at > now
                || maintenance::covering(&windows, &held.alarm_name, now).is_some()
            {
                continue;
            }
            let alarm = match Alarm::parse(held.raw.clone()) {
                Ok(a) => a,
                Err(e) => {
                    // Cannot happen for what was parsed before; never let it block the rest.
                    tracing::error!(alarm = %held.alarm_key, error = %e, "held alarm unreadable; dropped");
                    let mut commit = Commit::record(
                        Vec::new(),
                        self.note_decision(delivery, &held, "held alarm unreadable; dropped"),
                    );
                    commit.hold = Some(HoldChange::Remove {
                        alarm_key: held.alarm_key.clone(),
                    });
                    self.ledger.commit(commit).await?;
                    continue;
                }
            };
            let _guard = self.locks.stripe(alarm.key()).lock().await;
            let task = Delivery::new(DeliveryKind::Task);
            let plan = self.plan_with(&task, &alarm, Dedupe::Skip).await?;
            report
                .raised
                .push(self.execute(&task, &alarm, plan, Dedupe::Skip).await?);
        }
        Ok(report)
    }

    fn note_decision(&self, delivery: &Delivery, held: &HeldAlarm, note: &str) -> Decision {
        Decision {
            seq: 0,
            at: (self.clock)(),
            delivery_kind: delivery.kind.as_str().into(),
            delivery_id: delivery.id().map(str::to_owned),
            alarm_key: held.alarm_key.clone(),
            alarm_name: held.alarm_name.clone(),
            state: "ALARM".into(),
            state_change_time: String::new(),
            outcome: Outcome::Ignored,
            case_id: None,
            note: Some(note.into()),
        }
    }

    /// Records a subscription event (confirmed, unsubscribed) in the ledger, so the audit
    /// trail shows when this endpoint started or stopped hearing from a topic.
    pub async fn record_subscription(
        &self,
        delivery: &Delivery,
        topic_arn: &str,
        kind: &str,
        timestamp: &str,
        outcome: Outcome,
        note: Option<String>,
    ) -> Result<(), CaseError> {
        let decision = Decision {
            seq: 0,
            at: (self.clock)(),
            delivery_kind: delivery.kind.as_str().into(),
            delivery_id: delivery.id().map(str::to_owned),
            alarm_key: topic_arn.to_owned(),
            alarm_name: topic_arn.to_owned(),
            state: kind.to_owned(),
            state_change_time: timestamp.to_owned(),
            outcome,
            case_id: None,
            note,
        };
        self.ledger
            .commit(Commit::record(delivery.dedupe_keys(), decision))
            .await?;
        Ok(())
    }

    /// Claims the key, then opens the case. The claim makes "no case is open" and the
    /// opening one step across every instance sharing the ledger; it is given back if the
    /// desk refuses, and released by the commit otherwise. The case's first line carries
    /// the claim's reference: when a claim is taken over from an instance that stopped,
    /// the case it may have opened is found by that reference instead of opened twice.
    async fn open_case(
        &self,
        key: &str,
        alarm: &Alarm,
        keys: &[String],
        case: &NewCase,
        replaces: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Opened, CaseError> {
        let _one_at_a_time = self.opening.lock().await;
        let ttl =
            chrono::Duration::from_std(self.policy.claim_ttl).unwrap_or(chrono::Duration::MAX);
        let claim =
            Claim::new(key, now, now + ttl, replaces).for_delivery(&alarm.name, keys.to_vec());
        let stale = match self.ledger.claim(&claim, now).await? {
            ClaimOutcome::Refused => return Err(CaseError::Busy),
            ClaimOutcome::Taken { stale } => stale,
        };
        if let Some(stale) = stale {
            match self
                .leased(
                    &claim,
                    self.desk.find_case(&stale.reference, stale.claimed_at),
                )
                .await
            {
                Ok(Some(case_id)) => {
                    tracing::warn!(key, case_id = %case_id, reference = %stale.reference, "found a case opened by an instance that stopped before recording it");
                    return Ok(Opened {
                        case_id,
                        claim,
                        note: Some(format!(
                            "recovered case {} opened before a crash",
                            stale.reference
                        )),
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    self.give_back(&claim).await;
                    return Err(e.into());
                }
            }
        }
        let mut case = case.clone();
        case.communication_body = truncate_body(format!(
            "Reference: {} (cw-support-api)\n{}",
            claim.reference, case.communication_body
        ));
        match self.leased(&claim, self.desk.create_case(&case)).await {
            Ok(case_id) => Ok(Opened {
                case_id,
                claim,
                note: None,
            }),
            // The case may exist (a timeout, a lost connection, a 5xx): CreateCase has no
            // idempotency token, so it is never sent again blindly. Look for the case by its
            // reference a few times; if it is not found yet, keep the claim: whoever takes
            // it over once its lease lapses looks again before any new CreateCase.
            Err(e @ DeskError::Uncertain(_)) => {
                for fifteenths in SETTLE_PAUSES {
                    let pause = self.policy.claim_ttl * fifteenths / 15;
                    let settle = async {
                        tokio::time::sleep(pause).await;
                        self.desk
                            .find_case(&claim.reference, claim.claimed_at)
                            .await
                    };
                    if let Ok(Some(case_id)) = self.leased(&claim, settle).await {
                        tracing::warn!(key, case_id = %case_id, reference = %claim.reference, "an uncertain CreateCase did open the case: found by its reference");
                        return Ok(Opened {
                            case_id,
                            claim,
                            note: Some(
                                "found by its reference after an uncertain CreateCase".into(),
                            ),
                        });
                    }
                }
                Err(e.into())
            }
            Err(e) => {
                self.give_back(&claim).await;
                Err(e.into())
            }
        }
    }

    /// A stored service or category code AWS Support does not know would get the whole case
    /// refused: the default is used instead, and the case says so. When the desk cannot
    /// say which codes it knows, nothing is changed (CreateCase decides).
    async fn check_codes(&self, settings: &mut AlarmSettings, notes: &mut Vec<String>) {
        if settings.service_code.is_none() && settings.category_code.is_none() {
            return;
        }
        let catalog = match self.desk.services().await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the support desk's service codes");
                return;
            }
        };
        let service = settings
            .service_code
            .clone()
            .unwrap_or_else(|| self.policy.default_service_code.clone());
        match catalog.check(&service, settings.category_code.as_deref()) {
            Ok(()) => {}
            Err(problem @ CodeProblem::UnknownService { .. }) => {
                notes.push(format!(
                    "{problem}; the default service {} / category {} was used",
                    self.policy.default_service_code, self.policy.default_category_code
                ));
                settings.service_code = None;
                settings.category_code = None;
            }
            Err(problem @ CodeProblem::UnknownCategory { .. }) => {
                notes.push(format!(
                    "{problem}; the default category {} was used",
                    self.policy.default_category_code
                ));
                settings.category_code = None;
                if catalog
                    .check(&service, Some(&self.policy.default_category_code))
                    .is_err()
                {
                    settings.service_code = None;
                }
            }
        }
    }

    /// Opens a case that counts against the storm cap: takes one of the hour's slots
    /// first (atomically, across instances), and gives it back if the case was definitely
    /// not opened. `None`: the slots are all taken, a storm.
    async fn open_counted(
        &self,
        key: &str,
        alarm: &Alarm,
        keys: &[String],
        case: &NewCase,
        replaces: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<Opened>, CaseError> {
        if !self
            .ledger
            .take_case_slot(self.policy.storm_cap, now)
            .await?
        {
            return Ok(None);
        }
        let first = self
            .open_case(key, alarm, keys, case, replaces.clone(), now)
            .await;
        // A refusal no retry can fix may be the alarm's own codes: once more with the
        // defaults, saying so in the case.
        let with_defaults = case.service_code != self.policy.default_service_code
            || case.category_code != self.policy.default_category_code;
        let result = match first {
            Err(CaseError::Desk(DeskError::Rejected(reason))) if with_defaults => {
                tracing::warn!(key, reason = %reason, "the support desk refused the case; trying the default codes");
                let mut retry = case.clone();
                retry.service_code = self.policy.default_service_code.clone();
                retry.category_code = self.policy.default_category_code.clone();
                retry.communication_body = truncate_body(format!(
                    "Note: AWS Support refused service {} / category {} ({reason}); opened with \
                     the defaults.\n\n{}",
                    case.service_code, case.category_code, case.communication_body
                ));
                self.open_case(key, alarm, keys, &retry, replaces, now)
                    .await
                    .map(|mut o| {
                        o.note = Some(format!(
                            "refused codes {}/{}; opened with the defaults",
                            case.service_code, case.category_code
                        ));
                        o
                    })
            }
            other => other,
        };
        match result {
            Ok(opened) => Ok(Some(opened)),
            Err(e) => {
                // An uncertain CreateCase may have opened the case: its slot stays taken.
                if !matches!(e, CaseError::Desk(DeskError::Uncertain(_)))
                    && let Err(r) = self.ledger.return_case_slot(now).await
                {
                    tracing::warn!(error = %r, "could not give a storm slot back");
                }
                Err(e)
            }
        }
    }

    /// The hour's slots are taken: the alarm goes to the storm case, opening it if need be
    /// (the storm case itself takes no slot).
    async fn storm_instead(
        &self,
        alarm: &Alarm,
        settings: &AlarmSettings,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<StormResult, CaseError> {
        if let Some(mut storm) = self.ledger.open_case(STORM_KEY).await? {
            let communication = Communication {
                communication_body: referenced(
                    alarm,
                    storm_body(alarm, settings, self.policy.storm_cap, false),
                ),
                cc_email_addresses: settings.cc.clone(),
            };
            match self
                .desk
                .add_communication(&storm.case_id, &communication)
                .await
            {
                Ok(()) => {
                    storm.updates += 1;
                    storm.last_update_at = now;
                    let id = storm.case_id.clone();
                    return Ok(StormResult {
                        outcome: Outcome::Folded,
                        note: "storm: folded into the storm case".into(),
                        claim: None,
                        open_cases: vec![
                            opened_for(alarm, id.clone(), now),
                            OpenCaseChange::Put(storm),
                        ],
                        case_id: id,
                    });
                }
                Err(DeskError::CaseNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let case = self.storm_case(alarm, settings);
        let opened = self
            .open_case(STORM_KEY, alarm, keys, &case, None, now)
            .await?;
        let id = opened.case_id;
        Ok(StormResult {
            outcome: Outcome::Created,
            note: format!(
                "storm: {} new cases within the hour; this alarm opened the storm case",
                self.policy.storm_cap
            ),
            claim: Some(opened.claim),
            open_cases: storm_opened(alarm, &id, now).into(),
            case_id: id,
        })
    }

    /// Runs `work` while renewing the claim's lease every third of it, so the claim stays
    /// ours for as long as the work takes, and lapses soon after if this process dies.
    async fn leased<T>(&self, claim: &Claim, work: impl Future<Output = T>) -> T {
        let every = (self.policy.claim_ttl / 3).max(Duration::from_millis(50));
        let lease =
            chrono::Duration::from_std(self.policy.claim_ttl).unwrap_or(chrono::Duration::MAX);
        tokio::pin!(work);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = ticks.tick() => {
                    match self.ledger.renew(claim, Utc::now() + lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(key = %claim.alarm_key, "the claim was taken over while its work was in flight"),
                        Err(e) => tracing::warn!(key = %claim.alarm_key, error = %e, "could not renew a claim's lease"),
                    }
                }
            }
        }
    }

    async fn give_back(&self, claim: &Claim) {
        if let Err(e) = self.ledger.release(claim).await {
            // The claim expires by itself; the delivery is retried either way.
            tracing::warn!(key = %claim.alarm_key, error = %e, "could not release a claim");
        }
    }

    fn new_case(&self, alarm: &Alarm, settings: &AlarmSettings, notes: &[String]) -> NewCase {
        NewCase {
            subject: settings
                .subject
                .clone()
                .unwrap_or_else(|| alarm.name.clone()),
            communication_body: truncate_body(case_body(alarm, settings, notes)),
            severity_code: settings.priority,
            service_code: settings
                .service_code
                .clone()
                .unwrap_or_else(|| self.policy.default_service_code.clone()),
            category_code: settings
                .category_code
                .clone()
                .unwrap_or_else(|| self.policy.default_category_code.clone()),
            cc_email_addresses: settings.cc.clone(),
            language: "en".into(),
            issue_type: "technical".into(),
            account: alarm.identity.account.clone(),
            account_role: alarm
                .identity
                .account
                .as_ref()
                .and_then(|a| self.policy.account_roles.get(a).cloned()),
            attachments: Vec::new(),
        }
    }

    fn storm_case(&self, alarm: &Alarm, settings: &AlarmSettings) -> NewCase {
        let mut case = self.new_case(alarm, settings, &[]);
        case.subject = format!(
            "Alarm storm: more than {} new alarms within an hour",
            self.policy.storm_cap
        );
        case.communication_body =
            truncate_body(storm_body(alarm, settings, self.policy.storm_cap, true));
        case
    }
}

/// How many times a commit is tried after the desk acted (about 1.3 s in all).
const COMMIT_ATTEMPTS: u32 = 4;

/// Pauses before each look for a case whose CreateCase had an uncertain outcome, in
/// fifteenths of the lease (1, 2 and 4 s with the default 15 s): the looking ends within
/// half a lease, while this process still holds the claim.
const SETTLE_PAUSES: [u32; 3] = [1, 2, 4];

/// What sending an alarm to the storm case did.
struct StormResult {
    outcome: Outcome,
    case_id: String,
    note: String,
    claim: Option<Claim>,
    open_cases: Vec<OpenCaseChange>,
}

/// What recovery at start did with the claims it found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecoveredClaims {
    /// The case was found by its reference and recorded.
    pub adopted: usize,
    /// No case carried the reference: the claim was let go.
    pub released: usize,
    /// The desk could not be asked: left to lapse and be taken over.
    pub left: usize,
}

/// A case just opened (or found again after a crash).
struct Opened {
    case_id: String,
    claim: Claim,
    note: Option<String>,
}

/// A communication's body with a first line naming the state change it reports. An
/// AddCommunicationToCase whose outcome was uncertain is sent again only if the case does
/// not already carry that line (the desks check), so a retry never doubles the news.
fn referenced(alarm: &Alarm, body: String) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(alarm.event_key().as_bytes());
    let tag: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    truncate_body(format!("Reference: cwsu-{tag} (cw-support-api)\n{body}"))
}

/// The reference on a communication's first line, if it carries one.
pub fn communication_reference(body: &str) -> Option<&str> {
    let rest = body.lines().next()?.strip_prefix("Reference: ")?;
    rest.split_whitespace()
        .next()
        .filter(|r| r.starts_with("cwsu-"))
}

/// The keys that make a delivery a duplicate: its delivery ids, and the state change itself
/// (so the same event arriving by another path, or re-posted by hand, is still one event).
fn handled_keys(delivery: &Delivery, alarm: &Alarm) -> Vec<String> {
    let mut keys = delivery.dedupe_keys();
    keys.push(format!("event:{}", alarm.event_key()));
    keys
}

/// A case no longer open at the desk: recorded as `closed` and its record let go, so the
/// alarm's next ALARM opens a new case.
fn let_go(delivery: &Delivery, open: &OpenCase, at: DateTime<Utc>, note: String) -> Commit {
    let decision = Decision {
        seq: 0,
        at,
        delivery_kind: delivery.kind.as_str().into(),
        delivery_id: delivery.id().map(str::to_owned),
        alarm_key: open.alarm_key.clone(),
        alarm_name: open.alarm_name.clone(),
        state: "-".into(),
        state_change_time: String::new(),
        outcome: Outcome::Closed,
        case_id: Some(open.case_id.clone()),
        note: Some(note),
    };
    let mut commit = Commit::record(Vec::new(), decision);
    commit.open_cases.push(OpenCaseChange::Remove {
        alarm_key: open.alarm_key.clone(),
    });
    commit
}

/// The open-case record of an alarm whose case was just opened (or that points at the
/// storm case).
fn opened_for(alarm: &Alarm, case_id: String, now: DateTime<Utc>) -> OpenCaseChange {
    let mut open = fresh_open_case(alarm.key(), &alarm.name, case_id, now);
    open.digest = health_digest(alarm);
    OpenCaseChange::Put(open)
}

/// A storm case was opened: its own record, and the alarm's pointing at it.
fn storm_opened(alarm: &Alarm, case_id: &str, now: DateTime<Utc>) -> [OpenCaseChange; 2] {
    [
        OpenCaseChange::Put(fresh_open_case(
            STORM_KEY,
            "alarm storm",
            case_id.to_owned(),
            now,
        )),
        opened_for(alarm, case_id.to_owned(), now),
    ]
}

fn fresh_open_case(key: &str, name: &str, case_id: String, now: DateTime<Utc>) -> OpenCase {
    OpenCase {
        alarm_key: key.to_owned(),
        alarm_name: name.to_owned(),
        case_id,
        opened_at: now,
        last_update_at: now,
        coalesced: 0,
        updates: 0,
        recovered: false,
        digest: None,
        cycles: Vec::new(),
        flapping: false,
        group: None,
    }
}

fn storm_body(alarm: &Alarm, settings: &AlarmSettings, cap: usize, first: bool) -> String {
    let mut s = if first {
        format!(
            "More than {cap} alarms needed a case within an hour. To stay within AWS Support's \
             case limits, further new alarms are added to this case instead of opening their own.\n\n"
        )
    } else {
        "Another alarm in the storm:\n\n".to_owned()
    };
    s.push_str(&details(alarm));
    s.push_str("\nAction requested:\n");
    s.push_str(&settings.action.render());
    s.push('\n');
    s
}

fn details(alarm: &Alarm) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: &str| s.push_str(&format!("{k}: {v}\n"));
    line("Alarm", &alarm.name);
    line(
        "Description",
        alarm.description.as_deref().unwrap_or("(none)"),
    );
    match alarm.previous_state {
        Some(prev) => line("State", &format!("{} (was {prev})", alarm.state)),
        None => line("State", alarm.state.as_str()),
    }
    if let Some(reason) = &alarm.reason {
        line("Reason", reason);
    }
    line("Time", &alarm.state_change_time.raw);
    line(
        "Account",
        alarm.identity.account.as_deref().unwrap_or("(unknown)"),
    );
    line(
        "Region",
        alarm.identity.region.as_deref().unwrap_or("(unknown)"),
    );
    if let Some(arn) = &alarm.identity.arn {
        line("Alarm ARN", arn);
    }
    line("Trigger", &alarm.trigger);
    s
}

fn raw_json(alarm: &Alarm) -> String {
    serde_json::to_string_pretty(&alarm.raw).unwrap_or_else(|_| alarm.raw.to_string())
}

/// The body of a new case: what happened, what to do, and the alarm as received (last, so
/// that truncation eats the raw JSON before anything a person wrote).
fn case_body(alarm: &Alarm, settings: &AlarmSettings, notes: &[String]) -> String {
    let mut s = String::from("An alarm raised this case automatically (cw-support-api).\n\n");
    s.push_str(&details(alarm));
    s.push_str("\nAction requested:\n");
    s.push_str(&settings.action.render());
    s.push('\n');
    if !notes.is_empty() {
        s.push_str("\nConfiguration notes (defaults used):\n");
        for n in notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s.push_str("\nRaw alarm:\n");
    s.push_str(&raw_json(alarm));
    s
}

fn update_body(alarm: &Alarm, open: &OpenCase) -> String {
    let mut s = format!(
        "It's happened again! The alarm {} went to ALARM at {}.\n",
        alarm.name, alarm.state_change_time.raw
    );
    if open.coalesced > 0 {
        s.push_str(&format!(
            "{} further notification(s) arrived since the last update to this case.\n",
            open.coalesced
        ));
    }
    s.push('\n');
    s.push_str(&details(alarm));
    s.push_str("\nRaw alarm:\n");
    s.push_str(&raw_json(alarm));
    s
}

fn recovery_body(alarm: &Alarm, resolving: bool) -> String {
    let mut s = format!(
        "Recovered: the alarm {} returned to OK at {}.\n",
        alarm.name, alarm.state_change_time.raw
    );
    if let Some(reason) = &alarm.reason {
        s.push_str(&format!("Reason: {reason}\n"));
    }
    s.push_str(if resolving {
        "This case is being resolved automatically.\n"
    } else {
        "The case stays open until you confirm the problem is solved.\n"
    });
    s
}

#[cfg(test)]
mod tests {
    //! The decision table, against the local backends (a temporary directory, no network).
    use super::*;
    use crate::alarm_config::{AlarmConfigRecord, CcField};
    use crate::backend::local::LocalBackend;
    use crate::delivery::DeliveryKind;
    use serde_json::json;
    use std::sync::Mutex as StdMutex;

    struct Fixture {
        _dir: tempfile::TempDir,
        backend: LocalBackend,
        now: Arc<StdMutex<DateTime<Utc>>>,
        service: CaseService,
    }

    fn fixture_with(policy: CasePolicy) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = LocalBackend::open(dir.path()).expect("backend");
        let now = Arc::new(StdMutex::new(Utc::now()));
        let clock = now.clone();
        let service = CaseService::new(
            backend.config.clone(),
            backend.ledger.clone(),
            backend.desk.clone(),
            policy,
        )
        .with_clock(move || *clock.lock().expect("clock"));
        Fixture {
            _dir: dir,
            backend,
            now,
            service,
        }
    }

    fn fixture() -> Fixture {
        fixture_with(CasePolicy::default())
    }

    impl Fixture {
        fn advance(&self, d: Duration) {
            let mut n = self.now.lock().expect("clock");
            *n += chrono::Duration::from_std(d).expect("duration");
        }
    }

    fn alarm(state: &str, time: &str) -> Alarm {
        Alarm::parse(json!({
            "AlarmName": "db-cpu",
            "AlarmDescription": "CPU high",
            "NewStateValue": state,
            "OldStateValue": "OK",
            "StateChangeTime": time,
            "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-cpu",
            "Trigger": {"MetricName": "CPUUtilization", "Namespace": "AWS/RDS"}
        }))
        .expect("alarm")
    }

    fn direct() -> Delivery {
        Delivery::new(DeliveryKind::Direct)
    }

    async fn handle(f: &Fixture, a: &Alarm) -> Handled {
        f.service.handle(&direct(), a).await.expect("handled")
    }

    #[tokio::test]
    async fn alarm_opens_a_case_with_the_settings() {
        let f = fixture();
        f.backend
            .config
            .put(
                "db-cpu",
                &AlarmConfigRecord {
                    priority: Some("urgent".into()),
                    action: Some(r#"{"runbook":"failover"}"#.into()),
                    ccemail: Some(CcField::One("ops@example.com".into())),
                    ..Default::default()
                },
            )
            .await
            .expect("put");
        let h = handle(&f, &alarm("ALARM", "t1")).await;
        assert_eq!(h.outcome, Outcome::Created);
        let id = h.case_id.expect("case id");
        assert_eq!(id, "dry-run-1");
        let case = f.backend.desk.case(&id).expect("read").expect("recorded");
        assert_eq!(case.case.subject, "db-cpu");
        assert_eq!(case.case.severity_code.as_str(), "urgent");
        assert_eq!(case.case.service_code, "amazon-elastic-compute-cloud-linux");
        assert_eq!(case.case.category_code, "other");
        assert_eq!(case.case.language, "en");
        assert_eq!(case.case.cc_email_addresses[0].as_str(), "ops@example.com");
        let body = &case.case.communication_body;
        assert!(body.contains("Alarm: db-cpu"));
        assert!(body.contains("Description: CPU high"));
        assert!(body.contains("State: ALARM (was OK)"));
        assert!(body.contains("Region: us-east-1"));
        assert!(
            body.contains("\"runbook\": \"failover\""),
            "action pretty-printed"
        );
        assert!(
            body.contains("\"AlarmName\": \"db-cpu\""),
            "raw JSON quoted"
        );
    }

    #[tokio::test]
    async fn repeat_within_cooldown_is_coalesced_then_updated() {
        let f = fixture();
        let first = handle(&f, &alarm("ALARM", "t1")).await;
        f.advance(Duration::from_secs(60));
        let again = handle(&f, &alarm("ALARM", "t2")).await;
        assert_eq!(again.outcome, Outcome::Coalesced);
        assert_eq!(again.case_id, first.case_id);
        let open = f
            .backend
            .ledger
            .open_case(alarm("ALARM", "t").key())
            .await
            .expect("read")
            .expect("open");
        assert_eq!(open.coalesced, 1);

        f.advance(Duration::from_secs(600));
        let later = handle(&f, &alarm("ALARM", "t3")).await;
        assert_eq!(later.outcome, Outcome::Updated);
        assert_eq!(later.case_id, first.case_id);
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        assert_eq!(case.communications.len(), 1);
        assert!(
            case.communications[0]
                .communication_body
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("It's happened again!"))
        );
        assert!(
            case.communications[0]
                .communication_body
                .contains("1 further notification")
        );
    }

    #[tokio::test]
    async fn ok_recovers_the_open_case_and_is_otherwise_ignored() {
        let f = fixture();
        assert_eq!(
            handle(&f, &alarm("OK", "t0")).await.outcome,
            Outcome::Ignored
        );
        assert_eq!(
            handle(&f, &alarm("INSUFFICIENT_DATA", "t0b")).await.outcome,
            Outcome::Ignored
        );
        let created = handle(&f, &alarm("ALARM", "t1")).await;
        let rec = handle(&f, &alarm("OK", "t2")).await;
        assert_eq!(rec.outcome, Outcome::Recovered);
        assert_eq!(rec.case_id, created.case_id);
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        assert!(
            case.communications[0]
                .communication_body
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("Recovered:"))
        );
        assert!(!case.resolved, "never closed unless configured");
        // A new ALARM after recovery tells support at once, cooldown or not.
        let back = handle(&f, &alarm("ALARM", "t3")).await;
        assert_eq!(back.outcome, Outcome::Updated);
        assert_eq!(back.case_id, created.case_id);
    }

    #[tokio::test]
    async fn recovery_note_can_be_off_and_close_on_recovery_resolves() {
        let f = fixture_with(CasePolicy {
            recovery_note: false,
            ..CasePolicy::default()
        });
        handle(&f, &alarm("ALARM", "t1")).await;
        assert_eq!(
            handle(&f, &alarm("OK", "t2")).await.outcome,
            Outcome::Recovered
        );
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        assert!(case.communications.is_empty());

        let f = fixture_with(CasePolicy {
            close_on_recovery: true,
            ..CasePolicy::default()
        });
        handle(&f, &alarm("ALARM", "t1")).await;
        assert_eq!(
            handle(&f, &alarm("OK", "t2")).await.outcome,
            Outcome::Recovered
        );
        assert!(
            f.backend
                .desk
                .case("dry-run-1")
                .expect("read")
                .expect("case")
                .resolved
        );
        let next = handle(&f, &alarm("ALARM", "t3")).await;
        assert_eq!(next.outcome, Outcome::Created);
        assert_eq!(next.case_id.as_deref(), Some("dry-run-2"));
    }

    #[tokio::test]
    async fn muted_alarms_are_suppressed() {
        let f = fixture();
        f.backend
            .config
            .put(
                "db-cpu",
                &AlarmConfigRecord {
                    enabled: Some(false),
                    ..Default::default()
                },
            )
            .await
            .expect("put");
        let h = handle(&f, &alarm("ALARM", "t1")).await;
        assert_eq!(h.outcome, Outcome::Suppressed);
        assert_eq!(h.case_id, None);
        assert!(f.backend.desk.case("dry-run-1").expect("read").is_none());
    }

    #[tokio::test]
    async fn same_event_or_same_delivery_is_a_duplicate() {
        let f = fixture();
        let a = alarm("ALARM", "t1");
        let first = handle(&f, &a).await;
        let dup = handle(&f, &a).await;
        assert_eq!(dup.outcome, Outcome::Duplicate);
        assert_eq!(dup.case_id, first.case_id);

        // Same SQS message id, different event: still the same delivery.
        let mut d = Delivery::new(DeliveryKind::Sqsd);
        d.sqsd_message_id = Some("msg-1".into());
        let b = alarm("ALARM", "t2");
        f.advance(Duration::from_secs(3600));
        assert_eq!(
            f.service.handle(&d, &b).await.expect("ok").outcome,
            Outcome::Updated
        );
        let c = alarm("ALARM", "t3");
        assert_eq!(
            f.service.handle(&d, &c).await.expect("ok").outcome,
            Outcome::Duplicate
        );
        let decisions = f
            .backend
            .ledger
            .decisions(&Default::default())
            .await
            .expect("decisions");
        assert_eq!(decisions.len(), 4, "every decision is recorded");
        assert_eq!(decisions[0].outcome, Outcome::Duplicate);
        assert_eq!(decisions[0].delivery_id.as_deref(), Some("msg-1"));
    }

    #[tokio::test]
    async fn concurrent_deliveries_of_one_new_alarm_open_one_case() {
        let f = Arc::new(fixture());
        let mut tasks = Vec::new();
        for i in 0..20 {
            let f = f.clone();
            tasks.push(tokio::spawn(async move {
                let mut d = Delivery::new(DeliveryKind::Sqsd);
                d.sqsd_message_id = Some(format!("m{i}"));
                f.service
                    .handle(&d, &alarm("ALARM", "t1"))
                    .await
                    .expect("ok")
                    .outcome
            }));
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.expect("join"));
        }
        assert_eq!(
            outcomes.iter().filter(|o| **o == Outcome::Created).count(),
            1
        );
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == Outcome::Duplicate)
                .count(),
            19
        );
    }

    #[tokio::test]
    async fn plan_changes_nothing() {
        let f = fixture();
        let a = alarm("ALARM", "t1");
        let p1 = f.service.plan(&direct(), &a).await.expect("plan");
        let p2 = f.service.plan(&direct(), &a).await.expect("plan");
        assert_eq!(p1.outcome, Outcome::Created);
        assert_eq!(p2.outcome, Outcome::Created);
        assert!(f.backend.desk.case("dry-run-1").expect("read").is_none());
    }

    #[tokio::test]
    async fn malformed_settings_use_defaults_and_say_so_in_the_case() {
        let f = fixture();
        f.backend
            .config
            .put(
                "db-cpu",
                &AlarmConfigRecord {
                    priority: Some("p1".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("put");
        handle(&f, &alarm("ALARM", "t1")).await;
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        assert_eq!(case.case.severity_code.as_str(), "low");
        assert!(case.case.communication_body.contains("Configuration notes"));
        assert!(
            case.case
                .communication_body
                .contains("unknown priority \"p1\"")
        );
    }

    #[tokio::test]
    async fn huge_alarms_are_truncated_to_what_support_accepts() {
        let f = fixture();
        let a = Alarm::parse(json!({
            "AlarmName": "big", "StateChangeTime": "t",
            "AlarmDescription": "x".repeat(20_000)
        }))
        .expect("alarm");
        handle(&f, &a).await;
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        assert!(case.case.communication_body.chars().count() <= crate::desk::MAX_BODY_CHARS);
        assert!(case.case.communication_body.contains("characters omitted]"));
    }

    fn named(name: &str, state: &str, time: &str) -> Alarm {
        Alarm::parse(json!({
            "AlarmName": name,
            "NewStateValue": state,
            "StateChangeTime": time,
            "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
        }))
        .expect("alarm")
    }

    #[tokio::test]
    async fn a_storm_is_folded_into_one_storm_case() {
        let f = fixture_with(CasePolicy {
            storm_cap: 2,
            ..CasePolicy::default()
        });
        let outcomes: Vec<Handled> = {
            let mut v = Vec::new();
            for i in 0..5 {
                v.push(handle(&f, &named(&format!("svc-{i}"), "ALARM", "t1")).await);
            }
            v
        };
        let ids: Vec<&str> = outcomes
            .iter()
            .filter_map(|h| h.case_id.as_deref())
            .collect();
        assert_eq!(
            ids,
            vec![
                "dry-run-1",
                "dry-run-2",
                "dry-run-3",
                "dry-run-3",
                "dry-run-3"
            ]
        );
        assert_eq!(
            outcomes[2].outcome,
            Outcome::Created,
            "the storm case is opened"
        );
        assert_eq!(outcomes[3].outcome, Outcome::Folded);
        assert_eq!(outcomes[4].outcome, Outcome::Folded);
        let storm = f
            .backend
            .desk
            .case("dry-run-3")
            .expect("read")
            .expect("storm case");
        assert!(
            storm.case.subject.starts_with("Alarm storm"),
            "{}",
            storm.case.subject
        );
        assert!(storm.case.communication_body.contains("svc-2"));
        assert_eq!(storm.communications.len(), 2, "one per folded alarm");
        assert!(storm.communications[1].communication_body.contains("svc-4"));
        // Every alarm is in the ledger with what was done with it.
        let decisions = f
            .service
            .ledger()
            .decisions(&Default::default())
            .await
            .expect("ledger");
        assert_eq!(decisions.len(), 5);
        // A folded alarm's later news goes to the storm case too.
        f.advance(Duration::from_secs(3601));
        let again = handle(&f, &named("svc-4", "ALARM", "t2")).await;
        assert_eq!(
            (again.outcome, again.case_id.as_deref()),
            (Outcome::Updated, Some("dry-run-3"))
        );
        // An hour later the storm is over: new alarms get their own case again.
        let calm = handle(&f, &named("svc-9", "ALARM", "t3")).await;
        assert_eq!(
            (calm.outcome, calm.case_id.as_deref()),
            (Outcome::Created, Some("dry-run-4"))
        );
    }

    async fn window(f: &Fixture, pattern: Option<&str>, minutes: i64) {
        let now = *f.now.lock().expect("clock");
        f.backend
            .config
            .save_windows(&[crate::maintenance::MaintenanceWindow {
                id: "mw-1".into(),
                reason: "database upgrade".into(),
                alarm_pattern: pattern.map(str::to_owned),
                starts_at: now - chrono::Duration::minutes(1),
                ends_at: now + chrono::Duration::minutes(minutes),
                every: None,
            }])
            .await
            .expect("save");
    }

    #[tokio::test]
    async fn maintenance_suppresses_and_raises_what_is_still_alarming_when_it_ends() {
        let f = fixture();
        window(&f, Some("prod-db-*"), 30).await;
        let held = handle(&f, &named("prod-db-cpu", "ALARM", "t1")).await;
        assert_eq!(held.outcome, Outcome::Suppressed);
        let other = handle(&f, &named("prod-api", "ALARM", "t1")).await;
        assert_eq!(
            other.outcome,
            Outcome::Created,
            "the window covers only its pattern"
        );
        let recovered = handle(&f, &named("prod-db-disk", "ALARM", "t1")).await;
        assert_eq!(recovered.outcome, Outcome::Suppressed);
        handle(&f, &named("prod-db-disk", "OK", "t2")).await;
        let decisions = f
            .service
            .ledger()
            .decisions(&Default::default())
            .await
            .expect("ledger");
        assert!(decisions.iter().any(|d| {
            d.note
                .as_deref()
                .is_some_and(|n| n.contains("database upgrade"))
        }));

        // While the window lasts, the periodic task raises nothing.
        let task = Delivery::new(DeliveryKind::Sqsd);
        assert!(
            f.service
                .reconcile(&task)
                .await
                .expect("reconcile")
                .raised
                .is_empty()
        );
        f.advance(Duration::from_secs(31 * 60));
        let report = f.service.reconcile(&task).await.expect("reconcile");
        assert_eq!(report.raised.len(), 1, "{report:?}");
        assert_eq!(report.raised[0].alarm, "prod-db-cpu");
        assert_eq!(report.raised[0].outcome, Outcome::Created);
        // Raised once only.
        assert!(
            f.service
                .reconcile(&task)
                .await
                .expect("reconcile")
                .raised
                .is_empty()
        );
        assert!(f.service.ledger().held().await.expect("held").is_empty());
    }

    #[tokio::test]
    async fn an_alarm_that_fires_again_after_its_window_is_not_raised_twice() {
        let f = fixture();
        window(&f, None, 10).await;
        handle(&f, &named("prod-db-cpu", "ALARM", "t1")).await;
        f.advance(Duration::from_secs(11 * 60));
        let fresh = handle(&f, &named("prod-db-cpu", "ALARM", "t2")).await;
        assert_eq!(fresh.outcome, Outcome::Created);
        let report = f
            .service
            .reconcile(&Delivery::new(DeliveryKind::Sqsd))
            .await
            .expect("reconcile");
        assert!(report.raised.is_empty(), "{report:?}");
    }

    #[tokio::test]
    async fn a_case_opened_before_a_crash_is_found_not_opened_again() {
        let f = fixture_with(CasePolicy {
            claim_ttl: Duration::from_secs(60),
            busy_wait: Duration::from_millis(200),
            ..CasePolicy::default()
        });
        let a = alarm("ALARM", "t1");
        // An instance claims the alarm, opens the case, and dies before recording it.
        let now = *f.now.lock().expect("clock");
        let crashed = Claim::new(a.key(), now, now + chrono::Duration::seconds(60), None);
        assert!(matches!(
            f.backend.ledger.claim(&crashed, now).await.expect("claim"),
            ClaimOutcome::Taken { .. }
        ));
        let mut case = f.service.plan(&direct(), &a).await.expect("plan");
        let Action::Create {
            case: ref mut new_case,
        } = case.action
        else {
            panic!("expected a new case");
        };
        new_case.communication_body = format!(
            "Reference: {} (cw-support-api)\n{}",
            crashed.reference, new_case.communication_body
        );
        f.backend.desk.create_case(new_case).await.expect("opened");

        // The redelivery waits while the claim lives...
        let busy = f.service.handle(&direct(), &a).await;
        assert!(matches!(busy, Err(CaseError::Busy)), "{busy:?}");
        // ...then takes it over and adopts the case instead of opening a second one.
        f.advance(Duration::from_secs(61));
        let h = handle(&f, &a).await;
        assert_eq!(
            (h.outcome, h.case_id.as_deref()),
            (Outcome::Created, Some("dry-run-1"))
        );
        assert!(f.backend.desk.case("dry-run-2").expect("read").is_none());
        let decisions = f
            .service
            .ledger()
            .decisions(&Default::default())
            .await
            .expect("ledger");
        assert!(
            decisions[0]
                .note
                .as_deref()
                .unwrap_or("")
                .contains("before a crash")
        );
        assert_eq!(handle(&f, &a).await.outcome, Outcome::Duplicate);
    }

    #[tokio::test]
    async fn a_case_reopened_after_support_resolved_it_counts_against_the_cap() {
        let f = fixture_with(CasePolicy {
            storm_cap: 1,
            update_cooldown: Duration::ZERO,
            ..CasePolicy::default()
        });
        let first = handle(&f, &named("svc-1", "ALARM", "t1")).await;
        assert_eq!(first.outcome, Outcome::Created);
        f.backend
            .desk
            .resolve_case("dry-run-1")
            .await
            .expect("resolved");
        // The update finds the case gone and needs a new one: the hour's one slot is
        // taken, so it goes to the storm case instead.
        let again = handle(&f, &named("svc-1", "ALARM", "t2")).await;
        assert_eq!(again.outcome, Outcome::Created);
        let storm = f
            .backend
            .desk
            .case("dry-run-2")
            .expect("read")
            .expect("storm case");
        assert!(
            storm.case.subject.starts_with("Alarm storm"),
            "{}",
            storm.case.subject
        );
        let next = handle(&f, &named("svc-2", "ALARM", "t1")).await;
        assert_eq!(
            (next.outcome, next.case_id.as_deref()),
            (Outcome::Folded, Some("dry-run-2"))
        );
    }

    #[tokio::test]
    async fn an_unknown_service_code_falls_back_to_the_defaults_with_a_note() {
        let f = fixture();
        let a = alarm("ALARM", "t1");
        f.backend
            .config
            .put(
                &a.name,
                &AlarmConfigRecord {
                    service_code: Some("amazon-dynamo-db".into()),
                    category_code: Some("performance".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("put");
        let h = handle(&f, &a).await;
        assert_eq!(h.outcome, Outcome::Created);
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        assert_eq!(case.case.service_code, "amazon-elastic-compute-cloud-linux");
        assert_eq!(case.case.category_code, "other");
        let body = &case.case.communication_body;
        assert!(
            body.contains("amazon-dynamo-db") && body.contains("did you mean amazon-dynamodb"),
            "{body}"
        );

        // A known service with an unknown category keeps the service.
        let b = named("svc-b", "ALARM", "t1");
        f.backend
            .config
            .put(
                &b.name,
                &AlarmConfigRecord {
                    service_code: Some("amazon-dynamodb".into()),
                    category_code: Some("throttle".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("put");
        handle(&f, &b).await;
        let case = f
            .backend
            .desk
            .case("dry-run-2")
            .expect("read")
            .expect("case");
        assert_eq!(
            (
                case.case.service_code.as_str(),
                case.case.category_code.as_str()
            ),
            ("amazon-dynamodb", "other")
        );
    }

    #[tokio::test]
    async fn a_refusal_with_the_defaults_too_is_recorded_as_failed() {
        let f = fixture_with(CasePolicy {
            default_service_code: "not-a-support-service".into(),
            ..CasePolicy::default()
        });
        let a = alarm("ALARM", "t1");
        let e = f.service.handle(&direct(), &a).await.expect_err("refused");
        assert!(
            matches!(e, CaseError::Desk(DeskError::Rejected(_))),
            "{e:?}"
        );
        let recorded = f
            .service
            .ledger()
            .decisions(&Default::default())
            .await
            .expect("ledger");
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].outcome, Outcome::Failed);
        assert!(
            recorded[0]
                .note
                .as_deref()
                .unwrap_or("")
                .contains("not-a-support-service")
        );
        assert!(f.backend.desk.case("dry-run-1").expect("read").is_none());
        // Not marked handled: once fixed, the redelivery opens the case.
        let e = f
            .service
            .handle(&direct(), &a)
            .await
            .expect_err("still refused");
        assert!(matches!(e, CaseError::Desk(DeskError::Rejected(_))));
    }

    /// The local ledger, with commits that fail a number of times first.
    struct FlakyCommits {
        inner: Arc<dyn CaseLedger>,
        failures: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl CaseLedger for FlakyCommits {
        async fn find_handled(&self, keys: &[String]) -> Result<Option<Decision>, LedgerError> {
            self.inner.find_handled(keys).await
        }
        async fn open_case(&self, key: &str) -> Result<Option<OpenCase>, LedgerError> {
            self.inner.open_case(key).await
        }
        async fn open_cases(&self) -> Result<Vec<OpenCase>, LedgerError> {
            self.inner.open_cases().await
        }
        async fn claim(&self, c: &Claim, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError> {
            self.inner.claim(c, now).await
        }
        async fn release(&self, c: &Claim) -> Result<(), LedgerError> {
            self.inner.release(c).await
        }
        async fn renew(&self, c: &Claim, until: DateTime<Utc>) -> Result<bool, LedgerError> {
            self.inner.renew(c, until).await
        }
        async fn commit(&self, commit: Commit) -> Result<i64, LedgerError> {
            use std::sync::atomic::Ordering;
            let failing = self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            match failing {
                true => Err(LedgerError::Storage("disk I/O error (injected)".into())),
                false => self.inner.commit(commit).await,
            }
        }
        async fn decisions(
            &self,
            f: &crate::ledger::DecisionFilter,
        ) -> Result<Vec<Decision>, LedgerError> {
            self.inner.decisions(f).await
        }
        async fn case_slots_taken(&self, now: DateTime<Utc>) -> Result<usize, LedgerError> {
            self.inner.case_slots_taken(now).await
        }
        async fn take_case_slot(
            &self,
            cap: usize,
            now: DateTime<Utc>,
        ) -> Result<bool, LedgerError> {
            self.inner.take_case_slot(cap, now).await
        }
        async fn return_case_slot(&self, now: DateTime<Utc>) -> Result<(), LedgerError> {
            self.inner.return_case_slot(now).await
        }
        async fn held(&self) -> Result<Vec<crate::ledger::HeldAlarm>, LedgerError> {
            self.inner.held().await
        }
    }

    #[tokio::test]
    async fn the_claimer_retries_its_own_commit_after_the_desk_opened_the_case() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = LocalBackend::open(dir.path()).expect("backend");
        let ledger = Arc::new(FlakyCommits {
            inner: backend.ledger.clone(),
            failures: std::sync::atomic::AtomicUsize::new(2),
        });
        let service = CaseService::new(
            backend.config.clone(),
            ledger.clone(),
            backend.desk.clone(),
            CasePolicy::default(),
        );
        let a = alarm("ALARM", "t1");
        let h = service
            .handle(&direct(), &a)
            .await
            .expect("committed on a retry");
        assert_eq!(
            (h.outcome, h.case_id.as_deref()),
            (Outcome::Created, Some("dry-run-1"))
        );
        assert!(
            backend.ledger.claims().await.expect("claims").is_empty(),
            "claim released"
        );
        assert_eq!(
            service.handle(&direct(), &a).await.expect("again").outcome,
            Outcome::Duplicate
        );
        assert!(
            backend.desk.case("dry-run-2").expect("read").is_none(),
            "one case"
        );
    }

    #[tokio::test]
    async fn a_flapping_alarm_is_told_once_then_counted_until_it_settles() {
        let f = fixture_with(CasePolicy {
            flap_limit: 2,
            flap_window: Duration::from_secs(3600),
            ..CasePolicy::default()
        });
        let a = |state: &str, t: &str| named("flappy", state, t);
        assert_eq!(
            handle(&f, &a("ALARM", "t0")).await.outcome,
            Outcome::Created
        );
        let mut outcomes = Vec::new();
        for i in 1..=5 {
            f.advance(Duration::from_secs(60));
            outcomes.push(handle(&f, &a("OK", &format!("ok{i}"))).await.outcome);
            f.advance(Duration::from_secs(60));
            outcomes.push(handle(&f, &a("ALARM", &format!("al{i}"))).await.outcome);
        }
        use Outcome::*;
        assert_eq!(
            outcomes,
            [
                Recovered, Updated, Recovered, Updated, Recovered, Updated, Recovered, Coalesced,
                Recovered, Coalesced
            ],
            "two cycles sent, the third says it is flapping, then counted"
        );
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        let bodies: Vec<&str> = case
            .communications
            .iter()
            .map(|c| c.communication_body.as_str())
            .collect();
        assert_eq!(
            bodies.iter().filter(|b| b.contains("is flapping")).count(),
            1,
            "{bodies:#?}"
        );
        // Recoveries while flapping are counted too: 3 recovery notes, none after it flaps.
        assert_eq!(
            bodies.iter().filter(|b| b.contains("Recovered:")).count(),
            3,
            "{bodies:#?}"
        );
        // An hour later it has settled: a new cycle is news again.
        f.advance(Duration::from_secs(3700));
        assert_eq!(handle(&f, &a("OK", "ok9")).await.outcome, Recovered);
        assert_eq!(handle(&f, &a("ALARM", "al9")).await.outcome, Updated);
    }

    #[tokio::test]
    async fn a_group_shares_one_case_that_recovers_when_every_member_is_ok() {
        let f = fixture_with(CasePolicy {
            storm_cap: 1,
            ..CasePolicy::default()
        });
        for name in ["db-primary-cpu", "db-replica-lag"] {
            f.backend
                .config
                .put(
                    name,
                    &AlarmConfigRecord {
                        group: Some("database".into()),
                        ..Default::default()
                    },
                )
                .await
                .expect("put");
        }
        let first = handle(&f, &named("db-primary-cpu", "ALARM", "t1")).await;
        assert_eq!(
            (first.outcome, first.case_id.as_deref()),
            (Outcome::Created, Some("dry-run-1"))
        );
        // The group is the unit the storm cap counts: the second member joins, no slot.
        let second = handle(&f, &named("db-replica-lag", "ALARM", "t2")).await;
        assert_eq!(
            (second.outcome, second.case_id.as_deref()),
            (Outcome::Updated, Some("dry-run-1"))
        );
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        assert!(
            case.communications[0]
                .communication_body
                .contains("db-replica-lag also in ALARM (group database)")
        );
        // One member OK while the other is not: recorded, nothing sent.
        let ok1 = handle(&f, &named("db-primary-cpu", "OK", "t3")).await;
        assert_eq!(ok1.outcome, Outcome::Recovered);
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        assert_eq!(case.communications.len(), 1, "no recovery note yet");
        // The last member OK: the case hears the group recovered.
        handle(&f, &named("db-replica-lag", "OK", "t4")).await;
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        assert_eq!(case.communications.len(), 2);
        assert!(
            case.communications[1]
                .communication_body
                .contains("Recovered:")
        );
        assert!(f.backend.desk.case("dry-run-2").expect("read").is_none());
    }

    #[tokio::test]
    async fn a_weekly_window_holds_alarms_during_each_occurrence() {
        let f = fixture();
        let now = *f.now.lock().expect("clock");
        let began = now - chrono::Duration::minutes(1);
        let rule = crate::maintenance::Recurrence::parse(
            &format!("daily {}", began.format("%H:%M")),
            "UTC",
            30,
        )
        .expect("rule");
        f.backend
            .config
            .save_windows(&[crate::maintenance::MaintenanceWindow {
                id: "mw-weekly".into(),
                reason: "nightly backups".into(),
                alarm_pattern: None,
                starts_at: now - chrono::Duration::days(2),
                ends_at: crate::maintenance::forever(),
                every: Some(rule),
            }])
            .await
            .expect("save");
        let h = handle(&f, &alarm("ALARM", "t1")).await;
        assert_eq!(h.outcome, Outcome::Suppressed);
        let held = f.backend.ledger.held().await.expect("held");
        assert_eq!(held.len(), 1);
        // Held until this occurrence ends, not until the rule does.
        let ends = held[0].window_ends_at;
        assert!(
            ends > now && ends <= now + chrono::Duration::minutes(30),
            "{ends}"
        );
        // After the occurrence, alarms are heard again.
        f.advance(Duration::from_secs(31 * 60));
        assert_eq!(
            handle(&f, &alarm("ALARM", "t2")).await.outcome,
            Outcome::Created
        );
    }

    #[tokio::test]
    async fn an_inhibited_alarm_tells_its_parents_case_and_opens_none() {
        let f = fixture();
        f.backend
            .config
            .put(
                "prod-db-replica-lag",
                &AlarmConfigRecord {
                    inhibited_by: Some("prod-db-primary*, other".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("put");
        // With no parent case open, the alarm gets its own case as usual.
        let alone = handle(&f, &named("prod-db-replica-lag", "ALARM", "t0")).await;
        assert_eq!(
            (alone.outcome, alone.case_id.as_deref()),
            (Outcome::Created, Some("dry-run-1"))
        );
        handle(&f, &named("prod-db-replica-lag", "OK", "t0b")).await;
        f.backend
            .desk
            .resolve_case("dry-run-1")
            .await
            .expect("resolve");
        f.service.reconcile(&direct()).await.expect("reconcile");

        let parent = handle(&f, &named("prod-db-primary-cpu", "ALARM", "t1")).await;
        assert_eq!(parent.case_id.as_deref(), Some("dry-run-2"));
        let child = handle(&f, &named("prod-db-replica-lag", "ALARM", "t2")).await;
        assert_eq!(
            (child.outcome, child.case_id.as_deref()),
            (Outcome::Suppressed, Some("dry-run-2"))
        );
        assert!(
            f.backend.desk.case("dry-run-3").expect("read").is_none(),
            "no case of its own"
        );
        let case = f
            .backend
            .desk
            .case("dry-run-2")
            .expect("read")
            .expect("case");
        assert_eq!(case.communications.len(), 1);
        assert!(case.communications[0].communication_body.contains(
            "prod-db-replica-lag is also in ALARM (it is inhibited by prod-db-primary-cpu"
        ));
        // Its repeats go to the parent's case within the cooldown, counted.
        let again = handle(&f, &named("prod-db-replica-lag", "ALARM", "t3")).await;
        assert_eq!(
            (again.outcome, again.case_id.as_deref()),
            (Outcome::Coalesced, Some("dry-run-2"))
        );
    }

    #[test]
    fn no_alarm_can_take_the_storm_cases_record() {
        let e = Alarm::parse(json!({
            "AlarmName": STORM_KEY,
            "AlarmDescription": "x",
            "StateChangeTime": "2026-11-20T03:12:45Z"
        }))
        .expect_err("refused");
        assert_eq!(e.code(), "invalid_field");
        // The old key was a visible character: an alarm of that name is just an alarm.
        let a = named("\u{2301}storm", "ALARM", "t1");
        assert_ne!(a.key(), STORM_KEY);
    }

    #[tokio::test]
    async fn claims_left_by_a_stopped_process_are_settled_at_start() {
        let f = fixture_with(CasePolicy {
            claim_ttl: Duration::from_secs(60),
            busy_wait: Duration::from_millis(200),
            ..CasePolicy::default()
        });
        let now = *f.now.lock().expect("clock");
        let later = now + chrono::Duration::seconds(60);
        // One alarm's case was opened before the stop, another's never was.
        let (opened, unopened) = (alarm("ALARM", "t1"), named("other", "ALARM", "t1"));
        let keys = handled_keys(&direct(), &opened);
        let crashed = Claim::new(opened.key(), now, later, None).for_delivery(&opened.name, keys);
        let never = Claim::new(unopened.key(), now, later, None);
        for c in [&crashed, &never] {
            f.backend.ledger.claim(c, now).await.expect("claim");
        }
        let mut case = f.service.new_case(&opened, &AlarmSettings::default(), &[]);
        case.communication_body = format!(
            "Reference: {}\n{}",
            crashed.reference, case.communication_body
        );
        f.backend.desk.create_case(&case).await.expect("opened");

        let report = f.service.recover_claims().await.expect("recovered");
        assert_eq!((report.adopted, report.released, report.left), (1, 1, 0));
        assert!(f.backend.ledger.claims().await.expect("claims").is_empty());
        // At once, with no lease to wait for: the redelivery of the first is a duplicate
        // of the recovered case, the second opens its case.
        let h = handle(&f, &opened).await;
        assert_eq!(
            (h.outcome, h.case_id.as_deref()),
            (Outcome::Duplicate, Some("dry-run-1"))
        );
        let h = handle(&f, &unopened).await;
        assert_eq!(
            (h.outcome, h.case_id.as_deref()),
            (Outcome::Created, Some("dry-run-2"))
        );
    }

    #[tokio::test]
    async fn a_concurrent_delivery_waits_for_the_claim_and_answers_duplicate() {
        let f = fixture_with(CasePolicy {
            busy_wait: Duration::from_secs(5),
            ..CasePolicy::default()
        });
        let a = alarm("ALARM", "t1");
        // Another instance holds the claim and will record the case in a moment.
        let now = *f.now.lock().expect("clock");
        let other = Claim::new(a.key(), now, now + chrono::Duration::seconds(60), None);
        f.backend.ledger.claim(&other, now).await.expect("claim");
        let ledger = f.backend.ledger.clone();
        let desk = f.backend.desk.clone();
        let keys = handled_keys(&direct(), &a);
        let case = f.service.new_case(&a, &AlarmSettings::default(), &[]);
        let finisher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let id = desk.create_case(&case).await.expect("opened");
            let decision = Decision {
                seq: 0,
                at: now,
                delivery_kind: "sqsd".into(),
                delivery_id: None,
                alarm_key: "k".into(),
                alarm_name: "n".into(),
                state: "ALARM".into(),
                state_change_time: "t1".into(),
                outcome: Outcome::Created,
                case_id: Some(id.clone()),
                note: None,
            };
            ledger
                .commit(Commit {
                    handled_keys: keys,
                    decision,
                    open_cases: vec![OpenCaseChange::Put(fresh_open_case("k", "n", id, now))],
                    claim: Some(other),
                    hold: None,
                })
                .await
                .expect("commit");
        });
        let h = handle(&f, &a).await;
        assert_eq!(
            (h.outcome, h.case_id.as_deref()),
            (Outcome::Duplicate, Some("dry-run-1"))
        );
        finisher.await.expect("join");
    }

    #[tokio::test]
    async fn new_cases_carry_their_reference_on_the_first_line() {
        let f = fixture();
        handle(&f, &alarm("ALARM", "t1")).await;
        let case = f
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case");
        let first = case.case.communication_body.lines().next().unwrap_or("");
        assert!(first.starts_with("Reference: cwsa-"), "{first}");
    }
}
