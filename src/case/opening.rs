//! Opening a case under a claim: the claim makes "no case is open for this alarm" and the
//! opening one step across every instance sharing the ledger. The claim is a lease, renewed
//! while the work under it runs ([`CaseService::leased`]), so it lapses soon after its owner
//! dies and is then taken over: the case the owner may have opened is looked for by the
//! reference on its first line before any new CreateCase. CreateCase is never sent twice: an
//! uncertain outcome is looked up by that reference.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::alarm::Alarm;
use crate::ports::desk::{DeskError, NewCase};
use crate::ports::ledger::{Claim, ClaimOutcome, StaleClaim};

use super::held::Work;
use super::{CaseError, CaseService, text};

/// Pauses before each look for a case whose CreateCase had an uncertain outcome, in
/// fifteenths of the lease (1, 2 and 4 s with the default 15 s): the looking ends within
/// half a lease, while this process still holds the claim.
const SETTLE_PAUSES: [u32; 3] = [1, 2, 4];

/// A case just opened (or found again after a crash).
pub(super) struct Opened {
    pub case_id: String,
    pub claim: Claim,
    pub note: Option<String>,
}

impl CaseService {
    /// Claims the key, then opens the case. The claim makes "no case is open" and the
    /// opening one step across every instance sharing the ledger; it is given back if the
    /// desk refuses, and released by the commit otherwise. The case's first line carries
    /// the claim's reference: when a claim is taken over from an instance that stopped,
    /// the case it may have opened is found by that reference instead of opened twice.
    pub(super) async fn open_case(
        &self,
        key: &str,
        alarm: &Alarm,
        keys: &[String],
        case: &NewCase,
        replaces: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Opened, CaseError> {
        let claim = self.claim_for(key, alarm, keys, replaces, now);
        let stale = match self.ledger.claim(&claim, now).await? {
            ClaimOutcome::Refused => return Err(CaseError::Busy),
            ClaimOutcome::Taken { stale } => stale,
        };
        self.open_claimed(key, claim, stale, case).await
    }

    /// The claim to open a case for `key`, for this delivery, leased for `CLAIM_TTL`.
    pub(super) fn claim_for(
        &self,
        key: &str,
        alarm: &Alarm,
        keys: &[String],
        replaces: Option<String>,
        now: DateTime<Utc>,
    ) -> Claim {
        let ttl =
            chrono::Duration::from_std(self.policy.claim_ttl).unwrap_or(chrono::Duration::MAX);
        Claim::new(key, now, now + ttl, replaces).for_delivery(&alarm.name, keys.to_vec())
    }

    /// With the claim held: finds the case a stopped owner of a stale claim may have
    /// opened, or opens it, never twice.
    pub(super) async fn open_claimed(
        &self,
        key: &str,
        claim: Claim,
        stale: Option<StaleClaim>,
        case: &NewCase,
    ) -> Result<Opened, CaseError> {
        if let Some(stale) = stale
            && let Some(case_id) = self.opened_before_stop(key, &claim, &stale).await?
        {
            let note = format!("recovered case {} opened before a crash", stale.reference);
            return Ok(Opened {
                case_id,
                claim,
                note: Some(note),
            });
        }
        let mut case = case.clone();
        case.communication_body = text::claimed(&claim.reference, &case);
        let created = match self
            .leased(&claim, Work::Acting, self.desk.create_case(&case))
            .await
        {
            Ok(created) => created,
            // Stopping before anything reached the desk: the claim can go now.
            Err(e) => {
                self.give_back(&claim).await;
                return Err(e);
            }
        };
        match created {
            Ok(case_id) => Ok(Opened {
                case_id,
                claim,
                note: None,
            }),
            // The case may exist (a timeout, a lost connection, a 5xx): CreateCase has no
            // idempotency token, so it is never sent again blindly. Look for the case by its
            // reference a few times; if it is not found yet, keep the claim: whoever takes
            // it over once its lease lapses looks again before any new CreateCase.
            Err(e @ DeskError::Uncertain(_)) => match self.settled(key, &claim).await? {
                Some(case_id) => Ok(Opened {
                    case_id,
                    claim,
                    note: Some("found by its reference after an uncertain CreateCase".into()),
                }),
                None => Err(e.into()),
            },
            Err(e) => {
                self.give_back(&claim).await;
                Err(e.into())
            }
        }
    }

    /// The case the stopped owner of a taken-over claim opened before it could record it,
    /// looked for by the claim's reference. A desk that cannot say gets the claim given
    /// back: the delivery is retried.
    async fn opened_before_stop(
        &self,
        key: &str,
        claim: &Claim,
        stale: &StaleClaim,
    ) -> Result<Option<String>, CaseError> {
        let found = self
            .leased(
                claim,
                Work::Acting,
                self.desk.find_case(&stale.reference, stale.claimed_at),
            )
            .await?;
        match found {
            Ok(Some(case_id)) => {
                tracing::warn!(key, case_id = %case_id, reference = %stale.reference, "found a case opened by an instance that stopped before recording it");
                Ok(Some(case_id))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.give_back(claim).await;
                Err(e.into())
            }
        }
    }

    /// The case an uncertain CreateCase may have opened, looked for by the claim's
    /// reference after each of the `SETTLE_PAUSES`. `None`: not found yet, and the claim is
    /// kept.
    async fn settled(&self, key: &str, claim: &Claim) -> Result<Option<String>, CaseError> {
        for fifteenths in SETTLE_PAUSES {
            let pause = self.policy.claim_ttl * fifteenths / 15;
            let settle = async {
                tokio::time::sleep(pause).await;
                self.desk
                    .find_case(&claim.reference, claim.claimed_at)
                    .await
            };
            // Stopping: the claim stays, to lapse; its next owner looks again.
            if let Ok(Some(case_id)) = self.leased(claim, Work::Acting, settle).await? {
                tracing::warn!(key, case_id = %case_id, reference = %claim.reference, "an uncertain CreateCase did open the case: found by its reference");
                return Ok(Some(case_id));
            }
        }
        Ok(None)
    }

    /// Runs `work` while renewing the claim's lease every third of it, so the claim stays
    /// ours for as long as the work takes, and lapses soon after if this process dies.
    /// Refused once the process is stopping if the work would reach the desk
    /// ([`HeldClaims`](super::held::HeldClaims)).
    pub(super) async fn leased<T>(
        &self,
        claim: &Claim,
        kind: Work,
        work: impl Future<Output = T>,
    ) -> Result<T, CaseError> {
        let _holding = self
            .held
            .enter(claim, kind)
            .map_err(|_| CaseError::Stopping)?;
        let every = (self.policy.claim_ttl / 3).max(Duration::from_millis(50));
        let lease =
            chrono::Duration::from_std(self.policy.claim_ttl).unwrap_or(chrono::Duration::MAX);
        tokio::pin!(work);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                _ = ticks.tick() => {
                    match self.ledger.renew(claim, Utc::now() + lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(key = %claim.alarm_key, "the claim was taken over while its work was in flight"),
                        Err(e) => tracing::warn!(key = %claim.alarm_key, error = %crate::errors::Chain(&e), "could not renew a claim's lease"),
                    }
                }
            }
        }
    }

    pub(super) async fn give_back(&self, claim: &Claim) {
        if let Err(e) = self.ledger.release(claim).await {
            // The claim expires by itself; the delivery is retried either way.
            tracing::warn!(key = %claim.alarm_key, error = %crate::errors::Chain(&e), "could not release a claim");
        }
    }
}
