//! The subcommands: `serve`, `alarms ...`, `cases ...` and `process`. Each opens the
//! configured backend and does one thing; output goes to standard output, logs to standard
//! error, and the exit status says whether it worked.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::http::HeaderMap;
use serde_json::json;

use tracing::{error, info, warn};

use crate::alarm_config::{AlarmConfigRecord, CcField};
use crate::backend::Backend;
use crate::backend::aws::{AwsClients, dynamo};
use crate::cli::{
    AlarmPut, AlarmsCommand, BackendKind, CasesCommand, Cli, Command, Config, MaintenanceCommand,
    TablesCommand,
};
use crate::delivery;
use crate::ledger::DecisionFilter;
use crate::maintenance::MaintenanceWindow;
use crate::server;

/// A command's failure: printed on standard error, exit status 1 (2 for bad input).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

impl From<crate::startup::StartupError> for CommandError {
    fn from(e: crate::startup::StartupError) -> Self {
        match e {
            crate::startup::StartupError::Config(why) => Self::Usage(why),
            other => Self::Failed(crate::startup::chain(&other)),
        }
    }
}

fn failed(e: impl std::fmt::Display) -> CommandError {
    CommandError::Failed(e.to_string())
}

pub async fn run(cli: Cli) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let result = match cli.command.unwrap_or(Command::Serve { consume: false }) {
        Command::Serve { consume } => {
            serve(
                &cli.config,
                Mode {
                    http: true,
                    consume,
                },
            )
            .await
        }
        Command::Consume => {
            serve(
                &cli.config,
                Mode {
                    http: false,
                    consume: true,
                },
            )
            .await
        }
        Command::Redrive(args) => redrive(&cli.config, args, &mut out).await,
        Command::Alarms(cmd) => alarms(&cli.config, cmd, &mut out).await,
        Command::Cases(cmd) => cases(&cli.config, cmd, &mut out).await,
        Command::Process { file } => process(&cli.config, &file, &mut out).await,
        Command::Tables(TablesCommand::Create) => tables_create(&cli.config, &mut out).await,
        Command::Check => check(&cli.config, &mut out).await,
        Command::Maintenance(cmd) => maintenance(&cli.config, cmd, &mut out).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                CommandError::Usage(_) => ExitCode::from(2),
                CommandError::Failed(_) => ExitCode::FAILURE,
            }
        }
    }
}

/// What `serve` runs: the HTTP endpoint (`/serviceme`; off: only `/healthz`), the SQS
/// consumer, or both.
#[derive(Debug, Clone, Copy)]
struct Mode {
    http: bool,
    consume: bool,
}

/// An SQS client for QUEUE_URL (region DBREGION, endpoint from the SDK's chain), whatever
/// the backend: the local backend can consume a queue too.
async fn sqs_client(config: &Config) -> aws_sdk_sqs::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(config.dbregion.clone()))
        .load()
        .await;
    aws_sdk_sqs::Client::new(&sdk)
}

