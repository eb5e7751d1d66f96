//! Opening a new case that counts against the hour's storm slots: the slot and the claim
//! are taken in one step, the alarm's graph is drawn once the claim is ours, a refusal of
//! the alarm's own codes is tried again with the defaults, and the storm case takes the
//! alarm once the slots are all taken. The slot is given back whenever the case was
//! definitely not opened.

use crate::case::held::Work;
use crate::case::opening::Opened;
use crate::case::plan::Storm;
use crate::case::{CaseError, CaseService, STORM_KEY, text};
use crate::domain::alarm::Alarm;
use crate::ports::desk::{DeskError, NewCase};
use crate::ports::ledger::{Claim, CountedClaim, LedgerError, StaleClaim};

use super::{Done, Event, created, folded, storm_created};

/// Whether a new case carries the alarm's graph (a case reopened after support resolved
/// the last one does not: the first had it).
#[derive(Clone, Copy)]
pub(super) enum Evidence {
    Graph,
    None,
}

impl CaseService {
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
    pub(super) async fn open_new(
        &self,
        event: Event<'_>,
        case: &NewCase,
        if_full: &Storm,
    ) -> Result<Done, CaseError> {
        match self
            .open_counted(event, case, None, Evidence::Graph)
            .await?
        {
            Some(opened) => {
                let note = opened.note.clone();
                Ok(created(event.alarm, opened, note, event.now))
            }
            None => self.storm_instead(event, if_full).await,
        }
    }

    /// The hour's slots are taken: the alarm goes to the storm case, opening it if need be
    /// (the storm case itself takes no slot).
    pub(super) async fn storm_instead(
        &self,
        event: Event<'_>,
        storm_plan: &Storm,
    ) -> Result<Done, CaseError> {
        let Event {
            alarm, keys, now, ..
        } = event;
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

    /// Opens a case that counts against the storm cap: takes one of the hour's slots
    /// first (atomically, across instances), and gives it back if the case was definitely
    /// not opened. `None`: the slots are all taken, a storm.
    pub(super) async fn open_counted(
        &self,
        event: Event<'_>,
        case: &NewCase,
        replaces: Option<String>,
        evidence: Evidence,
    ) -> Result<Option<Opened>, CaseError> {
        let Event {
            alarm, keys, now, ..
        } = event;
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
        let case = &self
            .evidenced(alarm, &claim, stale.as_ref(), case, evidence)
            .await?;
        let first = self.open_claimed(key, claim, stale, case).await;
        // A refusal no retry can fix may be the alarm's own codes: once more with the
        // defaults, saying so in the case.
        let with_defaults = case.service_code != self.policy.default_service_code
            || case.category_code != self.policy.default_category_code;
        let result = match first {
            Err(CaseError::Desk(DeskError::Rejected(reason))) if with_defaults => {
                self.open_with_defaults(event, case, &reason, replaces)
                    .await
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

    /// The case as it is sent: with the alarm's graph when it is to carry one. Drawn once
    /// the claim is ours, so a duplicate or an update that the claim finds (no read before
    /// it on DynamoDB) never costs a graph.
    async fn evidenced(
        &self,
        alarm: &Alarm,
        claim: &Claim,
        stale: Option<&StaleClaim>,
        case: &NewCase,
        evidence: Evidence,
    ) -> Result<NewCase, CaseError> {
        match evidence {
            // Nothing reached the desk yet: a shutdown may let this claim go, unless it took
            // over a stopped owner's (whose case must be looked for first).
            Evidence::Graph => {
                let work = match stale {
                    None => Work::Preparing,
                    Some(_) => Work::Acting,
                };
                self.leased(claim, work, self.with_evidence(alarm, case.clone()))
                    .await
            }
            Evidence::None => Ok(case.clone()),
        }
    }

    /// The desk refused a case carrying the alarm's own service or category code: opened
    /// once more with the default codes, the case and the record saying which were refused.
    async fn open_with_defaults(
        &self,
        event: Event<'_>,
        case: &NewCase,
        reason: &str,
        replaces: Option<String>,
    ) -> Result<Opened, CaseError> {
        let Event {
            alarm, keys, now, ..
        } = event;
        let key = alarm.key();
        tracing::warn!(key, reason = %reason, "the support desk refused the case; trying the default codes");
        let mut retry = case.clone();
        retry.service_code = self.policy.default_service_code.clone();
        retry.category_code = self.policy.default_category_code.clone();
        retry.communication_body = text::refused_codes_body(case, reason);
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
}
