//! How requests are classified and bodies opened: worker-daemon, SNS and direct posts, and
//! the bodies refused before any parse.

use super::*;
use axum::http::HeaderValue;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/payloads/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}

/// Every example payload shipped beside the project parses (fails without `../shared`,
/// unless opted out).
#[test]
fn every_shared_fixture_becomes_an_alarm() {
    let Some(dir) = crate::inbound::shared_fixtures::dir("fixtures/payloads") else {
        return;
    };
    let entries = std::fs::read_dir(&dir).expect("the shared payloads");
    let mut n = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            let body = std::fs::read(&path).expect("read");
            let r = receive(&HeaderMap::new(), &body).expect("classified");
            r.into_alarm()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 8, "found only {n} fixtures");
}

#[test]
fn direct_post() {
    let r = receive(&HeaderMap::new(), &fixture("minimal.json")).expect("ok");
    assert_eq!(r.delivery.kind, DeliveryKind::Direct);
    let (_, a) = r.into_alarm().expect("alarm");
    assert_eq!(a.name, "My Alarm");
}

#[test]
fn sqsd_headers_are_kept() {
    let h = headers(&[
        ("x-aws-sqsd-msgid", "abc-123"),
        ("x-aws-sqsd-receive-count", "3"),
        ("x-aws-sqsd-queue", "worker-queue"),
        ("content-type", "application/json"),
    ]);
    let r = receive(&h, &fixture("metric-alarm.json")).expect("ok");
    assert_eq!(r.delivery.kind, DeliveryKind::Sqsd);
    assert_eq!(r.delivery.sqsd_message_id.as_deref(), Some("abc-123"));
    assert_eq!(r.delivery.sqsd_receive_count, Some(3));
    assert_eq!(r.delivery.sqsd_queue.as_deref(), Some("worker-queue"));
    assert_eq!(r.delivery.dedupe_keys(), vec!["sqs:abc-123".to_owned()]);
}

#[test]
fn sns_envelope_inside_an_sqs_body_is_unwrapped() {
    let h = headers(&[("x-aws-sqsd-msgid", "abc-123")]);
    let r = receive(&h, &fixture("sns-envelope-unsigned.json")).expect("ok");
    assert!(matches!(r.body, Body::Sns(_)));
    assert_eq!(
        r.delivery.sns_message_id.as_deref(),
        Some("b3f2c9a4-1d7e-5c3b-9f0a-6e2d8c4b7a15")
    );
    assert_eq!(r.delivery.dedupe_keys().len(), 2);
    let (d, a) = r.into_alarm().expect("alarm");
    assert_eq!(a.name, "prod-api-5xx-rate");
    assert_eq!(d.id(), Some("b3f2c9a4-1d7e-5c3b-9f0a-6e2d8c4b7a15"));
}

#[test]
fn periodic_tasks_are_recognised() {
    let h = headers(&[
        ("x-aws-sqsd-taskname", "reconcile"),
        ("x-aws-sqsd-msgid", "x"),
    ]);
    let r = receive(&h, b"").expect("ok");
    assert!(matches!(r.body, Body::Periodic(ref n) if n == "reconcile"));
}

#[test]
fn raw_sns_delivery_is_a_bare_body() {
    let h = headers(&[
        ("x-amz-sns-rawdelivery", "true"),
        ("x-amz-sns-message-id", "m-1"),
    ]);
    let r = receive(&h, &fixture("metric-alarm.json")).expect("ok");
    assert_eq!(r.delivery.kind, DeliveryKind::Sns);
    assert!(r.delivery.sns_raw);
    assert!(matches!(r.body, Body::Bare(_)));
    assert_eq!(r.delivery.id(), Some("m-1"));
}

