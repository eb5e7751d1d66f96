//! Deciding: [`decide`] turns what is known about an alarm event ([`Facts`], read from the
//! stores beforehand) into a [`Plan`], with no I/O at all. A plan says what to do and also
//! what to do when the desk answers that a case is gone or the hour's case slots are taken,
//! so carrying it out never decides anything again, and `process` shows every branch.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::alarm::{Alarm, AlarmKind, AlarmState};
use crate::domain::maintenance::{self, MaintenanceWindow};
use crate::domain::outcome::Outcome;
use crate::domain::settings::{AlarmSettings, Severity};
use crate::ports::desk::{Communication, NewCase};
use crate::ports::ledger::{Decision, HeldAlarm, HoldChange, OpenCase};

use super::records::health_digest;
use super::{CasePolicy, STORM_KEY, text};

/// What the case logic knows when it decides. Read by [`super::CaseService`] in the order
/// [`decide`] looks at them, and only as far as it will look: a duplicate needs no open
/// case read, an alarm in a maintenance window no storm count.
#[derive(Debug, Clone)]
pub struct Facts {
    pub now: DateTime<Utc>,
    /// The alarm's settings (stored, tagged, defaults), and what was wrong with them.
    pub settings: AlarmSettings,
    pub notes: Vec<String>,
    /// The decision that handled this delivery or state change already.
    pub earlier: Option<Decision>,
    /// The maintenance window covering the alarm now, with the end of its occurrence.
    pub window: Option<(MaintenanceWindow, DateTime<Utc>)>,
    /// The alarm's own open case.
    pub open: Option<OpenCase>,
    /// Every open case, when the alarm's settings route it to another's (inhibition,
    /// groups) or its group's case may recover; empty otherwise.
    pub others: Vec<OpenCase>,
    /// New cases opened this hour (storm control), and the storm case once they reach the
    /// cap. Read only for an ALARM with no open case.
    pub slots_taken: usize,
    pub storm: Option<OpenCase>,
}

impl Facts {
    /// Whether [`decide`] needs the open cases of other alarms, given the alarm's own.
    pub fn needs_others(alarm: &Alarm, settings: &AlarmSettings, open: Option<&OpenCase>) -> bool {
        match (alarm.state, open) {
            (AlarmState::Alarm, None) => {
                !settings.inhibited_by.is_empty() || settings.group.is_some()
            }
            (AlarmState::Ok, Some(o)) => !o.recovered && o.group.is_some(),
            _ => false,
        }
    }

    /// Whether [`decide`] stops before the alarm's open case: a duplicate, a muted alarm, a
    /// filtered AWS Health event, or a maintenance window.
    pub fn settled_early(&self, alarm: &Alarm, policy: &CasePolicy) -> bool {
        self.earlier.is_some()
            || !self.settings.enabled
            || (alarm.kind == AlarmKind::Health && policy.health.refuses(alarm).is_some())
            || self.window.is_some()
    }
}

/// What the case logic will do, decided but not yet done.
#[derive(Debug, Clone, Serialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Action {
    /// Another alarm's open case takes this alarm's news (it is inhibited by that alarm,
    /// or they are one group): tell that case, open none.
    Join {
        parent: OpenCase,
        communication: Communication,
        why: String,
        if_gone: IfGone,
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
    /// Open a case; when the hour's slots are taken, go to the storm case instead.
    Create {
        case: NewCase,
        if_full: Storm,
    },
    Update {
        open: OpenCase,
        communication: Communication,
        if_gone: IfGone,
    },
    Coalesce {
        open: OpenCase,
    },
    Recover {
        open: OpenCase,
        communication: Option<Communication>,
        resolve: bool,
        if_gone: IfGone,
    },
    /// Too many new cases this hour: open the storm case, listing this alarm.
    CreateStorm {
        case: NewCase,
    },
    /// Too many new cases this hour: add this alarm to the open storm case.
    Fold {
        storm: OpenCase,
        communication: Communication,
        if_gone: IfGone,
    },
}

/// What to do when the desk says the case a plan acts on is gone (support resolved or
/// removed it).
#[derive(Debug, Clone, Serialize)]
#[serde(
    tag = "then",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum IfGone {
    /// The problem is back: open this case (a new case like any other, counted against
    /// the storm cap), or go to the storm case when the slots are taken.
    Open { case: Box<NewCase>, if_full: Storm },
    /// Open this storm case instead.
    OpenStorm { case: Box<NewCase> },
    /// Another alarm's case: let its record go and decide again.
    LetGoAndDecideAgain,
    /// A recovery: nothing is left to tell, let the alarm's record go.
    LetGo,
}

