//! The claims this process holds while work runs under them, so that a shutdown that gives
//! up on that work (its grace ran out) can let go of them at once instead of leaving them to
//! lapse: the delivery it hands back is then taken up by the next instance without waiting
//! out a lease.
//!
//! Only a claim whose work has not reached the desk is let go (the graph is being drawn): a
//! claim under which a CreateCase may be in flight, or that took over a stopped owner's claim
//! (whose case must still be looked for by its reference), is left to lapse, and whoever
//! takes it over then looks for the case first. Once stopping, no new work may reach the
//! desk under a claim.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ports::ledger::Claim;

/// What runs under a claim, for [`HeldClaims::stop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Work {
    /// Nothing has reached the desk under this claim (drawing the graph): letting it go
    /// loses nothing.
    Preparing,
    /// The desk may act or have acted under it (CreateCase, looking for a case by its
    /// reference): it must lapse, so its next owner looks for the case before opening one.
    Acting,
}

/// The process is stopping: no work may reach the desk under a claim any more.
#[derive(Debug)]
pub(super) struct Stopping;

#[derive(Default)]
pub(super) struct HeldClaims {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    stopping: bool,
    /// Claim token → the claim and what runs under it.
    held: HashMap<String, (Claim, Work)>,
}

/// Held while `work` runs; its drop forgets the claim.
pub(super) struct Holding<'a> {
    claims: &'a HeldClaims,
    token: String,
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.claims.lock().held.remove(&self.token);
    }
}

impl HeldClaims {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that `work` runs under `claim` from now until the guard is dropped. Refused
    /// once stopping for work that would reach the desk; decided under the same lock as
    /// [`HeldClaims::stop`], so no claim is let go while its work starts acting.
    pub(super) fn enter(&self, claim: &Claim, work: Work) -> Result<Holding<'_>, Stopping> {
        let mut inner = self.lock();
        if inner.stopping && work == Work::Acting {
            return Err(Stopping);
        }
        inner
            .held
            .insert(claim.token.clone(), (claim.clone(), work));
        Ok(Holding {
            claims: self,
            token: claim.token.clone(),
        })
    }

    /// Stops: from now on no work reaches the desk under a claim. Answers the claims that
    /// can be let go (only preparing); the others lapse by themselves.
    pub(super) fn stop(&self) -> (Vec<Claim>, usize) {
        let mut inner = self.lock();
        inner.stopping = true;
        let mut free = Vec::new();
        let mut left = 0;
        for (claim, work) in inner.held.values() {
            match work {
                Work::Preparing => free.push(claim.clone()),
                Work::Acting => left += 1,
            }
        }
        (free, left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn claim(key: &str) -> Claim {
        let now = Utc::now();
        Claim::new(key, now, now + chrono::Duration::seconds(15), None)
    }

    #[test]
    fn stopping_lets_go_only_of_claims_whose_work_has_not_reached_the_desk() {
        let held = HeldClaims::default();
        let (graph, create) = (claim("drawing"), claim("creating"));
        let _drawing = held.enter(&graph, Work::Preparing).expect("enter");
        let _creating = held.enter(&create, Work::Acting).expect("enter");
        {
            let done = claim("done");
            let _gone = held.enter(&done, Work::Preparing).expect("enter");
        }
        let (free, left) = held.stop();
        assert_eq!(free, vec![graph.clone()], "the finished one is forgotten");
        assert_eq!(left, 1);
        // Once stopping, nothing new reaches the desk under a claim; preparing still may.
        assert!(held.enter(&graph, Work::Acting).is_err());
        assert!(held.enter(&claim("late"), Work::Preparing).is_ok());
    }
}
