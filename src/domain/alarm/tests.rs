use super::*;
use serde_json::json;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/data/payloads/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

#[test]
fn metric_alarm_is_parsed_with_identity_from_the_arn() {
    let a = Alarm::parse(fixture("metric-alarm.json")).expect("parses");
    assert_eq!(a.kind, AlarmKind::Metric);
    assert_eq!(a.name, "prod-api-5xx-rate");
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(a.previous_state, Some(AlarmState::Ok));
    assert_eq!(
        a.key(),
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-api-5xx-rate"
    );
    assert_eq!(a.identity.region.as_deref(), Some("us-east-1"));
    assert_eq!(a.identity.account.as_deref(), Some("123456789012"));
    assert_eq!(a.state_change_time.raw, "2026-11-20T03:12:45.118+0000");
    let parsed = a.state_change_time.parsed.expect("+0000 form parses");
    assert_eq!(parsed.to_rfc3339(), "2026-11-20T03:12:45.118+00:00");
    assert!(
        a.trigger
            .contains("HTTPCode_Target_5XX_Count (AWS/ApplicationELB)")
    );
    assert!(
        a.trigger
            .contains("LoadBalancer=app/prod-api/50dc6c495c0c9188")
    );
    assert!(a.trigger.contains("GreaterThanThreshold 5"));
    assert!(a.trigger.contains("5 of 5 periods"));
}

#[test]
fn ok_notification_has_ok_state() {
    let a = Alarm::parse(fixture("metric-alarm-ok.json")).expect("parses");
    assert_eq!(a.state, AlarmState::Ok);
    assert_eq!(a.previous_state, Some(AlarmState::Alarm));
}

#[test]
fn anomaly_alarm_with_null_description_and_no_threshold() {
    let a = Alarm::parse(fixture("metric-math-alarm.json")).expect("parses");
    assert_eq!(a.kind, AlarmKind::Anomaly);
    assert_eq!(a.description, None);
    assert_eq!(a.identity.region.as_deref(), Some("eu-west-1"));
    assert!(
        a.trigger.contains(
            "m1 = Maximum per 300 s AWS/SQS ApproximateAgeOfOldestMessage [QueueName=orders]"
        ),
        "{}",
        a.trigger
    );
    assert!(a.trigger.contains("ad1 = ANOMALY_DETECTION_BAND(m1, 2)"));
    assert!(a.trigger.contains("GreaterThanUpperThreshold band ad1"));
}

#[test]
fn metric_math_without_anomaly_band() {
    let mut v = fixture("metric-math-alarm.json");
    v["Trigger"]
        .as_object_mut()
        .expect("object")
        .remove("ThresholdMetricId");
    v["Trigger"]["Threshold"] = json!(10.0);
    let a = Alarm::parse(v).expect("parses");
    assert_eq!(a.kind, AlarmKind::MetricMath);
    assert!(a.trigger.contains("GreaterThanUpperThreshold 10.0"));
}

#[test]
fn composite_alarm_summarises_rule_and_children() {
    let a = Alarm::parse(fixture("composite-alarm.json")).expect("parses");
    assert_eq!(a.kind, AlarmKind::Composite);
    assert!(a.trigger.starts_with("rule: ALARM("));
    assert!(a.trigger.contains("checkout-latency-p99 (ALARM)"));
}

#[test]
fn eventbridge_alarm_state_change() {
    let a = Alarm::parse(fixture("eventbridge-alarm-state-change.json")).expect("parses");
    assert_eq!(a.name, "prod-db-cpu");
    assert_eq!(a.kind, AlarmKind::Metric);
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(a.previous_state, Some(AlarmState::Ok));
    assert_eq!(
        a.key(),
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-db-cpu"
    );
    assert_eq!(
        a.description.as_deref(),
        Some("Production database CPU above 90%")
    );
    assert_eq!(a.state_change_time.raw, "2026-11-20T03:12:45.118+0000");
    assert!(
        a.trigger.contains("DBInstanceIdentifier=prod-db"),
        "{}",
        a.trigger
    );
    assert!(a.trigger.contains("CPUUtilization"));
}

