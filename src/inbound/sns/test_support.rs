//! Test-only helpers: RSA keys and certificates generated at test time with the `openssl`
//! CLI, messages signed by the tests themselves, counting fake fetchers, a loopback TLS
//! server (`openssl s_server -HTTP`) and the location of the real AWS vectors.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::json;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use url::Url;

use super::cert::SignatureAlgorithm;
use super::error::SnsError;
use super::http::CertFetcher;
use super::message::{MessageKind, SnsMessage};

pub(crate) const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alarms";
pub(crate) const CERT_FILE: &str = "SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";
pub(crate) const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";

/// Runs `openssl` in `dir` and fails the test loudly if it is missing or fails.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed by these tests");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).expect("generated file readable")
}

/// One signing key with certificates for several subjects, plus an unrelated key's cert.
pub(crate) struct TestKeys {
    pub(crate) private: RsaPrivateKey,
    pub(crate) private_pem: Vec<u8>,
    /// CN=sns.amazonaws.com, valid from now for 30 days.
    pub(crate) good_pem: Vec<u8>,
    /// CN=evil.example.com, same key.
    pub(crate) wrong_cn_pem: Vec<u8>,
    /// CN=sns-signing.us-east-1.amazonaws.com, same key.
    pub(crate) signing_east_pem: Vec<u8>,
    /// CN=sns.amazonaws.com but another key.
    pub(crate) other_key_pem: Vec<u8>,
}

impl TestKeys {
    fn generate() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for key in ["key.pem", "other.key"] {
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                    key,
                ],
            );
        }
        for (key, cn, out) in [
            ("key.pem", "/CN=sns.amazonaws.com", "good.pem"),
            ("key.pem", "/CN=evil.example.com", "wrong.pem"),
            (
                "key.pem",
                "/CN=sns-signing.us-east-1.amazonaws.com",
                "signing.pem",
            ),
            ("other.key", "/CN=sns.amazonaws.com", "other.pem"),
        ] {
            openssl(
                d,
                &[
                    "req", "-x509", "-new", "-key", key, "-subj", cn, "-days", "30", "-sha256",
                    "-out", out,
                ],
            );
        }
        let private_pem = read(d, "key.pem");
        let private =
            RsaPrivateKey::from_pkcs8_pem(std::str::from_utf8(&private_pem).expect("PEM is ASCII"))
                .expect("openssl wrote a PKCS#8 RSA key");
        TestKeys {
            private,
            private_pem,
            good_pem: read(d, "good.pem"),
            wrong_cn_pem: read(d, "wrong.pem"),
            signing_east_pem: read(d, "signing.pem"),
            other_key_pem: read(d, "other.pem"),
        }
    }

    pub(crate) fn sign_with(key: &RsaPrivateKey, alg: SignatureAlgorithm, data: &[u8]) -> Vec<u8> {
        match alg {
            SignatureAlgorithm::RsaSha1 => {
                key.sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(data))
            }
            SignatureAlgorithm::RsaSha256 => {
                key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data))
            }
        }
        .expect("signing works")
    }

    /// Signs `msg` in place per its SignatureVersion (SHA-1 unless it says "2").
    pub(crate) fn sign(&self, msg: &mut SnsMessage) {
        let alg = if msg.signature_version == "2" {
            SignatureAlgorithm::RsaSha256
        } else {
            SignatureAlgorithm::RsaSha1
        };
        let sig = Self::sign_with(&self.private, alg, msg.string_to_sign().as_bytes());
        msg.signature = BASE64.encode(sig);
    }
}

/// Keys are generated once per test binary: RSA key generation is the slow part.
pub(crate) fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(TestKeys::generate)
}

/// The token of [`confirmation`] messages (and of their SubscribeURL).
pub(crate) const CONFIRMATION_TOKEN: &str = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736";

/// A minute ago, as SNS writes it: test messages are fresh (old ones are replays).
pub(crate) fn recent_timestamp() -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A signed Notification from [`TOPIC`] pointing at [`CERT_URL`].
pub(crate) fn notification(version: &str, subject: Option<&str>) -> SnsMessage {
    let mut body = json!({
        "Type": "Notification",
        "MessageId": "da41e39f-ea4d-435a-b922-c6aae3915ebe",
        "TopicArn": TOPIC,
        "Message": "{\"AlarmName\":\"cpu-high\",\"NewStateValue\":\"ALARM\"}\nsecond line",
        "Timestamp": recent_timestamp(),
        "SignatureVersion": version,
        "Signature": "",
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    });
    if let Some(s) = subject {
        body["Subject"] = json!(s);
    }
    let mut msg = SnsMessage::parse(&body).expect("test message parses");
    keys().sign(&mut msg);
    msg
}

