//! `alarms ...` (per-alarm settings) and `maintenance ...` (windows).

use std::io::Write;

use serde_json::json;

use crate::backend::Backend;
use crate::cli::{AlarmPut, AlarmsCommand, Config, MaintenanceCommand, WindowStart};
use crate::domain::maintenance::MaintenanceWindow;
use crate::domain::settings::{AlarmConfigRecord, AlarmConfigStore, CcField};

use super::{Usage, pretty, write_out};

pub async fn alarms(
    config: &Config,
    cmd: AlarmsCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let backend = crate::cli::startup::build(config).await?.backend;
    match cmd {
        AlarmsCommand::Put(put) => put_alarm(&backend, *put, out).await,
        AlarmsCommand::Get { name, arn } => get_alarm(config, &backend, name, arn, out).await,
        AlarmsCommand::List => list_alarms(&backend, out).await,
        AlarmsCommand::Delete { name } => match backend.config.delete(&name).await? {
            true => write_out(out, &format!("deleted settings of {name:?}")),
            false => Err(anyhow::Error::msg(format!(
                "no settings for alarm {name:?}"
            ))),
        },
    }
}

/// `alarms put`: the given options over the stored settings (or over none, `--replace`),
/// refused unless a case could use them.
async fn put_alarm(backend: &Backend, put: AlarmPut, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = &backend.config;
    let name = put.name.clone();
    let stored = match put.replace {
        true => None,
        false => store.get(&name).await?,
    };
    let record = merge(stored.unwrap_or_default(), put);
    record.validate().map_err(|e| Usage(e.to_string()))?;
    if let Some(service) = record.service_code.as_deref()
        && let Ok(Some(catalog)) = backend.desk.services().await
    {
        catalog
            .check(service, record.category_code.as_deref())
            .map_err(|e| Usage(e.to_string()))?;
    }
    store.put(&name, &record).await?;
    write_out(out, &pretty(&json!({ name: record }))?)
}

/// `alarms get`: the stored settings merged with the alarm's tags, as a case would use
/// them, with where each field came from.
async fn get_alarm(
    config: &Config,
    backend: &Backend,
    name: String,
    arn: Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let stored = backend.config.get(&name).await?;
    let AlarmTags { arn, tags, note } = alarm_tags(config, backend, &name, arn).await?;
    let tagged = crate::domain::tags::record_from_tags(&tags);
    if stored.is_none() && tagged == AlarmConfigRecord::default() {
        let mut message =
            format!("no settings for alarm {name:?} (it uses the defaults: priority low)");
        if let Some(note) = &note {
            message.push_str(&format!("; {note}"));
        }
        return Err(anyhow::Error::msg(message));
    }
    let stored = stored.unwrap_or_default();
    let (merged, sources) = crate::domain::tags::merge(&stored, &tagged);
    let mut v = serde_json::to_value(&merged)?;
    v["sources"] = json!(sources);
    // A value a case cannot use (a hand-edited file): the case falls back, and says so.
    if let Err(problems) = merged.validate() {
        v["problems"] = json!(problems.to_string());
    }
    if let Some(arn) = arn {
        v["alarmArn"] = json!(arn);
    }
    if let Some(note) = note {
        v["note"] = json!(note);
    }
    write_out(out, &pretty(&v)?)
}

/// An alarm's tags as `alarms get` read them: the alarm's ARN (given, or looked up), its
/// tags, and a note when none could be read.
struct AlarmTags {
    arn: Option<String>,
    tags: Vec<(String, String)>,
    note: Option<String>,
}

/// On the aws backend the alarm's own tags count too: the alarm is looked up by name in
/// this account unless its ARN is given, so what is shown is what a case would use.
async fn alarm_tags(
    config: &Config,
    backend: &Backend,
    name: &str,
    arn: Option<String>,
) -> anyhow::Result<AlarmTags> {
    let untagged = |arn, note: Option<&str>| AlarmTags {
        arn,
        tags: Vec::new(),
        note: note.map(str::to_owned),
    };
    let clients = match (backend.aws(), config.store.tags) {
        (Some(clients), crate::cli::Switch::On) => clients,
        (Some(_), crate::cli::Switch::Off) => {
            return Ok(untagged(
                arn,
                Some("TAGS=off: the alarm's tags are not read"),
            ));
        }
        (None, _) => return Ok(untagged(arn, None)),
    };
    use crate::ports::tags::TagSource;
    let source = clients.tags(config.store.config_cache_ttl);
    let arn = match arn {
        Some(arn) => Some(arn),
        None => source.alarm_arn(name).await?,
    };
    match arn {
        Some(arn) => {
            let tags = source.tags(&arn).await?;
            Ok(AlarmTags {
                arn: Some(arn),
                tags,
                note: None,
            })
        }
        None => Ok(untagged(
            None,
            Some(&format!(
                "no alarm named {name:?} in this account (DescribeAlarms), so \
                 no tags were read; give --arn for another account's alarm"
            )),
        )),
    }
}

