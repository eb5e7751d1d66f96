//! A person's on-duty calendar feed behind a secret URL: `/oncall/feed/PERSON/TOKEN.ics`,
//! where TOKEN is an HMAC-SHA256 of the person's id under a key only the service holds. A
//! calendar app polls it; anyone without the URL learns nothing (an unknown person and a
//! wrong token get the same 404), and one person's URL opens no one else's.

use chrono::{DateTime, Utc};
use ring::hmac;

use crate::oncall::file::OnCall;
use crate::oncall::model::{PersonId, Schedule};
use crate::oncall::resolve::{Shift, shifts};

/// The key of the feeds' URLs.
#[derive(Clone)]
pub struct FeedKey(hmac::Key);

impl std::fmt::Debug for FeedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeedKey(…)")
    }
}

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ONCALL_FEED_KEY must be at least 32 characters")]
pub struct ShortKey;

impl FeedKey {
    pub fn new(secret: &str) -> Result<Self, ShortKey> {
        if secret.trim().len() < 32 {
            return Err(ShortKey);
        }
        Ok(Self(hmac::Key::new(
            hmac::HMAC_SHA256,
            secret.trim().as_bytes(),
        )))
    }

    fn message(person: &PersonId) -> String {
        // Bound to this use: the same key signing something else never makes a feed URL.
        format!("cw-support-api oncall feed v1:{person}")
    }

    /// The token of a person's feed (hex).
    pub fn token(&self, person: &PersonId) -> String {
        let tag = hmac::sign(&self.0, Self::message(person).as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `token` is this person's, compared in constant time.
    pub fn verifies(&self, person: &PersonId, token: &str) -> bool {
        let Some(tag) = unhex(token) else {
            return false;
        };
        hmac::verify(&self.0, Self::message(person).as_bytes(), &tag).is_ok()
    }

    /// The path of a person's feed.
    pub fn path(&self, person: &PersonId) -> String {
        format!("/oncall/feed/{person}/{}.ics", self.token(person))
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
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
        assert!(matches!(FeedKey::new("short"), Err(ShortKey)));
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
