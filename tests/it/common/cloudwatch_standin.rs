//! A minimal CloudWatch stand-in that accepts PutMetricData, GetMetricWidgetImage,
//! ListTagsForResource and DescribeAlarms (by name) as the current SDK sends them (Smithy RPC v2 CBOR:
//! `POST /service/GraniteServiceVersion20100801/operation/<Operation>`), which moto does not
//! speak yet. It records each request body; metric names are CBOR text strings, so they
//! appear in the body as plain UTF-8 and tests can look for them. GetMetricWidgetImage
//! answers [`png`]'s bytes, and the widget JSON it was asked for can be read back.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;

/// One request: the operation name and its CBOR body.
type Request = (String, Vec<u8>);

#[derive(Clone, Default)]
pub(crate) struct Recorded(Arc<Mutex<Vec<Request>>>, Tags, Alarms, Signers, Endless);

/// When set, every DescribeAlarms answer says there is another page (`NextToken`).
type Endless = Arc<std::sync::atomic::AtomicBool>;

/// Who signed each call, and for which region: (operation, access key, region), from the
/// SigV4 `Credential=<key>/<date>/<region>/monitoring/aws4_request`.
type Signers = Arc<Mutex<Vec<(String, String, String)>>>;

/// The tags ListTagsForResource answers, per alarm ARN.
type Tags = Arc<Mutex<std::collections::HashMap<String, Vec<(String, String)>>>>;

/// The alarms DescribeAlarms knows: name → (its definition as DescribeAlarms answers it,
/// composite).
type Alarms = Arc<Mutex<std::collections::BTreeMap<String, (serde_json::Value, bool)>>>;

impl Recorded {
    /// Whether any PutMetricData body named this metric (and the namespace `Support`).
    pub(crate) fn saw_metric(&self, name: &str) -> bool {
        self.0.lock().expect("lock").iter().any(|(op, body)| {
            op == "PutMetricData" && contains(body, b"Support") && contains(body, name.as_bytes())
        })
    }

    pub(crate) fn requests(&self) -> usize {
        self.0.lock().expect("lock").len()
    }

    /// Tags an alarm: ListTagsForResource answers them for this ARN.
    pub(crate) fn set_tags(&self, arn: &str, tags: &[(&str, &str)]) {
        self.1.lock().expect("lock").insert(
            arn.to_owned(),
            tags.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
    }

    /// An alarm DescribeAlarms finds by its name.
    pub(crate) fn add_alarm(&self, name: &str, arn: &str, composite: bool) {
        self.define_alarm(
            serde_json::json!({"AlarmName": name, "AlarmArn": arn}),
            composite,
        );
    }

    /// An alarm as DescribeAlarms answers it (`AlarmName`, `AlarmArn`, `ActionsEnabled`,
    /// `AlarmActions`, `OKActions`, a composite's `AlarmRule`): found by its name, and
    /// listed when no name is asked for.
    pub(crate) fn define_alarm(&self, definition: serde_json::Value, composite: bool) {
        let name = definition["AlarmName"]
            .as_str()
            .expect("AlarmName")
            .to_owned();
        self.2
            .lock()
            .expect("lock")
            .insert(name, (definition, composite));
    }

    /// From now on every DescribeAlarms answer names a next page: an account that never ends.
    pub(crate) fn never_end_alarms(&self) {
        self.4.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many calls of `op` were made.
    pub(crate) fn calls(&self, op: &str) -> usize {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(o, _)| o == op)
            .count()
    }

    /// The access key and region each call of `op` was signed with, in order.
    pub(crate) fn signers(&self, op: &str) -> Vec<(String, String)> {
        self.3
            .lock()
            .expect("lock")
            .iter()
            .filter(|(o, _, _)| o == op)
            .map(|(_, k, r)| (k.clone(), r.clone()))
            .collect()
    }

    /// The `MetricWidget` JSON of every GetMetricWidgetImage request.
    pub(crate) fn widgets(&self) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(op, _)| op == "GetMetricWidgetImage")
            .filter_map(|(_, body)| cbor_text_after(body, b"MetricWidget"))
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect()
    }
}

