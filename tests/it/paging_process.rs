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

/// Waits (30 s at most) until page 1's messages number `n`, all sent.
fn messages(dir: &Path, n: usize) -> Vec<Value> {
    messages_of(dir, "1", n)
}

fn messages_of(dir: &Path, id: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = json(dir, &["pages", "show", id, "--json"]);
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
    let _quiet = crate::common::TIMING.lock().await;
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
    // A server that is down sends nothing: a restart slower than the gap (a loaded
    // machine) makes the stage due the moment the restarted server listens.
    let due = due.max(chrono::Utc::now());
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

/// The link in a page's message: its GET shows the page and changes nothing; a tampered,
/// lapsed or other person's link is the same 404; only the POST acknowledges, as the
/// person it was sent to; alarm text is shown as text.
#[tokio::test]
async fn the_link_shows_the_page_and_only_its_post_acknowledges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    prepare(d, "10m");
    let evil = "<img src=x onerror=alert(1)><script>alert(2)</script>";
    ok(&run(
        d,
        &[
            "alarms", "put", evil, "--route", "page", "--policy", "default",
        ],
    ));
    let server = ServerProcess::start(&[
        ("DATA_DIR", d.to_str().expect("utf-8")),
        ("PUBLIC_URL", "http://localhost:9"),
    ]);
    post_alarm(&server).await;
    let sent = messages(d, 2);
    let text = sent[0]["text"].as_str().expect("text");
    let link = text
        .split("open ")
        .nth(1)
        .expect("a link")
        .trim()
        .to_owned();
    let path = link
        .strip_prefix("http://localhost:9")
        .expect("under PUBLIC_URL")
        .to_owned();
    assert!(path.starts_with("/pages/1/alice/"), "{path}");
    let http = reqwest::Client::new();
    let get = |p: String| {
        let http = http.clone();
        let url = server.url(&p);
        async move { http.get(url).send().await.expect("get") }
    };
    let shown = get(path.clone()).await;
    assert_eq!(shown.status(), 200);
    let csp = shown.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let body = shown.text().await.expect("body");
    assert!(
        body.contains(
            "<form method=\"post\"><button type=\"submit\">I have it (alice)</button></form>"
        ),
        "{body}"
    );
    // Any number of GETs (a link scanner) change nothing.
    for _ in 0..3 {
        assert_eq!(get(path.clone()).await.status(), 200);
    }
    assert_eq!(json(d, &["pages", "show", "1", "--json"])["state"], "open");
    // Refused alike: tampered, another person's, another page's, malformed, lapsed.
    let (head, token) = path.rsplit_once('/').expect("token");
    let flipped = format!(
        "{head}/{}{}",
        if token.starts_with('0') { "1" } else { "0" },
        &token[1..]
    );
    let lapsed = {
        let key = std::fs::read_to_string(d.join("page-link.key")).expect("kept key");
        let links = cw_support_api::paging::links::PageLinks::new(
            cw_support_api::domain::signing::SigningKey::new("PAGE_LINK_KEY", &key).expect("key"),
            "http://localhost:9",
        )
        .expect("links");
        let old = Utc::now() - chrono::Duration::hours(25);
        links
            .link(cw_support_api::domain::page::PageId(1), "alice", old)
            .replace("http://localhost:9", "")
    };
    for bad in [
        flipped,
        path.replacen("/alice/", "/bob/", 1),
        path.replacen("/pages/1/", "/pages/2/", 1),
        "/pages/x/alice/1/2".into(),
        lapsed,
    ] {
        let r = get(bad.clone()).await;
        assert_eq!(r.status(), 404, "{bad}");
        assert_eq!(r.text().await.expect("body"), "not found");
        let posted = http.post(server.url(&bad)).send().await.expect("post");
        assert_eq!(posted.status(), 404, "{bad}");
    }
    assert_eq!(json(d, &["pages", "show", "1", "--json"])["state"], "open");
    // The button's POST: alice has it.
    let posted = http.post(server.url(&path)).send().await.expect("post");
    assert_eq!(posted.status(), 200);
    assert!(
        posted
            .text()
            .await
            .expect("body")
            .contains("You have it, alice.")
    );
    let page = json(d, &["pages", "show", "1", "--json"]);
    assert_eq!(
        (page["state"].as_str(), page["owner"].as_str()),
        (Some("acknowledged"), Some("alice"))
    );
    let lines: Vec<&str> = page["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(
        lines.contains(&"acknowledged by alice (via link)"),
        "{lines:?}"
    );
    assert_eq!(
        http.post(server.url(&path))
            .send()
            .await
            .expect("again")
            .status(),
        409
    );
    // An alarm whose name is markup: shown as text on its page.
    let body = format!(
        "{{\"AlarmName\": {}, \"NewStateValue\": \"ALARM\", \"StateChangeTime\": \"2026-11-20T03:12:45.118+0000\"}}",
        serde_json::to_string(evil).expect("json")
    );
    let r = http
        .post(server.url("/serviceme"))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let link = messages_of(d, "2", 2)[0]["text"]
        .as_str()
        .expect("text")
        .split("open ")
        .nth(1)
        .expect("link")
        .trim()
        .replace("http://localhost:9", "");
    let shown = get(link).await.text().await.expect("body");
    assert!(
        !shown.contains("<script>") && !shown.contains("<img"),
        "{shown}"
    );
    assert!(
        shown.contains("&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"),
        "{shown}"
    );
}

