//! The hot AWS calls, sent by this service itself over AWS's JSON protocols (issue 16): the
//! ledger's two TransactWriteItems (the claim, the commit) and AWS Support's CreateCase,
//! the three calls of every new alarm. Everything else goes through the official SDK.
//!
//! Why: measured against a canned endpoint (`examples/aws_call_cost.rs`), the SDK spent
//! 128-138 µs of CPU per TransactWriteItems (its orchestrator, interceptors, per-call
//! signing-key derivation, the HTTP layers), this client 58, and a new alarm is three calls
//! and little else. What
//! the SDK did for these calls is done here, and kept narrow:
//! - **Endpoints** are the SDK's own: `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, the
//!   profile's `endpoint_url`, else the SDK's endpoint rules for the region ([`endpoint`]).
//! - **Credentials** come from the same provider chain as the SDK clients', cached here
//!   until a few minutes before they expire ([`Credentials`]); the SigV4 signing key is
//!   derived once per day and credentials, not per request.
//! - **Retries**: calls marked [`Attempts::Retried`] are retried on what the SDK's standard
//!   mode retries (its throttling codes, 5xx, transport errors), 3 attempts within an
//!   operation deadline, with full jitter below 50 ms doubling per attempt (botocore's base
//!   for DynamoDB; the SDK's standard mode starts at 1 s, a long wait inside a request
//!   whose sender is waiting); [`Attempts::Once`] (CreateCase) never is.
//! - **Errors** are read as the SDK reads them (`X-Amzn-ErrorType`, else `__type`/`code`,
//!   the namespace stripped) into [`WireError`], whose text never holds credentials.
//!
//! - **Clock skew**: a signature refused for its time (the host's clock more than five
//!   minutes off) teaches the client AWS's time from the answer's `Date`, and the call is
//!   signed again with it, once.
//!
//! Not done here (the SDK clients still do it for every other call): the retry token
//! bucket, response checksums.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use ring::{digest, hmac};

/// The largest answer read (a cancelled transaction of 100 items, each up to 400 KB, with
/// the old items it returns is the largest there is).
const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// Credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// After a failed renewal (or a provider that keeps handing out nearly expired
/// credentials), how long the current ones are used before asking again.
const ASK_AGAIN: Duration = Duration::from_secs(10);
/// The first retry's backoff ceiling; doubled per attempt (full jitter below it).
const BACKOFF: Duration = Duration::from_millis(50);

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

/// One HTTPS connection pool for every service sent to here (HTTP for local stand-ins).
#[derive(Clone, Debug)]
pub struct Http(Client<HttpsConnector<HttpConnector>, Full<Bytes>>);

impl Http {
    /// Trusts the system's root certificates (as the SDK and the SNS certificate fetch do);
    /// with none found, HTTPS calls fail with a clear TLS error and HTTP still works.
    pub fn new() -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        match builder.with_provider_and_native_roots(provider.clone()) {
            Ok(b) => Self::over(b),
            Err(e) => {
                tracing::warn!(error = %e, "no system root certificates; HTTPS calls to AWS will fail");
                Self::trusting(provider, rustls::RootCertStore::empty())
            }
        }
    }

    /// Trusting only `roots` (tests: a local TLS server's own certificate).
    fn trusting(
        provider: Arc<rustls::crypto::CryptoProvider>,
        roots: rustls::RootCertStore,
    ) -> Self {
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self::over(hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config))
    }

    fn over(
        tls: hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes>,
    ) -> Self {
        // Requests are small and answered at once: no Nagle delay on a request's last
        // segment.
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let connector = tls.https_or_http().enable_http1().wrap_connector(tcp);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            // AWS closes idle connections after about a minute; a shorter idle time here
            // avoids sending on one it has just closed.
            .pool_idle_timeout(Duration::from_secs(20))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Self(client)
    }
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

