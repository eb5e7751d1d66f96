//! Arbitrary request bodies through `delivery::receive` and `Received::into_alarm`, the way
//! the server reads them. The first byte picks the headers (none, the worker daemon's, SNS's
//! message type, SNS raw delivery); the rest is the body. Never panics; an accepted alarm
//! keeps its invariants and every case body built from it fits AWS Support's limit.
#![no_main]

use cw_support_api::delivery::{DeliveryKind, receive};
use cw_support_api_fuzz::{check_alarm, check_case_bodies};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn headers(mode: u8) -> (HeaderMap, DeliveryKind) {
    let mut h = HeaderMap::new();
    let kind = match mode % 4 {
        0 => DeliveryKind::Direct,
        1 => {
            h.insert("x-aws-sqsd-msgid", HeaderValue::from_static("fuzz-sqs-1"));
            h.insert("x-aws-sqsd-receive-count", HeaderValue::from_static("2"));
            DeliveryKind::Sqsd
        }
        2 => {
            h.insert(
                "x-amz-sns-message-type",
                HeaderValue::from_static("Notification"),
            );
            DeliveryKind::Sns
        }
        _ => {
            h.insert("x-amz-sns-rawdelivery", HeaderValue::from_static("true"));
            h.insert(
                "x-amz-sns-message-id",
                HeaderValue::from_static("fuzz-sns-1"),
            );
            DeliveryKind::Sns
        }
    };
    (h, kind)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let (headers, kind) = headers(mode);
    let received = match receive(&headers, body) {
        Ok(r) => r,
        Err(e) => {
            // Every refusal has a stable code (it is what the caller is told).
            assert!(!e.code().is_empty());
            return;
        }
    };
    assert_eq!(received.delivery.kind, kind);
    let Ok((delivery, alarm)) = received.into_alarm() else {
        return;
    };
    assert_eq!(delivery.kind, kind);
    check_alarm(&alarm);
    check_case_bodies(&delivery, &alarm);
});
