//! Escalation policies (paged by issue 27): ordered stages, each after a delay, each naming
//! whom to notify (a schedule's person on duty, or a person), repeated as configured.

use std::time::Duration;

use crate::oncall::model::PersonId;

/// Whom a stage notifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Whoever the schedule names on duty when the stage runs.
    Schedule(String),
    Person(PersonId),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Schedule(id) => write!(f, "schedule:{id}"),
            Self::Person(id) => write!(f, "person:{id}"),
        }
    }
}

/// One stage: after `after` (counted from the stage before, or from the page for the
/// first), notify these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub after: Duration,
    pub notify: Vec<Target>,
}

/// An escalation policy: its stages in order, run `repeat` more times when nobody answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub id: String,
    pub repeat: u32,
    pub stages: Vec<Stage>,
    /// How long the last stage of a round is given to be answered before the next round
    /// begins (or, after the last round, the page is `unanswered`). The other stages are
    /// given until the next stage's `after`.
    pub answer_within: Duration,
    /// How long after the alarm the page waits before its first stage: an alarm back to OK
    /// meanwhile resolves the page and nobody is called.
    pub wait: Duration,
    /// Whether the alarm going back to OK resolves the page (the default); `false` keeps it
    /// until someone resolves it (once anyone was called).
    pub resolve_on_ok: bool,
    /// While AWS Health reports an open issue with the alarm's service in its region, the
    /// first stage waits this much longer (AWS may already be on it).
    pub health_grace: Duration,
}

/// What `answer_within` is when the file does not say.
pub const DEFAULT_ANSWER_WITHIN: Duration = Duration::from_secs(5 * 60);

/// The most times a policy may run again (GoAlert's bound): more is a loop nobody answers.
pub const MAX_REPEAT: u32 = 5;

/// Reads a stage's delay: `0m`, `10m`, `1h`, `90s` (at most a day).
pub fn delay(s: &str) -> Option<Duration> {
    let t = s.trim();
    let (n, unit) = t.split_at(t.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    (secs <= 86_400).then(|| Duration::from_secs(secs))
}

/// Writes a delay back in the largest unit that says it exactly.
pub fn delay_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0m".into(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
