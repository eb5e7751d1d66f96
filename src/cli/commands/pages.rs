//! `pages` and `callouts`: the pages the service opened (list, show), what a person does to
//! one (acknowledge, escalate, resolve; each recorded with who, when and how), and the
//! month's callouts for remuneration.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::{Usage, pretty, write_out};
use crate::cli::{CalloutsCommand, Config, PagesCommand};
use crate::domain::page::{PageId, Via};
use crate::oncall::file::{self, OnCall};
use crate::paging::callouts::{self, Month};
use crate::paging::engine::Pager;
use crate::ports::pages::{Acted, Action, PageRecord, PageSummary};

async fn pager(config: &Config) -> anyhow::Result<(Arc<Pager>, OnCall)> {
    let app = crate::cli::startup::build(config).await?;
    let pager = app.cases.pager().cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "this backend keeps no pages yet: pages run on the embedded default (BACKEND=local)"
        )
    })?;
    let on_call = match app.backend.config.on_call().await? {
        Some(text) => file::import(&text).context("the saved on-duty file no longer reads")?,
        None => OnCall::default(),
    };
    Ok((pager, on_call))
}

fn page_id(s: &str) -> Result<PageId, Usage> {
    s.parse().map_err(Usage)
}

/// A person named on the command line must be one of the on-duty file's.
fn person(on_call: &OnCall, by: &str) -> Result<String, Usage> {
    match on_call.people.iter().any(|p| p.id.as_str() == by) {
        true => Ok(by.to_owned()),
        false => Err(Usage(format!(
            "{by:?} is not a person of the on-duty file (oncall export lists them)"
        ))),
    }
}

pub(super) async fn pages(
    config: &Config,
    cmd: PagesCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (pager, on_call) = pager(config).await?;
    let ledger = pager.ledger();
    let (id, action) = match cmd {
        PagesCommand::List { live, limit, json } => {
            let pages = ledger.pages(live, limit).await?;
            return match json {
                true => write_out(out, &pretty(&pages)?),
                false => write_out(out, &list_text(&pages)),
            };
        }
        PagesCommand::Show { id, json } => {
            let id = page_id(&id)?;
            let record = ledger
                .page(id)
                .await?
                .ok_or_else(|| Usage(format!("no page {id}")))?;
            return match json {
                true => write_out(out, &pretty(&record)?),
                false => write_out(out, &show_text(&record)),
            };
        }
        PagesCommand::Ack { id, by } => (
            id,
            Action::Acknowledge {
                by: person(&on_call, &by)?,
                via: Via::Command,
            },
        ),
        PagesCommand::Escalate { id, by } => (
            id,
            Action::Escalate {
                by: by.map(|b| person(&on_call, &b)).transpose()?,
                via: Via::Command,
            },
        ),
        PagesCommand::Resolve { id, by } => (
            id,
            Action::Resolve {
                by: by.map(|b| person(&on_call, &b)).transpose()?,
                via: Via::Command,
            },
        ),
    };
    let id = page_id(&id)?;
    let what = match &action {
        Action::Acknowledge { .. } => "acknowledged",
        Action::Escalate { .. } => "escalated: its next stage is due now",
        Action::Resolve { .. } => "resolved",
    };
    match pager.act(id, action).await? {
        Acted::Done(p) => write_out(out, &format!("page {id} {what} ({})", p.state.as_str())),
        Acted::Refused(state) => Err(Usage(format!(
            "page {id} is {}: it cannot be {}",
            state.as_str(),
            what.split(':').next().unwrap_or(what)
        ))
        .into()),
        Acted::NoSuchPage => Err(Usage(format!("no page {id}")).into()),
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn list_text(pages: &[PageSummary]) -> String {
    if pages.is_empty() {
        return "no pages".into();
    }
    let mut t = format!(
        "{:>6}  {:<13} {:<12} {:<23} alarm\n",
        "page", "state", "owner", "opened"
    );
    for p in pages {
        t.push_str(&format!(
            "{:>6}  {:<13} {:<12} {:<23} {}\n",
            p.id.to_string(),
            p.state.as_str(),
            p.owner.as_deref().unwrap_or("-"),
            time(p.opened_at),
            crate::escape::printable(&p.alarm)
        ));
    }
    t.trim_end().to_owned()
}

fn show_text(r: &PageRecord) -> String {
    let p = &r.page;
    let mut t = format!(
        "page {}: {}\nstate: {}{}\npolicy: {}\nopened: {}\n",
        p.id,
        crate::escape::printable(&p.summary),
        p.state.as_str(),
        p.owner
            .as_deref()
            .map(|o| format!(" (owner: {o})"))
            .unwrap_or_default(),
        p.policy,
        time(p.opened_at)
    );
    if let Some(next) = p.next_at {
        t.push_str(&format!("next step: {}\n", time(next)));
    }
    t.push_str(&format!("\nmessages ({}):\n", r.messages.len()));
    for m in &r.messages {
        let stage = m
            .stage
            .map(|s| format!("stage {s}"))
            .unwrap_or("told".into());
        t.push_str(&format!(
            "  {}  {:<8} {:<7} {:<10} {} → {}\n      {}\n",
            time(m.at),
            stage,
            m.channel.as_str(),
            m.state,
            m.person,
            m.to,
            crate::escape::printable(&m.text)
        ));
    }
    t.push_str("\ntimeline:\n");
    for e in &r.timeline {
        t.push_str(&format!(
            "  {}  {}\n",
            time(e.at),
            crate::escape::printable(&e.text)
        ));
    }
    t.trim_end().to_owned()
}

pub(super) async fn callouts(
    config: &Config,
    cmd: CalloutsCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let CalloutsCommand::Report { month, csv, json } = cmd;
    let month = Month::parse(&month).map_err(Usage)?;
    let (pager, on_call) = pager(config).await?;
    let (from, until) = month.widest();
    let made = pager.ledger().callouts(from, until).await?;
    let rows = callouts::report(&on_call, &made, month);
    if csv {
        return write!(out, "{}", callouts::csv(&rows)).context("writing to standard output");
    }
    if json {
        return write_out(
            out,
            &pretty(&serde_json::json!({ "month": month.text(), "people": rows }))?,
        );
    }
    let mut t = format!(
        "callouts in {} (each person's month, in their zone)\n{:<16} {:>9} {:>10} {:>14}\n",
        month.text(),
        "person",
        "callouts",
        "off-hours",
        "hours on duty"
    );
    for r in &rows {
        t.push_str(&format!(
            "{:<16} {:>9} {:>10} {:>14.2}\n",
            r.person, r.callouts, r.off_hours_callouts, r.on_duty_hours
        ));
    }
    write_out(out, t.trim_end())
}