/// The JSON protocol of a service: awsJson1_0 (DynamoDB) or awsJson1_1 (AWS Support).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// The SigV4 signing name and the SDK's service id (for `AWS_ENDPOINT_URL_<ID>`).
    pub signing_name: &'static str,
    pub service_id: &'static str,
    /// `X-Amz-Target: <prefix>.<Operation>`.
    pub target_prefix: &'static str,
    pub content_type: &'static str,
}

pub const DYNAMODB: Protocol = Protocol {
    signing_name: "dynamodb",
    service_id: "DynamoDB",
    target_prefix: "DynamoDB_20120810",
    content_type: "application/x-amz-json-1.0",
};

pub const SUPPORT: Protocol = Protocol {
    signing_name: "support",
    service_id: "Support",
    target_prefix: "AWSSupport_20130415",
    content_type: "application/x-amz-json-1.1",
};

/// How long a call may take: each attempt, and all of them with their backoff.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub attempt: Duration,
    pub operation: Duration,
    /// Attempts of a [`Attempts::Retried`] call (the SDK's standard mode: 3).
    pub max_attempts: u32,
}

/// Whether a call may be sent again after a failure that may have been carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempts {
    /// Never sent twice (CreateCase: an uncertain outcome is settled by the case logic).
    Once,
    /// Retried (idempotent calls: TransactWriteItems with a ClientRequestToken).
    Retried,
}

/// A failed call. Its text (`Display`) is what the logs get: an error code and AWS's
/// message, or what went wrong on the way; never a credential or a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// AWS answered with an error.
    Service {
        status: u16,
        code: String,
        message: String,
        body: Bytes,
        /// AWS's clock minus this host's, from the answer's `Date`.
        skew: Option<chrono::Duration>,
    },
    /// Not sent (no credentials, no connection) or no usable answer (timeout, connection
    /// lost, an unreadable answer): the call may or may not have been carried out.
    Transport(String),
}

impl WireError {
    /// The error code AWS answered with (`ThrottlingException`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            Self::Transport(_) => None,
        }
    }

    /// AWS failed while handling the call (a 5xx): it may have been carried out.
    pub fn is_server_error(&self) -> bool {
        matches!(self, Self::Service { status, .. } if *status >= 500)
    }

    /// Worth another attempt: throttled, a 5xx, or no answer.
    fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Service { status, code, .. } => {
                *status >= 500
                    || THROTTLING.contains(&code.as_str())
                    || TRANSIENT.contains(&code.as_str())
            }
        }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Service { code, message, .. } => write!(f, "{code}: {message}"),
            Self::Transport(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for WireError {}

/// The error codes the SDK's standard retry mode treats as throttling.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// And as transient.
const TRANSIENT: &[&str] = &["RequestTimeout", "RequestTimeoutException", "InternalError"];

/// Where a service's calls go, if configured: the SDK's own resolution, so that both
/// clients of a service always reach the same endpoint. An explicit `endpoint_url` on the
/// SDK configuration wins, then the service's own setting (`AWS_ENDPOINT_URL_DYNAMODB`, the
/// profile's services section), then `AWS_ENDPOINT_URL`. None: the SDK's endpoint rules
/// for the region apply (`aws::AwsClients::from_sdk`).
pub fn endpoint_url(sdk: &aws_config::SdkConfig, protocol: Protocol) -> Option<String> {
    if sdk.get_origin("endpoint_url").is_client_config() {
        return sdk.endpoint_url().map(str::to_owned);
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id(protocol.service_id)
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|conf| conf.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_owned))
}

/// A provider with no credentials, for an SDK configuration that has none.
#[derive(Debug)]
pub struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no AWS credentials provider is configured",
            ),
        ))
    }
}