async fn serve(config: &Config, mode: Mode) -> Result<(), CommandError> {
    let queue_url = match (mode.consume, &config.queue_url) {
        (true, None) => {
            return Err(CommandError::Usage(
                "consuming needs QUEUE_URL (or --queue-url): the SQS queue to read".into(),
            ));
        }
        (true, Some(url)) => Some(url.clone()),
        (false, _) => None,
    };
    let tokens = config.api_tokens().map_err(CommandError::Usage)?;
    config.account_roles().map_err(CommandError::Usage)?;
    // One serving process per local data directory: then every claim found at start was
    // left by a process that stopped, and is settled now rather than after its lease.
    let _lock = match config.backend {
        BackendKind::Local => {
            Some(crate::backend::local::DataDirLock::acquire(&config.data_dir).map_err(failed)?)
        }
        BackendKind::Aws => None,
    };
    let app = crate::startup::build(config).await?;
    if _lock.is_some() {
        match app.cases.recover_claims().await {
            Ok(r) if r == Default::default() => {}
            Ok(r) => info!(
                adopted = r.adopted,
                released = r.released,
                left = r.left,
                "claims left by a stopped process settled at start"
            ),
            Err(e) => warn!(error = %e, "could not settle the claims left by a stopped process"),
        }
    }
    let publisher = app.publisher.clone();
    let state = app.into_state(config).await?.with_health_only(!mode.http);
    // Before anything says "listening": a SIGTERM from then on is a clean shutdown.
    let shutdown = server::shutdown_signal();
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| failed(format!("cannot listen on {addr}: {e}")))?;
    let addr = listener.local_addr().map_err(failed)?;
    info!(
        %addr,
        backend = config.backend.as_str(),
        data_dir = %config.data_dir.display(),
        "cw-support-api listening"
    );
    if tokens.is_empty() && !config.bind.is_loopback() {
        warn!(
            bind = %config.bind,
            "API_TOKENS is empty: unsigned posts are accepted from anyone who can reach this port"
        );
    }
    // One signal stops both the HTTP server and the consumer.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let consumer = queue_url.map(|queue_url| {
        let state = state.clone();
        let rx = stopped.clone();
        let (concurrency, retry_visibility, grace) = (
            config.consume_concurrency,
            config.retry_visibility,
            config.shutdown_grace,
        );
        let config = config.clone();
        tokio::spawn(async move {
            let consumer = crate::consumer::Consumer {
                sqs: sqs_client(&config).await,
                queue_url,
                concurrency,
                retry_visibility,
                shutdown_grace: grace,
            };
            consumer.run(state, wait(rx)).await
        })
    });
    // Without a worker daemon there is no cron.yaml: the consumer schedules `reconcile`
    // itself, through the same path as the daemon's periodic task.
    let reconciler = (mode.consume && !config.reconcile_interval.is_zero()).then(|| {
        let (state, every, mut rx) = (state.clone(), config.reconcile_interval, stopped.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = rx.wait_for(|s| *s) => return,
                }
                let mut headers = HeaderMap::new();
                headers.insert(
                    "x-aws-sqsd-taskname",
                    server::RECONCILE_TASK.parse().expect("header"),
                );
                let id = format!("reconcile-{}", chrono::Utc::now().timestamp());
                if let Ok(v) = id.parse() {
                    headers.insert("x-aws-sqsd-msgid", v);
                }
                server::deliver(&state, server::Origin::Queue, &headers, Default::default()).await;
            }
        })
    });
    let served = server::serve(listener, state, wait(stopped)).await;
    if let Some(r) = reconciler {
        let _ = r.await;
    }
    if let Some(c) = consumer {
        let _ = c.await;
    }
    served.map_err(|e| {
        error!(error = %e, "server failed");
        failed(e)
    })?;
    if let Some(publisher) = publisher {
        publisher.close().await;
    }
    info!("stopped");
    Ok(())
}

async fn tables_create(config: &Config, out: &mut dyn Write) -> Result<(), CommandError> {
    let settings = config.aws();
    let clients = AwsClients::load(&settings).await;
    let done = dynamo::create_tables(
        &clients.dynamodb,
        &settings.config_table,
        &settings.ledger_table,
    )
    .await
    .map_err(failed)?;
    for (table, outcome) in done {
        let what = match outcome {
            dynamo::TableOutcome::Created => "created",
            dynamo::TableOutcome::AlreadyExists => "already exists",
        };
        write_out(out, &format!("{table} ({}): {what}", settings.region))?;
    }
    Ok(())
}