#[test]
fn bad_bodies() {
    let none = HeaderMap::new();
    assert_eq!(
        receive(&none, b"").expect_err("empty"),
        PayloadError::EmptyBody
    );
    assert_eq!(
        receive(&none, b" \n").expect_err("blank"),
        PayloadError::EmptyBody
    );
    assert_eq!(
        receive(&none, b"AlarmName=x").expect_err("text").code(),
        "not_json"
    );
    assert_eq!(
        receive(&none, b"\xff\xfe").expect_err("binary").code(),
        "not_json"
    );
    assert_eq!(
        receive(&none, b"[1]").expect_err("array"),
        PayloadError::NotAnObject
    );
    assert_eq!(
        receive(&none, b"null").expect_err("null"),
        PayloadError::NotAnObject
    );
    let deep = "[".repeat(10_000);
    assert_eq!(
        receive(&none, deep.as_bytes()).expect_err("deep").code(),
        "not_json"
    );
}

#[test]
fn unbelieved_worker_daemon_headers_are_a_direct_post() {
    let h = headers(&[
        ("x-aws-sqsd-msgid", "abc-123"),
        ("x-aws-sqsd-taskname", "reconcile"),
    ]);
    let r = receive_from(&h, &fixture("minimal.json"), false).expect("ok");
    assert_eq!(r.delivery.kind, DeliveryKind::Direct);
    assert_eq!(r.delivery.sqsd_message_id, None);
    assert!(r.delivery.dedupe_keys().is_empty());
    // ...so an empty body claiming to be a periodic task is just an empty post.
    assert_eq!(
        receive_from(&h, b"", false).expect_err("empty"),
        PayloadError::EmptyBody
    );
}

#[test]
fn json_with_too_many_values_is_refused_before_it_is_parsed() {
    let many = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES));
    assert_eq!(
        parse_json(many.as_bytes()).expect_err("too many"),
        PayloadError::TooComplex(MAX_JSON_VALUES)
    );
    // Commas and brackets inside strings are not values.
    let text = format!(r#"{{"AlarmName": "{}"}}"#, ",[{".repeat(MAX_JSON_VALUES));
    assert!(parse_json(text.as_bytes()).is_ok());
    let escaped = r#"{"a": "quote \" then , [ {", "b": 1}"#;
    assert!(parse_json(escaped.as_bytes()).is_ok());
    // The same bound applies to a body received and then opened.
    let wide = format!(
        r#"{{"AlarmName": "x", "junk": [{}0]}}"#,
        "0,".repeat(MAX_JSON_VALUES)
    );
    let err = receive(&HeaderMap::new(), wide.as_bytes())
        .expect("probed")
        .into_alarm()
        .expect_err("too complex");
    assert_eq!(err.code(), "too_complex");
}

#[test]
fn the_probe_reports_mistyped_sns_fields() {
    let v = serde_json::json!({"Type": "Notification", "TopicArn": 5, "Message": "{}"});
    let err = receive(&HeaderMap::new(), &serde_json::to_vec(&v).expect("json")).expect_err("bad");
    assert_eq!(err.code(), "malformed_sns_message");
    assert!(err.to_string().contains("TopicArn"), "{err}");
}

#[test]
fn sns_message_that_is_not_json() {
    let mut v: Value =
        serde_json::from_slice(&fixture("sns-envelope-unsigned.json")).expect("json");
    v["Message"] = Value::String("the database is on fire".into());
    let body = serde_json::to_vec(&v).expect("json");
    let err = receive(&HeaderMap::new(), &body)
        .expect("envelope ok")
        .into_alarm()
        .expect_err("not json");
    assert_eq!(err.code(), "sns_message_not_json");

    v["Message"] = Value::String("[1,2]".into());
    let body = serde_json::to_vec(&v).expect("json");
    let err = receive(&HeaderMap::new(), &body)
        .expect("envelope ok")
        .into_alarm()
        .expect_err("array");
    assert_eq!(err.code(), "sns_message_not_json");
}

#[test]
fn sns_envelope_missing_fields_and_mismatched_header() {
    let v = serde_json::json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t"});
    let err = receive(&HeaderMap::new(), &serde_json::to_vec(&v).expect("json")).expect_err("bad");
    assert_eq!(err.code(), "malformed_sns_message");

    let h = headers(&[("x-amz-sns-message-type", "SubscriptionConfirmation")]);
    let err = receive(&h, &fixture("sns-envelope-unsigned.json")).expect_err("mismatch");
    assert_eq!(err.code(), "invalid_field");
}