/// One service's calls: its endpoint, region, credentials and timeouts.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    http: Http,
    protocol: Protocol,
    uri: hyper::Uri,
    /// What the `Host` header says, and what is signed.
    host: HeaderValue,
    /// The canonical URI of the signature (the endpoint's path).
    path: String,
    credentials: Credentials,
    timeouts: Timeouts,
    /// AWS's clock minus this host's, in ms, as learnt from refused signatures.
    skew_ms: AtomicI64,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("service", &self.inner.protocol.signing_name)
            .field("endpoint", &self.inner.uri)
            .field("region", &self.inner.credentials.region)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Calls to `endpoint` (an absolute http(s) URL), signed for `region` with credentials
    /// from `provider`.
    pub fn new(
        http: Http,
        protocol: Protocol,
        endpoint: &str,
        region: &str,
        provider: SharedCredentialsProvider,
        timeouts: Timeouts,
    ) -> Result<Self, String> {
        let uri: hyper::Uri = endpoint
            .parse()
            .map_err(|e| format!("{} endpoint {endpoint:?}: {e}", protocol.service_id))?;
        let authority = match (uri.scheme_str(), uri.authority()) {
            (Some("http" | "https"), Some(a)) => a.as_str().to_owned(),
            _ => {
                return Err(format!(
                    "{} endpoint {endpoint:?} is not an http(s) URL",
                    protocol.service_id
                ));
            }
        };
        let host = HeaderValue::from_str(&authority)
            .map_err(|e| format!("{} endpoint {endpoint:?}: {e}", protocol.service_id))?;
        // `https://host` is sent, and signed, as `https://host/`.
        let (uri, path) = match uri.path() {
            "" | "/" => (
                hyper::Uri::try_from(format!(
                    "{}://{authority}/",
                    uri.scheme_str().unwrap_or("https")
                ))
                .map_err(|e| format!("{} endpoint {endpoint:?}: {e}", protocol.service_id))?,
                "/".to_owned(),
            ),
            p => (uri.clone(), p.to_owned()),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                protocol,
                uri,
                host,
                path,
                credentials: Credentials::new(provider, region, protocol.signing_name),
                timeouts,
                skew_ms: AtomicI64::new(0),
            }),
        })
    }

    /// Where the calls go.
    pub fn endpoint(&self) -> String {
        self.inner.uri.to_string()
    }

    /// The same calls signed with other credentials (another account's role).
    pub fn with_credentials(&self, provider: SharedCredentialsProvider) -> Self {
        let i = &self.inner;
        Self {
            inner: Arc::new(Inner {
                http: i.http.clone(),
                protocol: i.protocol,
                uri: i.uri.clone(),
                host: i.host.clone(),
                path: i.path.clone(),
                credentials: Credentials::new(
                    provider,
                    &i.credentials.region,
                    i.protocol.signing_name,
                ),
                timeouts: i.timeouts,
                skew_ms: AtomicI64::new(i.skew_ms.load(Ordering::Relaxed)),
            }),
        }
    }

    /// Sends `operation` with a JSON `body`; the answer's body on a 2xx.
    pub async fn call(
        &self,
        operation: &str,
        body: Vec<u8>,
        attempts: Attempts,
    ) -> Result<Bytes, WireError> {
        let i = &self.inner;
        let started = Instant::now();
        let deadline = started + i.timeouts.operation;
        let target = HeaderValue::from_str(&format!("{}.{operation}", i.protocol.target_prefix))
            .map_err(|e| WireError::Transport(format!("{operation}: {e}")))?;
        let body = Bytes::from(body);
        let payload_hash = hex(digest::digest(&digest::SHA256, &body).as_ref());
        let max = match attempts {
            Attempts::Once => 1,
            Attempts::Retried => i.timeouts.max_attempts.max(1),
        };
        let mut attempt = 1;
        let mut skew_retried = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let result = match tokio::time::timeout(
                i.timeouts.attempt.min(left),
                self.attempt(operation, &target, &body, &payload_hash),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(WireError::Transport(format!(
                    "{operation}: no answer within {:?}",
                    i.timeouts.attempt.min(left)
                ))),
            };
            let error = match result {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            // A signature refused for this host's clock was not carried out: once the
            // skew is learnt from AWS's `Date`, sending it again is safe, even for Once.
            if !skew_retried && self.learnt_skew(&error) {
                skew_retried = true;
                continue;
            }
            if attempt >= max || !error.is_retryable() {
                return Err(error);
            }
            let pause = backoff(attempt);
            if Instant::now() + pause >= deadline {
                return Err(error);
            }
            tracing::debug!(operation, attempt, error = %error, "retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        operation: &str,
        target: &HeaderValue,
        body: &Bytes,
        payload_hash: &str,
    ) -> Result<Bytes, WireError> {
        let i = &self.inner;
        // One clock reading for the key's day and the request's date, so that they agree
        // at midnight too; corrected by the skew AWS's answers showed.
        let now =
            chrono::Utc::now() + chrono::Duration::milliseconds(i.skew_ms.load(Ordering::Relaxed));
        let key = i
            .credentials
            .key(now)
            .await
            .map_err(|e| WireError::Transport(format!("{operation}: no credentials: {e}")))?;
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let authorization = key.authorization(&Canonical {
            path: &i.path,
            content_type: i.protocol.content_type,
            host: i.host.to_str().unwrap_or_default(),
            amz_date: &amz_date,
            target: target.to_str().unwrap_or_default(),
            payload_hash,
        });
        let mut request = hyper::Request::post(i.uri.clone())
            .header(HOST, i.host.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static(i.protocol.content_type),
            )
            .header(X_AMZ_DATE, amz_date)
            .header(X_AMZ_TARGET, target.clone());
        if let Some(token) = &key.session_token {
            request = request.header(X_AMZ_SECURITY_TOKEN, token.clone());
        }
        let request = request
            .header(AUTHORIZATION, authorization)
            .body(Full::new(body.clone()))
            .map_err(|e| WireError::Transport(format!("{operation}: {e}")))?;
        let response = i.http.0.request(request).await.map_err(|e| {
            WireError::Transport(format!("{operation}: {}", crate::errors::Chain(&e)))
        })?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| WireError::Transport(format!("{operation}: reading the answer: {e}")))?
            .to_bytes();
        if parts.status.is_success() {
            return Ok(body);
        }
        let mut error = service_error(parts.status.as_u16(), &parts.headers, body);
        if let WireError::Service { skew, .. } = &mut error {
            *skew = parts
                .headers
                .get(hyper::header::DATE)
                .and_then(|d| d.to_str().ok())
                .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                .map(|d| d.with_timezone(&chrono::Utc) - chrono::Utc::now());
        }
        Err(error)
    }

    /// Whether `error` refused the signature for this host's clock and its answer showed by
    /// how much the clock is off: then that is kept (as the SDK does) and true. A skew of
    /// under a minute is not what made AWS refuse (it allows five).
    fn learnt_skew(&self, error: &WireError) -> bool {
        let WireError::Service {
            code,
            skew: Some(skew),
            ..
        } = error
        else {
            return false;
        };
        if !SKEW_CODES.contains(&code.as_str()) {
            return false;
        }
        let ms = skew.num_milliseconds();
        let before = self.inner.skew_ms.swap(ms, Ordering::Relaxed);
        if (ms - before).abs() < 60_000 {
            return false;
        }
        tracing::warn!(
            skew_seconds = ms / 1000,
            "this host's clock is off from AWS's; requests are signed with AWS's time"
        );
        true
    }
}

