//! The work the service gives itself: the periodic reconcile (cases resolved at the desk
//! are let go, alarms held during maintenance raised when the window ends), and, at start
//! on the local backend, the claims a stopped process left behind.

use serde::Serialize;

use crate::domain::alarm::{Alarm, AlarmState};
use crate::domain::delivery::{Delivery, DeliveryKind};
use crate::domain::maintenance;
use crate::domain::notice::Notice;
use crate::domain::outcome::{DecisionState, Outcome};
use crate::ports::ledger::{Commit, Decision, HeldAlarm, HoldChange, OpenCaseChange};

use super::records::{fresh_open_case, let_go};
use super::{CaseError, CaseService, Dedupe, Reading, Reconciled};

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

impl CaseService {
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
                    let task = Delivery::new(DeliveryKind::Task);
                    let mut decision = Decision::new(
                        &task,
                        claim.alarm_key.clone(),
                        claim.alarm_name.clone(),
                        Outcome::Created,
                        now,
                    )
                    .on_case(Some(case_id.clone()))
                    .noted(format!(
                        "recovered at start: case {} was opened before the process stopped",
                        claim.reference
                    ));
                    decision.state = DecisionState::Alarm(AlarmState::Alarm);
                    decision.state_change_time = "-".into();
                    let open = fresh_open_case(&claim.alarm_key, &claim.alarm_name, case_id, now);
                    let commit = Commit {
                        notices: Vec::new(),
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
                    tracing::warn!(key = %claim.alarm_key, error = %crate::errors::Chain(&e), "could not look up a claim's case at start");
                    report.left += 1;
                }
            }
        }
        Ok(report)
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
            let commit = let_go(delivery, &open, (self.clock)(), format!("case {status}")).telling(
                self.told(vec![Notice::Resolved {
                    case_id: open.case_id.clone(),
                    alarm: open.alarm_name.clone(),
                }]),
            );
            self.ledger.commit(commit).await?;
            self.notifier.wake();
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
                    tracing::error!(alarm = %held.alarm_key, error = %crate::errors::Chain(&e), "held alarm unreadable; dropped");
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
            let plan = self
                .plan_with(&task, &alarm, Dedupe::Skip, Reading::Read)
                .await?
                .0;
            report
                .raised
                .push(self.execute(&task, &alarm, plan, Dedupe::Skip).await?);
        }
        Ok(report)
    }

    fn note_decision(&self, delivery: &Delivery, held: &HeldAlarm, note: &str) -> Decision {
        let mut d = Decision::new(
            delivery,
            held.alarm_key.clone(),
            held.alarm_name.clone(),
            Outcome::Ignored,
            (self.clock)(),
        )
        .noted(note.to_owned());
        d.state = DecisionState::Alarm(AlarmState::Alarm);
        d
    }
}
