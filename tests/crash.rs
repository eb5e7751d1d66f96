//! Exactly one case per problem, even across crashes: the real binary is SIGKILLed at
//! random points while a burst of new alarms is being handled, restarted on the same data
//! directory, and every alarm is delivered again (as the worker daemon would, until answered
//! 200). In the end every alarm has exactly one case.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::process::ServerProcess;
use cw_support_api::backend::local::LocalBackend;
use serde_json::{Value, json};

const ALARMS: usize = 24;
const ROUNDS: usize = 4;

fn body(i: usize) -> String {
    json!({
        "AlarmName": format!("crash-test-{i:02}"),
        "AlarmDescription": "burst",
        "NewStateValue": "ALARM",
        "StateChangeTime": "2026-11-20T03:12:45.118+0000",
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:crash-test-{i:02}"),
    })
    .to_string()
}

/// A small deterministic generator, seeded from the clock and printed, so a failing run
/// can be replayed with CRASH_SEED.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn start(dir: &std::path::Path) -> ServerProcess {
    ServerProcess::start(&[
        ("DATA_DIR", dir.to_str().expect("utf-8")),
        // A claim left by the killed process is taken over quickly.
        ("CLAIM_TTL", "1s"),
        // Storm control would fold the burst into one case: not what is tested here.
        ("STORM_CAP", "1000"),
        ("RUST_LOG", "warn,cw_support_api::commands=info"),
    ])
}

async fn deliver(
    client: &reqwest::Client,
    url: &str,
    i: usize,
) -> Result<(u16, Value), reqwest::Error> {
    let resp = client
        .post(url)
        .header("x-aws-sqsd-msgid", format!("msg-{i}"))
        .body(body(i))
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_survives_random_kills_with_exactly_one_case_per_alarm() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("CRASH_SEED={seed}");
    let mut rng = Lcg(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::Client::new();

    for round in 0..ROUNDS {
        let server = start(dir.path());
        let url = server.url("/serviceme");
        let mut senders = Vec::new();
        for i in 0..ALARMS {
            let (client, url) = (client.clone(), url.clone());
            senders.push(tokio::spawn(async move { deliver(&client, &url, i).await }));
        }
        // Kill it somewhere in the middle of the burst.
        let delay = rng.next(120) + 1;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let mut server = server;
        server.child.kill().expect("SIGKILL");
        let _ = server.child.wait();
        let mut answered = 0;
        for s in senders {
            if let Ok(Ok((200, _))) = s.await {
                answered += 1;
            }
        }
        eprintln!("round {round}: killed after {delay} ms, {answered} answered 200");
    }

    // Recovery: redeliver everything until each alarm is answered 200.
    let mut server = start(dir.path());
    let url = server.url("/serviceme");
    let mut outcomes = HashMap::new();
    for i in 0..ALARMS {
        for attempt in 0.. {
            let (status, v) = deliver(&client, &url, i).await.expect("server is up");
            if status == 200 {
                outcomes.insert(i, v["outcome"].as_str().unwrap_or_default().to_owned());
                break;
            }
            assert_eq!(status, 503, "only retryable failures: {v}");
            assert!(attempt < 100, "alarm {i} never answered 200: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(server.terminate().success());
    assert!(
        outcomes
            .values()
            .all(|o| o == "created" || o == "duplicate"),
        "{outcomes:?}"
    );

    // Count the cases the dry-run desk opened, by alarm.
    let backend = LocalBackend::open(dir.path()).expect("open");
    let mut per_alarm: HashMap<String, usize> = HashMap::new();
    let mut n = 1;
    while let Some(case) = backend.desk.case(&format!("dry-run-{n}")).expect("read") {
        *per_alarm.entry(case.case.subject.clone()).or_default() += 1;
        n += 1;
    }
    assert_eq!(
        per_alarm.len(),
        ALARMS,
        "every alarm has a case (seed {seed}): {per_alarm:?}"
    );
    assert!(
        per_alarm.values().all(|c| *c == 1),
        "no alarm has two cases (seed {seed}): {per_alarm:?}"
    );
}
