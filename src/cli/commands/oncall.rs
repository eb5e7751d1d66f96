//! `oncall`: the on-duty file (import, export, an override) and who is on duty (now, show).
//! The file is checked as a whole before anything is saved; the store keeps its canonical
//! form, read back on every command.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Usage, pretty, write_out};
use crate::cli::{Config, OncallCommand};
use crate::domain::maintenance::parse_at;
use crate::domain::settings::AlarmConfigStore;
use crate::oncall::file::{self, OnCall};
use crate::oncall::model::{PersonId, Schedule};
use crate::oncall::{on_duty, shifts};

pub(super) async fn oncall(
    config: &Config,
    cmd: OncallCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let backend = crate::cli::startup::build(config).await?.backend;
    let store = &*backend.config;
    let now = Utc::now();
    match cmd {
        OncallCommand::Import { file } => {
            let text = read_bounded(&file)?;
            let on_call = file::import(&text).map_err(|e| Usage(e.to_string()))?;
            save(store, &on_call).await?;
            write_out(
                out,
                &format!(
                    "imported {} person(s), {} schedule(s), {} policy(ies)",
                    on_call.people.len(),
                    on_call.schedules.len(),
                    on_call.policies.len()
                ),
            )
        }
        OncallCommand::Export { ical: None, .. } => {
            let text = file::export(&load(store).await?)?;
            write!(out, "{text}").context("writing to standard output")
        }
        OncallCommand::Export {
            ical: Some(schedule),
            person,
            from,
            until,
        } => {
            let on_call = load(store).await?;
            let ics = calendar(&on_call, &schedule, person, from, until, now)?;
            write!(out, "{ics}").context("writing to standard output")
        }
        OncallCommand::Feed { person } => {
            let path = feed_path(config, &load(store).await?, &person)?;
            write_out(out, &path)
        }
        OncallCommand::Now { at, json } => {
            let at = match at {
                Some(t) => parse_at(&t, &chrono_tz::UTC).map_err(|e| Usage(e.to_string()))?,
                None => now,
            };
            now_on_duty(&load(store).await?, at, json, out)
        }
        OncallCommand::Show {
            schedule,
            from,
            until,
            json,
        } => {
            let on_call = load(store).await?;
            let s = find(&on_call, &schedule)?;
            let (from, until) = span(s, from.as_deref(), until.as_deref(), now, 7)?;
            show(s, from, until, json, out)
        }
        OncallCommand::Override {
            schedule,
            person,
            from,
            until,
        } => {
            let mut on_call = load(store).await?;
            on_call
                .add_override(&schedule, &person, &from, &until)
                .map_err(|e| Usage(e.to_string()))?;
            save(store, &on_call).await?;
            write_out(
                out,
                &format!("{person} is on duty in {schedule} from {from} until {until}"),
            )
        }
    }
}

/// A schedule's shifts as iCalendar: from 7 days ago to 90 days ahead unless told.
fn calendar(
    on_call: &OnCall,
    schedule: &str,
    person: Option<String>,
    from: Option<String>,
    until: Option<String>,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let s = find(on_call, schedule)?;
    let back = now - chrono::Duration::days(7);
    let (from, until) = span(s, from.as_deref(), until.as_deref(), back, 97)?;
    let mut all = shifts(s, from, until);
    if let Some(p) = person {
        all.retain(|x| x.person.as_str() == p);
    }
    Ok(crate::oncall::ical::calendar(s, &all, &on_call.people, now))
}

/// The secret path of a person's calendar feed.
fn feed_path(config: &Config, on_call: &OnCall, person: &str) -> anyhow::Result<String> {
    let person = PersonId::parse(person).map_err(|e| Usage(e.to_string()))?;
    if !on_call.people.iter().any(|p| p.id == person) {
        return Err(Usage(format!("no person {person} (see `oncall export`)")).into());
    }
    let Some(key) = crate::cli::startup::feed_key(config)? else {
        return Err(Usage(
            "the feeds are off: set ONCALL_FEED_KEY (32+ characters, the same on every instance)"
                .into(),
        )
        .into());
    };
    Ok(key.path(&person))
}

/// The file to import, refused unread when it is larger than any on-duty file can be.
fn read_bounded(path: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut text = String::new();
    let limit = u64::try_from(file::MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
    f.take(limit)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    if text.len() > file::MAX_FILE_BYTES {
        return Err(Usage(format!(
            "{} is larger than an on-duty file may be ({} bytes at most)",
            path.display(),
            file::MAX_FILE_BYTES
        ))
        .into());
    }
    Ok(text)
}

/// The saved file, read whole (an empty setup when none was imported).
async fn load(store: &dyn AlarmConfigStore) -> anyhow::Result<OnCall> {
    match store.on_call().await? {
        Some(text) => file::import(&text).context("the saved on-duty file no longer reads"),
        None => Ok(OnCall::default()),
    }
}

async fn save(store: &dyn AlarmConfigStore, on_call: &OnCall) -> anyhow::Result<()> {
    store.save_on_call(&file::export(on_call)?).await?;
    Ok(())
}

fn find<'a>(on_call: &'a OnCall, id: &str) -> anyhow::Result<&'a Schedule> {
    on_call
        .schedules
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Usage(format!("no schedule {id:?} (see `oncall export`)")).into())
}

fn now_on_duty(
    on_call: &OnCall,
    at: DateTime<Utc>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let rows: Vec<serde_json::Value> = on_call
        .schedules
        .iter()
        .map(|s| {
            let d = on_duty(s, at);
            json!({
                "schedule": s.id,
                "person": d.as_ref().map(|d| d.person.to_string()),
                "until": d.and_then(|d| d.until).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            })
        })
        .collect();
    if json {
        return write_out(out, &pretty(&rows)?);
    }
    if rows.is_empty() {
        return write_out(
            out,
            "no schedules (import a file with `oncall import FILE`)",
        );
    }
    let mut text = format!("{:<20} {:<20} UNTIL", "SCHEDULE", "ON DUTY");
    for r in &rows {
        text.push_str(&format!(
            "\n{:<20} {:<20} {}",
            r["schedule"].as_str().unwrap_or_default(),
            r["person"].as_str().unwrap_or("nobody"),
            r["until"].as_str().unwrap_or("-"),
        ));
    }
    write_out(out, &text)
}

/// `--from` and `--until` in the schedule's zone (or with their own offset); unset, from
/// `default_from` and for `days` days.
fn span(
    s: &Schedule,
    from: Option<&str>,
    until: Option<&str>,
    default_from: DateTime<Utc>,
    days: i64,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let read = |t: &str| parse_at(t, &s.time_zone).map_err(|e| Usage(e.to_string()));
    let from = from.map(read).transpose()?.unwrap_or(default_from);
    let until = until
        .map(read)
        .transpose()?
        .unwrap_or(from + chrono::Duration::days(days));
    if until <= from || until - from > chrono::Duration::days(366) {
        return Err(Usage("--until must come after --from, within a year".into()).into());
    }
    Ok((from, until))
}

fn show(
    s: &Schedule,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let local = |t: DateTime<Utc>| {
        t.with_timezone(&s.time_zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let all = shifts(s, from, until);
    if json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|x| json!({"person": x.person.to_string(), "from": x.from, "until": x.until}))
            .collect();
        return write_out(out, &pretty(&rows)?);
    }
    let mut text = format!("{:<20} {:<24} UNTIL", "ON DUTY", "FROM");
    for x in &all {
        text.push_str(&format!(
            "\n{:<20} {:<24} {}",
            x.person.to_string(),
            local(x.from),
            local(x.until)
        ));
    }
    write_out(out, &text)
}
