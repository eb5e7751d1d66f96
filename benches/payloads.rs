//! Payload parsing: `delivery::receive` (classify the request, parse the JSON, open an SNS
//! envelope's fields) then `Received::into_alarm` (parse the alarm inside), for every
//! fixture shape in tests/data/payloads, as a direct post and as a worker-daemon delivery.
//! SNS envelopes are opened without a signature check here (that is `sns_verify`).
//!
//! ```text
//! cargo bench --bench payloads
//! ```

use std::hint::black_box;

use axum::http::{HeaderMap, HeaderValue};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cw_support_api::inbound::delivery;

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/payloads");
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("fixture directory")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let name = e
                .path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, std::fs::read(e.path()).expect("read fixture"))
        })
        .collect();
    all.sort();
    all
}

fn bench(c: &mut Criterion) {
    let direct = HeaderMap::new();
    let mut sqsd = HeaderMap::new();
    sqsd.insert(
        "x-aws-sqsd-msgid",
        HeaderValue::from_static("0b1d2c3e-4f50-6172-8394-a5b6c7d8e9f0"),
    );
    sqsd.insert("x-aws-sqsd-receive-count", HeaderValue::from_static("1"));
    sqsd.insert(
        "x-aws-sqsd-queue",
        HeaderValue::from_static("awseb-e-abc-stack-AWSEBWorkerQueue"),
    );

    let mut group = c.benchmark_group("payload_parse");
    for (name, body) in fixtures() {
        // Every fixture must be an alarm: a benchmark of an error path would mislead.
        delivery::receive(&direct, &body)
            .and_then(|r| r.into_alarm())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        for (via, headers) in [("direct", &direct), ("sqsd", &sqsd)] {
            group.bench_function(format!("{name}/{via}"), |b| {
                b.iter(|| {
                    delivery::receive(black_box(headers), black_box(&body))
                        .and_then(|r| r.into_alarm())
                        .expect("alarm")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