/// The local backend: the data directory, the ledger and the settings file.
async fn check_local(config: &Config, out: &mut dyn Write) -> Result<(), CommandError> {
    let dir = config.data_dir.display();
    let backend = crate::startup::build(config)
        .await
        .map_err(|e| failed(format!("[FAIL] local backend in {dir}: {e}")))?
        .backend;
    write_out(out, &format!("[ ok ] ledger {dir}/ledger.sqlite3 opens"))?;
    let alarms = backend
        .config
        .list()
        .await
        .map_err(|e| failed(format!("[FAIL] settings: {e}")))?;
    write_out(
        out,
        &format!(
            "[ ok ] settings {dir}/alarms.json: {} alarm(s)",
            alarms.len()
        ),
    )?;
    let windows = backend
        .config
        .windows()
        .await
        .map_err(|e| failed(format!("[FAIL] maintenance windows: {e}")))?;
    write_out(
        out,
        &format!("[ ok ] maintenance windows: {}", windows.len()),
    )?;
    write_out(
        out,
        "[ ok ] support desk: dry-run (cases are recorded, not opened; BACKEND=aws opens them)",
    )?;
    let problems = code_problems(&backend, &alarms).await;
    for p in &problems {
        write_out(out, &format!("[FAIL] {p}"))?;
    }
    match problems.len() {
        0 => write_out(
            out,
            "[ ok ] every stored service and category code is known",
        ),
        n => Err(CommandError::Failed(format!(
            "{n} stored setting(s) with unknown codes"
        ))),
    }
}

/// Every stored setting whose service or category code the desk does not know (nothing
/// when the desk cannot say): such an alarm's cases would fall back to the defaults.
async fn code_problems(backend: &Backend, alarms: &[(String, AlarmConfigRecord)]) -> Vec<String> {
    let catalog = match backend.desk.services().await {
        Ok(Some(c)) => c,
        _ => return Vec::new(),
    };
    alarms
        .iter()
        .filter_map(|(name, r)| {
            let service = r.service_code.as_deref()?;
            catalog
                .check(service, r.category_code.as_deref())
                .err()
                .map(|e| format!("alarm {name:?}: {e}"))
        })
        .collect()
}

