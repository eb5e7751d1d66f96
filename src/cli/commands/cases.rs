//! `cases ...` (the ledger and the desk's records), `process` (a preview that changes
//! nothing) and `redrive` (the dead-letter queue through the same path again).

use std::io::{Read, Write};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::backend::local::DryRunCase;
use crate::cli::{BackendKind, CasesCommand, Config};
use crate::inbound::delivery;
use crate::ports::desk::CaseInfo;
use crate::ports::ledger::{Decision, DecisionFilter};
use crate::ports::notify::OutboxState;

use anyhow::Context;

use super::{Usage, pretty, write_out};

pub(super) async fn cases(
    config: &Config,
    cmd: CasesCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let app = crate::cli::startup::build(config).await?;
    let backend = &app.backend;
    match cmd {
        CasesCommand::List { json, alarm, limit } => list(backend, json, alarm, limit, out).await,
        CasesCommand::Review { id, graph } => review(&app.cases, &id, graph, out).await,
        CasesCommand::Show { id, json } => {
            let view = CaseView::read(config, backend, &id).await?;
            match json {
                true => write_out(out, &pretty(&view.to_json())?),
                false => write_out(out, &crate::escape::printable(&view.to_text())),
            }
        }
    }
}

/// `cases review`: the draft on standard output; the graph, if asked for and attached, saved.
async fn review(
    cases: &crate::case::CaseService,
    id: &str,
    graph: Option<std::path::PathBuf>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    use crate::case::review::{ReviewFacts, markdown_draft};
    let facts = ReviewFacts::gather(cases, id)
        .await?
        .ok_or_else(|| anyhow::Error::msg(format!("no case {id:?} in the ledger")))?;
    let saved = match (&graph, &facts.graph) {
        (Some(path), Some(png)) => {
            std::fs::write(path, png)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some(path.display().to_string())
        }
        _ => None,
    };
    write!(out, "{}", markdown_draft(&facts, saved.as_deref()))?;
    Ok(())
}

/// `cases list`: the latest decisions, newest first, as a table or JSON.
async fn list(
    backend: &Backend,
    json: bool,
    alarm: Option<String>,
    limit: usize,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let filter = DecisionFilter {
        alarm_key: alarm,
        limit,
        ..Default::default()
    };
    let decisions = backend.ledger.decisions(&filter).await?;
    if json {
        return write_out(out, &pretty(&decisions)?);
    }
    if decisions.is_empty() {
        return write_out(out, "no decisions recorded yet");
    }
    let mut text = format!(
        "{:<6} {:<25} {:<10} {:<14} {:<8} {}",
        "SEQ", "AT", "OUTCOME", "CASE", "VIA", "ALARM"
    );
    for d in decisions {
        text.push_str(&format!(
            "\n{:<6} {:<25} {:<10} {:<14} {:<8} {} ({})",
            d.seq,
            d.at.format("%Y-%m-%dT%H:%M:%SZ"),
            d.outcome.as_str(),
            d.case_id.as_deref().unwrap_or("-"),
            d.delivery_kind,
            d.alarm_name,
            d.state
        ));
    }
    write_out(out, &crate::escape::printable(&text))
}

/// Everything `cases show` knows about one case, read once and then printed as text or
/// JSON: the decisions that touched it, the case as the desk has it (the dry-run desk's
/// record, or AWS Support's), and the notices told or still waiting about it.
struct CaseView {
    decisions: Vec<Decision>,
    recorded: Option<DryRunCase>,
    info: Option<CaseInfo>,
    notices: Vec<(DateTime<Utc>, Value)>,
    queued: Vec<OutboxState>,
}

impl CaseView {
    /// Reads the case, or says that nothing knows it.
    async fn read(config: &Config, backend: &Backend, id: &str) -> anyhow::Result<Self> {
        let filter = DecisionFilter {
            case_id: Some(id.to_owned()),
            ..Default::default()
        };
        let decisions = backend.ledger.decisions(&filter).await?;
        let recorded = match backend.local() {
            Some(local) => local.desk.case(id)?,
            None => None,
        };
        let info = match config.store.backend {
            BackendKind::Aws => backend.desk.case_info(id).await?,
            BackendKind::Local => None,
        };
        let notices = match backend.local() {
            Some(local) => local.notices.for_case(id)?,
            None => Vec::new(),
        };
        // Notices still queued, or given up, about the case (delivered ones leave the
        // outbox; on the embedded default they are listed below as told).
        let queued = backend.outbox.about_case(id).await?;
        if recorded.is_none() && info.is_none() && decisions.is_empty() {
            return Err(anyhow::Error::msg(format!("no case {id:?} in the ledger")));
        }
        Ok(CaseView {
            decisions,
            recorded,
            info,
            notices,
            queued,
        })
    }

    fn to_json(&self) -> Value {
        let case = match &self.recorded {
            Some(r) => json!(r),
            None => json!(self.info),
        };
        let told: Vec<_> = self
            .notices
            .iter()
            .map(|(at, n)| json!({"at": at, "notice": n}))
            .collect();
        json!({
            "case": case, "decisions": self.decisions, "notices": told, "outbox": self.queued,
        })
    }

