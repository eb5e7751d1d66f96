//! Helpers shared by the integration tests: a real server on port 0 with fresh state, and
//! the payload fixtures.
#![allow(dead_code)]

pub(crate) mod cloudwatch_standin;
pub(crate) mod egress;
pub(crate) mod moto;
pub(crate) mod process;
pub(crate) mod sns_sign;
pub(crate) mod support_standin;
pub(crate) mod voice_standin;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cw_support_api::backend::Backend;
use cw_support_api::backend::local::LocalBackend;
use cw_support_api::case::CasePolicy;
use cw_support_api::cli::startup;
use cw_support_api::inbound::gate::Gate;
use cw_support_api::inbound::http::{self, AppState};
use cw_support_api::inbound::sns::{
    CertFetcher, SnsError, SubscriptionConfirmer, TopicAllowList, Verifier, VerifierConfig,
};
use cw_support_api::ports::desk::SupportDesk;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) fn payload(name: &str) -> Vec<u8> {
    std::fs::read(payload_path(name)).expect("fixture exists")
}

pub(crate) fn payload_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/payloads")
        .join(name)
}

pub(crate) fn payload_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&payload(name)).expect("fixture is JSON")
}

/// AWS Support's `Support Case Update` event `name` (a documented shape, in
/// `tests/data/support-events/`) about `case_id`.
pub(crate) fn support_event(name: &str, case_id: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/data/support-events/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
    .replace("case-111122223333-muen-2022-7118885805350839", case_id)
}

/// A running server and what it was started with.
pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    pub(crate) backend: LocalBackend,
    pub(crate) client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

pub(crate) struct Options {
    pub(crate) policy: CasePolicy,
    pub(crate) request_timeout: Duration,
    /// Replaces the dry-run desk (to slow it down or make it fail).
    pub(crate) desk: Option<Arc<dyn SupportDesk>>,
    /// VERIFY_SQS_ENVELOPES.
    pub(crate) verify_sqs_envelopes: bool,
    pub(crate) max_concurrency: Option<usize>,
    pub(crate) shutdown_grace: Option<Duration>,
    /// The console and how people sign in to it (the load balancer's key source a test's
    /// own), on this app's stores.
    pub(crate) console: Option<cw_support_api::console::SignIn>,
}

/// Serves something that is not a certificate for every URL, so a message signed by
/// anyone but AWS is refused as it would be in production (these tests have no SNS keys;
/// the signed paths are tested in `http::tests`).
struct NoCertificates;

#[async_trait::async_trait]
impl CertFetcher for NoCertificates {
    async fn fetch(&self, _url: &url::Url) -> Result<Vec<u8>, SnsError> {
        Ok(b"not a certificate".to_vec())
    }
}

struct NoConfirmations;

#[async_trait::async_trait]
impl SubscriptionConfirmer for NoConfirmations {
    async fn confirm(&self, _url: &url::Url) -> Result<String, SnsError> {
        panic!("no confirmation expected in these tests")
    }
}

/// Each behaviour named, as a test on each store: the calling module's `sqlite()` and
/// `dynamodb()` make the store each behaviour is given.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::sqlite().await).await
            }
            #[tokio::test]
            async fn dynamodb() {
                super::$name(super::dynamodb().await).await
            }
        })*
    };
}
pub(crate) use on_both;

/// Held by the tests that time the service to the second (a stage within a second of its
/// time after a SIGKILL, a survivor's settling) and by the browser tests: Chromium takes
/// both cores of a small machine, so they never run side by side.
pub(crate) static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The configuration of a test server: the defaults, on the local backend in `data_dir`.
pub(crate) fn config(data_dir: &Path) -> cw_support_api::cli::Config {
    use clap::Parser;
    let dir = data_dir.to_str().expect("utf-8 path");
    cw_support_api::cli::Cli::parse_from(["cw-support-api", "--data-dir", dir]).config
}

fn gate(verify_sqs_envelopes: bool) -> Gate {
    Gate {
        verifier: Verifier::new(VerifierConfig::default(), Arc::new(NoCertificates)),
        topics: TopicAllowList::Any,
        own_account: None,
        confirmer: Arc::new(NoConfirmations),
        tokens: Default::default(),
        trust_sqsd_from: "127.0.0.0/8,::1/128".parse().expect("loopback"),
        verify_sqs_envelopes,
        max_message_age: Duration::from_secs(2 * 3600),
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            policy: CasePolicy::default(),
            request_timeout: Duration::from_secs(30),
            desk: None,
            verify_sqs_envelopes: true,
            max_concurrency: None,
            shutdown_grace: None,
            console: None,
        }
    }
}

impl TestApp {
    /// The walkthrough's people, schedule and `default` policy on duty
    /// (`tests/data/oncall/walkthrough.toml`), and `alarm` routed to a page by that policy.
    pub(crate) async fn page_on_duty(&self, alarm: &str) {
        use cw_support_api::domain::settings::{AlarmConfigRecord, AlarmConfigStore};
        let store = &self.backend.config;
        store
            .save_on_call(include_str!("../../data/oncall/walkthrough.toml"))
            .await
            .expect("on duty");
        let routed = AlarmConfigRecord {
            route: Some("page".into()),
            policy: Some("default".into()),
            ..Default::default()
        };
        store.put(alarm, &routed).await.expect("settings");
    }

    pub(crate) async fn spawn(data_dir: &Path) -> Self {
        Self::spawn_with(data_dir, Options::default()).await
    }

    pub(crate) async fn spawn_with(data_dir: &Path, opts: Options) -> Self {
        // Wired as `serve` wires it (startup::build_on), on the local backend in
        // `data_dir`; the tests' own gate has no SNS keys and confirms nothing.
        let local = LocalBackend::open(data_dir).expect("local backend");
        let mut backend = Backend::from(local.clone());
        if let Some(desk) = opts.desk {
            backend.desk = desk;
        }
        let config = config(data_dir);
        let console = opts
            .console
            .map(|sign_in| cw_support_api::console::Console {
                sign_in,
                store: backend.console.clone(),
                settings: backend.config.clone(),
                throttle: Default::default(),
            });
        let app = startup::build_on(&config, backend)
            .await
            .expect("the application");
        let cases = app.cases.with_policy(opts.policy);
        let state = AppState::new(cases, gate(opts.verify_sqs_envelopes), opts.request_timeout)
            .with_limits(
                opts.max_concurrency
                    .unwrap_or(http::DEFAULT_MAX_CONCURRENCY),
                opts.shutdown_grace.unwrap_or(Duration::from_secs(30)),
            )
            .with_console(console);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(http::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            backend: local,
            client: reqwest::Client::new(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
        self.post_with(body, &[]).await
    }

    pub(crate) async fn post_with(
        &self,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut req = self.client.post(self.url("/serviceme")).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("answer is not JSON: {status} {text:?}"));
        (status, json)
    }

    /// Stops the server the way SIGTERM does and waits until it has drained.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("join").expect("serve");
        }
    }

    pub(crate) fn shutdown_handle(
        &mut self,
    ) -> (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
        (
            self.stop.take().expect("not stopped"),
            self.handle.take().expect("not stopped"),
        )
    }
}