/// The CBOR text string that follows the text-string key `key` (major type 3, lengths up
/// to 65535: enough for a widget).
fn cbor_text_after(body: &[u8], key: &[u8]) -> Option<String> {
    let mut marker = vec![0x60 | key.len() as u8];
    marker.extend_from_slice(key);
    let at = body.windows(marker.len()).position(|w| w == marker)? + marker.len();
    let (len, start) = match *body.get(at)? {
        b @ 0x60..=0x77 => (usize::from(b - 0x60), at + 1),
        0x78 => (usize::from(*body.get(at + 1)?), at + 2),
        0x79 => (
            usize::from(u16::from_be_bytes([*body.get(at + 1)?, *body.get(at + 2)?])),
            at + 3,
        ),
        _ => return None,
    };
    String::from_utf8(body.get(start..start + len)?.to_vec()).ok()
}

/// What GetMetricWidgetImage answers: a valid 2x1 PNG (the stand-in draws nothing).
pub(crate) fn png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, 2, 1);
        e.set_color(png::ColorType::Rgb);
        e.set_depth(png::BitDepth::Eight);
        let mut w = e.write_header().expect("header");
        w.write_image_data(&[255, 0, 0, 0, 0, 255]).expect("data");
    }
    out
}

/// The CBOR array of text strings that follows the text-string key `key` (definite or
/// indefinite length, short strings): DescribeAlarms' `AlarmNames`.
fn cbor_texts_after(body: &[u8], key: &[u8]) -> Vec<String> {
    let mut marker = vec![0x60 | key.len() as u8];
    marker.extend_from_slice(key);
    let Some(at) = body.windows(marker.len()).position(|w| w == marker) else {
        return Vec::new();
    };
    let mut i = at + marker.len();
    let count = match body.get(i) {
        Some(b @ 0x80..=0x97) => usize::from(b - 0x80),
        Some(0x9f) => usize::MAX,
        _ => return Vec::new(),
    };
    i += 1;
    let mut out = Vec::new();
    while out.len() < count {
        let (len, start) = match body.get(i) {
            Some(b @ 0x60..=0x77) => (usize::from(b - 0x60), i + 1),
            Some(0x78) => match body.get(i + 1) {
                Some(n) => (usize::from(*n), i + 2),
                None => break,
            },
            _ => break, // 0xff ends an indefinite array
        };
        let Some(text) = body.get(start..start + len) else {
            break;
        };
        out.push(String::from_utf8_lossy(text).into_owned());
        i = start + len;
    }
    out
}

/// `{"MetricAlarms": [...], "CompositeAlarms": [...]}` in CBOR.
fn alarms_answer(found: &[(serde_json::Value, bool)], more: bool) -> Vec<u8> {
    let pick = |composite: bool| -> Vec<serde_json::Value> {
        found
            .iter()
            .filter(|a| a.1 == composite)
            .map(|a| a.0.clone())
            .collect()
    };
    let mut answer =
        serde_json::json!({"MetricAlarms": pick(false), "CompositeAlarms": pick(true)});
    if more {
        answer["NextToken"] = "more".into();
    }
    let mut out = Vec::new();
    cbor_value(&mut out, &answer);
    out
}

/// A CBOR item's head: its major type and its length or value.
fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

/// A JSON value in CBOR, as the SDK reads a Smithy RPC v2 answer.
fn cbor_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => cbor_head(out, 0, u),
            (None, Some(i)) => cbor_head(out, 1, (-1 - i) as u64),
            _ => {
                out.push(0xfb);
                out.extend(n.as_f64().unwrap_or_default().to_be_bytes());
            }
        },
        Value::String(t) => {
            cbor_head(out, 3, t.len() as u64);
            out.extend(t.as_bytes());
        }
        Value::Array(items) => {
            cbor_head(out, 4, items.len() as u64);
            for i in items {
                cbor_value(out, i);
            }
        }
        Value::Object(map) => {
            cbor_head(out, 5, map.len() as u64);
            for (k, v) in map {
                cbor_value(out, &Value::String(k.clone()));
                cbor_value(out, v);
            }
        }
    }
}

