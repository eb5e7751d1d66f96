//! `consume` and `redrive` against moto's SQS (the real wire protocol): messages are deleted
//! when handled or deliberately dropped, kept and retried when a retry can succeed, poison
//! messages reach the dead-letter queue after the queue's receive count, `redrive` brings
//! them back once fixed, and a SIGTERM in the middle of a batch loses nothing. The real
//! binary runs with the local backend, or the aws backend on moto's DynamoDB and the
//! project's Support stand-in where the desk must be slow or failing.

use crate::common;

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use common::moto::{moto, unique};
use common::process::{BIN, ServerProcess};
use common::support_standin::{Fault, SupportStandin};
use serde_json::{Value, json};

fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&common::moto::sdk_config())
}

struct Queues {
    sqs: aws_sdk_sqs::Client,
    url: String,
    dlq: String,
}

async fn queues(max_receives: u32) -> Queues {
    queues_with(max_receives, 30).await
}

/// A queue whose messages go to its dead-letter queue after `max_receives` receives, and
/// stay hidden `visibility` seconds once received.
async fn queues_with(max_receives: u32, visibility: u32) -> Queues {
    let queue =
        common::moto::queue_with_dead_letters("consume-queue", max_receives, visibility).await;
    Queues {
        sqs: sqs(),
        url: queue.url,
        dlq: queue.dlq_url,
    }
}

async fn send(q: &Queues, body: &str) {
    q.sqs
        .send_message()
        .queue_url(&q.url)
        .message_body(body)
        .send()
        .await
        .expect("send");
}

