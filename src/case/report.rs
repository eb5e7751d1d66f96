//! How well support worked over a span (issue 29): cases opened (by severity), pages and
//! what became of them, time to acknowledge and to resolve (median and 90th percentile),
//! AWS's first reply against the support plan's target per severity, the noisiest alarms
//! (pages and cases each, and how many of its cases recovered by themselves within
//! minutes) and each person's callouts. Plain code over what the ledgers hold; `report`
//! gathers it and prints it.
//! The JSON field names are stable (README, "How well does support work?").

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::outcome::Outcome;
use crate::domain::page::PageState;
use crate::domain::settings::Severity;
use crate::ports::ledger::Decision;
use crate::ports::pages::{Callout, PageSummary};

mod replies;
pub use replies::{DEFAULT_TARGETS, Replies, ReplyTargets};
use replies::{Opening, replies};

/// A case that recovers within this long of opening recovered by itself: nobody could have
/// acted on it.
pub const RECOVERED_BY_ITSELF: Duration = Duration::minutes(10);
/// How many of the noisiest alarms are listed.
pub const NOISIEST: usize = 10;

/// A duration's median and 90th percentile (nearest rank), in seconds; none without data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub count: usize,
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

impl Spread {
    /// "median 60 s, p90 300 s (of 3)"; none without data.
    pub fn said(&self) -> Option<String> {
        Some(format!(
            "median {} s, p90 {} s (of {})",
            self.median_seconds?, self.p90_seconds?, self.count
        ))
    }