/// "ACK 1" texted back, as AWS End User Messaging delivers two-way SMS (a verified SNS
/// notification): acknowledges as the person whose number page 1 reached. From a number it
/// never reached, or unsigned, it changes nothing.
#[tokio::test]
async fn an_sms_reply_from_the_paged_number_acknowledges() {
    use crate::common::sns_sign::{Signer, TOPIC};
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    prepare(d, "10m");
    let signer = Signer::new();
    let certs = signer.cert_dir();
    let server = ServerProcess::start(&[
        ("DATA_DIR", d.to_str().expect("utf-8")),
        ("SNS_CERT_DIR", certs.to_str().expect("utf-8")),
        ("SNS_TOPIC_ARNS", TOPIC),
    ]);
    post_alarm(&server).await;
    messages(d, 2);
    let http = reqwest::Client::new();
    let reply = |from: &str, body: &str| {
        serde_json::json!({
            "originationNumber": from,
            "destinationNumber": "+15555550199",
            "messageKeyword": "KEYWORD_123456789012",
            "messageBody": body,
            "inboundMessageId": format!("in-{from}-{body}"),
            "previousPublishedMessageId": "wJ0hqp0p4pu7ppmm6epp4pppbhpfpp",
        })
        .to_string()
    };
    let deliver = |id: &str, message: String| {
        let note = signer.notification(TOPIC, id, &message, 1);
        let req = http
            .post(server.url("/serviceme"))
            .header("x-amz-sns-message-type", "Notification")
            .body(note.to_string());
        async move {
            let r = req.send().await.expect("post");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        }
    };
    // Unsigned: refused, whoever it names.
    let r = http
        .post(server.url("/serviceme"))
        .body(reply("+15555550100", "ACK 1"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "unproven_sms_reply"
    );
    // From a number the page never reached, or not an ACK: recorded, nothing changes.
    let (status, body) = deliver("sms-1", reply("+15555550999", "ACK 1")).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("ignored")),
        "{body}"
    );
    assert_eq!(
        body["reason"],
        "a reply from a number that page never reached"
    );
    let (_, body) = deliver("sms-2", reply("+15555550100", "on my way")).await;
    assert_eq!(body["reason"], "not ACK and a page number");
    assert_eq!(json(d, &["pages", "show", "1", "--json"])["state"], "open");
    // From alice's number: hers.
    let (status, body) = deliver("sms-3", reply("+15555550100", "ack 1")).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("paged")),
        "{body}"
    );
    assert_eq!(body["reason"], "page 1 acknowledged by alice (sms)");
    let (_, again) = deliver("sms-3", reply("+15555550100", "ack 1")).await;
    assert_eq!(again["outcome"], "duplicate", "{again}");
    let page = json(d, &["pages", "show", "1", "--json"]);
    assert_eq!(
        (page["state"].as_str(), page["owner"].as_str()),
        (Some("acknowledged"), Some("alice"))
    );
    let lines: Vec<&str> = page["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(
        lines.contains(&"acknowledged by alice (via sms)"),
        "{lines:?}"
    );
    // A malformed reply is bad input, said precisely.
    let (status, body) = deliver(
        "sms-4",
        serde_json::json!({"originationNumber": "alice", "messageBody": "ACK 1"}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "field originationNumber is invalid: not a phone number in E.164 form"
    );
}

