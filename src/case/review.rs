//! `cases review ID`: the draft of a post-incident review, in Markdown (issue 29). The
//! timeline is what the ledgers and the desk recorded: the alarm firing, the case opened,
//! each page with its steps and acknowledgement, each AWS reply, the recovery and the
//! resolution, each with its time and how long after the alarm fired; then the people
//! involved, the metric graph, and headings for the team to fill in (cause, actions).
//! Every text from outside (alarm names, replies) is escaped for Markdown.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::CaseService;
use crate::domain::alarm::StateChangeTime;
use crate::domain::outcome::Outcome;
use crate::escape::markdown;
use crate::ports::desk::CaseMessage;
use crate::ports::ledger::{Decision, DecisionFilter, LedgerError};
use crate::ports::pages::PageRecord;

/// Pages looked through for the case's alarms, and decisions read about one case, at most.
const MOST: usize = 10_000;
/// Pages opened this long before the case count as its own (a page raised first, the case
/// opened after its cooldown).
const BEFORE: Duration = Duration::hours(1);
/// An AWS reply shown in the timeline: its first characters.
const EXCERPT: usize = 160;

/// What a review is drawn from.
pub struct ReviewFacts {
    pub case_id: String,
    /// Oldest first.
    pub decisions: Vec<Decision>,
    pub pages: Vec<PageRecord>,
    pub communications: Vec<CaseMessage>,
    /// The graph attached when the case was opened (PNG), if the desk has it.
    pub graph: Option<Vec<u8>>,
    /// What could not be read (the desk), said in the draft.
    pub gaps: Vec<String>,
    pub made_at: DateTime<Utc>,
}

impl ReviewFacts {
    /// Everything recorded about the case; none when the ledger has no decision on it.
    pub async fn gather(cases: &CaseService, id: &str) -> Result<Option<Self>, LedgerError> {
        let filter = DecisionFilter {
            case_id: Some(id.to_owned()),
            limit: MOST,
            ..Default::default()
        };
        let mut decisions = cases.ledger().decisions(&filter).await?;
        if decisions.is_empty() {
            return Ok(None);
        }
        decisions.sort_by_key(|d| (d.at, d.seq));
        let made_at = (cases.clock)();
        let alarms: BTreeSet<&str> = decisions.iter().map(|d| d.alarm_name.as_str()).collect();
        let from = decisions[0].at - BEFORE;
        let until = decisions
            .iter()
            .find(|d| d.outcome == Outcome::Closed)
            .map_or(made_at, |d| d.at);
        let mut pages = Vec::new();
        if let Some(pager) = cases.pager() {
            for p in pager.ledger().pages_since(from, MOST).await? {
                if alarms.contains(p.alarm.as_str()) && from <= p.opened_at && p.opened_at <= until
                {
                    pages.extend(pager.ledger().page(p.id).await?);
                }
            }
        }
        pages.sort_by_key(|p| p.page.opened_at);
        let mut gaps = Vec::new();
        let communications = cases.desk().communications(id).await.unwrap_or_else(|e| {
            gaps.push(format!("the case's communications could not be read ({e})"));
            Vec::new()
        });
        let graph = match cases.desk().graph(id).await {
            Ok(g) => g.map(|a| a.data),
            Err(e) => {
                gaps.push(format!("the graph could not be read ({e})"));
                None
            }
        };
        Ok(Some(Self {
            case_id: id.to_owned(),
            decisions,
            pages,
            communications,
            graph,
            gaps,
            made_at,
        }))
    }
}

/// `1 h 05 min`, `4 min 10 s`, `35 s`.
fn took(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s:02} s"),
        (h, m, _) => format!("{h} h {m:02} min"),
    }
}

/// One line of the timeline.
struct Line {
    at: DateTime<Utc>,
    what: String,
}

/// What a decision on the case says happened.
fn decision_line(d: &Decision) -> Option<String> {
    let alarm = markdown(&d.alarm_name);
    Some(match d.outcome {
        Outcome::Created => format!(
            "case opened for {alarm}{}",
            d.severity
                .map(|s| format!(", severity {s}"))
                .unwrap_or_default()
        ),
        Outcome::Updated => format!("{alarm} in ALARM again: the case was updated"),
        Outcome::Coalesced => format!("{alarm} in ALARM again: counted on the case"),
        Outcome::Folded => format!("{alarm} folded into this (storm) case"),
        Outcome::Recovered => format!("{alarm} back to OK: recovered"),
        Outcome::Replied => "AWS Support replied".into(),
        Outcome::Closed => "case resolved".into(),
        Outcome::Reopened => "case reopened at AWS".into(),
        Outcome::Paged => format!("{alarm}: the people on duty paged"),
        Outcome::Duplicate | Outcome::Noted => return None,
        other => format!("{alarm}: {}", other.as_str()),
    })
}

/// When AWS replied: the event's time, never before the case was opened (an event's time
/// has whole seconds).
fn reply_at(f: &ReviewFacts, d: &Decision) -> DateTime<Utc> {
    let t = super::report::replied_at(d);
    match f.decisions.iter().find(|d| d.outcome == Outcome::Created) {
        Some(opened) => t.max(opened.at),
        None => t,
    }
}

