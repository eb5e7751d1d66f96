use std::sync::Arc;

use super::*;
use crate::backend::local::LocalBackend;
use crate::domain::page::{Channel, Via};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

fn open() -> (tempfile::TempDir, Arc<SqliteLedger>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = LocalBackend::open(dir.path()).expect("open");
    (dir, b.ledger)
}

fn new_page(key: &str, event: &str, at: &str) -> NewPage {
    NewPage {
        key: key.into(),
        alarm: key.into(),
        policy: "default".into(),
        summary: format!("{key} is in ALARM"),
        event: event.into(),
        at: t(at),
        first_due: t(at),
    }
}

fn message(page: PageId, person: &str, channel: Channel, stage: u32) -> NewMessage {
    NewMessage {
        key: format!("{page}/0/{stage}/{person}/{}", channel.as_str()),
        person: person.into(),
        channel,
        to: format!("{person}@example.com"),
        text: "Page: db is in ALARM".into(),
        stage: Some(stage),
        round: Some(0),
    }
}

fn step(
    page: PageId,
    from: Position,
    messages: Vec<NewMessage>,
    next: Option<(Position, DateTime<Utc>)>,
) -> Advance {
    Advance {
        page,
        from,
        messages,
        callouts: Vec::new(),
        timeline: vec!["a step".into()],
        next,
        notices: Vec::new(),
    }
}

#[tokio::test]
async fn an_alarm_opens_one_page_and_later_events_attach_to_it_once() {
    let (_d, l) = open();
    let first = l
        .raise(new_page("db", "e1", "2027-03-01T03:00:00Z"))
        .await
        .expect("raise");
    let Raised::Opened(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        l.raise(new_page("db", "e1", "2027-03-01T03:00:01Z"))
            .await
            .expect("again"),
        Raised::Again(id)
    );
    assert_eq!(
        l.raise(new_page("db", "e2", "2027-03-01T03:05:00Z"))
            .await
            .expect("attach"),
        Raised::Attached(id)
    );
    let other = l
        .raise(new_page("web", "e3", "2027-03-01T03:06:00Z"))
        .await
        .expect("other");
    assert_ne!(other.page(), id, "another key, another page");
    let record = l.page(id).await.expect("read").expect("page");
    assert_eq!(record.page.state, PageState::Open);
    assert_eq!(
        record.timeline.len(),
        2,
        "opened, then fired again: {:?}",
        record.timeline
    );
    assert!(record.timeline[1].text.contains("fired again"));
    assert_eq!(l.live("db").await.expect("live").map(|p| p.id), Some(id));
    // Once resolved, the next event opens a new page.
    l.act(
        id,
        Action::Resolve {
            by: None,
            via: Via::Alarm,
        },
        None,
        t("2027-03-01T03:10:00Z"),
    )
    .await
    .expect("resolve");
    assert_eq!(l.live("db").await.expect("live"), None);
    let next = l
        .raise(new_page("db", "e4", "2027-03-01T04:00:00Z"))
        .await
        .expect("raise");
    assert!(matches!(next, Raised::Opened(n) if n != id), "{next:?}");
}

#[tokio::test]
async fn a_due_page_is_leased_to_one_taker_and_a_step_commits_once() {
    let (_d, l) = open();
    let id = l
        .raise(new_page("db", "e1", "2027-03-01T03:00:00Z"))
        .await
        .expect("raise")
        .page();
    let now = t("2027-03-01T03:00:00Z");
    let lease = t("2027-03-01T03:00:30Z");
    assert!(
        l.due(t("2027-03-01T02:59:59Z"), lease, 10)
            .await
            .expect("due")
            .is_empty(),
        "not due yet"
    );
    let taken = l.due(now, lease, 10).await.expect("due");
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].position, Position::START);
    assert!(
        l.due(now, lease, 10).await.expect("due").is_empty(),
        "leased: another instance takes nothing"
    );
    let next = Position { round: 0, stage: 1 };
    let s = step(
        id,
        Position::START,
        vec![message(id, "alice", Channel::Sms, 0)],
        Some((next, t("2027-03-01T03:10:00Z"))),
    );
    assert!(l.advance(s.clone(), now).await.expect("advance"));
    // The same step again (another instance whose lease lapsed): nothing is written.
    assert!(!l.advance(s, now).await.expect("again"));
    let record = l.page(id).await.expect("read").expect("page");
    assert_eq!(record.messages.len(), 1, "{:?}", record.messages);
    assert_eq!(record.messages[0].stage, Some(1), "shown 1-based");
    assert_eq!(record.page.position, next);
    assert_eq!(record.page.next_at, Some(t("2027-03-01T03:10:00Z")));
    // A step whose message key was queued before queues it once.
    let again = step(id, next, vec![message(id, "alice", Channel::Sms, 0)], None);
    assert!(l.advance(again, now).await.expect("advance"));
    let record = l.page(id).await.expect("read").expect("page");
    assert_eq!(record.messages.len(), 1);
    assert_eq!(
        record.page.state,
        PageState::Unanswered,
        "no next step: unanswered"
    );
}