    pub fn of(mut seconds: Vec<i64>) -> Self {
        seconds.sort_unstable();
        let rank = |p: f64| -> Option<i64> {
            let n = seconds.len();
            // Nearest rank: the smallest value with at least p of the values at or below it.
            let k = ((p * n as f64).ceil() as usize).clamp(1, n.max(1));
            seconds.get(k - 1).copied()
        };
        Self {
            count: seconds.len(),
            median_seconds: rank(0.5),
            p90_seconds: rank(0.9),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pages {
    pub opened: usize,
    pub acknowledged: usize,
    pub unanswered: usize,
    pub resolved: usize,
    /// Still open or acknowledged when the report was made.
    pub live: usize,
    pub time_to_acknowledge: Spread,
    pub time_to_resolve: Spread,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cases {
    pub opened: usize,
    /// Of those, recovered within [`RECOVERED_BY_ITSELF`] of opening.
    pub recovered_by_themselves: usize,
    pub by_severity: BySeverity,
}

/// Cases opened, by the severity they were opened with (`unknown`: opened before cases kept
/// it, or recovered at start).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BySeverity {
    pub low: usize,
    pub normal: usize,
    pub high: usize,
    pub urgent: usize,
    pub critical: usize,
    pub unknown: usize,
}

impl BySeverity {
    fn count(&mut self, severity: Option<Severity>) {
        *match severity {
            Some(Severity::Low) => &mut self.low,
            Some(Severity::Normal) => &mut self.normal,
            Some(Severity::High) => &mut self.high,
            Some(Severity::Urgent) => &mut self.urgent,
            Some(Severity::Critical) => &mut self.critical,
            None => &mut self.unknown,
        } += 1;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Noisy {
    pub alarm: String,
    pub pages: usize,
    pub cases: usize,
    pub recovered_by_themselves: usize,
}

/// One person's callouts in the span (the first message of a page to them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Callouts {
    pub person: String,
    pub callouts: usize,
    /// Of those, outside their working hours.
    pub off_hours: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub cases: Cases,
    pub pages: Pages,
    /// AWS Support's first replies, per severity (all five, always).
    pub aws_replies: Vec<Replies>,
    pub noisiest: Vec<Noisy>,
    /// Per person, the most called out first.
    pub callouts: Vec<Callouts>,
}

fn within(t: DateTime<Utc>, from: DateTime<Utc>, until: DateTime<Utc>) -> bool {
    from <= t && t < until
}

/// Decisions and pages read at most for one report.
const MOST: usize = 1_000_000;

/// What the service's ledgers hold since an instant: the decisions since then, every page
/// and the callouts. Read once, reported over as many spans from then on as wanted.
pub struct History {
    decisions: Vec<Decision>,
    pages: Vec<PageSummary>,
    callouts: Vec<Callout>,
    /// When it was read: what had not happened by then (a reply) has not happened.
    read_at: DateTime<Utc>,
    targets: ReplyTargets,
}

impl History {
    pub async fn since(
        cases: &super::CaseService,
        since: DateTime<Utc>,
    ) -> Result<Self, crate::ports::ledger::LedgerError> {
        let read_at = (cases.clock)();
        let filter = crate::ports::ledger::DecisionFilter {
            since: Some(since),
            limit: MOST,
            ..Default::default()
        };
        let decisions = cases.ledger().decisions(&filter).await?;
        let (pages, callouts) = match cases.pager() {
            Some(pager) => (
                pager.ledger().pages_since(since, MOST).await?,
                pager
                    .ledger()
                    .callouts(since, read_at + Duration::days(1))
                    .await?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Self {
            decisions,
            pages,
            callouts,
            read_at,
            targets: cases.policy.reply_targets.clone(),
        })
    }

    /// The report over `[from, until)` (`from` no earlier than the history's start): pages
    /// and callouts in it, cases opened in it (their recovery and AWS's first reply looked
    /// for among every decision read, which may reach past `until`).
    pub fn report(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Report {
        let pages: Vec<&PageSummary> = self
            .pages
            .iter()
            .filter(|p| within(p.opened_at, from, until))
            .collect();
        let opened = cases_opened(&self.decisions, from, until);
        let mut by_severity = BySeverity::default();
        for c in opened.values() {
            by_severity.count(c.opening.severity);
        }
        Report {
            from,
            until,
            cases: Cases {
                opened: opened.len(),
                recovered_by_themselves: opened.values().filter(|c| c.by_itself).count(),
                by_severity,
            },
            pages: page_figures(&pages),
            aws_replies: replies(
                opened.values().map(|c| &c.opening),
                &self.targets,
                until.min(self.read_at),
            ),
            noisiest: noisiest(&pages, &opened),
            callouts: callouts(&self.callouts, from, until),
        }
    }
}

fn page_figures(pages: &[&PageSummary]) -> Pages {
    let count = |f: &dyn Fn(&PageSummary) -> bool| pages.iter().filter(|p| f(p)).count();
    let spread = |end: &dyn Fn(&PageSummary) -> Option<DateTime<Utc>>| {
        Spread::of(
            pages
                .iter()
                .filter_map(|p| end(p).map(|t| (t - p.opened_at).num_seconds()))
                .collect(),
        )
    };
    Pages {
        opened: pages.len(),
        acknowledged: count(&|p| p.acknowledged_at.is_some()),
        unanswered: count(&|p| p.state == PageState::Unanswered),
        resolved: count(&|p| p.state == PageState::Resolved),
        live: count(&|p| p.state.is_live()),
        time_to_acknowledge: spread(&|p| p.acknowledged_at),
        time_to_resolve: spread(&|p| p.resolved_at),
    }
}

/// A case opened in the span.
struct Opened<'a> {
    alarm: &'a str,
    opening: Opening,
    /// Recovered within [`RECOVERED_BY_ITSELF`].
    by_itself: bool,
}

/// When AWS replied: the event's own time, else when it was received.
pub(super) fn replied_at(d: &Decision) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&d.state_change_time)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(d.at)
}

/// Each case opened in the span, by id.
fn cases_opened(
    decisions: &[Decision],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> BTreeMap<&str, Opened<'_>> {
    let mut opened: BTreeMap<&str, Opened<'_>> = BTreeMap::new();
    for d in decisions.iter().filter(|d| d.outcome == Outcome::Created) {
        if let Some(case) = d.case_id.as_deref()
            && within(d.at, from, until)
        {
            opened.entry(case).or_insert(Opened {
                alarm: &d.alarm_name,
                opening: Opening {
                    at: d.at,
                    severity: d.severity,
                    first_reply: None,
                },
                by_itself: false,
            });
        }
    }
    for d in decisions {
        let Some(c) = d.case_id.as_deref().and_then(|c| opened.get_mut(c)) else {
            continue;
        };
        let at = c.opening.at;
        match d.outcome {
            Outcome::Recovered if d.at >= at && d.at - at <= RECOVERED_BY_ITSELF => {
                c.by_itself = true;
            }
            Outcome::Replied => {
                let t = replied_at(d).max(at);
                if c.opening.first_reply.is_none_or(|first| t < first) {
                    c.opening.first_reply = Some(t);
                }
            }
            _ => {}
        }
    }
    opened
}

/// The alarms with the most pages and cases, the most first.
fn noisiest(pages: &[&PageSummary], opened: &BTreeMap<&str, Opened<'_>>) -> Vec<Noisy> {
    fn entry<'a>(noisy: &'a mut BTreeMap<String, Noisy>, alarm: &str) -> &'a mut Noisy {
        noisy.entry(alarm.to_owned()).or_insert_with(|| Noisy {
            alarm: alarm.to_owned(),
            pages: 0,
            cases: 0,
            recovered_by_themselves: 0,
        })
    }
    let mut noisy: BTreeMap<String, Noisy> = BTreeMap::new();
    for p in pages {
        entry(&mut noisy, &p.alarm).pages += 1;
    }
    for c in opened.values() {
        let n = entry(&mut noisy, c.alarm);
        n.cases += 1;
        n.recovered_by_themselves += usize::from(c.by_itself);
    }
    let mut noisiest: Vec<Noisy> = noisy.into_values().collect();
    noisiest.sort_by(|a, b| {
        (b.pages + b.cases)
            .cmp(&(a.pages + a.cases))
            .then_with(|| a.alarm.cmp(&b.alarm))
    });
    noisiest.truncate(NOISIEST);
    noisiest
}

/// Each person's callouts in the span, the most first.
fn callouts(all: &[Callout], from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Callouts> {
    let mut per: BTreeMap<&str, Callouts> = BTreeMap::new();
    for c in all.iter().filter(|c| within(c.at, from, until)) {
        let p = per.entry(&c.person).or_insert_with(|| Callouts {
            person: c.person.clone(),
            callouts: 0,
            off_hours: 0,
        });
        p.callouts += 1;
        p.off_hours += usize::from(c.off_hours);
    }
    let mut list: Vec<Callouts> = per.into_values().collect();
    list.sort_by(|a, b| {
        b.callouts
            .cmp(&a.callouts)
            .then_with(|| a.person.cmp(&b.person))
    });
    list
}

#[cfg(test)]
mod tests;
