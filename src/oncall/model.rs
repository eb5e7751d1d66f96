//! The on-duty model, parsed into types that cannot be invalid: a person's id and phone
//! numbers, a shift's length, a rotation with at least one person, an active window, an
//! override, a schedule in a time zone.

use chrono::{NaiveDateTime, NaiveTime, Weekday};

use crate::domain::settings::EmailAddress;

/// Why a part of an on-duty file cannot be used: what and where, as the person fixing the
/// file needs to read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error(
        "{0:?} is not a person id (a-z, 0-9, - and _, starting with a letter or digit, at most 64)"
    )]
    PersonId(String),
    #[error("{0:?} is not a phone number in E.164 form (+ and 7 to 15 digits, e.g. +15555550100)")]
    Phone(String),
    #[error("{0:?} is not a shift length (a number and h, d or w: 12h, 1d, 1w; at most a year)")]
    Shift(String),
    #[error("{0:?} is not a time zone (e.g. Europe/Berlin)")]
    Zone(String),
    #[error("{0:?} is not a local date and time (YYYY-MM-DDTHH:MM)")]
    LocalTime(String),
    #[error("{0:?} is not an active window (days and HH:MM-HH:MM, e.g. `mon-fri 09:00-18:00`)")]
    Window(String),
    #[error("a rotation needs at least one person")]
    EmptyRotation,
    #[error("the override ends ({until}) before it starts ({from})")]
    Backwards {
        from: NaiveDateTime,
        until: NaiveDateTime,
    },
}

/// A person's id, as schedules and policies name them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonId(String);

