//! Carrying a plan out: the desk calls a [`Plan`] names, in its order, with the fallbacks it
//! names, then one commit of what was done. Nothing here decides: when the desk says a case
//! is gone, the plan's `if_gone` says what happens next.
//!
//! New cases are opened under a claim (a lease in the ledger, renewed while CreateCase is
//! in flight) and count against the hour's storm slots; an uncertain CreateCase is looked
//! up by its reference rather than sent again.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::alarm::Alarm;
use crate::domain::delivery::Delivery;
use crate::domain::notice::Notice;
use crate::domain::outcome::Outcome;
use crate::errors::Chain;
use crate::ports::desk::{Communication, DeskError, NewCase};
use crate::ports::ledger::{
    Claim, Commit, CountedClaim, Decision, LedgerError, OpenCase, OpenCaseChange,
};

use super::held::Work;
use super::opening::Opened;
use super::plan::{Action, IfGone, Plan, Storm};
use super::records::{handled_keys, health_digest, let_go, opened_for, storm_opened};
use super::{CaseError, CaseService, Dedupe, Handled, STORM_KEY, text};

/// How many times a commit is tried after the desk acted (about 1.3 s in all).
const COMMIT_ATTEMPTS: u32 = 4;

/// Whether a new case carries the alarm's graph (a case reopened after support resolved
/// the last one does not: the first had it).
#[derive(Clone, Copy)]
enum Evidence {
    Graph,
    None,
}

