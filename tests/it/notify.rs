//! People told, through the real binary: a Slack-compatible webhook receiver started here
//! (answering 500 once, to show the retry), an SNS topic on moto read through an SQS queue
//! subscribed to it, and the local ledger (`cases show`). The exact messages, a retry after a
//! 500, nothing sent for duplicates, AWS's reply quoted from the Support stand-in.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::moto::{moto, unique};
use common::process::{BIN, ServerProcess};
use common::support_standin::SupportStandin;
use serde_json::Value;

#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
    calls: Arc<AtomicUsize>,
    fail_first: usize,
    /// Each answer takes this long (a slow chat service).
    slow: Duration,
}

async fn hook(State(r): State<Receiver>, body: String) -> StatusCode {
    let n = r.calls.fetch_add(1, Ordering::SeqCst);
    if !r.slow.is_zero() {
        tokio::time::sleep(r.slow).await;
    }
    if n < r.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.bodies
        .lock()
        .expect("lock")
        .push(serde_json::from_str(&body).unwrap_or(Value::Null));
    StatusCode::OK
}

async fn receiver(fail_first: usize) -> (String, Receiver) {
    receiver_on(fail_first, Duration::ZERO, "127.0.0.1:0").await
}

/// A webhook receiver on `addr` (a port the server was told of before it listened).
async fn receiver_on(fail_first: usize, slow: Duration, addr: &str) -> (String, Receiver) {
    let r = Receiver {
        fail_first,
        slow,
        ..Default::default()
    };
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), r)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post_alarm(server: &ServerProcess) -> Value {
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .body(std::fs::read(common::payload_path("metric-alarm.json")).expect("fixture"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

const OPENED: &str = "AWS Support case opened for alarm prod-api-5xx-rate: \"prod-api-5xx-rate\" \
                      (severity low). https://support.console.aws.amazon.com/support/home#/case/?caseId=dry-run-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_is_told_once_retried_after_a_500_and_the_ledger_keeps_it() {
    let (url, hooked) = receiver(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("NOTIFY_WEBHOOK_URL", url.as_str()),
        ("NOTIFY_RETRY", "200ms"),
    ]);
    assert_eq!(post_alarm(&server).await["outcome"], "created");
    assert_eq!(post_alarm(&server).await["outcome"], "duplicate");
    wait_for("the webhook", || {
        !hooked.bodies.lock().expect("lock").is_empty()
    })
    .await;
    // Time enough for anything else that might be sent.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(hooked.calls.load(Ordering::SeqCst), 2, "one 500, one retry");
    let bodies = hooked.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "nothing for the duplicate: {bodies:?}");
    assert_eq!(bodies[0]["text"], OPENED);
    assert!(
        !server.log().contains(&url),
        "the webhook URL is a secret and is never logged"
    );
    assert!(server.terminate().success());
    let show = std::process::Command::new(BIN)
        .args(["cases", "show", "dry-run-1"])
        .env("DATA_DIR", dir.path())
        .output()
        .expect("cases show");
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains(OPENED), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sns_topic_is_told_and_aws_replies_are_quoted() {
    let sdk = common::moto::sdk_config();
    let (sns, sqs) = (
        aws_sdk_sns::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
    );
    let topic = common::moto::topic("notices").await;
    let (queue, queue_arn) = common::moto::queue("notices").await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("subscribe");

    let standin = SupportStandin::start().await;
    let (settings, ledger) = (unique("notify-settings"), unique("notify-ledger"));
    let m = moto().endpoint.clone();
    let support = standin.endpoint();
    let (url, hooked) = receiver(0).await;
    let env: Vec<(&str, &str)> = vec![
        ("BACKEND", "aws"),
        ("GRAPHS", "local"),
        ("TAGS", "off"),
        ("DBREGION", "us-east-1"),
        ("DBTABLE", &settings),
        ("LEDGER_TABLE", &ledger),
        ("AWS_ENDPOINT_URL_DYNAMODB", &m),
        ("AWS_ENDPOINT_URL_SNS", &m),
        ("AWS_ENDPOINT_URL_STS", &m),
        ("AWS_ENDPOINT_URL_SUPPORT", &support),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("METRICS", "off"),
        ("NOTIFY_TOPIC_ARN", &topic),
        ("NOTIFY_WEBHOOK_URL", &url),
    ];
    let created = std::process::Command::new(BIN)
        .args(["tables", "create"])
        .envs(env.iter().copied())
        .output()
        .expect("tables");
    assert!(created.status.success());
    let mut server = ServerProcess::start(&env);
    let v = post_alarm(&server).await;
    let case_id = v["caseId"].as_str().expect("case").to_owned();

    // The topic's message, read through the queue subscribed to it.
    let mut message = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    while message.is_none() {
        assert!(Instant::now() < deadline, "nothing on the topic");
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        message = out
            .messages()
            .first()
            .and_then(|m| m.body().map(str::to_owned));
    }
    let envelope: Value = serde_json::from_str(&message.expect("body")).expect("envelope");
    assert_eq!(envelope["Subject"], "AWS Support case opened");
    assert_eq!(
        envelope["Message"],
        format!(
            "AWS Support case opened for alarm prod-api-5xx-rate: \"prod-api-5xx-rate\" (severity low). \
             https://support.console.aws.amazon.com/support/home#/case/?caseId={case_id}"
        )
    );

    // An engineer replies; AWS Support's event about it arrives: the reply is quoted.
    assert!(standin.reply(
        &case_id,
        "Hello,\nwe see elevated 5xx on your API.\nLooking."
    ));
    let event = std::fs::read_to_string(common::payload_path(
        "../support-events/communication-aws.json",
    ))
    .expect("fixture")
    .replace("case-111122223333-muen-2022-7118885805350839", &case_id)
    // About the account the case is in, as AWS's event would be.
    .replace(
        "\"account\": \"111122223333\"",
        &format!(
            "\"account\": \"{}\"",
            case_id.split('-').nth(1).unwrap_or_default()
        ),
    );
    // As AWS delivers it: through the worker queue.
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .header("x-aws-sqsd-msgid", "support-event-1")
        .body(event)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    wait_for("the reply notice", || {
        hooked.bodies.lock().expect("lock").len() >= 2
    })
    .await;
    let bodies = hooked.bodies.lock().expect("lock").clone();
    assert_eq!(
        bodies[1]["text"],
        "AWS Support replied on case 1234563851. \
         https://support.console.aws.amazon.com/support/home#/case/?displayId=1234563851&amp;language=en\n\
         > Hello,\n> we see elevated 5xx on your API.\n> Looking.",
        "{bodies:?}"
    );
    assert!(server.terminate().success());
}

/// Payload text reaches Slack as text: an alarm named to ping the whole channel or to show a
/// disguised link arrives escaped (mrkdwn), and `cases show` prints no escape sequences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_text_is_escaped_for_slack_and_the_terminal() {
    let (url, hooked) = receiver(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let mut server = ServerProcess::start(&[("DATA_DIR", d), ("NOTIFY_WEBHOOK_URL", &url)]);
    let name = "<!channel> db down <https://evil.example|click here>";
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .body(
            serde_json::json!({
                "AlarmName": name,
                "AlarmDescription": "clear screen \u{1b}[2J\u{1b}[31mFAKE OUTPUT\u{7}",
                "StateChangeTime": "2026-11-20T03:12:45Z"
            })
            .to_string(),
        )
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    wait_for("the webhook", || {
        !hooked.bodies.lock().expect("lock").is_empty()
    })
    .await;
    let text = hooked.bodies.lock().expect("lock")[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains("&lt;!channel&gt; db down &lt;https://evil.example|click here&gt;"),
        "{text}"
    );
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
    assert!(server.terminate().success());
    let shown = std::process::Command::new(BIN)
        .args(["cases", "show", "dry-run-1"])
        .env("DATA_DIR", d)
        .output()
        .expect("cases show");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("clear screen [2J[31mFAKE OUTPUT"), "{shown}");
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown}"
    );
}

