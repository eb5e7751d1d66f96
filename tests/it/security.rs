//! Attacks on the real binary, each refused: SNS messages from topics the service does not
//! own, certificate-download amplification, replays, a SubscribeURL with another token,
//! unverified envelopes asking to be confirmed, secrets on standard error, slow senders and
//! unauthenticated bodies. Every outbound HTTPS request goes through a recording proxy
//! (`HTTPS_PROXY`), so "nothing was fetched" is observed, not assumed; SNS messages are
//! signed with a key generated here, its certificate pinned with `SNS_CERT_DIR`.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::egress::Egress;
use common::moto::{moto, unique};
use common::process::{BIN, ServerProcess};
use common::sns_sign::{Signer, TOPIC};
use serde_json::{Value, json};

const TOKEN: &str = "security-test-token-0123456789";
const FOREIGN_TOPIC: &str = "arn:aws:sns:us-east-1:999999999999:alarms";

fn alarm_json(name: &str) -> String {
    json!({
        "AlarmName": name,
        "AlarmDescription": "security test",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed",
        "StateChangeTime": "2026-11-20T03:12:45.118+0000",
        "AWSAccountId": "123456789012",
        "Region": "US East (N. Virginia)",
        "OldStateValue": "OK",
        "Trigger": {"MetricName": "5XXError", "Namespace": "AWS/ApiGateway",
                    "Statistic": "SUM", "Period": 60, "EvaluationPeriods": 1,
                    "ComparisonOperator": "GreaterThanThreshold", "Threshold": 10.0,
                    "Dimensions": []}
    })
    .to_string()
}

/// The environment of a local-backend server in `dir` whose outbound requests go to
/// `egress` and whose SNS certificate is pinned.
fn env<'a>(dir: &'a str, egress: &'a str, certs: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("DATA_DIR", dir),
        ("HTTPS_PROXY", egress),
        ("https_proxy", egress),
        ("NO_PROXY", "127.0.0.1,localhost"),
        ("SNS_CERT_DIR", certs),
    ]
}

async fn post(server: &ServerProcess, body: String, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const SNS: [(&str, &str); 1] = [("user-agent", "Amazon Simple Notification Service Agent")];

fn sns_headers(kind: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![SNS[0], ("x-amz-sns-message-type", kind)]
}

/// The decisions the local ledger in `dir` holds, read with the CLI after the server stops.
fn recorded(dir: &std::path::Path) -> Vec<Value> {
    let out = Command::new(BIN)
        .args(["cases", "list", "--json", "--limit", "0"])
        .env("DATA_DIR", dir)
        .output()
        .expect("cases list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_topic_list_the_local_backend_serves_no_topic_and_says_how_to_set_one() {
    let (signer, egress) = (Signer::new(), Egress::start());
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, certs) = (dir.path().to_str().expect("utf-8"), signer.cert_dir());
    let mut server = ServerProcess::start(&env(d, &egress.url(), certs.to_str().expect("utf-8")));
    let note = signer.notification(TOPIC, "m-1", &alarm_json("db-down"), 5);
    let (status, body) = post(&server, note.to_string(), &sns_headers("Notification")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("topic_not_allowed")),
        "{body}"
    );
    let confirm = signer.confirmation(TOPIC, "tok-1", "tok-1");
    let (status, _) = post(
        &server,
        confirm.to_string(),
        &sns_headers("SubscriptionConfirmation"),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        egress.seen().is_empty(),
        "nothing fetched or confirmed: {:?}",
        egress.seen()
    );
    assert!(
        server.log().contains("SNS_TOPIC_ARNS"),
        "the log says what to set"
    );
    assert!(server.terminate().success());
    assert!(recorded(dir.path()).is_empty(), "no case, no decision");
}

#[test]
fn a_wildcard_account_is_refused_at_start_and_a_lone_star_is_logged() {
    for list in ["arn:aws:sns:us-east-1:*:alarms", "arn:aws:sns:*:*:alarms"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(BIN)
            .args(["serve", "--port", "0", "--bind", "127.0.0.1"])
            .env("DATA_DIR", dir.path())
            .env("SNS_TOPIC_ARNS", list)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{list}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("any AWS account"), "{list}: {err}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("SNS_TOPIC_ARNS", "*"),
    ]);
    assert!(server.log().contains("ANY AWS account"), "{}", server.log());
    assert!(server.terminate().success());
}

