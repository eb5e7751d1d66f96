//! A schedule's shifts as an iCalendar (RFC 5545) file, one event per shift, for each
//! person's calendar: times in UTC (no VTIMEZONE needed), CRLF line ends, lines folded at 75
//! octets without splitting a character, text escaped.

use chrono::{DateTime, Utc};

use crate::oncall::model::{Person, Schedule};
use crate::oncall::resolve::Shift;

/// The calendar of these shifts of `schedule`; `stamp` is when it was made (DTSTAMP).
pub fn calendar(
    schedule: &Schedule,
    shifts: &[Shift],
    people: &[Person],
    stamp: DateTime<Utc>,
) -> String {
    let events: Vec<(&Schedule, &Shift)> = shifts.iter().map(|s| (schedule, s)).collect();
    events_calendar(&format!("On duty: {}", schedule.id), &events, people, stamp)
}

/// A calendar named `name` of shifts from any schedules (a person's feed).
pub fn events_calendar(
    name: &str,
    events: &[(&Schedule, &Shift)],
    people: &[Person],
    stamp: DateTime<Utc>,
) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//cw-support-api//on duty//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        format!("X-WR-CALNAME:{}", text(name)),
    ];
    for (schedule, shift) in events {
        let name = people
            .iter()
            .find(|p| p.id == shift.person)
            .map_or(shift.person.as_str(), |p| p.name.as_str());
        lines.extend([
            "BEGIN:VEVENT".to_owned(),
            // Stable across exports: the same shift keeps its event in a subscribed calendar.
            format!(
                "UID:{}-{}-{}@cw-support-api",
                schedule.id,
                shift.person,
                shift.from.timestamp()
            ),
            format!("DTSTAMP:{}", utc(stamp)),
            format!("DTSTART:{}", utc(shift.from)),
            format!("DTEND:{}", utc(shift.until)),
            format!(
                "SUMMARY:{}",
                text(&format!("On duty: {name} ({})", schedule.id))
            ),
            "TRANSP:TRANSPARENT".to_owned(),
            "END:VEVENT".to_owned(),
        ]);
    }
    lines.push("END:VCALENDAR".to_owned());
    lines.iter().map(|l| fold(l)).collect()
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// TEXT escaping (§3.3.11): backslash, semicolon, comma, newline; other controls dropped.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded (§3.1): at most 75 octets a line, continued with CRLF and a
/// space, never inside a UTF-8 sequence; ended with CRLF.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut used = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        // A continuation line's leading space counts toward its 75.
        if used + n > 75 {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += n;
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::model::{PersonId, zone};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("t")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_calendar_has_one_event_per_shift_in_utc() {
        let schedule = Schedule {
            id: "primary".into(),
            time_zone: zone("Europe/Berlin").expect("zone"),
            rotations: vec![],
            overrides: vec![],
        };
        let alice = PersonId::parse("alice").expect("id");
        let people = vec![Person {
            id: alice.clone(),
            name: "Alice; \"Ops\", Example".into(),
            time_zone: schedule.time_zone,
            sms: None,
            voice: None,
            email: None,
            webhook: Some("https://x".into()),
            working_hours: None,
        }];
        let shifts = vec![Shift {
            person: alice,
            from: at("2027-03-01T08:00:00Z"),
            until: at("2027-03-08T08:00:00Z"),
        }];
        let ics = calendar(&schedule, &shifts, &people, at("2027-02-01T00:00:00Z"));
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 1);
        assert!(ics.contains("\r\nDTSTART:20270301T080000Z\r\nDTEND:20270308T080000Z\r\n"));
        assert!(ics.contains("SUMMARY:On duty: Alice\\; \"Ops\"\\, Example (primary)\r\n"));
        assert!(ics.contains("UID:primary-alice-1803888000@cw-support-api"));
        assert!(!ics.replace("\r\n", "").contains('\n'), "CRLF only");
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_a_character() {
        let line = format!("SUMMARY:{}", "é".repeat(100));
        let folded = fold(&line);
        for part in folded.trim_end_matches("\r\n").split("\r\n") {
            assert!(part.len() <= 75, "{} octets", part.len());
        }
        let unfolded = folded.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, line);
        assert_eq!(text("a\\b\nc\u{7}"), "a\\\\b\\nc");
    }
}
