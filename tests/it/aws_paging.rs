//! Pages on the aws backend, through the binary and the stand-ins: pages in DynamoDB, SMS by
//! SNS and e-mail by SES (moto), voice calls by the Twilio-compatible stand-in. Two
//! instances share the work and each message goes out once; the callee's keypress,
//! signed as the provider signs, acknowledges; one not signed with the account's token is
//! refused. And AWS End User Messaging's one-way calls, through the SDK to its stand-in.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;
use common::moto::{moto, sdk_config, sent, unique};
use common::process::{BIN, ServerProcess};
use common::support_standin::SupportStandin;
use common::voice_standin::{self, VoiceStandin};
use cw_support_api::backend::aws::{AwsConfig, dynamo};
use cw_support_api::domain::page::{Channel, PageId};
use cw_support_api::ports::pages::OutMessage;

/// A phone number no other test uses (moto's record of SMS is shared).
fn number() -> String {
    let n = unique("n")
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    format!("+1555{:07}", n % 10_000_000)
}

fn cli(env: &[(String, String)], args: &[&str]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("runs");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn to(v: &Value, key: &str, addr: &str) -> usize {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["to"] == addr || m["to"][0] == addr)
                .count()
        })
        .unwrap_or(0)
}

/// Everything one aws-backend run needs: the stand-ins, fresh tables, a verified sender,
/// numbers and addresses of its own, the on-duty file (stage 2 `second` seconds on) and the
/// environment of the binary.
struct AwsRun {
    _support: SupportStandin,
    voice: VoiceStandin,
    _dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    alice_sms: String,
    bob_voice: String,
    alice_mail: String,
    bob_mail: String,
    /// What was published to CloudWatch (METRICS=on).
    cloudwatch: common::cloudwatch_standin::Recorded,
}

