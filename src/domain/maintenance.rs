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
            "daily" => vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            "weekdays" => vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
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
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("prod-*", "prod-db-cpu"));
        assert!(glob_match("*-cpu", "prod-db-cpu"));
        assert!(glob_match("prod-?b-*", "prod-db-cpu"));
        assert!(glob_match("prod-db-cpu", "prod-db-cpu"));
        assert!(!glob_match("prod-*", "staging-db"));
        assert!(!glob_match("prod-db", "prod-db-cpu"));
        assert!(glob_match("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!glob_match("*a*b*c*d", "xxaxxbxxcxx"));
        // No blow-up on adversarial input.
        let text = "a".repeat(5000);
        assert!(!glob_match(&format!("{}b", "*a".repeat(50)), &text));
    }

    #[test]
    fn windows_cover_by_time_and_pattern() {
        let now = Utc::now();
        let w = |id: &str, pattern: Option<&str>, from: i64, to: i64| MaintenanceWindow {
            id: id.into(),
            reason: "db upgrade".into(),
            alarm_pattern: pattern.map(str::to_owned),
            starts_at: now + chrono::Duration::minutes(from),
            ends_at: now + chrono::Duration::minutes(to),
            every: None,
        };
        let windows = vec![
            w("all-later", None, 10, 20),
            w("db", Some("prod-db-*"), -5, 30),
            w("db-long", Some("prod-db-*"), -5, 90),
            w("past", None, -60, -1),
        ];
        assert_eq!(
            covering(&windows, "prod-db-cpu", now).map(|(w, _)| w.id.as_str()),
            Some("db-long")
        );
        assert_eq!(covering(&windows, "prod-api", now), None);
        assert!(w("x", None, 0, 1).describe().contains("db upgrade"));
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_weekly_window_covers_each_occurrence_in_its_time_zone() {
        let rule = Recurrence::parse("sat,sun 02:00", "Europe/Berlin", 120).expect("rule");
        let w = MaintenanceWindow {
            id: "weekly".into(),
            reason: "backups".into(),
            alarm_pattern: None,
            starts_at: at("2026-11-01T00:00:00Z"),
            ends_at: forever(),
            every: Some(rule),
        };
        // Saturday 2026-12-05, 02:00 in Berlin (CET, UTC+1) is 01:00 UTC, for two hours.
        assert_eq!(
            w.active_until(at("2026-12-05T01:30:00Z")),
            Some(at("2026-12-05T03:00:00Z"))
        );
        assert_eq!(w.active_until(at("2026-12-05T03:00:00Z")), None);
        assert_eq!(w.active_until(at("2026-12-04T01:30:00Z")), None, "a Friday");
        // In summer (CEST, UTC+2) the same local time is 00:00 UTC.
        assert!(w.active_at(at("2027-06-05T00:30:00Z")));
        assert!(!w.active_at(at("2027-06-05T02:30:00Z")));
        assert_eq!(
            w.next_start(at("2026-12-01T12:00:00Z")),
            Some(at("2026-12-05T01:00:00Z"))
        );
    }

    #[test]
    fn a_weekly_window_entered_during_an_occurrence_holds_it_now() {
        // Sunday 2026-12-06: "every Sunday 17:39 for an hour", entered at 17:44.
        let entered = at("2026-12-06T17:44:00Z");
        let w = MaintenanceWindow {
            id: "deploy".into(),
            reason: "deploy hour".into(),
            alarm_pattern: None,
            starts_at: entered,
            ends_at: forever(),
            every: Some(Recurrence::parse("Sun 17:39", "UTC", 60).expect("rule")),
        };
        assert_eq!(w.active_until(entered), Some(at("2026-12-06T18:39:00Z")));
        assert_eq!(w.active_until(at("2026-12-06T18:39:00Z")), None);
        assert_eq!(
            w.next_start(at("2026-12-06T18:39:00Z")),
            Some(at("2026-12-13T17:39:00Z"))
        );
        // Nothing before it was entered is covered, even within that occurrence.
        assert_eq!(w.active_until(at("2026-12-06T17:40:00Z")), None);
    }

    #[test]
    fn an_occurrence_in_a_spring_forward_gap_moves_to_the_first_valid_instant() {
        // Berlin, 2027-03-28: clocks go from 02:00 CET to 03:00 CEST; 02:30 does not exist.
        let w = MaintenanceWindow {
            id: "night".into(),
            reason: "backups".into(),
            alarm_pattern: None,
            starts_at: at("2027-03-01T00:00:00Z"),
            ends_at: forever(),
            every: Some(Recurrence::parse("sun 02:30", "Europe/Berlin", 60).expect("rule")),
        };
        // 03:00 CEST is 01:00 UTC: that day's occurrence starts then, for its hour.
        assert_eq!(
            w.next_start(at("2027-03-27T12:00:00Z")),
            Some(at("2027-03-28T01:00:00Z"))
        );
        assert_eq!(
            w.active_until(at("2027-03-28T01:30:00Z")),
            Some(at("2027-03-28T02:00:00Z"))
        );
        // When clocks go back (2026-10-25, 02:30 happens twice) the first one counts.
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().expect("zone");
        let twice = NaiveDate::from_ymd_opt(2026, 10, 25)
            .and_then(|d| d.and_hms_opt(2, 30, 0))
            .expect("date");
        assert_eq!(
            local_instant(&berlin, twice),
            Some(at("2026-10-25T00:30:00Z"))
        );
    }

    #[test]
    fn at_takes_what_people_paste() {
        let utc: chrono_tz::Tz = "UTC".parse().expect("zone");
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().expect("zone");
        for (text, tz, want) in [
            ("2026-12-06T18:44:32Z", &berlin, "2026-12-06T18:44:32Z"),
            ("2026-12-06T18:44:32+00:00", &berlin, "2026-12-06T18:44:32Z"),
            (
                "2026-12-06T19:44:32.250+01:00",
                &utc,
                "2026-12-06T18:44:32.250Z",
            ),
            ("2026-12-06 18:44:32Z", &utc, "2026-12-06T18:44:32Z"),
            ("2026-12-06T18:44Z", &berlin, "2026-12-06T18:44:00Z"),
            ("2026-12-06 18:44", &utc, "2026-12-06T18:44:00Z"),
            ("2026-12-06 18:44", &berlin, "2026-12-06T17:44:00Z"),
            ("2026-12-06T18:44", &berlin, "2026-12-06T17:44:00Z"),
            ("2026-12-06T18:44:10", &utc, "2026-12-06T18:44:10Z"),
            (" 2026-12-06T18:44 ", &utc, "2026-12-06T18:44:00Z"),
            // In the spring-forward gap: the first instant after it.
            ("2027-03-28T02:30", &berlin, "2027-03-28T01:00:00Z"),
        ] {
            assert_eq!(parse_at(text, tz), Ok(at(want)), "{text} in {tz}");
        }
        for bad in [
            "tomorrow",
            "2026-13-01T00:00",
            "2026-12-06",
            "18:44",
            "2026-12-06T25:00Z",
        ] {
            let e = parse_at(bad, &utc).expect_err(bad);
            assert!(
                e.to_string().contains("is not a date and time"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn bad_rules_name_what_is_wrong() {
        for (every, tz, want) in [
            ("someday 02:00", "UTC", "is not a day"),
            ("sat 25:00", "UTC", "time of day"),
            ("sat", "UTC", "expected"),
            ("weekdays 22:30 extra", "UTC", "expected `<days> HH:MM`"),
            ("", "UTC", "expected"),
            ("sat 02:00", "Mars/Olympus", "time zone"),
        ] {
            let e = Recurrence::parse(every, tz, 60).expect_err(every);
            assert!(e.to_string().contains(want), "{every} {tz}: {e}");
        }
        assert!(Recurrence::parse("Weekdays 22:30", "America/New_York", 30).is_ok());
        let spaced = Recurrence::parse("sat, sun 03:00", "UTC", 30).expect("spaces after commas");
        assert_eq!(spaced.describe(), "sat,sun 03:00 UTC");
    }

    #[test]
    fn a_rule_is_stored_as_it_always_was() {
        let stored = serde_json::json!({
            "id": "weekly", "reason": "backups",
            "startsAt": "2026-11-01T00:00:00Z", "endsAt": "9999-12-31T23:59:59Z",
            "every": {"days": ["sat", "sun"], "at": "02:00", "tz": "Europe/Berlin", "minutes": 120}
        });
        let w: MaintenanceWindow = serde_json::from_value(stored.clone()).expect("reads");
        let rule = w.every.as_ref().expect("a rule");
        assert_eq!(rule.describe(), "sat,sun 02:00 Europe/Berlin");
        assert_eq!(rule.length(), chrono::Duration::hours(2));
        assert_eq!(serde_json::to_value(&w).expect("writes"), stored);
    }

    #[test]
    fn one_bad_stored_window_does_not_hide_the_others() {
        let window = |id: &str, every: serde_json::Value, ends: &str| {
            serde_json::json!({
                "id": id, "reason": "r", "startsAt": "2026-11-01T00:00:00Z",
                "endsAt": ends, "every": every,
            })
        };
        let rule = |days: &str, tz: &str, minutes: i64| serde_json::json!({"days": [days], "at": "02:00", "tz": tz, "minutes": minutes});
        let far = "2027-01-01T00:00:00Z";
        let kept = usable(vec![
            window("good", rule("sat", "UTC", 60), far),
            window("mars", rule("sat", "Mars/Olympus", 60), far),
            window("someday", rule("someday", "UTC", 60), far),
            window(
                "too-long",
                rule("sat", "UTC", MAX_OCCURRENCE_MINUTES + 1),
                far,
            ),
            window("backwards", serde_json::Value::Null, "2026-10-01T00:00:00Z"),
            serde_json::json!({"id": 7}),
        ]);
        let ids: Vec<&str> = kept.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["good"]);
    }

    #[test]
    fn an_occurrence_in_a_fall_back_overlap_runs_once() {
        // Berlin, 2026-10-25: 02:30 happens twice; the window opens once, at the first.
        let w = MaintenanceWindow {
            id: "night".into(),
            reason: "backups".into(),
            alarm_pattern: None,
            starts_at: at("2026-10-01T00:00:00Z"),
            ends_at: forever(),
            every: Some(Recurrence::parse("sun 02:30", "Europe/Berlin", 30).expect("rule")),
        };
        assert_eq!(
            w.next_start(at("2026-10-24T12:00:00Z")),
            Some(at("2026-10-25T00:30:00Z"))
        );
        assert!(w.active_at(at("2026-10-25T00:45:00Z")));
        // The second 02:30 (01:30 UTC) is not a second occurrence.
        assert!(!w.active_at(at("2026-10-25T01:45:00Z")));
        assert_eq!(
            w.next_start(at("2026-10-25T01:00:00Z")),
            Some(at("2026-11-01T01:30:00Z"))
        );
    }
}