impl PersonId {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let ok = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        ok.then(|| Self(s.to_owned()))
            .ok_or_else(|| ModelError::PersonId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PersonId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form: what SNS SMS and voice services take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        crate::domain::sms_reply::is_e164(s)
            .then(|| Self(s.to_owned()))
            .ok_or_else(|| ModelError::Phone(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Someone who can be on duty, and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: PersonId,
    pub name: String,
    pub time_zone: chrono_tz::Tz,
    pub sms: Option<PhoneNumber>,
    pub voice: Option<PhoneNumber>,
    pub email: Option<EmailAddress>,
    /// A personal webhook (https), posted to like the team's.
    pub webhook: Option<String>,
    /// Their working hours in their own zone, as the file gave them: a callout outside them
    /// is an off-hours callout (paid as such). `None`: [`DEFAULT_WORKING_HOURS`].
    pub working_hours: Option<ActiveWindow>,
}

/// Working hours where a person's are not given: Monday to Friday, 09:00 to 18:00.
pub const DEFAULT_WORKING_HOURS: &str = "mon-fri 09:00-18:00";

impl Person {
    /// Whether an instant falls outside this person's working hours, in their own zone.
    pub fn off_hours(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        let local = at.with_timezone(&self.time_zone).naive_local();
        let inside = match &self.working_hours {
            Some(w) => w.contains(local),
            None => ActiveWindow::parse(DEFAULT_WORKING_HOURS)
                .map(|w| w.contains(local))
                .unwrap_or(false),
        };
        !inside
    }
}

/// How long one person's turn lasts, counted in local time: `12h`, `1d`, `1w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftLength {
    Hours(u32),
    Days(u32),
}

impl ShiftLength {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let bad = || ModelError::Shift(s.to_owned());
        let t = s.trim();
        let (n, unit) = t.split_at(t.len().saturating_sub(1));
        let n: u32 = n.parse().map_err(|_| bad())?;
        let length = match unit {
            "h" => Self::Hours(n),
            "d" => Self::Days(n),
            "w" => Self::Days(n.checked_mul(7).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        let hours = length.hours();
        (1..=366 * 24)
            .contains(&hours)
            .then_some(length)
            .ok_or_else(bad)
    }

    /// The length in local hours.
    pub fn hours(self) -> u64 {
        match self {
            Self::Hours(h) => u64::from(h),
            Self::Days(d) => u64::from(d) * 24,
        }
    }

    /// As the file writes it: weeks when whole, else days, else hours.
    pub fn text(self) -> String {
        match self {
            Self::Days(d) if d % 7 == 0 => format!("{}w", d / 7),
            Self::Days(d) => format!("{d}d"),
            Self::Hours(h) => format!("{h}h"),
        }
    }

    /// The length as a local (naive) duration: added to a local time, not to an instant.
    pub fn local(self) -> chrono::Duration {
        match self {
            Self::Hours(h) => chrono::Duration::hours(i64::from(h)),
            Self::Days(d) => chrono::Duration::days(i64::from(d)),
        }
    }
}

/// When a layer applies: on these weekdays, from `start` to `end` local time (an `end` at
/// or before `start` runs past midnight into the next day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveWindow {
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl ActiveWindow {
    /// Reads `mon-fri 09:00-18:00`, `sat,sun 00:00-00:00` (all day), `daily 22:00-06:00`.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let bad = || ModelError::Window(s.to_owned());
        let (days, times) = s.trim().split_once(' ').ok_or_else(bad)?;
        let (start, end) = times.trim().split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        Ok(Self {
            days: weekdays(days).ok_or_else(bad)?,
            start: time(start)?,
            end: time(end)?,
        })
    }

    /// As the file writes it: `mon,tue 09:00-18:00`.
    pub fn text(&self) -> String {
        let days: Vec<String> = self
            .days
            .iter()
            .map(|d| d.to_string().to_ascii_lowercase())
            .collect();
        format!(
            "{} {}-{}",
            days.join(","),
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }

    /// Whether a local date and time falls inside the window.
    pub fn contains(&self, local: NaiveDateTime) -> bool {
        use chrono::Datelike;
        let (day, at) = (local.weekday(), local.time());
        if self.start < self.end {
            return self.days.contains(&day) && self.start <= at && at < self.end;
        }
        // Past midnight (or all day when start == end): the evening part on the listed day,
        // the morning part on the day after.
        (self.days.contains(&day) && at >= self.start)
            || (self.days.contains(&day.pred()) && at < self.end)
    }
}

fn weekdays(s: &str) -> Option<Vec<Weekday>> {
    use crate::domain::maintenance::WEEK as ALL;
    let day = |d: &str| {
        ALL.into_iter()
            .find(|w| w.to_string().eq_ignore_ascii_case(d))
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "daily" => return Some(ALL.to_vec()),
        "weekdays" => return Some(ALL[..5].to_vec()),
        _ => {}
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.trim().split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    out.push(d);
                    if d == b {
                        break;
                    }
                    d = d.succ();
                }
            }
            None => out.push(day(part.trim())?),
        }
    }
    Some(out)
}

/// People in turn, each for one shift, from `start` (local), in one layer of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    people: Vec<PersonId>,
    pub start: NaiveDateTime,
    pub shift: ShiftLength,
    /// When the layer applies; `None`: always.
    pub active: Option<ActiveWindow>,
}

impl Rotation {
    pub fn new(
        people: Vec<PersonId>,
        start: NaiveDateTime,
        shift: ShiftLength,
        active: Option<ActiveWindow>,
    ) -> Result<Self, ModelError> {
        if people.is_empty() {
            return Err(ModelError::EmptyRotation);
        }
        Ok(Self {
            people,
            start,
            shift,
            active,
        })
    }

    pub fn people(&self) -> &[PersonId] {
        &self.people
    }
}

/// This person on duty from `from` until `until` (local), whatever the rotations say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub person: PersonId,
    pub from: NaiveDateTime,
    pub until: NaiveDateTime,
}

impl Override {
    pub fn new(
        person: PersonId,
        from: NaiveDateTime,
        until: NaiveDateTime,
    ) -> Result<Self, ModelError> {
        if until <= from {
            return Err(ModelError::Backwards { from, until });
        }
        Ok(Self {
            person,
            from,
            until,
        })
    }
}

/// A schedule in a time zone: layers of rotations (a later layer wins while it applies) and
/// overrides (a later override wins over an earlier one, and any over the rotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: String,
    pub time_zone: chrono_tz::Tz,
    pub rotations: Vec<Rotation>,
    pub overrides: Vec<Override>,
}