    fn to_text(&self) -> String {
        let mut text = String::new();
        if let Some(i) = &self.info {
            text.push_str(&format!(
                "Case {} (display id {}), status {}\nSubject: {}\nSeverity: {}\n",
                i.case_id,
                i.display_id.as_deref().unwrap_or("-"),
                i.status,
                i.subject,
                i.severity_code.as_deref().unwrap_or("-")
            ));
        }
        if let Some(c) = &self.recorded {
            text.push_str(&recorded_text(c));
        }
        if !self.notices.is_empty() {
            text.push_str("\nTold (what the notifier would have sent):");
            for (at, n) in &self.notices {
                text.push_str(&format!(
                    "\n  {}  {}",
                    at.format("%Y-%m-%d %H:%M:%S"),
                    n["text"].as_str().unwrap_or_default()
                ));
            }
            text.push('\n');
        }
        if !self.queued.is_empty() {
            text.push_str("\nNotices not delivered:");
            for q in &self.queued {
                text.push_str(&format!(
                    "\n  {}  {} after {} attempt(s){}: {}",
                    q.queued_at.format("%Y-%m-%d %H:%M:%S"),
                    q.state,
                    q.attempts,
                    q.pending
                        .as_ref()
                        .map(|p| format!(" (to {})", p.join(", ")))
                        .unwrap_or_default(),
                    q.error.as_deref().unwrap_or("not tried yet")
                ));
            }
            text.push('\n');
        }
        text.push_str("\nDecisions:");
        for d in self.decisions.iter().rev() {
            text.push_str(&format!(
                "\n  #{} {} {} {} {}{}",
                d.seq,
                d.at.format("%Y-%m-%dT%H:%M:%SZ"),
                d.outcome.as_str(),
                d.state,
                d.state_change_time,
                d.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ));
        }
        text
    }
}

/// The case the dry-run desk recorded: what would have been sent to AWS Support, with its
/// graphs and later communications.
fn recorded_text(c: &DryRunCase) -> String {
    let cc: Vec<&str> = c
        .case
        .cc_email_addresses
        .iter()
        .map(|e| e.as_str())
        .collect();
    let mut text = format!(
        "Case {} ({}), recorded by the dry-run desk at {}\nSubject: {}\nSeverity: {}   Service: {}   Category: {}   Language: {}\nCc: {}\nOpened in: {}\n\n{}\n",
        c.case_id,
        if c.resolved { "resolved" } else { "open" },
        c.created_at.to_rfc3339(),
        c.case.subject,
        c.case.severity_code,
        c.case.service_code,
        c.case.category_code,
        c.case.language,
        if cc.is_empty() {
            "-".into()
        } else {
            cc.join(", ")
        },
        opened_in(&c.case),
        c.case.communication_body
    );
    for path in &c.attachments {
        text.push_str(&format!(
            "\nGraph (would be attached): {}\n",
            path.display()
        ));
    }
    for (i, comm) in c.communications.iter().enumerate() {
        text.push_str(&format!(
            "\n--- communication {} ---\n{}\n",
            i + 1,
            comm.communication_body
        ));
    }
    text
}

/// `redrive`: the dead-letter queue's messages through the same path again.
pub(super) async fn redrive(
    config: &Config,
    args: crate::cli::RedriveArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut app = crate::cli::startup::build(config).await?;
    let dlq = app.work_queue(config, &args.from).await;
    let state = app.into_state(config).await?;
    let report =
        crate::inbound::consumer::redrive(&state, &*dlq, args.dry_run, args.limit, out).await?;
    write_out(
        out,
        &format!(
            "{}handled {}, duplicate {}, still failing {}",
            if args.dry_run { "dry run: " } else { "" },
            report.handled,
            report.duplicate,
            report.failing
        ),
    )?;
    match report.failing {
        0 => Ok(()),
        n => Err(anyhow::Error::msg(format!(
            "{n} message(s) still failing: left in the dead-letter queue"
        ))),
    }
}

pub async fn process(config: &Config, file: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let body = if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {file}"))?
    };
    let received = delivery::receive(&HeaderMap::new(), &body)
        .map_err(|e| Usage(format!("{}: {e}", e.code())))?;
    let (delivery, message) = received
        .into_message()
        .map_err(|e| Usage(format!("{}: {e}", e.code())))?;
    let report = crate::cli::startup::build(config)
        .await?
        .cases
        .preview(&delivery, &message)
        .await?;
    write_out(out, &pretty(&report)?)
}

/// Where the aws backend would open (and later address) this case: the account the alarm
/// came from with the role `ACCOUNT_ROLES` maps it to, or the service's own account.
fn opened_in(case: &crate::ports::desk::NewCase) -> String {
    match (&case.account, &case.account_role) {
        (Some(account), Some(role)) => format!(
            "account {account}, as {role} (ACCOUNT_ROLES: STS AssumeRole); later calls about the case go there too"
        ),
        (Some(account), None) => format!(
            "the service's own account, with its own credentials (the alarm came from {account}, which ACCOUNT_ROLES does not map)"
        ),
        (None, _) => "the service's own account, with its own credentials".to_owned(),
    }
}
