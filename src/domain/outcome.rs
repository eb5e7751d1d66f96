//! The shared vocabulary of decisions: what the service did with one delivery. The case
//! logic decides an [`Outcome`], the ledger records it and the HTTP edge answers with it,
//! so it lives apart from all three; so does what a decision was about ([`DecisionState`]).

use serde::{Deserialize, Serialize};

use crate::domain::alarm::AlarmState;
use crate::domain::delivery::MessageKind;

/// What the service did with one delivery.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Outcome {
    /// A new case was opened.
    Created,
    /// A communication was added to the alarm's open case.
    Updated,
    /// Counted on the open case only, nothing sent: the alarm fired again within the update
    /// cooldown or while flapping, or went back to OK with nothing to add (its group still
    /// in ALARM, flapping, recovery notes off). The decision's note says which.
    Coalesced,
    /// The alarm went back to OK while its case is open: a recovery note was added (and the
    /// case resolved, with `CLOSE_ON_RECOVERY`).
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
    /// The alarm's route is people, not a case: a page was opened for it (or it joined the
    /// live one, or the page was resolved). The note says which page.
    Paged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// What a decision was about, as its `state` column records it: an alarm's new state, an
/// SNS subscription event, or nothing (AWS Support's events, a case let go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DecisionState {
    None,
    Alarm(AlarmState),
    Subscription(MessageKind),
}

impl DecisionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "-",
            Self::Alarm(s) => s.as_str(),
            Self::Subscription(k) => k.as_str(),
        }
    }

    /// The recorded form back; `None` for a string no decision was ever recorded with.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "-" => Self::None,
            "ALARM" => Self::Alarm(AlarmState::Alarm),
            "OK" => Self::Alarm(AlarmState::Ok),
            "INSUFFICIENT_DATA" => Self::Alarm(AlarmState::InsufficientData),
            "SubscriptionConfirmation" => Self::Subscription(MessageKind::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Self::Subscription(MessageKind::UnsubscribeConfirmation),
            "Notification" => Self::Subscription(MessageKind::Notification),
            _ => return None,
        })
    }
}

impl std::fmt::Display for DecisionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<DecisionState> for String {
    fn from(s: DecisionState) -> Self {
        s.as_str().to_owned()
    }
}

/// A recorded decision state this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown decision state {0:?}")]
pub struct UnknownState(String);

impl TryFrom<String> for DecisionState {
    type Error = UnknownState;
    fn try_from(s: String) -> Result<Self, UnknownState> {
        Self::parse(&s).ok_or(UnknownState(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_is_answered_recorded_and_read_back_alike() {
        use strum::VariantArray;
        for outcome in Outcome::VARIANTS {
            let json = serde_json::to_value(outcome).expect("serialises");
            // What the HTTP answer says (serde) is what the ledger's text column holds.
            assert_eq!(json, outcome.as_str(), "{outcome:?}");
            assert_eq!(Outcome::parse(outcome.as_str()), Some(*outcome));
        }
        assert_eq!(Outcome::parse("Created"), None, "recorded lowercase only");
        assert_eq!(Outcome::parse("opened"), None);
    }

    #[test]
    fn every_state_reads_back_as_recorded() {
        for state in [
            DecisionState::None,
            DecisionState::Alarm(AlarmState::Alarm),
            DecisionState::Alarm(AlarmState::Ok),
            DecisionState::Alarm(AlarmState::InsufficientData),
            DecisionState::Subscription(MessageKind::SubscriptionConfirmation),
            DecisionState::Subscription(MessageKind::UnsubscribeConfirmation),
        ] {
            assert_eq!(DecisionState::parse(state.as_str()), Some(state));
            let json = serde_json::to_value(state).expect("json");
            assert_eq!(
                serde_json::from_value::<DecisionState>(json).ok(),
                Some(state)
            );
        }
        assert_eq!(DecisionState::parse("PENDING"), None);
        assert!(serde_json::from_str::<DecisionState>("\"PENDING\"").is_err());
    }
}
