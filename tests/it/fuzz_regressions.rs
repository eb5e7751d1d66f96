//! Inputs met while fuzzing (fuzz/, scripts/fuzz.sh), kept here so `cargo test` covers them:
//! deeply nested JSON, huge strings, odd Unicode, NaN-like numbers, duplicate keys and SNS
//! messages with fields of the wrong type, each with the exact error code it must get. A
//! crash found by the fuzzer is added here as a test that reproduces it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{HeaderMap, HeaderValue};
use chrono::{TimeZone, Utc};
use cw_support_api::backend::local::LocalBackend;
use cw_support_api::case::{Action, CasePolicy, CaseService};
use cw_support_api::domain::alarm::Alarm;
use cw_support_api::domain::delivery::{Delivery, DeliveryKind};
use cw_support_api::inbound::delivery::{Body, receive};
use cw_support_api::inbound::sns::{
    CertFetcher, SnsError, SnsMessage, TopicArn, Verifier, VerifierConfig, check_signing_cert_url,
    check_subscribe_url,
};
use cw_support_api::ports::desk::MAX_BODY_CHARS;
use serde_json::{Value, json};
use url::Url;

// ---- helpers --------------------------------------------------------------------------------

/// What the service answers for a body posted with `headers`: "ok" or the error code.
fn answer_with(headers: &HeaderMap, body: &[u8]) -> &'static str {
    match receive(headers, body).and_then(|r| r.into_alarm()) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn answer(body: &[u8]) -> &'static str {
    answer_with(&HeaderMap::new(), body)
}

fn answer_json(v: &Value) -> &'static str {
    answer(&serde_json::to_vec(v).expect("serialises"))
}

fn alarm(body: &[u8]) -> Alarm {
    let (_, a) = receive(&HeaderMap::new(), body)
        .and_then(|r| r.into_alarm())
        .expect("accepted");
    a
}

fn minimal(name: &str) -> Value {
    json!({"AlarmName": name, "AlarmDescription": "d", "StateChangeTime": "2026-11-20T03:12:45Z"})
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// The body of the case the service would open for `alarm`, planned on a fresh local backend.
async fn new_case_body(alarm: &Alarm) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = LocalBackend::open(dir.path()).expect("backend");
    let service = CaseService::new(
        backend.config.clone(),
        backend.ledger.clone(),
        backend.desk.clone(),
        CasePolicy::default(),
    );
    let delivery = Delivery::new(DeliveryKind::Direct);
    match service
        .plan(&delivery, alarm)
        .await
        .expect("planned")
        .action
    {
        Action::Create { case, .. } => case.communication_body.into(),
        other => panic!("expected a new case, got {other:?}"),
    }
}

fn sns_notification() -> Value {
    json!({
        "Type": "Notification",
        "MessageId": "b3f2c9a4-1d7e-5c3b-9f0a-6e2d8c4b7a15",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:support-cases",
        "Subject": "ALARM",
        "Message": serde_json::to_string(&minimal("from-sns")).expect("json"),
        "Timestamp": "2026-11-20T03:12:45.201Z",
        "SignatureVersion": "1",
        "Signature": "AAAA",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x"
    })
}

fn sns_confirmation() -> Value {
    json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": "f3f2fc87-c426-4c2f-9044-b55890c0939c",
        "Token": "2336412f37",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:support-cases",
        "Message": "You have chosen to subscribe.",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:support-cases&Token=2336412f37",
        "Timestamp": "2026-11-20T03:12:45.201Z",
        "SignatureVersion": "1",
        "Signature": "AAAA",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
    })
}

fn sns_reason(v: &Value) -> &'static str {
    match SnsMessage::from_slice(&serde_json::to_vec(v).expect("json")) {
        Ok(_) => "ok",
        Err(e) => e.reason_code(),
    }
}

fn topic() -> TopicArn {
    TopicArn::parse("arn:aws:sns:us-east-1:123456789012:support-cases").expect("topic")
}