async fn raised(l: &SqliteLedger) -> PageId {
    let p = new_page("db", "e1", "2027-03-01T03:00:00Z");
    l.raise(p).await.expect("raise").page()
}

#[tokio::test]
async fn acknowledging_stops_the_steps_and_tells_the_others_not_the_owner() {
    let (_d, l) = open();
    let id = raised(&l).await;
    let now = t("2027-03-01T03:00:00Z");
    let s = step(
        id,
        Position::START,
        vec![
            message(id, "alice", Channel::Sms, 0),
            message(id, "alice", Channel::Email, 0),
            message(id, "bob", Channel::Email, 0),
        ],
        Some((Position { round: 0, stage: 1 }, now)),
    );
    assert!(l.advance(s, now).await.expect("advance"));
    let tell = Tell {
        text: "bob has it".into(),
        except: Some("bob".into()),
        also: vec![NewMessage {
            key: format!("{id}/case@1"),
            to: "case-7".into(),
            text: "bob is on it".into(),
            stage: None,
            ..message(id, "bob", Channel::Case, 0)
        }],
    };
    let ack = Action::Acknowledge {
        by: "bob".into(),
        via: Via::Sms,
    };
    let acted = l
        .act(id, ack.clone(), Some(tell.clone()), now)
        .await
        .expect("ack");
    let Acted::Done(p) = acted else {
        panic!("{acted:?}")
    };
    assert_eq!(
        (p.state, p.owner.as_deref(), p.next_at),
        (PageState::Acknowledged, Some("bob"), None)
    );
    assert!(
        l.due(t("2027-03-01T05:00:00Z"), t("2027-03-01T05:00:30Z"), 10)
            .await
            .expect("due")
            .is_empty(),
        "no more steps"
    );
    // A second "I have it" is refused with the state.
    assert_eq!(
        l.act(id, ack, Some(tell), now).await.expect("again"),
        Acted::Refused(PageState::Acknowledged)
    );
    let record = l.page(id).await.expect("read").expect("page");
    let told: Vec<(&str, Channel, &str)> = record
        .messages
        .iter()
        .filter(|m| m.stage.is_none())
        .map(|m| (m.person.as_str(), m.channel, m.to.as_str()))
        .collect();
    assert_eq!(
        told,
        vec![
            ("alice", Channel::Email, "alice@example.com"),
            ("alice", Channel::Sms, "alice@example.com"),
            ("bob", Channel::Case, "case-7")
        ],
        "alice told on each channel, bob not; the case told as given, once"
    );
    assert!(
        record
            .timeline
            .iter()
            .any(|e| e.text == "acknowledged by bob (via sms)"),
        "{:?}",
        record.timeline
    );
}