/// Tries every part of the aws backend and prints one line per check.
async fn check(config: &Config, out: &mut dyn Write) -> Result<(), CommandError> {
    if config.backend == BackendKind::Local {
        return check_local(config, out).await;
    }
    use aws_credential_types::provider::ProvideCredentials;
    let settings = config.aws();
    let clients = AwsClients::load(&settings).await;
    let mut failures = 0;
    let mut report = |ok: bool, what: String, out: &mut dyn Write| {
        if !ok {
            failures += 1;
        }
        write_out(
            out,
            &format!("[{}] {what}", if ok { " ok " } else { "FAIL" }),
        )
    };

    let creds = match clients.sdk.credentials_provider() {
        Some(p) => p.provide_credentials().await.map_err(|e| e.to_string()),
        None => Err("no credentials provider configured".into()),
    };
    match creds {
        Ok(c) => report(
            true,
            format!(
                "credentials found (access key {}…)",
                c.access_key_id().chars().take(4).collect::<String>()
            ),
            out,
        )?,
        Err(e) => report(false, format!("credentials: {e}"), out)?,
    }
    match dynamo::hash_key_of(&clients.dynamodb, &settings.config_table).await {
        Ok(key) => report(
            true,
            format!("settings table {} (hash key {key})", settings.config_table),
            out,
        )?,
        Err(e) => report(false, format!("settings table: {e}"), out)?,
    }
    match dynamo::ledger_keys(&clients.dynamodb, &settings.ledger_table).await {
        Ok(keys)
            if keys
                == [
                    ("pk".to_owned(), "HASH".to_owned()),
                    ("sk".to_owned(), "RANGE".to_owned()),
                ] =>
        {
            report(
                true,
                format!("ledger table {} (pk, sk)", settings.ledger_table),
                out,
            )?
        }
        Ok(keys) => report(
            false,
            format!(
                "ledger table {} has keys {keys:?}, expected pk (HASH) and sk (RANGE)",
                settings.ledger_table
            ),
            out,
        )?,
        Err(e) => report(false, format!("ledger table: {e}"), out)?,
    }
    let desk = crate::backend::aws::support::AwsSupportDesk::new(clients.support.clone());
    match desk.allowed_severities().await {
        Ok(levels) => {
            let codes: Vec<&str> = levels.iter().map(|s| s.as_str()).collect();
            report(
                true,
                format!(
                    "AWS Support API reachable ({}); severities allowed: {}",
                    settings.support_region,
                    codes.join(", ")
                ),
                out,
            )?
        }
        Err(e) => report(false, format!("AWS Support API: {e}"), out)?,
    }
    if let Ok(backend) = Backend::on_aws(clients.clone(), &settings).await
        && let Ok(alarms) = backend.config.list().await
    {
        let problems = code_problems(&backend, &alarms).await;
        let ok = problems.is_empty();
        for p in problems {
            report(false, p, out)?;
        }
        if ok {
            report(
                true,
                "every stored service and category code is known".into(),
                out,
            )?;
        }
    }
    if failures > 0 {
        return Err(CommandError::Failed(format!("{failures} check(s) failed")));
    }
    Ok(())
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<(), CommandError> {
    writeln!(out, "{text}").map_err(failed)
}

fn pretty(v: &impl serde::Serialize) -> Result<String, CommandError> {
    serde_json::to_string_pretty(v).map_err(failed)
}

pub async fn alarms(
    config: &Config,
    cmd: AlarmsCommand,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let backend = crate::startup::build(config).await?.backend;
    let store = &backend.config;
    match cmd {
        AlarmsCommand::Put(put) => {
            let name = put.name.clone();
            let stored = match put.replace {
                true => None,
                false => store.get(&name).await.map_err(failed)?,
            };
            let record = merge(stored.unwrap_or_default(), put);
            record.validate().map_err(CommandError::Usage)?;
            if let Some(service) = record.service_code.as_deref()
                && let Ok(Some(catalog)) = backend.desk.services().await
            {
                catalog
                    .check(service, record.category_code.as_deref())
                    .map_err(|e| CommandError::Usage(e.to_string()))?;
            }
            store.put(&name, &record).await.map_err(failed)?;
            write_out(out, &pretty(&json!({ name: record }))?)
        }
        AlarmsCommand::Get { name, arn } => {
            let stored = store.get(&name).await.map_err(failed)?;
            let tags = match (&arn, backend.aws(), config.tags) {
                (Some(arn), Some(clients), crate::cli::Switch::On) => {
                    let source = crate::tags::CloudWatchTags::new(
                        clients.cloudwatch.clone(),
                        config.config_cache_ttl,
                    );
                    use crate::tags::TagSource;
                    source.tags(arn).await.map_err(failed)?
                }
                _ => Vec::new(),
            };
            let tagged = crate::tags::record_from_tags(&tags);
            if stored.is_none() && tagged == AlarmConfigRecord::default() {
                return Err(CommandError::Failed(format!(
                    "no settings for alarm {name:?} (it uses the defaults: priority low)"
                )));
            }
            let (merged, sources) = crate::tags::merge(&stored.unwrap_or_default(), &tagged);
            let mut v = serde_json::to_value(&merged).map_err(failed)?;
            v["sources"] = json!(sources);
            write_out(out, &pretty(&v)?)
        }
        AlarmsCommand::List => {
            let all = store.list().await.map_err(failed)?;
            if all.is_empty() {
                return write_out(out, "no alarms configured: every alarm uses the defaults");
            }
            let mut text = format!(
                "{:<40} {:<9} {:<8} {}",
                "ALARM", "PRIORITY", "ENABLED", "CC"
            );
            for (name, r) in all {
                let cc = r
                    .ccemail
                    .as_ref()
                    .map(|c| c.addresses().join(","))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "\n{:<40} {:<9} {:<8} {}",
                    name,
                    r.priority.as_deref().unwrap_or("low"),
                    r.enabled.unwrap_or(true),
                    cc
                ));
            }
            write_out(out, &text)
        }
        AlarmsCommand::Delete { name } => match store.delete(&name).await.map_err(failed)? {
            true => write_out(out, &format!("deleted settings of {name:?}")),
            false => Err(CommandError::Failed(format!(
                "no settings for alarm {name:?}"
            ))),
        },
    }
}

