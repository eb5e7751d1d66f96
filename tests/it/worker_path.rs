//! The Elastic Beanstalk worker path, end to end on this machine: CloudWatch publishes to an
//! SNS topic that fans out to an SQS queue (moto), a worker-daemon emulator long-polls the
//! queue and POSTs each body to the real service binary with sqsd's headers, deleting the
//! message only on HTTP 200; anything else makes it visible again, and after the queue's
//! maxReceiveCount it moves to the dead-letter queue, as with the real sqsd.
//!
//! moto signs SNS envelopes with a placeholder signature, so the service runs with
//! `VERIFY_SQS_ENVELOPES=false`: the setting for a queue only trusted producers can write.

use crate::common;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use common::moto::sdk_config;
use common::process::ServerProcess;
use serde_json::Value;

/// What Elastic Beanstalk creates for a worker environment: a queue with a dead-letter
/// queue, here subscribed to the alarm topic.
struct Queues {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    queue_url: String,
    dlq_url: String,
    topic_arn: String,
}

const MAX_RECEIVES: u32 = 3;

async fn queues() -> Queues {
    let sdk = sdk_config();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let queue = common::moto::queue_with_dead_letters("worker-queue", MAX_RECEIVES, 30).await;
    let topic_arn = common::moto::topic("alarms").await;
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue.arn)
        .send()
        .await
        .expect("subscribe");
    Queues {
        sqs,
        sns,
        queue_url: queue.url,
        dlq_url: queue.dlq_url,
        topic_arn,
    }
}