/// On the aws backend the own account comes from STS (moto's is 123456789012): its
/// topic is confirmed (a visit to SNS, refused by the proxy, so 503 and SNS retries),
/// another account's is refused and never visited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_aws_backend_only_the_accounts_own_topics_are_confirmed() {
    let (signer, egress) = (Signer::new(), Egress::start());
    let m = &moto().endpoint;
    let (settings, ledger) = (unique("sec-settings"), unique("sec-ledger"));
    let aws = [
        ("BACKEND", "aws"),
        ("GRAPHS", "local"),
        ("TAGS", "off"),
        ("DBREGION", "us-east-1"),
        ("DBTABLE", settings.as_str()),
        ("LEDGER_TABLE", ledger.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", m.as_str()),
        ("AWS_ENDPOINT_URL_STS", m.as_str()),
        ("AWS_ENDPOINT_URL_SUPPORT", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("METRICS", "off"),
    ];
    let created = Command::new(BIN)
        .args(["tables", "create"])
        .envs(aws)
        .output()
        .expect("tables create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let proxy = egress.url();
    let certs = signer.cert_dir();
    let mut envs: Vec<(&str, &str)> = aws.to_vec();
    envs.extend([
        ("HTTPS_PROXY", proxy.as_str()),
        ("NO_PROXY", "127.0.0.1,localhost"),
        ("SNS_CERT_DIR", certs.to_str().expect("utf-8")),
    ]);
    let mut server = ServerProcess::start(&envs);
    assert!(server.log().contains("123456789012"), "{}", server.log());

    let theirs = signer.confirmation(FOREIGN_TOPIC, "tok-2", "tok-2");
    let (status, body) = post(
        &server,
        theirs.to_string(),
        &sns_headers("SubscriptionConfirmation"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("topic_not_allowed"))
    );
    assert!(egress.seen().is_empty(), "{:?}", egress.seen());

    let ours = signer.confirmation(TOPIC, "tok-3", "tok-3");
    let (status, body) = post(
        &server,
        ours.to_string(),
        &sns_headers("SubscriptionConfirmation"),
    )
    .await;
    assert_eq!(status, 503, "the visit was refused by the proxy: {body}");
    let seen = egress.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with("CONNECT sns.us-east-1.amazonaws.com:443"),
        "{seen:?}"
    );
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_certificate_urls_cost_a_bounded_number_of_downloads() {
    let (signer, egress) = (Signer::new(), Egress::start());
    let dir = tempfile::tempdir().expect("tempdir");
    let (proxy, certs) = (egress.url(), signer.cert_dir());
    let mut envs = env(
        dir.path().to_str().expect("utf-8"),
        &proxy,
        certs.to_str().expect("utf-8"),
    );
    envs.push(("SNS_TOPIC_ARNS", TOPIC));
    let mut server = ServerProcess::start(&envs);
    let fake_signature = base64_of(&[7u8; 256]);
    let forged = |i: usize| {
        let mut v = signer.notification(TOPIC, &format!("forged-{i}"), &alarm_json("db-down"), 5);
        v["SigningCertURL"] = json!(format!(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{i:032x}.pem"
        ));
        v["Signature"] = json!(fake_signature);
        v.to_string()
    };
    for i in 0..30 {
        let (status, body) = post(&server, forged(i), &sns_headers("Notification")).await;
        assert!(matches!(status, 403 | 503), "{i}: {status} {body}");
        // 5xx answers say what to expect, never where or why inside.
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains('/') && !message.contains("proxy"),
            "{message}"
        );
    }
    // The same forged URL again and again costs nothing more.
    for _ in 0..5 {
        post(&server, forged(0), &sns_headers("Notification")).await;
    }
    let fetched = egress.seen().len();
    assert!((1..=10).contains(&fetched), "downloads: {fetched}");
    // The genuine key (pinned here) still verifies, and the alarm is the first case.
    let genuine = signer.notification(TOPIC, "genuine-1", &alarm_json("db-down"), 5);
    let (status, body) = post(&server, genuine.to_string(), &sns_headers("Notification")).await;
    assert_eq!(
        (status, body["caseId"].as_str()),
        (200, Some("dry-run-1")),
        "{body}"
    );
    assert!(server.terminate().success());
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_stale_and_foreign_tokens_never_confirm() {
    let (signer, egress) = (Signer::new(), Egress::start());
    let dir = tempfile::tempdir().expect("tempdir");
    let (proxy, certs) = (egress.url(), signer.cert_dir());
    let mut envs = env(
        dir.path().to_str().expect("utf-8"),
        &proxy,
        certs.to_str().expect("utf-8"),
    );
    envs.push(("SNS_TOPIC_ARNS", TOPIC));
    let mut server = ServerProcess::start(&envs);

    // Captured three hours ago and replayed: older than any SNS retry.
    let old = signer.notification(TOPIC, "old-1", &alarm_json("db-down"), 3 * 3600);
    let (status, body) = post(&server, old.to_string(), &sns_headers("Notification")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("stale_message")),
        "{body}"
    );

    // A confirmation whose SubscribeURL carries someone else's token.
    let swapped = signer.confirmation(TOPIC, "tok-mine", "tok-someone-else");
    let (status, body) = post(
        &server,
        swapped.to_string(),
        &sns_headers("SubscriptionConfirmation"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("untrusted_subscribe_url"))
    );
    assert!(egress.seen().is_empty(), "{:?}", egress.seen());

    // The same old envelope read from the worker queue waited there legitimately.
    let (status, body) = post(&server, old.to_string(), &[("x-aws-sqsd-msgid", "q-old-1")]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("created")),
        "{body}"
    );
    assert!(server.terminate().success());
    assert_eq!(recorded(dir.path()).len(), 1, "only the queued delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_envelopes_keep_the_topic_check_and_are_never_confirmed() {
    let egress = Egress::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy = egress.url();
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("HTTPS_PROXY", proxy.as_str()),
        ("NO_PROXY", "127.0.0.1,localhost"),
        ("VERIFY_SQS_ENVELOPES", "false"),
        ("SNS_TOPIC_ARNS", TOPIC),
    ]);
    let sqsd = [("x-aws-sqsd-msgid", "q-1"), ("user-agent", "aws-sqsd/2.4")];
    let envelope = |topic: &str, kind: &str| {
        json!({
            "Type": kind, "MessageId": format!("{kind}-{topic}"), "TopicArn": topic,
            "Message": alarm_json("db-down"), "Timestamp": "2026-11-20T03:12:46.000Z",
            "SignatureVersion": "1", "Signature": "AAAA", "Token": "t",
            "SigningCertURL": common::sns_sign::CERT_URL,
            "SubscribeURL": format!("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token=t"),
        })
        .to_string()
    };
    let (status, body) = post(&server, envelope(FOREIGN_TOPIC, "Notification"), &sqsd).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("topic_not_allowed")),
        "{body}"
    );
    let (status, body) = post(&server, envelope(TOPIC, "SubscriptionConfirmation"), &sqsd).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("unverified_confirmation")),
        "{body}"
    );
    assert!(egress.seen().is_empty(), "{:?}", egress.seen());
    assert!(server.terminate().success());
    assert!(recorded(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_output_well_formed_or_not() {
    let secret = "hunter2-but-long-enough-secret";
    for (how, value) in [
        ("env", format!("{secret},short")),
        ("env", "has space in-it-0123456789".to_owned()),
        ("flag", format!("tiny,{secret}")),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--port", "0", "--bind", "127.0.0.1"])
            .env("DATA_DIR", dir.path())
            .env("RUST_LOG", "trace");
        match how {
            "env" => cmd.env("API_TOKENS", &value),
            _ => cmd.args(["--api-tokens", &value]),
        };
        let out = cmd.output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{how} {value:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("API_TOKENS"), "{all}");
        for part in value.split(',') {
            assert!(
                !all.contains(part.trim()),
                "{how}: {part:?} printed in {all}"
            );
        }
    }
    // Well formed, logging everything, with the right and a wrong token in requests.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("API_TOKENS", secret),
        ("RUST_LOG", "trace"),
    ]);
    let right = format!("Bearer {secret}");
    let (status, _) = post(&server, alarm_json("x"), &[("authorization", &right)]).await;
    assert_eq!(status, 200);
    let wrong = format!("Bearer {secret}-wrong");
    let (status, _) = post(&server, alarm_json("y"), &[("authorization", &wrong)]).await;
    assert_eq!(status, 401);
    let help = Command::new(BIN)
        .arg("--help")
        .env("API_TOKENS", secret)
        .output()
        .expect("help");
    assert!(server.terminate().success());
    let log = format!("{}{}", server.log(), String::from_utf8_lossy(&help.stdout));
    assert!(!log.contains("hunter2"), "a token was printed");
}

