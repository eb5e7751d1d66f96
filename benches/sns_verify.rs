//! SNS signature verification with a cached key (issue 7 target: under 60 µs).
//!
//! A 2048-bit RSA key and a certificate (CN sns.amazonaws.com, valid now) are generated with
//! the `openssl` command line tool when the benchmark starts; messages are signed here with
//! SignatureVersion 1 (SHA-1) and 2 (SHA-256). The verifier's key cache is warmed before
//! anything is measured, so what is timed is the per-message cost a running server pays.
//! The same check with the pure-Rust `rsa` crate, which the service used before ring, is
//! measured beside it for comparison.
//!
//! ```text
//! cargo bench --bench sns_verify
//! ```

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use criterion::{Criterion, criterion_group, criterion_main};
use cw_support_api::inbound::sns::{
    CertFetcher, SignatureAlgorithm, SigningCert, SnsError, SnsMessage, Verifier, VerifierConfig,
};
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::json;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use x509_cert::der::{DecodePem, Encode};
use x509_cert::spki::DecodePublicKey;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:support-cases";
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line tool is needed by this benchmark");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh signing key and its certificate (PEM).
fn generate_keys() -> (RsaPrivateKey, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "key.pem",
            "-subj",
            "/CN=sns.amazonaws.com",
            "-days",
            "30",
            "-sha256",
            "-out",
            "cert.pem",
        ],
    );
    let key_pem = std::fs::read_to_string(d.join("key.pem")).expect("key");
    let key = RsaPrivateKey::from_pkcs8_pem(&key_pem).expect("PKCS#8 RSA key");
    (key, std::fs::read(d.join("cert.pem")).expect("cert"))
}

fn sign(key: &RsaPrivateKey, alg: SignatureAlgorithm, data: &[u8]) -> String {
    let sig = match alg {
        SignatureAlgorithm::RsaSha1 => key.sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(data)),
        SignatureAlgorithm::RsaSha256 => {
            key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data))
        }
    }
    .expect("sign");
    BASE64.encode(sig)
}

/// A signed Notification carrying a CloudWatch alarm, as SNS sends it.
fn notification(key: &RsaPrivateKey, version: &str) -> SnsMessage {
    let alarm = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/payloads/metric-alarm.json"
    ))
    .expect("fixture");
    let body = json!({
        "Type": "Notification",
        "MessageId": "b3f2c9a4-1d7e-5c3b-9f0a-6e2d8c4b7a15",
        "TopicArn": TOPIC,
        "Subject": "ALARM: \"prod-api-5xx-rate\" in US East (N. Virginia)",
        "Message": alarm,
        "Timestamp": "2026-11-20T03:12:45.201Z",
        "SignatureVersion": version,
        "Signature": "",
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    });
    let mut msg = SnsMessage::parse(&body).expect("parses");
    let alg = SignatureAlgorithm::from_version(version).expect("version");
    msg.signature = sign(key, alg, msg.string_to_sign().as_bytes());
    msg
}

/// Serves the generated certificate for every URL (only called once: the key is cached).
struct OneCert(Vec<u8>);

#[async_trait::async_trait]
impl CertFetcher for OneCert {
    async fn fetch(&self, _url: &url::Url) -> Result<Vec<u8>, SnsError> {
        Ok(self.0.clone())
    }
}

fn bench(c: &mut Criterion) {
    let (key, cert_pem) = generate_keys();
    let verifier = Verifier::new(
        VerifierConfig::default(),
        Arc::new(OneCert(cert_pem.clone())),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let cert = SigningCert::from_pem(&cert_pem, "us-east-1").expect("cert");

    let mut group = c.benchmark_group("sns_verify");
    for (version, alg) in [
        ("1", SignatureAlgorithm::RsaSha1),
        ("2", SignatureAlgorithm::RsaSha256),
    ] {
        let msg = notification(&key, version);
        // Warm the cache: the first verify loads (and parses) the certificate.
        rt.block_on(verifier.verify(&msg)).expect("verifies");

        // What the server pays per message: version, URL checks, base64, cache lookup,
        // validity dates, string to sign, RSA.
        group.bench_function(format!("verifier_cached_key/v{version}"), |b| {
            b.iter(|| rt.block_on(verifier.verify(black_box(&msg))).expect("ok"))
        });

        // The RSA public-key operation and hash alone (SigningCert::verify), for the
        // breakdown.
        let signed = msg.string_to_sign();
        let signature = BASE64.decode(&msg.signature).expect("base64");
        group.bench_function(format!("signing_cert_verify_only/v{version}"), |b| {
            b.iter(|| {
                cert.verify(alg, black_box(signed.as_bytes()), black_box(&signature))
                    .expect("ok")
            })
        });
    }

    // For comparison: the same check with the pure-Rust `rsa` crate (num-bigint-dig), which
    // the service used before ring.
    let der = x509_cert::Certificate::from_pem(&cert_pem).expect("cert");
    let spki = der
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("spki");
    let public = rsa::RsaPublicKey::from_public_key_der(&spki).expect("RSA key");
    for version in ["1", "2"] {
        let msg = notification(&key, version);
        let signed = msg.string_to_sign();
        let signature = BASE64.decode(&msg.signature).expect("base64");
        let check = |data: &[u8], sig: &[u8]| {
            if version == "1" {
                public.verify(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(data), sig)
            } else {
                public.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data), sig)
            }
        };
        check(signed.as_bytes(), &signature).expect("rsa crate verifies");
        group.bench_function(format!("rsa_crate_for_comparison/v{version}"), |b| {
            b.iter(|| check(black_box(signed.as_bytes()), black_box(&signature)).expect("ok"))
        });
    }

    let msg = notification(&key, "2");
    group.bench_function("string_to_sign", |b| {
        b.iter(|| black_box(&msg).string_to_sign())
    });
    // A forged message costs as much as a genuine one (the RSA check is what fails).
    let mut forged = msg.clone();
    forged.message_id.push('0');
    group.bench_function("verifier_cached_key/forged_v2", |b| {
        b.iter(|| {
            rt.block_on(verifier.verify(black_box(&forged)))
                .expect_err("refused")
        })
    });
    // The one-off cost of a cache miss: parsing the certificate.
    group.bench_function("certificate_parse", |b| {
        b.iter(|| SigningCert::from_pem(black_box(&cert_pem), "us-east-1").expect("cert"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
