//! The wire client against a local HTTP server that answers as AWS would, and its SigV4
//! signature against vectors computed by botocore's `SigV4Auth` for the same request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_credential_types::Credentials as AwsCredentials;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;

use super::*;

const BODY: &[u8] = br#"{"TransactItems":[]}"#;

fn canonical<'a>(hash: &'a str) -> Canonical<'a> {
    Canonical {
        path: "/",
        content_type: "application/x-amz-json-1.0",
        host: "dynamodb.us-east-1.amazonaws.com",
        amz_date: "20261202T055043Z",
        target: "DynamoDB_20120810.TransactWriteItems",
        payload_hash: hash,
    }
}

/// botocore 1.43 (`SigV4Auth(creds, "dynamodb", "us-east-1").add_auth(...)`) on a POST of
/// `BODY` to `https://dynamodb.us-east-1.amazonaws.com/` with these headers, at this time.
#[test]
fn the_signature_is_the_one_botocore_computes() {
    let hash = hex(digest::digest(&digest::SHA256, BODY).as_ref());
    assert_eq!(
        hash,
        "158355f44ed7865ffc9c34b97d60fc898b3bd08d72f0fb85a960175d99bd69be"
    );
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let key = SigningKey::derive(
        "AKIDEXAMPLE",
        secret,
        None,
        "20261202",
        "us-east-1",
        "dynamodb",
    )
    .unwrap();
    assert_eq!(
        key.authorization(&canonical(&hash)),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/us-east-1/dynamodb/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
         Signature=7b9ecde9b827412dc5a60fd912a55482b18263cfeffc700bf45a6d07c3a5765d"
    );
    let token = "IQoJb3JpZ2luX2VjEXAMPLETOKEN==";
    let key = SigningKey::derive(
        "AKIDEXAMPLE",
        secret,
        Some(token),
        "20261202",
        "us-east-1",
        "dynamodb",
    )
    .unwrap();
    assert_eq!(
        key.authorization(&canonical(&hash)),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/us-east-1/dynamodb/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, \
         Signature=715a9fd5a4aca5fef52cd36c33d6be2fc9b4c90b548c81f56bf1e9978a2bccdc"
    );
}

#[test]
fn error_codes_are_read_as_the_sdk_reads_them() {
    let code = |headers: &[(&'static str, &'static str)], body: &'static str, status: u16| {
        let mut map = hyper::HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_static(v));
        }
        match service_error(status, &map, Bytes::from_static(body.as_bytes())) {
            WireError::Service { code, message, .. } => (code, message),
            other => panic!("{other:?}"),
        }
    };
    let cancelled = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"cancelled"}"#;
    assert_eq!(
        code(&[], cancelled, 400),
        ("TransactionCanceledException".into(), "cancelled".into())
    );
    // The header wins over the body, and its suffix is not part of the code.
    assert_eq!(
        code(
            &[(
                "x-amzn-errortype",
                "ThrottlingException:http://internal.amazon.com/"
            )],
            cancelled,
            400
        )
        .0,
        "ThrottlingException"
    );
    assert_eq!(
        code(
            &[],
            r#"{"code":"CaseIdNotFound","message":"no such case"}"#,
            400
        ),
        ("CaseIdNotFound".into(), "no such case".into())
    );
    // No code at all (a proxy's HTML page): the status says what it was.
    assert_eq!(code(&[], "<html>bad gateway</html>", 502).0, "HTTP 502");
}

/// A server that answers each request with the next of `answers` (the last one repeats)
/// and keeps what it was sent.
struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

