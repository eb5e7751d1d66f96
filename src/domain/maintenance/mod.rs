//! The "I'm fixing it" mode: maintenance windows. While a window is active, alarms it matches
//! are recorded as `suppressed` with the window's reason instead of calling anyone; an alarm
//! still in ALARM when its window ends raises its case then (the periodic task does it).
//! Windows are kept in the config store, next to the per-alarm settings.

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc, Weekday,
};
use serde::{Deserialize, Serialize};

/// Why a weekly rule or a `--at` time cannot be read: what `maintenance start` tells the
/// person typing it, and what the warning says of a stored window that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("--every {0:?}: expected `<days> HH:MM`, e.g. `sat,sun 03:00`")]
    Shape(String),
    #[error("--every: {0:?} is not a day (mon … sun, daily, weekdays)")]
    Day(String),
    #[error("--every: {0:?} is not a time of day (HH:MM)")]
    TimeOfDay(String),
    #[error("--tz {0:?} is not a time zone (e.g. UTC, Europe/Berlin)")]
    Zone(String),
    #[error("each occurrence lasts {0} minutes (1 to {MAX_OCCURRENCE_MINUTES})")]
    Length(i64),
    #[error(
        "--at {0:?} is not a date and time: write 2026-12-05T02:00 (in --tz) or \
         2026-12-05T02:00:00Z (with its offset)"
    )]
    At(String),
    #[error("--at {0:?} does not exist in {1}")]
    AtMissing(String, chrono_tz::Tz),
}

/// A weekly rule: on these days, at this local time in this time zone, for this long. Read
/// once (from `--every` or from the store) into types, so nothing is parsed again when the
/// rule is asked about; stored as it always was (`days`, `at`, `tz`, `minutes` strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredRecurrence", into = "StoredRecurrence")]
pub struct Recurrence {
    days: Vec<Weekday>,
    at: NaiveTime,
    tz: chrono_tz::Tz,
    minutes: i64,
}

/// A rule as the store keeps it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRecurrence {
    /// `mon` … `sun`.
    days: Vec<String>,
    /// Local time, `HH:MM`.
    at: String,
    /// An IANA time zone, e.g. `Europe/Berlin` (daylight saving time followed).
    tz: String,
    minutes: i64,
}

impl TryFrom<StoredRecurrence> for Recurrence {
    type Error = RuleError;
    fn try_from(s: StoredRecurrence) -> Result<Self, RuleError> {
        Recurrence::parse(&format!("{} {}", s.days.join(","), s.at), &s.tz, s.minutes)
    }
}

impl From<Recurrence> for StoredRecurrence {
    fn from(r: Recurrence) -> Self {
        Self {
            days: r.days.iter().map(|d| day_name(*d).to_owned()).collect(),
            at: r.at.format("%H:%M").to_string(),
            tz: r.tz.name().to_owned(),
            minutes: r.minutes,
        }
    }
}

/// The days of a week, Monday first (`daily`; the first five are `weekdays`).
pub const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn day_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

impl Recurrence {
    /// Reads `--every`: `daily 02:00`, `weekdays 22:30`, `sat,sun 03:00`, `mon 01:15`; each
    /// occurrence lasts `minutes` (1 minute to a week).
    pub fn parse(every: &str, tz: &str, minutes: i64) -> Result<Self, RuleError> {
        let shape = || RuleError::Shape(every.to_owned());
        // `<days> HH:MM`; the days may be written with spaces after their commas.
        let mut words: Vec<&str> = every.split_whitespace().collect();
        let at = words.pop().ok_or_else(shape)?;
        if words.is_empty() || words.iter().any(|w| w.contains(':')) {
            return Err(shape());
        }
        let days: Vec<Weekday> = match words.concat().trim().to_lowercase().as_str() {
            "daily" => WEEK.to_vec(),
            "weekdays" => WEEK[..5].to_vec(),
            list => list
                .split(',')
                .map(|d| {
                    let d = d.trim();
                    let short: String = d.chars().take(3).collect();
                    weekday(&short).ok_or_else(|| RuleError::Day(d.to_owned()))
                })
                .collect::<Result<_, _>>()?,
        };
        let at = NaiveTime::parse_from_str(at.trim(), "%H:%M")
            .map_err(|_| RuleError::TimeOfDay(at.to_owned()))?;
        let tz = tz
            .parse::<chrono_tz::Tz>()
            .map_err(|_| RuleError::Zone(tz.to_owned()))?;
        if !(1..=MAX_OCCURRENCE_MINUTES).contains(&minutes) {
            return Err(RuleError::Length(minutes));
        }
        Ok(Self {
            days,
            at,
            tz,
            minutes,
        })
    }