/// The error codes of a signature refused for its time (the SDK's list).
const SKEW_CODES: &[&str] = &[
    "InvalidSignatureException",
    "RequestExpired",
    "RequestInTheFuture",
    "RequestTimeTooSkewed",
    "SignatureDoesNotMatch",
    "AuthFailure",
];

/// An error answer as the SDK reads awsJson errors: the code from `X-Amzn-ErrorType`, else
/// the body's `__type` (or `code`), without its namespace (`...#`) or suffix (`:...`).
fn service_error(status: u16, headers: &hyper::HeaderMap, body: Bytes) -> WireError {
    #[derive(serde::Deserialize, Default)]
    struct ErrorBody {
        #[serde(rename = "__type", alias = "code")]
        kind: Option<String>,
        #[serde(alias = "Message", alias = "errorMessage")]
        message: Option<String>,
    }
    let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
    let raw = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(parsed.kind)
        .unwrap_or_else(|| format!("HTTP {status}"));
    let code = raw.rsplit('#').next().unwrap_or(&raw);
    let code = code.split(':').next().unwrap_or(code).to_owned();
    WireError::Service {
        status,
        code,
        message: parsed.message.unwrap_or_default(),
        body,
        skew: None,
    }
}

/// Full jitter below `BACKOFF × 2^(attempt-1)`.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF.saturating_mul(1 << (attempt - 1).min(8));
    let mut byte = [0u8; 2];
    let fraction = match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte)
    {
        Ok(()) => f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX),
        Err(_) => 0.5,
    };
    ceiling.mul_f64(fraction)
}