/// Windows that ended more than this long ago are dropped when the list is saved.
const KEEP_ENDED_WINDOWS: chrono::Duration = chrono::Duration::days(7);

pub async fn maintenance(
    config: &Config,
    cmd: MaintenanceCommand,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let backend = crate::startup::build(config).await?.backend;
    let store = &backend.config;
    let now = chrono::Utc::now();
    let mut windows = store.windows().await.map_err(failed)?;
    match cmd {
        MaintenanceCommand::Start {
            duration,
            reason,
            alarm,
            at,
            every,
            tz,
        } => {
            if reason.trim().is_empty() {
                return Err(CommandError::Usage("--reason must say why".into()));
            }
            let length = chrono::Duration::from_std(duration)
                .ok()
                .filter(|d| *d > chrono::Duration::zero())
                .ok_or_else(|| CommandError::Usage("--for must be a positive duration".into()))?;
            let zone: chrono_tz::Tz = tz.parse().map_err(|_| {
                CommandError::Usage(format!(
                    "--tz {tz:?} is not a time zone (e.g. UTC, Europe/Berlin)"
                ))
            })?;
            let starts_at = match &at {
                None => now,
                Some(text) => {
                    use chrono::TimeZone;
                    let local = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
                        .map_err(|_| {
                            CommandError::Usage(format!(
                                "--at {text:?} is not a local date and time like 2026-12-05T02:00"
                            ))
                        })?;
                    zone.from_local_datetime(&local)
                        .earliest()
                        .ok_or_else(|| {
                            CommandError::Usage(format!("--at {text:?} does not exist in {tz}"))
                        })?
                        .with_timezone(&chrono::Utc)
                }
            };
            let recurrence = match &every {
                Some(rule) => Some(
                    crate::maintenance::Recurrence::parse(rule, &tz, length.num_minutes())
                        .map_err(CommandError::Usage)?,
                ),
                None => None,
            };
            let window = MaintenanceWindow {
                // Milliseconds: two windows started within one second keep both.
                id: format!("mw-{}", now.format("%Y%m%d%H%M%S%3f")),
                reason: reason.trim().to_owned(),
                alarm_pattern: alarm.filter(|a| !a.trim().is_empty()),
                starts_at,
                // A weekly window repeats until it is stopped.
                ends_at: match recurrence {
                    Some(_) => crate::maintenance::forever(),
                    None => starts_at + length,
                },
                every: recurrence,
            };
            windows.retain(|w| w.ends_at + KEEP_ENDED_WINDOWS > now && w.id != window.id);
            windows.push(window.clone());
            store.save_windows(&windows).await.map_err(failed)?;
            let next = window
                .next_start(now)
                .map(|t| format!("; next from {}", t.format("%Y-%m-%dT%H:%M:%SZ")))
                .unwrap_or_default();
            let verb = match window.active_at(now) {
                true => "started",
                false => "planned",
            };
            write_out(out, &format!("{verb} {}{next}", window.describe()))
        }
        MaintenanceCommand::List { json } => {
            if json {
                return write_out(out, &pretty(&windows)?);
            }
            if windows.is_empty() {
                return write_out(out, "no maintenance windows");
            }
            let mut text = format!(
                "{:<20} {:<8} {:<21} {:<21} {:<20} {:<24} {}",
                "ID", "STATE", "STARTS", "ENDS", "ALARMS", "REPEATS", "REASON"
            );
            let fmt = |t: chrono::DateTime<chrono::Utc>| match t == crate::maintenance::forever() {
                true => "until stopped".to_owned(),
                false => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            };
            for w in &windows {
                let state = if w.active_at(now) {
                    "active"
                } else if w.next_start(now).is_some() {
                    "planned"
                } else {
                    "ended"
                };
                // What `list` shows as STARTS: the next occurrence for a weekly window.
                let (starts, ends) = match (&w.every, w.active_until(now), w.next_start(now)) {
                    (Some(_), Some(end), _) => (w.starts_at.max(now), end),
                    (Some(r), None, Some(next)) => {
                        (next, next + chrono::Duration::minutes(r.minutes))
                    }
                    _ => (w.starts_at, w.ends_at),
                };
                let repeats = match &w.every {
                    Some(r) => format!("{} {} {}", r.days.join(","), r.at, r.tz),
                    None => "-".into(),
                };
                text.push_str(&format!(
                    "\n{:<20} {:<8} {:<21} {:<21} {:<20} {:<24} {}",
                    w.id,
                    state,
                    fmt(starts),
                    fmt(ends),
                    w.alarm_pattern.as_deref().unwrap_or("*"),
                    repeats,
                    w.reason
                ));
            }
            write_out(out, &text)
        }
        MaintenanceCommand::Stop { id } => {
            let mut stopped = Vec::new();
            for w in windows.iter_mut() {
                let chosen = match &id {
                    Some(id) => &w.id == id,
                    None => w.active_at(now),
                };
                if chosen && w.ends_at > now {
                    w.ends_at = now;
                    stopped.push(w.id.clone());
                }
            }
            if stopped.is_empty() {
                return Err(CommandError::Failed(match id {
                    Some(id) => format!("no window {id:?} that has not ended"),
                    None => "no active maintenance window".into(),
                }));
            }
            store.save_windows(&windows).await.map_err(failed)?;
            write_out(
                out,
                &format!(
                    "stopped {}; alarms still in ALARM raise their case at the next reconcile",
                    stopped.join(", ")
                ),
            )
        }
    }
}

