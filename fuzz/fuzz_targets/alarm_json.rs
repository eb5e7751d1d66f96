//! Arbitrary JSON through `Alarm::parse`. Bytes that are JSON are used as they are (so the
//! fixtures seed it directly); anything else drives a generator of payload-shaped values of
//! bounded depth. Never panics; an accepted alarm keeps its invariants; and a body posted
//! directly gives the same answer as parsing its value.
#![no_main]

use arbitrary::Unstructured;
use cw_support_api::alarm::Alarm;
use cw_support_api::delivery::{Body, Delivery, DeliveryKind, receive};
use cw_support_api_fuzz::{arbitrary_json, arbitrary_object, check_alarm, check_case_bodies};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn value_from(data: &[u8]) -> Option<Value> {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        return Some(v);
    }
    let mut u = Unstructured::new(data);
    if u.ratio(7, 8).ok()? {
        arbitrary_object(&mut u, 5).ok().map(Value::Object)
    } else {
        arbitrary_json(&mut u, 6).ok()
    }
}

/// What `delivery::receive` treats as an SNS envelope rather than a bare alarm.
fn looks_sns(v: &Value) -> bool {
    let t = v.get("Type").and_then(Value::as_str);
    matches!(
        t,
        Some("Notification" | "SubscriptionConfirmation" | "UnsubscribeConfirmation")
    ) || (v.get("TopicArn").is_some() && v.get("Message").is_some())
}

fuzz_target!(|data: &[u8]| {
    let Some(value) = value_from(data) else {
        return;
    };
    let parsed = Alarm::parse(value.clone());
    if let Ok(alarm) = &parsed {
        check_alarm(alarm);
        check_case_bodies(&Delivery::new(DeliveryKind::Direct), alarm);
    }

    // The same value posted as a body must be read the same way.
    // AWS Support's own events are not alarms: `into_message` reads them as case updates.
    let support_event = value.get("source").and_then(|s| s.as_str()) == Some("aws.support");
    if !value.is_object() || looks_sns(&value) || support_event {
        return;
    }
    let body = serde_json::to_vec(&value).expect("a JSON value serialises");
    let received = receive(&HeaderMap::new(), &body).expect("an object body is received");
    assert!(matches!(received.body, Body::Bare(_)));
    match (parsed, received.into_alarm()) {
        (Ok(a), Ok((_, b))) => {
            assert_eq!(a.name, b.name);
            assert_eq!(a.event_key(), b.event_key());
            assert_eq!(a.kind, b.kind);
        }
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{a} / {b}"),
        (a, b) => panic!(
            "parse and receive disagree: {:?} / {:?}",
            a.map(|x| x.name),
            b.map(|(_, x)| x.name)
        ),
    }
});
