//! The shapes of the ledger's items: keys, decisions and their history copies, the hour's
//! slot counter and the conditions on them.

use chrono::{DateTime, Utc};

use super::STATE_OPEN;
use crate::backend::aws::dynamo::{Item, TTL_ATTRIBUTE, get_n, get_s, n, s};
use crate::ports::ledger::{Decision, LedgerError, OpenCase, slot_hour};

/// A decision's sequence number: its time in microseconds, zero-padded where it is a key
/// so that it sorts.
pub(super) fn seq_of(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(super) fn decision_json(d: &Decision) -> Result<String, LedgerError> {
    serde_json::to_string(d).map_err(|e| LedgerError::corrupt("a decision", e))
}

pub(super) fn decision_from(item: &Item) -> Result<Decision, LedgerError> {
    let json = get_s(item, "decision")
        .ok_or_else(|| LedgerError::corrupt_said("decision item without a decision"))?;
    serde_json::from_str(json).map_err(|e| LedgerError::corrupt("a decision item", e))
}

/// A decision's history items: under its alarm, its day and its case.
pub(super) fn history(decision: &Decision, json: &str) -> Vec<Item> {
    let seq = decision.seq;
    let copies = [
        Some((
            format!("alarm#{}", decision.alarm_key),
            format!("decision#{seq:020}"),
        )),
        Some((
            format!("day#{}", decision.at.format("%Y-%m-%d")),
            format!("{seq:020}#{}", decision.alarm_key),
        )),
        decision
            .case_id
            .as_ref()
            .map(|c| (format!("case#{c}"), format!("decision#{seq:020}"))),
    ];
    copies
        .into_iter()
        .flatten()
        .map(|(pk, sk)| {
            Item::from([
                ("pk".to_owned(), s(pk)),
                ("sk".to_owned(), s(sk)),
                ("decision".to_owned(), s(json.to_owned())),
            ])
        })
        .collect()
}

/// A handled key not yet recorded: no item, or an expired one TTL has not deleted yet.
pub(super) const NOT_HANDLED: &str = "attribute_not_exists(pk) OR expires_at < :now";

/// Taking one of the hour's case slots: the counter goes up, only while below the cap, and
/// the item expires a few hours after its hour.
pub(super) const TAKE_SLOT: &str = "ADD n :one SET expires_at = :expires";
pub(super) const BELOW_CAP: &str = "attribute_not_exists(n) OR n < :cap";

pub(super) fn slot_values(cap: usize, now: DateTime<Utc>) -> Item {
    Item::from([
        (":one".to_owned(), n(1)),
        (":cap".to_owned(), n(i64::try_from(cap).unwrap_or(i64::MAX))),
        (":expires".to_owned(), n(now.timestamp() + 3 * 3600)),
    ])
}

/// The key of the counter of new cases in the clock hour of `now`.
pub(super) fn slot_key(now: DateTime<Utc>) -> Item {
    item_key(format!("slots#{}", slot_hour(now)), "-")
}

/// An item's key.
pub(super) fn item_key(pk: String, sk: &str) -> Item {
    Item::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The open case an alarm's item holds (it may hold a claim instead).
pub(super) fn open_from(item: &Item) -> Result<Option<OpenCase>, LedgerError> {
    if get_s(item, "state") != Some(STATE_OPEN) {
        return Ok(None);
    }
    let json = get_s(item, "record")
        .ok_or_else(|| LedgerError::corrupt_said("open case without record"))?;
    serde_json::from_str(json)
        .map(Some)
        .map_err(|e| LedgerError::corrupt("a ledger record", e))
}

/// New cases the hour's slot counter item holds.
pub(super) fn slots_from(item: &Item) -> usize {
    get_n(item, "n")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

/// A handled key's decision, unless its record has expired (TTL deletion is lazy).
pub(super) fn live_decision(item: &Item, epoch: i64) -> Result<Option<Decision>, LedgerError> {
    match get_n(item, TTL_ATTRIBUTE).is_some_and(|t| t < epoch) {
        true => Ok(None),
        false => decision_from(item).map(Some),
    }
}

/// Keeps the earliest of the decisions seen.
pub(super) fn keep_earliest(earliest: &mut Option<Decision>, d: Option<Decision>) {
    if let Some(d) = d
        && earliest.as_ref().is_none_or(|e| d.seq < e.seq)
    {
        *earliest = Some(d);
    }
}
