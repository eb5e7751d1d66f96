//! Deciding: [`decide`] turns what is known about an alarm event ([`Facts`], read from the
//! stores beforehand) into a [`Plan`], with no I/O at all. A plan says what to do and also
//! what to do when the desk answers that a case is gone or the hour's case slots are taken,
//! so carrying it out never decides anything again, and `process` shows every branch.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::alarm::{Alarm, AlarmKind, AlarmState};
use crate::domain::maintenance::MaintenanceWindow;
use crate::domain::outcome::Outcome;
use crate::domain::settings::{AlarmSettings, Severity};
use crate::ports::desk::{Communication, NewCase};
use crate::ports::ledger::{Decision, HoldChange, OpenCase};

use super::CasePolicy;

mod deciding;

use deciding::Deciding;

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

/// Decides what to do with one alarm event. Pure: the same facts give the same plan.
///
/// Reads as the order the facts are looked at: what settles the event before any case
/// (handled already, muted, a filtered AWS Health event, a maintenance window), then the
/// alarm's state against its open case. Each branch is a method of `Deciding`.
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
    let d = Deciding {
        alarm,
        settings: &settings,
        notes: &notes,
        policy,
        now,
        headline: settings
            .subject
            .clone()
            .unwrap_or_else(|| alarm.name.clone()),
    };

    if let Some(earlier) = earlier {
        return d.duplicate(earlier);
    }
    if !settings.enabled {
        return d.suppressed("alarm is muted (enabled = false)".to_owned(), None);
    }
    if alarm.kind == AlarmKind::Health
        && let Some(why) = policy.health.refuses(alarm)
    {
        return d.ignored(why, None);
    }
    if let Some((window, until)) = window {
        return d.in_window(&window, until);
    }
    // Outside any window, the alarm's own state is what counts from now on.
    let hold = (alarm.state != AlarmState::InsufficientData).then(|| HoldChange::Remove {
        alarm_key: alarm.key().to_owned(),
    });

    match (alarm.state, open) {
        (AlarmState::Alarm, None) => match d.joined(&others) {
            Some((outcome, action)) => d.plan(outcome, action, hold, None),
            None => d.new_alarm(slots_taken, storm, hold),
        },
        (AlarmState::Alarm, Some(open)) => d.again(open, hold),
        (AlarmState::Ok, Some(open)) if !open.recovered => d.recovered(open, &others, hold),
        (AlarmState::Ok, Some(_)) => {
            d.ignored("the open case already has a recovery note".to_owned(), hold)
        }
        (state, _) => d.ignored(format!("{state} with no open case"), hold),
    }
}
