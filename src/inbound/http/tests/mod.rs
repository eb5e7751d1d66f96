//! SNS authenticity and unsigned-post authentication at the HTTP edge, with keys and
//! certificates generated at test time (and the real AWS vectors when present).
use super::*;
use crate::backend::local::LocalBackend;
use crate::case::CasePolicy;
use crate::inbound::gate::{ApiTokens, CidrList};
use crate::inbound::sns::test_support::{
    FakeFetcher, PanicFetcher, TOPIC, confirmation, keys, notification,
};
use crate::inbound::sns::{
    CertFetcher, SnsMessage, SubscriptionConfirmer, TopicAllowList, Verifier, VerifierConfig,
};
use crate::inbound::sns::{MessageKind, SnsError};
use crate::ports::ledger::CaseLedger;
use async_trait::async_trait;
use axum::body::Body as HttpBody;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::Request;
use serde_json::Value;
use std::sync::Mutex;
use tower::ServiceExt;

mod unsigned;

const SUBSCRIPTION_ARN: &str =
    "arn:aws:sns:us-east-1:123456789012:alarms:1f3c5d6e-aaaa-bbbb-cccc-000000000001";

/// Records every URL it is asked to visit.
#[derive(Default)]
struct RecordingConfirmer {
    urls: Mutex<Vec<String>>,
    fail: bool,
}

#[async_trait]
impl SubscriptionConfirmer for RecordingConfirmer {
    async fn confirm(&self, url: &url::Url) -> Result<String, SnsError> {
        self.urls.lock().expect("lock").push(url.to_string());
        match self.fail {
            true => Err(SnsError::ConfirmationFailed {
                reason: "HTTP 503".into(),
                retryable: true,
            }),
            false => Ok(SUBSCRIPTION_ARN.into()),
        }
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    backend: LocalBackend,
    router: Router,
    fetcher: Arc<FakeFetcher>,
    confirmer: Arc<RecordingConfirmer>,
}

struct Setup {
    topics: &'static str,
    tokens: &'static str,
    verify_sqs_envelopes: bool,
    confirm_fails: bool,
    peer: &'static str,
    own_account: Option<&'static str>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            own_account: None,
            topics: TOPIC,
            tokens: "",
            verify_sqs_envelopes: true,
            confirm_fails: false,
            peer: "127.0.0.1:40000",
        }
    }
}

fn harness(setup: Setup) -> Harness {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    harness_with(setup, fetcher.clone(), VerifierConfig::default(), fetcher)
}

fn harness_with(
    setup: Setup,
    fetcher: Arc<dyn CertFetcher>,
    verifier_config: VerifierConfig,
    counting: Arc<FakeFetcher>,
) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = LocalBackend::open(dir.path()).expect("backend");
    let cases = CaseService::new(
        backend.config.clone(),
        backend.ledger.clone(),
        backend.desk.clone(),
        CasePolicy::default(),
    );
    let confirmer = Arc::new(RecordingConfirmer {
        fail: setup.confirm_fails,
        ..Default::default()
    });
    let gate = Gate {
        verifier: Verifier::new(verifier_config, fetcher),
        topics: TopicAllowList::parse(setup.topics).expect("topics"),
        own_account: setup.own_account.map(str::to_owned),
        confirmer: confirmer.clone(),
        tokens: setup.tokens.parse::<ApiTokens>().expect("tokens"),
        trust_sqsd_from: "127.0.0.0/8".parse::<CidrList>().expect("cidrs"),
        verify_sqs_envelopes: setup.verify_sqs_envelopes,
        max_message_age: Duration::from_secs(2 * 3600),
    };
    let peer: SocketAddr = setup.peer.parse().expect("peer");
    let router =
        app(AppState::new(cases, gate, Duration::from_secs(10))).layer(MockConnectInfo(peer));
    Harness {
        _dir: dir,
        backend,
        router,
        fetcher: counting,
        confirmer,
    }
}

