//! Carrying a plan out: the desk calls a [`Plan`] names, in its order, with the fallbacks it
//! names, then one commit of what was done. Nothing here decides: when the desk says a case
//! is gone, the plan's `if_gone` says what happens next.
//!
//! New cases are opened under a claim (a lease in the ledger, renewed while CreateCase is
//! in flight) and count against the hour's storm slots ([`counted`]); an uncertain
//! CreateCase is looked up by its reference rather than sent again.

mod counted;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::alarm::Alarm;
use crate::domain::delivery::Delivery;
use crate::domain::notice::Notice;
use crate::domain::outcome::Outcome;
use crate::domain::settings::Severity;
use crate::errors::Chain;
use crate::ports::desk::{Communication, DeskError};
use crate::ports::ledger::{
    Claim, Commit, Decision, HoldChange, LedgerError, OpenCase, OpenCaseChange,
};

use super::opening::Opened;
use super::plan::{Action, IfGone, Plan};
use super::records::{handled_keys, health_digest, let_go, opened_for, storm_opened};
use super::{CaseError, CaseService, Dedupe, Handled, STORM_KEY};
use counted::Evidence;

/// How many times a commit is tried after the desk acted (about 1.3 s in all).
const COMMIT_ATTEMPTS: u32 = 4;
/// Between those attempts: 100, 300, 900 ms (about 1.3 s in all).
const COMMIT_BACKOFF: crate::retry::Backoff =
    crate::retry::Backoff::new(Duration::from_millis(100), 3, Duration::from_secs(1));

/// What carrying out an action did, before it is recorded.
struct Done {
    outcome: Outcome,
    case_id: Option<String>,
    note: Option<String>,
    claim: Option<Claim>,
    open_cases: Vec<OpenCaseChange>,
    /// The subject of a case opened other than the plan said (a new storm case).
    headline: Option<String>,
    /// The severity of a case opened (what the plan asked for), kept on its decision.
    severity: Option<Severity>,
}

impl Done {
    fn on(outcome: Outcome, case_id: Option<String>, note: Option<String>) -> Self {
        Self {
            outcome,
            case_id,
            note,
            claim: None,
            open_cases: Vec::new(),
            headline: None,
            severity: None,
        }
    }
}

/// The alarm was added to the open storm case.
fn folded(alarm: &Alarm, mut storm: OpenCase, now: DateTime<Utc>) -> Done {
    storm.updates += 1;
    storm.last_update_at = now;
    let id = storm.case_id.clone();
    let note = Some("storm: folded into the storm case".into());
    let mut done = Done::on(Outcome::Folded, Some(id.clone()), note);
    done.open_cases.push(opened_for(alarm, id, now));
    done.open_cases.push(OpenCaseChange::Put(storm));
    done
}

/// The storm case was opened by this alarm.
fn storm_created(alarm: &Alarm, opened: Opened, note: Option<String>, now: DateTime<Utc>) -> Done {
    let mut done = Done::on(Outcome::Created, Some(opened.case_id.clone()), note);
    done.claim = Some(opened.claim);
    done.open_cases
        .extend(storm_opened(alarm, &opened.case_id, now));
    done
}

/// A case was opened for the alarm itself.
fn created(alarm: &Alarm, opened: Opened, note: Option<String>, now: DateTime<Utc>) -> Done {
    let mut done = Done::on(Outcome::Created, Some(opened.case_id.clone()), note);
    done.claim = Some(opened.claim);
    done.open_cases.push(opened_for(alarm, opened.case_id, now));
    done
}

/// The alarm's news was told on another alarm's case, which takes its later news too.
fn joined(
    alarm: &Alarm,
    outcome: Outcome,
    parent: OpenCase,
    why: &str,
    now: DateTime<Utc>,
) -> Done {
    let id = parent.case_id;
    let note = Some(format!("{why}: noted on case {id}"));
    let mut done = Done::on(outcome, Some(id.clone()), note);
    // Its later news (repeats, recovery) goes to the same case, within the same cooldown,
    // as a folded alarm's does.
    done.open_cases.push(opened_for(alarm, id, now));
    done
}

/// The alarm's open case was told it is in ALARM again.
fn updated(alarm: &Alarm, outcome: Outcome, mut open: OpenCase, now: DateTime<Utc>) -> Done {
    open.updates += 1;
    open.last_update_at = now;
    open.recovered = false;
    open.digest = health_digest(alarm);
    let mut done = Done::on(outcome, Some(open.case_id.clone()), None);
    done.open_cases.push(OpenCaseChange::Put(open));
    done
}

/// The alarm's news was counted on its open case, not told.
fn coalesced(outcome: Outcome, mut open: OpenCase, note: Option<String>) -> Done {
    open.coalesced += 1;
    let mut done = Done::on(outcome, Some(open.case_id.clone()), note);
    done.open_cases.push(OpenCaseChange::Put(open));
    done
}

