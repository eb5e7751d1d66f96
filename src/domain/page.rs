//! A page: the service trying to get hold of a person about an alarm, from the moment it
//! opens until someone owns it (acknowledged), it is over (resolved), or every stage of its
//! policy went unanswered. What crosses the ledger about one: its state, where it stands in
//! its policy, the messages sent and who was called out.

use serde::{Deserialize, Serialize};

/// A page's number: what the people paged type back ("ACK 12") and the commands take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PageId(pub u64);

impl std::fmt::Display for PageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for PageId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Self)
            .ok_or_else(|| format!("{s:?} is not a page number"))
    }
}

/// Where a page stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum PageState {
    /// Escalating: nobody has said "I have it" yet.
    Open,
    /// Someone owns it: no one else is called.
    Acknowledged,
    /// Over: the alarm went back to OK, or someone resolved it.
    Resolved,
    /// Every stage of every round was tried and nobody answered.
    Unanswered,
}

impl PageState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether further alarms attach to the page rather than open another.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Open | Self::Acknowledged)
    }
}

/// How a message reaches a person: one of their contact methods.
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
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Channel {
    Sms,
    Voice,
    Email,
    Webhook,
    /// The alarm's AWS Support case, told who owns the page (`to` is the case id).
    Case,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How someone acted on a page: recorded with who and when.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Via {
    /// The `pages` command.
    Command,
    /// The signed link in a message.
    Link,
    /// A text message reply.
    Sms,
    /// A keypress on a call.
    Voice,
    /// The web console.
    Console,
    /// The service itself (the alarm went back to OK).
    Alarm,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where a page stands in its policy: the round (0 is the first run) and the stage to run
/// next. A stage equal to the number of stages is the round's answer time: when it is due,
/// the next round begins, or the page is unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub round: u32,
    pub stage: u32,
}

impl Position {
    pub const START: Self = Self { round: 0, stage: 0 };
}
