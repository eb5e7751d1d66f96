//! `check` (every part of the configured backend, one line each) and `tables create`.

use std::io::Write;

use crate::backend::Backend;
use crate::backend::aws::{AwsClients, dynamo};
use crate::cli::{BackendKind, Config};
use crate::domain::settings::AlarmConfigRecord;

use anyhow::Context;

use super::write_out;

pub(super) async fn tables_create(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let settings = config.aws();
    let clients = AwsClients::load(&settings).await;
    let done = dynamo::create_tables(
        &clients.dynamodb,
        &settings.config_table,
        &settings.ledger_table,
    )
    .await
    .map_err(anyhow::Error::msg)?;
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
async fn check_local(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = config.data_dir.display();
    let backend = crate::cli::startup::build(config)
        .await
        .with_context(|| format!("[FAIL] local backend in {dir}"))?
        .backend;
    write_out(out, &format!("[ ok ] ledger {dir}/ledger.sqlite3 opens"))?;
    let alarms = backend.config.list().await.context("[FAIL] settings")?;
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
        .context("[FAIL] maintenance windows")?;
    write_out(
        out,
        &format!("[ ok ] maintenance windows: {}", windows.len()),
    )?;
    write_out(
        out,
        "[ ok ] support desk: dry-run (cases are recorded, not opened; BACKEND=aws opens them)",
    )?;
    let problems = setting_problems(&backend, &alarms).await;
    for p in &problems {
        write_out(out, &format!("[FAIL] {p}"))?;
    }
    match problems.len() {
        0 => write_out(out, ALL_SETTINGS_USABLE),
        n => Err(anyhow::Error::msg(format!(
            "{n} problem(s) in the stored settings"
        ))),
    }
}

const ALL_SETTINGS_USABLE: &str =
    "[ ok ] every stored setting is usable and every service and category code is known";

/// Every stored setting a case could not use as it stands: a value that is not valid (a
/// hand-edited file, an item written by something else), or a service or category code the
/// desk does not know (unless the desk cannot say). Such an alarm's cases fall back to the
/// defaults, with a note.
async fn setting_problems(
    backend: &Backend,
    alarms: &[(String, AlarmConfigRecord)],
) -> Vec<String> {
    let catalog = match backend.desk.services().await {
        Ok(Some(c)) => Some(c),
        _ => None,
    };
    let mut problems = Vec::new();
    for (name, r) in alarms {
        if let Err(e) = r.validate() {
            problems.push(format!("alarm {name:?}: {e}"));
        }
        if let (Some(catalog), Some(service)) = (&catalog, r.service_code.as_deref())
            && let Err(e) = catalog.check(service, r.category_code.as_deref())
        {
            problems.push(format!("alarm {name:?}: {e}"));
        }
    }
    problems
}

/// Tries every part of the aws backend and prints one line per check.
pub(super) async fn check(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    if config.backend == BackendKind::Local {
        return check_local(config, out).await;
    }
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

    match clients.access_key_prefix().await {
        Ok(prefix) => report(
            true,
            format!("credentials found (access key {prefix}…)"),
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
    // One transaction that writes nothing: the ledger's writes are allowed, not only reads.
    let ledger = crate::backend::aws::dynamo::DynamoLedger::on(&clients, &settings);
    match ledger.probe_transactions().await {
        Ok(()) => report(true, "ledger transactions reach DynamoDB".into(), out)?,
        Err(e) => report(false, format!("ledger transactions: {e}"), out)?,
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
        let problems = setting_problems(&backend, &alarms).await;
        let ok = problems.is_empty();
        for p in problems {
            report(false, p, out)?;
        }
        if ok {
            let line = ALL_SETTINGS_USABLE.trim_start_matches("[ ok ] ");
            report(true, line.into(), out)?;
        }
    }
    if failures > 0 {
        return Err(anyhow::Error::msg(format!("{failures} check(s) failed")));
    }
    Ok(())
}
