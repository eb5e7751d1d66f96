//! Claims to open a case: the claim's item, and the one transaction that takes a claim
//! with its checks (handled keys, the hour's slot), read back when DynamoDB cancels it.

use aws_sdk_dynamodb::types::{
    CancellationReason, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use super::items::{
    BELOW_CAP, NOT_HANDLED, TAKE_SLOT, decision_from, keep_earliest, open_from, slot_key,
    slot_values,
};
use super::requests::{build_error, cancellation_codes};
use super::{DynamoLedger, OPEN_SK, STATE_CLAIMED, STATE_OPEN};
use crate::backend::aws::dynamo::{Item, get_n, get_s, n, s};
use crate::ports::ledger::{Claim, CountedClaim, LedgerError, StaleClaim};

/// The code of a reason whose item's condition failed (others are `None`, or a conflict).
const CHECK_FAILED: &str = "ConditionalCheckFailed";

/// The claim's item under the alarm's key, and the condition of a plain claim: nothing held,
/// an expired claim (taken over), or the resolved case this one replaces.
pub(super) fn claim_item(claim: &Claim, now: DateTime<Utc>) -> (Item, String, Item) {
    let mut item = Item::from([
        ("pk".to_owned(), s(format!("alarm#{}", claim.alarm_key))),
        ("sk".to_owned(), s(OPEN_SK)),
        ("state".to_owned(), s(STATE_CLAIMED)),
        ("claim_token".to_owned(), s(claim.token.clone())),
        ("claim_reference".to_owned(), s(claim.reference.clone())),
        ("claimed_at".to_owned(), n(claim.claimed_at.timestamp())),
        ("claim_expires".to_owned(), n(claim.expires_at.timestamp())),
        ("claim_owner".to_owned(), s(claim.owner.clone())),
    ]);
    let mut condition =
        "attribute_not_exists(pk) OR (#state = :claimed AND claim_expires < :now)".to_owned();
    let mut values = Item::from([
        (":claimed".to_owned(), s(STATE_CLAIMED)),
        (":now".to_owned(), n(now.timestamp())),
    ]);
    if let Some(old) = &claim.replaces {
        condition.push_str(" OR (#state = :open AND case_id = :replaces)");
        values.insert(":open".into(), s(STATE_OPEN));
        values.insert(":replaces".into(), s(old.clone()));
        item.insert("replaces".into(), s(old.clone()));
    }
    (item, condition, values)
}

/// The claim an overwritten item held, when it held an expired claim (rather than nothing or
/// a resolved case): its owner may have opened a case, so the new owner is told of it.
pub(super) fn stale_claim(old: &Item) -> Option<StaleClaim> {
    if get_s(old, "state") != Some(STATE_CLAIMED) {
        return None;
    }
    Some(StaleClaim {
        reference: get_s(old, "claim_reference")?.to_owned(),
        claimed_at: DateTime::from_timestamp(get_n(old, "claimed_at")?, 0)?,
    })
}

impl DynamoLedger {
    /// The items of the claim's transaction, in the order DynamoDB gives its reasons back
    /// ([`read_cancelled`] reads them by position): one check per handled key, the hour's
    /// slot, the claim.
    pub(super) fn counted_claim_items(
        &self,
        claim: &Claim,
        cap: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<TransactWriteItem>, LedgerError> {
        let mut items = Vec::with_capacity(claim.handled_keys.len() + 2);
        for key in &claim.handled_keys {
            items.push(self.not_handled_check(key, now)?);
        }
        items.push(self.slot_below_cap(cap, now)?);
        items.push(self.claim_if_free(claim, now)?);
        Ok(items)
    }

    /// A handled key not recorded yet; when it is, the failed check returns the record (the
    /// earlier decision).
    fn not_handled_check(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem, LedgerError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(format!("handled#{key}")))
            .key("sk", s("-"))
            .condition_expression(NOT_HANDLED)
            .expression_attribute_values(":now", n(now.timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// One of the hour's case slots, taken only while below the cap.
    fn slot_below_cap(
        &self,
        cap: usize,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem, LedgerError> {
        let slot = Update::builder()
            .table_name(&self.table)
            .set_key(Some(slot_key(now)))
            .update_expression(TAKE_SLOT)
            .condition_expression(BELOW_CAP)
            .set_expression_attribute_values(Some(slot_values(cap, now)))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(slot).build())
    }

    /// The claim, when nothing is held under the alarm's key (or only the resolved case it
    /// replaces). Unlike a plain claim it never takes over an expired one: only the item it
    /// would overwrite says whether that owner opened a case, and a failed condition is
    /// where the transaction can return it.
    fn claim_if_free(
        &self,
        claim: &Claim,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem, LedgerError> {
        let (item, _, _) = claim_item(claim, now);
        let (condition, values) = match &claim.replaces {
            None => ("attribute_not_exists(pk)", None),
            Some(old) => (
                "attribute_not_exists(pk) OR (#state = :open AND case_id = :replaces)",
                Some(Item::from([
                    (":open".to_owned(), s(STATE_OPEN)),
                    (":replaces".to_owned(), s(old.clone())),
                ])),
            ),
        };
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if claim.replaces.is_some() {
            put = put.expression_attribute_names("#state", "state");
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }
}

/// What a cancelled claim transaction says.
pub(super) enum Cancelled {
    /// The outcome, known from the reasons and the items they carry.
    Decided(CountedClaim),
    /// An expired claim holds the alarm: its owner may have opened a case, which only the
    /// overwritten item can say; the two steps take it over and return it.
    ExpiredClaim,
}

/// Reads the reasons of a cancelled claim transaction (items as [`counted_claim_items`]
/// orders them, `keys` handled keys first), most telling first: a handled key says the event
/// was decided already, the alarm's item what holds it, the slot that the hour is full.
///
/// [`counted_claim_items`]: DynamoLedger::counted_claim_items
pub(super) fn read_cancelled(
    reasons: &[CancellationReason],
    keys: usize,
    now: DateTime<Utc>,
) -> Result<Cancelled, LedgerError> {
    let failed = |i: usize| reasons.get(i).and_then(|r| r.code()) == Some(CHECK_FAILED);
    if (0..keys).any(failed) {
        return earlier_decision(reasons, keys).map(Cancelled::Decided);
    }
    if failed(keys + 1) {
        return held_by(reasons.get(keys + 1).and_then(|r| r.item()), now);
    }
    if failed(keys) {
        return Ok(Cancelled::Decided(CountedClaim::Full));
    }
    // A transaction conflict (another write to one of these items in flight): nothing
    // was written; deciding again is right.
    Err(LedgerError::Conflict(format!(
        "claim cancelled [{}]",
        cancellation_codes(reasons)
    )))
}

/// The failed checks of the first `keys` items carry the records that failed them: the
/// earlier decision.
fn earlier_decision(
    reasons: &[CancellationReason],
    keys: usize,
) -> Result<CountedClaim, LedgerError> {
    let mut earliest = None;
    for reason in reasons
        .iter()
        .take(keys)
        .filter(|r| r.code() == Some(CHECK_FAILED))
    {
        if let Some(item) = reason.item() {
            keep_earliest(&mut earliest, Some(decision_from(item)?));
        }
    }
    Ok(match earliest {
        Some(d) => CountedClaim::Handled(Box::new(d)),
        None => CountedClaim::Changed(None),
    })
}

/// What the alarm's item held when the claim's condition failed on it.
fn held_by(held: Option<&Item>, now: DateTime<Utc>) -> Result<Cancelled, LedgerError> {
    Ok(match held.and_then(|h| get_s(h, "state")) {
        // A case was opened for the alarm since (or before) the decision: the item says
        // which, so deciding again needs no read.
        Some(STATE_OPEN) => Cancelled::Decided(CountedClaim::Changed(
            held.map(open_from).transpose()?.flatten().map(Box::new),
        )),
        Some(STATE_CLAIMED)
            if held
                .and_then(|h| get_n(h, "claim_expires"))
                .is_some_and(|t| t < now.timestamp()) =>
        {
            Cancelled::ExpiredClaim
        }
        _ => Cancelled::Decided(CountedClaim::Refused),
    })
}