/// `alarms list`: every alarm that has settings, as a table.
async fn list_alarms(backend: &Backend, out: &mut dyn Write) -> anyhow::Result<()> {
    let all = backend.config.list().await?;
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
    write_out(out, &crate::escape::printable(&text))
}

pub async fn maintenance(
    config: &Config,
    cmd: MaintenanceCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let backend = crate::cli::startup::build(config).await?.backend;
    let store = &*backend.config;
    let now = chrono::Utc::now();
    match cmd {
        MaintenanceCommand::Start(start) => {
            let window = plan_window(&start, now)?;
            start_window(store, window, now, out).await
        }
        MaintenanceCommand::List { json } => list_windows(&store.windows().await?, json, now, out),
        MaintenanceCommand::Stop { id } => stop_windows(store, id, now, out).await,
    }
}

/// The window `maintenance start` asks for, or why it makes no sense (all bad input).
fn plan_window(
    start: &WindowStart,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<MaintenanceWindow, Usage> {
    let WindowStart {
        duration,
        reason,
        alarm,
        at,
        every,
        tz,
    } = start;
    if reason.trim().is_empty() {
        return Err(Usage("--reason must say why".into()));
    }
    let length = chrono::Duration::from_std(*duration)
        .ok()
        .filter(|d| *d > chrono::Duration::zero())
        .ok_or_else(|| Usage("--for must be a positive duration".into()))?;
    let zone: chrono_tz::Tz = tz.parse().map_err(|_| {
        Usage(format!(
            "--tz {tz:?} is not a time zone (e.g. UTC, Europe/Berlin)"
        ))
    })?;
    let starts_at = match at {
        None => now,
        Some(text) => crate::domain::maintenance::parse_at(text, &zone).map_err(usage)?,
    };
    // A weekly occurrence longer than a week would run into the next one.
    if every.is_some() && length > chrono::Duration::days(7) {
        return Err(Usage(
            "--for with --every: each occurrence lasts at most 7d".into(),
        ));
    }
    let recurrence = match every {
        Some(rule) => Some(
            crate::domain::maintenance::Recurrence::parse(rule, tz, length.num_minutes())
                .map_err(usage)?,
        ),
        None => None,
    };
    if recurrence.is_none() && starts_at + length <= now {
        return Err(Usage(format!(
            "the window would have ended at {}, before now: give a later --at",
            (starts_at + length).format("%Y-%m-%dT%H:%M:%SZ")
        )));
    }
    Ok(MaintenanceWindow {
        id: crate::case::windows::new_id(now),
        reason: reason.trim().to_owned(),
        alarm_pattern: alarm.clone().filter(|a| !a.trim().is_empty()),
        starts_at,
        // A weekly window repeats until it is stopped.
        ends_at: match recurrence {
            Some(_) => crate::domain::maintenance::forever(),
            None => starts_at + length,
        },
        every: recurrence,
        by: None,
    })
}

/// Saves a new window (dropping those long ended) and says when it runs.
async fn start_window(
    store: &dyn AlarmConfigStore,
    window: MaintenanceWindow,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    crate::case::windows::start(store, window.clone(), now).await?;
    let next = window
        .next_start(now)
        .map(|t| format!("; next from {}", t.format("%Y-%m-%dT%H:%M:%SZ")))
        .unwrap_or_default();
    // Active now: until the end of this occurrence (a weekly window's own end is "until
    // stopped").
    let said = match window.active_until(now) {
        Some(until) => format!("started {}", window.describe_until(until)),
        None => format!("planned {}", window.describe()),
    };
    write_out(out, &format!("{said}{next}"))
}

/// `maintenance list`: the windows as a table (a weekly window shows its next occurrence)
/// or JSON.
fn list_windows(
    windows: &[MaintenanceWindow],
    json: bool,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
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
    let fmt = |t: chrono::DateTime<chrono::Utc>| match t == crate::domain::maintenance::forever() {
        true => "until stopped".to_owned(),
        false => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    };
    for w in windows {
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
            (Some(r), None, Some(next)) => (next, next + r.length()),
            _ => (w.starts_at, w.ends_at),
        };
        let repeats = match &w.every {
            Some(r) => r.describe(),
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
    write_out(out, &crate::escape::printable(&text))
}

/// `maintenance stop`: ends the window named, or every active one, now.
async fn stop_windows(
    store: &dyn AlarmConfigStore,
    id: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let stopped = crate::case::windows::stop(store, id.as_deref(), now).await?;
    if stopped.is_empty() {
        return Err(anyhow::Error::msg(match id {
            Some(id) => format!("no window {id:?} that has not ended"),
            None => "no active maintenance window".into(),
        }));
    }
    write_out(
        out,
        &format!(
            "stopped {}; alarms still in ALARM raise their case at the next reconcile",
            stopped.join(", ")
        ),
    )
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
    set(&mut r.route, put.route.map(|p| p.trim().to_lowercase()));
    set(&mut r.policy, put.policy.map(|p| p.trim().to_owned()));
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

/// A maintenance rule or time that cannot be read is bad input (exit status 2).
fn usage(e: crate::domain::maintenance::RuleError) -> Usage {
    Usage(e.to_string())
}
