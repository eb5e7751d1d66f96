//! A real DynamoDB wire-protocol stand-in for the tests: moto's server (PyPI `moto[server]`,
//! run by `scripts/moto-standin.py`: one request at a time, faults on request),
//! started once per test binary on a free loopback port. It reads its standard input and
//! stops when that closes, so it never outlives the tests even when they crash.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

pub(crate) struct Moto {
    pub(crate) endpoint: String,
    _child: Child,
}

/// moto, one request at a time (as DynamoDB applies each request atomically), with faults
/// on request: `scripts/moto-standin.py`.
const SCRIPT: &str = include_str!("../../../scripts/moto-standin.py");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Fails with the hint when moto's server is missing: the tests install nothing themselves
/// (`scripts/test.sh` and `.ci/run` do).
fn ensure_installed() {
    let present = Command::new("python3")
        .args(["-c", "import moto.server, flask, flask_cors"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        present,
        "moto's server is not installed: run `scripts/test.sh` (it installs it) or \
         `pip install 'moto[server]'`"
    );
}

/// The shared moto server; panics with a hint when moto is not installed.
pub(crate) fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        ensure_installed();
        let port = free_port();
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its request log would drown the test output.
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("moto prints a line");
        assert_eq!(
            line.trim(),
            "ready",
            "moto server did not start: install it with `pip install 'moto[server]'`"
        );
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: child,
        }
    })
}

/// A name no other test uses, so tests can share one moto server.
pub(crate) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// SDK settings for a client of moto: us-east-1, test credentials, moto's endpoint.
pub(crate) fn sdk_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto().endpoint.clone())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDTEST", "secret", None, None, "tests"),
            ),
        )
        .build()
}

/// A new queue on moto (its name `prefix` made unique): its URL and its ARN, as SQS gives it.
pub(crate) async fn queue(prefix: &str) -> (String, String) {
    queue_with(prefix, []).await
}

/// A queue as Elastic Beanstalk makes a worker's (`prefix` made unique): after `max_receives`
/// receives a message moves to its own dead-letter queue; once received it stays hidden
/// `visibility` seconds. Its URL and ARN, and the dead-letter queue's URL.
pub(crate) struct DeadLettered {
    pub(crate) url: String,
    pub(crate) arn: String,
    pub(crate) dlq_url: String,
}

pub(crate) async fn queue_with_dead_letters(
    prefix: &str,
    max_receives: u32,
    visibility: u32,
) -> DeadLettered {
    use aws_sdk_sqs::types::QueueAttributeName;
    let (dlq_url, dlq_arn) = queue(&format!("{prefix}-dlq")).await;
    let redrive =
        format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receives}"}}"#);
    let (url, arn) = queue_with(
        prefix,
        [
            (QueueAttributeName::RedrivePolicy, redrive),
            (
                QueueAttributeName::VisibilityTimeout,
                visibility.to_string(),
            ),
        ],
    )
    .await;
    DeadLettered { url, arn, dlq_url }
}

async fn queue_with<const N: usize>(
    prefix: &str,
    attributes: [(aws_sdk_sqs::types::QueueAttributeName, String); N],
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config());
    let url = sqs
        .create_queue()
        .queue_name(unique(prefix))
        .set_attributes(Some(attributes.into_iter().collect()))
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("arn");
    (url, arn)
}

/// A new SNS topic on moto (its name `prefix` made unique): its ARN.
pub(crate) async fn topic(prefix: &str) -> String {
    aws_sdk_sns::Client::new(&sdk_config())
        .create_topic()
        .name(unique(prefix))
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_owned()
}

/// Makes the next `times` BatchGetItem requests reading `table` leave every key unprocessed
/// (DynamoDB throttling part of a batch).
pub(crate) async fn leave_unprocessed(table: &str, times: usize) {
    let resp = reqwest::Client::new()
        .post(format!("{}/_standin/unprocessed", moto().endpoint))
        .body(serde_json::json!({ "table": table, "times": times }).to_string())
        .send()
        .await
        .expect("the moto stand-in answers");
    assert!(resp.status().is_success(), "{}", resp.status());
}

/// The DynamoDB requests moto was sent for `table` so far, per operation.
pub(crate) async fn calls(table: &str) -> std::collections::BTreeMap<String, u64> {
    reqwest::Client::new()
        .get(format!("{}/_standin/calls?table={table}", moto().endpoint))
        .send()
        .await
        .expect("the moto stand-in answers")
        .json()
        .await
        .expect("a JSON object of counts")
}

/// What moto sent: `{"sms": [{"to", "message"}], "emails": [{"from", "to", "subject", "body"}]}`.
pub(crate) async fn sent() -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{}/_standin/sent", moto().endpoint))
        .send()
        .await
        .expect("the moto stand-in answers")
        .json()
        .await
        .expect("a JSON object")
}
