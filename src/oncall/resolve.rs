//! Who is on duty: plain code over a [`Schedule`]. An override wins (the last listed, where
//! they overlap); otherwise the last rotation layer that applies at that instant (started,
//! and inside its active window) names the person whose turn it is. A turn's hand-over is at
//! the rotation's local start time plus whole shifts, in local time, so it keeps its wall-clock
//! time through daylight-saving changes.

use chrono::{DateTime, Utc};

use crate::domain::maintenance::local_instant;
use crate::oncall::model::{PersonId, Rotation, Schedule};

/// The person on duty at an instant, and when that changes (`None`: not within a year).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnDuty {
    pub person: PersonId,
    pub until: Option<DateTime<Utc>>,
}

/// One person's stretch of duty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub person: PersonId,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// How far ahead a change is looked for: a shift lasts at most a year.
const HORIZON_DAYS: i64 = 370;

/// Who is on duty in `schedule` at `at`, and until when; `None` when nobody is (before every
/// rotation starts, or outside every active window with no override).
pub fn on_duty(schedule: &Schedule, at: DateTime<Utc>) -> Option<OnDuty> {
    let person = who(schedule, at)?;
    // Near first: most turns end within days, and a year of hourly hand-overs is long.
    let until = [2, 16, HORIZON_DAYS].into_iter().find_map(|days| {
        changes(schedule, at, at + chrono::Duration::days(days))
            .into_iter()
            .find(|c| who(schedule, *c).as_ref() != Some(&person))
    });
    Some(OnDuty { person, until })
}

/// The shifts between `from` and `until`, each cut to that span; gaps where nobody is on duty
/// are left out, and two turns of the same person back to back are one shift.
pub fn shifts(schedule: &Schedule, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Shift> {
    let mut points = vec![from];
    points.extend(
        changes(schedule, from, until)
            .into_iter()
            .filter(|c| *c < until),
    );
    let mut out: Vec<Shift> = Vec::new();
    for (i, start) in points.iter().enumerate() {
        let end = points.get(i + 1).copied().unwrap_or(until);
        let Some(person) = who(schedule, *start) else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.person == person && last.until == *start => last.until = end,
            _ => out.push(Shift {
                person,
                from: *start,
                until: end,
            }),
        }
    }
    out
}

/// The person the schedule names at `at`.
fn who(schedule: &Schedule, at: DateTime<Utc>) -> Option<PersonId> {
    let tz = &schedule.time_zone;
    let overridden = schedule.overrides.iter().rev().find(|o| {
        let (from, until) = (local_instant(tz, o.from), local_instant(tz, o.until));
        from.is_some_and(|f| f <= at) && until.is_some_and(|u| at < u)
    });
    if let Some(o) = overridden {
        return Some(o.person.clone());
    }
    schedule
        .rotations
        .iter()
        .rev()
        .find_map(|r| in_turn(schedule, r, at))
}

/// Whose turn it is in this rotation at `at`, if the layer applies then.
fn in_turn(schedule: &Schedule, rotation: &Rotation, at: DateTime<Utc>) -> Option<PersonId> {
    if let Some(window) = &rotation.active {
        let local = at.with_timezone(&schedule.time_zone).naive_local();
        if !window.contains(local) {
            return None;
        }
    }
    let turn = turn_at(schedule, rotation, at)?;
    let people = rotation.people();
    let n = i64::try_from(people.len()).ok()?;
    people
        .get(usize::try_from(turn.rem_euclid(n)).ok()?)
        .cloned()
}

/// The instant turn `k` of a rotation begins: its local start plus `k` shifts, in local time.
fn hand_over(schedule: &Schedule, rotation: &Rotation, k: i64) -> Option<DateTime<Utc>> {
    let local = rotation
        .start
        .checked_add_signed(rotation.shift.local().checked_mul(i32::try_from(k).ok()?)?)?;
    local_instant(&schedule.time_zone, local)
}

/// The turn under way at `at` (the last hand-over at or before it); `None` before the first.
fn turn_at(schedule: &Schedule, rotation: &Rotation, at: DateTime<Utc>) -> Option<i64> {
    if hand_over(schedule, rotation, 0)? > at {
        return None;
    }
    // Estimated from local time, then settled on the instants (a hand-over's instant moves
    // by an hour around a daylight-saving change).
    let local = at.with_timezone(&schedule.time_zone).naive_local();
    let minutes = rotation.shift.local().num_minutes();
    let mut k = (local - rotation.start)
        .num_minutes()
        .div_euclid(minutes)
        .max(0);
    while k > 0 && hand_over(schedule, rotation, k).is_none_or(|t| t > at) {
        k -= 1;
    }
    while hand_over(schedule, rotation, k + 1).is_some_and(|t| t <= at) {
        k += 1;
    }
    Some(k)
}

/// Every instant in `(after, until]` at which the schedule may name someone else: each
/// rotation's hand-overs, each active window's opening and closing, each override's ends.
fn changes(schedule: &Schedule, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let tz = &schedule.time_zone;
    let mut found = Vec::new();
    for rotation in &schedule.rotations {
        let mut k = turn_at(schedule, rotation, after).map_or(0, |k| k + 1);
        while let Some(t) = hand_over(schedule, rotation, k).filter(|t| *t <= until) {
            found.push(t);
            k += 1;
        }
        if let Some(window) = &rotation.active {
            let first = after.with_timezone(tz).date_naive() - chrono::Duration::days(1);
            let days = (until - after).num_days() + 2;
            for d in 0..=days {
                let date = first + chrono::Duration::days(d);
                for time in [window.start, window.end] {
                    found.extend(local_instant(tz, date.and_time(time)));
                }
            }
        }
    }
    for o in &schedule.overrides {
        found.extend(local_instant(tz, o.from));
        found.extend(local_instant(tz, o.until));
    }
    found.retain(|t| after < *t && *t <= until);
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests;