#[test]
fn health_event_is_an_alarm_named_for_its_type() {
    let a = Alarm::parse(fixture("aws-health-event.json")).expect("parses");
    assert_eq!(a.kind, AlarmKind::Health);
    assert_eq!(a.name, "AWS_EC2_INSTANCE_STORE_DRIVE_PERFORMANCE_DEGRADED");
    assert_eq!(a.state, AlarmState::Alarm);
    assert!(a.key().ends_with("#123456789012"));
    assert!(a.state_change_time.parsed.is_some(), "RFC 2822 date parses");
    assert!(a.trigger.contains("i-0abcd1234ef567890"));
    assert!(a.description.as_deref().unwrap_or("").contains("degraded"));
}

#[test]
fn minimal_format_means_alarm() {
    let a = Alarm::parse(fixture("minimal.json")).expect("parses");
    assert_eq!(a.kind, AlarmKind::Minimal);
    assert_eq!(a.state, AlarmState::Alarm);
    assert_eq!(a.key(), "My Alarm");
    assert_eq!(a.identity.arn, None);
}

#[test]
fn rfc3339_and_unknown_times() {
    assert!(
        StateChangeTime::new("2026-11-20T03:12:45Z")
            .parsed
            .is_some()
    );
    assert!(
        StateChangeTime::new("2026-11-20T03:12:45.5+01:00")
            .parsed
            .is_some()
    );
    let odd = StateChangeTime::new("yesterday at noon");
    assert_eq!(odd.parsed, None);
    assert_eq!(odd.raw, "yesterday at noon");
}

#[test]
fn null_or_missing_description_is_fine() {
    let a = Alarm::parse(json!({"AlarmName": "a", "StateChangeTime": "t"})).expect("parses");
    assert_eq!(a.description, None);
    let a =
        Alarm::parse(json!({"AlarmName": "a", "AlarmDescription": null, "StateChangeTime": "t"}))
            .expect("parses");
    assert_eq!(a.description, None);
}

fn err(v: Value) -> PayloadError {
    Alarm::parse(v).expect_err("must be refused")
}

#[test]
fn bad_inputs_name_their_problem() {
    assert_eq!(err(json!([1, 2])), PayloadError::NotAnObject);
    assert_eq!(err(json!("text")), PayloadError::NotAnObject);
    assert_eq!(err(json!({"hello": 1})).code(), "unknown_shape");
    assert_eq!(
        err(json!({"AlarmName": "a"})),
        PayloadError::MissingField("StateChangeTime".into())
    );
    assert_eq!(
        err(json!({"AlarmName": null, "StateChangeTime": "t"})),
        PayloadError::MissingField("AlarmName".into())
    );
    assert_eq!(
        err(json!({"AlarmName": 5, "StateChangeTime": "t"})),
        PayloadError::InvalidField {
            field: "AlarmName".into(),
            problem: "expected a string, got a number".into()
        }
    );
    assert_eq!(
        err(json!({"AlarmName": "  ", "StateChangeTime": "t"})).code(),
        "invalid_field"
    );
    assert_eq!(
        err(json!({"AlarmName": "a", "StateChangeTime": ["t"]})).code(),
        "invalid_field"
    );
    assert_eq!(
        err(json!({"AlarmName": "a", "StateChangeTime": "t", "NewStateValue": "ON_FIRE"})),
        PayloadError::InvalidField {
            field: "NewStateValue".into(),
            problem: "expected ALARM, OK or INSUFFICIENT_DATA, got \"ON_FIRE\"".into()
        }
    );
    assert_eq!(
        err(json!({"AlarmName": "a", "StateChangeTime": "t", "AlarmDescription": 3})).code(),
        "invalid_field"
    );
    assert_eq!(
        err(json!({"AlarmName": "a", "StateChangeTime": "t", "AlarmArn": "not-an-arn"})).code(),
        "invalid_field"
    );
    assert_eq!(
        err(json!({"AlarmName": "x".repeat(300), "StateChangeTime": "t"})).code(),
        "invalid_field"
    );
    assert_eq!(
        err(json!({"AlarmName": "a\u{0}b", "StateChangeTime": "t"})).code(),
        "invalid_field"
    );
    for odd in [
        "\u{200b}",
        "\u{feff} \u{200d}",
        "a\u{2028}b",
        "\u{202e}gnp.exe",
    ] {
        assert_eq!(
            err(json!({"AlarmName": odd, "StateChangeTime": "t"})).code(),
            "invalid_field",
            "{odd:?}"
        );
    }
    // Non-Latin names are fine.
    assert!(Alarm::parse(json!({"AlarmName": "데이터베이스 CPU", "StateChangeTime": "t"})).is_ok());
}