/// The timeline: decisions, pages' steps, AWS's communications, by time.
fn timeline(f: &ReviewFacts) -> Vec<Line> {
    let mut lines = Vec::new();
    if let Some(fired) = f
        .decisions
        .iter()
        .find(|d| d.outcome == Outcome::Created)
        .and_then(|d| StateChangeTime::new(&d.state_change_time).parsed)
    {
        lines.push(Line {
            at: fired,
            what: "the alarm fired".into(),
        });
    }
    for d in &f.decisions {
        if let Some(what) = decision_line(d) {
            let at = match d.outcome {
                Outcome::Replied => reply_at(f, d),
                _ => d.at,
            };
            lines.push(Line { at, what });
        }
    }
    for p in &f.pages {
        for t in &p.timeline {
            lines.push(Line {
                at: t.at,
                what: format!("page {}: {}", p.page.id, markdown(&t.text)),
            });
        }
    }
    for c in f.communications.iter().skip(1) {
        let excerpt: String = c.body.chars().take(EXCERPT).collect();
        let more = if c.body.chars().count() > EXCERPT {
            "…"
        } else {
            ""
        };
        lines.push(Line {
            at: c.at,
            what: format!("{} wrote: {}{more}", markdown(&c.by), markdown(&excerpt)),
        });
    }
    lines.sort_by_key(|l| l.at);
    lines
}

/// The draft, in Markdown; `graph` is the file the graph was saved to, if it was.
pub fn markdown_draft(f: &ReviewFacts, graph: Option<&str>) -> String {
    let lines = timeline(f);
    let start = lines.first().map_or(f.made_at, |l| l.at);
    let alarms: BTreeSet<&str> = f.decisions.iter().map(|d| d.alarm_name.as_str()).collect();
    let alarms: Vec<String> = alarms.into_iter().map(markdown).collect();
    let mut out = format!(
        "# Post-incident review: case {}\n\n_Draft made {} from the service's records; the headings at the end are yours._\n\n\
         Alarm(s): {}\n\n## Summary\n\n",
        markdown(&f.case_id),
        f.made_at.format("%Y-%m-%d %H:%M UTC"),
        alarms.join(", "),
    );
    for (what, at) in figures(f) {
        let after = at.map_or_else(|| "not yet".to_owned(), |t| took(t - start));
        out.push_str(&format!("- {what}: {after}\n"));
    }
    out.push_str("\n## Timeline\n\n| When (UTC) | After | What |\n|---|---|---|\n");
    for l in &lines {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            l.at.format("%Y-%m-%d %H:%M:%S"),
            took(l.at - start),
            l.what
        ));
    }
    out.push_str("\n## People involved\n\n");
    let people = people(f);
    if people.is_empty() {
        out.push_str("Nobody was paged.\n");
    }
    for p in people {
        out.push_str(&format!("- {p}\n"));
    }
    out.push_str("\n## Metric graph\n\n");
    out.push_str(&match (graph, &f.graph) {
        (Some(file), _) => format!(
            "![The alarm's metric when the case was opened]({})\n",
            markdown(file)
        ),
        (None, Some(_)) => {
            "A graph was attached to the case: `cases review ID --graph FILE` saves it.\n".into()
        }
        (None, None) => "None was attached to the case.\n".into(),
    });
    for gap in &f.gaps {
        out.push_str(&format!("\n_Note: {}._\n", markdown(gap)));
    }
    out.push_str(
        "\n## What happened\n\n_Describe the impact: who or what was affected, and for how long._\n\n\
         ## Cause\n\n_The cause, and how it was found._\n\n\
         ## What went well, what did not\n\n- \n\n\
         ## Actions\n\n| Action | Owner | Due |\n|---|---|---|\n|  |  |  |\n",
    );
    out
}

/// The review's headline figures: when each first happened (none: not yet).
fn figures(f: &ReviewFacts) -> Vec<(&'static str, Option<DateTime<Utc>>)> {
    let first = |o: Outcome| f.decisions.iter().find(|d| d.outcome == o);
    let acked = f.pages.iter().filter_map(|p| p.page.acknowledged_at).min();
    vec![
        ("Case opened", first(Outcome::Created).map(|d| d.at)),
        ("First acknowledged", acked),
        (
            "AWS Support's first reply",
            f.decisions
                .iter()
                .filter(|d| d.outcome == Outcome::Replied)
                .map(|d| reply_at(f, d))
                .min(),
        ),
        (
            "Recovered (alarm back to OK)",
            first(Outcome::Recovered).map(|d| d.at),
        ),
        ("Resolved", first(Outcome::Closed).map(|d| d.at)),
    ]
}

/// Who was called, and who acknowledged.
fn people(f: &ReviewFacts) -> Vec<String> {
    let mut called: Vec<&str> = Vec::new();
    // The messages of a stage are callouts; what is told to everyone afterwards, and the
    // case told who owns the page, are not.
    let callouts = f
        .pages
        .iter()
        .flat_map(|p| &p.messages)
        .filter(|m| m.stage.is_some() && m.channel != crate::domain::page::Channel::Case);
    for m in callouts {
        if !called.contains(&m.person.as_str()) {
            called.push(&m.person);
        }
    }
    called
        .into_iter()
        .map(|person| {
            let acked = f
                .pages
                .iter()
                .filter(|p| {
                    p.page.owner.as_deref() == Some(person) && p.page.acknowledged_at.is_some()
                })
                .map(|p| format!("page {}", p.page.id))
                .collect::<Vec<_>>();
            match acked.is_empty() {
                true => format!("{}: called", markdown(person)),
                false => format!(
                    "{}: called; acknowledged {}",
                    markdown(person),
                    acked.join(", ")
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
