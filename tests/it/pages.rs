//! Pages on the embedded default: the whole escalation on tokio's paused clock (stage 1 at
//! once, the next after its delay, the rounds, unanswered and the team told), an
//! acknowledgement that stops it, OK that resolves it and tells the people paged, and two
//! engines on one ledger sending each message once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use cw_support_api::backend::local::{LocalBackend, LocalOutbox};
use cw_support_api::domain::alarm::Alarm;
use cw_support_api::domain::notice::Notice;
use cw_support_api::domain::page::{PageId, PageState, Via};
use cw_support_api::domain::settings::{AlarmConfigStore, AlarmSettings, Route};
use cw_support_api::paging::engine::{POLL, Paged, Pager};
use cw_support_api::paging::notices::Notifier;
use cw_support_api::ports::PortError;
use cw_support_api::ports::metrics::NoMetrics;
use cw_support_api::ports::notify::Outbox;
use cw_support_api::ports::pages::{Acted, Action, OutMessage, PageLedger, PageRecord, Transport};

const WALKTHROUGH: &str = include_str!("../data/oncall/walkthrough.toml");
const ALARM: &str = include_str!("../data/payloads/metric-alarm.json");
const OK: &str = include_str!("../data/payloads/metric-alarm-ok.json");

/// The walk-through's setup with second-scale delays: alice (on duty) at once, bob 30 s
/// later, a minute to answer, the whole once more.
fn alarm(text: &str) -> Alarm {
    Alarm::parse(serde_json::from_str(text).expect("json")).expect("alarm")
}

fn routed() -> AlarmSettings {
    AlarmSettings {
        route: Route::Page,
        policy: Some("default".into()),
        ..AlarmSettings::default()
    }
}

/// A clock that follows tokio's (paused) one from a fixed instant: a Monday, 03:00 in
/// Berlin.
fn paused_clock() -> (
    DateTime<Utc>,
    impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
) {
    let start: DateTime<Utc> = "2026-12-07T02:00:00Z".parse().expect("t");
    let t0 = tokio::time::Instant::now();
    (start, move || {
        start + chrono::Duration::from_std(t0.elapsed()).expect("elapsed")
    })
}

/// Counts what each message key was handed over, to see nothing sent twice.
#[derive(Default)]
struct Counting(Mutex<HashMap<String, usize>>);