#[test]
fn bad_events_name_their_problem() {
    let mut v = fixture("eventbridge-alarm-state-change.json");
    v["detail-type"] = json!("EC2 Instance State-change Notification");
    assert_eq!(err(v).code(), "unsupported_event");

    let mut v = fixture("eventbridge-alarm-state-change.json");
    v["detail"]["state"]
        .as_object_mut()
        .expect("obj")
        .remove("timestamp");
    assert_eq!(
        err(v),
        PayloadError::MissingField("detail.state.timestamp".into())
    );

    let mut v = fixture("eventbridge-alarm-state-change.json");
    v["detail"] = json!("nope");
    assert_eq!(err(v).code(), "invalid_field");

    let mut v = fixture("eventbridge-alarm-state-change.json");
    v["detail"]
        .as_object_mut()
        .expect("obj")
        .remove("alarmName");
    assert_eq!(
        err(v),
        PayloadError::MissingField("detail.alarmName".into())
    );

    let mut v = fixture("aws-health-event.json");
    v["detail"]["statusCode"] = json!("sideways");
    assert_eq!(err(v).code(), "invalid_field");
}

#[test]
fn trigger_surprises_are_never_fatal() {
    let a = Alarm::parse(json!({
        "AlarmName": "a", "StateChangeTime": "t", "NewStateValue": "ALARM",
        "Trigger": {"MetricName": 7, "Dimensions": "weird", "Metrics": null}
    }))
    .expect("parses");
    assert_eq!(a.kind, AlarmKind::Metric);
}

/// A CloudWatch alarm whose every field is within its bounds.
fn bounded_alarm() -> Value {
    json!({
        "AlarmName": "db-cpu",
        "AlarmDescription": "CPU high",
        "NewStateValue": "ALARM",
        "StateChangeTime": "2026-11-20T03:12:45.118+0000",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-cpu",
        "AWSAccountId": "123456789012",
    })
}

/// [`bounded_alarm`] with `field` set to `value` is refused, naming `field`, with a problem
/// that says `want`.
fn refused(field: &str, value: Value, want: &str) {
    let mut v = bounded_alarm();
    v[field] = value;
    match Alarm::parse(v) {
        Err(PayloadError::InvalidField { field: f, problem }) => {
            assert_eq!(f, field, "{problem}");
            assert!(problem.contains(want), "{field}: {problem}");
        }
        other => panic!("{field}: {other:?}"),
    }
}

/// Every string an alarm brings is bounded by what its sender allows, and refused beyond it
/// with the field's name: nothing of hundreds of kilobytes becomes a key, a record or a time.
#[test]
fn every_field_is_bounded_and_named_when_over() {
    assert!(Alarm::parse(bounded_alarm()).is_ok());
    refused(
        "AlarmDescription",
        json!("d".repeat(1025)),
        "longer than 1024",
    );
    refused(
        "NewStateReason",
        json!("r".repeat(1024)),
        "longer than 1023",
    );
    refused(
        "StateChangeTime",
        json!(format!("2026-11-20T03:12:45Z{}", "9".repeat(100))),
        "longer than 64",
    );
    refused(
        "StateChangeTime",
        json!(format!("2026-11-20{}", "9".repeat(300_000))),
        "longer than 10240",
    );
    // Exactly at the bounds is fine.
    let mut v = bounded_alarm();
    v["AlarmDescription"] = json!("d".repeat(1024));
    v["NewStateReason"] = json!("r".repeat(1023));
    assert!(Alarm::parse(v).is_ok());
}

/// The ARN and the account become keys: bounded, and of their one form.
#[test]
fn the_arn_and_the_account_are_bounded_and_checked() {
    refused(
        "AlarmArn",
        json!(format!(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}",
            "a".repeat(2000)
        )),
        "at most 1024",
    );
    refused(
        "AlarmArn",
        json!("arn:aws:cloudwatch:us-east-1:not-an-account:alarm:x"),
        "12-digit",
    );
    refused("AWSAccountId", json!("12345"), "12-digit");
}