/// What carrying out an action did, before it is recorded.
struct Done {
    outcome: Outcome,
    case_id: Option<String>,
    note: Option<String>,
    claim: Option<Claim>,
    open_cases: Vec<OpenCaseChange>,
    /// The subject of a case opened other than the plan said (a new storm case).
    headline: Option<String>,
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

impl CaseService {
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
        let mut hold = plan.hold.clone();
        let mut headline = plan.headline.clone();
        let done = match plan.action {
            Action::Duplicate { earlier } => {
                hold = None;
                Done::on(plan.outcome, earlier.case_id, plan.note)
            }
            Action::Suppressed { .. } | Action::Ignored { .. } => {
                Done::on(plan.outcome, None, plan.note)
            }
            Action::Join {
                parent,
                communication,
                why,
                if_gone,
            } => match self.tell(&parent.case_id, &communication).await? {
                true => {
                    let mut done = Done::on(
                        plan.outcome,
                        Some(parent.case_id.clone()),
                        Some(format!("{why}: noted on case {}", parent.case_id)),
                    );
                    // Its later news (repeats, recovery) goes to the same case, within the
                    // same cooldown, as a folded alarm's does.
                    done.open_cases
                        .push(opened_for(alarm, parent.case_id.clone(), now));
                    done
                }
                false => {
                    self.when_gone(if_gone, parent, delivery, alarm, &keys, now)
                        .await?
                }
            },
            Action::Create { case, if_full } => {
                headline = case.subject.clone();
                self.open_new(alarm, &keys, &case, &if_full, now).await?
            }
            Action::CreateStorm { case } => {
                headline = case.subject.clone();
                let opened = self
                    .open_case(STORM_KEY, alarm, &keys, &case, None, now)
                    .await?;
                storm_created(alarm, opened, plan.note, now)
            }
            Action::Update {
                mut open,
                communication,
                if_gone,
            } => match self.tell(&open.case_id, &communication).await? {
                true => {
                    open.updates += 1;
                    open.last_update_at = now;
                    open.recovered = false;
                    open.digest = health_digest(alarm);
                    let mut done = Done::on(plan.outcome, Some(open.case_id.clone()), None);
                    done.open_cases.push(OpenCaseChange::Put(open));
                    done
                }
                // Support resolved or removed the case: the problem is back.
                false => {
                    self.when_gone(if_gone, open, delivery, alarm, &keys, now)
                        .await?
                }
            },
            Action::Coalesce { mut open } => {
                open.coalesced += 1;
                let mut done = Done::on(plan.outcome, Some(open.case_id.clone()), plan.note);
                done.open_cases.push(OpenCaseChange::Put(open));
                done
            }
            Action::Recover {
                mut open,
                communication,
                resolve,
                if_gone,
            } => {
                let told = match &communication {
                    Some(c) => self.tell(&open.case_id, c).await?,
                    None => true,
                };
                if !told {
                    self.when_gone(if_gone, open, delivery, alarm, &keys, now)
                        .await?
                } else {
                    if resolve {
                        match self.desk.resolve_case(&open.case_id).await {
                            Ok(()) | Err(DeskError::CaseNotFound(_)) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    let mut done = Done::on(plan.outcome, Some(open.case_id.clone()), plan.note);
                    if resolve {
                        done.open_cases.push(OpenCaseChange::Remove {
                            alarm_key: alarm.key().to_owned(),
                        });
                    } else {
                        open.recovered = true;
                        open.last_update_at = now;
                        // Folded alarms point at the storm case: their record is theirs alone.
                        open.alarm_key = alarm.key().to_owned();
                        done.open_cases.push(OpenCaseChange::Put(open));
                    }
                    done
                }
            }
            Action::Fold {
                storm,
                communication,
                if_gone,
            } => match self.tell(&storm.case_id, &communication).await? {
                true => folded(alarm, storm, now),
                // The storm case was resolved: this alarm starts a new one.
                false => {
                    self.when_gone(if_gone, storm, delivery, alarm, &keys, now)
                        .await?
                }
            },
        };

        let Done {
            outcome,
            case_id,
            note,
            claim,
            mut open_cases,
            headline: opened_instead,
        } = done;
        let headline = opened_instead.unwrap_or(headline);
        // The alarm's own record carries its group, so the group's other members find it.
        for change in &mut open_cases {
            if let OpenCaseChange::Put(o) = change
                && o.alarm_key == alarm.key()
            {
                o.group = plan.group.clone();
            }
        }
        let decision = Decision::about(delivery, alarm, outcome, now)
            .on_case(case_id.clone())
            .noted(note.clone());
        let mut about = (!keys.is_empty()).then(|| decision.clone());
        // Who is told, queued with the decision: a notice is never lost between the two.
        let notices: Vec<Notice> = match (outcome, &case_id) {
            (Outcome::Created, Some(id)) => vec![Notice::Opened {
                case_id: id.clone(),
                subject: headline,
                severity: plan.severity.as_str().to_owned(),
                alarm: alarm.name.clone(),
            }],
            (Outcome::Folded, Some(id)) => vec![Notice::Folded {
                case_id: id.clone(),
                alarm: alarm.name.clone(),
            }],
            _ => Vec::new(),
        };
        let seq = self
            .commit_retrying(Commit {
                handled_keys: keys.clone(),
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
        self.recent.remember(&keys, earlier);
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

    /// The alarm's graph attached to its new case, or the case says why there is none: a
    /// support engineer looks at the picture first. A graph that cannot be drawn costs the
    /// picture, never the case.
    async fn with_evidence(&self, alarm: &Alarm, mut case: NewCase) -> NewCase {
        match self.grapher.graph(alarm).await {
            Ok(graph) => {
                let what = alarm.metric_label().unwrap_or_else(|| "the metric".into());
                case.communication_body = text::with_graph_line(
                    &case.communication_body,
                    &format!(
                        "Graph attached: {} ({what}: the threshold and the moment the alarm \
                         fired are marked).",
                        graph.file_name
                    ),
                );
                case.attachments.push(graph);
            }
            Err(why) => {
                case.communication_body = text::with_graph_line(
                    &case.communication_body,
                    &format!("Graph: none attached ({why})."),
                );
            }
        }
        case
    }

    /// Opens a case counted against the storm cap, with the alarm's graph; when the hour's
    /// slots are taken, the alarm goes to the storm case as `if_full` says.
    async fn open_new(
        &self,
        alarm: &Alarm,
        keys: &[String],
        case: &NewCase,
        if_full: &Storm,
        now: DateTime<Utc>,
    ) -> Result<Done, CaseError> {
        match self
            .open_counted(alarm, keys, case, None, now, Evidence::Graph)
            .await?
        {
            Some(opened) => {
                let note = opened.note.clone();
                Ok(created(alarm, opened, note, now))
            }
            None => self.storm_instead(alarm, if_full, keys, now).await,
        }
    }

    /// The hour's slots are taken: the alarm goes to the storm case, opening it if need be
    /// (the storm case itself takes no slot).
    async fn storm_instead(
        &self,
        alarm: &Alarm,
        storm_plan: &Storm,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<Done, CaseError> {
        if let Some(storm) = self.ledger.open_case(STORM_KEY).await?
            && self.tell(&storm.case_id, &storm_plan.communication).await?
        {
            return Ok(folded(alarm, storm, now));
        }
        let opened = self
            .open_case(STORM_KEY, alarm, keys, &storm_plan.case, None, now)
            .await?;
        let note = format!(
            "storm: {} new cases within the hour; this alarm opened the storm case",
            self.policy.storm_cap
        );
        Ok(storm_created(alarm, opened, Some(note), now))
    }

    /// The desk said the case a plan acted on is gone: what the plan's `if_gone` says.
    async fn when_gone(
        &self,
        if_gone: IfGone,
        gone: OpenCase,
        delivery: &Delivery,
        alarm: &Alarm,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<Done, CaseError> {
        match if_gone {
            IfGone::Open { case, if_full } => {
                let old = gone.case_id;
                let note = format!("previous case {old} no longer open");
                match self
                    .open_counted(alarm, keys, &case, Some(old), now, Evidence::None)
                    .await?
                {
                    Some(opened) => Ok(created(alarm, opened, Some(note), now)),
                    None => {
                        let mut done = self.storm_instead(alarm, &if_full, keys, now).await?;
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

    /// Opens a case that counts against the storm cap: takes one of the hour's slots
    /// first (atomically, across instances), and gives it back if the case was definitely
    /// not opened. `None`: the slots are all taken, a storm.
    async fn open_counted(
        &self,
        alarm: &Alarm,
        keys: &[String],
        case: &NewCase,
        replaces: Option<String>,
        now: DateTime<Utc>,
        evidence: Evidence,
    ) -> Result<Option<Opened>, CaseError> {
        let key = alarm.key();
        // The slot and the claim in one step (one request on DynamoDB): both or neither.
        let claim = self.claim_for(key, alarm, keys, replaces.clone(), now);
        let stale = match self
            .ledger
            .claim_counted(&claim, self.policy.storm_cap, now)
            .await?
        {
            CountedClaim::Full => return Ok(None),
            CountedClaim::Refused => return Err(CaseError::Busy),
            // Deciding again with the open case the claim found: an update, usually.
            CountedClaim::Changed(Some(open)) => {
                return Err(CaseError::Changed(Box::new(crate::ports::ledger::Lookup {
                    earlier: None,
                    open: Some(*open),
                    slots_taken: 0,
                })));
            }
            CountedClaim::Changed(None) => {
                return Err(LedgerError::Conflict(
                    "a case was opened for the alarm since the decision".into(),
                )
                .into());
            }
            CountedClaim::Handled(earlier) => return Err(CaseError::Handled(earlier)),
            CountedClaim::Taken { stale } => stale,
        };
        // Drawn once the claim is ours: a duplicate or an update that the claim finds
        // (no read before it on DynamoDB) never costs a graph.
        let case = match evidence {
            // Nothing reached the desk yet: a shutdown may let this claim go, unless it took
            // over a stopped owner's (whose case must be looked for first).
            Evidence::Graph => {
                let work = match stale {
                    None => Work::Preparing,
                    Some(_) => Work::Acting,
                };
                self.leased(&claim, work, self.with_evidence(alarm, case.clone()))
                    .await?
            }
            Evidence::None => case.clone(),
        };
        let case = &case;
        let first = self.open_claimed(key, claim, stale, case).await;
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
                retry.communication_body = text::refused_codes_body(case, &reason);
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
                    tracing::warn!(error = %crate::errors::Chain(&r), "could not give a storm slot back");
                }
                Err(e)
            }
        }
    }

    /// Commits, retrying a storage failure a few times with backoff: once the desk has
    /// acted, the record must follow, or the next delivery would act again. A conflict (the
    /// claim was taken over) is not retried.
    pub(super) async fn commit_retrying(&self, commit: Commit) -> Result<i64, CaseError> {
        let mut pause = Duration::from_millis(100);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.ledger.commit(commit.clone()).await {
                Ok(seq) => return Ok(seq),
                Err(e @ LedgerError::Storage { .. }) if attempts < COMMIT_ATTEMPTS => {
                    tracing::warn!(attempt = attempts, error = %Chain(&e), "ledger commit failed after the desk acted; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 3;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