/// Messages in a queue, visible or not.
async fn depth(q: &aws_sdk_sqs::Client, url: &str) -> usize {
    let out = q
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("attrs");
    let attrs = out.attributes().cloned().unwrap_or_default();
    let n = |a: QueueAttributeName| {
        attrs
            .get(&a)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    n(QueueAttributeName::ApproximateNumberOfMessages)
        + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn alarm(name: &str) -> String {
    json!({
        "AlarmName": name,
        "AlarmDescription": "from the queue",
        "NewStateValue": "ALARM",
        "StateChangeTime": "2026-11-20T03:12:45.118+0000",
    })
    .to_string()
}

fn aws_creds() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_SQS", moto().endpoint.clone()),
        ("AWS_ENDPOINT_URL_STS", moto().endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST".into()),
        ("AWS_SECRET_ACCESS_KEY", "secret".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("DBREGION", "us-east-1".into()),
        ("RETRY_VISIBILITY", "1s".into()),
    ]
}

fn consume(extra: &[(&str, String)]) -> ServerProcess {
    let mut env: Vec<(&str, String)> = aws_creds();
    env.extend(extra.iter().cloned());
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start_command("consume", &pairs)
}

fn decisions(dir: &std::path::Path) -> Vec<Value> {
    let out = std::process::Command::new(BIN)
        .args(["cases", "list", "--json", "--limit", "0"])
        .env("DATA_DIR", dir)
        .output()
        .expect("cases list");
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handled_messages_are_deleted_and_poison_ends_in_the_dead_letter_queue() {
    let q = queues(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8").to_owned();
    let mut consumer = consume(&[("DATA_DIR", d.clone()), ("QUEUE_URL", q.url.clone())]);
    // /healthz answers for the orchestrator; there is no /serviceme to reach.
    let health = reqwest::get(consumer.url("/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let post = reqwest::Client::new()
        .post(consumer.url("/serviceme"))
        .body(alarm("x"))
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 404);

    send(&q, &alarm("db-down")).await;
    send(&q, &alarm("db-down")).await; // the same event again: a duplicate
    send(&q, "this is not JSON").await;
    wait_until("queue drained", Duration::from_secs(30), async || {
        depth(&q.sqs, &q.url).await == 0
    })
    .await;
    assert_eq!(depth(&q.sqs, &q.dlq).await, 1, "the poison message only");
    assert!(consumer.terminate().success());
    let outcomes: Vec<String> = decisions(dir.path())
        .iter()
        .filter_map(|d| d["outcome"].as_str().map(str::to_owned))
        .collect();
    let mut sorted = outcomes.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["created", "duplicate"], "{outcomes:?}");
    let delivered = &decisions(dir.path())[0];
    assert_eq!(delivered["deliveryKind"], "sqsd", "{delivered}");
}

/// The aws backend on moto's DynamoDB and the Support stand-in, consuming `queue`.
struct AwsStack {
    standin: SupportStandin,
    env: Vec<(&'static str, String)>,
}

async fn aws_stack(queue: &str) -> AwsStack {
    let standin = SupportStandin::start().await;
    let (settings, ledger) = (unique("consume-settings"), unique("consume-ledger"));
    let mut env = vec![
        ("BACKEND", "aws".to_owned()),
        ("GRAPHS", "local".to_owned()),
        ("TAGS", "off".to_owned()),
        ("DBTABLE", settings),
        ("LEDGER_TABLE", ledger),
        ("AWS_ENDPOINT_URL_DYNAMODB", moto().endpoint.clone()),
        ("AWS_ENDPOINT_URL_SUPPORT", standin.endpoint()),
        ("METRICS", "off".into()),
        ("QUEUE_URL", queue.to_owned()),
    ];
    env.extend(aws_creds());
    let created = std::process::Command::new(BIN)
        .args(["tables", "create"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("tables create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    AwsStack { standin, env }
}

impl AwsStack {
    fn consume(&self, extra: &[(&'static str, &str)]) -> ServerProcess {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ServerProcess::start_command("consume", &pairs)
    }

    /// Cases the stand-in holds, per subject.
    fn cases_per_alarm(&self) -> std::collections::HashMap<String, usize> {
        let mut per = std::collections::HashMap::new();
        for c in self.standin.cases() {
            *per.entry(c["subject"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        per
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_failure_keeps_the_message_until_it_succeeds() {
    let q = queues(5).await;
    let stack = aws_stack(&q.url).await;
    // Support throttles the first two attempts: 503, the message stays and comes back.
    stack.standin.inject("CreateCase", Fault::Throttling, 2);
    let mut consumer = stack.consume(&[]);
    send(&q, &alarm("api-5xx")).await;
    // The case first: moto's queue depth can read 0 for a moment while a retried message's
    // visibility changes.
    wait_until("the case opened", Duration::from_secs(30), async || {
        stack.cases_per_alarm().contains_key("api-5xx")
    })
    .await;
    wait_until("queue drained", Duration::from_secs(30), async || {
        depth(&q.sqs, &q.url).await == 0
    })
    .await;
    assert_eq!(depth(&q.sqs, &q.dlq).await, 0);
    assert_eq!(
        stack.standin.calls("CreateCase"),
        3,
        "two refusals, then the case"
    );
    assert_eq!(stack.cases_per_alarm().get("api-5xx"), Some(&1));
    assert!(consumer.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_the_middle_of_a_batch_loses_nothing() {
    const N: usize = 8;
    let q = queues(5).await;
    let stack = aws_stack(&q.url).await;
    stack
        .standin
        .inject("CreateCase", Fault::Delay(Duration::from_millis(900)), N);
    for i in 0..N {
        send(&q, &alarm(&format!("batch-{i}"))).await;
    }
    let mut first = stack.consume(&[
        ("CONSUME_CONCURRENCY", "4"),
        ("SHUTDOWN_GRACE", "1s"),
        ("STORM_CAP", "1000"),
    ]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(first.terminate().success(), "a clean stop");
    // What was not finished went back to the queue; another consumer finishes it.
    let mut second = stack.consume(&[("STORM_CAP", "1000")]);
    wait_until("queue drained", Duration::from_secs(60), async || {
        depth(&q.sqs, &q.url).await == 0
    })
    .await;
    assert_eq!(depth(&q.sqs, &q.dlq).await, 0);
    let per = stack.cases_per_alarm();
    assert_eq!(per.len(), N, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    assert!(second.terminate().success());
}

/// The numbers a consumer logged when it stopped.
fn stopped_counts(consumer: &ServerProcess) -> Value {
    consumer.wait_for_log("stopped consuming", Duration::from_secs(5));
    consumer
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "stopped consuming")
        .expect("the stop's log line")
}

/// Every message a consumer received is accounted for once in its counters.
fn assert_counts_add_up(counts: &Value) {
    let n = |k: &str| {
        counts[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {counts}"))
    };
    assert_eq!(
        n("received"),
        n("deleted") + n("retried") + n("poison") + n("returned") + n("unreturned"),
        "{counts}"
    );
}

/// A poll under way when SIGTERM comes cannot be called off (SQS hides what it hands the
/// poll): the consumer waits for it and hands what it brings back at once, instead of
/// leaving it hidden for the queue's visibility timeout with a receive spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_stopping_poll_receives_is_handed_back_at_once() {
    let q = queues_with(5, 60).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8").to_owned();
    let env = [("DATA_DIR", d.clone()), ("QUEUE_URL", q.url.clone())];
    let mut first = consume(&env);
    first.wait_for_log("consuming the SQS queue", Duration::from_secs(10));
    // Its first poll is at moto, waiting for a message, when the signal comes; the message
    // arrives after the signal.
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.signal_term();
    first.wait_for_log("shutdown signal received", Duration::from_secs(5));
    send(&q, &alarm("arrived-while-stopping")).await;
    assert!(first.wait_exit().success(), "a clean stop");
    let counts = stopped_counts(&first);
    assert_eq!(
        (counts["received"].as_u64(), counts["returned"].as_u64()),
        (Some(1), Some(1)),
        "{counts}"
    );
    assert_counts_add_up(&counts);

    // Visible again at once: the next consumer handles it well within the visibility
    // timeout (60 s) that a poll given up on would have left it hidden for.
    let mut second = consume(&env);
    wait_until("queue drained", Duration::from_secs(20), async || {
        depth(&q.sqs, &q.url).await == 0
    })
    .await;
    assert!(second.terminate().success());
    let outcomes: Vec<Value> = decisions(dir.path())
        .iter()
        .map(|d| d["outcome"].clone())
        .collect();
    assert_eq!(outcomes, vec![json!("created")]);
}

/// The scenario of issue 23: six alarms, a short visibility timeout, two receives before
/// the dead-letter queue, and a SIGTERM 0.7 s after the consumer starts. Every alarm gets
/// its case, none reaches the dead-letter queue, and the first process accounts for every
/// message it received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_early_in_a_batch_sends_nothing_to_the_dead_letter_queue() {
    let q = queues_with(2, 5).await;
    for i in 0..6 {
        send(&q, &alarm(&format!("early-{i}"))).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8").to_owned();
    let env = [("DATA_DIR", d.clone()), ("QUEUE_URL", q.url.clone())];
    let mut first = consume(&env);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(first.terminate().success(), "a clean stop");
    assert_counts_add_up(&stopped_counts(&first));
    let mut second = consume(&env);
    wait_until("queue drained", Duration::from_secs(30), async || {
        depth(&q.sqs, &q.url).await == 0
    })
    .await;
    assert!(second.terminate().success());
    assert_eq!(depth(&q.sqs, &q.dlq).await, 0);
    let mut created: Vec<String> = decisions(dir.path())
        .iter()
        .filter(|d| d["outcome"] == "created")
        .filter_map(|d| d["alarmName"].as_str().map(str::to_owned))
        .collect();
    created.sort();
    assert_eq!(
        created,
        (0..6).map(|i| format!("early-{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_brings_messages_back_once_fixed() {
    let q = queues(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8").to_owned();
    // A wrong default service code: AWS Support (here the dry-run desk) refuses every
    // case, so the message ends in the dead-letter queue.
    let mut broken = consume(&[
        ("DATA_DIR", d.clone()),
        ("QUEUE_URL", q.url.clone()),
        ("DEFAULT_SERVICE_CODE", "not-a-support-service".into()),
    ]);
    send(&q, &alarm("disk-full")).await;
    wait_until(
        "moved to the dead-letter queue",
        Duration::from_secs(30),
        async || depth(&q.sqs, &q.dlq).await == 1,
    )
    .await;
    assert!(broken.terminate().success());

    let redrive = |dry_run: bool| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["redrive", "--from", &q.dlq]).env("DATA_DIR", &d);
        if dry_run {
            cmd.arg("--dry-run");
        }
        for (k, v) in aws_creds() {
            cmd.env(k, v);
        }
        cmd.output().expect("redrive")
    };
    // Fixed (the default back): a dry run shows what would happen and changes nothing.
    let o = redrive(true);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("would be created"), "{text}");
    assert_eq!(depth(&q.sqs, &q.dlq).await, 1);
    // Then for real: handled, and gone from the dead-letter queue.
    let o = redrive(false);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("handled 1, duplicate 0, still failing 0"),
        "{text}"
    );
    assert_eq!(depth(&q.sqs, &q.dlq).await, 0);
    // Idempotent: the same message redriven again would be a duplicate.
    let outcomes: Vec<String> = decisions(dir.path())
        .iter()
        .filter_map(|d| d["outcome"].as_str().map(str::to_owned))
        .collect();
    assert!(outcomes.contains(&"created".to_owned()), "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_consume_keeps_the_endpoint_and_reads_the_queue() {
    let q = queues(3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8").to_owned();
    let mut env: Vec<(&str, String)> = aws_creds();
    env.extend([("DATA_DIR", d), ("QUEUE_URL", q.url.clone())]);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = ServerProcess::start_args(&["serve", "--consume"], &pairs);
    send(&q, &alarm("from-the-queue")).await;
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .body(alarm("from-http"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    wait_until("queue drained", Duration::from_secs(30), async || {
        depth(&q.sqs, &q.url).await == 0
    })
    .await;
    assert!(server.terminate().success());
    let names: Vec<String> = decisions(dir.path())
        .iter()
        .filter_map(|d| d["alarmName"].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&"from-the-queue".to_owned()), "{names:?}");
    assert!(names.contains(&"from-http".to_owned()), "{names:?}");
}
