//! The shared vocabulary of decisions: what the service did with one delivery. The case
//! logic decides an [`Outcome`], the ledger records it and the HTTP edge answers with it,
//! so it lives apart from all three.

use serde::{Deserialize, Serialize};

/// What the service did with one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new case was opened.
    Created,
    /// A communication was added to the alarm's open case.
    Updated,
    /// The alarm fired again within the update cooldown: counted on the open case only.
    Coalesced,
    /// The alarm went back to OK while its case is open: a recovery note was added.
    Recovered,
    /// OK or INSUFFICIENT_DATA with nothing to tell support.
    Ignored,
    /// The alarm is muted.
    Suppressed,
    /// This delivery or this very state change was handled before.
    Duplicate,
    /// An SNS subscription to this endpoint was confirmed.
    Confirmed,
    /// SNS reported that this endpoint was unsubscribed from a topic.
    Unsubscribed,
    /// Too many new cases this hour: added to the storm case.
    Folded,
    /// The periodic reconcile found the case resolved at the desk: no longer held open.
    Closed,
    /// The desk refused the case, with the default codes too: no case; the delivery is
    /// answered 5xx so it ends where someone sees it (the dead-letter queue).
    Failed,
    /// AWS Support added a communication to the case (it replied, or asks something).
    Replied,
    /// AWS Support reopened a case this service had let go: held open again.
    Reopened,
    /// An AWS Support event recorded on the case's timeline, changing nothing else.
    Noted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Coalesced => "coalesced",
            Self::Recovered => "recovered",
            Self::Ignored => "ignored",
            Self::Suppressed => "suppressed",
            Self::Duplicate => "duplicate",
            Self::Confirmed => "confirmed",
            Self::Unsubscribed => "unsubscribed",
            Self::Folded => "folded",
            Self::Closed => "closed",
            Self::Failed => "failed",
            Self::Replied => "replied",
            Self::Reopened => "reopened",
            Self::Noted => "noted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Created,
            Self::Updated,
            Self::Coalesced,
            Self::Recovered,
            Self::Ignored,
            Self::Suppressed,
            Self::Duplicate,
            Self::Confirmed,
            Self::Unsubscribed,
            Self::Folded,
            Self::Closed,
            Self::Failed,
            Self::Replied,
            Self::Reopened,
            Self::Noted,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}