/// Where an alarm goes when the hour's case slots are taken: added to the open storm case
/// with this communication, or opening the storm case with this case when none is open.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Storm {
    pub communication: Communication,
    pub case: Box<NewCase>,
}

/// A decision about one alarm event.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub outcome: Outcome,
    #[serde(flatten)]
    pub action: Action,
    /// Problems with the alarm's stored settings (they fell back to defaults).
    pub config_notes: Vec<String>,
    /// Why, for the record, when the action alone does not say.
    #[serde(skip)]
    pub note: Option<String>,
    /// What the decision does to a hold (maintenance windows).
    #[serde(skip)]
    pub hold: Option<HoldChange>,
    /// The alarm's group, carried on its open-case record so other members find it.
    #[serde(skip)]
    pub group: Option<String>,
    /// The case's subject and severity, for the notice that a case was opened.
    #[serde(skip)]
    pub headline: String,
    #[serde(skip)]
    pub severity: Severity,
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

/// Decides what to do with one alarm event. Pure: the same facts give the same plan.
pub fn decide(alarm: &Alarm, facts: Facts, policy: &CasePolicy) -> Plan {
    let Facts {
        now,
        settings,
        notes,
        earlier,
        window,
        open,
        others,
        slots_taken,
        storm,
    } = facts;
    let headline = settings
        .subject
        .clone()
        .unwrap_or_else(|| alarm.name.clone());
    let plan = |outcome, action, hold, note: Option<String>| Plan {
        outcome,
        action,
        config_notes: notes.clone(),
        note,
        hold,
        group: settings.group.clone(),
        headline: headline.clone(),
        severity: settings.priority,
    };
    let say = |body: String| text::communication(alarm, &settings, body);

    if let Some(earlier) = earlier {
        let note = format!(
            "first handled as #{} ({})",
            earlier.seq,
            earlier.outcome.as_str()
        );
        return plan(
            Outcome::Duplicate,
            Action::Duplicate { earlier },
            None,
            Some(note),
        );
    }
    if !settings.enabled {
        let why = "alarm is muted (enabled = false)".to_owned();
        let note = Some(why.clone());
        return plan(Outcome::Suppressed, Action::Suppressed { why }, None, note);
    }
    if alarm.kind == AlarmKind::Health
        && let Some(why) = policy.health.refuses(alarm)
    {
        let note = Some(why.clone());
        return plan(Outcome::Ignored, Action::Ignored { why }, None, note);
    }
    if let Some((window, until)) = window {
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
        let note = Some(why.clone());
        return plan(Outcome::Suppressed, Action::Suppressed { why }, hold, note);
    }
    // Outside any window, the alarm's own state is what counts from now on.
    let hold = (alarm.state != AlarmState::InsufficientData).then(|| HoldChange::Remove {
        alarm_key: alarm.key().to_owned(),
    });

    // Another alarm's open case may take this one's news (inhibition, groups).
    if alarm.state == AlarmState::Alarm && open.is_none() {
        let parent = others.iter().find(|o| {
            o.alarm_key != STORM_KEY
                && o.alarm_key != alarm.key()
                && settings
                    .inhibited_by
                    .iter()
                    .any(|p| maintenance::glob_match(p, &o.alarm_name))
        });
        if let Some(parent) = parent.cloned() {
            let communication = say(text::inhibited_body(alarm, &parent));
            let why = format!("inhibited by {}", parent.alarm_name);
            let action = Action::Join {
                parent,
                communication,
                why,
                if_gone: IfGone::LetGoAndDecideAgain,
            };
            return plan(Outcome::Suppressed, action, hold, None);
        }
        // A group shares one case: a member with none of its own joins the group's.
        if let Some(group) = &settings.group
            && let Some(parent) = others
                .iter()
                .find(|o| o.group.as_ref() == Some(group) && o.alarm_key != alarm.key())
                .cloned()
        {
            let action = Action::Join {
                parent,
                communication: say(text::group_body(alarm, group)),
                why: format!("group {group}"),
                if_gone: IfGone::LetGoAndDecideAgain,
            };
            return plan(Outcome::Updated, action, hold, None);
        }
    }
    let to_storm = || Storm {
        communication: say(text::storm_body(alarm, &settings, policy.storm_cap, false)),
        case: Box::new(text::storm_case(alarm, &settings, policy)),
    };
    match (alarm.state, open) {
        // The slot itself is taken atomically when the case is opened: `if_full` is for a
        // storm that starts between this count and then.
        (AlarmState::Alarm, None) if slots_taken < policy.storm_cap => {
            let case = text::new_case(alarm, &settings, &notes, policy);
            let action = Action::Create {
                case,
                if_full: to_storm(),
            };
            plan(Outcome::Created, action, hold, None)
        }
        (AlarmState::Alarm, None) => match storm {
            Some(storm) => {
                let action = Action::Fold {
                    communication: say(text::storm_body(alarm, &settings, policy.storm_cap, false)),
                    storm,
                    if_gone: IfGone::OpenStorm {
                        case: Box::new(text::storm_case(alarm, &settings, policy)),
                    },
                };
                plan(Outcome::Folded, action, hold, None)
            }
            None => {
                let case = text::storm_case(alarm, &settings, policy);
                let note = format!(
                    "storm: {} new cases within an hour; this alarm opened the storm case",
                    policy.storm_cap
                );
                plan(
                    Outcome::Created,
                    Action::CreateStorm { case },
                    hold,
                    Some(note),
                )
            }
        },
        (AlarmState::Alarm, Some(mut open)) => {
            let since = now.signed_duration_since(open.last_update_at);
            let cooling = since.to_std().is_ok_and(|s| s < policy.update_cooldown);
            // An AWS Health update that says nothing new is counted, not sent.
            let same_news =
                health_digest(alarm).is_some_and(|d| open.digest.as_deref() == Some(&d));
            // A fresh ALARM after a recovery is news, whatever the cooldown says, unless
            // the alarm keeps doing it (flapping): then one communication says so and
            // further cycles are counted.
            let mut tell_flapping = false;
            if open.recovered {
                let window =
                    chrono::Duration::from_std(policy.flap_window).unwrap_or(chrono::Duration::MAX);
                open.cycles
                    .retain(|t| now.signed_duration_since(*t) < window);
                open.cycles.push(now);
                if open.cycles.len() > policy.flap_limit {
                    tell_flapping = !open.flapping;
                    open.flapping = true;
                } else {
                    open.flapping = false;
                }
            }
            let counted = (cooling || same_news) && !open.recovered;
            if counted || (open.flapping && !tell_flapping) {
                let why = if open.flapping && open.recovered {
                    flapping_reason(open.cycles.len(), policy)
                } else if same_news {
                    "counted: an AWS Health update with an unchanged description".to_owned()
                } else {
                    format!(
                        "counted: within UPDATE_COOLDOWN ({}) of the case's last update",
                        text::humantime(policy.update_cooldown)
                    )
                };
                // Back in ALARM: the next OK is a (silent, while flapping) recovery.
                open.recovered = false;
                return plan(
                    Outcome::Coalesced,
                    Action::Coalesce { open },
                    hold,
                    Some(why),
                );
            }
            let mut body = text::update_body(alarm, &open);
            if tell_flapping {
                body = text::flapping_body(open.cycles.len(), policy.flap_window, body);
            }
            let action = Action::Update {
                open,
                communication: say(body),
                if_gone: IfGone::Open {
                    case: Box::new(text::new_case(alarm, &settings, &notes, policy)),
                    if_full: to_storm(),
                },
            };
            plan(Outcome::Updated, action, hold, None)
        }
        (AlarmState::Ok, Some(open)) if !open.recovered => {
            // A group's case recovers when its last member in ALARM is OK.
            let others_alarming = open.group.as_ref().is_some_and(|g| {
                others.iter().any(|o| {
                    o.group.as_ref() == Some(g)
                        && o.alarm_key != open.alarm_key
                        && o.case_id == open.case_id
                        && !o.recovered
                })
            });
            let resolve =
                policy.close_on_recovery && open.alarm_key != STORM_KEY && !others_alarming;
            // A flapping alarm's recoveries are counted too, not sent. A recovery that adds
            // nothing to the case says so: `coalesced`, with what held the note back.
            let held_back = if resolve {
                None
            } else if others_alarming {
                let group = open.group.as_deref().unwrap_or_default();
                Some(format!(
                    "recovery counted, no note: other members of group {group} are still in ALARM"
                ))
            } else if let Some(cycles) = still_flapping(&open, now, policy) {
                Some(format!("recovery {}", flapping_reason(cycles, policy)))
            } else if !policy.recovery_note {
                Some("recovery counted, no note: RECOVERY_NOTE is off".to_owned())
            } else {
                None
            };
            let communication = held_back
                .is_none()
                .then(|| say(text::recovery_body(alarm, resolve)));
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
            plan(outcome, action, hold, held_back)
        }
        (AlarmState::Ok, Some(_)) => {
            let why = "the open case already has a recovery note".to_owned();
            let note = Some(why.clone());
            plan(Outcome::Ignored, Action::Ignored { why }, hold, note)
        }
        (state, _) => {
            let why = format!("{state} with no open case");
            let note = Some(why.clone());
            plan(Outcome::Ignored, Action::Ignored { why }, hold, note)
        }
    }
}
