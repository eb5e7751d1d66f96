//! People told, through the real binary: a Slack-compatible webhook receiver started here
//! (answering 500 once, to show the retry), an SNS topic on moto read through an SQS queue
//! subscribed to it, and the local ledger (`cases show`). The exact messages, a retry after a
//! 500, nothing sent for duplicates, AWS's reply quoted from the Support stand-in.

mod common;

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
}

async fn hook(State(r): State<Receiver>, body: String) -> StatusCode {
    let n = r.calls.fetch_add(1, Ordering::SeqCst);
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
    let r = Receiver {
        fail_first,
        ..Default::default()
    };
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
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
    let topic = sns
        .create_topic()
        .name(unique("notices"))
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_owned();
    let queue = sqs
        .create_queue()
        .queue_name(unique("notices"))
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let queue_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        queue.rsplit('/').next().expect("name")
    );
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