fn to_body(m: &SnsMessage) -> String {
    let mut v = json!({
        "Type": m.kind.as_str(),
        "MessageId": m.message_id,
        "TopicArn": m.topic_arn.as_str(),
        "Message": m.message,
        "Timestamp": m.timestamp,
        "SignatureVersion": m.signature_version,
        "Signature": m.signature,
        "SigningCertURL": m.signing_cert_url,
    });
    for (k, f) in [
        ("Subject", &m.subject),
        ("SubscribeURL", &m.subscribe_url),
        ("Token", &m.token),
        ("UnsubscribeURL", &m.unsubscribe_url),
    ] {
        if let Some(x) = f {
            v[k] = json!(x);
        }
    }
    v.to_string()
}

fn alarm_notification(version: &str) -> SnsMessage {
    let mut m = notification(
        version,
        Some("ALARM: \"prod-api-5xx-rate\" in US East (N. Virginia)"),
    );
    m.message = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/payloads/metric-alarm.json"
    ))
    .expect("fixture");
    keys().sign(&mut m);
    m
}

async fn post(
    h: &Harness,
    body: String,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, HeaderMap) {
    let mut req = Request::post("/serviceme").header("content-type", "text/plain; charset=UTF-8");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = h
        .router
        .clone()
        .oneshot(req.body(HttpBody::from(body)).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

fn sns_headers(kind: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("x-amz-sns-message-type", kind),
        ("x-amz-sns-topic-arn", TOPIC),
        ("user-agent", "Amazon Simple Notification Service Agent"),
    ]
}

async fn decisions(h: &Harness) -> usize {
    h.backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("ledger")
        .len()
}

#[tokio::test]
async fn signed_v1_and_v2_notifications_open_one_case_and_replays_are_duplicates() {
    let h = harness(Setup::default());
    let (status, body, _) = post(
        &h,
        to_body(&alarm_notification("1")),
        &sns_headers("Notification"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "created");
    // Same MessageId, SHA-256 signature this time: a replay.
    let (status, body, _) = post(
        &h,
        to_body(&alarm_notification("2")),
        &sns_headers("Notification"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "duplicate");
    assert_eq!(h.fetcher.calls(), 1, "the key is cached");
}

#[tokio::test]
async fn a_verified_notification_that_holds_no_alarm_is_a_precise_400() {
    let h = harness(Setup::default());
    let mut m = alarm_notification("1");
    m.message = "Disk full on db-1".into();
    keys().sign(&mut m);
    let (status, body, _) = post(&h, to_body(&m), &sns_headers("Notification")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("sns_message_not_json"))
    );
    m.message = r#"{"hello": "world"}"#.into();
    keys().sign(&mut m);
    let (status, body, _) = post(&h, to_body(&m), &sns_headers("Notification")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_shape"))
    );
}

#[tokio::test]
async fn tampered_fields_are_refused_with_403_and_nothing_recorded() {
    let h = harness(Setup::default());
    type Tamper = fn(&mut SnsMessage);
    let tamper: [(&str, Tamper); 5] = [
        ("Message", |m| m.message = m.message.replace("ALARM", "OK")),
        ("MessageId", |m| m.message_id.push('0')),
        ("Subject", |m| m.subject = Some("OK: all good".into())),
        ("Timestamp", |m| {
            m.timestamp = crate::inbound::sns::test_support::recent_timestamp().replace(".", ".9")
        }),
        ("Signature", |m| {
            // Change the first character, whatever it is (the key is random).
            let first = if m.signature.starts_with('A') {
                "B"
            } else {
                "A"
            };
            m.signature = format!("{first}{}", &m.signature[1..]);
        }),
    ];
    for (field, f) in tamper {
        let mut m = alarm_notification("1");
        f(&mut m);
        let (status, body, _) = post(&h, to_body(&m), &sns_headers("Notification")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{field}: {body}");
        assert_eq!(body["error"], "bad_signature", "{field}");
    }
    assert_eq!(decisions(&h).await, 0);
}

#[tokio::test]
async fn bad_versions_urls_and_topics_are_refused_without_any_fetch() {
    let h = harness(Setup::default());
    let mut m = alarm_notification("1");
    m.signature_version = "3".into();
    let (status, body, _) = post(&h, to_body(&m), &sns_headers("Notification")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("unsupported_signature_version"))
    );

    for url in [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "https://evil.example.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "https://sns.s3-us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem?x=1",
        "https://sns.us-east-1.amazonaws.com/redirect?to=http://169.254.169.254/",
    ] {
        let mut m = alarm_notification("1");
        m.signing_cert_url = url.into();
        let (status, body, _) = post(&h, to_body(&m), &sns_headers("Notification")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{url}: {body}");
        assert_eq!(body["error"], "untrusted_certificate_url", "{url}");
    }
    assert_eq!(h.fetcher.calls(), 0, "no request for a bad URL");

    let h = harness(Setup {
        topics: "arn:aws:sns:us-east-1:999999999999:other",
        ..Default::default()
    });
    let (status, body, _) = post(
        &h,
        to_body(&alarm_notification("1")),
        &sns_headers("Notification"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("topic_not_allowed"))
    );
    let c = confirmation(MessageKind::SubscriptionConfirmation, "1");
    let (status, _, _) = post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(h.fetcher.calls(), 0);
    assert!(
        h.confirmer.urls.lock().expect("lock").is_empty(),
        "a foreign topic is never confirmed"
    );
}

#[tokio::test]
async fn subscription_confirmation_visits_the_subscribe_url_once() {
    let h = harness(Setup::default());
    let c = confirmation(MessageKind::SubscriptionConfirmation, "1");
    let (status, body, _) = post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "confirmed");
    assert_eq!(body["subscriptionArn"], SUBSCRIPTION_ARN);
    let urls = h.confirmer.urls.lock().expect("lock").clone();
    assert_eq!(urls, vec![c.subscribe_url.clone().expect("url")]);
    let recorded = h
        .backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("ledger");
    assert_eq!(recorded[0].outcome, Outcome::Confirmed);
    assert_eq!(recorded[0].alarm_key, TOPIC);
}

#[tokio::test]
async fn a_subscribe_url_off_the_sns_host_is_refused() {
    let h = harness(Setup::default());
    let mut c = confirmation(MessageKind::SubscriptionConfirmation, "1");
    c.subscribe_url = Some("https://attacker.example.com/?Action=ConfirmSubscription".into());
    keys().sign(&mut c);
    let (status, body, _) = post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("untrusted_subscribe_url"))
    );
    assert!(h.confirmer.urls.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_failed_confirmation_answers_5xx_so_sns_retries() {
    let h = harness(Setup {
        confirm_fails: true,
        ..Default::default()
    });
    let c = confirmation(MessageKind::SubscriptionConfirmation, "2");
    let (status, body, _) = post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(decisions(&h).await, 0);
}

#[tokio::test]
async fn unsubscribe_confirmation_is_recorded_and_visits_nothing() {
    let h = harness(Setup::default());
    let c = confirmation(MessageKind::UnsubscribeConfirmation, "2");
    let (status, body, _) = post(&h, to_body(&c), &sns_headers("UnsubscribeConfirmation")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "unsubscribed");
    assert!(h.confirmer.urls.lock().expect("lock").is_empty());
    let recorded = h
        .backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("ledger");
    assert_eq!(recorded[0].outcome, Outcome::Unsubscribed);
}

#[tokio::test]
async fn signed_envelopes_inside_sqs_bodies_are_verified_unless_switched_off() {
    let sqsd = [
        ("x-aws-sqsd-msgid", "0b1d2c3e-sqs"),
        ("x-aws-sqsd-receive-count", "1"),
    ];
    let h = harness(Setup::default());
    let (status, body, _) = post(&h, to_body(&alarm_notification("1")), &sqsd).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("created"))
    );

    let mut forged = alarm_notification("1");
    forged.message_id = "forged-0001".into();
    let (status, body, _) = post(&h, to_body(&forged), &[("x-aws-sqsd-msgid", "other")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("bad_signature"))
    );

    let h = harness(Setup {
        verify_sqs_envelopes: false,
        ..Default::default()
    });
    let (status, body, _) = post(&h, to_body(&forged), &[("x-aws-sqsd-msgid", "other")]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("created")),
        "{body}"
    );
    assert_eq!(h.fetcher.calls(), 0);
}

const TOKEN: &str = "test-token-0123456789abcdef";
