//! AWS Support's first reply on each case, held to the response time the account's support
//! plan promises for the case's severity.
//!
//! The targets come from configuration (`SUPPORT_REPLY_TARGETS`): AWS ends the Developer,
//! Business and Enterprise On-Ramp plans on 1 January 2027, and the targets of the plans that
//! remain are the account's to state. The default is what AWS's Support User Guide gives for
//! Business and Enterprise Support (README, "How well does support work?").

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::Spread;
use crate::domain::settings::Severity;

/// Business and Enterprise Support's first-response times: general guidance 24 h, system
/// impaired 12 h, production system impaired 4 h, production system down 1 h,
/// business-critical system down 15 min.
pub const DEFAULT_TARGETS: &str = "low=24h,normal=12h,high=4h,urgent=1h,critical=15m";

/// The promised time to a first reply, per severity; a severity without one is not held to
/// any (a plan that does not offer it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTargets(BTreeMap<Severity, Duration>);

impl Default for ReplyTargets {
    fn default() -> Self {
        Self::parse(DEFAULT_TARGETS).unwrap_or(Self(BTreeMap::new()))
    }
}

impl ReplyTargets {
    /// `low=24h,normal=12h,high=4h,urgent=1h,critical=15m` (minutes `m`, hours `h`, days
    /// `d`); `none` holds no severity to a target.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut targets = BTreeMap::new();
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(Self(targets));
        }
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (severity, within) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected severity=time, as high=4h"))?;
            let severity: Severity = severity.parse()?;
            let within = span(within.trim()).ok_or_else(|| {
                format!("{part:?}: the time is minutes, hours or days, as 15m, 4h or 1d")
            })?;
            if targets.insert(severity, within).is_some() {
                return Err(format!("{severity} is given twice"));
            }
        }
        if targets.is_empty() {
            return Err("no targets given (write none to hold no severity to one)".into());
        }
        Ok(Self(targets))
    }

    pub fn of(&self, severity: Severity) -> Option<Duration> {
        self.0.get(&severity).copied()
    }
}

/// `15m`, `4h`, `1d`: at least a minute, at most 30 days.
fn span(s: &str) -> Option<Duration> {
    // Split before the last character (not byte: the input may be any text).
    let (n, unit) = s.split_at(s.char_indices().last()?.0);
    let n: i64 = n.parse().ok()?;
    let d = match unit {
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return None,
    };
    (d >= Duration::minutes(1) && d <= Duration::days(30)).then_some(d)
}

/// One severity's cases and AWS's first replies on them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replies {
    pub severity: Severity,
    /// The plan's promise, when it makes one for this severity.
    pub target_seconds: Option<i64>,
    /// Cases of this severity opened in the span.
    pub cases: usize,
    /// Of those, the ones AWS has replied on.
    pub replied: usize,
    /// Replied within the target.
    pub met: usize,
    /// Replied after the target, or not yet although the target has passed.
    pub missed: usize,
    /// No reply yet, and the target (if any) not passed.
    pub waiting: usize,
    /// `met / (met + missed)`; none while nothing is met or missed.
    pub share_met: Option<f64>,
    pub time_to_first_reply: Spread,
}

impl Replies {
    /// The target as people read it, `240 min`; none without one.
    pub fn target_said(&self) -> Option<String> {
        self.target_seconds.map(|s| format!("{} min", s / 60))
    }

    /// The share met as people read it, `75%`; none while nothing is met or missed.
    pub fn share_said(&self) -> Option<String> {
        self.share_met.map(|s| format!("{:.0}%", s * 100.0))
    }
}

/// A case opened: its severity and when AWS first replied.
pub(super) struct Opening {
    pub at: DateTime<Utc>,
    pub severity: Option<Severity>,
    pub first_reply: Option<DateTime<Utc>>,
}

/// Each severity's replies (all five, always, so the JSON has the same rows every month),
/// as they stood at `as_of`.
pub(super) fn replies<'a>(
    cases: impl Iterator<Item = &'a Opening> + Clone,
    targets: &ReplyTargets,
    as_of: DateTime<Utc>,
) -> Vec<Replies> {
    Severity::ALL
        .into_iter()
        .map(|severity| {
            let target = targets.of(severity);
            let these: Vec<&Opening> = cases
                .clone()
                .filter(|c| c.severity == Some(severity))
                .collect();
            let mut r = Replies {
                severity,
                target_seconds: target.map(|t| t.num_seconds()),
                cases: these.len(),
                replied: 0,
                met: 0,
                missed: 0,
                waiting: 0,
                share_met: None,
                time_to_first_reply: Spread::of(
                    these
                        .iter()
                        .filter_map(|c| c.first_reply.map(|r| (r - c.at).num_seconds()))
                        .collect(),
                ),
            };
            for c in these {
                let late = |t: DateTime<Utc>| target.is_some_and(|within| t - c.at > within);
                match c.first_reply {
                    Some(reply) => {
                        r.replied += 1;
                        match late(reply) {
                            true => r.missed += 1,
                            false if target.is_some() => r.met += 1,
                            false => {}
                        }
                    }
                    None if late(as_of) => r.missed += 1,
                    None => r.waiting += 1,
                }
            }
            let held = r.met + r.missed;
            r.share_met = (held > 0).then(|| r.met as f64 / held as f64);
            r
        })
        .collect()
}
