//! What one AWS call costs this process in CPU: the SDK's TransactWriteItems of a commit's
//! six items, one call at a time on one thread, against a canned endpoint. (Issue 16 also
//! measured a hand-written client here; issue 25 went back to the SDK for every call.)
//!
//!   AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \
//!     cargo run --release --example aws_call_cost -- [CALLS]
//!
//! The endpoint only has to answer 200 `{}` (nginx's `return 200 '{}'`); the process's
//! own CPU time (/proc/self/stat) over the calls is what is printed.

use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

const REGION: &str = "us-east-1";
const TABLE: &str = "cw-support-api-ledger";

/// The process's user + system CPU seconds so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

/// CPU seconds per call of `send`, after 200 calls to warm connections and caches.
async fn cpu_per_call<F: std::future::Future<Output = ()>>(
    calls: usize,
    send: impl Fn(usize) -> F,
) -> f64 {
    for i in 0..200 {
        send(i).await;
    }
    let before = cpu_seconds();
    for i in 0..calls {
        send(i).await;
    }
    (cpu_seconds() - before) / calls as f64
}

/// Items like a commit's: handled keys, history copies, the open case (strings of a few
/// hundred bytes each).
fn items(i: usize) -> Vec<(String, String)> {
    let decision = format!(
        r#"{{"seq":{i},"at":"2026-12-02T04:00:00Z","deliveryKind":"sqsd","deliveryId":"m-{i}","alarmKey":"alarm-{i}","alarmName":"alarm-{i}","state":"ALARM","stateChangeTime":"2026-12-02T03:59:59.000+0000","outcome":"created","caseId":"case-123456789012-muen-2026-0123456789abcdef","note":null}}"#
    );
    vec![
        (format!("handled#sqs:m-{i}"), decision.clone()),
        (format!("handled#event:alarm-{i}"), decision.clone()),
        (format!("alarm#alarm-{i}"), decision.clone()),
        ("day#2026-12-02".to_owned(), decision.clone()),
        (format!("case#case-{i}"), decision.clone()),
        (format!("alarm#alarm-{i}/open"), decision),
    ]
}

async fn with_sdk(calls: usize) -> f64 {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let send = |i: usize| {
        let client = client.clone();
        async move {
            let transact = items(i)
                .into_iter()
                .map(|(pk, json)| {
                    let put = Put::builder()
                        .table_name(TABLE)
                        .item("pk", AttributeValue::S(pk))
                        .item("sk", AttributeValue::S("-".into()))
                        .item("decision", AttributeValue::S(json))
                        .build()
                        .expect("put");
                    TransactWriteItem::builder().put(put).build()
                })
                .collect();
            client
                .transact_write_items()
                .set_transact_items(Some(transact))
                .send()
                .await
                .expect("TransactWriteItems answered");
        }
    };
    cpu_per_call(calls, send).await
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let sdk = rt.block_on(with_sdk(calls));
    println!(
        "{{\"calls\": {calls}, \"sdk_cpu_us_per_call\": {:.1}, \"seconds\": {:.1}}}",
        sdk * 1e6,
        started.elapsed().as_secs_f64()
    );
}