async fn fake(answers: Vec<(u16, &'static str, Duration)>) -> Fake {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let n = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/",
        post({
            let seen = seen.clone();
            move |headers: HeaderMap, _body: Bytes| {
                let seen = seen.clone();
                let i = n.fetch_add(1, Ordering::SeqCst);
                let (status, body, pause) = answers[i.min(answers.len() - 1)];
                async move {
                    seen.lock().unwrap().push(headers);
                    tokio::time::sleep(pause).await;
                    (StatusCode::from_u16(status).unwrap(), body).into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Fake { url, seen }
}

/// A provider that counts how often it is asked.
#[derive(Debug, Clone)]
struct Counting {
    asked: Arc<AtomicUsize>,
    token: Option<&'static str>,
    fail: bool,
}

impl ProvideCredentials for Counting {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let answer = match self.fail {
            true => Err(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "the test's provider has none",
                ),
            ),
            false => Ok(AwsCredentials::new(
                "AKIDTEST",
                "secret",
                self.token.map(str::to_owned),
                None,
                "test",
            )),
        };
        aws_credential_types::provider::future::ProvideCredentials::ready(answer)
    }
}

const QUICK: Timeouts = Timeouts {
    attempt: Duration::from_millis(300),
    operation: Duration::from_secs(5),
    max_attempts: 3,
};

fn service(url: &str, provider: &Counting, timeouts: Timeouts) -> Service {
    Service::new(
        Http::new(),
        DYNAMODB,
        url,
        "eu-west-1",
        SharedCredentialsProvider::new(provider.clone()),
        timeouts,
    )
    .unwrap()
}

fn provider(token: Option<&'static str>) -> Counting {
    Counting {
        asked: Arc::new(AtomicUsize::new(0)),
        token,
        fail: false,
    }
}

#[tokio::test]
async fn a_call_is_signed_and_targets_its_operation() {
    let server = fake(vec![(200, r#"{"ok":1}"#, Duration::ZERO)]).await;
    let creds = provider(Some("the-session-token"));
    let wire = service(&server.url, &creds, QUICK);
    for _ in 0..3 {
        let answer = wire
            .call("TransactWriteItems", BODY.to_vec(), Attempts::Retried)
            .await
            .unwrap();
        assert_eq!(&answer[..], br#"{"ok":1}"#);
    }
    // Credentials are asked for once, not per call.
    assert_eq!(creds.asked.load(Ordering::SeqCst), 1);
    let seen = server.seen.lock().unwrap();
    let h = &seen[0];
    assert_eq!(h["x-amz-target"], "DynamoDB_20120810.TransactWriteItems");
    assert_eq!(h["content-type"], "application/x-amz-json-1.0");
    assert_eq!(h["x-amz-security-token"], "the-session-token");
    assert_eq!(
        h["host"],
        server
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
    );
    let auth = h["authorization"].to_str().unwrap();
    let day = chrono::Utc::now().format("%Y%m%d").to_string();
    assert!(
        auth.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/{day}/eu-west-1/dynamodb/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="
        )),
        "{auth}"
    );
    assert!(!auth.contains("secret"));
}

/// One call against a server giving `answers`: its result and how many requests it took.
async fn against(
    answers: Vec<(u16, &'static str, Duration)>,
    operation: &str,
    attempts: Attempts,
) -> (Result<Bytes, WireError>, usize) {
    let server = fake(answers).await;
    let result = service(&server.url, &provider(None), QUICK)
        .call(operation, BODY.to_vec(), attempts)
        .await;
    let sent = server.seen.lock().unwrap().len();
    (result, sent)
}

#[tokio::test]
async fn throttling_and_5xx_are_retried_within_the_attempts() {
    let throttled = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#;
    let answers = vec![
        (400, throttled, Duration::ZERO),
        (500, r#"{"__type":"InternalServerError"}"#, Duration::ZERO),
        (200, "{}", Duration::ZERO),
    ];
    let (result, sent) = against(answers, "TransactWriteItems", Attempts::Retried).await;
    result.expect("the third attempt");
    assert_eq!(sent, 3);

    // Three attempts at most: the error of the last one.
    let answers = vec![(503, "", Duration::ZERO)];
    let (result, sent) = against(answers, "TransactWriteItems", Attempts::Retried).await;
    let e = result.unwrap_err();
    assert_eq!(e.code(), Some("HTTP 503"));
    assert!(e.is_server_error());
    assert_eq!(sent, 3);
}

#[tokio::test]
async fn a_refusal_or_a_call_sent_once_is_not_sent_again() {
    let refused = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"no"}"#;
    let answers = vec![(400, refused, Duration::ZERO)];
    let (result, sent) = against(answers, "TransactWriteItems", Attempts::Retried).await;
    let e = result.unwrap_err();
    assert_eq!(e.code(), Some("TransactionCanceledException"));
    assert!(!e.is_server_error());
    assert_eq!(e.to_string(), "TransactionCanceledException: no");
    assert_eq!(sent, 1);

    let answers = vec![(500, "", Duration::ZERO)];
    let (result, sent) = against(answers, "CreateCase", Attempts::Once).await;
    assert!(result.unwrap_err().is_server_error());
    assert_eq!(sent, 1, "CreateCase is never repeated");
}

#[tokio::test]
async fn a_stalled_answer_is_a_timeout_bounded_by_the_operation() {
    let server = fake(vec![(200, "{}", Duration::from_secs(30))]).await;
    let wire = service(
        &server.url,
        &provider(None),
        Timeouts {
            attempt: Duration::from_millis(200),
            operation: Duration::from_millis(450),
            max_attempts: 10,
        },
    );
    let started = Instant::now();
    let e = wire
        .call("TransactWriteItems", BODY.to_vec(), Attempts::Retried)
        .await
        .unwrap_err();
    assert!(matches!(e, WireError::Transport(_)), "{e:?}");
    assert!(e.to_string().contains("no answer within"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let tries = server.seen.lock().unwrap().len();
    assert!(
        (2..=3).contains(&tries),
        "{tries} attempts in 450 ms of 200 ms each"
    );
}

#[tokio::test]
async fn no_credentials_or_no_server_is_a_transport_error_that_says_so() {
    let server = fake(vec![(200, "{}", Duration::ZERO)]).await;
    let failing = Counting {
        fail: true,
        ..provider(None)
    };
    let e = service(&server.url, &failing, QUICK)
        .call("TransactWriteItems", BODY.to_vec(), Attempts::Once)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no credentials"), "{e}");
    assert!(
        server.seen.lock().unwrap().is_empty(),
        "nothing unsigned is sent"
    );

    let e = service("http://127.0.0.1:9/", &provider(None), QUICK)
        .call("TransactWriteItems", BODY.to_vec(), Attempts::Once)
        .await
        .unwrap_err();
    assert!(matches!(e, WireError::Transport(_)), "{e:?}");
    assert!(e.to_string().starts_with("TransactWriteItems: "), "{e}");
}

#[test]
fn an_endpoint_must_be_an_http_url() {
    let p = provider(None);
    for bad in ["dynamodb.local:8000", "ftp://host/", "not a url"] {
        let e = Service::new(
            Http::new(),
            DYNAMODB,
            bad,
            "us-east-1",
            SharedCredentialsProvider::new(p.clone()),
            QUICK,
        )
        .unwrap_err();
        assert!(e.starts_with("DynamoDB endpoint"), "{bad}: {e}");
    }
}

#[test]
fn request_tokens_are_fresh_and_fit_dynamodb() {
    let a = request_token();
    let b = request_token();
    assert_ne!(a, b);
    // ClientRequestToken: 1 to 36 characters.
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
}

/// Hands out credentials that expire `lifetime` after they are given (never, for None),
/// and fails from the `fail_from`-th request on.
#[derive(Debug, Clone)]
struct Expiring {
    asked: Arc<AtomicUsize>,
    lifetime: Option<Duration>,
    fail_from: usize,
}

impl ProvideCredentials for Expiring {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let n = self.asked.fetch_add(1, Ordering::SeqCst);
        let answer = match n >= self.fail_from {
            true => Err(
                aws_credential_types::provider::error::CredentialsError::provider_error(
                    "the instance metadata service is down",
                ),
            ),
            false => Ok(AwsCredentials::new(
                format!("AKID{n}"),
                "secret",
                None,
                self.lifetime.map(|l| SystemTime::now() + l),
                "test",
            )),
        };
        aws_credential_types::provider::future::ProvideCredentials::ready(answer)
    }
}

fn expiring(lifetime: Option<Duration>, fail_from: usize) -> (Credentials, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let provider = Expiring {
        asked: asked.clone(),
        lifetime,
        fail_from,
    };
    let mut c = Credentials::new(
        SharedCredentialsProvider::new(provider),
        "us-east-1",
        "dynamodb",
    );
    c.ask_again = Duration::from_millis(50);
    (c, asked)
}

#[tokio::test]
async fn credentials_are_renewed_before_they_expire_and_kept_while_renewal_fails() {
    // Credentials within RENEW_BEFORE of their expiry are asked for again, but only after
    // `ask_again`, not on every call.
    let (c, asked) = expiring(Some(Duration::from_secs(60)), 2);
    let now = chrono::Utc::now;
    assert_eq!(c.key(now()).await.unwrap().access_key, "AKID0");
    assert_eq!(c.key(now()).await.unwrap().access_key, "AKID0");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(c.key(now()).await.unwrap().access_key, "AKID1");
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    // The provider fails now: the current credentials still work, so they are used.
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(c.key(now()).await.unwrap().access_key, "AKID1");
    assert_eq!(asked.load(Ordering::SeqCst), 3);

    // Once they have expired, a failed renewal is an error that says why.
    let (c, _) = expiring(Some(Duration::from_millis(30)), 1);
    c.key(now()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    let e = c.key(now()).await.err().expect("expired, not renewed");
    assert!(e.contains("instance metadata service is down"), "{e}");
}

#[tokio::test]
async fn a_new_day_derives_a_new_key_without_asking_again() {
    let (c, asked) = expiring(None, 1);
    let today = chrono::Utc::now();
    let tomorrow = today + chrono::Duration::days(1);
    let a = c.key(today).await.unwrap();
    let b = c.key(tomorrow).await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert!(a.scope.starts_with(&today.format("%Y%m%d/").to_string()));
    assert!(b.scope.starts_with(&tomorrow.format("%Y%m%d/").to_string()));
    assert_eq!(
        b.scope,
        format!("{}/us-east-1/dynamodb/aws4_request", b.day())
    );
}

#[tokio::test]
async fn an_endpoint_without_a_path_is_sent_to_its_root() {
    let server = fake(vec![(200, "{}", Duration::ZERO)]).await;
    let bare = server.url.trim_end_matches('/');
    service(bare, &provider(None), QUICK)
        .call("TransactWriteItems", BODY.to_vec(), Attempts::Once)
        .await
        .expect("POST / reached the server's route");
}

/// A server whose clock is an hour ahead: it refuses a request signed more than five
/// minutes from its time, as AWS does, and says its time in `Date`.
async fn an_hour_ahead() -> Fake {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().route(
        "/",
        post({
            let seen = seen.clone();
            move |headers: HeaderMap| {
                let seen = seen.clone();
                async move {
                    let its_time = chrono::Utc::now() + chrono::Duration::hours(1);
                    let signed = headers["x-amz-date"].to_str().unwrap().to_owned();
                    seen.lock().unwrap().push(headers);
                    let signed = chrono::NaiveDateTime::parse_from_str(&signed, "%Y%m%dT%H%M%SZ")
                        .unwrap()
                        .and_utc();
                    let date = [("date", its_time.to_rfc2822().replace("+0000", "GMT"))];
                    match (its_time - signed).num_minutes().abs() > 5 {
                        true => (
                            StatusCode::BAD_REQUEST,
                            date,
                            r#"{"__type":"com.amazon.coral.service#InvalidSignatureException","message":"Signature expired"}"#,
                        )
                            .into_response(),
                        false => (StatusCode::OK, date, "{}").into_response(),
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Fake { url, seen }
}

#[tokio::test]
async fn a_clock_off_by_an_hour_is_corrected_from_the_answers_date() {
    let server = an_hour_ahead().await;
    let wire = service(&server.url, &provider(None), QUICK);
    // Even a call never sent twice: a refused signature was not carried out.
    wire.call("CreateCase", BODY.to_vec(), Attempts::Once)
        .await
        .expect("signed again with AWS's time");
    assert_eq!(server.seen.lock().unwrap().len(), 2);
    // The skew is kept: the next call is right the first time.
    wire.call("CreateCase", BODY.to_vec(), Attempts::Once)
        .await
        .expect("signed with AWS's time");
    assert_eq!(server.seen.lock().unwrap().len(), 3);

    // A refusal that is not about the time is not sent again.
    let mismatch = r#"{"__type":"InvalidSignatureException","message":"The request signature we calculated does not match"}"#;
    let answers = vec![(400, mismatch, Duration::ZERO)];
    let (result, sent) = against(answers, "CreateCase", Attempts::Retried).await;
    assert_eq!(
        result.unwrap_err().code(),
        Some("InvalidSignatureException")
    );
    assert_eq!(sent, 1);
}

/// A local HTTPS server whose certificate, for `localhost`, is made by the openssl command
/// line (as the SNS tests make theirs) and signed by a CA it returns; it answers every
/// request `{"tls":true}`.
async fn tls_server() -> (String, rustls::pki_types::CertificateDer<'static>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (ca_key, ca, pem, key, cert) = (
        file("ca.key"),
        file("ca.der"),
        file("key.pem"),
        file("key.der"),
        file("cert.der"),
    );
    // Each command's words (the temporary paths have no spaces).
    let openssl = |command: String| {
        let out = std::process::Command::new("openssl")
            .args(command.split(' '))
            .output()
            .expect("the openssl command line");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let rsa = "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out";
    // A CA, and the server's certificate for localhost signed by it.
    openssl(format!("{rsa} {ca_key}"));
    openssl(format!(
        "req -x509 -key {ca_key} -out {ca} -outform DER -days 1 -subj /CN=test-ca"
    ));
    openssl(format!("{rsa} {pem}"));
    openssl(format!(
        "pkcs8 -topk8 -nocrypt -in {pem} -outform DER -out {key}"
    ));
    openssl(format!(
        "req -x509 -CA {ca} -CAkey {ca_key} -key {pem} -out {cert} -outform DER -days 1 \
         -subj /CN=localhost -addext subjectAltName=DNS:localhost \
         -addext basicConstraints=critical,CA:FALSE"
    ));
    let ca = CertificateDer::from(std::fs::read(&ca).unwrap());
    let cert = CertificateDer::from(std::fs::read(&cert).unwrap());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(std::fs::read(&key).unwrap()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let answer = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(br#"{"tls":true}"#),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), answer)
                    .await;
            });
        }
    });
    (format!("https://localhost:{port}/"), ca)
}

/// HTTPS as AWS is reached: the server's certificate verified against the trusted roots
/// (here, only the test server's own), and one it cannot verify refused.
#[tokio::test]
async fn https_is_verified_against_the_trusted_roots() {
    let (url, ca) = tls_server().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let creds = SharedCredentialsProvider::new(provider(None));
    let ring = Arc::new(rustls::crypto::ring::default_provider());
    let trusting = Service::new(
        Http::trusting(ring, roots),
        DYNAMODB,
        &url,
        "us-east-1",
        creds.clone(),
        QUICK,
    )
    .unwrap();
    let answer = trusting
        .call("TransactWriteItems", BODY.to_vec(), Attempts::Once)
        .await
        .expect("over TLS");
    assert_eq!(&answer[..], br#"{"tls":true}"#);

    // The system's roots do not know this certificate: no request is sent over it.
    let system = Service::new(Http::new(), DYNAMODB, &url, "us-east-1", creds, QUICK).unwrap();
    let e = system
        .call("TransactWriteItems", BODY.to_vec(), Attempts::Once)
        .await
        .unwrap_err();
    assert!(matches!(e, WireError::Transport(_)), "{e:?}");
    assert!(e.to_string().contains("certificate"), "{e}");
}
