//! The branches of [`decide`](super::decide): one method of [`Deciding`] per kind of
//! event (handled already, muted, maintenance, joining another alarm's case, a new alarm,
//! an alarm again, a recovery), and the small rules they share (flapping, what holds a
//! note back). Pure, like `decide`: everything comes from the facts and the policy.

use chrono::{DateTime, Utc};

use crate::case::records::health_digest;
use crate::case::{CasePolicy, text};
use crate::domain::alarm::{Alarm, AlarmState};
use crate::domain::maintenance::{self, MaintenanceWindow};
use crate::domain::outcome::Outcome;
use crate::domain::settings::AlarmSettings;
use crate::ports::desk::{Communication, NewCase};
use crate::ports::ledger::{Decision, HeldAlarm, HoldChange, OpenCase};

use super::{Action, IfGone, Plan, Storm};

/// What every plan about one alarm event shares (the alarm, its settings, the rules, the
/// time), so each branch of [`decide`](super::decide) reads as the decision it is and
/// words its communications and cases the same way. Borrowed from the
/// [`Facts`](super::Facts); nothing here reads anything else.
pub(super) struct Deciding<'a> {
    pub(super) alarm: &'a Alarm,
    pub(super) settings: &'a AlarmSettings,
    pub(super) notes: &'a [String],
    pub(super) policy: &'a CasePolicy,
    pub(super) now: DateTime<Utc>,
    /// The case's subject: the alarm's own, or its name.
    pub(super) headline: String,
}