/// Credentials from a provider, cached with the day's SigV4 signing key derived from them.
struct Credentials {
    provider: SharedCredentialsProvider,
    region: String,
    service: &'static str,
    current: RwLock<Option<Arc<SigningKey>>>,
    /// One renewal at a time.
    renewing: tokio::sync::Mutex<()>,
    renew_before: Duration,
    ask_again: Duration,
}

/// What signing needs, for one set of credentials and one day.
pub(crate) struct SigningKey {
    access_key: String,
    session_token: Option<HeaderValue>,
    /// `YYYYMMDD/region/service/aws4_request`.
    scope: String,
    key: hmac::Key,
    /// Ask the provider again after this.
    renew_at: SystemTime,
    /// Unusable after this.
    expires: Option<SystemTime>,
    /// The credentials, kept to derive the next day's key without asking the provider.
    secret: Secret,
}

/// A secret access key: never printed.
struct Secret(String);

impl SigningKey {
    /// The key for `day` (`YYYYMMDD`), derived as SigV4 says.
    pub(crate) fn derive(
        access_key: &str,
        secret: &str,
        session_token: Option<&str>,
        day: &str,
        region: &str,
        service: &str,
    ) -> Result<Self, String> {
        let mut k = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes()),
            day.as_bytes(),
        );
        for part in [region, service, "aws4_request"] {
            k = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
                part.as_bytes(),
            );
        }
        let session_token = session_token
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| "the session token is not a valid header value".to_owned())?;
        Ok(Self {
            access_key: access_key.to_owned(),
            session_token,
            scope: format!("{day}/{region}/{service}/aws4_request"),
            key: hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
            // Until `until` says otherwise: renew at once, never expired.
            renew_at: SystemTime::UNIX_EPOCH,
            expires: None,
            secret: Secret(secret.to_owned()),
        })
    }

    /// When to ask the provider again, and when the credentials stop working.
    fn until(self, renew_at: SystemTime, expires: Option<SystemTime>) -> Self {
        Self {
            renew_at,
            expires,
            ..self
        }
    }

    /// The key's day, `YYYYMMDD` (its scope's first part).
    fn day(&self) -> &str {
        self.scope.split('/').next().unwrap_or_default()
    }

    /// The `Authorization` header of one request (SigV4, signed headers: content-type,
    /// host, x-amz-date, x-amz-security-token when there is one, x-amz-target).
    pub(crate) fn authorization(&self, c: &Canonical<'_>) -> String {
        let (signed, token_line) = match &self.session_token {
            Some(t) => (
                "content-type;host;x-amz-date;x-amz-security-token;x-amz-target",
                format!("x-amz-security-token:{}\n", t.to_str().unwrap_or_default()),
            ),
            None => ("content-type;host;x-amz-date;x-amz-target", String::new()),
        };
        let canonical = format!(
            "POST\n{}\n\ncontent-type:{}\nhost:{}\nx-amz-date:{}\n{token_line}x-amz-target:{}\n\n{signed}\n{}",
            c.path, c.content_type, c.host, c.amz_date, c.target, c.payload_hash
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{}\n{}",
            c.amz_date,
            self.scope,
            hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
        );
        let signature = hex(hmac::sign(&self.key, to_sign.as_bytes()).as_ref());
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={signed}, Signature={signature}",
            self.access_key, self.scope
        )
    }
}