/// Reads a local date and time as people write it: `2027-03-01T09:00` (seconds optional).
pub fn local_time(s: &str) -> Result<NaiveDateTime, ModelError> {
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())
        .ok_or_else(|| ModelError::LocalTime(s.to_owned()))
}

/// Writes a local date and time as the file does (seconds only when there are some).
pub fn local_time_text(t: NaiveDateTime) -> String {
    use chrono::Timelike;
    match t.second() {
        0 => t.format("%Y-%m-%dT%H:%M").to_string(),
        _ => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
    }
}

/// Reads an IANA time zone.
pub fn zone(s: &str) -> Result<chrono_tz::Tz, ModelError> {
    s.parse().map_err(|_| ModelError::Zone(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_is_checked_and_named() {
        assert!(PersonId::parse("alice").is_ok());
        assert!(PersonId::parse("bob-2_x").is_ok());
        for bad in ["", "Alice", "-x", "a b", "ä", &"a".repeat(65)] {
            assert_eq!(PersonId::parse(bad), Err(ModelError::PersonId(bad.into())));
        }
        assert!(PhoneNumber::parse("+15555550100").is_ok());
        for bad in [
            "15555550100",
            "+0123456789",
            "+1555",
            "+1555555010012345",
            "+1 555 555",
        ] {
            let e = PhoneNumber::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("E.164"), "{bad}: {e}");
        }
        assert_eq!(ShiftLength::parse("12h"), Ok(ShiftLength::Hours(12)));
        assert_eq!(ShiftLength::parse("1d"), Ok(ShiftLength::Days(1)));
        assert_eq!(ShiftLength::parse("2w"), Ok(ShiftLength::Days(14)));
        for bad in ["0h", "1y", "h", "-1d", "53w", "99999999999w", ""] {
            assert!(ShiftLength::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            zone("Mars/Olympus"),
            Err(ModelError::Zone("Mars/Olympus".into()))
        );
        assert!(local_time("2027-03-01T09:00").is_ok());
        assert!(local_time("2027-03-01").is_err());
        let p = PersonId::parse("alice").expect("id");
        assert_eq!(
            Rotation::new(
                vec![],
                local_time("2027-03-01T09:00").expect("t"),
                ShiftLength::Days(7),
                None
            ),
            Err(ModelError::EmptyRotation)
        );
        let t = local_time("2027-03-01T09:00").expect("t");
        assert!(matches!(
            Override::new(p, t, t),
            Err(ModelError::Backwards { .. })
        ));
    }

    #[test]
    fn active_windows_read_days_and_hours() {
        let w = ActiveWindow::parse("mon-fri 09:00-18:00").expect("window");
        assert_eq!(w.days.len(), 5);
        let at = |s: &str| local_time(s).expect("t");
        assert!(w.contains(at("2027-03-01T09:00")), "Monday 09:00");
        assert!(!w.contains(at("2027-03-01T18:00")), "the end is not in it");
        assert!(!w.contains(at("2027-03-06T10:00")), "Saturday");
        let night = ActiveWindow::parse("fri 22:00-06:00").expect("window");
        assert!(night.contains(at("2027-03-05T23:00")), "Friday night");
        assert!(
            night.contains(at("2027-03-06T05:59")),
            "into Saturday morning"
        );
        assert!(
            !night.contains(at("2027-03-05T05:00")),
            "Friday morning belongs to Thursday"
        );
        let weekend = ActiveWindow::parse("sat,sun 00:00-00:00").expect("all day");
        assert!(weekend.contains(at("2027-03-07T12:00")));
        assert!(!weekend.contains(at("2027-03-08T12:00")));
        for bad in ["mon-fri", "someday 09:00-10:00", "mon 9-10", "mon 09:00"] {
            assert_eq!(
                ActiveWindow::parse(bad),
                Err(ModelError::Window(bad.into())),
                "{bad}"
            );
        }
    }
}