/// Who is told about what was done, queued with the decision so a notice is never lost
/// between the two: a new case (`subject` and `severity` are its own), or an alarm folded
/// into the storm case.
fn notices(alarm: &Alarm, done: &Done, subject: String, severity: Severity) -> Vec<Notice> {
    match (done.outcome, &done.case_id) {
        (Outcome::Created, Some(id)) => vec![Notice::Opened {
            case_id: id.clone(),
            subject,
            severity: severity.as_str().to_owned(),
            alarm: alarm.name.clone(),
        }],
        (Outcome::Folded, Some(id)) => vec![Notice::Folded {
            case_id: id.clone(),
            alarm: alarm.name.clone(),
        }],
        _ => Vec::new(),
    }
}

/// The event a plan is carried out for: what each step of carrying it out needs.
#[derive(Clone, Copy)]
struct Event<'a> {
    delivery: &'a Delivery,
    alarm: &'a Alarm,
    /// The keys recorded as handled with the decision (none for a duplicate).
    keys: &'a [String],
    now: DateTime<Utc>,
}

impl CaseService {
    /// Carries the plan out, then records what was done in one commit.
    pub(super) async fn execute(
        &self,
        delivery: &Delivery,
        alarm: &Alarm,
        plan: Plan,
        dedupe: Dedupe,
    ) -> Result<Handled, CaseError> {
        let now = (self.clock)();
        // A duplicate's keys are recorded already (under the first decision), and so are
        // those of an alarm raised after maintenance (under its suppression).
        let keys = match (&plan.action, dedupe) {
            (Action::Duplicate { .. }, _) | (_, Dedupe::Skip) => Vec::new(),
            _ => handled_keys(delivery, alarm),
        };
        let event = Event {
            delivery,
            alarm,
            keys: &keys,
            now,
        };
        // A duplicate changes no hold: its first decision did.
        let hold = match &plan.action {
            Action::Duplicate { .. } => None,
            _ => plan.hold.clone(),
        };
        // What the notice of a new case calls it: the case's own subject.
        let headline = match &plan.action {
            Action::Create { case, .. } | Action::CreateStorm { case } => case.subject.clone(),
            _ => plan.headline.clone(),
        };
        let mut done = self
            .act(event, plan.outcome, plan.action, plan.note)
            .await?;
        // The alarm's own record carries its group, so the group's other members find it.
        for change in &mut done.open_cases {
            if let OpenCaseChange::Put(o) = change
                && o.alarm_key == alarm.key()
            {
                o.group = plan.group.clone();
            }
        }
        let subject = done.headline.clone().unwrap_or(headline);
        if done.outcome == Outcome::Created {
            done.severity = Some(plan.severity);
        }
        let notices = notices(alarm, &done, subject, plan.severity);
        self.record(event, done, hold, notices).await
    }

    /// Does what the action says, at the desk, falling back as the plan says; nothing is
    /// recorded yet.
    async fn act(
        &self,
        event: Event<'_>,
        outcome: Outcome,
        action: Action,
        note: Option<String>,
    ) -> Result<Done, CaseError> {
        let Event { alarm, now, .. } = event;
        Ok(match action {
            Action::Duplicate { earlier } => Done::on(outcome, earlier.case_id, note),
            Action::Suppressed { .. } | Action::Ignored { .. } => Done::on(outcome, None, note),
            Action::Join {
                parent,
                communication,
                why,
                if_gone,
            } => match self.tell(&parent.case_id, &communication).await? {
                true => joined(alarm, outcome, parent, &why, now),
                false => self.when_gone(if_gone, parent, event).await?,
            },
            Action::Create { case, if_full } => self.open_new(event, &case, &if_full).await?,
            Action::CreateStorm { case } => {
                let opened = self
                    .open_case(STORM_KEY, alarm, event.keys, &case, None, now)
                    .await?;
                storm_created(alarm, opened, note, now)
            }
            Action::Update {
                open,
                communication,
                if_gone,
            } => match self.tell(&open.case_id, &communication).await? {
                true => updated(alarm, outcome, open, now),
                // Support resolved or removed the case: the problem is back.
                false => self.when_gone(if_gone, open, event).await?,
            },
            Action::Coalesce { open } => coalesced(outcome, open, note),
            Action::Recover {
                open,
                communication,
                resolve,
                if_gone,
            } => {
                let told = match &communication {
                    Some(c) => self.tell(&open.case_id, c).await?,
                    None => true,
                };
                match told {
                    true => self.recovered(event, outcome, note, open, resolve).await?,
                    false => self.when_gone(if_gone, open, event).await?,
                }
            }
            Action::Fold {
                storm,
                communication,
                if_gone,
            } => match self.tell(&storm.case_id, &communication).await? {
                true => folded(alarm, storm, now),
                // The storm case was resolved: this alarm starts a new one.
                false => self.when_gone(if_gone, storm, event).await?,
            },
        })
    }