/// An alarm from an account the service does not serve (neither its own, asked of STS, nor
/// one of ACCOUNT_ROLES) opens nothing with anyone's credentials: 403 on every delivery, and
/// the team told once that it could not become a case. An alarm the desk refuses is told too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_accounts_alarm_opens_nothing_and_the_team_is_told_once() {
    let standin = SupportStandin::start().await;
    let (settings, ledger) = (unique("foreign-settings"), unique("foreign-ledger"));
    let m = moto().endpoint.clone();
    let support = standin.endpoint();
    let (url, hooked) = receiver(0).await;
    let env: Vec<(&str, &str)> = vec![
        ("BACKEND", "aws"),
        ("GRAPHS", "local"),
        ("TAGS", "off"),
        ("DBREGION", "us-east-1"),
        ("DBTABLE", &settings),
        ("LEDGER_TABLE", &ledger),
        ("AWS_ENDPOINT_URL_DYNAMODB", &m),
        ("AWS_ENDPOINT_URL_STS", &m),
        ("AWS_ENDPOINT_URL_SUPPORT", &support),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("METRICS", "off"),
        ("NOTIFY_WEBHOOK_URL", &url),
    ];
    let created = std::process::Command::new(BIN)
        .args(["tables", "create"])
        .envs(env.iter().copied())
        .output()
        .expect("tables");
    assert!(created.status.success());
    let mut server = ServerProcess::start(&env);
    let mut foreign: Value = serde_json::from_slice(
        &std::fs::read(common::payload_path("metric-alarm.json")).expect("fixture"),
    )
    .expect("json");
    foreign["AlarmArn"] =
        Value::String("arn:aws:cloudwatch:us-east-1:999988887777:alarm:prod-api-5xx-rate".into());
    foreign["AWSAccountId"] = Value::String("999988887777".into());
    for attempt in 0..3 {
        let resp = reqwest::Client::new()
            .post(server.url("/serviceme"))
            .header("x-aws-sqsd-msgid", "foreign-1")
            .body(foreign.to_string())
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 403, "attempt {attempt}");
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["error"], "account_not_served", "{v}");
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("999988887777") && m.contains("ACCOUNT_ROLES")),
            "{v}"
        );
    }
    wait_for("the notice", || {
        !hooked.bodies.lock().expect("lock").is_empty()
    })
    .await;
    // The service's own account (moto's STS: 123456789012) is served as ever.
    let own = post_alarm(&server).await;
    assert_eq!(own["outcome"], "created", "{own}");
    wait_for("the opened notice", || {
        hooked.bodies.lock().expect("lock").len() >= 2
    })
    .await;
    assert!(server.terminate().success());
    let bodies = hooked.bodies.lock().expect("lock").clone();
    let failed: Vec<&Value> = bodies
        .iter()
        .filter(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.contains("could not become an AWS Support case"))
        })
        .collect();
    assert_eq!(failed.len(), 1, "told once: {bodies:?}");
    assert!(
        failed[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("999988887777"),
        "{bodies:?}"
    );
    assert_eq!(standin.cases().len(), 1, "only the own account's case");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Notices are durable: queued with the decision, they outlive the process. The webhook is
/// down while an alarm opens its case; the server is stopped (SIGTERM once, SIGKILL the
/// next time) with the notice still queued; the next start delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_notices_survive_sigterm_and_sigkill_and_are_sent_after_a_restart() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let env = [
        ("DATA_DIR", d),
        ("NOTIFY_WEBHOOK_URL", url.as_str()),
        ("NOTIFY_RETRY", "5s"),
    ];
    // Nothing listens on the webhook's port: the first attempt fails, the next is 5 s away.
    let mut first = ServerProcess::start(&env);
    assert_eq!(post_alarm(&first).await["outcome"], "created");
    first.wait_for_log("notice not sent; trying again", Duration::from_secs(10));
    assert!(first.terminate().success(), "SIGTERM");
    let mut second = ServerProcess::start(&env);
    let mut other: Value = serde_json::from_slice(
        &std::fs::read(common::payload_path("metric-alarm.json")).expect("fixture"),
    )
    .expect("json");
    other["AlarmName"] = Value::String("db-replica-lag".into());
    other["AlarmArn"] =
        Value::String("arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-replica-lag".into());
    let resp = reqwest::Client::new()
        .post(second.url("/serviceme"))
        .body(other.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    // Killed outright once its notice was tried (killed while sending, a notice would wait
    // for its lease to lapse, 30 s, and then go out all the same).
    second.wait_for_log("notice not sent; trying again", Duration::from_secs(10));
    second.child.kill().expect("SIGKILL");
    let _ = second.child.wait();

    // The webhook is back; so is the service: both notices arrive.
    let (_, hooked) = receiver_on(0, Duration::ZERO, &format!("127.0.0.1:{port}")).await;
    let mut third = ServerProcess::start(&env);
    // Within a lease (30 s), whatever the second process was doing when it was killed.
    let deadline = Instant::now() + Duration::from_secs(45);
    while hooked.bodies.lock().expect("lock").len() < 2 {
        assert!(Instant::now() < deadline, "both notices within a lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let texts: Vec<String> = hooked
        .bodies
        .lock()
        .expect("lock")
        .iter()
        .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("alarm prod-api-5xx-rate")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("alarm db-replica-lag")),
        "{texts:?}"
    );
    assert!(third.terminate().success());
}

