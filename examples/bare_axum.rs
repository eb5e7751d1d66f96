//! The ceiling for the benchmarks: a bare axum server that reads the body and answers
//! `200 {}` to `POST /serviceme` (and `{"status":"ok"}` to `GET /healthz`), on the same
//! runtime, axum features and `axum::serve` as the service, and nothing else.
//!
//! ```text
//! cargo run --release --example bare_axum -- --port 5099
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use serde_json::{Value, json};

async fn serviceme(body: Bytes) -> axum::Json<Value> {
    std::hint::black_box(body);
    axum::Json(json!({}))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut port: u16 = 5099;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("--port needs a port number")
            }
            other => panic!("unknown argument {other:?}; usage: bare_axum [--port N]"),
        }
    }
    let app = Router::new().route("/serviceme", post(serviceme)).route(
        "/healthz",
        get(|| async { axum::Json(json!({"status": "ok"})) }),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind the port");
    axum::serve(listener, app).await.expect("serve");
}
