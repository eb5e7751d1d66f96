//! Duplicates answered from memory, gathered into one history line per event before they
//! are written ([`super::CaseLedger::note`]).

use chrono::{DateTime, Utc};

use super::Decision;

/// Duplicates answered from memory, not yet written: one entry per event redelivered,
/// with how many times and until when. A ledger that notes duplicates
/// ([`CaseLedger::note`]) writes one history line per event instead of one per
/// redelivery: a redelivery storm of one message is one line, "N deliveries until T".
#[derive(Default)]
pub struct DuplicateTally {
    waiting: std::sync::Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    entries: Vec<Noted>,
    /// When the oldest entry was noted.
    since: Option<std::time::Instant>,
}

struct Noted {
    /// The first of the duplicates.
    decision: Decision,
    count: u64,
    last_at: DateTime<Utc>,
}

impl Noted {
    fn same_event(&self, d: &Decision) -> bool {
        let e = &self.decision;
        e.alarm_key == d.alarm_key
            && e.delivery_kind == d.delivery_kind
            && e.delivery_id == d.delivery_id
            && e.state_change_time == d.state_change_time
            && e.case_id == d.case_id
    }

    /// The history line: the first duplicate, saying how many followed until when.
    fn into_decision(self) -> Decision {
        let mut d = self.decision;
        if self.count > 1 {
            let more = format!(
                "{} deliveries until {}",
                self.count,
                self.last_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            d.note = Some(match d.note.take() {
                Some(n) => format!("{n}; {more}"),
                None => more,
            });
        }
        d
    }
}

impl DuplicateTally {
    /// Distinct events written together (at most three DynamoDB history items each, so
    /// one BatchWriteItem of 25 takes them all).
    pub const EVENTS: usize = 8;
    /// How long a noted duplicate waits at most before the next note writes it (the
    /// server also flushes on this period and at shutdown).
    pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one duplicate; the lines now due to be written, if any.
    pub fn add(&self, decision: Decision) -> Option<Vec<Decision>> {
        let mut tally = self.lock();
        match tally.entries.iter_mut().find(|n| n.same_event(&decision)) {
            Some(noted) => {
                noted.count += 1;
                noted.last_at = noted.last_at.max(decision.at);
            }
            None => {
                let last_at = decision.at;
                tally.entries.push(Noted {
                    decision,
                    count: 1,
                    last_at,
                });
            }
        }
        let since = *tally.since.get_or_insert_with(std::time::Instant::now);
        (tally.entries.len() >= Self::EVENTS || since.elapsed() >= Self::WAIT)
            .then(|| Self::lines(std::mem::take(&mut *tally)))
    }

    /// Every line waiting (for a listing, the periodic flush, or shutdown).
    pub fn take(&self) -> Vec<Decision> {
        Self::lines(std::mem::take(&mut *self.lock()))
    }

    fn lines(tally: Tally) -> Vec<Decision> {
        tally
            .entries
            .into_iter()
            .map(Noted::into_decision)
            .collect()
    }
}