/// Anywhere else in the payload, strings and keys are bounded too: the path says where.
#[test]
fn strings_elsewhere_are_bounded_and_their_path_named() {
    let mut v = bounded_alarm();
    v["Trigger"] =
        json!({"MetricName": "CPU", "Dimensions": [{"name": "x", "value": "v".repeat(20_000)}]});
    let e = Alarm::parse(v).expect_err("refused");
    assert_eq!(
        e,
        PayloadError::InvalidField {
            field: "Trigger.Dimensions[0].value".into(),
            problem: "longer than 10240 characters".into()
        }
    );
    let mut v = bounded_alarm();
    v["k".repeat(20_000)] = json!(1);
    let e = Alarm::parse(v).expect_err("refused");
    assert!(
        matches!(&e, PayloadError::InvalidField { field, .. } if field.ends_with("(a key)")),
        "{e:?}"
    );
}

#[test]
fn eventbridge_fields_are_bounded_too() {
    let event = |account: &str, region: &str, time: &str| {
        json!({
            "version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
            "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "account": account, "time": "2026-11-20T03:12:45Z", "region": region,
            "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-cpu"],
            "detail": {"alarmName": "db-cpu", "state": {"value": "ALARM", "timestamp": time}}
        })
    };
    assert!(Alarm::parse(event("123456789012", "us-east-1", "2026-11-20T03:12:45Z")).is_ok());
    for (v, field) in [
        (
            event("1234", "us-east-1", "2026-11-20T03:12:45Z"),
            "account",
        ),
        (
            event(
                "123456789012",
                "US East (N. Virginia)",
                "2026-11-20T03:12:45Z",
            ),
            "region",
        ),
        (
            event("123456789012", "us-east-1", &"9".repeat(65)),
            "detail.state.timestamp",
        ),
    ] {
        match Alarm::parse(v) {
            Err(PayloadError::InvalidField { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn an_sns_alarm_without_an_arn_takes_its_region_from_the_display_name() {
    let a = Alarm::parse(json!({
        "AlarmName": "db-cpu", "NewStateValue": "ALARM",
        "StateChangeTime": "2026-11-20T03:12:45.118+0000",
        "Region": "EU (Ireland)", "AWSAccountId": "123456789012"
    }))
    .expect("parses");
    assert_eq!(a.identity.region.as_deref(), Some("eu-west-1"));
    // An unknown name is not guessed.
    let a = Alarm::parse(json!({
        "AlarmName": "db-cpu", "NewStateValue": "ALARM",
        "StateChangeTime": "2026-11-20T03:12:45.118+0000", "Region": "Atlantis"
    }))
    .expect("parses");
    assert_eq!(a.identity.region, None);
}

fn health(detail_type: &str, detail: Value) -> Value {
    json!({
        "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": detail_type, "source": "aws.health", "account": "123456789012",
        "time": "2026-11-20T03:12:45Z", "region": "us-east-1", "resources": [],
        "detail": detail
    })
}

#[test]
fn health_events_without_a_status_code_and_abuse_events_are_read() {
    let open = health(
        "AWS Health Event",
        json!({"eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/x",
               "service": "EC2", "eventTypeCode": "AWS_EC2_OPERATIONAL_ISSUE",
               "eventTypeCategory": "issue", "startTime": "Wed, 20 Nov 2026 03:00:00 GMT"}),
    );
    let a = Alarm::parse(open).expect("no statusCode, no endTime: under way");
    assert_eq!((a.kind, a.state), (AlarmKind::Health, AlarmState::Alarm));
    let over = health(
        "AWS Health Event",
        json!({"eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/x",
               "service": "EC2", "eventTypeCode": "AWS_EC2_OPERATIONAL_ISSUE",
               "eventTypeCategory": "issue", "startTime": "Wed, 20 Nov 2026 03:00:00 GMT",
               "endTime": "Wed, 20 Nov 2026 05:00:00 GMT"}),
    );
    assert_eq!(Alarm::parse(over).expect("parses").state, AlarmState::Ok);
    let abuse = health(
        "AWS Health Abuse Event",
        json!({"eventArn": "arn:aws:health:global::event/ABUSE/AWS_ABUSE_DOS_REPORT/x",
               "service": "ABUSE", "eventTypeCode": "AWS_ABUSE_DOS_REPORT",
               "eventTypeCategory": "issue", "startTime": "Wed, 20 Nov 2026 03:00:00 GMT",
               "eventDescription": [{"language": "en_US", "latestDescription": "DoS report"}]}),
    );
    let a = Alarm::parse(abuse).expect("abuse events are Health events");
    assert_eq!(
        (a.name.as_str(), a.state),
        ("AWS_ABUSE_DOS_REPORT", AlarmState::Alarm)
    );
}

#[test]
fn the_lambda_alarm_action_payload_is_an_alarm() {
    let a = Alarm::parse(json!({
        "source": "aws.cloudwatch",
        "alarmArn": "arn:aws:cloudwatch:us-east-1:444455556666:alarm:lambda-demo-metric-alarm",
        "accountId": "444455556666",
        "time": "2026-11-20T03:12:45.000+0000",
        "region": "us-east-1",
        "alarmData": {
            "alarmName": "lambda-demo-metric-alarm",
            "state": {"value": "ALARM", "reason": "test", "timestamp": "2026-11-20T03:12:45.000+0000"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-20T03:10:00.000+0000"},
            "configuration": {"description": "Metric Alarm to test Lambda actions",
                "metrics": [{"id": "1234", "metricStat": {"metric": {"namespace": "AWS/Logs",
                  "name": "CallCount", "dimensions": {"InstanceId": "i-12345678"}},
                  "period": 60, "stat": "Average", "unit": "Percent"}, "returnData": true}]}
        }
    }))
    .expect("parses");
    assert_eq!(a.name, "lambda-demo-metric-alarm");
    assert_eq!((a.kind, a.state), (AlarmKind::Metric, AlarmState::Alarm));
    assert_eq!(a.identity.account.as_deref(), Some("444455556666"));
    assert_eq!(a.previous_state, Some(AlarmState::Ok));
}

#[test]
fn trusted_advisor_check_items_are_alarms_per_item() {
    let event = |status: &str, resource: &str| {
        json!({
            "version": "0", "id": "1", "detail-type": "Trusted Advisor Check Item Refresh Notification",
            "source": "aws.trustedadvisor", "account": "123456789012",
            "time": "2026-11-20T03:12:45Z", "region": "us-east-1", "resources": [],
            "detail": {"check-name": "Exposed Access Keys",
                       "check-item-detail": {"Status": "Red", "Access Key ID": "AKIA..."},
                       "status": status, "resource_id": resource, "uuid": "u-1"}
        })
    };
    let a = Alarm::parse(event("ERROR", "AKIA1")).expect("parses");
    assert_eq!(a.name, "Exposed Access Keys");
    assert_eq!(
        (a.kind, a.state),
        (AlarmKind::TrustedAdvisor, AlarmState::Alarm)
    );
    assert!(a.trigger.contains("is ERROR for AKIA1"), "{}", a.trigger);
    let other_item = Alarm::parse(event("WARN", "AKIA2")).expect("parses");
    assert_ne!(a.key(), other_item.key(), "one record per check item");
    assert_eq!(
        Alarm::parse(event("OK", "AKIA1")).expect("parses").state,
        AlarmState::Ok
    );
}

#[test]
fn configuration_and_contributor_events_are_ignorable_with_a_reason() {
    for kind in [
        "CloudWatch Alarm Configuration Change",
        "CloudWatch Alarm Contributor State Change",
    ] {
        let v =
            json!({"detail-type": kind, "source": "aws.cloudwatch", "detail": {"alarmName": "x"}});
        let why = ignorable(v.as_object().expect("object")).expect(kind);
        assert!(why.starts_with(kind), "{why}");
    }
    let v = json!({"detail-type": "CloudWatch Alarm State Change"});
    assert_eq!(ignorable(v.as_object().expect("object")), None);
}

fn real(name: &str) -> Value {
    let path = format!("{}/tests/data/real/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("real payload")).expect("json")
}

#[test]
fn eventbridge_triggers_read_like_the_sns_forms() {
    // A metric alarm: the metric and its threshold, not EventBridge's generated metric id.
    let a = Alarm::parse(real("11-eventbridge-metric-alarm-state-change.json")).expect("parses");
    assert_eq!(
        a.trigger,
        "CPUUtilization (AWS/EC2) [InstanceId=i-12345678901234567], Average over 300 s, threshold 50.0"
    );
    // A composite names the alarms that triggered it, and what suppressed its actions.
    let a = Alarm::parse(real(
        "14-eventbridge-composite-suppressed-state-change.json",
    ))
    .expect("parses");
    assert!(
        a.trigger.contains(
            "triggered by: arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh (ALARM)"
        ),
        "{}",
        a.trigger
    );
    assert!(
        a.trigger
            .contains("actions suppressed by WaitPeriod (ServiceMaintenanceAlarm)"),
        "{}",
        a.trigger
    );
}