    /// How long each occurrence lasts.
    pub fn length(&self) -> chrono::Duration {
        chrono::Duration::minutes(self.minutes)
    }

    /// The rule as `maintenance list` shows it: `sat,sun 02:00 Europe/Berlin`.
    pub fn describe(&self) -> String {
        let days: Vec<&str> = self.days.iter().map(|d| day_name(*d)).collect();
        format!("{} {} {}", days.join(","), self.at.format("%H:%M"), self.tz)
    }

    /// The starts of occurrences on the local dates from `first` on, `n` days.
    fn starts(&self, first: NaiveDate, n: i64) -> Vec<DateTime<Utc>> {
        (0..n)
            .filter_map(|i| first.checked_add_signed(chrono::Duration::days(i)))
            .filter(|d| self.days.contains(&d.weekday()))
            .filter_map(|d| local_instant(&self.tz, d.and_time(self.at)))
            .collect()
    }

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }
}

/// The instant a local date and time names in `tz`: the earlier one when clocks go back
/// and it happens twice; when clocks go forward and it does not exist, the first instant
/// after the gap (a 02:30 start on the night summer time begins starts at 03:00), so that
/// day's occurrence is moved, never skipped.
pub fn local_instant<Z: TimeZone>(tz: &Z, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return Some(t.with_timezone(&Utc));
    }
    // In a gap: the first local minute after it that exists. Gaps last an hour or less in
    // practice; a day bounds the search whatever the zone's rules.
    (1..=24 * 60)
        .filter_map(|m| local.checked_add_signed(chrono::Duration::minutes(m)))
        .find_map(|t| {
            let t = t.with_second(0)?;
            tz.from_local_datetime(&t).earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// Reads `--at`: an instant with its offset (RFC 3339, as `date -Iseconds` and most tools
/// print it: `2026-12-06T18:44:32Z`, `2026-12-06T19:44:32+01:00`), or a local date and time
/// in `tz` (`2026-12-06T18:44`, `2026-12-06 18:44`, seconds optional).
pub fn parse_at(text: &str, tz: &chrono_tz::Tz) -> Result<DateTime<Utc>, RuleError> {
    let t = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(t) {
        return Ok(instant.with_timezone(&Utc));
    }
    // RFC 3339 with a space, or without seconds: what people paste.
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M%:z",
    ] {
        let zulu = t.strip_suffix(['Z', 'z']).map(|t| format!("{t}+00:00"));
        if let Ok(instant) = DateTime::parse_from_str(zulu.as_deref().unwrap_or(t), format) {
            return Ok(instant.with_timezone(&Utc));
        }
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
    .ok_or_else(|| RuleError::At(text.to_owned()))?;
    local_instant(tz, local).ok_or_else(|| RuleError::AtMissing(text.to_owned(), *tz))
}

/// The end of a window that repeats until it is stopped: the last second of year 9999
/// (what every JSON reader of RFC 3339 can read back).
pub fn forever() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// One window: from `starts_at` to `ends_at`, or, with `every`, each occurrence of the
/// weekly rule between those two instants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindow {
    pub id: String,
    pub reason: String,
    /// Alarm names it covers: `*` matches any run of characters, `?` one; None covers all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_pattern: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Recurrence>,
    /// Who started it, when a person did through the console ("I'm fixing").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl MaintenanceWindow {
    /// The end of the occurrence covering `now`, if one does.
    pub fn active_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if now < self.starts_at || now >= self.ends_at {
            return None;
        }
        let Some(rule) = &self.every else {
            return Some(self.ends_at);
        };
        let length = rule.length();
        let back = (rule.minutes / (24 * 60)) + 2;
        let first = rule.local_date(now) - chrono::Duration::days(back);
        // An occurrence under way when the window was entered counts (from then on): "every
        // Sunday's deploy hour" entered during the deploy holds it now.
        rule.starts(first, back + 1)
            .into_iter()
            .filter(|s| *s <= now && now < *s + length)
            .map(|s| (s + length).min(self.ends_at))
            .max()
    }

    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.active_until(now).is_some()
    }

    /// When the window (next) begins at or after `now`: the start of its next occurrence.
    pub fn next_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if now >= self.ends_at {
            return None;
        }
        let Some(rule) = &self.every else {
            return (self.starts_at >= now).then_some(self.starts_at);
        };
        let from = now.max(self.starts_at);
        rule.starts(rule.local_date(from), 9)
            .into_iter()
            .find(|s| *s >= from && *s < self.ends_at)
    }

    pub fn covers(&self, alarm_name: &str) -> bool {
        self.alarm_pattern
            .as_deref()
            .is_none_or(|p| glob_match(p, alarm_name))
    }

    /// Says why an alarm is suppressed, for the ledger.
    pub fn describe(&self) -> String {
        self.describe_until(self.ends_at)
    }

    pub fn describe_until(&self, until: DateTime<Utc>) -> String {
        format!(
            "maintenance window {}: {} (until {})",
            self.id,
            self.reason,
            until.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

/// The longest a weekly occurrence may last: longer, it would run into the next one.
pub const MAX_OCCURRENCE_MINUTES: i64 = 7 * 24 * 60;

impl MaintenanceWindow {
    /// Whether this window, as stored, can be used: what `maintenance start` would have
    /// saved. A window written by hand or by another version may hold anything.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.starts_at >= self.ends_at {
            return Err("it ends before it starts");
        }
        if self.ends_at > forever() {
            return Err("it ends after year 9999");
        }
        // A rule was checked as it was read ([`Recurrence`]).
        Ok(())
    }
}