// ---- deeply nested JSON ---------------------------------------------------------------------

#[test]
fn deeply_nested_json_is_not_json_beyond_the_parsers_limit() {
    assert_eq!(answer(nested(100).as_bytes()), "not_an_object");
    assert_eq!(answer(nested(1_000).as_bytes()), "not_json");
    // So many brackets are also more values than any body may hold: refused before parsing.
    assert_eq!(answer(nested(100_000).as_bytes()), "too_complex");
    let body = format!(
        "{{\"AlarmName\":\"deep\",\"StateChangeTime\":\"t\",\"Extra\":{}}}",
        nested(1_000)
    );
    assert_eq!(answer(body.as_bytes()), "not_json");
    let body = format!("{}{}", "{\"a\":".repeat(1_000), "}".repeat(1_000));
    assert_eq!(answer(body.as_bytes()), "not_json");
}

#[tokio::test]
async fn deep_but_accepted_nesting_still_gives_a_case_body_within_the_limit() {
    // Pretty-printing 120 levels indents far past 8000 characters: the body is cut.
    let body = format!(
        "{{\"AlarmName\":\"deep\",\"StateChangeTime\":\"t\",\"Extra\":{}}}",
        nested(120)
    );
    let a = alarm(body.as_bytes());
    let case_body = new_case_body(&a).await;
    assert!(case_body.chars().count() <= MAX_BODY_CHARS);
    assert!(case_body.contains("Alarm: deep\n"));
}

#[test]
fn deep_nesting_inside_an_sns_message_is_sns_message_not_json() {
    let mut v = sns_notification();
    v["Message"] = Value::String(nested(1_000));
    assert_eq!(answer_json(&v), "sns_message_not_json");
    v["Message"] = Value::String(nested(10));
    assert_eq!(answer_json(&v), "sns_message_not_json");
}

// ---- huge strings ---------------------------------------------------------------------------

#[test]
fn alarm_names_are_limited_to_255_characters_not_bytes() {
    assert_eq!(answer_json(&minimal(&"é".repeat(255))), "ok");
    assert_eq!(answer_json(&minimal(&"💥".repeat(255))), "ok");
    assert_eq!(answer_json(&minimal(&"a".repeat(256))), "invalid_field");
    assert_eq!(answer_json(&minimal(&"💥".repeat(256))), "invalid_field");
    assert_eq!(answer_json(&minimal(&"a".repeat(1 << 20))), "invalid_field");
    // The same limit for the EventBridge and Health forms.
    let eb = json!({"detail-type": "CloudWatch Alarm State Change", "detail": {
        "alarmName": "a".repeat(256), "state": {"value": "ALARM", "timestamp": "t"}}});
    assert_eq!(answer_json(&eb), "invalid_field");
    let health = json!({"detail-type": "AWS Health Event", "detail": {
        "eventArn": "arn:aws:health:us-east-1::event/x", "eventTypeCode": "E".repeat(256),
        "statusCode": "open", "startTime": "t"}});
    assert_eq!(answer_json(&health), "invalid_field");
}

#[tokio::test]
async fn large_alarms_within_every_bound_are_cut_to_the_desk_limit() {
    let mut v = minimal("huge");
    v["AlarmDescription"] = Value::String("é".repeat(1024));
    v["NewStateValue"] = json!("ALARM");
    v["NewStateReason"] = Value::String("r".repeat(1023));
    v["NewStateReasonData"] = Value::String("d".repeat(10_240));
    v["Extra"] = Value::String("x".repeat(10_240));
    let a = alarm(&serde_json::to_vec(&v).expect("json"));
    let body = new_case_body(&a).await;
    assert!(body.chars().count() <= MAX_BODY_CHARS);
    assert!(body.ends_with("characters omitted]"));
    assert!(body.contains("Alarm: huge\n"));
}