async fn aws_run(second: u32) -> AwsRun {
    let (support, voice) = (SupportStandin::start().await, VoiceStandin::start().await);
    let (cloudwatch_url, cloudwatch) = common::cloudwatch_standin::start().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config());
    let (config_table, ledger_table) = (unique("pcfg"), unique("pled"));
    dynamo::create_tables(&client, &config_table, &ledger_table)
        .await
        .expect("tables");
    let from = format!("{}@pager.example.com", unique("pager"));
    aws_sdk_sesv2::Client::new(&sdk_config())
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("a verified sender");
    let (alice_sms, bob_voice) = (number(), number());
    let (alice_mail, bob_mail) = (
        format!("{}@example.com", unique("alice")),
        format!("{}@example.com", unique("bob")),
    );
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/oncall/walkthrough.toml"),
    )
    .expect("file")
    .replace("+15555550100", &alice_sms)
    .replace("+15555550101", &bob_voice)
    .replace("alice@example.com", &alice_mail)
    .replace("bob@example.com", &bob_mail)
    .replace("after = \"30s\"", &format!("after = \"{second}s\""));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("team.toml");
    std::fs::write(&path, file).expect("write");
    let env: Vec<(String, String)> = [
        ("BACKEND", "aws"),
        ("DBREGION", "us-east-1"),
        ("DBTABLE", config_table.as_str()),
        ("LEDGER_TABLE", ledger_table.as_str()),
        ("AWS_ENDPOINT_URL", moto().endpoint.as_str()),
        ("AWS_ENDPOINT_URL_SUPPORT", support.endpoint().as_str()),
        ("GRAPHS", "local"),
        ("TAGS", "off"),
        ("METRICS", "on"),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch_url.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("PAGE_EMAIL_FROM", from.as_str()),
        ("PAGE_VOICE", "twilio"),
        ("TWILIO_ACCOUNT_SID", voice_standin::SID),
        ("TWILIO_AUTH_TOKEN", voice_standin::TOKEN),
        ("TWILIO_FROM", "+15555550160"),
        ("TWILIO_API_URL", voice.endpoint().as_str()),
        ("PUBLIC_URL", "http://localhost:9"),
        ("PAGE_LINK_KEY", "0123456789abcdef0123456789abcdef"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    cli(&env, &["oncall", "import", path.to_str().expect("utf-8")]);
    cli(
        &env,
        &[
            "alarms",
            "put",
            "prod-api-5xx-rate",
            "--route",
            "page",
            "--policy",
            "default",
        ],
    );
    AwsRun {
        _support: support,
        voice,
        _dir: dir,
        env,
        alice_sms,
        bob_voice,
        alice_mail,
        bob_mail,
        cloudwatch,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_page_on_aws_once_and_a_signed_keypress_acknowledges() {
    let run = aws_run(3).await;
    let AwsRun {
        voice,
        env,
        alice_sms,
        bob_voice,
        alice_mail,
        bob_mail,
        cloudwatch,
        ..
    } = &run;
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (mut a, mut b) = (ServerProcess::start(&pairs), ServerProcess::start(&pairs));
    let body = std::fs::read(common::payload_path("metric-alarm.json")).expect("alarm");
    let resp = reqwest::Client::new()
        .post(a.url("/serviceme"))
        .header("x-aws-sqsd-msgid", "page-msg-1")
        .body(body)
        .send()
        .await
        .expect("post");
    let answer: Value = resp.json().await.expect("json");
    assert_eq!(answer["outcome"], "paged", "{answer}");
    // Stage 1: alice by SMS and e-mail; stage 2, three seconds on: bob by a call and e-mail.
    wait_for("alice's messages", async || {
        let s = sent().await;
        (to(&s, "sms", alice_sms) >= 1 && to(&s, "emails", alice_mail) >= 1).then_some(())
    })
    .await;
    let call = wait_for("bob's call", async || {
        voice.calls().into_iter().find(|c| c.to == *bob_voice)
    })
    .await;
    wait_for("bob's e-mail", async || {
        (to(&sent().await, "emails", bob_mail) >= 1).then_some(())
    })
    .await;
    // Each went once, though two instances ran the engine.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = sent().await;
    assert_eq!(
        (
            to(&s, "sms", alice_sms),
            to(&s, "emails", alice_mail),
            to(&s, "emails", bob_mail)
        ),
        (1, 1, 1),
        "{s:#}"
    );
    assert_eq!(
        voice.calls().iter().filter(|c| c.to == *bob_voice).count(),
        1
    );
    assert_eq!(call.from, "+15555550160");
    assert!(
        call.twiml.contains(
            "<prosody rate=\"slow\">This is the on-duty pager. prod-api-5xx-rate is in ALARM"
        ),
        "{}",
        call.twiml
    );
    // A keypress signed with another token: refused, nothing changes.
    let (status, _) = voice.press(&call, "1", &b.url(""), "not-the-token").await;
    assert_eq!(status, 403);
    let page: Value =
        serde_json::from_str(&cli(env, &["pages", "show", "1", "--json"])).expect("json");
    assert_eq!(page["state"], "open");
    // Bob presses 1, his call's answer reaching the other instance.
    let (status, twiml) = voice
        .press(&call, "1", &b.url(""), voice_standin::TOKEN)
        .await;
    assert_eq!(status, 200, "{twiml}");
    assert!(
        twiml.contains("Page is yours. Nobody else will be called."),
        "{twiml}"
    );
    let page: Value =
        serde_json::from_str(&cli(env, &["pages", "show", "1", "--json"])).expect("json");
    assert_eq!(
        (page["state"].as_str(), page["owner"].as_str()),
        (Some("acknowledged"), Some("bob"))
    );
    let lines: Vec<&str> = page["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(
        lines.contains(&"acknowledged by bob (via voice)"),
        "{lines:?}"
    );
    let channels: Vec<(&str, &str)> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["stage"].is_number())
        .map(|m| {
            (
                m["person"].as_str().unwrap_or(""),
                m["channel"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        channels,
        vec![
            ("alice", "sms"),
            ("alice", "email"),
            ("bob", "voice"),
            ("bob", "email")
        ]
    );
    let list: Value = serde_json::from_str(&cli(env, &["pages", "list", "--json"])).expect("json");
    assert_eq!(
        (list[0]["id"].as_u64(), list[0]["alarm"].as_str()),
        (Some(1), Some("prod-api-5xx-rate"))
    );
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    // Stopping published what was measured: the time bob took to acknowledge, once.
    assert!(
        cloudwatch.saw_metric("Page/TimeToAcknowledge"),
        "{} requests",
        cloudwatch.requests()
    );
}

#[tokio::test]
async fn end_user_messaging_speaks_the_page_slowly_and_says_what_aws_refused() {
    let voice = VoiceStandin::start().await;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(voice.endpoint())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDTEST", "secret", None, None, "tests"),
            ),
        )
        .build();
    let aws = AwsConfig::from(sdk);
    let m = OutMessage {
        id: 1,
        page: PageId(3),
        key: "3/0/1/bob/voice".into(),
        person: "bob".into(),
        channel: Channel::Voice,
        to: "+15555550101".into(),
        text: "This is the on-duty pager. db <primary> & replica are down. Page number 3.".into(),
        attempts: 0,
    };
    aws.voice_transport(voice_standin::AWS_FROM)
        .send(&m)
        .await
        .expect("sent");
    let sent = voice.voice_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["DestinationPhoneNumber"], "+15555550101");
    assert_eq!(sent[0]["OriginationIdentity"], voice_standin::AWS_FROM);
    assert_eq!(sent[0]["MessageBodyTextType"], "SSML");
    assert_eq!(sent[0]["VoiceId"], "JOANNA");
    let body = sent[0]["MessageBody"].as_str().expect("body");
    assert!(body.starts_with("<speak><prosody rate=\"slow\">This is the on-duty pager. db &lt;primary&gt; &amp; replica"), "{body}");
    let e = aws
        .voice_transport("+15555550999")
        .send(&m)
        .await
        .expect_err("unknown origination");
    assert!(e.to_string().contains("ResourceNotFoundException"), "{e}");
}

/// SIGKILL between two stages on the aws backend, then a restart: the second stage still
/// comes, within a second of its time (the step's due time is in DynamoDB, not in memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stage_due_while_the_aws_instance_was_killed_still_comes_on_time() {
    let _quiet = crate::common::TIMING.lock().await;
    let run = aws_run(8).await;
    let pairs: Vec<(&str, &str)> = run
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut server = ServerProcess::start(&pairs);
    let body = std::fs::read(common::payload_path("metric-alarm.json")).expect("alarm");
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .header("x-aws-sqsd-msgid", "kill-msg-1")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    wait_for("alice's SMS", async || {
        (to(&sent().await, "sms", &run.alice_sms) >= 1).then_some(())
    })
    .await;
    let page: Value =
        serde_json::from_str(&cli(&run.env, &["pages", "show", "1", "--json"])).expect("json");
    let due: chrono::DateTime<chrono::Utc> = page["next_at"]
        .as_str()
        .expect("next")
        .parse()
        .expect("time");
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("dead");
    let _restarted = ServerProcess::start(&pairs);
    // A server that is down sends nothing: on a loaded machine the restart (the SDK's
    // start, STS) can take longer than the gap, and then the stage is due the moment the
    // restarted server is ready.
    let due = due.max(chrono::Utc::now());
    wait_for("bob's call", async || {
        run.voice
            .calls()
            .into_iter()
            .find(|c| c.to == run.bob_voice)
    })
    .await;
    let page: Value =
        serde_json::from_str(&cli(&run.env, &["pages", "show", "1", "--json"])).expect("json");
    let second: Vec<&Value> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["stage"] == 2)
        .collect();
    assert_eq!(second.len(), 2, "{page:#}");
    for m in second {
        let at: chrono::DateTime<chrono::Utc> =
            m["at"].as_str().expect("at").parse().expect("time");
        let late = at - due;
        assert!(
            late >= chrono::Duration::zero() && late < chrono::Duration::seconds(1),
            "due {due}, queued {at}"
        );
    }
}