/// The windows that can be used; each one that cannot is left out with a warning, so a bad
/// window never stops alarms from being handled (nor `maintenance list`).
/// Each is read on its own, so that one window written by hand cannot hide the others.
pub fn usable(stored: Vec<serde_json::Value>) -> Vec<MaintenanceWindow> {
    stored
        .into_iter()
        .filter_map(|value| {
            let read = MaintenanceWindow::deserialize(&value)
                .map_err(|e| e.to_string())
                .and_then(|w| w.check().map(|()| w).map_err(str::to_owned));
            match read {
                Ok(w) => Some(w),
                Err(why) => {
                    let id = value["id"].as_str().unwrap_or("(no id)");
                    tracing::warn!(window = %crate::escape::printable(id), problem = %why, "a stored maintenance window cannot be used; left out");
                    None
                }
            }
        })
        .collect()
}

/// The active window covering this alarm whose occurrence ends last, and that end.
pub fn covering<'a>(
    windows: &'a [MaintenanceWindow],
    alarm_name: &str,
    now: DateTime<Utc>,
) -> Option<(&'a MaintenanceWindow, DateTime<Utc>)> {
    windows
        .iter()
        .filter(|w| w.covers(alarm_name))
        .filter_map(|w| w.active_until(now).map(|end| (w, end)))
        .max_by_key(|(_, end)| *end)
}

/// Glob matching with `*` and `?`, iterative (no recursion, so no pathological stack use),
/// linear in practice: the classic backtrack-to-last-star algorithm.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests;