impl Deciding<'_> {
    /// A plan, with what every plan about this alarm carries.
    pub(super) fn plan(
        &self,
        outcome: Outcome,
        action: Action,
        hold: Option<HoldChange>,
        note: Option<String>,
    ) -> Plan {
        Plan {
            outcome,
            action,
            config_notes: self.notes.to_vec(),
            note,
            hold,
            group: self.settings.group.clone(),
            headline: self.headline.clone(),
            severity: self.settings.priority,
        }
    }

    /// Nothing is done on purpose (the alarm is muted, or in a maintenance window): why is
    /// both the action's and the record's.
    pub(super) fn suppressed(&self, why: String, hold: Option<HoldChange>) -> Plan {
        let note = Some(why.clone());
        self.plan(Outcome::Suppressed, Action::Suppressed { why }, hold, note)
    }

    /// Nothing is done because there is nothing to do: why is both the action's and the
    /// record's.
    pub(super) fn ignored(&self, why: String, hold: Option<HoldChange>) -> Plan {
        let note = Some(why.clone());
        self.plan(Outcome::Ignored, Action::Ignored { why }, hold, note)
    }

    /// A communication about this alarm, worded by its settings.
    fn say(&self, body: String) -> Communication {
        text::communication(self.alarm, self.settings, body)
    }

    /// The alarm's own new case.
    fn new_case(&self) -> NewCase {
        text::new_case(self.alarm, self.settings, self.notes, self.policy)
    }

    /// The storm case, as this alarm would open it.
    fn storm_case(&self) -> NewCase {
        text::storm_case(self.alarm, self.settings, self.policy)
    }

    /// What the open storm case is told about this alarm.
    fn storm_news(&self) -> Communication {
        self.say(text::storm_body(
            self.alarm,
            self.settings,
            self.policy.storm_cap,
            false,
        ))
    }

    /// Where the alarm goes when the hour's case slots turn out to be taken.
    fn to_storm(&self) -> Storm {
        Storm {
            communication: self.storm_news(),
            case: Box::new(self.storm_case()),
        }
    }

    /// The delivery or state change was handled already: the first decision stands.
    pub(super) fn duplicate(&self, earlier: Decision) -> Plan {
        let note = format!(
            "first handled as #{} ({})",
            earlier.seq,
            earlier.outcome.as_str()
        );
        self.plan(
            Outcome::Duplicate,
            Action::Duplicate { earlier },
            None,
            Some(note),
        )
    }

    /// A maintenance window covers the alarm: suppressed, with its latest state held, since
    /// still ALARM when the window ends means a case then.
    pub(super) fn in_window(&self, window: &MaintenanceWindow, until: DateTime<Utc>) -> Plan {
        let alarm = self.alarm;
        let hold = match alarm.state {
            AlarmState::Alarm => Some(HoldChange::Put(HeldAlarm {
                alarm_key: alarm.key().to_owned(),
                alarm_name: alarm.name.clone(),
                window_id: window.id.clone(),
                // The end of this occurrence (a recurring window's next one is later).
                window_ends_at: until,
                held_at: self.now,
                raw: alarm.raw.clone(),
            })),
            AlarmState::Ok => Some(HoldChange::Remove {
                alarm_key: alarm.key().to_owned(),
            }),
            AlarmState::InsufficientData => None,
        };
        self.suppressed(window.describe_until(until), hold)
    }

    /// An ALARM with no case of its own may go to another alarm's open case instead: the
    /// alarm is inhibited by that alarm, or they are one group. `None`: it goes nowhere
    /// else.
    pub(super) fn joined(&self, others: &[OpenCase]) -> Option<(Outcome, Action)> {
        let alarm = self.alarm;
        let parent = others.iter().find(|o| {
            !o.is_storm()
                && o.alarm_key != alarm.key()
                && self
                    .settings
                    .inhibited_by
                    .iter()
                    .any(|p| maintenance::glob_match(p, &o.alarm_name))
        });
        if let Some(parent) = parent.cloned() {
            let communication = self.say(text::inhibited_body(alarm, &parent));
            let why = format!("inhibited by {}", parent.alarm_name);
            let action = Action::Join {
                parent,
                communication,
                why,
                if_gone: IfGone::LetGoAndDecideAgain,
            };
            return Some((Outcome::Suppressed, action));
        }
        // A group shares one case: a member with none of its own joins the group's.
        let group = self.settings.group.as_ref()?;
        let parent = others
            .iter()
            .find(|o| o.group.as_ref() == Some(group) && o.alarm_key != alarm.key())
            .cloned()?;
        let action = Action::Join {
            parent,
            communication: self.say(text::group_body(alarm, group)),
            why: format!("group {group}"),
            if_gone: IfGone::LetGoAndDecideAgain,
        };
        Some((Outcome::Updated, action))
    }

    /// An ALARM with no case open anywhere for it: a new case while the hour's slots last,
    /// the storm case after.
    pub(super) fn new_alarm(
        &self,
        slots_taken: usize,
        storm: Option<OpenCase>,
        hold: Option<HoldChange>,
    ) -> Plan {
        // The slot itself is taken atomically when the case is opened: `if_full` is for a
        // storm that starts between this count and then.
        if slots_taken < self.policy.storm_cap {
            let action = Action::Create {
                case: self.new_case(),
                if_full: self.to_storm(),
            };
            return self.plan(Outcome::Created, action, hold, None);
        }
        match storm {
            Some(storm) => {
                let action = Action::Fold {
                    communication: self.storm_news(),
                    storm,
                    if_gone: IfGone::OpenStorm {
                        case: Box::new(self.storm_case()),
                    },
                };
                self.plan(Outcome::Folded, action, hold, None)
            }
            None => {
                let note = format!(
                    "storm: {} new cases within an hour; this alarm opened the storm case",
                    self.policy.storm_cap
                );
                let action = Action::CreateStorm {
                    case: self.storm_case(),
                };
                self.plan(Outcome::Created, action, hold, Some(note))
            }
        }
    }

    /// An ALARM for an alarm whose case is open: an update, unless it is only counted
    /// (within the cooldown, an AWS Health update with nothing new, a flapping cycle).
    pub(super) fn again(&self, mut open: OpenCase, hold: Option<HoldChange>) -> Plan {
        let policy = self.policy;
        let since = self.now.signed_duration_since(open.last_update_at);
        let cooling = since.to_std().is_ok_and(|s| s < policy.update_cooldown);
        // An AWS Health update that says nothing new is counted, not sent.
        let same_news =
            health_digest(self.alarm).is_some_and(|d| open.digest.as_deref() == Some(&d));
        // A fresh ALARM after a recovery is news, whatever the cooldown says, unless the
        // alarm keeps doing it (flapping): then one communication says so and further
        // cycles are counted.
        let tell_flapping = if open.recovered {
            record_cycle(&mut open, self.now, policy)
        } else {
            false
        };
        let counted = (cooling || same_news) && !open.recovered;
        if counted || (open.flapping && !tell_flapping) {
            let why = counted_because(&open, same_news, policy);
            // Back in ALARM: the next OK is a (silent, while flapping) recovery.
            open.recovered = false;
            return self.plan(
                Outcome::Coalesced,
                Action::Coalesce { open },
                hold,
                Some(why),
            );
        }
        let mut body = text::update_body(self.alarm, &open);
        if tell_flapping {
            body = text::flapping_body(open.cycles.len(), policy.flap_window, body);
        }
        let action = Action::Update {
            open,
            communication: self.say(body),
            if_gone: IfGone::Open {
                case: Box::new(self.new_case()),
                if_full: self.to_storm(),
            },
        };
        self.plan(Outcome::Updated, action, hold, None)
    }

    /// An OK for an alarm whose case has no recovery note yet: the case is resolved, told,
    /// or the recovery only counted, saying what held the note back (`coalesced`).
    pub(super) fn recovered(
        &self,
        open: OpenCase,
        others: &[OpenCase],
        hold: Option<HoldChange>,
    ) -> Plan {
        // A group's case recovers when its last member in ALARM is OK.
        let others_alarming = open.group.as_ref().is_some_and(|g| {
            others.iter().any(|o| {
                o.group.as_ref() == Some(g)
                    && o.alarm_key != open.alarm_key
                    && o.case_id == open.case_id
                    && !o.recovered
            })
        });
        let resolve = self.policy.close_on_recovery && !open.is_storm() && !others_alarming;
        let held_back = if resolve {
            None
        } else {
            recovery_held_back(&open, others_alarming, self.now, self.policy)
        };
        let communication = held_back
            .is_none()
            .then(|| self.say(text::recovery_body(self.alarm, resolve)));
        let outcome = match held_back {
            Some(_) => Outcome::Coalesced,
            None => Outcome::Recovered,
        };
        let action = Action::Recover {
            open,
            communication,
            resolve,
            if_gone: IfGone::LetGo,
        };
        self.plan(outcome, action, hold, held_back)
    }
}

