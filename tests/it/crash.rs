//! Exactly one case per problem, even across crashes: the real binary is SIGKILLed at
//! random points while a burst of new alarms is being handled, restarted on the same data
//! directory, and every alarm is delivered again at once. The restarted process settles its
//! predecessor's claims at start (it owns the data directory alone), so every redelivery is
//! answered 200 the first time, within the default lease, and every alarm has exactly one
//! case.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::process::ServerProcess;
use cw_support_api::backend::local::LocalBackend;
use serde_json::{Value, json};

const ALARMS: usize = 40;
const ROUNDS: usize = 6;

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
        // The default lease (15 s): nothing here may wait for one to lapse.
        // Storm control would fold the burst into one case: not what is tested here.
        ("STORM_CAP", "1000"),
        ("RUST_LOG", "warn,cw_support_api::cli::commands=info"),
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
        // Kill it somewhere in the middle of the burst (which takes some 50 ms).
        let delay = rng.next(45) + 1;
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
        let settled = server.log().lines().any(|l| l.contains("settled at start"));
        eprintln!(
            "round {round}: killed after {delay} ms, {answered} answered 200; \
             claims of the previous round settled at start: {settled}"
        );
    }

    // Recovery: redeliver everything right after the restart; each is answered 200 at once.
    let mut server = start(dir.path());
    let url = server.url("/serviceme");
    let mut outcomes = HashMap::new();
    let started = std::time::Instant::now();
    for i in 0..ALARMS {
        let (status, v) = deliver(&client, &url, i).await.expect("server is up");
        assert_eq!(
            status, 200,
            "alarm {i} right after the restart (seed {seed}): {v}"
        );
        outcomes.insert(i, v["outcome"].as_str().unwrap_or_default().to_owned());
    }
    eprintln!(
        "all {ALARMS} redeliveries answered 200 within {:?} of the restart",
        started.elapsed()
    );
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

#[test]
fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = start(dir.path());
    let out = std::process::Command::new(common::process::BIN)
        .args(["serve", "--port", "0", "--bind", "127.0.0.1"])
        .env("DATA_DIR", dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already serving from"), "{err}");
    // Commands that only read or edit settings still work beside it.
    let list = std::process::Command::new(common::process::BIN)
        .args(["cases", "list"])
        .env("DATA_DIR", dir.path())
        .output()
        .expect("run");
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(first.terminate().success());
    // Once the first is gone, the directory is free again.
    let mut again = start(dir.path());
    assert!(again.terminate().success());
}
