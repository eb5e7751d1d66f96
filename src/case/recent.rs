//! Duplicates from memory: the handled keys this process knows to be durably recorded, each
//! with the decision that recorded it, so that a redelivery is answered without reading the
//! ledger. The ledger stays the truth: the set is filled only after a commit succeeded, or
//! from what the ledger itself returned, so it never answers for a key that is not yet
//! durable; a miss falls through to the ledger. Bounded by two generations: when the newer
//! one is full, the older is dropped and the newer takes its place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::outcome::Outcome;

/// Keys per generation: at most twice this many are held (a few MiB).
pub(super) const PER_GENERATION: usize = 16_384;

/// The decision a handled key was recorded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Earlier {
    pub seq: i64,
    pub outcome: Outcome,
    pub case_id: Option<String>,
    /// The alarm decision itself (not kept for AWS Support events), so that a worker-daemon
    /// redelivery can be answered and noted from its message id alone.
    pub about: Option<Arc<crate::ports::ledger::Decision>>,
}

impl Earlier {
    pub(super) fn of(d: &crate::ports::ledger::Decision) -> Self {
        Self {
            seq: d.seq,
            outcome: d.outcome,
            case_id: d.case_id.clone(),
            about: Some(Arc::new(d.clone())),
        }
    }
}

struct Entry {
    earlier: Arc<Earlier>,
    at: Instant,
}

#[derive(Default)]
struct Generations {
    newer: HashMap<String, Entry>,
    older: HashMap<String, Entry>,
}

pub(super) struct RecentKeys {
    generations: Mutex<Generations>,
    per_generation: usize,
    /// As long as the ledger remembers a handled key (`IDEMPOTENCY_TTL`), and no longer.
    ttl: Duration,
}

impl RecentKeys {
    pub(super) fn new(per_generation: usize, ttl: Duration) -> Self {
        Self {
            generations: Mutex::default(),
            per_generation: per_generation.max(1),
            ttl,
        }
    }

    /// The decision one of these keys was recorded under, if this process knows it.
    pub(super) fn find(&self, keys: &[String]) -> Option<Arc<Earlier>> {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| g.newer.get(k).or_else(|| g.older.get(k)))
            .find(|e| e.at.elapsed() < self.ttl)
            .map(|e| e.earlier.clone())
    }

    /// These keys are durably recorded under `earlier`.
    pub(super) fn remember(&self, keys: &[String], earlier: Earlier) {
        if keys.is_empty() {
            return;
        }
        let earlier = Arc::new(earlier);
        let at = Instant::now();
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            if g.newer.len() >= self.per_generation {
                g.older = std::mem::take(&mut g.newer);
            }
            let entry = Entry {
                earlier: earlier.clone(),
                at,
            };
            g.newer.insert(key.clone(), entry);
        }
    }

    /// Keys held now (both generations).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g.newer.len() + g.older.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn earlier(seq: i64) -> Earlier {
        Earlier {
            seq,
            outcome: Outcome::Created,
            case_id: Some(format!("case-{seq}")),
            about: None,
        }
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_remembered_key_answers_and_an_unknown_one_does_not() {
        let recent = RecentKeys::new(8, Duration::from_secs(60));
        assert!(recent.find(&keys(&["sqs:1"])).is_none());
        recent.remember(&keys(&["sqs:1", "event:a"]), earlier(7));
        assert_eq!(recent.find(&keys(&["event:a"])).map(|e| e.seq), Some(7));
        assert_eq!(
            recent.find(&keys(&["sqs:2", "sqs:1"])).map(|e| e.seq),
            Some(7)
        );
        assert!(recent.find(&keys(&["sqs:2"])).is_none());
    }

    #[test]
    fn memory_stays_bounded_and_the_newest_keys_stay() {
        let recent = RecentKeys::new(100, Duration::from_secs(60));
        for i in 0..10_000 {
            recent.remember(&[format!("k{i}")], earlier(i));
        }
        assert!(recent.len() <= 200, "{} keys held", recent.len());
        assert_eq!(
            recent.find(&[String::from("k9999")]).map(|e| e.seq),
            Some(9999)
        );
        assert!(recent.find(&[String::from("k0")]).is_none());
    }

    #[test]
    fn keys_are_forgotten_when_the_ledger_would_forget_them() {
        let recent = RecentKeys::new(8, Duration::ZERO);
        recent.remember(&keys(&["sqs:1"]), earlier(1));
        assert!(recent.find(&keys(&["sqs:1"])).is_none());
    }
}