#[tokio::test]
async fn messages_are_leased_sent_retried_and_given_up_on_the_timeline() {
    let (_d, l) = open();
    let id = l
        .raise(new_page("db", "e1", "2027-03-01T03:00:00Z"))
        .await
        .expect("raise")
        .page();
    let now = t("2027-03-01T03:00:00Z");
    let s = step(
        id,
        Position::START,
        vec![
            message(id, "alice", Channel::Sms, 0),
            message(id, "bob", Channel::Email, 0),
        ],
        None,
    );
    assert!(l.advance(s, now).await.expect("advance"));
    let lease = t("2027-03-01T03:00:30Z");
    let taken = l.take_messages(now, lease, 10).await.expect("take");
    assert_eq!(taken.len(), 2);
    assert!(
        l.take_messages(now, lease, 10)
            .await
            .expect("take")
            .is_empty(),
        "leased"
    );
    l.message_done(taken[0].id, Ok(()), None, now)
        .await
        .expect("sent");
    let retry_at = t("2027-03-01T03:00:05Z");
    l.message_done(taken[1].id, Err("throttled".into()), Some(retry_at), now)
        .await
        .expect("retry");
    assert!(
        l.take_messages(t("2027-03-01T03:00:04Z"), lease, 10)
            .await
            .expect("take")
            .is_empty(),
        "not before its retry"
    );
    let again = l.take_messages(retry_at, lease, 10).await.expect("take");
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    l.message_done(again[0].id, Err("refused".into()), None, retry_at)
        .await
        .expect("failed");
    let record = l.page(id).await.expect("read").expect("page");
    let states: Vec<(&str, &str)> = record
        .messages
        .iter()
        .map(|m| (m.person.as_str(), m.state.as_str()))
        .collect();
    assert_eq!(states, vec![("alice", "sent"), ("bob", "failed")]);
    assert_eq!(record.messages[1].error.as_deref(), Some("refused"));
    let lines: Vec<&str> = record.timeline.iter().map(|e| e.text.as_str()).collect();
    assert!(
        lines.contains(&"email to bob failed, tried again soon: throttled"),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"email to bob failed, given up: refused"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_person_is_called_out_once_per_page_and_listed_by_time() {
    let (_d, l) = open();
    let id = l
        .raise(new_page("db", "e1", "2027-03-01T03:00:00Z"))
        .await
        .expect("raise")
        .page();
    let callout = |at: &str| Callout {
        page: id,
        person: "alice".into(),
        schedule: Some("primary".into()),
        at: t(at),
        local_time: "2027-03-01T04:00 Europe/Berlin".into(),
        off_hours: true,
    };
    let mut s = step(
        id,
        Position::START,
        Vec::new(),
        Some((Position { round: 0, stage: 1 }, t("2027-03-01T03:10:00Z"))),
    );
    s.callouts = vec![callout("2027-03-01T03:00:00Z")];
    assert!(
        l.advance(s, t("2027-03-01T03:00:00Z"))
            .await
            .expect("advance")
    );
    let mut s = step(id, Position { round: 0, stage: 1 }, Vec::new(), None);
    s.callouts = vec![callout("2027-03-01T03:10:00Z")];
    assert!(
        l.advance(s, t("2027-03-01T03:10:00Z"))
            .await
            .expect("advance")
    );
    let all = l
        .callouts(t("2027-03-01T00:00:00Z"), t("2027-04-01T00:00:00Z"))
        .await
        .expect("callouts");
    assert_eq!(
        all.len(),
        1,
        "the second stage reaching her again is the same callout"
    );
    assert_eq!(all[0].at, t("2027-03-01T03:00:00Z"));
    assert!(all[0].off_hours);
    assert!(
        l.callouts(t("2027-04-01T00:00:00Z"), t("2027-05-01T00:00:00Z"))
            .await
            .expect("callouts")
            .is_empty()
    );
}

#[tokio::test]
async fn escalating_passes_it_on_and_a_missing_page_is_said() {
    let (_d, l) = open();
    let id = l
        .raise(new_page("db", "e1", "2027-03-01T03:00:00Z"))
        .await
        .expect("raise")
        .page();
    let ack = Action::Acknowledge {
        by: "bob".into(),
        via: Via::Sms,
    };
    assert!(matches!(
        l.act(id, ack, None, t("2027-03-01T03:01:00Z"))
            .await
            .expect("ack"),
        Acted::Done(_)
    ));
    // Escalating passes it on: open again, no owner, due now.
    let later = t("2027-03-01T03:05:00Z");
    let Acted::Done(p) = l
        .act(
            id,
            Action::Escalate {
                by: Some("bob".into()),
                via: Via::Command,
            },
            None,
            later,
        )
        .await
        .expect("escalate")
    else {
        panic!()
    };
    assert_eq!(
        (p.state, p.owner, p.next_at),
        (PageState::Open, None, Some(later))
    );
    assert_eq!(
        l.due(later, t("2027-03-01T03:05:30Z"), 10)
            .await
            .expect("due")
            .len(),
        1
    );
    assert_eq!(
        l.act(
            PageId(999),
            Action::Resolve {
                by: None,
                via: Via::Command
            },
            None,
            later
        )
        .await
        .expect("none"),
        Acted::NoSuchPage
    );
}
