//! AWS Support's own events about a case (EventBridge `Support Case Update`): recorded on
//! the case's timeline; a case resolved at AWS is let go, one reopened there is held open
//! again, and people are told when AWS replied.

use chrono::{DateTime, Utc};

use crate::domain::case_event::{CaseEventKind, CaseUpdate, account_of_case};
use crate::domain::delivery::Delivery;
use crate::domain::notice::Notice;
use crate::domain::outcome::Outcome;
use crate::ports::ledger::{Commit, Decision, DecisionFilter, OpenCase, OpenCaseChange};

use super::records::fresh_open_case;
use super::{CaseError, CaseService, Handled};

/// What an AWS Support event would do.
pub(super) enum Assessment {
    /// Recorded before (this case, if it named one).
    Duplicate {
        case_id: Option<String>,
    },
    Act(Assessed),
}

/// The outcome of an event not seen before, and what it changes.
pub(super) struct Assessed {
    pub outcome: Outcome,
    pub note: String,
    /// The alarm whose case it is (key and name), when this service opened it.
    pub owner: Option<(String, String)>,
    pub open_cases: Vec<OpenCaseChange>,
}

/// Who is told of an AWS Support event: a case resolved at AWS, or AWS's reply.
fn notices(update: &CaseUpdate, outcome: Outcome, alarm: String) -> Vec<Notice> {
    match (&update.case_id, outcome) {
        (Some(case_id), Outcome::Closed) => vec![Notice::Resolved {
            case_id: case_id.clone(),
            alarm,
        }],
        (Some(case_id), Outcome::Replied) => vec![Notice::Replied {
            case_id: case_id.clone(),
            display_id: update.display_id.clone(),
            excerpt: None,
        }],
        _ => Vec::new(),
    }
}

impl CaseService {
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
        let Assessed {
            outcome,
            note,
            owner,
            open_cases,
        } = match self.assess_case_update(update, &keys, now).await? {
            Assessment::Duplicate { case_id } => {
                return Ok(Handled {
                    outcome: Outcome::Duplicate,
                    case_id,
                    alarm: label,
                    reason: Some("this AWS Support event was recorded before".into()),
                });
            }
            Assessment::Act(a) => a,
        };
        if outcome == Outcome::Replied {
            self.page_aws_reply(update, owner.as_ref()).await?;
        }
        let (alarm_key, alarm_name) =
            owner.unwrap_or_else(|| (format!("support:{}", update.shown_id()), label.clone()));
        let told = alarm_name.clone();
        let mut decision = Decision::new(delivery, alarm_key, alarm_name, outcome, now)
            .on_case(update.case_id.clone())
            .noted(note.clone());
        decision.state_change_time = update.time.clone();
        // Who is told, queued with the decision. AWS's reply is read when the notice is sent
        // (the event does not carry its text).
        let notices = notices(update, outcome, told);
        let seq = self
            .commit_retrying(Commit {
                handled_keys: keys.clone(),
                decision,
                open_cases,
                claim: None,
                hold: None,
                notices: self.told(notices),
            })
            .await?;
        self.notifier.wake();
        if let (Outcome::Replied, Some(case_id)) = (outcome, &update.case_id) {
            self.measure_first_reply(case_id).await;
        }
        let earlier = super::recent::Earlier {
            seq,
            outcome,
            case_id: update.case_id.clone(),
            about: None,
        };
        self.recent.remember(&keys, earlier);
        Ok(Handled {
            outcome,
            case_id: update.case_id.clone(),
            alarm: label,
            reason: Some(note),
        })
    }

    /// AWS's reply just recorded, if it is the first on the case: the time since the case
    /// was opened, measured. Read after the commit (a reply is rare), and a failed read
    /// costs only the measurement.
    async fn measure_first_reply(&self, case_id: &str) {
        let filter = DecisionFilter {
            case_id: Some(case_id.to_owned()),
            limit: 500,
            ..Default::default()
        };
        let Ok(story) = self.ledger.decisions(&filter).await else {
            return;
        };
        let opened = story.iter().find(|d| d.outcome == Outcome::Created);
        let replies: Vec<&Decision> = story
            .iter()
            .filter(|d| d.outcome == Outcome::Replied)
            .collect();
        if let (Some(opened), [reply]) = (opened, replies.as_slice()) {
            let at = super::report::replied_at(reply).max(opened.at);
            let waited = (at - opened.at).num_milliseconds() as f64 / 1000.0;
            self.metrics
                .observe(crate::ports::metrics::Measure::TimeToFirstReply, waited);
        }
    }

    /// What an AWS Support event would do, read from the ledger and decided, with nothing
    /// changed: for `case_update`, and for `process` and `redrive --dry-run`.
    pub(super) async fn assess_case_update(
        &self,
        update: &CaseUpdate,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<Assessment, CaseError> {
        let earlier = match self.recent.find(keys) {
            Some(e) => Some(e.case_id.clone()),
            None => self.ledger.find_handled(keys).await?.map(|d| d.case_id),
        };
        if let Some(case_id) = earlier {
            return Ok(Assessment::Duplicate { case_id });
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
        let owner = match holding.iter().find(|o| !o.is_storm()).or(holding.first()) {
            Some(o) => Some((o.alarm_key.clone(), o.alarm_name.clone())),
            None => match &update.case_id {
                Some(id) => self
                    .ledger
                    .decisions(&DecisionFilter {
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
        let shown = update.shown_id();
        // Only about a case this service opened, in the account the event names: anything
        // else is recorded as ignored, and nothing is asked of AWS, nobody told.
        let foreign = match (
            update.account.as_deref(),
            update.case_id.as_deref().and_then(account_of_case),
        ) {
            (Some(event), Some(case)) if event != case => Some(format!(
                "ignored: the event names account {event}, the case belongs to account {case}"
            )),
            _ => None,
        };
        let unknown = owner
            .is_none()
            .then(|| format!("ignored: case {shown} is not one this service opened"));
        let (outcome, note) = match foreign.or(unknown) {
            Some(why) => (Outcome::Ignored, why),
            None => {
                self.case_event_outcome(update, &holding, &owner, shown, now, &mut open_cases)
                    .await?
            }
        };
        Ok(Assessment::Act(Assessed {
            outcome,
            note,
            owner,
            open_cases,
        }))
    }

    /// What an AWS Support event about one of this service's cases does: the outcome, the
    /// note for the record, and the changes to the open cases.
    async fn case_event_outcome(
        &self,
        update: &CaseUpdate,
        holding: &[OpenCase],
        owner: &Option<(String, String)>,
        shown: &str,
        now: DateTime<Utc>,
        open_cases: &mut Vec<OpenCaseChange>,
    ) -> Result<(Outcome, String), CaseError> {
        Ok(match &update.kind {
            CaseEventKind::Resolved if !holding.is_empty() => {
                for o in holding {
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
                let free = match (owner, holding.is_empty()) {
                    (Some((key, _)), true) => self.ledger.open_case(key).await?.is_none(),
                    _ => false,
                };
                match (owner, &update.case_id) {
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
        })
    }
}
