//! `deploy/cloudformation.yaml`, the container shape's one stack: its alarms watch exactly
//! the metrics the service publishes (or its notice topic's failed deliveries) and tell the
//! operator topic, never the service; its KPI dashboard shows only metrics the service
//! publishes; and the stack deploys on moto's CloudFormation (queue, dead-letter queue,
//! topics, subscription, tables, role, dashboard, alarms), after which an alarm published to
//! its topic runs through `consume` into one case. `.ebextensions` carries the same health
//! alarms, but the notice topic's: there NOTIFY_TOPIC_ARN is the user's own topic, if any.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::moto::moto;
use common::process::{BIN, ServerProcess};
use common::support_standin::SupportStandin;
use cw_support_api::ports::metrics::{Event, Measure};
use serde_json::Value;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).expect(rel)
}

/// The CloudWatch alarms of a template: resource name → its indented lines.
fn alarms(template: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in template.lines() {
        let is_resource = line.starts_with("  ")
            && !line.starts_with("   ")
            && line.trim_end().ends_with(':')
            && !line.trim_start().starts_with('#');
        if is_resource {
            if let Some((name, body)) = current.take()
                && body.contains("Type: AWS::CloudWatch::Alarm")
            {
                out.insert(name, body);
            }
            current = Some((line.trim().trim_end_matches(':').to_owned(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((name, body)) = current
        && body.contains("Type: AWS::CloudWatch::Alarm")
    {
        out.insert(name, body);
    }
    out
}

fn field<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .map(str::trim)
}

/// Every metric the service publishes in namespace `Support`: its counters and its measures.
fn published() -> Vec<&'static str> {
    Event::ALL
        .iter()
        .map(|e| e.metric_name())
        .chain(Measure::ALL.iter().map(|m| m.metric_name()))
        .collect()
}

fn check_alarms(rel: &str, operator_topic: &str) {
    let text = read(rel);
    let found = alarms(&text);
    let published = published();
    let mut watched = Vec::new();
    for (name, body) in &found {
        let namespace = field(body, "Namespace").unwrap_or_default();
        let metric = field(body, "MetricName").unwrap_or_default();
        match namespace {
            "Support" => assert!(
                published.contains(&metric),
                "{rel} {name}: the service publishes no {metric} (it publishes {published:?})"
            ),
            "AWS/SQS" => assert!(
                [
                    "ApproximateNumberOfMessagesVisible",
                    "ApproximateAgeOfOldestMessage"
                ]
                .contains(&metric),
                "{rel} {name}: {metric}"
            ),
            // The notice topic's deliveries that failed: the one thing about notices only
            // SNS knows.
            "AWS/SNS" => assert_eq!(
                metric, "NumberOfNotificationsFailed",
                "{rel} {name}: the only SNS metric alarmed on is the notices not delivered"
            ),
            other => panic!("{rel} {name}: unexpected namespace {other:?}"),
        }
        assert!(
            body.contains(operator_topic),
            "{rel} {name}: must notify {operator_topic}"
        );
        watched.push(format!("{namespace} {metric}"));
    }
    for wanted in [
        "AWS/SQS ApproximateNumberOfMessagesVisible",
        "Support Delivery/Failed",
        "Support Notify/Failed",
        "AWS/SQS ApproximateAgeOfOldestMessage",
        "Support Task/Reconciled",
    ] {
        assert!(
            watched.iter().any(|w| w == wanted),
            "{rel}: no alarm on {wanted} ({watched:?})"
        );
    }
    // The heartbeat: missing data is the service being gone.
    let heartbeat = found
        .values()
        .find(|b| field(b, "MetricName") == Some("Task/Reconciled"))
        .expect("heartbeat");
    assert_eq!(field(heartbeat, "TreatMissingData"), Some("breaching"));
    assert_eq!(
        field(heartbeat, "ComparisonOperator"),
        Some("LessThanThreshold")
    );
}

#[test]
fn the_alarms_watch_what_the_service_publishes_and_tell_the_operator() {
    check_alarms("deploy/cloudformation.yaml", "!Ref OperatorTopic");
    let template = read("deploy/cloudformation.yaml");
    assert!(
        !alarms(&template)
            .values()
            .any(|b| b.contains("!Ref AlarmTopic")),
        "the service's own health never goes to the alarm topic it reads"
    );
    check_alarms(
        ".ebextensions/03-health-alarms.config",
        "Ref: OperatorTopic",
    );
}

/// The `DashboardBody: !Sub |` block of `KpiDashboard`, its lines trimmed: JSON whose
/// `${...}` (region, topic name) CloudFormation fills in, inside strings.
fn dashboard_body(template: &str) -> String {
    fn indent(l: &str) -> usize {
        l.len() - l.trim_start().len()
    }
    let mut lines = template
        .lines()
        .skip_while(|l| l.trim_end() != "  KpiDashboard:")
        .skip_while(|l| l.trim() != "DashboardBody: !Sub |");
    let header = lines
        .next()
        .expect("a KpiDashboard resource with `DashboardBody: !Sub |`");
    let key = indent(header);
    lines
        .take_while(|l| l.trim().is_empty() || indent(l) > key)
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn notices_that_fail_tell_the_operator_and_the_dashboard_shows_what_the_service_publishes() {
    let template = read("deploy/cloudformation.yaml");

    // The service tells people on the stack's notice topic, and may publish to it.
    assert!(
        template.contains("{Name: NOTIFY_TOPIC_ARN, Value: !Ref NoticeTopic}"),
        "the task's NOTIFY_TOPIC_ARN is the notice topic"
    );
    assert!(
        template.contains("Resource: !Ref NoticeTopic"),
        "the task role publishes to the notice topic"
    );

    // A notice SNS could not deliver is a loss: the operator hears of it, and of its end.
    let found = alarms(&template);
    let (name, alarm) = found
        .iter()
        .find(|(_, b)| field(b, "MetricName") == Some("NumberOfNotificationsFailed"))
        .expect("an alarm on the notice topic's NumberOfNotificationsFailed");
    assert_eq!(field(alarm, "Namespace"), Some("AWS/SNS"), "{name}");
    assert!(
        alarm.contains("Name: TopicName") && alarm.contains("!GetAtt NoticeTopic.TopicName"),
        "{name}: on the notice topic:\n{alarm}"
    );
    assert_eq!(field(alarm, "Statistic"), Some("Sum"), "{name}");
    assert_eq!(field(alarm, "Threshold"), Some("0"), "{name}");
    assert_eq!(
        field(alarm, "ComparisonOperator"),
        Some("GreaterThanThreshold"),
        "{name}"
    );
    assert_eq!(
        field(alarm, "TreatMissingData"),
        Some("notBreaching"),
        "{name}"
    );
    assert_eq!(
        field(alarm, "AlarmActions"),
        Some("[!Ref OperatorTopic]"),
        "{name}"
    );
    assert_eq!(
        field(alarm, "OKActions"),
        Some("[!Ref OperatorTopic]"),
        "{name}"
    );

    // The dashboard: every `Support` metric on it is one the code publishes (it can never
    // show a line that stays empty), every measure is on it, and so are the notices SNS
    // could not deliver.
    let text = dashboard_body(&template);
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("DashboardBody is not JSON ({e}):\n{text}"));
    let widgets = body["widgets"].as_array().expect("widgets");
    let published = published();
    let mut shown = Vec::new();
    let mut notices_failed = false;
    for widget in widgets {
        // Text widgets have no metrics.
        let Some(metrics) = widget["properties"]["metrics"].as_array() else {
            continue;
        };
        for metric in metrics {
            let m = metric.as_array().expect("a metric is an array");
            let at = |i: usize| m.get(i).and_then(Value::as_str).unwrap_or_default();
            match at(0) {
                "Support" => {
                    assert!(
                        published.contains(&at(1)),
                        "the dashboard shows Support {}, which the service does not publish \
                         (it publishes {published:?})",
                        at(1)
                    );
                    shown.push(at(1));
                }
                "AWS/SNS" => {
                    assert_eq!(at(1), "NumberOfNotificationsFailed", "{metric}");
                    assert_eq!(
                        (at(2), at(3)),
                        ("TopicName", "${NoticeTopic.TopicName}"),
                        "{metric}"
                    );
                    notices_failed = true;
                }
                other => panic!(
                    "the dashboard's metric {metric}: namespace {other:?} (write each metric \
                     out in full, namespace first, so that this test can check it)"
                ),
            }
        }
    }
    for measure in Measure::ALL {
        assert!(
            shown.contains(&measure.metric_name()),
            "the dashboard does not show {} ({shown:?})",
            measure.metric_name()
        );
    }
    assert!(
        notices_failed,
        "the dashboard shows the notice topic's NumberOfNotificationsFailed"
    );
}

/// Creates the stack on moto with boto3 (installed with moto) and returns its outputs.
fn deploy_on_moto(stack: &str) -> BTreeMap<String, String> {
    let script = r#"
import json, sys, time, boto3
cf = boto3.client("cloudformation", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="AKIDTEST", aws_secret_access_key="secret")
cf.create_stack(StackName=sys.argv[2], TemplateBody=open(sys.argv[3]).read(),
                Capabilities=["CAPABILITY_IAM"],
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in [
                    ("Image", "example.invalid/cw-support-api:test"),
                    ("OperatorEmail", "ops@example.com"),
                    ("DeployService", "false"),
                    ("Subnets", "subnet-0123456789abcdef0"),
                    ("SecurityGroups", "sg-0123456789abcdef0")]])
for _ in range(100):
    s = cf.describe_stacks(StackName=sys.argv[2])["Stacks"][0]
    if not s["StackStatus"].endswith("IN_PROGRESS"):
        break
    time.sleep(0.2)
print(json.dumps({"status": s["StackStatus"], "reason": s.get("StackStatusReason"),
                  "outputs": {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}}))
"#;
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/cloudformation.yaml");
    let out = std::process::Command::new("python3")
        .args(["-c", script, &moto().endpoint, stack])
        .arg(&template)
        .output()
        .expect("python3 with boto3 (installed with moto)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["status"], "CREATE_COMPLETE", "{v}");
    v["outputs"]
        .as_object()
        .expect("outputs")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_deploys_on_moto_and_an_alarm_runs_through_consume() {
    let stack = common::moto::unique("cw-support-api");
    let outputs = deploy_on_moto(&stack);
    for key in [
        "AlarmTopicArn",
        "WorkerQueueUrl",
        "DeadLetterQueueUrl",
        "SettingsTableName",
        "LedgerTableName",
        "NoticeTopicArn",
        "KpiDashboardName",
    ] {
        assert!(!outputs[key].is_empty(), "{key}: {outputs:?}");
    }
    let sdk = common::moto::sdk_config();
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let alarm = read("tests/data/payloads/metric-alarm.json");
    sns.publish()
        .topic_arn(&outputs["AlarmTopicArn"])
        .message(alarm)
        .send()
        .await
        .expect("publish");

    let standin = SupportStandin::start().await;
    let support = standin.endpoint();
    let m = moto().endpoint.clone();
    let env: Vec<(&str, &str)> = vec![
        ("BACKEND", "aws"),
        ("GRAPHS", "local"),
        ("TAGS", "off"),
        ("DBREGION", "us-east-1"),
        ("DBTABLE", &outputs["SettingsTableName"]),
        ("LEDGER_TABLE", &outputs["LedgerTableName"]),
        ("QUEUE_URL", &outputs["WorkerQueueUrl"]),
        ("SNS_TOPIC_ARNS", &outputs["AlarmTopicArn"]),
        // moto signs its envelopes with a placeholder signature.
        ("VERIFY_SQS_ENVELOPES", "false"),
        ("AWS_ENDPOINT_URL_DYNAMODB", &m),
        ("AWS_ENDPOINT_URL_SQS", &m),
        ("AWS_ENDPOINT_URL_STS", &m),
        ("AWS_ENDPOINT_URL_SUPPORT", &support),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("METRICS", "off"),
    ];
    let mut consumer = ServerProcess::start_command("consume", &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    while standin.cases().is_empty() {
        assert!(Instant::now() < deadline, "no case: {}", consumer.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(consumer.terminate().success());
    assert_eq!(standin.cases().len(), 1);
    assert_eq!(standin.cases()[0]["subject"], "prod-api-5xx-rate");
    let left = sqs
        .get_queue_attributes()
        .queue_url(&outputs["WorkerQueueUrl"])
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("attrs");
    let visible = left
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .cloned()
        .unwrap_or_default();
    assert_eq!(visible, "0", "the message was deleted");
    let _ = BIN;
}