/// What one request's signature covers.
pub(crate) struct Canonical<'a> {
    pub path: &'a str,
    pub content_type: &'a str,
    pub host: &'a str,
    pub amz_date: &'a str,
    pub target: &'a str,
    pub payload_hash: &'a str,
}

impl Credentials {
    fn new(provider: SharedCredentialsProvider, region: &str, service: &'static str) -> Self {
        Self {
            provider,
            region: region.to_owned(),
            service,
            current: RwLock::new(None),
            renewing: tokio::sync::Mutex::new(()),
            renew_before: RENEW_BEFORE,
            ask_again: ASK_AGAIN,
        }
    }

    /// The current key for `day` while it needs no renewal.
    fn cached(&self, now: SystemTime, day: &str) -> Option<Arc<SigningKey>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|k| now < k.renew_at && k.day() == day)
            .cloned()
    }

    /// The current key for `day`, unless it has expired.
    fn usable(&self, now: SystemTime, day: &str) -> Option<Arc<SigningKey>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|k| k.day() == day && k.expires.is_none_or(|e| now < e))
            .cloned()
    }

    /// The signing key for `at`'s day: from the cache, derived again on a new day, or from
    /// credentials asked of the provider when the cached ones are about to expire. While
    /// one call renews them, the others sign with the current ones if they still work.
    async fn key(&self, at: chrono::DateTime<chrono::Utc>) -> Result<Arc<SigningKey>, String> {
        let now = SystemTime::from(at);
        let day = at.format("%Y%m%d").to_string();
        if let Some(key) = self.cached(now, &day) {
            return Ok(key);
        }
        let _one = match self.renewing.try_lock() {
            Ok(guard) => guard,
            Err(_) => match self.usable(now, &day) {
                Some(key) => return Ok(key),
                None => self.renewing.lock().await,
            },
        };
        if let Some(key) = self.cached(now, &day) {
            return Ok(key);
        }
        let previous = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let again = |p: &SigningKey| {
            SigningKey::derive(
                &p.access_key,
                &p.secret.0,
                p.session_token.as_ref().and_then(|t| t.to_str().ok()),
                &day,
                &self.region,
                self.service,
            )
        };
        let key = match &previous {
            // Still fresh: only the day changed.
            Some(p) if now < p.renew_at => again(p)?.until(p.renew_at, p.expires),
            _ => match self.provider.provide_credentials().await {
                Ok(c) => {
                    let renew_at = match c.expiry() {
                        None => now + Duration::from_secs(365 * 86_400),
                        Some(e) => e
                            .checked_sub(self.renew_before)
                            .filter(|r| *r > now + self.ask_again)
                            .unwrap_or(now + self.ask_again),
                    };
                    SigningKey::derive(
                        c.access_key_id(),
                        c.secret_access_key(),
                        c.session_token(),
                        &day,
                        &self.region,
                        self.service,
                    )?
                    .until(renew_at, c.expiry())
                }
                Err(e) => match previous.as_deref() {
                    // The old credentials still work: use them a little longer.
                    Some(p) if p.expires.is_none_or(|x| now < x) => {
                        tracing::warn!(error = %crate::errors::Chain(&e), "could not renew AWS credentials; using the current ones");
                        again(p)?.until(now + self.ask_again, p.expires)
                    }
                    _ => return Err(crate::errors::Chain(&e).to_string()),
                },
            },
        };
        let key = Arc::new(key);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(key.clone());
        Ok(key)
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A fresh random token (32 hex digits): the ClientRequestToken that makes a retried
/// TransactWriteItems idempotent.
pub fn request_token() -> String {
    let mut bytes = [0u8; 16];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        // No randomness: the clock, which is unique enough for ten minutes of retries.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = nanos.to_le_bytes();
    }
    hex(&bytes)
}

#[cfg(test)]
mod tests;