/// A signed SubscriptionConfirmation or UnsubscribeConfirmation.
pub(crate) fn confirmation(kind: MessageKind, version: &str) -> SnsMessage {
    let body = json!({
        "Type": kind.as_str(),
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": CONFIRMATION_TOKEN,
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": format!("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={CONFIRMATION_TOKEN}"),
        "Timestamp": recent_timestamp(),
        "SignatureVersion": version,
        "Signature": "",
        "SigningCertURL": CERT_URL,
    });
    let mut msg = SnsMessage::parse(&body).expect("test message parses");
    keys().sign(&mut msg);
    msg
}

/// A `CertFetcher` that serves fixed bodies and counts its calls.
#[derive(Default)]
pub(crate) struct FakeFetcher {
    bodies: Mutex<HashMap<String, Vec<u8>>>,
    calls: AtomicUsize,
    fail_next: AtomicUsize,
    delay: Option<Duration>,
}

impl FakeFetcher {
    /// Serves `pem` at [`CERT_URL`].
    pub(crate) fn serving(pem: &[u8]) -> Arc<Self> {
        let f = FakeFetcher::default();
        f.add(CERT_URL, pem);
        Arc::new(f)
    }

    /// Like `serving`, but every fetch takes `delay` (to overlap concurrent first uses).
    pub(crate) fn slow(pem: &[u8], delay: Duration) -> Arc<Self> {
        let f = FakeFetcher {
            delay: Some(delay),
            ..FakeFetcher::default()
        };
        f.add(CERT_URL, pem);
        Arc::new(f)
    }

    pub(crate) fn add(&self, url: &str, pem: &[u8]) {
        self.bodies
            .lock()
            .expect("lock")
            .insert(url.to_owned(), pem.to_vec());
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The next `n` fetches fail as a network failure would.
    pub(crate) fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl CertFetcher for FakeFetcher {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, SnsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(SnsError::CertificateUnavailable("simulated outage".into()));
        }
        self.bodies
            .lock()
            .expect("lock")
            .get(url.as_str())
            .cloned()
            .ok_or_else(|| SnsError::UntrustedCertificate("HTTP 404".into()))
    }
}

/// A `CertFetcher` for tests that must never download anything.
pub(crate) struct PanicFetcher;

#[async_trait]
impl CertFetcher for PanicFetcher {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, SnsError> {
        panic!("no certificate download expected, got one for {url}");
    }
}

/// The real AWS-signed vectors: `SNS_FIXTURES_DIR` when set, otherwise
/// `../shared/fixtures/sns-aws-signed`; a missing set fails the test unless opted out
/// ([`crate::inbound::shared_fixtures`]).
pub(crate) fn fixtures_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SNS_FIXTURES_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "SNS_FIXTURES_DIR {} is not a directory",
            dir.display()
        );
        return Some(dir);
    }
    crate::inbound::shared_fixtures::dir("fixtures/sns-aws-signed")
}

/// A loopback HTTPS server (`openssl s_server -HTTP`): each file under its root is sent
/// verbatim as the whole HTTP response, so tests can craft statuses, redirects and sizes.
/// The server certificate is for `sns.us-east-1.amazonaws.com`, issued by a test CA.
pub(crate) struct TlsServer {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) ca_pem: Vec<u8>,
    root: tempfile::TempDir,
}

impl TlsServer {
    pub(crate) fn start() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let d = root.path();
        issue_server_certificate(d);
        let (child, addr) = spawn_s_server(d);
        TlsServer {
            child,
            addr,
            ca_pem: read(d, "ca.pem"),
            root,
        }
    }

    /// Makes `GET /<path_and_query>` answer with `response` (status line, headers, body).
    pub(crate) fn serve(&self, path_and_query: &str, response: &[u8]) {
        std::fs::write(self.root.path().join("www").join(path_and_query), response)
            .expect("write response file");
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        // Only the child this test started, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA (`ca.pem`, `ca.key`) and the leaf it issues for `sns.us-east-1.amazonaws.com`
/// (`leaf.pem`, `leaf.key`), written into `d`.
fn issue_server_certificate(d: &Path) {
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=cw-support-api test CA",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=sns.us-east-1.amazonaws.com",
        ],
    );
    std::fs::write(
        d.join("leaf.ext"),
        "subjectAltName=DNS:sns.us-east-1.amazonaws.com\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
}

/// Starts `openssl s_server` serving `d/www` with the leaf certificate, and waits until it
/// says where it listens.
fn spawn_s_server(d: &Path) -> (Child, SocketAddr) {
    std::fs::create_dir(d.join("www")).expect("mkdir");
    let mut child = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            "127.0.0.1:0",
            "-cert",
            "../leaf.pem",
            "-key",
            "../leaf.key",
            "-HTTP",
        ])
        .current_dir(d.join("www"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    let addr = loop {
        line.clear();
        let n = lines.read_line(&mut line).expect("read s_server output");
        assert!(n > 0, "openssl s_server exited before listening");
        if let Some(a) = line.trim().strip_prefix("ACCEPT ") {
            break a.parse::<SocketAddr>().expect("ACCEPT address");
        }
    };
    // Keep draining so a chatty server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = lines.read_to_end(&mut sink);
    });
    (child, addr)
}
