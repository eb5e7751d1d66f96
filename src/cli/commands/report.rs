//! `report`: how well support worked over a month or the last days (`case::report`), as a
//! table, JSON (stable field names) or CSV (one metric per row).

use std::io::Write;

use chrono::{DateTime, Utc};

use super::{Usage, pretty, write_out};
use crate::case::report::{History, Report, Spread};
use crate::cli::Config;
use crate::paging::callouts::Month;

/// The span asked for: a UTC month, or the last `since` up to now (30 days unless told).
fn span(
    month: Option<&str>,
    since: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Usage> {
    if let Some(m) = month {
        return Ok(Month::parse(m).map_err(Usage)?.span(&chrono_tz::UTC));
    }
    let back = crate::cli::parse_duration(since.unwrap_or("30d"))
        .map_err(|e| Usage(format!("--since: {e}")))?;
    let back = chrono::Duration::from_std(back)
        .ok()
        .filter(|d| *d > chrono::Duration::zero() && *d <= chrono::Duration::days(3660))
        .ok_or_else(|| Usage("--since: a positive span of at most ten years".into()))?;
    Ok((now - back, now))
}

pub(super) async fn run(
    config: &Config,
    month: Option<String>,
    since: Option<String>,
    format: (bool, bool),
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (from, until) = span(month.as_deref(), since.as_deref(), Utc::now())?;
    let app = crate::cli::startup::build(config).await?;
    let r = History::since(&app.cases, from).await?.report(from, until);
    match format {
        (true, _) => write_out(out, &pretty(&r)?),
        (_, true) => write!(out, "{}", csv(&r)).map_err(Into::into),
        _ => write_out(out, &table(&r)),
    }
}

fn seconds(s: Option<i64>) -> String {
    s.map(|s| s.to_string()).unwrap_or_default()
}

fn said(s: &Spread) -> String {
    s.said().unwrap_or_else(|| "none".into())
}

fn table(r: &Report) -> String {
    let mut t = format!(
        "from {} until {}\ncases opened       {:>6}  (recovered by themselves within 10 min: {})\n\
         pages opened       {:>6}  acknowledged {}, unanswered {}, resolved {}, still live {}\n\
         to acknowledge     {}\nto resolve         {}\n",
        r.from.format("%Y-%m-%dT%H:%M:%SZ"),
        r.until.format("%Y-%m-%dT%H:%M:%SZ"),
        r.cases.opened,
        r.cases.recovered_by_themselves,
        r.pages.opened,
        r.pages.acknowledged,
        r.pages.unanswered,
        r.pages.resolved,
        r.pages.live,
        said(&r.pages.time_to_acknowledge),
        said(&r.pages.time_to_resolve),
    );
    if !r.noisiest.is_empty() {
        t.push_str(&format!(
            "noisiest alarms\n{:<40} {:>6} {:>6} {:>20}\n",
            "alarm", "pages", "cases", "recovered by itself"
        ));
        for n in &r.noisiest {
            t.push_str(&format!(
                "{:<40} {:>6} {:>6} {:>20}\n",
                n.alarm, n.pages, n.cases, n.recovered_by_themselves
            ));
        }
    }
    crate::escape::printable(&t).into_owned()
}

fn csv(r: &Report) -> String {
    let mut rows: Vec<(String, String)> = vec![
        ("from".into(), r.from.to_rfc3339()),
        ("until".into(), r.until.to_rfc3339()),
        ("cases.opened".into(), r.cases.opened.to_string()),
        (
            "cases.recovered_by_themselves".into(),
            r.cases.recovered_by_themselves.to_string(),
        ),
        ("pages.opened".into(), r.pages.opened.to_string()),
        (
            "pages.acknowledged".into(),
            r.pages.acknowledged.to_string(),
        ),
        ("pages.unanswered".into(), r.pages.unanswered.to_string()),
        ("pages.resolved".into(), r.pages.resolved.to_string()),
        ("pages.live".into(), r.pages.live.to_string()),
    ];
    for (name, s) in [
        ("time_to_acknowledge", &r.pages.time_to_acknowledge),
        ("time_to_resolve", &r.pages.time_to_resolve),
    ] {
        rows.push((format!("pages.{name}.count"), s.count.to_string()));
        rows.push((
            format!("pages.{name}.median_seconds"),
            seconds(s.median_seconds),
        ));
        rows.push((format!("pages.{name}.p90_seconds"), seconds(s.p90_seconds)));
    }
    for (i, n) in r.noisiest.iter().enumerate() {
        rows.push((format!("noisiest.{i}.alarm"), n.alarm.clone()));
        rows.push((format!("noisiest.{i}.pages"), n.pages.to_string()));
        rows.push((format!("noisiest.{i}.cases"), n.cases.to_string()));
        rows.push((
            format!("noisiest.{i}.recovered_by_themselves"),
            n.recovered_by_themselves.to_string(),
        ));
    }
    let mut out = String::from("metric,value\n");
    for (k, v) in rows {
        out.push_str(&format!("{k},{}\n", crate::escape::csv_field(&v)));
    }
    out
}
