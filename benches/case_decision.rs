//! The case decision on the local backend (settings file, SQLite ledger with WAL and
//! synchronous=FULL, dry-run desk) in a temporary directory on the same disk as the system
//! temp dir: `CaseService::plan` (read only) and `CaseService::handle` (plan, act, commit)
//! for a duplicate delivery and for a new alarm.
//!
//! `handle` of a new alarm writes durably (claim, dry-run case, commit: each a SQLite
//! transaction that waits for fsync), so it measures the disk as much as the code; see
//! docs/performance.md for the fsync cost of the machine the numbers came from.
//!
//! ```text
//! cargo bench --bench case_decision
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use cw_support_api::backend::local::LocalBackend;
use cw_support_api::case::{CasePolicy, CaseService, Outcome};
use cw_support_api::domain::alarm::Alarm;
use cw_support_api::domain::delivery::Delivery;
use cw_support_api::inbound::delivery;
use serde_json::json;

/// Decisions in the ledger for the "after a storm of redeliveries" benchmarks.
const LEDGER_DECISIONS: usize = 20_000;

/// A worker-daemon delivery of a new metric alarm: distinct name, message id and time.
fn new_alarm(n: u64) -> (Delivery, Alarm) {
    let name = format!("bench-alarm-{n}");
    let body = json!({
        "AlarmName": name,
        "AlarmDescription": "p99 latency above 2 s",
        "AWSAccountId": "123456789012",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 3 datapoints were greater than the threshold (2.0).",
        "StateChangeTime": format!("2026-11-20T03:{:02}:{:02}.{:03}+0000", (n / 60) % 60, n % 60, n % 1000),
        "Region": "US East (N. Virginia)",
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
        "OldStateValue": "OK",
        "Trigger": {
            "MetricName": "TargetResponseTime", "Namespace": "AWS/ApplicationELB",
            "Statistic": "AVERAGE", "Period": 60, "EvaluationPeriods": 3,
            "ComparisonOperator": "GreaterThanThreshold", "Threshold": 2.0
        }
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-aws-sqsd-msgid",
        HeaderValue::from_str(&format!("bench-msg-{n}")).expect("header"),
    );
    let bytes = serde_json::to_vec(&body).expect("json");
    delivery::receive(&headers, &bytes)
        .and_then(|r| r.into_alarm())
        .expect("alarm")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = LocalBackend::open(dir.path()).expect("local backend");
    // Storm control would fold new alarms into one case after a few: measure case opening.
    let policy = CasePolicy {
        storm_cap: usize::MAX,
        ..CasePolicy::default()
    };
    let cases = CaseService::new(
        backend.config.clone(),
        backend.ledger.clone(),
        backend.desk.clone(),
        policy,
    );
    let next = AtomicU64::new(0);
    let fresh = || new_alarm(next.fetch_add(1, Ordering::Relaxed));

    // One alarm handled once: every later delivery of it is a duplicate.
    let (dup_delivery, dup_alarm) = fresh();
    let first = rt
        .block_on(cases.handle(&dup_delivery, &dup_alarm))
        .expect("first");
    assert_eq!(first.outcome, Outcome::Created);

    let mut group = c.benchmark_group("case_decision");
    let plan_new = |group: &mut criterion::BenchmarkGroup<'_, _>, label: &str| {
        group.bench_function(label, |b| {
            let (d, a) = fresh();
            b.iter(|| {
                let plan = rt
                    .block_on(cases.plan(black_box(&d), black_box(&a)))
                    .expect("plan");
                assert_eq!(plan.outcome, Outcome::Created);
            })
        });
    };
    group.bench_function("plan/duplicate", |b| {
        b.iter(|| {
            let plan = rt
                .block_on(cases.plan(black_box(&dup_delivery), black_box(&dup_alarm)))
                .expect("plan");
            assert_eq!(plan.outcome, Outcome::Duplicate);
        })
    });
    plan_new(&mut group, "plan/new_alarm");

    // Durable writes: fewer, longer samples.
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("handle/new_alarm", |b| {
        b.iter_batched(
            &fresh,
            |(d, a)| {
                let h = rt.block_on(cases.handle(&d, &a)).expect("handle");
                assert_eq!(h.outcome, Outcome::Created);
            },
            BatchSize::SmallInput,
        )
    });
    // A duplicate still records a decision (one durable write).
    group.bench_function("handle/duplicate", |b| {
        b.iter(|| {
            let h = rt
                .block_on(cases.handle(black_box(&dup_delivery), black_box(&dup_alarm)))
                .expect("handle");
            assert_eq!(h.outcome, Outcome::Duplicate);
        })
    });

    // The ledger keeps every decision, duplicates included: deciding about a new alarm
    // after a storm of redeliveries (storm control counts this hour's cases), on a second
    // backend filled with exactly LEDGER_DECISIONS decisions.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let backend2 = LocalBackend::open(dir2.path()).expect("local backend");
    let cases = CaseService::new(
        backend2.config.clone(),
        backend2.ledger.clone(),
        backend2.desk.clone(),
        CasePolicy {
            storm_cap: usize::MAX,
            ..CasePolicy::default()
        },
    );
    let (d, a) = fresh();
    for _ in 0..LEDGER_DECISIONS {
        rt.block_on(cases.handle(&d, &a)).expect("handle");
    }
    let plan_new = |group: &mut criterion::BenchmarkGroup<'_, _>, label: &str| {
        group.bench_function(label, |b| {
            let (d, a) = fresh();
            b.iter(|| {
                let plan = rt
                    .block_on(cases.plan(black_box(&d), black_box(&a)))
                    .expect("plan");
                assert_eq!(plan.outcome, Outcome::Created);
            })
        });
    };
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(5));
    plan_new(
        &mut group,
        &format!("plan/new_alarm_after_{LEDGER_DECISIONS}_decisions"),
    );
    group.sample_size(20);
    group.bench_function(
        format!("handle/new_alarm_after_{LEDGER_DECISIONS}_decisions"),
        |b| {
            b.iter_batched(
                &fresh,
                |(d, a)| {
                    let h = rt.block_on(cases.handle(&d, &a)).expect("handle");
                    assert_eq!(h.outcome, Outcome::Created);
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