/// Route `both`: the alarm opens its AWS case and its page; when alice acknowledges, the
/// case is told who is on it (through the page's queue: the dry-run desk records it).
#[tokio::test]
async fn with_route_both_the_case_is_told_who_owns_the_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    prepare(d, "10m");
    ok(&run(
        d,
        &["alarms", "put", "prod-api-5xx-rate", "--route", "both"],
    ));
    let server = start(d);
    let answer = post_alarm(&server).await;
    assert_eq!(
        (answer["outcome"].as_str(), answer["caseId"].as_str()),
        (Some("created"), Some("dry-run-1")),
        "{answer}"
    );
    messages(d, 2);
    ok(&run(d, &["pages", "ack", "1", "--by", "alice"]));
    let told = messages(d, 3);
    assert_eq!(told[2]["channel"], "case");
    assert_eq!(told[2]["to"], "dry-run-1");
    assert_eq!(told[2]["person"], "alice");
    let case = ok(&run(d, &["cases", "show", "dry-run-1"]));
    assert!(
        case.contains("Alice Example (alice) acknowledged the on-duty page 1 at "),
        "{case}"
    );
    assert!(
        case.contains("and is working on this alarm; nobody else is being called."),
        "{case}"
    );
}

/// AWS Support replies on the alarm's case and waits for the customer: whoever owns the
/// alarm's page is paged (bob, who took it), once, however often the event is delivered.
#[tokio::test]
async fn when_aws_support_waits_the_pages_owner_is_paged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    prepare(d, "10m");
    ok(&run(
        d,
        &["alarms", "put", "prod-api-5xx-rate", "--route", "both"],
    ));
    let server = start(d);
    assert_eq!(post_alarm(&server).await["caseId"], "dry-run-1");
    messages(d, 2);
    ok(&run(d, &["pages", "ack", "1", "--by", "bob"]));
    let event = crate::common::support_event("communication-aws", "dry-run-1");
    let http = reqwest::Client::new();
    for id in ["queue-1", "queue-2"] {
        let r = http
            .post(server.url("/serviceme"))
            .header("x-aws-sqsd-msgid", id)
            .body(event.clone())
            .send()
            .await
            .expect("post");
        let body: Value = r.json().await.expect("json");
        let want = if id == "queue-1" {
            "replied"
        } else {
            "duplicate"
        };
        assert_eq!(body["outcome"], want, "{body}");
    }
    let list = json(d, &["pages", "list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list:#}");
    assert_eq!(list[0]["id"], 2);
    assert_eq!(list[0]["policy"], "person:bob");
    assert_eq!(
        list[0]["summary"],
        "AWS Support replied on case 1234563851 (prod-api-5xx-rate) and is waiting for you"
    );
    let sent = messages_of(d, "2", 2);
    let to: Vec<(&str, &str)> = sent
        .iter()
        .map(|m| {
            (
                m["person"].as_str().unwrap_or(""),
                m["channel"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(to, vec![("bob", "voice"), ("bob", "email")]);
}

/// While AWS Health reports an open issue with the alarm's service in its region (an open
/// case of a Health event), the page says so and the policy's `health_grace` holds it.
#[tokio::test]
async fn an_open_aws_health_issue_is_named_and_holds_the_page_for_its_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    prepare(d, "10m");
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/oncall/walkthrough.toml"),
    )
    .expect("file")
    .replace("repeat = 1", "repeat = 1\nhealth_grace = \"2m\"");
    let path = d.join("grace.toml");
    std::fs::write(&path, file).expect("write");
    ok(&run(
        d,
        &["oncall", "import", path.to_str().expect("utf-8")],
    ));
    ok(&run(
        d,
        &[
            "alarms", "put", "ec2-cpu", "--route", "page", "--policy", "default",
        ],
    ));
    let server = start(d);
    let http = reqwest::Client::new();
    let post = |body: String| {
        let req = http.post(server.url("/serviceme")).body(body);
        async move {
            req.send()
                .await
                .expect("post")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let health = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/payloads/aws-health-event.json"),
    )
    .expect("health");
    assert_eq!(
        post(health).await["outcome"],
        "created",
        "the Health issue's own case"
    );
    let alarm = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(ALARM))
        .expect("alarm")
        .replace("AWS/ApplicationELB", "AWS/EC2")
        .replace("prod-api-5xx-rate", "ec2-cpu");
    let answer = post(alarm).await;
    assert_eq!(answer["outcome"], "paged", "{answer}");
    let page = json(d, &["pages", "show", "1", "--json"]);
    let summary = page["summary"].as_str().expect("summary");
    assert!(
        summary.starts_with("AWS reports an issue with EC2 in us-east-1. ec2-cpu is in ALARM"),
        "{summary}"
    );
    let held = (at(&page["next_at"]) - at(&page["opened_at"])).num_seconds();
    assert!((119..=121).contains(&held), "held for the grace: {held} s");
    assert_eq!(
        page["messages"].as_array().map(Vec::len),
        Some(0),
        "nobody called yet"
    );
}

/// Voice calls by a Twilio-compatible provider work on the embedded default too: bob's call
/// asks for a key; a key that means nothing changes nothing, 2 wakes the next stage now; a
/// keypress for a page that is not a number, or too large to be the provider's, is refused.
#[tokio::test]
async fn a_call_asks_for_a_key_and_2_escalates() {
    use crate::common::voice_standin::{self, VoiceStandin};
    let voice = VoiceStandin::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    prepare(d, "2s");
    let api = voice.endpoint();
    let server = ServerProcess::start(&[
        ("DATA_DIR", d.to_str().expect("utf-8")),
        ("PUBLIC_URL", "http://localhost:9"),
        ("PAGE_VOICE", "twilio"),
        ("TWILIO_ACCOUNT_SID", voice_standin::SID),
        ("TWILIO_AUTH_TOKEN", voice_standin::TOKEN),
        ("TWILIO_FROM", "+15555550160"),
        ("TWILIO_API_URL", api.as_str()),
    ]);
    post_alarm(&server).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let call = loop {
        if let Some(c) = voice.calls().into_iter().next() {
            break c;
        }
        assert!(Instant::now() < deadline, "bob was never called");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(call.to, "+15555550101");
    let (status, said) = voice
        .press(&call, "9", &server.url(""), voice_standin::TOKEN)
        .await;
    assert_eq!(status, 200);
    assert!(said.contains("That key does nothing"), "{said}");
    assert_eq!(json(d, &["pages", "show", "1", "--json"])["state"], "open");
    let http = reqwest::Client::new();
    let r = http
        .post(server.url("/voice/twilio/one/bob"))
        .body("Digits=1")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 404);
    let huge = format!("Digits=1&Pad={}", "x".repeat(20_000));
    let r = http
        .post(server.url("/voice/twilio/1/bob"))
        .header("x-twilio-signature", "c2lnbmF0dXJl")
        .body(huge)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let (status, said) = voice
        .press(&call, "2", &server.url(""), voice_standin::TOKEN)
        .await;
    assert_eq!(status, 200);
    assert!(
        said.contains("The next person is being called now"),
        "{said}"
    );
    let page = json(d, &["pages", "show", "1", "--json"]);
    let lines: Vec<&str> = page["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(lines.contains(&"escalated by bob (via voice)"), "{lines:?}");
}

/// Posts a body (as the worker daemon delivers it from the queue, when `msgid` is given)
/// and returns the answer, which must be 200.
async fn post_body(server: &ServerProcess, body: String, msgid: Option<&str>) -> Value {
    let mut post = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .body(body);
    if let Some(id) = msgid {
        post = post.header("x-aws-sqsd-msgid", id);
    }
    let resp = post.send().await.expect("post");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

/// AWS's reply on `case`, as its EventBridge event, dated `at`.
fn aws_reply(case: &str, at: DateTime<Utc>) -> String {
    crate::common::support_event("communication-aws", case).replace(
        "2022-02-21T15:51:19Z",
        &at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

async fn post_json(server: &ServerProcess, body: Value) -> Value {
    post_body(server, body.to_string(), None).await
}

/// `report` through the binary: an empty span, then a page acknowledged and resolved and a
/// case that recovered by itself within minutes, counted as such (every figure of a known
/// history is asserted in `case::report::tests`).
#[tokio::test]
async fn the_report_counts_pages_their_acknowledgement_and_cases_that_recovered_by_themselves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    prepare(d, "30s");
    let empty = json(d, &["report", "--json"]);
    assert_eq!(empty["pages"]["opened"], 0, "{empty:#}");
    assert_eq!(
        empty["pages"]["time_to_acknowledge"]["median_seconds"],
        Value::Null
    );
    assert_eq!(empty["cases"]["opened"], 0);

    ok(&run(
        d,
        &["alarms", "put", "disk-full", "--priority", "high"],
    ));
    let server = start(d);
    assert_eq!(post_alarm(&server).await["outcome"], "paged");
    ok(&run(d, &["pages", "ack", "1", "--by", "alice"]));
    ok(&run(d, &["pages", "resolve", "1", "--by", "alice"]));
    let now = Utc::now();
    let state = |s: &str, at: DateTime<Utc>| {
        serde_json::json!({"AlarmName": "disk-full", "NewStateValue": s,
            "StateChangeTime": at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()})
    };
    let created = post_json(&server, state("ALARM", now)).await;
    assert_eq!(created["outcome"], "created");
    let case = created["caseId"].as_str().expect("case id");
    // AWS replies 90 s later (the event's time), through the queue as EventBridge sends it.
    let replied = post_body(
        &server,
        aws_reply(case, now + chrono::Duration::seconds(90)),
        Some("reply-1"),
    )
    .await;
    assert_eq!(replied["outcome"], "replied", "{replied}");
    let ok_now = now + chrono::Duration::seconds(1);
    assert_eq!(
        post_json(&server, state("OK", ok_now)).await["outcome"],
        "recovered"
    );

    let r = json(d, &["report", "--json"]);
    let pages = &r["pages"];
    assert_eq!(
        (
            &pages["opened"],
            &pages["acknowledged"],
            &pages["resolved"],
            &pages["unanswered"],
            &pages["live"]
        ),
        (
            &Value::from(1),
            &Value::from(1),
            &Value::from(1),
            &Value::from(0),
            &Value::from(0)
        ),
        "{r:#}"
    );
    let tta = &pages["time_to_acknowledge"];
    assert_eq!(tta["count"], 1);
    let median = tta["median_seconds"].as_i64().expect("seconds");
    assert!((0..60).contains(&median), "{r:#}");
    assert_eq!(tta["median_seconds"], tta["p90_seconds"]);
    assert_eq!(
        (
            &r["cases"]["opened"],
            &r["cases"]["recovered_by_themselves"]
        ),
        (&Value::from(1), &Value::from(1))
    );
    assert_eq!(
        r["cases"]["by_severity"],
        serde_json::json!({"low": 0, "normal": 0, "high": 1, "urgent": 0, "critical": 0, "unknown": 0}),
        "{r:#}"
    );
    let high = &r["aws_replies"][2];
    assert_eq!(
        (
            &high["severity"],
            &high["target_seconds"],
            &high["cases"],
            &high["replied"],
            &high["met"],
            &high["missed"],
            &high["share_met"]
        ),
        (
            &Value::from("high"),
            &Value::from(14_400),
            &Value::from(1),
            &Value::from(1),
            &Value::from(1),
            &Value::from(0),
            &Value::from(1.0)
        ),
        "{r:#}"
    );
    let first = high["time_to_first_reply"]["median_seconds"]
        .as_i64()
        .expect("seconds");
    assert!((85..=90).contains(&first), "{r:#}");
    // The page called one person first: one callout.
    let callouts = r["callouts"].as_array().expect("callouts");
    assert_eq!(callouts.len(), 1, "{r:#}");
    assert_eq!(callouts[0]["callouts"], 1, "{r:#}");
    let noisy = r["noisiest"].as_array().expect("list");
    assert!(noisy.contains(&serde_json::json!({"alarm": "prod-api-5xx-rate", "pages": 1, "cases": 0, "recovered_by_themselves": 0})), "{r:#}");
    assert!(noisy.contains(&serde_json::json!({"alarm": "disk-full", "pages": 0, "cases": 1, "recovered_by_themselves": 1})), "{r:#}");

    let csv = ok(&run(d, &["report", "--csv"]));
    assert!(
        csv.starts_with("metric,value\n") && csv.contains("\npages.acknowledged,1\n"),
        "{csv}"
    );
    let old = json(d, &["report", "--month", "2020-01", "--json"]);
    assert_eq!(
        (&old["pages"]["opened"], &old["cases"]["opened"]),
        (&Value::from(0), &Value::from(0))
    );
    refused(&run(d, &["report", "--month", "2026-13"]), "is not a month");
    refused(&run(d, &["report", "--since", "forever"]), "--since");
    refused(
        &run(d, &["report", "--since", "0s"]),
        "--since: a span longer than zero",
    );
    refused(
        &run(d, &["report", "--since", "3651d"]),
        "longer than the longest duration accepted, 3650d",
    );
    refused(
        &run(d, &["report", "--month", "2026-12", "--since", "7d"]),
        "cannot be used with",
    );
    refused(
        &run(d, &["report", "--json", "--csv"]),
        "cannot be used with",
    );
}

/// `cases review` through the binary on a case that was paged, acknowledged, replied to by
/// AWS and recovered: its draft has each of those on the timeline, the person who
/// acknowledged, and the graph saved beside it (every line of a known case is asserted in
/// `case::review::tests`).
#[tokio::test]
async fn cases_review_drafts_a_paged_replied_and_recovered_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    prepare(d, "30s");
    ok(&run(
        d,
        &[
            "alarms",
            "put",
            "prod-api-5xx-rate",
            "--route",
            "both",
            "--priority",
            "high",
        ],
    ));
    let server = start(d);
    // The alarm fired a minute ago.
    let fired = Utc::now() - chrono::Duration::minutes(1);
    let body = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(ALARM))
        .expect("alarm")
        .replace(
            "2026-11-20T03:12:45.118+0000",
            &fired.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        );
    let answer = post_body(&server, body, None).await;
    let case = answer["caseId"]
        .as_str()
        .expect("a case as well as a page")
        .to_owned();
    messages(d, 2);
    ok(&run(d, &["pages", "ack", "1", "--by", "alice"]));
    let replied = post_body(&server, aws_reply(&case, Utc::now()), Some("reply-1")).await;
    assert_eq!(replied["outcome"], "replied", "{replied}");
    let ok_body = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/payloads/metric-alarm-ok.json"),
    )
    .expect("ok payload");
    let recovered = post_body(&server, ok_body, None).await;
    assert_eq!(recovered["outcome"], "recovered", "{recovered}");

    let graph = d.join("graph.png");
    let md = ok(&run(
        d,
        &[
            "cases",
            "review",
            &case,
            "--graph",
            graph.to_str().expect("utf-8"),
        ],
    ));
    for wanted in [
        &format!("# Post-incident review: case {case}"),
        &format!(
            "| {} | 0 s | the alarm fired |",
            fired.format("%Y-%m-%d %H:%M:%S")
        ),
        "case opened for prod-api-5xx-rate, severity high |",
        "page 1: acknowledged by alice \\(via command\\) |",
        "| AWS Support replied |",
        "prod-api-5xx-rate back to OK: recovered |",
        "- alice: called; acknowledged page 1\n",
        "- Resolved: not yet\n",
        "![The alarm's metric when the case was opened](",
        "## Cause",
    ] {
        assert!(md.contains(wanted), "{wanted:?} in\n{md}");
    }
    let png = std::fs::read(&graph).expect("the graph, saved");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let unknown = run(d, &["cases", "review", "no-such-case"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no case \"no-such-case\" in the ledger")
    );
}
