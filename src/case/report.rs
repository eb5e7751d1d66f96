//! How well support worked over a span (issue 29): cases opened, pages and what became of
//! them, time to acknowledge and to resolve (median and 90th percentile), and the noisiest
//! alarms (pages and cases each, and how many of its cases recovered by themselves within
//! minutes). Plain code over what the ledgers hold; `report` gathers it and prints it.
//! The JSON field names are stable (README, "How well does support work?").

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::outcome::Outcome;
use crate::domain::page::PageState;
use crate::ports::ledger::Decision;
use crate::ports::pages::PageSummary;

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
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Noisy {
    pub alarm: String,
    pub pages: usize,
    pub cases: usize,
    pub recovered_by_themselves: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub cases: Cases,
    pub pages: Pages,
    pub noisiest: Vec<Noisy>,
}

fn within(t: DateTime<Utc>, from: DateTime<Utc>, until: DateTime<Utc>) -> bool {
    from <= t && t < until
}

/// Decisions and pages read at most for one report.
const MOST: usize = 1_000_000;

/// What the service's ledgers hold since an instant: the decisions since then and every
/// page. Read once, reported over as many spans from then on as wanted.
pub struct History {
    decisions: Vec<Decision>,
    pages: Vec<PageSummary>,
}

impl History {
    pub async fn since(
        cases: &super::CaseService,
        since: DateTime<Utc>,
    ) -> Result<Self, crate::ports::ledger::LedgerError> {
        let filter = crate::ports::ledger::DecisionFilter {
            since: Some(since),
            limit: MOST,
            ..Default::default()
        };
        let decisions = cases.ledger().decisions(&filter).await?;
        let pages = match cases.pager() {
            Some(pager) => pager.ledger().pages(false, MOST).await?,
            None => Vec::new(),
        };
        Ok(Self { decisions, pages })
    }

    /// The report over `[from, until)` (`from` no earlier than the history's start).
    pub fn report(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Report {
        report(&self.decisions, &self.pages, from, until)
    }
}

/// The report over `[from, until)`: pages opened in it, cases opened in it (each
/// recovery looked for among `decisions`, which may reach past `until`).
pub fn report(
    decisions: &[Decision],
    pages: &[PageSummary],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Report {
    let pages: Vec<&PageSummary> = pages
        .iter()
        .filter(|p| within(p.opened_at, from, until))
        .collect();
    let count = |f: &dyn Fn(&PageSummary) -> bool| pages.iter().filter(|p| f(p)).count();
    let spread = |end: &dyn Fn(&PageSummary) -> Option<DateTime<Utc>>| {
        Spread::of(
            pages
                .iter()
                .filter_map(|p| end(p).map(|t| (t - p.opened_at).num_seconds()))
                .collect(),
        )
    };
    let page_figures = Pages {
        opened: pages.len(),
        acknowledged: count(&|p| p.acknowledged_at.is_some()),
        unanswered: count(&|p| p.state == PageState::Unanswered),
        resolved: count(&|p| p.state == PageState::Resolved),
        live: count(&|p| p.state.is_live()),
        time_to_acknowledge: spread(&|p| p.acknowledged_at),
        time_to_resolve: spread(&|p| p.resolved_at),
    };
    let opened = cases_opened(decisions, from, until);
    let noisiest = noisiest(&pages, &opened);
    Report {
        from,
        until,
        cases: Cases {
            opened: opened.len(),
            recovered_by_themselves: opened.values().filter(|(_, _, b)| *b).count(),
        },
        pages: page_figures,
        noisiest,
    }
}

/// Each case opened in the span: its alarm, when, and whether it recovered by itself.
fn cases_opened(
    decisions: &[Decision],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> BTreeMap<&str, (&str, DateTime<Utc>, bool)> {
    let mut opened: BTreeMap<&str, (&str, DateTime<Utc>, bool)> = BTreeMap::new();
    for d in decisions.iter().filter(|d| d.outcome == Outcome::Created) {
        if let Some(case) = d.case_id.as_deref()
            && within(d.at, from, until)
        {
            opened.entry(case).or_insert((&d.alarm_name, d.at, false));
        }
    }
    for d in decisions.iter().filter(|d| d.outcome == Outcome::Recovered) {
        if let Some((_, at, by_itself)) = d.case_id.as_deref().and_then(|c| opened.get_mut(c))
            && d.at >= *at
            && d.at - *at <= RECOVERED_BY_ITSELF
        {
            *by_itself = true;
        }
    }
    opened
}

/// The alarms with the most pages and cases, the most first.
fn noisiest(
    pages: &[&PageSummary],
    opened: &BTreeMap<&str, (&str, DateTime<Utc>, bool)>,
) -> Vec<Noisy> {
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
    for (alarm, _, by_itself) in opened.values() {
        let n = entry(&mut noisy, alarm);
        n.cases += 1;
        n.recovered_by_themselves += usize::from(*by_itself);
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

#[cfg(test)]
mod tests;
