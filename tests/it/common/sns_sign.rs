//! Signed SNS messages for tests of the real binary: a key and a certificate with SNS's
//! subject (CN=sns.amazonaws.com) made by the openssl command, the certificate pinned in a
//! directory for `SNS_CERT_DIR` under the file name of [`CERT_URL`], and messages signed
//! over the exact string SNS signs (computed by the service's own parser).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use cw_support_api::inbound::sns::SnsMessage;
use serde_json::{Value, json};

pub(crate) const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alarms";
pub(crate) const CERT_FILE: &str = "SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";
pub(crate) const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";

pub(crate) struct Signer {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed by these tests");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `offset_secs` from now, as SNS writes a Timestamp.
pub(crate) fn timestamp(offset_secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_secs))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl Signer {
    pub(crate) fn new() -> Self {
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
        std::fs::create_dir(d.join("certs")).expect("mkdir");
        let cert = format!("certs/{CERT_FILE}");
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
                &cert,
            ],
        );
        Self { dir }
    }

    /// The directory to give the service as `SNS_CERT_DIR`.
    pub(crate) fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// Signs `v` (an SNS message as JSON) in place with SignatureVersion 1.
    pub(crate) fn sign(&self, v: &mut Value) {
        v["SignatureVersion"] = json!("1");
        v["Signature"] = json!("");
        let msg = SnsMessage::parse(v).expect("test message parses");
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha1", "-sign", "key.pem"])
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(msg.string_to_sign().as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("signature");
        assert!(out.status.success());
        v["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(out.stdout));
    }

    /// A signed Notification carrying `message`, sent `age_secs` ago.
    pub(crate) fn notification(
        &self,
        topic: &str,
        id: &str,
        message: &str,
        age_secs: i64,
    ) -> Value {
        let mut v = json!({
            "Type": "Notification",
            "MessageId": id,
            "TopicArn": topic,
            "Subject": "ALARM",
            "Message": message,
            "Timestamp": timestamp(-age_secs),
            "SigningCertURL": CERT_URL,
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
        });
        self.sign(&mut v);
        v
    }

    /// A signed SubscriptionConfirmation whose SubscribeURL carries `url_token`.
    pub(crate) fn confirmation(&self, topic: &str, token: &str, url_token: &str) -> Value {
        let region = topic.split(':').nth(3).expect("region");
        let mut v = json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": format!("confirm-{token}"),
            "Token": token,
            "TopicArn": topic,
            "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": format!("https://sns.{region}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token={url_token}"),
            "Timestamp": timestamp(-5),
            "SigningCertURL": CERT_URL,
        });
        self.sign(&mut v);
        v
    }
}

impl Default for Signer {
    fn default() -> Self {
        Self::new()
    }
}
