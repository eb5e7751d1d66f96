//! The page ledger's behaviours, the same tests on both stores: SQLite (the embedded
//! default) and DynamoDB (moto's server). Plus what a shared store has to show: two
//! instances raising for one key at once open one page, and (DynamoDB) a step too big for
//! one transaction writes nothing.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::moto::{sdk_config, unique};
use cw_support_api::backend::aws::dynamo::{self, DynamoLedger};
use cw_support_api::domain::notice::Notice;
use cw_support_api::domain::page::{Channel, PageId, PageState, Position, Via};
use cw_support_api::ports::notify::Outbox;
use cw_support_api::ports::pages::{
    Acted, Action, Advance, Callout, NewMessage, NewPage, PageLedger, Raised, Tell,
};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

/// A page ledger under test, and the outbox its steps' notices go to.
#[derive(Clone)]
struct Under {
    pages: Arc<dyn PageLedger>,
    outbox: Arc<dyn Outbox>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl std::ops::Deref for Under {
    type Target = dyn PageLedger;
    fn deref(&self) -> &Self::Target {
        &*self.pages
    }
}

impl Under {
    async fn take_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<
        Vec<cw_support_api::ports::notify::Queued>,
        cw_support_api::ports::ledger::LedgerError,
    > {
        self.outbox.take_due(now, until, limit).await
    }
}

/// The embedded default's ledger, in a directory of its own.
async fn sqlite() -> Under {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = cw_support_api::backend::local::LocalBackend::open(dir.path()).expect("open");
    Under {
        pages: b.ledger.clone(),
        outbox: b.ledger,
        _dir: Some(Arc::new(dir)),
    }
}

/// A DynamoDB ledger on tables of its own, made as `tables create` makes them.
async fn dynamodb() -> Under {
    let l = dynamo_ledger().await;
    Under {
        pages: l.clone(),
        outbox: l,
        _dir: None,
    }
}

pub(crate) async fn dynamo_ledger() -> Arc<DynamoLedger> {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let (config, table) = (unique("pgcfg"), unique("pages"));
    dynamo::create_tables(&client, &config, &table)
        .await
        .expect("create tables");
    Arc::new(DynamoLedger::new(
        client,
        &table,
        Duration::from_secs(86_400),
    ))
}

// Each behaviour, once on each store.

crate::common::on_both!(
    an_alarm_opens_one_page_and_later_events_attach_to_it_once,
    a_due_page_is_leased_to_one_taker_and_a_step_commits_once,
    an_unanswered_step_queues_its_notices_in_the_outbox,
    acknowledging_stops_the_steps_and_tells_the_others_not_the_owner,
    escalating_passes_it_on_and_a_missing_page_is_said,
    messages_are_leased_sent_retried_and_given_up_on_the_timeline,
    a_person_is_called_out_once_per_page_and_listed_by_time,
    two_instances_raising_for_one_key_at_once_open_one_page,
    one_event_raised_twice_at_once_opens_one_page,
    pages_since_an_instant_are_read_newest_first_and_no_further,
);

fn new_page(key: &str, event: &str, at: &str) -> NewPage {
    NewPage {
        key: key.into(),
        alarm: key.into(),
        policy: "default".into(),
        summary: format!("{key} is in ALARM"),
        event: event.into(),
        at: t(at),
        first_due: t(at),
        description: None,
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

/// `n` pages, one an hour from 1 March 2027 (page `i`, from 1, opened `i - 1` hours on).
async fn hourly_pages(l: &dyn PageLedger, n: i64) {
    for i in 0..n {
        let at = t("2027-03-01T00:00:00Z") + chrono::Duration::hours(i);
        let page = NewPage {
            at,
            first_due: at,
            ..new_page(&format!("k{i}"), &format!("e{i}"), "2027-03-01T00:00:00Z")
        };
        l.raise(page).await.expect("raise");
    }
}

async fn raise(l: &dyn PageLedger, key: &str, event: &str, at: &str) -> Raised {
    l.raise(new_page(key, event, at)).await.expect("raise")
}

async fn resolve(l: &dyn PageLedger, id: PageId, at: &str) -> Acted {
    let by = Action::Resolve {
        by: None,
        via: Via::Alarm,
    };
    l.act(id, by, None, t(at)).await.expect("resolve")
}

async fn pages_since_an_instant_are_read_newest_first_and_no_further(l: Under) {
    hourly_pages(&*l, 30).await;
    let since = t("2027-03-01T00:00:00Z") + chrono::Duration::hours(19);
    let found = l.pages_since(since, 1000).await.expect("read");
    let ids: Vec<u64> = found.iter().map(|p| p.id.0).collect();
    assert_eq!(ids, (20..=30).rev().collect::<Vec<_>>());
    assert!(found.iter().all(|p| p.opened_at >= since));
    let few = l.pages_since(since, 3).await.expect("read");
    assert_eq!(few.iter().map(|p| p.id.0).collect::<Vec<_>>(), [30, 29, 28]);
    let all = l
        .pages_since(t("2020-01-01T00:00:00Z"), 1000)
        .await
        .expect("read");
    assert_eq!(all.len(), 30);
    assert!(
        l.pages_since(t("2030-01-01T00:00:00Z"), 1000)
            .await
            .expect("read")
            .is_empty()
    );
}

/// On DynamoDB the pages are read by number, a hundred at a time, from the last: a span
/// reads the batches that reach into it, and one more to see that it is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_span_of_pages_on_dynamodb_reads_only_the_batches_that_reach_it() {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let (config, table) = (unique("pgcfg"), unique("pages"));
    dynamo::create_tables(&client, &config, &table)
        .await
        .expect("create tables");
    let l = DynamoLedger::new(client, &table, Duration::from_secs(86_400));
    // 201 pages: three batches of numbers (102-201, 2-101, 1).
    hourly_pages(&l, 201).await;
    let before = crate::common::moto::calls(&table).await;
    let since = t("2027-03-01T00:00:00Z") + chrono::Duration::hours(190);
    assert_eq!(l.pages_since(since, 1000).await.expect("read").len(), 11);
    let after = crate::common::moto::calls(&table).await;
    let batches =
        |m: &std::collections::BTreeMap<String, u64>| m.get("BatchGetItem").copied().unwrap_or(0);
    assert_eq!(batches(&after) - batches(&before), 2, "{after:?}");
    // The whole history: all three.
    l.pages(false, 1000).await.expect("read");
    let whole = crate::common::moto::calls(&table).await;
    assert_eq!(batches(&whole) - batches(&after), 3, "{whole:?}");
}

async fn an_alarm_opens_one_page_and_later_events_attach_to_it_once(l: Under) {
    let first = raise(&*l, "db", "e1", "2027-03-01T03:00:00Z").await;
    let Raised::Opened(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(id, PageId(1), "numbers start at 1");
    assert_eq!(
        raise(&*l, "db", "e1", "2027-03-01T03:00:01Z").await,
        Raised::Again(id)
    );
    assert_eq!(
        raise(&*l, "db", "e2", "2027-03-01T03:05:00Z").await,
        Raised::Attached(id)
    );
    let other = raise(&*l, "web", "e3", "2027-03-01T03:06:00Z").await;
    assert_eq!(
        other,
        Raised::Opened(PageId(2)),
        "another key, another page"
    );
    let record = l.page(id).await.expect("read").expect("page");
    assert_eq!(record.page.state, PageState::Open);
    assert_eq!(record.page.opened_at, t("2027-03-01T03:00:00Z"));
    let lines: Vec<(DateTime<Utc>, &str)> = record
        .timeline
        .iter()
        .map(|e| (e.at, e.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                t("2027-03-01T03:00:00Z"),
                "opened for db (policy default): db is in ALARM"
            ),
            (t("2027-03-01T03:05:00Z"), "db fired again: db is in ALARM"),
        ]
    );
    assert_eq!(l.live("db").await.expect("live").map(|p| p.id), Some(id));
    // Once resolved, the next event opens a new page.
    assert!(matches!(
        resolve(&*l, id, "2027-03-01T03:10:00Z").await,
        Acted::Done(p) if p.state == PageState::Resolved
    ));
    assert_eq!(l.live("db").await.expect("live"), None);
    assert_eq!(
        raise(&*l, "db", "e4", "2027-03-01T04:00:00Z").await,
        Raised::Opened(PageId(3))
    );
    assert_eq!(
        raise(&*l, "db", "e1", "2027-03-01T04:00:01Z").await,
        Raised::Again(id),
        "an event is known whatever became of its page"
    );
    let live: Vec<PageId> = l
        .pages(true, 10)
        .await
        .expect("live")
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(live, vec![PageId(3), PageId(2)], "newest first");
    let all: Vec<(PageId, PageState)> = l
        .pages(false, 10)
        .await
        .expect("all")
        .iter()
        .map(|p| (p.id, p.state))
        .collect();
    assert_eq!(
        all,
        vec![
            (PageId(3), PageState::Open),
            (PageId(2), PageState::Open),
            (id, PageState::Resolved)
        ]
    );
    assert_eq!(l.pages(false, 2).await.expect("two").len(), 2);
}

async fn a_due_page_is_leased_to_one_taker_and_a_step_commits_once(l: Under) {
    let id = raise(&*l, "db", "e1", "2027-03-01T03:00:00Z").await.page();
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
    assert_eq!(
        taken
            .iter()
            .map(|d| (d.id, d.position, d.due))
            .collect::<Vec<_>>(),
        vec![(id, Position::START, now)]
    );
    assert!(
        l.due(now, lease, 10).await.expect("due").is_empty(),
        "leased: another instance takes nothing"
    );
    assert_eq!(
        l.due(lease, t("2027-03-01T03:01:00Z"), 10)
            .await
            .expect("due")
            .len(),
        1,
        "a lapsed lease is taken again"
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
    assert_eq!(record.messages[0].state, "queued");
    assert_eq!(record.page.position, next);
    assert_eq!(record.page.next_at, Some(t("2027-03-01T03:10:00Z")));
    assert_eq!(record.timeline.len(), 2, "opened, a step");
    assert!(
        l.due(t("2027-03-01T03:09:59Z"), lease, 10)
            .await
            .expect("due")
            .is_empty(),
        "the next step is due at its time"
    );
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
    assert_eq!(record.page.next_at, None);
    assert_eq!(l.live("db").await.expect("live"), None, "no longer live");
    assert!(l.pages(true, 10).await.expect("live").is_empty());
    assert!(
        l.due(t("2027-03-01T05:00:00Z"), t("2027-03-01T05:00:30Z"), 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        raise(&*l, "db", "e2", "2027-03-01T05:00:00Z").await,
        Raised::Opened(PageId(2)),
        "an unanswered page is over: the key opens a new one"
    );
}

async fn an_unanswered_step_queues_its_notices_in_the_outbox(l: Under) {
    let id = raise(&*l, "db", "e1", "2027-03-01T03:00:00Z").await.page();
    let mut s = step(id, Position::START, Vec::new(), None);
    let notice = Notice::Unanswered {
        page: id.0,
        alarm: "db".into(),
        summary: "db is in ALARM".into(),
    };
    s.notices = vec![notice.clone()];
    assert!(
        l.advance(s, t("2027-03-01T03:00:00Z"))
            .await
            .expect("advance")
    );
    let now = Utc::now();
    let queued = l
        .take_due(now, now + chrono::Duration::seconds(30), 10)
        .await
        .expect("outbox");
    assert_eq!(
        queued.iter().map(|q| &q.notice).collect::<Vec<_>>(),
        vec![&notice]
    );
}

async fn acknowledging_stops_the_steps_and_tells_the_others_not_the_owner(l: Under) {
    let id = raise(&*l, "db", "e1", "2027-03-01T03:00:00Z").await.page();
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
            person: "bob".into(),
            channel: Channel::Case,
            to: "case-7".into(),
            text: "bob is on it".into(),
            stage: None,
            round: None,
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
    assert_eq!(record.page.owner.as_deref(), Some("bob"));
    let told: Vec<(&str, Channel, &str, &str)> = record
        .messages
        .iter()
        .filter(|m| m.stage.is_none())
        .map(|m| {
            (
                m.person.as_str(),
                m.channel,
                m.key.as_str(),
                m.text.as_str(),
            )
        })
        .collect();
    let key = |channel: &str| format!("{id}/ack@2027-03-01T03:00:00.000000Z/alice/{channel}");
    assert_eq!(
        told,
        vec![
            ("alice", Channel::Email, key("email").as_str(), "bob has it"),
            ("alice", Channel::Sms, key("sms").as_str(), "bob has it"),
            (
                "bob",
                Channel::Case,
                format!("{id}/case@1").as_str(),
                "bob is on it"
            )
        ],
        "alice told on each channel, bob not; the case told as given, once"
    );
    let lines: Vec<&str> = record.timeline.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        lines,
        vec![
            "opened for db (policy default): db is in ALARM",
            "a step",
            "acknowledged by bob (via sms)"
        ]
    );
    // When: acknowledged at the first "I have it" (a later escalation and acknowledgement
    // keep it), resolved at the end; what reports time to acknowledge and resolve from.
    assert_eq!(
        (record.page.acknowledged_at, record.page.resolved_at),
        (Some(now), None)
    );
    let later = t("2027-03-01T03:07:00Z");
    let escalate = Action::Escalate {
        by: Some("bob".into()),
        via: Via::Console,
    };
    assert!(matches!(
        l.act(id, escalate, None, later).await,
        Ok(Acted::Done(_))
    ));
    let again = Action::Acknowledge {
        by: "alice".into(),
        via: Via::Console,
    };
    assert!(matches!(
        l.act(id, again, None, later).await,
        Ok(Acted::Done(_))
    ));
    let end = t("2027-03-01T03:42:00Z");
    let resolve = Action::Resolve {
        by: None,
        via: Via::Alarm,
    };
    let Ok(Acted::Done(p)) = l.act(id, resolve, None, end).await else {
        panic!("resolved")
    };
    assert_eq!(
        (p.state, p.acknowledged_at, p.resolved_at),
        (PageState::Resolved, Some(now), Some(end))
    );
    let listed = l.pages(false, 10).await.expect("list");
    assert_eq!(
        (listed[0].acknowledged_at, listed[0].resolved_at),
        (Some(now), Some(end))
    );
}

async fn escalating_passes_it_on_and_a_missing_page_is_said(l: Under) {
    let id = raise(&*l, "db", "e1", "2027-03-01T03:00:00Z").await.page();
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
    let escalate = Action::Escalate {
        by: Some("bob".into()),
        via: Via::Command,
    };
    let Acted::Done(p) = l.act(id, escalate, None, later).await.expect("escalate") else {
        panic!()
    };
    assert_eq!(
        (p.state, p.owner, p.next_at),
        (PageState::Open, None, Some(later))
    );
    let due = l
        .due(later, t("2027-03-01T03:05:30Z"), 10)
        .await
        .expect("due");
    assert_eq!(
        due.iter()
            .map(|d| (d.id, d.owner.clone(), d.due))
            .collect::<Vec<_>>(),
        vec![(id, None, later)]
    );
    let record = l.page(id).await.expect("read").expect("page");
    assert_eq!(
        record.timeline.last().map(|e| e.text.as_str()),
        Some("escalated by bob (via command)")
    );
    assert_eq!(
        resolve(&*l, PageId(999), "2027-03-01T03:06:00Z").await,
        Acted::NoSuchPage
    );
    assert!(matches!(
        resolve(&*l, id, "2027-03-01T03:06:00Z").await,
        Acted::Done(_)
    ));
    assert_eq!(
        resolve(&*l, id, "2027-03-01T03:07:00Z").await,
        Acted::Refused(PageState::Resolved)
    );
    assert_eq!(l.page(PageId(999)).await.expect("read"), None);
}

async fn messages_are_leased_sent_retried_and_given_up_on_the_timeline(l: Under) {
    let id = raise(&*l, "db", "e1", "2027-03-01T03:00:00Z").await.page();
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
    assert_eq!(
        taken
            .iter()
            .map(|m| (m.page, m.person.as_str(), m.attempts))
            .collect::<Vec<_>>(),
        vec![(id, "alice", 0), (id, "bob", 0)]
    );
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
    let record = l.page(id).await.expect("read").expect("page");
    let states: Vec<(&str, &str)> = record
        .messages
        .iter()
        .map(|m| (m.person.as_str(), m.state.as_str()))
        .collect();
    assert_eq!(
        states,
        vec![("alice", "sent"), ("bob", "queued")],
        "in queue order"
    );
    assert_eq!(record.messages[0].sent_at, Some(now));
    assert!(
        l.take_messages(t("2027-03-01T03:00:04Z"), lease, 10)
            .await
            .expect("take")
            .is_empty(),
        "not before its retry"
    );
    let again = l.take_messages(retry_at, lease, 10).await.expect("take");
    assert_eq!(
        again.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(),
        vec![(taken[1].id, 1)]
    );
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
    assert_eq!(
        lines,
        vec![
            "opened for db (policy default): db is in ALARM",
            "a step",
            "email to bob failed, tried again soon: throttled",
            "email to bob failed, given up: refused"
        ]
    );
    assert!(
        l.take_messages(t("2027-03-02T00:00:00Z"), t("2027-03-02T00:00:30Z"), 10)
            .await
            .expect("take")
            .is_empty(),
        "nothing left queued"
    );
}

async fn a_person_is_called_out_once_per_page_and_listed_by_time(l: Under) {
    let id = raise(&*l, "db", "e1", "2027-03-01T03:00:00Z").await.page();
    let callout = |person: &str, at: &str| Callout {
        page: id,
        person: person.into(),
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
    s.callouts = vec![callout("alice", "2027-03-01T03:00:00Z")];
    assert!(
        l.advance(s, t("2027-03-01T03:00:00Z"))
            .await
            .expect("advance")
    );
    let mut s = step(id, Position { round: 0, stage: 1 }, Vec::new(), None);
    s.callouts = vec![
        callout("alice", "2027-03-01T03:10:00Z"),
        callout("bob", "2027-04-01T00:00:00Z"),
    ];
    assert!(
        l.advance(s, t("2027-03-01T03:10:00Z"))
            .await
            .expect("advance")
    );
    let march = l
        .callouts(t("2027-03-01T00:00:00Z"), t("2027-04-01T00:00:00Z"))
        .await
        .expect("callouts");
    assert_eq!(
        march,
        vec![callout("alice", "2027-03-01T03:00:00Z")],
        "the second stage reaching her again is the same callout; bob's is April's"
    );
    let spanning = l
        .callouts(t("2027-02-15T00:00:00Z"), t("2027-04-01T00:00:01Z"))
        .await
        .expect("callouts");
    assert_eq!(
        spanning
            .iter()
            .map(|c| c.person.as_str())
            .collect::<Vec<_>>(),
        vec!["alice", "bob"],
        "three months read, in time order"
    );
    assert_eq!(
        l.callouts(t("2027-03-01T03:00:01Z"), t("2027-04-01T00:00:00Z"))
            .await
            .expect("callouts"),
        Vec::new(),
        "from is inclusive, until exclusive"
    );
    assert!(
        l.callouts(t("2027-04-02T00:00:00Z"), t("2027-05-01T00:00:00Z"))
            .await
            .expect("callouts")
            .is_empty()
    );
}

async fn two_instances_raising_for_one_key_at_once_open_one_page(l: Under) {
    for round in 0..4 {
        let key = format!("db{round}");
        let (a, b) = (l.clone(), l.clone());
        let (ka, kb) = (key.clone(), key.clone());
        let one = tokio::spawn(async move {
            a.raise(new_page(&ka, &format!("{ka}-a"), "2027-03-01T03:00:00Z"))
                .await
        });
        let two = tokio::spawn(async move {
            b.raise(new_page(&kb, &format!("{kb}-b"), "2027-03-01T03:00:00Z"))
                .await
        });
        let one = one.await.expect("task").expect("raise");
        let two = two.await.expect("task").expect("raise");
        assert_eq!(one.page(), two.page(), "{one:?} {two:?}");
        let opened = [one, two]
            .iter()
            .filter(|r| matches!(r, Raised::Opened(_)))
            .count();
        assert_eq!(opened, 1, "{one:?} {two:?}");
        assert_eq!(
            l.live(&key).await.expect("live").map(|p| p.id),
            Some(one.page())
        );
        let record = l.page(one.page()).await.expect("read").expect("page");
        assert_eq!(record.timeline.len(), 2, "opened, then fired again");
    }
    assert_eq!(l.pages(true, 100).await.expect("live").len(), 4);
}

async fn one_event_raised_twice_at_once_opens_one_page(l: Under) {
    let (a, b) = (l.clone(), l.clone());
    let one =
        tokio::spawn(async move { a.raise(new_page("db", "e1", "2027-03-01T03:00:00Z")).await });
    let two =
        tokio::spawn(async move { b.raise(new_page("db", "e1", "2027-03-01T03:00:00Z")).await });
    let mut both = [
        one.await.expect("task").expect("raise"),
        two.await.expect("task").expect("raise"),
    ];
    both.sort_by_key(|r| matches!(r, Raised::Again(_)));
    let id = both[0].page();
    assert_eq!(both, [Raised::Opened(id), Raised::Again(id)]);
    let record = l.page(id).await.expect("read").expect("page");
    assert_eq!(record.timeline.len(), 1, "{:?}", record.timeline);
}

#[tokio::test]
async fn a_step_too_big_for_one_transaction_writes_nothing_on_dynamodb() {
    let l = dynamo_ledger().await;
    let id = raise(&*l, "db", "e1", "2027-03-01T03:00:00Z").await.page();
    let messages = (0..120)
        .map(|i| message(id, &format!("p{i}"), Channel::Sms, 0))
        .collect();
    let s = step(
        id,
        Position::START,
        messages,
        Some((Position { round: 0, stage: 1 }, t("2027-03-01T03:10:00Z"))),
    );
    let refused = l.advance(s, t("2027-03-01T03:00:00Z")).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("more than one DynamoDB transaction")),
        "{refused:?}"
    );
    let record = l.page(id).await.expect("read").expect("page");
    assert_eq!(record.page.position, Position::START);
    assert!(record.messages.is_empty());
}