/// Opens a socket that sends `head` and then one byte every `every`, until the server
/// cuts it off (a write fails) or 20 s pass; returns how long it was kept.
fn trickle(addr: &str, head: &'static [u8], every: Duration) -> std::thread::JoinHandle<Duration> {
    let mut s = TcpStream::connect(addr).expect("connect");
    std::thread::spawn(move || {
        let started = Instant::now();
        let _ = s.write_all(head);
        while started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(every);
            if s.write_all(b"a").is_err() {
                break;
            }
        }
        started.elapsed()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_never_hold_the_slots_of_genuine_deliveries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("MAX_CONCURRENCY", "4"),
        ("READ_TIMEOUT", "3s"),
    ]);
    let addr = server.addr.clone();
    let mut tricklers = Vec::new();
    for _ in 0..8 {
        // Headers that never end.
        tricklers.push(trickle(
            &addr,
            b"POST /serviceme HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            Duration::from_millis(300),
        ));
        // A body that never ends.
        tricklers.push(trickle(
            &addr,
            b"POST /serviceme HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"AlarmName\": \"",
            Duration::from_millis(300),
        ));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (status, body) = post(&server, alarm_json("genuine"), &[]).await;
    let took = started.elapsed();
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("created")),
        "{body}"
    );
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    // Every trickling socket is cut off once its read time is up.
    for t in tricklers {
        let lasted = t.join().expect("trickler");
        assert!(
            lasted < Duration::from_secs(8),
            "a slow sender was kept {lasted:?}"
        );
    }
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_body_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("API_TOKENS", TOKEN),
    ]);
    let huge = format!(
        r#"{{"AlarmName": "x", "junk": [{}0]}}"#,
        "0,".repeat(400_000)
    );
    let (status, body) = post(&server, huge.clone(), &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let bearer = format!("Bearer {TOKEN}");
    let (status, body) = post(&server, huge, &[("authorization", &bearer)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("too_complex")));
    assert!(server.terminate().success());
    assert!(recorded(dir.path()).is_empty());
}
