//! `check --alarms` through the binary, on the aws backend: CloudWatch's DescribeAlarms in
//! the stand-in (the SDK speaks CBOR, which moto does not), SNS, SQS and DynamoDB in moto.
//! One alarm of each defect and one healthy: every finding asserted, with its fix; then an
//! account with only the healthy alarm passes.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::common;
use common::moto::{moto, sdk_config, unique};
use cw_support_api::backend::aws::dynamo;

const REGION: &str = "us-east-1";

struct Account {
    env: Vec<(String, String)>,
    ours: String,
    other: String,
    queue_arn: String,
}

fn run(env: &[(String, String)], args: &[&str]) -> Output {
    Command::new(common::process::BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("RUST_LOG")
        .output()
        .expect("run")
}

/// Tables, a queue standing for this service, the topic subscribed to it, another topic
/// that is not, and the binary's environment pointing at them.
async fn account(cloudwatch: &str) -> Account {
    let sdk = sdk_config();
    let (config_table, ledger_table) = (unique("rcfg"), unique("rled"));
    dynamo::create_tables(
        &aws_sdk_dynamodb::Client::new(&sdk),
        &config_table,
        &ledger_table,
    )
    .await
    .expect("tables");
    let (queue_url, queue_arn) = common::moto::queue("ready-q").await;
    let (ours, other) = (
        common::moto::topic("ours").await,
        common::moto::topic("other").await,
    );
    let sns = aws_sdk_sns::Client::new(&sdk);
    sns.subscribe()
        .topic_arn(&ours)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .expect("subscribe");
    let env = [
        ("BACKEND", "aws"),
        ("DBREGION", REGION),
        ("DBTABLE", config_table.as_str()),
        ("LEDGER_TABLE", ledger_table.as_str()),
        ("AWS_ENDPOINT_URL", moto().endpoint.as_str()),
        ("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch),
        ("QUEUE_URL", queue_url.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("TAGS", "off"),
        ("METRICS", "off"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    Account {
        env,
        ours,
        other,
        queue_arn,
    }
}

fn metric(name: &str, alarm: &[&str], ok: &[&str], enabled: bool) -> Value {
    json!({
        "AlarmName": name,
        "AlarmArn": format!("arn:aws:cloudwatch:{REGION}:123456789012:alarm:{name}"),
        "ActionsEnabled": enabled,
        "AlarmActions": alarm,
        "OKActions": ok,
    })
}

fn put_settings(env: &[(String, String)], names: &[&str]) {
    for name in names {
        let o = run(env, &["alarms", "put", name, "--priority", "high"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_alarms_names_each_defect_with_its_fix_and_passes_a_ready_account() {
    let (cloudwatch, recorded) = common::cloudwatch_standin::start().await;
    let a = account(&cloudwatch).await;
    let (ours, other) = (a.ours.as_str(), a.other.as_str());
    recorded.define_alarm(metric("healthy", &[ours], &[ours], true), false);
    recorded.define_alarm(metric("no-ok-action", &[ours], &[], true), false);
    recorded.define_alarm(metric("no-settings", &[ours], &[ours], true), false);
    recorded.define_alarm(metric("not-subscribed", &[other], &[other], true), false);
    recorded.define_alarm(metric("child-pages", &[ours], &[ours], true), false);
    recorded.define_alarm(metric("child-quiet", &[other], &[], true), false);
    let mut composite = metric("service-down", &[ours], &[ours], true);
    composite["AlarmRule"] = json!("ALARM(\"child-pages\") OR ALARM(child-quiet)");
    recorded.define_alarm(composite, true);
    put_settings(
        &a.env,
        &[
            "healthy",
            "no-ok-action",
            "not-subscribed",
            "child-pages",
            "service-down",
            "deleted-alarm",
        ],
    );

    let o = run(&a.env, &["check", "--alarms", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_slice(&o.stdout).expect("json");
    let found: Vec<(&str, &str)> = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["alarm"].as_str().unwrap_or(""),
                f["defect"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("deleted-alarm", "dead_settings"),
            ("no-ok-action", "no_ok_action"),
            ("no-settings", "no_settings"),
            ("not-subscribed", "no_subscription"),
            ("service-down", "child_pages"),
        ],
        "{r:#}"
    );
    assert_eq!(r["alarms"], 7);
    assert_eq!(r["ready"], json!(["child-pages", "healthy"]), "{r:#}");
    let fix = |alarm: &str| {
        r["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["alarm"] == alarm)
            .and_then(|f| f["fix"].as_str())
            .expect("fix")
            .to_owned()
    };
    // The fix names this service's queue, as SQS gave its ARN for QUEUE_URL.
    assert_eq!(
        fix("not-subscribed"),
        format!(
            "aws sns subscribe --topic-arn {other} --protocol sqs --notification-endpoint {}",
            a.queue_arn
        )
    );
    assert!(fix("no-ok-action").contains(&format!("--ok-actions {ours}")));

    // The same as text, for a person.
    let o = run(&a.env, &["check", "--alarms"]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.starts_with("[ ok ] 7 alarm(s) in us-east-1; 5 reach this service"),
        "{text}"
    );
    assert!(
        text.contains("[FAIL] \"deleted-alarm\": settings for an alarm this account does not have"),
        "{text}"
    );
    assert!(text.contains("[ ok ] \"healthy\" is ready"), "{text}");

    // Bad use: --json alone, a subscriber that is neither a queue ARN nor a URL, the local
    // backend.
    let o = run(&a.env, &["check", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&a.env, &["check", "--alarms", "--subscriber", "mailto:x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("an SQS queue ARN or an http(s) URL"));
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Command::new(common::process::BIN)
        .args(["check", "--alarms"])
        .env("DATA_DIR", dir.path())
        .env("BACKEND", "local")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("BACKEND=aws"));

    // An account whose one alarm is ready passes.
    let (cloudwatch, recorded) = common::cloudwatch_standin::start().await;
    let b = account(&cloudwatch).await;
    recorded.define_alarm(metric("healthy", &[&b.ours], &[&b.ours], true), false);
    put_settings(&b.env, &["healthy"]);
    let o = run(&b.env, &["check", "--alarms"]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// An account whose DescribeAlarms never stops naming a next page is refused after the last
/// page read, never judged (and called ready) on the part that was read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_alarms_refuses_to_judge_an_account_on_part_of_its_alarms() {
    let (cloudwatch, recorded) = common::cloudwatch_standin::start().await;
    let b = account(&cloudwatch).await;
    recorded.define_alarm(metric("healthy", &[&b.ours], &[&b.ours], true), false);
    put_settings(&b.env, &["healthy"]);
    recorded.never_end_alarms();
    let o = run(&b.env, &["check", "--alarms", "--json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        o.stdout.is_empty(),
        "no verdict: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        err.contains("DescribeAlarms still had more after 200 pages; not judged on a part"),
        "{err}"
    );
    assert_eq!(recorded.calls("DescribeAlarms"), 200);
}