#[async_trait]
impl Transport for Counting {
    async fn send(&self, m: &OutMessage) -> Result<(), PortError> {
        // A provider takes a moment: the other engine looks at the queue meanwhile.
        tokio::time::sleep(Duration::from_millis(20)).await;
        *self
            .0
            .lock()
            .expect("lock")
            .entry(m.key.clone())
            .or_default() += 1;
        Ok(())
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    backend: LocalBackend,
    /// Where the team's notices wait: the ledger the pages are in.
    outbox: Arc<dyn Outbox>,
    start: DateTime<Utc>,
    pager: Arc<Pager>,
}

async fn setup(transport: Arc<dyn Transport>) -> Setup {
    let (start, clock) = paused_clock();
    setup_with(transport, WALKTHROUGH, start, clock).await
}

async fn setup_with(
    transport: Arc<dyn Transport>,
    on_call: &str,
    start: DateTime<Utc>,
    clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = LocalBackend::open(dir.path()).expect("open");
    let (pages, outbox) = (backend.ledger.clone(), backend.ledger.clone());
    setup_on(
        dir, backend, pages, outbox, transport, on_call, start, clock,
    )
    .await
}

/// The same, with pages (and the team's notices) in another ledger.
#[allow(clippy::too_many_arguments)]
async fn setup_on(
    dir: tempfile::TempDir,
    backend: LocalBackend,
    pages: Arc<dyn PageLedger>,
    outbox: Arc<dyn Outbox>,
    transport: Arc<dyn Transport>,
    on_call: &str,
    start: DateTime<Utc>,
    clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
) -> Setup {
    backend.config.save_on_call(on_call).await.expect("saved");
    let notifier = Notifier::new(
        outbox.clone(),
        vec![backend.notices.clone()],
        Arc::new(NoMetrics),
        Duration::from_secs(1),
        None,
    );
    let pager = Pager::new(pages, backend.config.clone(), transport, None)
        .with_notifier(notifier)
        .with_clock(clock);
    Setup {
        _dir: dir,
        backend,
        outbox,
        start,
        pager: Arc::new(pager),
    }
}

/// Lets `span` of paused time pass as the engines' loop does (`run_until`, which the
/// process tests run): every poll, each engine steps what is due and sends what is queued,
/// the engines at once. Driven here rather than spawned because the paused clock would
/// otherwise jump past the engine while it waits on SQLite's thread.
async fn run_for(pagers: &[&Arc<Pager>], span: Duration) {
    let end = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < end {
        let cycles: Vec<_> = pagers
            .iter()
            .map(|p| {
                let p = Arc::clone(p);
                tokio::spawn(async move {
                    p.cycle().await.expect("cycle");
                    p.send_due().await.expect("send");
                })
            })
            .collect();
        for c in cycles {
            c.await.expect("engine");
        }
        tokio::time::advance(POLL).await;
    }
}

async fn record(s: &Setup, id: PageId) -> PageRecord {
    s.pager
        .ledger()
        .page(id)
        .await
        .expect("read")
        .expect("page")
}

/// Seconds from the start, for each message of a page: (seconds, person, channel, round).
fn sent(s: &Setup, r: &PageRecord) -> Vec<(i64, String, String, Option<u32>)> {
    r.messages
        .iter()
        .map(|m| {
            assert_eq!(m.state, "sent", "{m:?}");
            (
                (m.at - s.start).num_milliseconds(),
                m.person.clone(),
                m.channel.as_str().to_owned(),
                m.round,
            )
        })
        .map(|(ms, p, c, r)| ((ms + 500) / 1000, p, c, r))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_whole_escalation_runs_on_time_until_nobody_answered() {
    whole_escalation(setup(Arc::new(LocalOutbox)).await).await;
}

/// The same escalation with the pages in DynamoDB (moto's server), on the same paused
/// clock. The client has no timeouts and no stalled-stream watch of its own: on a paused
/// clock their timers would fire while it waits for moto's answer.
#[tokio::test(start_paused = true)]
async fn the_whole_escalation_runs_on_time_on_dynamodb_too() {
    use crate::common::moto::{sdk_config, unique};
    let sdk = aws_sdk_dynamodb::config::Builder::from(&sdk_config())
        .timeout_config(aws_config::timeout::TimeoutConfig::disabled())
        .stalled_stream_protection(
            aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled(),
        )
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(sdk);
    let (config, table) = (unique("escfg"), unique("escal"));
    cw_support_api::backend::aws::dynamo::create_tables(&client, &config, &table)
        .await
        .expect("tables");
    let ledger = Arc::new(cw_support_api::backend::aws::dynamo::DynamoLedger::new(
        client,
        &table,
        Duration::from_secs(86_400),
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = LocalBackend::open(dir.path()).expect("open");
    let (start, clock) = paused_clock();
    let transport = Arc::new(LocalOutbox);
    let s = setup_on(
        dir,
        backend,
        ledger.clone(),
        ledger,
        transport,
        WALKTHROUGH,
        start,
        clock,
    )
    .await;
    whole_escalation(s).await;
}

async fn whole_escalation(s: Setup) {
    let Paged::Opened(id) = s
        .pager
        .on_alarm(&alarm(ALARM), &routed())
        .await
        .expect("page")
    else {
        panic!("not opened")
    };
    run_for(&[&s.pager], Duration::from_secs(29)).await;
    let r = record(&s, id).await;
    assert_eq!(r.messages.len(), 2, "only alice's so far: {:?}", r.messages);
    run_for(&[&s.pager], Duration::from_secs(200)).await;
    let r = record(&s, id).await;
    let row = |t: i64, p: &str, c: &str, round: u32| (t, p.to_owned(), c.to_owned(), Some(round));
    // Stage 1 at once (alice, on duty, by sms and e-mail); stage 2 after 30 s (bob, by
    // voice and e-mail); a minute to answer; then the same again; then unanswered.
    assert_eq!(
        sent(&s, &r),
        vec![
            row(0, "alice", "sms", 0),
            row(0, "alice", "email", 0),
            row(30, "bob", "voice", 0),
            row(30, "bob", "email", 0),
            row(90, "alice", "sms", 1),
            row(90, "alice", "email", 1),
            row(120, "bob", "voice", 1),
            row(120, "bob", "email", 1),
        ]
    );
    assert_eq!(r.page.state, PageState::Unanswered);
    let last = r.timeline.last().expect("timeline");
    assert_eq!(
        last.text,
        "nobody acknowledged after every stage: unanswered"
    );
    assert_eq!(((last.at - s.start).num_milliseconds() + 500) / 1000, 180);
    assert_eq!(r.messages[2].stage, Some(2));
    assert!(
        r.messages[2].text.contains("Page number 1."),
        "{}",
        r.messages[2].text
    );
    assert!(
        r.messages[0].text.contains("Reply ACK 1"),
        "{}",
        r.messages[0].text
    );
    // The team is told nobody acknowledged.
    let far = s.start + chrono::Duration::days(1);
    let queued = s.outbox.take_due(far, far, 10).await.expect("outbox");
    assert!(
        queued.iter().any(|q| matches!(&q.notice, Notice::Unanswered { page: 1, alarm, .. } if alarm == "prod-api-5xx-rate")),
        "{queued:?}"
    );
    // Both were called out once, off hours (03:00 in Berlin, 21:00 in New York, Sunday).
    let callouts = s
        .pager
        .ledger()
        .callouts(s.start, far)
        .await
        .expect("callouts");
    let who: Vec<(&str, bool, Option<&str>)> = callouts
        .iter()
        .map(|c| (c.person.as_str(), c.off_hours, c.schedule.as_deref()))
        .collect();
    assert_eq!(
        who,
        vec![("alice", true, Some("primary")), ("bob", true, None)]
    );
    assert_eq!(callouts[0].local_time, "2026-12-07T03:00 Europe/Berlin");
}

#[tokio::test(start_paused = true)]
async fn an_acknowledgement_stops_the_calls_and_ok_resolves_and_tells() {
    let s = setup(Arc::new(LocalOutbox)).await;
    let id = match s
        .pager
        .on_alarm(&alarm(ALARM), &routed())
        .await
        .expect("page")
    {
        Paged::Opened(id) => id,
        other => panic!("{other:?}"),
    };
    run_for(&[&s.pager], Duration::from_secs(35)).await;
    // Bob was called at 30 s; alice says she has it.
    let acted = s
        .pager
        .act(
            id,
            Action::Acknowledge {
                by: "alice".into(),
                via: Via::Command,
            },
        )
        .await
        .expect("ack");
    assert!(
        matches!(acted, Acted::Done(ref p) if p.owner.as_deref() == Some("alice")),
        "{acted:?}"
    );
    // The same alarm again joins the page; nobody is called again.
    let mut again = alarm(ALARM);
    again.state_change_time.raw = "2026-11-20T03:20:45.118+0000".into();
    assert_eq!(
        s.pager.on_alarm(&again, &routed()).await.expect("again"),
        Paged::Attached(id)
    );
    run_for(&[&s.pager], Duration::from_secs(600)).await;
    let r = record(&s, id).await;
    assert_eq!(r.page.state, PageState::Acknowledged);
    let told: Vec<(&str, &str, &str)> = r
        .messages
        .iter()
        .filter(|m| m.stage.is_none())
        .map(|m| (m.person.as_str(), m.channel.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        told,
        vec![
            (
                "bob",
                "email",
                "Page 1 (prod-api-5xx-rate): alice has it. Nobody else is called."
            ),
            (
                "bob",
                "voice",
                "Page 1 (prod-api-5xx-rate): alice has it. Nobody else is called."
            ),
        ]
    );
    assert_eq!(
        r.messages.len(),
        6,
        "four calls, two told: {:?}",
        r.messages
    );
    // OK: resolved, and everyone paged told, naming the owner.
    assert!(
        matches!(s.pager.on_alarm(&alarm(OK), &routed()).await.expect("ok"), Paged::Resolved(p) if p == id)
    );
    run_for(&[&s.pager], Duration::from_secs(1)).await;
    let r = record(&s, id).await;
    assert_eq!(r.page.state, PageState::Resolved);
    let resolved: Vec<&str> = r
        .messages
        .iter()
        .filter(|m| m.text.contains("is resolved (owner: alice)"))
        .map(|m| m.person.as_str())
        .collect();
    assert_eq!(resolved, vec!["alice", "alice", "bob", "bob"]);
    assert!(r.messages.iter().all(|m| m.state == "sent"));
    let lines: Vec<&str> = r.timeline.iter().map(|e| e.text.as_str()).collect();
    assert!(
        lines.contains(&"acknowledged by alice (via command)"),
        "{lines:?}"
    );
    assert!(lines.contains(&"resolved (via alarm)"), "{lines:?}");
    // A resolved page cannot be acknowledged.
    let late = s
        .pager
        .act(
            id,
            Action::Acknowledge {
                by: "bob".into(),
                via: Via::Command,
            },
        )
        .await
        .expect("late");
    assert_eq!(late, Acted::Refused(PageState::Resolved));
}

/// Two engines, each in its own loop as two instances run them, out of step (one looks at
/// the queues while the other sends), with a provider that takes a moment: every message
/// is handed over once. On the real clock, with one-second delays: nothing here is timed,
/// and the paused clock would run ahead while the engines wait on SQLite's thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_ledger_send_each_message_once() {
    let counting = Arc::new(Counting::default());
    let quick = WALKTHROUGH
        .replace("after = \"30s\"", "after = \"1s\"")
        .replace("answer_within = \"1m\"", "answer_within = \"1s\"");
    let s = setup_with(counting.clone(), &quick, Utc::now(), Utc::now).await;
    let second = Arc::new(Pager::new(
        s.backend.ledger.clone(),
        s.backend.config.clone(),
        counting.clone(),
        None,
    ));
    let (stop, rx) = tokio::sync::watch::channel(false);
    let loops: Vec<_> = [s.pager.clone(), second]
        .into_iter()
        .map(|p| {
            let rx = rx.clone();
            tokio::spawn(async move { p.run_until(rx).await })
        })
        .collect();
    for i in 0..20 {
        let mut a = alarm(ALARM);
        a.state_change_time.raw = format!("2026-11-20T04:{i:02}:00.000+0000");
        a.name = format!("alarm-{i}");
        let mut settings = routed();
        settings.group = Some(format!("g{i}"));
        assert!(matches!(
            s.pager.on_alarm(&a, &settings).await.expect("page"),
            Paged::Opened(_)
        ));
    }
    // An event raised again is the same page, for whatever group.
    let mut a = alarm(ALARM);
    a.state_change_time.raw = "2026-11-20T04:00:00.000+0000".into();
    assert!(matches!(
        s.pager.on_alarm(&a, &routed()).await.expect("again"),
        Paged::Again(_)
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let live = s.pager.ledger().pages(true, 100).await.expect("pages");
        if live.is_empty() && counting.0.lock().expect("lock").len() >= 160 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} pages still live",
            live.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A little longer: anything sent twice would be sent by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true).expect("stop");
    for l in loops {
        l.await.expect("stopped");
    }
    let counts = counting.0.lock().expect("lock").clone();
    // Twenty pages, eight messages each (two stages of two channels, two rounds).
    assert_eq!(counts.len(), 20 * 8, "{}", counts.len());
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
}

/// A policy's `wait`: an alarm back to OK within it resolves the page and nobody is called;
/// `resolve_on_ok = false`: once people were called, OK leaves the page to them.
#[tokio::test(start_paused = true)]
async fn a_wait_calls_nobody_for_a_passing_alarm_and_a_policy_may_keep_the_page() {
    let waiting = WALKTHROUGH.replace("repeat = 1", "repeat = 1\nwait = \"1m\"");
    let (start, clock) = paused_clock();
    let s = setup_with(Arc::new(LocalOutbox), &waiting, start, clock).await;
    let Paged::Opened(id) = s
        .pager
        .on_alarm(&alarm(ALARM), &routed())
        .await
        .expect("page")
    else {
        panic!("not opened")
    };
    run_for(&[&s.pager], Duration::from_secs(50)).await;
    assert!(
        record(&s, id).await.messages.is_empty(),
        "nobody within the wait"
    );
    assert_eq!(
        s.pager.on_alarm(&alarm(OK), &routed()).await.expect("ok"),
        Paged::Resolved(id)
    );
    run_for(&[&s.pager], Duration::from_secs(300)).await;
    let r = record(&s, id).await;
    assert_eq!(r.page.state, PageState::Resolved);
    assert!(
        r.messages.is_empty(),
        "nobody was ever called: {:?}",
        r.messages
    );

    let keeping = WALKTHROUGH.replace("repeat = 1", "repeat = 1\nresolve_on_ok = false");
    let (start, clock) = paused_clock();
    let s = setup_with(Arc::new(LocalOutbox), &keeping, start, clock).await;
    let Paged::Opened(id) = s
        .pager
        .on_alarm(&alarm(ALARM), &routed())
        .await
        .expect("page")
    else {
        panic!("not opened")
    };
    run_for(&[&s.pager], Duration::from_secs(5)).await;
    assert_eq!(record(&s, id).await.messages.len(), 2, "alice called");
    assert_eq!(
        s.pager.on_alarm(&alarm(OK), &routed()).await.expect("ok"),
        Paged::Nothing
    );
    run_for(&[&s.pager], Duration::from_secs(40)).await;
    let r = record(&s, id).await;
    assert_eq!(r.page.state, PageState::Open, "kept for the people");
    assert_eq!(r.messages.len(), 4, "and bob called after 30 s");
}