/// One POST as sqsd makes it.
async fn post_like_sqsd(
    server: &ServerProcess,
    queue_name: &str,
    msg: &aws_sdk_sqs::types::Message,
) -> (u16, Value) {
    let attr = |a: MessageSystemAttributeName| {
        msg.attributes()
            .and_then(|m| m.get(&a))
            .cloned()
            .unwrap_or_default()
    };
    let millis = |s: String| {
        s.parse::<i64>()
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .header("user-agent", "aws-sqsd/2.4")
        .header("content-type", "application/json")
        .header("x-aws-sqsd-msgid", msg.message_id().unwrap_or_default())
        .header("x-aws-sqsd-queue", queue_name)
        .header(
            "x-aws-sqsd-first-received-at",
            millis(attr(
                MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
            )),
        )
        .header(
            "x-aws-sqsd-receive-count",
            attr(MessageSystemAttributeName::ApproximateReceiveCount),
        )
        .header(
            "x-aws-sqsd-sender-id",
            attr(MessageSystemAttributeName::SenderId),
        )
        .header(
            "x-aws-sqsd-sent-at",
            millis(attr(MessageSystemAttributeName::SentTimestamp)),
        )
        .body(msg.body().unwrap_or_default().to_owned())
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The daemon's loop, until the queue is empty: deliver, delete on 200, otherwise make the
/// message visible again at once (ErrorVisibilityTimeout 0) so it is retried. Messages whose
/// id is in `lose_delete` are answered but not deleted once, as when an instance dies
/// between the answer and the delete. Returns every (status, answer).
async fn run_daemon(
    q: &Queues,
    server: &ServerProcess,
    mut lose_delete: Vec<String>,
) -> Vec<(u16, Value)> {
    let queue_name = q
        .queue_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut answers = Vec::new();
    let mut idle = 0;
    while idle < 2 {
        let out = q
            .sqs
            .receive_message()
            .queue_url(&q.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let messages = out.messages();
        if messages.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        for msg in messages {
            let (status, answer) = post_like_sqsd(server, &queue_name, msg).await;
            answers.push((status, answer));
            let id = msg.message_id().unwrap_or_default().to_owned();
            let handle = msg.receipt_handle().unwrap_or_default();
            if status == 200 && !lose_delete.contains(&id) {
                q.sqs
                    .delete_message()
                    .queue_url(&q.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            } else {
                lose_delete.retain(|l| *l != id);
                q.sqs
                    .change_message_visibility()
                    .queue_url(&q.queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .expect("visibility");
            }
        }
        assert!(
            answers.len() < 200,
            "the daemon loop does not settle: {answers:?}"
        );
    }
    answers
}

async fn count(q: &aws_sdk_sqs::Client, url: &str) -> usize {
    let out = q
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive");
    out.messages().len()
}

/// The service for the queue of `topic`: envelopes are taken unverified (moto does not
/// sign them), but only from that topic.
fn server(dir: &std::path::Path, topic: &str) -> ServerProcess {
    ServerProcess::start(&[
        ("DATA_DIR", dir.to_str().expect("utf-8")),
        ("VERIFY_SQS_ENVELOPES", "false"),
        ("SNS_TOPIC_ARNS", topic),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_published_to_the_topic_becomes_one_case() {
    let q = queues().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = server(dir.path(), &q.topic_arn);
    let alarm =
        std::fs::read_to_string(common::payload_path("metric-alarm.json")).expect("fixture");
    q.sns
        .publish()
        .topic_arn(&q.topic_arn)
        .subject("ALARM: \"prod-api-5xx-rate\" in US East (N. Virginia)")
        .message(&alarm)
        .send()
        .await
        .expect("publish");
    let answers = run_daemon(&q, &server, Vec::new()).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].0, 200);
    assert_eq!(answers[0].1["outcome"], "created");
    assert_eq!(answers[0].1["alarm"], "prod-api-5xx-rate");
    assert_eq!(count(&q.sqs, &q.queue_url).await, 0, "deleted after 200");
    assert_eq!(count(&q.sqs, &q.dlq_url).await, 0);
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_ends_in_the_dead_letter_queue_and_raises_nothing() {
    let q = queues().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = server(dir.path(), &q.topic_arn);
    q.sqs
        .send_message()
        .queue_url(&q.queue_url)
        .message_body("ALARM prod-db: disk full")
        .send()
        .await
        .expect("send");
    let answers = run_daemon(&q, &server, Vec::new()).await;
    assert_eq!(answers.len(), MAX_RECEIVES as usize, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, a)| *s == 400 && a["error"] == "not_json")
    );
    assert_eq!(count(&q.sqs, &q.queue_url).await, 0);
    assert_eq!(
        count(&q.sqs, &q.dlq_url).await,
        1,
        "moved to the dead-letter queue"
    );
    let o = std::process::Command::new(common::process::BIN)
        .args(["cases", "list", "--json"])
        .env("DATA_DIR", dir.path())
        .output()
        .expect("runs");
    let decisions: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(decisions, serde_json::json!([]), "no case, no decision");
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_raises_nothing_new() {
    let q = queues().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = server(dir.path(), &q.topic_arn);
    let alarm =
        std::fs::read_to_string(common::payload_path("eventbridge-alarm-state-change.json"))
            .expect("fixture");
    let id = q
        .sqs
        .send_message()
        .queue_url(&q.queue_url)
        .message_body(&alarm)
        .send()
        .await
        .expect("send")
        .message_id()
        .expect("id")
        .to_owned();
    let answers = run_daemon(&q, &server, vec![id]).await;
    let outcomes: Vec<&str> = answers
        .iter()
        .filter_map(|(_, a)| a["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, vec!["created", "duplicate"]);
    assert_eq!(answers[0].1["caseId"], answers[1].1["caseId"]);
    assert_eq!(count(&q.sqs, &q.queue_url).await, 0);
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_task_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = server(dir.path(), "arn:aws:sns:us-east-1:123456789012:unused");
    // sqsd's periodic task: an empty body, still labelled application/json.
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .header("user-agent", "aws-sqsd/2.4")
        .header("content-type", "application/json")
        .header("x-aws-sqsd-taskname", "reconcile")
        .header("x-aws-sqsd-scheduled-at", "2026-11-20T04:00:00Z")
        .header("x-aws-sqsd-path", "/serviceme")
        .header("x-aws-sqsd-msgid", "b1c2d3e4-task")
        .header("x-aws-sqsd-queue", "awseb-e-worker-queue")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["outcome"], "reconciled");
    assert!(server.terminate().success());
}
