//! What the case logic writes about open cases: the records a decision puts or removes,
//! and the keys that make a redelivery a duplicate. Small pure helpers shared by deciding,
//! carrying out, and the AWS Support events.

use chrono::{DateTime, Utc};

use crate::domain::alarm::{Alarm, AlarmKind};
use crate::domain::delivery::Delivery;
use crate::domain::outcome::Outcome;
use crate::ports::ledger::{Commit, Decision, OpenCase, OpenCaseChange};

use super::STORM_KEY;

/// What an AWS Health event says, to tell an update with news from one without.
pub(super) fn health_digest(alarm: &Alarm) -> Option<String> {
    use sha2::{Digest, Sha256};
    if alarm.kind != AlarmKind::Health {
        return None;
    }
    let text = alarm.description.as_deref().unwrap_or_default();
    let d = Sha256::digest(text.as_bytes());
    Some(d.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// The keys that make a delivery a duplicate: its delivery ids, and the state change itself
/// (so the same event arriving by another path, or re-posted by hand, is still one event).
pub(super) fn handled_keys(delivery: &Delivery, alarm: &Alarm) -> Vec<String> {
    let mut keys = delivery.dedupe_keys();
    keys.push(crate::domain::delivery::HandledKey::Event(alarm.event_key()).into());
    keys
}

/// A case no longer open at the desk: recorded as `closed` and its record let go, so the
/// alarm's next ALARM opens a new case.
pub(super) fn let_go(
    delivery: &Delivery,
    open: &OpenCase,
    at: DateTime<Utc>,
    note: String,
) -> Commit {
    let decision = Decision::new(
        delivery,
        open.alarm_key.clone(),
        open.alarm_name.clone(),
        Outcome::Closed,
        at,
    )
    .on_case(Some(open.case_id.clone()))
    .noted(note);
    let mut commit = Commit::record(Vec::new(), decision);
    commit.open_cases.push(OpenCaseChange::Remove {
        alarm_key: open.alarm_key.clone(),
    });
    commit
}

/// The open-case record of an alarm whose case was just opened (or that points at the
/// storm case).
pub(super) fn opened_for(alarm: &Alarm, case_id: String, now: DateTime<Utc>) -> OpenCaseChange {
    let mut open = fresh_open_case(alarm.key(), &alarm.name, case_id, now);
    open.digest = health_digest(alarm);
    OpenCaseChange::Put(open)
}

/// A storm case was opened: its own record, and the alarm's pointing at it.
pub(super) fn storm_opened(
    alarm: &Alarm,
    case_id: &str,
    now: DateTime<Utc>,
) -> [OpenCaseChange; 2] {
    [
        OpenCaseChange::Put(fresh_open_case(
            STORM_KEY,
            "alarm storm",
            case_id.to_owned(),
            now,
        )),
        opened_for(alarm, case_id.to_owned(), now),
    ]
}

pub(super) fn fresh_open_case(
    key: &str,
    name: &str,
    case_id: String,
    now: DateTime<Utc>,
) -> OpenCase {
    OpenCase {
        alarm_key: key.to_owned(),
        alarm_name: name.to_owned(),
        case_id,
        opened_at: now,
        last_update_at: now,
        coalesced: 0,
        updates: 0,
        recovered: false,
        digest: None,
        cycles: Vec::new(),
        flapping: false,
        group: None,
    }
}
