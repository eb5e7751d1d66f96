//! A minimal CloudWatch stand-in that accepts PutMetricData as the current SDK sends it
//! (Smithy RPC v2 CBOR: `POST /service/GraniteServiceVersion20100801/operation/PutMetricData`),
//! which moto does not speak yet. It records each request body; metric names are CBOR text
//! strings, so they appear in the body as plain UTF-8 and tests can look for them.

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
pub struct Recorded(Arc<Mutex<Vec<Request>>>);

impl Recorded {
    /// Whether any PutMetricData body named this metric (and the namespace `Support`).
    pub fn saw_metric(&self, name: &str) -> bool {
        self.0.lock().expect("lock").iter().any(|(op, body)| {
            op == "PutMetricData" && contains(body, b"Support") && contains(body, name.as_bytes())
        })
    }

    pub fn requests(&self) -> usize {
        self.0.lock().expect("lock").len()
    }
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
    recorded.0.lock().expect("lock").push((op, body.to_vec()));
    // An empty CBOR map: PutMetricData has no output members.
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/cbor")],
        vec![0xa0],
    )
}

/// Starts the stand-in on a free loopback port; returns its endpoint and what it records.
pub async fn start() -> (String, Recorded) {
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
