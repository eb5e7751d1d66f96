//! Pages through the binary, as a newcomer meets them (README, "Getting hold of a person"):
//! an alarm routed to people opens a page the person on duty is told about; `pages list`,
//! `pages show` and `pages ack` see and change it; `callouts report` counts it; bad input is
//! refused with its message. And a server killed (SIGKILL) between two stages: once
//! restarted, the next stage still comes on time.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::common::process::{BIN, ServerProcess};

const ALARM: &str = "tests/data/payloads/metric-alarm.json";

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("DATA_DIR", dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs")
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Exit status 2 and this message on standard error.
fn refused(o: &Output, message: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(message), "want {message:?}\ngot {err}");
}

fn json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(&run(dir, args))).expect("json")
}

/// Sets up the walk-through: its on-duty file (with `quick` delays), one alarm routed to
/// people.
fn prepare(dir: &Path, after: &str) {
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/oncall/walkthrough.toml"),
    )
    .expect("file")
    .replace("after = \"30s\"", &format!("after = \"{after}\""));
    let path = dir.join("oncall.import.toml");
    std::fs::write(&path, file).expect("write");
    ok(&run(
        dir,
        &["oncall", "import", path.to_str().expect("utf-8")],
    ));
    ok(&run(
        dir,
        &[
            "alarms",
            "put",
            "prod-api-5xx-rate",
            "--route",
            "page",
            "--policy",
            "default",
        ],
    ));
}

fn start(dir: &Path) -> ServerProcess {
    ServerProcess::start(&[("DATA_DIR", dir.to_str().expect("utf-8"))])
}

async fn post_alarm(server: &ServerProcess) -> Value {
    let body = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(ALARM)).expect("alarm");
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

/// Waits (30 s at most) until the page's messages number `n`, all sent.
fn messages(dir: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = json(dir, &["pages", "show", "1", "--json"]);
        let m = page["messages"].as_array().cloned().unwrap_or_default();
        if m.len() >= n && m.iter().all(|m| m["state"] == "sent") {
            return m;
        }
        assert!(Instant::now() < deadline, "{page:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("time").parse().expect("rfc 3339")
}

#[tokio::test]
async fn an_alarm_pages_the_person_on_duty_who_acknowledges_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    prepare(d, "10m");
    let server = start(d);
    let answer = post_alarm(&server).await;
    assert_eq!(answer["outcome"], "paged", "{answer}");
    assert_eq!(answer["reason"], "page 1 opened");
    assert_eq!(post_alarm(&server).await["outcome"], "duplicate");
    let list = json(d, &["pages", "list", "--json"]);
    assert_eq!(list[0]["id"], 1);
    assert_eq!(list[0]["alarm"], "prod-api-5xx-rate");
    assert_eq!(list[0]["state"], "open");
    let sent = messages(d, 2);
    for (m, channel, to) in [
        (&sent[0], "sms", "+15555550100"),
        (&sent[1], "email", "alice@example.com"),
    ] {
        assert_eq!(m["person"], "alice");
        assert_eq!(m["channel"], channel);
        assert_eq!(m["to"], to);
        assert_eq!(m["stage"], 1);
        assert!(
            m["text"]
                .as_str()
                .expect("text")
                .starts_with("Page 1: prod-api-5xx-rate is in ALARM"),
            "{m}"
        );
        at(&m["at"]);
    }
    // Bad input, each with its message; nothing changes.
    refused(
        &run(d, &["pages", "ack", "1", "--by", "mallory"]),
        "\"mallory\" is not a person of the on-duty file",
    );
    refused(
        &run(d, &["pages", "ack", "abc", "--by", "alice"]),
        "\"abc\" is not a page number",
    );
    refused(
        &run(d, &["pages", "ack", "0", "--by", "alice"]),
        "\"0\" is not a page number",
    );
    refused(&run(d, &["pages", "show", "7"]), "no page 7");
    refused(&run(d, &["pages", "resolve", "7"]), "no page 7");
    refused(
        &run(d, &["callouts", "report", "--month", "2026-13"]),
        "\"2026-13\" is not a month (YYYY-MM",
    );
    assert_eq!(json(d, &["pages", "show", "1", "--json"])["state"], "open");

    assert_eq!(
        ok(&run(d, &["pages", "ack", "1", "--by", "alice"])).trim(),
        "page 1 acknowledged (acknowledged)"
    );
    refused(
        &run(d, &["pages", "ack", "1", "--by", "bob"]),
        "page 1 is acknowledged: it cannot be acknowledged",
    );
    let page = json(d, &["pages", "show", "1", "--json"]);
    assert_eq!(page["state"], "acknowledged");
    assert_eq!(page["owner"], "alice");
    let text = ok(&run(d, &["pages", "show", "1"]));
    assert!(
        text.contains("state: acknowledged (owner: alice)"),
        "{text}"
    );
    assert!(
        text.contains("acknowledged by alice (via command)"),
        "{text}"
    );
    // Alice was called out once this month.
    let month = Utc::now().format("%Y-%m").to_string();
    let report = json(d, &["callouts", "report", "--month", &month, "--json"]);
    let alice = report["people"]
        .as_array()
        .expect("people")
        .iter()
        .find(|p| p["person"] == "alice")
        .cloned()
        .expect("alice");
    assert_eq!(alice["callouts"], 1, "{report:#}");
    let csv = ok(&run(d, &["callouts", "report", "--month", &month, "--csv"]));
    assert!(csv.starts_with("person,name,time_zone,callouts,off_hours_callouts,on_duty_hours\nalice,Alice Example,Europe/Berlin,1,"), "{csv}");
    ok(&run(d, &["pages", "resolve", "1", "--by", "alice"]));
    assert_eq!(
        json(d, &["pages", "list", "--live", "--json"]),
        serde_json::json!([])
    );
}

/// SIGKILL after the first stage: the restarted server sends the second when it is due,
/// within a second of its time.
#[tokio::test]
async fn a_stage_due_while_the_server_was_killed_still_comes_on_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    prepare(d, "4s");
    let mut server = start(d);
    post_alarm(&server).await;
    let first = messages(d, 2);
    let due = at(&json(d, &["pages", "show", "1", "--json"])["next_at"]);
    assert!(
        (due - at(&first[0]["at"])).num_milliseconds() >= 3_900,
        "stage 2 four seconds after stage 1"
    );
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("dead");
    let _restarted = start(d);
    let second = messages(d, 4);
    for m in &second[2..] {
        assert_eq!(m["person"], "bob");
        assert_eq!(m["stage"], 2);
        let late = at(&m["at"]) - due;
        assert!(
            late >= chrono::Duration::zero() && late < chrono::Duration::seconds(1),
            "stage 2 due at {due}, queued at {}",
            m["at"]
        );
    }
}