/// A flood with a slow webhook loses no notice: 5,000 new alarms, a webhook that takes 20 ms
/// an answer; every case's notice arrives, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_alarms_with_a_slow_webhook_lose_no_notice() {
    const N: usize = 5000;
    let (url, hooked) = receiver_on(0, Duration::from_millis(20), "127.0.0.1:0").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("NOTIFY_WEBHOOK_URL", url.as_str()),
        ("STORM_CAP", "100000"),
    ]);
    let client = reqwest::Client::new();
    let url = server.url("/serviceme");
    let mut posts = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (client, url) = (client.clone(), url.clone());
        posts.spawn(async move {
            for i in (worker..N).step_by(16) {
                let body = serde_json::json!({
                    "AlarmName": format!("flood-{i}"), "AlarmDescription": "flood",
                    "StateChangeTime": "2026-11-20T03:12:45Z"
                });
                let resp = client
                    .post(&url)
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("post");
                assert_eq!(resp.status(), 200);
            }
        });
    }
    while let Some(done) = posts.join_next().await {
        done.expect("poster");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while hooked.bodies.lock().expect("lock").len() < N {
        assert!(
            Instant::now() < deadline,
            "{} of {N} notices after 2 minutes",
            hooked.bodies.lock().expect("lock").len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bodies = hooked.bodies.lock().expect("lock").clone();
    let mut alarms: Vec<String> = bodies
        .iter()
        .filter_map(|b| b["text"].as_str())
        .filter_map(|t| {
            t.split("alarm ")
                .nth(1)?
                .split(':')
                .next()
                .map(str::to_owned)
        })
        .collect();
    alarms.sort();
    alarms.dedup();
    assert_eq!(alarms.len(), N, "every case's notice, once");
    assert_eq!(bodies.len(), N, "none twice");
    assert!(server.terminate().success());
}

/// A sink that never answers well: the notice is tried three times, then recorded as failed,
/// counted, and shown with the case; it is not lost, nor tried forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_no_sink_takes_is_recorded_as_failed_and_shown() {
    let (url, hooked) = receiver(usize::MAX).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("NOTIFY_WEBHOOK_URL", url.as_str()),
        ("NOTIFY_RETRY", "50ms"),
    ]);
    assert_eq!(post_alarm(&server).await["outcome"], "created");
    server.wait_for_log("recorded as failed", Duration::from_secs(15));
    assert_eq!(hooked.calls.load(Ordering::SeqCst), 3, "three attempts");
    assert!(server.terminate().success());
    let show = std::process::Command::new(BIN)
        .args(["cases", "show", "dry-run-1", "--json"])
        .env("DATA_DIR", dir.path())
        .output()
        .expect("cases show");
    let v: Value = serde_json::from_slice(&show.stdout).expect("json");
    let failed = &v["outbox"][0];
    assert_eq!(failed["state"], "failed", "{v}");
    assert_eq!(failed["pending"], serde_json::json!(["webhook"]), "{v}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 500")),
        "{v}"
    );
    // The local notice log took it: only the webhook failed.
    assert_eq!(v["notices"].as_array().map(Vec::len), Some(1), "{v}");
}

