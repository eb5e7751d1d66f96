use super::*;
use crate::domain::page::PageId;
use crate::oncall::file::import;

const EXAMPLE: &str = include_str!("../../../tests/data/oncall/example.toml");

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

fn callout(page: u64, person: &str, when: &str, off_hours: bool) -> Callout {
    Callout {
        page: PageId(page),
        person: person.into(),
        schedule: Some("primary".into()),
        at: at(when),
        local_time: String::new(),
        off_hours,
    }
}

/// The example with everyone in Berlin, so that every person's month is the same span.
fn berlin() -> OnCall {
    import(&EXAMPLE.replace("America/New_York", "Europe/Berlin")).expect("valid")
}

#[test]
fn months_read_and_refuse() {
    assert_eq!(Month::parse("2026-12").expect("month").text(), "2026-12");
    for bad in ["2026-13", "2026-1", "26-12", "december", "2026-12-01", ""] {
        let e = Month::parse(bad).expect_err(bad);
        assert!(e.contains("is not a month (YYYY-MM"), "{e}");
    }
    let (a, b) = Month::parse("2026-12")
        .expect("m")
        .span(&chrono_tz::Europe::Berlin);
    assert_eq!(a, at("2026-11-30T23:00:00Z"));
    assert_eq!(b, at("2026-12-31T23:00:00Z"));
}

/// March 2027 in Berlin, worked out by hand: the rotation starts on Monday 1 March at
/// 09:00; carol's business-hours layer wins on the 23 weekdays from 09:00 to 18:00 (207 h)
/// and her override from Saturday 27th 18:00 to Monday 29th 09:00 (38 h: the clocks go
/// forward on the 28th). Alice has weeks 1, 3 and from the 29th (123 + 123 + 36 h), bob
/// weeks 2 and 4 (123 + 84 h): 734 h in all, from the start to the month's end.
#[test]
fn time_on_duty_is_each_persons_share_of_the_month() {
    let rows = report(&berlin(), &[], Month::parse("2027-03").expect("m"));
    let hours: Vec<(&str, f64)> = rows
        .iter()
        .map(|r| (r.person.as_str(), r.on_duty_hours))
        .collect();
    assert_eq!(
        hours,
        vec![("alice", 282.0), ("bob", 207.0), ("carol", 245.0)]
    );
    // Nobody before the rotation starts.
    let feb = report(&berlin(), &[], Month::parse("2027-02").expect("m"));
    assert!(feb.iter().all(|r| r.on_duty_hours == 0.0), "{feb:?}");
}

#[test]
fn callouts_count_in_the_persons_own_month_with_off_hours_apart() {
    let on_call = berlin();
    let callouts = vec![
        // 00:30 on 1 March in Berlin: March's, though February's in UTC.
        callout(1, "alice", "2027-02-28T23:30:00Z", true),
        callout(2, "alice", "2027-03-10T10:00:00Z", false),
        callout(3, "bob", "2027-03-31T22:30:00Z", true), // 1 April in Berlin: not March
        callout(4, "dave", "2027-03-05T02:00:00Z", true), // no longer in the file
    ];
    let rows = report(&on_call, &callouts, Month::parse("2027-03").expect("m"));
    let of = |p: &str| rows.iter().find(|r| r.person == p).expect(p).clone();
    assert_eq!(
        (of("alice").callouts, of("alice").off_hours_callouts),
        (2, 1)
    );
    assert_eq!(of("bob").callouts, 0);
    assert_eq!(of("carol").callouts, 0);
    let dave = of("dave");
    assert_eq!(
        (dave.callouts, dave.off_hours_callouts, dave.name.as_str()),
        (1, 1, "")
    );
}

#[test]
fn the_csv_quotes_what_it_must_and_never_writes_a_formula() {
    let rows = vec![
        PersonMonth {
            person: "alice".into(),
            name: "Example, Alice \"Al\"".into(),
            time_zone: "Europe/Berlin".into(),
            callouts: 2,
            off_hours_callouts: 1,
            on_duty_hours: 282.0,
        },
        PersonMonth {
            person: "bob".into(),
            name: "=HYPERLINK(\"x\")".into(),
            time_zone: "UTC".into(),
            callouts: 0,
            off_hours_callouts: 0,
            on_duty_hours: 12.5,
        },
    ];
    assert_eq!(
        csv(&rows),
        "person,name,time_zone,callouts,off_hours_callouts,on_duty_hours\n\
         alice,\"Example, Alice \"\"Al\"\"\",Europe/Berlin,2,1,282.00\n\
         bob,\"'=HYPERLINK(\"\"x\"\")\",UTC,0,0,12.50\n"
    );
}

#[test]
fn the_month_of_an_instant_and_the_month_before() {
    let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().expect("time");
    let m = Month::of(t("2027-01-31T23:59:59Z"));
    assert_eq!(m.text(), "2027-01");
    assert_eq!(m.previous().text(), "2026-12");
    assert_eq!(
        Month::of(t("2026-03-01T00:00:00Z")).previous().text(),
        "2026-02"
    );
}