    /// The recovery was told (or held back): the case is resolved when the plan says so and
    /// the alarm's record let go; otherwise the record stays, marked recovered.
    async fn recovered(
        &self,
        event: Event<'_>,
        outcome: Outcome,
        note: Option<String>,
        mut open: OpenCase,
        resolve: bool,
    ) -> Result<Done, CaseError> {
        let alarm_key = event.alarm.key().to_owned();
        if resolve {
            match self.desk.resolve_case(&open.case_id).await {
                Ok(()) | Err(DeskError::CaseNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut done = Done::on(outcome, Some(open.case_id.clone()), note);
        if resolve {
            done.open_cases.push(OpenCaseChange::Remove { alarm_key });
        } else {
            open.recovered = true;
            open.last_update_at = event.now;
            // Folded alarms point at the storm case: their record is theirs alone.
            open.alarm_key = alarm_key;
            done.open_cases.push(OpenCaseChange::Put(open));
        }
        Ok(done)
    }

    /// Records what was done in one commit (the decision, the open-case records, the
    /// claim's release, the hold, the notices), then remembers the event as handled.
    async fn record(
        &self,
        event: Event<'_>,
        done: Done,
        hold: Option<HoldChange>,
        notices: Vec<Notice>,
    ) -> Result<Handled, CaseError> {
        let Event {
            delivery,
            alarm,
            keys,
            now,
        } = event;
        let Done {
            outcome,
            case_id,
            note,
            claim,
            open_cases,
            headline: _,
            severity,
        } = done;
        let decision = Decision::about(delivery, alarm, outcome, now)
            .on_case(case_id.clone())
            .noted(note.clone())
            .with_severity(severity);
        let mut about = (!keys.is_empty()).then(|| decision.clone());
        let seq = self
            .commit_retrying(Commit {
                handled_keys: keys.to_vec(),
                decision,
                open_cases,
                claim,
                hold,
                notices: self.told(notices),
            })
            .await?;
        self.notifier.wake();
        if let Some(d) = about.as_mut() {
            d.seq = seq;
        }
        let earlier = super::recent::Earlier {
            seq,
            outcome,
            case_id: case_id.clone(),
            about: about.map(std::sync::Arc::new),
        };
        self.recent.remember(keys, earlier);
        Ok(Handled {
            outcome,
            case_id,
            alarm: alarm.name.clone(),
            reason: note,
        })
    }

    /// Adds a communication to a case: false when the desk says the case is gone.
    async fn tell(&self, case_id: &str, communication: &Communication) -> Result<bool, CaseError> {
        match self.desk.add_communication(case_id, communication).await {
            Ok(()) => Ok(true),
            Err(DeskError::CaseNotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The desk said the case a plan acted on is gone: what the plan's `if_gone` says.
    async fn when_gone(
        &self,
        if_gone: IfGone,
        gone: OpenCase,
        event: Event<'_>,
    ) -> Result<Done, CaseError> {
        let Event {
            delivery,
            alarm,
            keys,
            now,
        } = event;
        match if_gone {
            IfGone::Open { case, if_full } => {
                let old = gone.case_id;
                let note = format!("previous case {old} no longer open");
                match self
                    .open_counted(event, &case, Some(old), Evidence::None)
                    .await?
                {
                    Some(opened) => Ok(created(alarm, opened, Some(note), now)),
                    None => {
                        let mut done = self.storm_instead(event, &if_full).await?;
                        done.note = Some(match done.note {
                            Some(n) => format!("{note}; {n}"),
                            None => note,
                        });
                        Ok(done)
                    }
                }
            }
            IfGone::OpenStorm { case } => {
                let opened = self
                    .open_case(STORM_KEY, alarm, keys, &case, Some(gone.case_id), now)
                    .await?;
                let note = "storm: the storm case was resolved; a new one was opened";
                let mut done = storm_created(alarm, opened, Some(note.into()), now);
                done.headline = Some(case.subject.clone());
                Ok(done)
            }
            IfGone::LetGoAndDecideAgain => {
                let note = "no longer open at AWS Support".to_owned();
                self.ledger
                    .commit(let_go(delivery, &gone, now, note))
                    .await?;
                Err(CaseError::Busy)
            }
            // A recovery's case: nothing is left to tell.
            IfGone::LetGo => {
                let note = Some("case no longer open at AWS Support".into());
                let mut done = Done::on(Outcome::Recovered, Some(gone.case_id), note);
                done.open_cases.push(OpenCaseChange::Remove {
                    alarm_key: alarm.key().to_owned(),
                });
                Ok(done)
            }
        }
    }

    /// Commits, retrying a storage failure a few times with backoff: once the desk has
    /// acted, the record must follow, or the next delivery would act again. A conflict (the
    /// claim was taken over) is not retried.
    pub(super) async fn commit_retrying(&self, commit: Commit) -> Result<i64, CaseError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.ledger.commit(commit.clone()).await {
                Ok(seq) => return Ok(seq),
                Err(e @ LedgerError::Storage { .. }) if attempts < COMMIT_ATTEMPTS => {
                    tracing::warn!(attempt = attempts, error = %Chain(&e), "ledger commit failed after the desk acted; retrying");
                    tokio::time::sleep(COMMIT_BACKOFF.after(attempts)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