/// A storm's folded alarms are told together: a few messages for hundreds of alarms (a
/// Slack webhook takes about one a second), and every alarm is still accounted for, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_is_told_in_a_few_messages_that_name_every_alarm_once() {
    const N: usize = 300;
    let (url, hooked) = receiver_on(0, Duration::from_millis(200), "127.0.0.1:0").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("NOTIFY_WEBHOOK_URL", url.as_str()),
        ("STORM_CAP", "3"),
    ]);
    let client = reqwest::Client::new();
    let url = server.url("/serviceme");
    let mut posts = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (client, url) = (client.clone(), url.clone());
        posts.spawn(async move {
            for i in (worker..N).step_by(16) {
                let body = serde_json::json!({
                    "AlarmName": format!("storm-{i}"), "AlarmDescription": "storm",
                    "StateChangeTime": "2026-11-20T03:12:45Z"
                });
                let resp = client.post(&url).body(body.to_string()).send().await;
                assert_eq!(resp.expect("post").status(), 200);
            }
        });
    }
    while let Some(done) = posts.join_next().await {
        done.expect("poster");
    }
    // Each message accounts for its alarms: one opened, one folded, or "N alarms were added".
    let counted = |bodies: &[Value]| -> usize {
        bodies
            .iter()
            .filter_map(|b| b["text"].as_str())
            .map(|t| {
                t.strip_prefix("Alarm storm: ")
                    .and_then(|rest| rest.split(" alarms were added").next())
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(1)
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while counted(&hooked.bodies.lock().expect("lock")) < N {
        assert!(
            Instant::now() < deadline,
            "not every alarm told within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let bodies = hooked.bodies.lock().expect("lock").clone();
    assert_eq!(counted(&bodies), N, "every alarm once: {bodies:?}");
    let opened = bodies
        .iter()
        .filter(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("AWS Support case opened"))
        })
        .count();
    // STORM_CAP cases, then the storm case (opened for the first alarm past the cap).
    assert_eq!(opened, 4, "{bodies:#?}");
    let merged = bodies
        .iter()
        .filter(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.contains(" alarms were added"))
        })
        .count();
    assert!(merged >= 1, "{bodies:?}");
    assert!(
        bodies.len() <= 40,
        "{} messages for {N} alarms: not merged",
        bodies.len()
    );
    assert!(server.terminate().success());
}