/// A CBOR text string.
fn cbor_text(out: &mut Vec<u8>, text: &str) {
    let b = text.as_bytes();
    match b.len() {
        n @ 0..=23 => out.push(0x60 | n as u8),
        n @ 24..=255 => {
            out.push(0x78);
            out.push(n as u8);
        }
        n => {
            out.push(0x79);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(b);
}

/// `{"Tags": [{"Key": k, "Value": v}, ...]}` in CBOR.
fn tags_answer(tags: &[(String, String)]) -> Vec<u8> {
    let mut out = vec![0xa1];
    cbor_text(&mut out, "Tags");
    out.push(0x80 | tags.len().min(23) as u8);
    for (k, v) in tags.iter().take(23) {
        out.push(0xa2);
        cbor_text(&mut out, "Key");
        cbor_text(&mut out, k);
        cbor_text(&mut out, "Value");
        cbor_text(&mut out, v);
    }
    out
}

/// `{"MetricWidgetImage": <bytes>}` in CBOR.
fn widget_image_answer() -> Vec<u8> {
    let key = b"MetricWidgetImage";
    let mut out = vec![0xa1, 0x60 | key.len() as u8];
    out.extend_from_slice(key);
    let image = png();
    out.push(0x58);
    out.push(u8::try_from(image.len()).expect("a small PNG"));
    out.extend_from_slice(&image);
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn operation(
    State(recorded): State<Recorded>,
    Path(op): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if headers.get("smithy-protocol").map(|v| v.as_bytes()) != Some(b"rpc-v2-cbor") {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain")],
            Vec::new(),
        );
    }
    let answer = match op.as_str() {
        "GetMetricWidgetImage" => widget_image_answer(),
        "ListTagsForResource" => {
            let arn = cbor_text_after(&body, b"ResourceARN").unwrap_or_default();
            let tags = recorded.1.lock().expect("lock").get(&arn).cloned();
            tags_answer(&tags.unwrap_or_default())
        }
        "DescribeAlarms" => {
            let known = recorded.2.lock().expect("lock");
            let names = cbor_texts_after(&body, b"AlarmNames");
            // No names: every alarm (one page; no NextToken).
            let found: Vec<(serde_json::Value, bool)> = match names.is_empty() {
                true => known.values().cloned().collect(),
                false => names.iter().filter_map(|n| known.get(n).cloned()).collect(),
            };
            let more = recorded.4.load(std::sync::atomic::Ordering::Relaxed);
            alarms_answer(&found, more)
        }
        // An empty CBOR map: PutMetricData has no output members.
        _ => vec![0xa0],
    };
    let scope: Vec<String> = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .map(|c| c.split(['/', ',']).map(str::to_owned).collect())
        .unwrap_or_default();
    if let [key, _date, region, ..] = scope.as_slice() {
        recorded
            .3
            .lock()
            .expect("lock")
            .push((op.clone(), key.clone(), region.clone()));
    }
    recorded.0.lock().expect("lock").push((op, body.to_vec()));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/cbor")],
        answer,
    )
}

/// Starts the stand-in on a free loopback port; returns its endpoint and what it records.
pub(crate) async fn start() -> (String, Recorded) {
    let recorded = Recorded::default();
    let app = Router::new()
        .route(
            "/service/GraniteServiceVersion20100801/operation/{op}",
            post(operation),
        )
        .with_state(recorded.clone())
        .layer(axum::middleware::map_response(
            |mut r: axum::response::Response| async move {
                r.headers_mut().insert(
                    "smithy-protocol",
                    axum::http::HeaderValue::from_static("rpc-v2-cbor"),
                );
                r
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), recorded)
}