/// Records a fresh ALARM cycle after a recovery, keeping the cycles within `FLAP_WINDOW`:
/// the alarm is flapping while more than `FLAP_LIMIT` remain. True when it has just
/// started to, which is said once, in the update.
fn record_cycle(open: &mut OpenCase, now: DateTime<Utc>, policy: &CasePolicy) -> bool {
    let window = chrono::Duration::from_std(policy.flap_window).unwrap_or(chrono::Duration::MAX);
    open.cycles
        .retain(|t| now.signed_duration_since(*t) < window);
    open.cycles.push(now);
    if open.cycles.len() > policy.flap_limit {
        let started = !open.flapping;
        open.flapping = true;
        started
    } else {
        open.flapping = false;
        false
    }
}

/// Why an ALARM for an open case is counted rather than told.
fn counted_because(open: &OpenCase, same_news: bool, policy: &CasePolicy) -> String {
    if open.flapping && open.recovered {
        flapping_reason(open.cycles.len(), policy)
    } else if same_news {
        "counted: an AWS Health update with an unchanged description".to_owned()
    } else {
        format!(
            "counted: within UPDATE_COOLDOWN ({}) of the case's last update",
            text::humantime(policy.update_cooldown)
        )
    }
}

/// What holds back the note of a recovery that does not resolve its case, if anything:
/// the group's other members still in ALARM, flapping (its recoveries are counted too, not
/// sent), or `RECOVERY_NOTE` off.
fn recovery_held_back(
    open: &OpenCase,
    others_alarming: bool,
    now: DateTime<Utc>,
    policy: &CasePolicy,
) -> Option<String> {
    if others_alarming {
        let group = open.group.as_deref().unwrap_or_default();
        Some(format!(
            "recovery counted, no note: other members of group {group} are still in ALARM"
        ))
    } else if let Some(cycles) = still_flapping(open, now, policy) {
        Some(format!("recovery {}", flapping_reason(cycles, policy)))
    } else if !policy.recovery_note {
        Some("recovery counted, no note: RECOVERY_NOTE is off".to_owned())
    } else {
        None
    }
}

/// Why a flapping alarm's cycle adds nothing to its case.
fn flapping_reason(cycles: usize, policy: &CasePolicy) -> String {
    format!(
        "counted, no note: the alarm is flapping ({cycles} ALARM cycles within FLAP_WINDOW {})",
        text::humantime(policy.flap_window)
    )
}

/// An alarm that was flapping still is while more than `FLAP_LIMIT` of its cycles fall
/// within `FLAP_WINDOW` of now: then the number of those cycles. Once it has settled, its
/// recovery is news again.
fn still_flapping(open: &OpenCase, now: DateTime<Utc>, policy: &CasePolicy) -> Option<usize> {
    let window = chrono::Duration::from_std(policy.flap_window).unwrap_or(chrono::Duration::MAX);
    let recent = open
        .cycles
        .iter()
        .filter(|t| now.signed_duration_since(**t) < window)
        .count();
    (open.flapping && recent > policy.flap_limit).then_some(recent)
}
