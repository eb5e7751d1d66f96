//! A person's on-duty calendar feed behind a secret URL: `/oncall/feed/PERSON/TOKEN.ics`,
//! where TOKEN is an HMAC-SHA256 of the person's id under a key only the service holds. A
//! calendar app polls it; anyone without the URL learns nothing (an unknown person and a
//! wrong token get the same 404), and one person's URL opens no one else's.

use chrono::{DateTime, Utc};

use crate::domain::signing::{ShortKey, SigningKey};
use crate::oncall::file::OnCall;
use crate::oncall::model::{PersonId, Schedule};
use crate::oncall::resolve::{Shift, shifts};

/// The key of the feeds' URLs.
#[derive(Clone, Debug)]
pub struct FeedKey(SigningKey);

impl FeedKey {
    pub fn new(secret: &str) -> Result<Self, ShortKey> {
        SigningKey::new("ONCALL_FEED_KEY", secret).map(Self)
    }

    fn message(person: &PersonId) -> String {
        // Bound to this use: the same key signing something else never makes a feed URL.
        format!("cw-support-api oncall feed v1:{person}")
    }

    /// The token of a person's feed (hex).
    pub fn token(&self, person: &PersonId) -> String {
        self.0.sign(&Self::message(person))
    }

    /// Whether `token` is this person's, compared in constant time.
    pub fn verifies(&self, person: &PersonId, token: &str) -> bool {
        self.0.verifies(&Self::message(person), token)
    }

    /// The path of a person's feed.
    pub fn path(&self, person: &PersonId) -> String {
        format!("/oncall/feed/{person}/{}.ics", self.token(person))
    }
}

/// A person's shifts in every schedule, from 7 days ago to 90 days ahead, as a calendar;
/// `None` when the file has no such person.
pub fn person_calendar(on_call: &OnCall, person: &PersonId, now: DateTime<Utc>) -> Option<String> {
    let who = on_call.people.iter().find(|p| &p.id == person)?;
    let (from, until) = (
        now - chrono::Duration::days(7),
        now + chrono::Duration::days(90),
    );
    let all: Vec<(&Schedule, Shift)> = on_call
        .schedules
        .iter()
        .flat_map(|s| {
            shifts(s, from, until)
                .into_iter()
                .filter(|x| &x.person == person)
                .map(move |x| (s, x))
        })
        .collect();
    let events: Vec<(&Schedule, &Shift)> = all.iter().map(|(s, x)| (*s, x)).collect();
    Some(crate::oncall::ical::events_calendar(
        &format!("On duty: {}", who.name),
        &events,
        &on_call.people,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_url_opens_its_person_only() {
        assert!(matches!(
            FeedKey::new("short"),
            Err(ShortKey("ONCALL_FEED_KEY"))
        ));
        let key = FeedKey::new("0123456789abcdef0123456789abcdef").expect("key");
        let alice = PersonId::parse("alice").expect("id");
        let bob = PersonId::parse("bob").expect("id");
        let token = key.token(&alice);
        assert_eq!(token.len(), 64);
        assert!(key.verifies(&alice, &token));
        assert!(
            !key.verifies(&bob, &token),
            "alice's token does not open bob's feed"
        );
        let other = FeedKey::new("another key, another service, 0123456789").expect("key");
        assert!(!other.verifies(&alice, &token), "a token of another key");
        let mut flipped = token.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).expect("hex");
        for bad in [
            &flipped[..],
            "",
            &token[..63],
            "zz",
            &format!("{token}00")[..],
        ] {
            assert!(!key.verifies(&alice, bad), "{bad}");
        }
        assert_eq!(key.path(&alice), format!("/oncall/feed/alice/{token}.ics"));
        assert!(!format!("{key:?}").contains("0123"), "the key never shows");
    }

    #[test]
    fn a_persons_calendar_holds_their_shifts_in_every_schedule() {
        let on_call =
            crate::oncall::file::import(include_str!("../../tests/data/oncall/example.toml"))
                .expect("example");
        let now = DateTime::parse_from_rfc3339("2027-03-02T12:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let alice = PersonId::parse("alice").expect("id");
        let ics = person_calendar(&on_call, &alice, now).expect("alice is listed");
        // From 7 days before to 90 after: alice's turns at 18:00 to 09:00 Berlin on weekdays
        // (carol has the days) and the weekends of her weeks.
        let events = ics.matches("BEGIN:VEVENT").count();
        assert!(events >= 5, "{events} events:\n{ics}");
        assert_eq!(
            ics.matches("SUMMARY:On duty: Alice Example (primary)")
                .count(),
            events
        );
        assert!(
            ics.contains("DTSTART:20270301T170000Z\r\nDTEND:20270302T080000Z\r\n"),
            "{ics}"
        );
        let zoe = PersonId::parse("zoe").expect("id");
        assert_eq!(person_calendar(&on_call, &zoe, now), None);
    }
}