fn merge(mut r: AlarmConfigRecord, put: AlarmPut) -> AlarmConfigRecord {
    let set = |field: &mut Option<String>, v: Option<String>| {
        if v.is_some() {
            *field = v;
        }
    };
    set(&mut r.priority, put.priority.map(|p| p.to_lowercase()));
    set(&mut r.action, put.action);
    set(&mut r.subject, put.subject);
    set(&mut r.service_code, put.service_code);
    set(&mut r.category_code, put.category_code);
    if !put.cc.is_empty() {
        r.ccemail = Some(match put.cc.len() {
            1 => CcField::One(put.cc[0].clone()),
            _ => CcField::Many(put.cc),
        });
    }
    if put.enabled.is_some() {
        r.enabled = put.enabled;
    }
    if let Some(g) = put.group {
        r.group = (!g.trim().is_empty()).then(|| g.trim().to_owned());
    }
    if !put.inhibited_by.is_empty() {
        let list: Vec<String> = put
            .inhibited_by
            .iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        r.inhibited_by = (!list.is_empty()).then(|| list.join(","));
    }
    r
}

pub async fn cases(
    config: &Config,
    cmd: CasesCommand,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let backend = crate::startup::build(config).await?.backend;
    match cmd {
        CasesCommand::List { json, alarm, limit } => {
            let filter = DecisionFilter {
                alarm_key: alarm,
                limit,
                ..Default::default()
            };
            let decisions = backend.ledger.decisions(&filter).await.map_err(failed)?;
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
            write_out(out, &text)
        }
        CasesCommand::Show { id, json } => {
            let filter = DecisionFilter {
                case_id: Some(id.clone()),
                ..Default::default()
            };
            let decisions = backend.ledger.decisions(&filter).await.map_err(failed)?;
            let recorded = match backend.local() {
                Some(local) => local.desk.case(&id).map_err(failed)?,
                None => None,
            };
            let info = match config.backend {
                BackendKind::Aws => backend.desk.case_info(&id).await.map_err(failed)?,
                BackendKind::Local => None,
            };
            let notices = match backend.local() {
                Some(local) => local.notices.for_case(&id).map_err(failed)?,
                None => Vec::new(),
            };
            if recorded.is_none() && info.is_none() && decisions.is_empty() {
                return Err(CommandError::Failed(format!(
                    "no case {id:?} in the ledger"
                )));
            }
            if json {
                let case = match &recorded {
                    Some(r) => json!(r),
                    None => json!(info),
                };
                let told: Vec<_> = notices
                    .iter()
                    .map(|(at, n)| json!({"at": at, "notice": n}))
                    .collect();
                return write_out(
                    out,
                    &pretty(&json!({"case": case, "decisions": decisions, "notices": told}))?,
                );
            }
            let mut text = String::new();
            if let Some(i) = &info {
                text.push_str(&format!(
                    "Case {} (display id {}), status {}\nSubject: {}\nSeverity: {}\n",
                    i.case_id,
                    i.display_id.as_deref().unwrap_or("-"),
                    i.status,
                    i.subject,
                    i.severity_code.as_deref().unwrap_or("-")
                ));
            }
            if let Some(c) = recorded {
                let cc: Vec<&str> = c
                    .case
                    .cc_email_addresses
                    .iter()
                    .map(|e| e.as_str())
                    .collect();
                text.push_str(&format!(
                    "Case {} ({}), recorded by the dry-run desk at {}\nSubject: {}\nSeverity: {}   Service: {}   Category: {}   Language: {}\nCc: {}\n\n{}\n",
                    c.case_id,
                    if c.resolved { "resolved" } else { "open" },
                    c.created_at.to_rfc3339(),
                    c.case.subject,
                    c.case.severity_code,
                    c.case.service_code,
                    c.case.category_code,
                    c.case.language,
                    if cc.is_empty() { "-".into() } else { cc.join(", ") },
                    c.case.communication_body
                ));
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
            }
            if !notices.is_empty() {
                text.push_str("\nTold (what the notifier would have sent):");
                for (at, n) in &notices {
                    text.push_str(&format!(
                        "\n  {}  {}",
                        at.format("%Y-%m-%d %H:%M:%S"),
                        n["text"].as_str().unwrap_or_default()
                    ));
                }
                text.push('\n');
            }
            text.push_str("\nDecisions:");
            for d in decisions.iter().rev() {
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
            write_out(out, &text)
        }
    }
}

/// `redrive`: the dead-letter queue's messages through the same path again.
async fn redrive(
    config: &Config,
    args: crate::cli::RedriveArgs,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let state = crate::startup::build(config)
        .await?
        .into_state(config)
        .await?;
    let sqs = sqs_client(config).await;
    let report = crate::consumer::redrive(&state, &sqs, &args.from, args.dry_run, args.limit, out)
        .await
        .map_err(failed)?;
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
        n => Err(CommandError::Failed(format!(
            "{n} message(s) still failing: left in the dead-letter queue"
        ))),
    }
}

pub async fn process(config: &Config, file: &str, out: &mut dyn Write) -> Result<(), CommandError> {
    let body = if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(failed)?;
        buf
    } else {
        std::fs::read(file).map_err(|e| failed(format!("cannot read {file}: {e}")))?
    };
    let received = delivery::receive(&HeaderMap::new(), &body)
        .map_err(|e| CommandError::Usage(format!("{}: {e}", e.code())))?;
    let (delivery, alarm) = received
        .into_alarm()
        .map_err(|e| CommandError::Usage(format!("{}: {e}", e.code())))?;
    let plan = crate::startup::build(config)
        .await?
        .cases
        .plan(&delivery, &alarm)
        .await
        .map_err(failed)?;
    let report = json!({
        "outcome": plan.outcome,
        "alarm": alarm.name,
        "alarmKey": alarm.key(),
        "state": alarm.state,
        "trigger": alarm.trigger,
        "caseId": plan.case_id(),
        "plan": plan,
    });
    write_out(out, &pretty(&report)?)
}
