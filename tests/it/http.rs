//! The HTTP contract, through the real server on port 0 with a fresh data directory per
//! test: every payload shape, every outcome, every class of bad input, restarts, timeouts,
//! desk failures and graceful shutdown.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::{Options, TestApp, payload, payload_json};
use cw_support_api::domain::settings::{AlarmConfigRecord, AlarmConfigStore};
use cw_support_api::ports::desk::{CaseInfo, Communication, DeskError, NewCase, SupportDesk};
use cw_support_api::ports::ledger::CaseLedger;
use serde_json::{Value, json};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[tokio::test]
async fn healthz_answers() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let resp = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn every_payload_shape_gets_its_outcome() {
    let cases = [
        ("minimal.json", "created", "My Alarm"),
        ("metric-alarm.json", "created", "prod-api-5xx-rate"),
        (
            "metric-math-alarm.json",
            "created",
            "orders-queue-age-anomaly",
        ),
        ("composite-alarm.json", "created", "checkout-degraded"),
        (
            "eventbridge-alarm-state-change.json",
            "created",
            "prod-db-cpu",
        ),
        (
            "aws-health-event.json",
            "created",
            "AWS_EC2_INSTANCE_STORE_DRIVE_PERFORMANCE_DEGRADED",
        ),
    ];
    for (file, outcome, alarm) in cases {
        let dir = tempdir();
        let app = TestApp::spawn(dir.path()).await;
        let (status, body) = app.post(payload(file)).await;
        assert_eq!(status, 200, "{file}: {body}");
        assert_eq!(body["outcome"], outcome, "{file}");
        assert_eq!(body["alarm"], alarm, "{file}");
        assert_eq!(body["caseId"], "dry-run-1", "{file}");
        let case = app
            .backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("recorded");
        assert!(
            case.case.communication_body.contains(alarm),
            "{file}: body names the alarm"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn ok_without_open_case_is_ignored_and_with_one_recovers() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let mut earlier_ok = payload_json("metric-alarm-ok.json");
    earlier_ok["StateChangeTime"] = json!("2026-11-19T23:00:00.000+0000");
    let (status, body) = app.post(earlier_ok.to_string()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")));
    assert_eq!(body["caseId"], Value::Null);

    let (_, created) = app.post(payload("metric-alarm.json")).await;
    assert_eq!(created["outcome"], "created");
    let (status, body) = app.post(payload("metric-alarm-ok.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body["outcome"], "recovered");
    assert_eq!(body["caseId"], created["caseId"]);
    app.stop().await;
}

#[tokio::test]
async fn forged_sns_envelope_from_the_worker_daemon_is_refused() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let (status, body) = app
        .post_with(
            payload("sns-envelope-unsigned.json"),
            &[("x-aws-sqsd-msgid", "6a1b0c39-0000-4000-8000-000000000001")],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "bad_signature");
    assert!(
        app.backend
            .ledger
            .decisions(&Default::default())
            .await
            .expect("decisions")
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn sns_envelope_from_a_trusted_queue_without_verification() {
    let dir = tempdir();
    let app = TestApp::spawn_with(
        dir.path(),
        Options {
            verify_sqs_envelopes: false,
            ..Default::default()
        },
    )
    .await;
    let sqsd = [
        ("x-aws-sqsd-msgid", "6a1b0c39-0000-4000-8000-000000000001"),
        ("x-aws-sqsd-receive-count", "1"),
        ("x-aws-sqsd-queue", "awseb-worker-queue"),
        ("user-agent", "aws-sqsd/2.4"),
    ];
    let (status, body) = app
        .post_with(payload("sns-envelope-unsigned.json"), &sqsd)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "created");
    assert_eq!(body["alarm"], "prod-api-5xx-rate");

    // The worker daemon redelivers the same message: nothing new happens.
    let (status, body) = app
        .post_with(payload("sns-envelope-unsigned.json"), &sqsd)
        .await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")));
    assert_eq!(body["caseId"], "dry-run-1");

    // The same alarm event posted directly (no envelope) is the same event.
    let (_, body) = app.post(payload("metric-alarm.json")).await;
    assert_eq!(body["outcome"], "duplicate");

    let decisions = app
        .backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("decisions");
    assert_eq!(decisions.len(), 3);
    assert_eq!(decisions[2].delivery_kind.as_str(), "sqsd");
    assert_eq!(
        decisions[2].delivery_id.as_deref(),
        Some("b3f2c9a4-1d7e-5c3b-9f0a-6e2d8c4b7a15")
    );
    app.stop().await;
}

#[tokio::test]
async fn content_type_is_never_what_decides() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let (status, body) = app
        .post_with(
            payload("minimal.json"),
            &[("content-type", "text/plain; charset=UTF-8")],
        )
        .await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("created")));
    app.stop().await;
}

#[tokio::test]
async fn repeats_are_updated_coalesced_and_muted_alarms_suppressed() {
    let dir = tempdir();
    let app = TestApp::spawn_with(
        dir.path(),
        Options {
            policy: cw_support_api::case::CasePolicy {
                update_cooldown: Duration::ZERO,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let mut alarm = payload_json("metric-alarm.json");
    app.post(alarm.to_string()).await;
    alarm["StateChangeTime"] = json!("2026-11-20T04:12:45.118+0000");
    let (_, body) = app.post(alarm.to_string()).await;
    assert_eq!(body["outcome"], "updated");
    assert_eq!(body["caseId"], "dry-run-1");

    app.backend
        .config
        .put(
            "prod-api-5xx-rate",
            &AlarmConfigRecord {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    alarm["StateChangeTime"] = json!("2026-11-20T05:12:45.118+0000");
    let (status, body) = app.post(alarm.to_string()).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("suppressed"))
    );
    app.stop().await;

    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await; // default 10 min cooldown
    let mut alarm = payload_json("metric-alarm.json");
    app.post(alarm.to_string()).await;
    alarm["StateChangeTime"] = json!("2026-11-20T03:14:45.118+0000");
    let (_, body) = app.post(alarm.to_string()).await;
    assert_eq!(body["outcome"], "coalesced");
    app.stop().await;
}

async fn expect_400(app: &TestApp, body: impl Into<reqwest::Body>, code: &str) -> Value {
    let (status, answer) = app.post(body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], code, "{answer}");
    assert!(
        answer["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
    answer
}

#[tokio::test]
async fn bad_input_gets_a_precise_400() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    expect_400(&app, "", "empty_body").await;
    expect_400(&app, "AlarmName=disk-full", "not_json").await;
    expect_400(&app, "{\"AlarmName\": ", "not_json").await;
    expect_400(&app, vec![0xff_u8, 0xfe, 0x00], "not_json").await;
    expect_400(&app, "[1, 2, 3]", "not_an_object").await;
    expect_400(&app, "\"ALARM\"", "not_an_object").await;
    expect_400(&app, "{\"hello\": \"world\"}", "unknown_shape").await;

    let a = expect_400(
        &app,
        json!({"AlarmDescription": "x", "StateChangeTime": "t"}).to_string(),
        "unknown_shape",
    )
    .await;
    assert!(a["message"].as_str().unwrap_or("").contains("AlarmName"));
    let a = expect_400(
        &app,
        json!({"AlarmName": "x", "AlarmDescription": "d"}).to_string(),
        "missing_field",
    )
    .await;
    assert!(
        a["message"]
            .as_str()
            .unwrap_or("")
            .contains("StateChangeTime")
    );
    let a = expect_400(
        &app,
        json!({"AlarmName": 42, "StateChangeTime": "t"}).to_string(),
        "invalid_field",
    )
    .await;
    assert!(a["message"].as_str().unwrap_or("").contains("AlarmName"));
    expect_400(
        &app,
        json!({"AlarmName": "x", "StateChangeTime": 1700000000}).to_string(),
        "invalid_field",
    )
    .await;
    expect_400(
        &app,
        json!({"AlarmName": "x", "StateChangeTime": "t", "NewStateValue": "PANIC"}).to_string(),
        "invalid_field",
    )
    .await;

    let mut event = payload_json("eventbridge-alarm-state-change.json");
    event["detail-type"] = json!("EC2 Spot Instance Interruption Warning");
    expect_400(&app, event.to_string(), "unsupported_event").await;

    // Nothing was recorded for any of it.
    let decisions = app
        .backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("decisions");
    assert!(decisions.is_empty());
    app.stop().await;

    // An SNS envelope whose Message is not JSON, from a queue trusted without verification
    // (signed envelopes get the same answer once verified: see server::tests).
    let dir = tempdir();
    let app = TestApp::spawn_with(
        dir.path(),
        Options {
            verify_sqs_envelopes: false,
            ..Default::default()
        },
    )
    .await;
    let mut env = payload_json("sns-envelope-unsigned.json");
    env["Message"] = json!("Disk full on db-1");
    let (status, body) = app
        .post_with(env.to_string(), &[("x-aws-sqsd-msgid", "m-1")])
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "sns_message_not_json");
    let mut env = payload_json("sns-envelope-unsigned.json");
    env.as_object_mut().expect("object").remove("MessageId");
    let (status, body) = app
        .post_with(env.to_string(), &[("x-aws-sqsd-msgid", "m-2")])
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "malformed_sns_message");
    app.stop().await;
}

/// Bounds, written as the attack: fields of hundreds of kilobytes (keys, records, times) are
/// refused with the field's name, and nothing is recorded or stored.
#[tokio::test]
async fn huge_fields_are_refused_by_name_and_nothing_is_stored() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let alarm = |field: &str, value: Value| {
        let mut v = json!({"AlarmName": "x", "AlarmDescription": "d", "StateChangeTime": "2026-11-20T03:12:45Z"});
        v[field] = value;
        v.to_string()
    };
    let big = "a".repeat(300 * 1024);
    for (field, value, names) in [
        ("AlarmName", json!(big.clone()), "AlarmName"),
        (
            "AlarmArn",
            json!(format!(
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{big}"
            )),
            "AlarmArn",
        ),
        ("AlarmDescription", json!(big.clone()), "AlarmDescription"),
        (
            "StateChangeTime",
            json!(format!("2026-11-20T03:12:45Z{}", "9".repeat(300_000))),
            "StateChangeTime",
        ),
        ("NewStateReason", json!("r".repeat(2000)), "NewStateReason"),
    ] {
        let a = expect_400(&app, alarm(field, value), "invalid_field").await;
        assert!(
            a["message"].as_str().is_some_and(|m| m.contains(names)),
            "{field}: {a}"
        );
    }
    // A body larger than SNS or SQS could carry.
    let mut huge = json!({"AlarmName": "x", "StateChangeTime": "t"});
    for i in 0..40 {
        huge[format!("f{i}")] = json!("z".repeat(8000));
    }
    expect_400(&app, huge.to_string(), "alarm_too_large").await;
    // A worker-daemon message id is a ledger key: bounded too.
    let (status, a) = app
        .post_with(
            alarm("AlarmDescription", json!("d")),
            &[("x-aws-sqsd-msgid", &"m".repeat(300))],
        )
        .await;
    assert_eq!(
        (status, a["error"].as_str()),
        (400, Some("invalid_field")),
        "{a}"
    );
    let decisions = app
        .backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("decisions");
    assert!(decisions.is_empty(), "{decisions:?}");
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let big = json!({"AlarmName": "x", "StateChangeTime": "t", "AlarmDescription": "x".repeat(1024 * 1024)});
    let (status, body) = app.post(big.to_string()).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "body_too_large");
    app.stop().await;
}

#[tokio::test]
async fn only_post_on_serviceme() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let resp = app
        .client
        .get(app.url("/serviceme"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 405);
    let resp = app.client.post(app.url("/")).send().await.expect("post");
    assert_eq!(resp.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn periodic_tasks_and_sns_confirmations_are_refused_clearly() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let (status, body) = app
        .post_with(
            "",
            &[
                ("x-aws-sqsd-taskname", "nightly"),
                ("x-aws-sqsd-msgid", "t-1"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unsupported_event");
    let mut confirm = payload_json("sns-envelope-unsigned.json");
    confirm["Type"] = json!("SubscriptionConfirmation");
    confirm["Token"] = json!("abc");
    confirm["SubscribeURL"] =
        json!("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription");
    let (status, body) = app
        .post_with(
            confirm.to_string(),
            &[("x-amz-sns-message-type", "SubscriptionConfirmation")],
        )
        .await;
    assert!((400..500).contains(&status), "{status} {body}");
    app.stop().await;
}

#[tokio::test]
async fn decisions_survive_a_restart() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let (_, first) = app.post(payload("metric-alarm.json")).await;
    assert_eq!(first["outcome"], "created");
    app.stop().await;

    let app = TestApp::spawn(dir.path()).await;
    let (_, again) = app.post(payload("metric-alarm.json")).await;
    assert_eq!(again["outcome"], "duplicate", "dedupe survives a restart");
    assert_eq!(again["caseId"], first["caseId"]);
    let mut next = payload_json("metric-alarm.json");
    next["StateChangeTime"] = json!("2026-11-20T03:13:45.118+0000");
    let (_, next) = app.post(next.to_string()).await;
    assert_eq!(
        next["outcome"], "coalesced",
        "the open case survives a restart"
    );
    assert_eq!(next["caseId"], first["caseId"]);
    let (_, rec) = app.post(payload("metric-alarm-ok.json")).await;
    assert_eq!(rec["outcome"], "recovered");
    app.stop().await;
}

/// A desk that can be made slow or broken, counting what reaches the real one behind it.
struct FlakyDesk {
    inner: Arc<dyn SupportDesk>,
    delay: Duration,
    down: AtomicBool,
    created: AtomicUsize,
}

#[async_trait]
impl SupportDesk for FlakyDesk {
    async fn create_case(&self, case: &NewCase) -> Result<String, DeskError> {
        tokio::time::sleep(self.delay).await;
        if self.down.load(Ordering::SeqCst) {
            return Err(DeskError::Unavailable(
                "ThrottlingException: Rate exceeded".into(),
            ));
        }
        self.created.fetch_add(1, Ordering::SeqCst);
        self.inner.create_case(case).await
    }
    async fn add_communication(&self, id: &str, c: &Communication) -> Result<(), DeskError> {
        self.inner.add_communication(id, c).await
    }
    async fn resolve_case(&self, id: &str) -> Result<(), DeskError> {
        self.inner.resolve_case(id).await
    }
    async fn case_info(&self, id: &str) -> Result<Option<CaseInfo>, DeskError> {
        self.inner.case_info(id).await
    }
    async fn find_case(
        &self,
        reference: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<String>, DeskError> {
        self.inner.find_case(reference, since).await
    }
}

async fn flaky(
    dir: &std::path::Path,
    delay: Duration,
    timeout: Duration,
) -> (TestApp, Arc<FlakyDesk>) {
    let backend = cw_support_api::backend::local::LocalBackend::open(dir).expect("backend");
    let desk = Arc::new(FlakyDesk {
        inner: backend.desk.clone(),
        delay,
        down: AtomicBool::new(false),
        created: AtomicUsize::new(0),
    });
    drop(backend);
    let app = TestApp::spawn_with(
        dir,
        Options {
            request_timeout: timeout,
            desk: Some(desk.clone()),
            ..Default::default()
        },
    )
    .await;
    (app, desk)
}

#[tokio::test]
async fn desk_outage_answers_503_without_details_and_records_nothing() {
    let dir = tempdir();
    let (app, desk) = flaky(dir.path(), Duration::ZERO, Duration::from_secs(30)).await;
    desk.down.store(true, Ordering::SeqCst);
    let (status, body) = app.post(payload("metric-alarm.json")).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "support_unavailable");
    assert!(
        !body.to_string().contains("Throttling"),
        "internal details are not sent: {body}"
    );
    assert!(
        app.backend
            .ledger
            .decisions(&Default::default())
            .await
            .expect("decisions")
            .is_empty()
    );

    desk.down.store(false, Ordering::SeqCst);
    let (status, body) = app.post(payload("metric-alarm.json")).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("created")));
    let (_, body) = app.post(payload("metric-alarm.json")).await;
    assert_eq!(body["outcome"], "duplicate");
    assert_eq!(desk.created.load(Ordering::SeqCst), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_slow_desk_times_out_with_503_and_the_work_still_completes_once() {
    let dir = tempdir();
    let (app, desk) = flaky(
        dir.path(),
        Duration::from_millis(800),
        Duration::from_millis(100),
    )
    .await;
    let (status, body) = app.post(payload("metric-alarm.json")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "timeout");
    // The redelivery waits for the first attempt's work and finds it done.
    let mut redelivered = None;
    for _ in 0..50 {
        let (status, body) = app.post(payload("metric-alarm.json")).await;
        if status == 200 {
            redelivered = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = redelivered.expect("eventually handled");
    assert_eq!(body["outcome"], "duplicate");
    assert_eq!(body["caseId"], "dry-run-1");
    assert_eq!(desk.created.load(Ordering::SeqCst), 1);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let dir = tempdir();
    let (mut app, desk) = flaky(
        dir.path(),
        Duration::from_millis(500),
        Duration::from_secs(30),
    )
    .await;
    let url = app.url("/serviceme");
    let client = app.client.clone();
    let in_flight = tokio::spawn(async move {
        client
            .post(url)
            .body(payload("metric-alarm.json"))
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16()
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (stop, handle) = app.shutdown_handle();
    stop.send(()).expect("signal");
    assert_eq!(in_flight.await.expect("join"), 200);
    handle.await.expect("join").expect("clean exit");
    assert_eq!(desk.created.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_new_alarm_open_one_case() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let client = app.client.clone();
        let url = app.url("/serviceme");
        tasks.push(tokio::spawn(async move {
            let resp = client
                .post(url)
                .header("x-aws-sqsd-msgid", format!("msg-{i}"))
                .body(payload("eventbridge-alarm-state-change.json"))
                .send()
                .await
                .expect("send");
            assert_eq!(resp.status(), 200);
            let v: Value = resp.json().await.expect("json");
            v["outcome"].as_str().unwrap_or_default().to_owned()
        }));
    }
    let mut created = 0;
    for t in tasks {
        if t.await.expect("join") == "created" {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert!(app.backend.desk.case("dry-run-2").expect("read").is_none());
    app.stop().await;
}

#[tokio::test]
async fn the_reconcile_task_lets_go_of_cases_support_resolved() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let (_, first) = app.post(payload("metric-alarm.json")).await;
    let (_, other) = app.post(payload("composite-alarm.json")).await;
    assert_eq!(first["caseId"], "dry-run-1");
    assert_eq!(other["caseId"], "dry-run-2");
    app.backend
        .desk
        .resolve_case("dry-run-1")
        .await
        .expect("resolve");

    // As the worker daemon sends periodic tasks: empty body, task headers.
    let task = [
        ("x-aws-sqsd-taskname", "reconcile"),
        ("x-aws-sqsd-scheduled-at", "2026-11-20T04:00:00Z"),
        ("x-aws-sqsd-msgid", "task-1"),
        ("content-type", "application/json"),
    ];
    let (status, body) = app.post_with("", &task).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "reconciled");
    assert_eq!(body["checked"], 2);
    assert_eq!(body["closed"], json!(["dry-run-1"]));

    // The next ALARM of that alarm opens a new case at once.
    let mut again = payload_json("metric-alarm.json");
    again["StateChangeTime"] = json!("2026-11-20T03:20:00.000+0000");
    let (_, body) = app.post(again.to_string()).await;
    assert_eq!(body["outcome"], "created");
    assert_eq!(body["caseId"], "dry-run-3");
    let decisions = app
        .backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("decisions");
    assert!(
        decisions
            .iter()
            .any(|d| d.outcome == cw_support_api::case::Outcome::Closed
                && d.case_id.as_deref() == Some("dry-run-1"))
    );

    let (_, body) = app.post_with("", &task).await;
    assert_eq!(body["checked"], 2);
    assert_eq!(body["closed"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_wait_and_time_out_with_503() {
    let dir = tempdir();
    let backend = cw_support_api::backend::local::LocalBackend::open(dir.path()).expect("backend");
    let desk = Arc::new(FlakyDesk {
        inner: backend.desk.clone(),
        delay: Duration::from_millis(600),
        down: AtomicBool::new(false),
        created: AtomicUsize::new(0),
    });
    drop(backend);
    let app = TestApp::spawn_with(
        dir.path(),
        Options {
            request_timeout: Duration::from_millis(300),
            desk: Some(desk.clone()),
            max_concurrency: Some(1),
            ..Default::default()
        },
    )
    .await;
    let send = |file: &'static str| {
        let (client, url) = (app.client.clone(), app.url("/serviceme"));
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .body(payload(file))
                .send()
                .await
                .expect("send");
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.expect("json");
            (status, v["error"].as_str().unwrap_or_default().to_owned())
        })
    };
    // One slot: the first holds it until its 300 ms timeout, the second then holds it
    // until 600 ms, and the third, arriving at 60 ms, gives up waiting at 360 ms.
    let first = send("metric-alarm.json");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = send("composite-alarm.json");
    tokio::time::sleep(Duration::from_millis(40)).await;
    let third = send("minimal.json");
    assert_eq!(third.await.expect("join"), (503, "busy".to_owned()));
    assert_eq!(first.await.expect("join"), (503, "timeout".to_owned()));
    assert_eq!(second.await.expect("join"), (503, "timeout".to_owned()));
    // The work that started still completes (a redelivery then finds it done).
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(desk.created.load(Ordering::SeqCst), 2);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_drains_within_its_grace() {
    let dir = tempdir();
    let backend = cw_support_api::backend::local::LocalBackend::open(dir.path()).expect("backend");
    let desk = Arc::new(FlakyDesk {
        inner: backend.desk.clone(),
        delay: Duration::from_secs(30),
        down: AtomicBool::new(false),
        created: AtomicUsize::new(0),
    });
    drop(backend);
    let mut app = TestApp::spawn_with(
        dir.path(),
        Options {
            desk: Some(desk),
            shutdown_grace: Some(Duration::from_millis(300)),
            ..Default::default()
        },
    )
    .await;
    let (client, url) = (app.client.clone(), app.url("/serviceme"));
    let stuck =
        tokio::spawn(async move { client.post(url).body(payload("minimal.json")).send().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (stop, handle) = app.shutdown_handle();
    let started = std::time::Instant::now();
    stop.send(()).expect("signal");
    handle.await.expect("join").expect("clean exit");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // The request in flight was never answered 200: its sender will deliver it again.
    if let Ok(answer) = tokio::time::timeout(Duration::from_millis(500), stuck).await {
        assert!(
            answer
                .expect("join")
                .map(|r| r.status() != 200)
                .unwrap_or(true)
        );
    }
}

// AWS Support's `Support Case Update` events (the documented shapes), about the case an
// alarm opened: each recorded on the case's timeline; a resolved case is let go at once.
use crate::common::support_event;

/// Posts a body as the worker daemon delivers it from the queue (from inside the instance):
/// the way AWS Support's events arrive through an EventBridge rule on the worker queue.
async fn from_queue(app: &TestApp, body: String) -> (u16, Value) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let id = format!(
        "queue-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    app.post_with(body, &[("x-aws-sqsd-msgid", &id)]).await
}

#[tokio::test]
async fn support_case_events_make_the_timeline_and_a_resolved_case_is_let_go_at_once() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let (_, body) = app.post(payload("metric-alarm.json")).await;
    assert_eq!(body["caseId"], "dry-run-1");

    // Posted directly (even from this host, where unsigned alarms are heard), an AWS
    // Support event proves nothing: refused, and nothing recorded.
    let (status, body) = app.post(support_event("resolve", "dry-run-1")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("unproven_support_event")),
        "{body}"
    );
    let recorded = app
        .backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("ledger");
    assert_eq!(recorded.len(), 1, "only the alarm's: {recorded:?}");

    // AWS replies; the same event delivered again is a duplicate.
    let (status, body) = from_queue(&app, support_event("communication-aws", "dry-run-1")).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("replied")),
        "{body}"
    );
    let (_, body) = from_queue(&app, support_event("communication-aws", "dry-run-1")).await;
    assert_eq!(body["outcome"], "duplicate");
    // Our own CreateCase and communications come back as events too: noted only.
    for name in ["create", "communication-customer"] {
        let (status, body) = from_queue(&app, support_event(name, "dry-run-1")).await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (200, Some("noted")),
            "{name}"
        );
    }
    // Resolved at AWS: let go now, so the next alarm opens a new case without reconcile.
    let (_, body) = from_queue(&app, support_event("resolve", "dry-run-1")).await;
    assert_eq!(body["outcome"], "closed", "{body}");
    let mut again = payload_json("metric-alarm.json");
    again["StateChangeTime"] = json!("2026-11-20T04:30:00.000+0000");
    let (_, body) = app.post(again.to_string()).await;
    assert_eq!(
        (body["outcome"].as_str(), body["caseId"].as_str()),
        (Some("created"), Some("dry-run-2"))
    );
    // Reopening the old case while the alarm holds a new one open changes nothing.
    let (_, body) = from_queue(&app, support_event("reopen", "dry-run-1")).await;
    assert_eq!(body["outcome"], "noted");
    // An aws.support event of a type this service does not know: recorded, 200.
    let mut unknown: Value =
        serde_json::from_str(&support_event("create", "dry-run-2")).expect("json");
    unknown["detail-type"] = json!("Support Case Escalation");
    unknown["id"] = json!("unknown-event-1");
    let (status, body) = from_queue(&app, unknown.to_string()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("noted")));

    let timeline = app
        .backend
        .ledger
        .decisions(&cw_support_api::ports::ledger::DecisionFilter {
            case_id: Some("dry-run-1".into()),
            ..Default::default()
        })
        .await
        .expect("decisions");
    let outcomes: Vec<&str> = timeline.iter().rev().map(|d| d.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        ["created", "replied", "noted", "noted", "closed", "noted"],
        "{timeline:?}"
    );
    assert!(timeline.iter().all(|d| d.alarm_name == "prod-api-5xx-rate"));
    app.stop().await;
}

#[tokio::test]
async fn a_case_reopened_at_aws_is_held_open_again() {
    let dir = tempdir();
    let app = TestApp::spawn_with(
        dir.path(),
        Options {
            verify_sqs_envelopes: false,
            ..Default::default()
        },
    )
    .await;
    let (_, body) = app.post(payload("metric-alarm.json")).await;
    assert_eq!(body["caseId"], "dry-run-1");
    from_queue(&app, support_event("resolve", "dry-run-1")).await;
    // Reopened, delivered inside an SNS envelope from the worker queue.
    let mut envelope = payload_json("sns-envelope-unsigned.json");
    envelope["Message"] = json!(support_event("reopen", "dry-run-1"));
    envelope["MessageId"] = json!("reopen-envelope-1");
    let (status, body) = app
        .post_with(envelope.to_string(), &[("x-aws-sqsd-msgid", "q-reopen")])
        .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("reopened")),
        "{body}"
    );
    // The alarm's next news goes to the reopened case (counted, within the cooldown).
    let mut again = payload_json("metric-alarm.json");
    again["StateChangeTime"] = json!("2026-11-20T04:30:00.000+0000");
    let (_, body) = app.post(again.to_string()).await;
    assert_eq!(
        (body["outcome"].as_str(), body["caseId"].as_str()),
        (Some("coalesced"), Some("dry-run-1")),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn aws_health_events_are_filtered_and_only_news_is_sent() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let health = |category: &str, updated: &str, description: &str| {
        let mut v = payload_json("aws-health-event.json");
        v["detail"]["eventTypeCategory"] = json!(category);
        v["detail"]["lastUpdatedTime"] = json!(updated);
        v["detail"]["eventDescription"][0]["latestDescription"] = json!(description);
        v.to_string()
    };
    // A scheduled change is not an incident (HEALTH_CATEGORIES defaults to issue).
    let (status, body) = app
        .post(health(
            "scheduledChange",
            "Fri, 20 Nov 2026 04:00:00 GMT",
            "maintenance",
        ))
        .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("ignored")),
        "{body}"
    );
    let (_, body) = app
        .post(health("issue", "Fri, 20 Nov 2026 04:01:00 GMT", "degraded"))
        .await;
    assert_eq!(
        (body["outcome"].as_str(), body["caseId"].as_str()),
        (Some("created"), Some("dry-run-1"))
    );
    // Updated, same description: counted, nothing sent.
    let (_, body) = app
        .post(health("issue", "Fri, 20 Nov 2026 05:00:00 GMT", "degraded"))
        .await;
    assert_eq!(body["outcome"], "coalesced", "{body}");
    // Updated with news, after the cooldown: a communication.
    let mut cooled = payload_json("aws-health-event.json");
    cooled["detail"]["lastUpdatedTime"] = json!("Fri, 20 Nov 2026 06:00:00 GMT");
    cooled["detail"]["eventDescription"][0]["latestDescription"] =
        json!("Root cause identified; replacing the host.");
    app.stop().await;
    let app = TestApp::spawn_with(
        dir.path(),
        Options {
            policy: cw_support_api::case::CasePolicy {
                update_cooldown: Duration::ZERO,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let (_, body) = app
        .post(health("issue", "Fri, 20 Nov 2026 05:30:00 GMT", "degraded"))
        .await;
    assert_eq!(
        body["outcome"], "coalesced",
        "unchanged, cooldown or not: {body}"
    );
    let (_, body) = app.post(cooled.to_string()).await;
    assert_eq!(body["outcome"], "updated", "{body}");
    let case = app
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert_eq!(case.communications.len(), 1);
    assert!(
        case.communications[0]
            .communication_body
            .contains("Root cause identified")
    );
    app.stop().await;

    // Services and regions can be narrowed too.
    let dir = tempdir();
    let app = TestApp::spawn_with(
        dir.path(),
        Options {
            policy: cw_support_api::case::CasePolicy {
                health: cw_support_api::case::HealthFilter {
                    categories: vec!["issue".into()],
                    services: vec!["RDS".into()],
                    regions: Vec::new(),
                },
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let (_, body) = app
        .post(health("issue", "Fri, 20 Nov 2026 04:00:00 GMT", "degraded"))
        .await;
    assert_eq!(body["outcome"], "ignored", "an EC2 event: {body}");
    app.stop().await;
}

#[tokio::test]
async fn an_inhibited_alarm_goes_to_its_parents_case() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    app.backend
        .config
        .put(
            "prod-db-replica-lag",
            &AlarmConfigRecord {
                inhibited_by: Some("prod-api-*".into()),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    let (_, parent) = app.post(payload("metric-alarm.json")).await;
    assert_eq!(parent["caseId"], "dry-run-1");
    let child = json!({
        "AlarmName": "prod-db-replica-lag",
        "AlarmDescription": "replica behind",
        "NewStateValue": "ALARM",
        "StateChangeTime": "2026-11-20T03:13:00.000+0000",
    });
    let (status, body) = app.post(child.to_string()).await;
    assert_eq!(
        (status, body["outcome"].as_str(), body["caseId"].as_str()),
        (200, Some("suppressed"), Some("dry-run-1")),
        "{body}"
    );
    let case = app
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert!(
        case.communications[0]
            .communication_body
            .contains("prod-db-replica-lag is also in ALARM")
    );
    assert!(app.backend.desk.case("dry-run-2").expect("read").is_none());
    app.stop().await;
}

#[tokio::test]
async fn a_flapping_alarm_is_told_once_through_the_server() {
    let dir = tempdir();
    let app = TestApp::spawn_with(
        dir.path(),
        Options {
            policy: cw_support_api::case::CasePolicy {
                flap_limit: 1,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let mut outcomes = Vec::new();
    let mut answers = Vec::new();
    for (i, state) in ["ALARM", "OK", "ALARM", "OK", "ALARM", "OK", "ALARM"]
        .iter()
        .enumerate()
    {
        let body = json!({
            "AlarmName": "flappy",
            "AlarmDescription": "up and down",
            "NewStateValue": state,
            "StateChangeTime": format!("2026-11-20T03:{:02}:00.000+0000", 10 + i),
        });
        let (_, v) = app.post(body.to_string()).await;
        outcomes.push(v["outcome"].as_str().unwrap_or_default().to_owned());
        answers.push(v);
    }
    // The recovery while flapping adds nothing to the case: it says so.
    assert_eq!(
        outcomes,
        [
            "created",
            "recovered",
            "updated",
            "recovered",
            "updated",
            "coalesced",
            "coalesced"
        ]
    );
    let reason = answers[5]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("recovery counted, no note: the alarm is flapping"),
        "{}",
        answers[5]
    );
    assert!(answers[1].get("reason").is_none(), "{}", answers[1]);
    let case = app
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    let flapping: Vec<_> = case
        .communications
        .iter()
        .filter(|c| c.communication_body.contains("is flapping"))
        .collect();
    assert_eq!(flapping.len(), 1);
    // Sent: recovery, update, recovery, the flapping update; then only counted.
    assert_eq!(case.communications.len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn a_group_shares_one_case_through_the_server() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    for name in ["web-5xx", "web-latency"] {
        app.backend
            .config
            .put(
                name,
                &AlarmConfigRecord {
                    group: Some("web".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("put");
    }
    let alarm = |name: &str, state: &str, minute: u32| {
        json!({
            "AlarmName": name,
            "AlarmDescription": "web tier",
            "NewStateValue": state,
            "StateChangeTime": format!("2026-11-20T03:{minute:02}:00.000+0000"),
        })
        .to_string()
    };
    let (_, v) = app.post(alarm("web-5xx", "ALARM", 10)).await;
    assert_eq!(
        (v["outcome"].as_str(), v["caseId"].as_str()),
        (Some("created"), Some("dry-run-1"))
    );
    let (_, v) = app.post(alarm("web-latency", "ALARM", 11)).await;
    assert_eq!(
        (v["outcome"].as_str(), v["caseId"].as_str()),
        (Some("updated"), Some("dry-run-1"))
    );
    // The first member's OK adds nothing while the other is in ALARM: the answer and the
    // ledger say what was done.
    let (_, v) = app.post(alarm("web-5xx", "OK", 12)).await;
    assert_eq!(
        (v["outcome"].as_str(), v["reason"].as_str()),
        (
            Some("coalesced"),
            Some("recovery counted, no note: other members of group web are still in ALARM")
        ),
        "{v}"
    );
    let recorded = app
        .backend
        .ledger
        .decisions(&cw_support_api::ports::ledger::DecisionFilter::default())
        .await
        .expect("decisions");
    assert_eq!(
        (recorded[0].outcome.as_str(), recorded[0].note.as_deref()),
        ("coalesced", v["reason"].as_str())
    );
    let case = app
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert_eq!(case.communications.len(), 1, "still one member in ALARM");
    let (_, v) = app.post(alarm("web-latency", "OK", 13)).await;
    assert_eq!(v["outcome"], "recovered");
    let case = app
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert_eq!(case.communications.len(), 2, "the group recovered");
    app.stop().await;
}

/// Shapes real senders send: an EventBridge configuration change is accepted and ignored
/// with the reason (never a 4xx that would fill a dead-letter queue), and a Lambda
/// forwarder's SNS event (`Records[0].Sns`) is read as the SNS envelope inside it.
#[tokio::test]
async fn real_senders_shapes_are_accepted() {
    let dir = tempdir();
    let app = TestApp::spawn_with(
        dir.path(),
        Options {
            verify_sqs_envelopes: false,
            ..Default::default()
        },
    )
    .await;
    let change = json!({
        "version": "0", "id": "3a6bd6f4-4a2b-4b2e-9a1d-0c2f6b6f1e11",
        "detail-type": "CloudWatch Alarm Configuration Change", "source": "aws.cloudwatch",
        "account": "123456789012", "time": "2026-11-20T03:12:45Z", "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-cpu"],
        "detail": {"alarmName": "db-cpu", "operation": "update"}
    });
    let (status, body) = app.post(change.to_string()).await;
    assert_eq!(
        (status, body["outcome"].as_str(), body["alarm"].as_str()),
        (200, Some("ignored"), Some("db-cpu")),
        "{body}"
    );
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("configuration changed")),
        "{body}"
    );

    let envelope = payload_json("sns-envelope-unsigned.json");
    let mut sns = envelope.as_object().expect("object").clone();
    // Lambda's spelling of two keys.
    if let Some(url) = sns.remove("SigningCertURL") {
        sns.insert("SigningCertUrl".into(), url);
    }
    let lambda = json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:support-cases:1", "Sns": sns}]});
    let (status, body) = app
        .post_with(lambda.to_string(), &[("x-aws-sqsd-msgid", "lambda-1")])
        .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("created")),
        "{body}"
    );
    let recorded = app
        .backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("ledger");
    assert!(
        recorded.iter().any(|d| d
            .delivery_id
            .as_deref()
            .is_some_and(|i| i.contains(envelope["MessageId"].as_str().unwrap_or("?")))),
        "{recorded:?}"
    );
    app.stop().await;
}

/// The same real payloads through the server, delivered as the worker daemon delivers them:
/// each gets the outcome the manifest expects (and `process` gives, `tests/it/cli.rs`).
#[tokio::test]
async fn real_payloads_get_their_expected_outcome_from_the_server() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real");
    let manifest: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(root.join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    for (i, entry) in manifest.iter().enumerate() {
        let file = entry["file"].as_str().expect("file");
        let want = entry["expect"].as_str().expect("expect");
        let dir = tempdir();
        let app = TestApp::spawn_with(
            dir.path(),
            Options {
                verify_sqs_envelopes: false,
                ..Default::default()
            },
        )
        .await;
        let body = std::fs::read(root.join(file)).expect("payload");
        let (status, v) = app
            .post_with(body, &[("x-aws-sqsd-msgid", &format!("real-{i}"))])
            .await;
        let got = match (status, v["alarms"].as_array()) {
            (200, Some(all)) => {
                let each: Vec<&str> = all
                    .iter()
                    .map(|a| a["outcome"].as_str().unwrap_or("?"))
                    .collect();
                assert!(each.iter().all(|o| *o == each[0]), "{file}: {each:?}");
                each[0].to_owned()
            }
            (200, None) => v["outcome"].as_str().unwrap_or("?").to_owned(),
            (_, _) => format!("error:{}", v["error"].as_str().unwrap_or("?")),
        };
        assert_eq!(got, want, "{file} ({}): {status} {v}", entry["why"]);
        app.stop().await;
    }
}