/// Descriptions, reasons and times of hundreds of kilobytes used to be taken (a time of
/// 100,000 digits became part of a ledger key): each is refused, naming the field.
#[test]
fn huge_descriptions_reasons_and_times_are_refused() {
    for (field, value) in [
        ("AlarmDescription", "é".repeat(300_000)),
        ("NewStateReason", "r".repeat(300_000)),
        ("StateChangeTime", "9".repeat(100_000)),
        (
            "StateChangeTime",
            format!("2026-11-20T03:12:45Z{}", "9".repeat(65)),
        ),
    ] {
        let mut v = minimal("huge");
        v["NewStateValue"] = json!("ALARM");
        v[field] = Value::String(value);
        let e = receive(&HeaderMap::new(), &serde_json::to_vec(&v).expect("json"))
            .and_then(|r| r.into_alarm())
            .expect_err("refused");
        assert!(
            matches!(&e, cw_support_api::domain::alarm::PayloadError::InvalidField { field: f, .. } if f == field),
            "{field}: {e:?}"
        );
    }
}

// ---- odd Unicode ----------------------------------------------------------------------------

#[test]
fn control_characters_in_names_are_refused() {
    for name in [
        "a\u{0}b",
        "a\nb",
        "tab\there",
        "\u{7f}",
        "nel\u{85}",
        "\u{9f}",
    ] {
        assert_eq!(answer_json(&minimal(name)), "invalid_field", "{name:?}");
    }
    // Escaped in the JSON text, too.
    assert_eq!(
        answer(br#"{"AlarmName":"a\u0000","StateChangeTime":"t"}"#),
        "invalid_field"
    );
}

#[test]
fn blank_names_are_refused_whatever_the_whitespace() {
    for name in ["", " ", "\u{3000}", "\u{2003}\u{2003}", "\u{a0}"] {
        assert_eq!(answer_json(&minimal(name)), "invalid_field", "{name:?}");
    }
}

#[test]
fn text_that_is_not_utf8_or_has_lone_surrogates_is_not_json() {
    assert_eq!(
        answer(br#"{"AlarmName":"\ud800","StateChangeTime":"t"}"#),
        "not_json"
    );
    assert_eq!(
        answer(br#"{"AlarmName":"\udc00x","StateChangeTime":"t"}"#),
        "not_json"
    );
    assert_eq!(
        answer(b"{\"AlarmName\":\"\xc3\x28\",\"StateChangeTime\":\"t\"}"),
        "not_json"
    );
    // A UTF-8 byte order mark before the object is not JSON either.
    assert_eq!(
        answer(b"\xef\xbb\xbf{\"AlarmName\":\"x\",\"StateChangeTime\":\"t\"}"),
        "not_json"
    );
    // A paired surrogate escape is a real character and fine.
    let a = alarm(br#"{"AlarmName":"boom \ud83d\udca5","StateChangeTime":"t"}"#);
    assert_eq!(a.name, "boom 💥");
}

// ---- NaN-like numbers -----------------------------------------------------------------------

#[test]
fn nan_infinity_and_out_of_range_numbers_are_not_json() {
    for body in [
        r#"{"AlarmName":NaN,"StateChangeTime":"t"}"#,
        r#"{"AlarmName":"x","StateChangeTime":"t","Trigger":{"Threshold":Infinity}}"#,
        r#"{"AlarmName":"x","StateChangeTime":"t","Trigger":{"Threshold":-Infinity}}"#,
        r#"{"AlarmName":"x","StateChangeTime":"t","Trigger":{"Threshold":1e999}}"#,
        r#"{"AlarmName":"x","StateChangeTime":"t","Trigger":{"Threshold":.5}}"#,
        r#"{"AlarmName":"x","StateChangeTime":"t","Trigger":{"Threshold":01}}"#,
        r#"{"AlarmName":"x","StateChangeTime":"t","Trigger":{"Threshold":0x10}}"#,
    ] {
        assert_eq!(answer(body.as_bytes()), "not_json", "{body}");
    }
}

#[test]
fn numbers_where_strings_belong_are_invalid_fields() {
    for body in [
        r#"{"AlarmName":1e5,"StateChangeTime":"t"}"#,
        r#"{"AlarmName":"x","StateChangeTime":-0}"#,
        r#"{"AlarmName":"x","StateChangeTime":1732072365}"#,
        r#"{"AlarmName":"x","StateChangeTime":"t","NewStateValue":0}"#,
        r#"{"AlarmName":"x","StateChangeTime":"t","AlarmArn":1}"#,
    ] {
        assert_eq!(answer(body.as_bytes()), "invalid_field", "{body}");
    }
}

#[test]
fn extreme_but_valid_numbers_in_trigger_fields_are_fine() {
    let body = r#"{"AlarmName":"x","StateChangeTime":"t","NewStateValue":"ALARM",
        "Trigger":{"MetricName":"m","Threshold":1.7976931348623157e308,"Period":-0,
        "EvaluationPeriods":18446744073709551615,"DatapointsToAlarm":-9223372036854775808,
        "ComparisonOperator":"GreaterThanThreshold",
        "Dimensions":[{"name":"n","value":123456789012345678901234567890}]}}"#;
    let a = alarm(body.as_bytes());
    assert!(a.trigger.contains("18446744073709551615"), "{}", a.trigger);
}

// ---- duplicate keys -------------------------------------------------------------------------

#[test]
fn duplicate_keys_take_the_last_value() {
    let a = alarm(br#"{"AlarmName":"first","AlarmName":"last","StateChangeTime":"t"}"#);
    assert_eq!(a.name, "last");
    assert_eq!(
        answer(br#"{"AlarmName":"ok","AlarmName":5,"StateChangeTime":"t"}"#),
        "invalid_field"
    );
    assert_eq!(
        answer(br#"{"AlarmName":5,"AlarmName":"ok","StateChangeTime":"t"}"#),
        "ok"
    );
    assert_eq!(
        answer(br#"{"AlarmName":"x","StateChangeTime":"t","StateChangeTime":null}"#),
        "missing_field"
    );
}

#[test]
fn duplicate_keys_in_an_sns_envelope_take_the_last_value() {
    let v = sns_notification();
    let text = serde_json::to_string(&v).expect("json");
    // A second Type at the end turns the notification into a confirmation without token.
    let dup = format!(
        "{},\"Type\":\"SubscriptionConfirmation\"}}",
        &text[..text.len() - 1]
    );
    assert_eq!(answer(dup.as_bytes()), "malformed_sns_message");
    let dup = format!("{},\"Message\":\"not json\"}}", &text[..text.len() - 1]);
    assert_eq!(answer(dup.as_bytes()), "sns_message_not_json");
}

// ---- SNS messages with fields of the wrong type --------------------------------------------

#[test]
fn every_sns_field_of_the_wrong_type_is_a_malformed_message() {
    let wrong = [
        json!(42),
        json!(true),
        json!([]),
        json!({}),
        json!(["x"]),
        json!(1.5),
    ];
    let required = [
        "Type",
        "MessageId",
        "TopicArn",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    ];
    for field in required.iter().chain(&["Subject", "UnsubscribeURL"]) {
        for w in &wrong {
            let mut v = sns_notification();
            v[*field] = w.clone();
            assert_eq!(sns_reason(&v), "malformed_sns_message", "{field} = {w}");
            // Through delivery::receive as well, with and without the SNS header.
            let body = serde_json::to_vec(&v).expect("json");
            assert_eq!(answer(&body), "malformed_sns_message", "{field} = {w}");
            let mut h = HeaderMap::new();
            h.insert(
                "x-amz-sns-message-type",
                HeaderValue::from_static("Notification"),
            );
            assert_eq!(answer_with(&h, &body), "malformed_sns_message");
        }
    }
    for field in ["SubscribeURL", "Token"] {
        for w in &wrong {
            let mut v = sns_confirmation();
            v[field] = w.clone();
            assert_eq!(sns_reason(&v), "malformed_sns_message", "{field} = {w}");
        }
    }
    // null and absent are "missing" for required fields, "none" for optional ones.
    for field in required {
        let mut v = sns_notification();
        v[field] = Value::Null;
        assert_eq!(sns_reason(&v), "malformed_sns_message", "{field} = null");
    }
    let mut v = sns_notification();
    v["Subject"] = Value::Null;
    v["UnsubscribeURL"] = Value::Null;
    v["MessageAttributes"] = json!(42);
    assert_eq!(sns_reason(&v), "ok");
}

#[test]
fn every_field_wrong_at_once_and_non_objects() {
    let all_wrong = json!({
        "Type": 1, "MessageId": [], "TopicArn": {}, "Message": true, "Timestamp": 2.5,
        "SignatureVersion": 1, "Signature": null, "SigningCertURL": [1], "Subject": 0
    });
    assert_eq!(sns_reason(&all_wrong), "malformed_sns_message");
    assert_eq!(answer_json(&all_wrong), "malformed_sns_message");
    for body in [&b"[]"[..], b"null", b"\"Notification\"", b"42", b"", b"{"] {
        assert!(
            matches!(
                SnsMessage::from_slice(body),
                Err(SnsError::MalformedMessage { .. })
            ),
            "{body:?}"
        );
    }
}

#[test]
fn sns_strings_that_are_not_what_they_claim() {
    let mut v = sns_notification();
    v["Type"] = json!("notification");
    assert_eq!(sns_reason(&v), "malformed_sns_message");
    let mut v = sns_notification();
    v["TopicArn"] = json!("arn:aws:sqs:us-east-1:123456789012:q");
    assert_eq!(sns_reason(&v), "malformed_sns_message");
    // A body that says SNS in the header but is a bare alarm.
    let mut h = HeaderMap::new();
    h.insert(
        "x-amz-sns-message-type",
        HeaderValue::from_static("Notification"),
    );
    assert_eq!(
        answer_with(&h, &serde_json::to_vec(&minimal("x")).expect("json")),
        "malformed_sns_message"
    );
    // Confirmations carry no alarm; a Message of JSON null is not an alarm either.
    assert_eq!(answer_json(&sns_confirmation()), "unsupported_event");
    let mut v = sns_notification();
    v["Message"] = json!("null");
    assert_eq!(answer_json(&v), "sns_message_not_json");
}

// ---- URLs an SNS message makes us visit -----------------------------------------------------

const CERT_PATH: &str = "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";

#[test]
fn look_alike_certificate_urls_are_untrusted() {
    let t = topic();
    for url in [
        format!("https://sns.us-east-1.amazonaws.com:443{CERT_PATH}"),
        format!("https://SNS.us-east-1.amazonaws.com{CERT_PATH}"),
        format!("https://sns.us-east-1.amazonaws.com.{CERT_PATH}"),
        format!("https://sns.us-east-1.amazonaws.com\t{CERT_PATH}"),
        format!("https://sns.us-east-1.amazonaws.com{CERT_PATH}\n"),
        format!("https://user@sns.us-east-1.amazonaws.com{CERT_PATH}"),
        format!("https://sns.us-east-1.amazonaws.com{CERT_PATH}?"),
        format!("https://sns.us-east-1.amazonaws.com{CERT_PATH}#"),
        format!("https://sns.us-east-1.amazonaws.com/a/..{CERT_PATH}"),
        "https://sns.us-east-1.amazonaws.com/%53impleNotificationService-0a.pem".to_owned(),
        format!("https://sns.us-west-2.amazonaws.com{CERT_PATH}"),
        format!("https://sns.us-east-1.amazonaws.com.cn{CERT_PATH}"),
        format!("https://sns.us-east-1.amazonaws.com\\@evil.example{CERT_PATH}"),
        format!("https://52.94.236.248{CERT_PATH}"),
        format!("https://[::1]{CERT_PATH}"),
        format!("//sns.us-east-1.amazonaws.com{CERT_PATH}"),
        format!("https:sns.us-east-1.amazonaws.com{CERT_PATH}"),
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-.pem".into(),
        format!(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{}.pem",
            "a".repeat(129)
        ),
        String::new(),
    ] {
        match check_signing_cert_url(&url, &t) {
            Err(e) => assert_eq!(e.reason_code(), "untrusted_certificate_url", "{url:?}"),
            Ok(u) => panic!("{url:?} accepted as {u}"),
        }
    }
    let good = format!("https://sns.us-east-1.amazonaws.com{CERT_PATH}");
    assert!(check_signing_cert_url(&good, &t).is_ok());
}

#[test]
fn look_alike_subscribe_urls_are_untrusted() {
    let t = topic();
    let arn = t.as_str().to_owned();
    for url in [
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Action=ConfirmSubscription&Token=x".to_owned(),
        "https://sns.us-east-1.amazonaws.com/?Action=confirmsubscription&Token=x".into(),
        "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&Token=x".into(),
        "https://sns.us-east-1.amazonaws.com/?Token=x".into(),
        "https://sns.us-east-1.amazonaws.com/x?Action=ConfirmSubscription".into(),
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription#f".into(),
        "https://sns.us-east-1.amazonaws.com:8443/?Action=ConfirmSubscription".into(),
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:other".into(),
        format!("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={arn}&TopicArn=x"),
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription".into(),
        "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription".into(),
    ] {
        match check_subscribe_url(&url, &t) {
            Err(e) => assert_eq!(e.reason_code(), "untrusted_subscribe_url", "{url:?}"),
            Ok(u) => panic!("{url:?} accepted as {u}"),
        }
    }
    let good = format!(
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={arn}&Token=x"
    );
    assert!(check_subscribe_url(&good, &t).is_ok());
    // Percent-encoding that decodes to the right value is the same parameter.
    let encoded = "https://sns.us-east-1.amazonaws.com/?Action=Confirm%53ubscription&Token=x";
    assert!(check_subscribe_url(encoded, &t).is_ok());
}

// ---- verification ---------------------------------------------------------------------------

/// Serves the fuzzing test certificate (fuzz/data) for any URL and counts its calls.
#[derive(Default)]
struct FuzzCertFetcher {
    calls: AtomicUsize,
}

#[async_trait]
impl CertFetcher for FuzzCertFetcher {
    async fn fetch(&self, _url: &Url) -> Result<Vec<u8>, SnsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/data/fuzz-test-cert.pem"
        ))
        .expect("fuzz test certificate"))
    }
}

fn fuzz_verifier() -> (Verifier, Arc<FuzzCertFetcher>) {
    let fetcher = Arc::new(FuzzCertFetcher::default());
    let config = VerifierConfig {
        cert_dir: None,
        cache_capacity: 4,
        cache_ttl: Duration::from_secs(3600),
        // Inside the test certificate's validity (2026-11-21 to 2126).
        clock: Arc::new(|| {
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
                .single()
                .expect("date")
        }),
        ..VerifierConfig::default()
    };
    let v = Verifier::new(config, fetcher.clone());
    (v, fetcher)
}

fn signed_seed(name: &str) -> SnsMessage {
    let path = format!(
        "{}/fuzz/seeds/sns_verify/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    SnsMessage::from_slice(&std::fs::read(&path).expect("seed")).expect("seed parses")
}

#[tokio::test]
async fn messages_signed_with_the_fuzz_key_verify_and_any_change_breaks_them() {
    for name in [
        "signed-notification-v1-subject",
        "signed-notification-v2-nosubject",
        "signed-SubscriptionConfirmation",
        "signed-UnsubscribeConfirmation",
    ] {
        let (v, fetcher) = fuzz_verifier();
        let msg = signed_seed(name);
        v.verify(&msg)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);

        let mut changed = msg.clone();
        changed.message.push(' ');
        let err = v.verify(&changed).await.expect_err("changed message");
        assert_eq!(err.reason_code(), "bad_signature");
        let mut changed = msg.clone();
        changed.timestamp = changed.timestamp.replace('Z', "+00:00");
        assert_eq!(
            v.verify(&changed).await.expect_err("changed").reason_code(),
            "bad_signature"
        );
        // The other algorithm over the same text.
        let mut changed = msg.clone();
        changed.signature_version = if msg.signature_version == "1" {
            "2"
        } else {
            "1"
        }
        .into();
        assert_eq!(
            v.verify(&changed).await.expect_err("changed").reason_code(),
            "bad_signature"
        );
        // The key was cached: one download for all of these.
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn cheap_refusals_never_fetch_a_certificate() {
    let base = signed_seed("signed-notification-v1-subject");
    type Change = fn(&mut SnsMessage);
    let cases: Vec<(Change, &str)> = vec![
        (
            |m| m.signature_version = "1 ".into(),
            "unsupported_signature_version",
        ),
        (
            |m| m.signature_version = "01".into(),
            "unsupported_signature_version",
        ),
        (
            |m| m.signature_version = "3".into(),
            "unsupported_signature_version",
        ),
        (
            |m| m.signature_version = String::new(),
            "unsupported_signature_version",
        ),
        (
            |m| m.signing_cert_url = m.signing_cert_url.replace("https:", "http:"),
            "untrusted_certificate_url",
        ),
        (
            |m| m.signing_cert_url = m.signing_cert_url.replace(".pem", ".pem?x"),
            "untrusted_certificate_url",
        ),
        (|m| m.signature = "not base64!".into(), "bad_signature"),
        (|m| m.signature.push('='), "bad_signature"),
        (|m| m.signature.insert(0, ' '), "bad_signature"),
    ];
    for (change, code) in cases {
        let (v, fetcher) = fuzz_verifier();
        let mut msg = base.clone();
        change(&mut msg);
        let err = v.verify(&msg).await.expect_err("refused");
        assert_eq!(err.reason_code(), code, "{msg:?}");
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 0, "{msg:?}");
    }
}

#[tokio::test]
async fn an_empty_or_implausibly_short_signature_is_refused_without_a_fetch() {
    // Found while fuzzing: "" decodes (to nothing) and used to cost a certificate fetch. An
    // RSA signature is 128 to 1024 bytes, so anything else is refused before any request.
    for signature in ["", "AAAA", "QUJD"] {
        let (v, fetcher) = fuzz_verifier();
        let mut msg = signed_seed("signed-notification-v1-subject");
        msg.signature = signature.into();
        assert_eq!(
            v.verify(&msg).await.expect_err("refused").reason_code(),
            "bad_signature"
        );
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 0, "{signature:?}");
    }
}

#[tokio::test]
async fn a_valid_signature_over_another_message_is_a_bad_signature() {
    let (v, _) = fuzz_verifier();
    let a = signed_seed("signed-notification-v1-subject");
    let mut b = signed_seed("signed-notification-v2-nosubject");
    b.signature = a.signature.clone();
    b.signature_version = a.signature_version.clone();
    assert_eq!(
        v.verify(&b).await.expect_err("swapped").reason_code(),
        "bad_signature"
    );
}

#[test]
fn envelopes_classified_as_sns_keep_their_ids() {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/seeds/sns_verify/signed-notification-v1-subject.json"
    ))
    .expect("seed");
    let r = receive(&HeaderMap::new(), &body).expect("received");
    assert!(matches!(r.body, Body::Sns(_)));
    let (d, a) = r.into_alarm().expect("alarm");
    assert_eq!(a.name, "fuzz-signed-alarm");
    assert!(
        d.id().is_some(),
        "the envelope's MessageId identifies the delivery"
    );
}
