//! The console behind a load balancer, through the HTTP edge: `/console/` shows the open
//! pages and who is on duty to a person the ALB's signed token names and `CONSOLE_ROLES`
//! lets in; anyone else (no token, a forged one, a name not given a role) gets the same
//! 401. Alarm text is shown as text, the page is served with a strict CSP.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;

use crate::common::{Options, TestApp};
use cw_support_api::console::SignIn;
use cw_support_api::console::alb::{AlbKeys, AlbVerifier};
use cw_support_api::console::roles::Roles;

const ARN: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/pager/50dc6c495c0c9188";
const KID: &str = "6f0b1c2d-0000-4000-8000-000000000001";

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(b)
}

/// The load balancer's signing key, made here.
struct Alb(EcdsaKeyPair);

impl Alb {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        Self(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("pair"),
        )
    }

    fn pem(&self) -> String {
        let mut der = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        der.extend_from_slice(self.0.public_key().as_ref());
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
    }

    fn token(&self, email: &str) -> String {
        self.token_in(email, &[])
    }

    /// A token naming the groups the identity provider put the person in.
    fn token_in(&self, email: &str, groups: &[&str]) -> String {
        let exp = chrono::Utc::now().timestamp() + 60;
        let header = json!({"alg": "ES256", "kid": KID, "signer": ARN, "exp": exp, "typ": "JWT"});
        let claims = json!({"sub": "s-1", "email": email, "exp": exp, "cognito:groups": groups});
        let signed = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self
            .0
            .sign(&SystemRandom::new(), signed.as_bytes())
            .expect("sign");
        format!("{signed}.{}", b64url(sig.as_ref()))
    }
}

struct Keys(String, Arc<Mutex<usize>>);

#[async_trait]
impl AlbKeys for Keys {
    async fn fetch(&self, url: &str) -> Result<String, String> {
        *self.1.lock().expect("lock") += 1;
        assert_eq!(
            url,
            format!("https://public-keys.auth.elb.eu-west-1.amazonaws.com/{KID}")
        );
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn the_dashboard_shows_pages_and_who_is_on_duty_to_those_let_in_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let alb = Alb::new();
    let console = SignIn::Alb {
        verifier: AlbVerifier::new(ARN, Box::new(Keys(alb.pem(), Arc::default())))
            .expect("verifier"),
        roles: Roles::parse("responder:@example.com,admin:alice@example.com,viewer:group:auditors")
            .expect("roles"),
    };
    let app = TestApp::spawn_with(
        dir.path(),
        Options {
            console: Some(console),
            ..Options::default()
        },
    )
    .await;
    let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    app.page_on_duty(evil).await;
    let alarm = json!({"AlarmName": evil, "NewStateValue": "ALARM", "StateChangeTime": "2026-12-07T03:00:00.000+0000"});
    let (status, body) = app.post(alarm.to_string()).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("paged")),
        "{body}"
    );

    let get = |token: Option<String>| {
        let mut req = app.client.get(app.url("/console/"));
        if let Some(t) = token {
            req = req.header("x-amzn-oidc-data", t);
        }
        req.send()
    };
    let shown = get(Some(alb.token("alice@example.com")))
        .await
        .expect("get");
    assert_eq!(shown.status(), 200);
    let csp = shown.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let page = shown.text().await.expect("body");
    assert!(
        page.contains("<p class=\"who\">alice@example.com (admin)"),
        "{page}"
    );
    assert!(
        page.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; is in ALARM"
        ),
        "{page}"
    );
    assert!(
        !page.contains("<script>") && !page.contains("<img"),
        "{page}"
    );
    assert!(
        page.contains("<tr><td>primary</td><td>alice</td><td>-</td></tr>"),
        "one person, on duty for good: {page}"
    );
    let bob = get(Some(alb.token("bob@example.com")))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(
        bob.contains("<p class=\"who\">bob@example.com (responder)"),
        "{bob}"
    );

    // A group the identity provider names is given its role.
    let auditor = get(Some(alb.token_in("eve@other.org", &["auditors"])))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(
        auditor.contains("<p class=\"who\">eve@other.org (viewer)"),
        "{auditor}"
    );

    // Behind the load balancer there is no login of the service's own.
    for r in [
        app.client
            .get(app.url("/console/login"))
            .send()
            .await
            .expect("get"),
        app.client
            .post(app.url("/console/login"))
            .body("username=a&password=b")
            .send()
            .await
            .expect("post"),
    ] {
        assert_eq!(r.status(), 404);
    }

    // Refused alike: no token, a name given no role, a token of another key.
    let other = Alb::new();
    for token in [
        None,
        Some(alb.token("mallory@other.org")),
        Some(other.token("alice@example.com")),
    ] {
        let r = get(token).await.expect("get");
        assert_eq!(r.status(), 401);
        assert!(
            r.text()
                .await
                .expect("body")
                .contains("Sign in through the load balancer")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn without_a_console_there_is_no_console() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn(dir.path()).await;
    let r = app
        .client
        .get(app.url("/console/"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    app.stop().await;
}

/// `users add` reads the password from standard input and keeps only its Argon2id hash,
/// in a file only the owner reads; bad input is refused with its message and nothing saved.
#[test]
fn local_accounts_keep_only_a_hash_of_the_password() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(crate::common::process::BIN)
            .args(args)
            .env("DATA_DIR", dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write");
        child.wait_with_output().expect("output")
    };
    let o = run(
        &["users", "add", "alice", "--role", "admin"],
        "correct horse battery staple\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "alice can sign in as admin"
    );
    let file = dir.path().join("users.json");
    let text = std::fs::read_to_string(&file).expect("users.json");
    assert!(!text.contains("correct horse"), "{text}");
    assert!(text.contains("$argon2id$"), "{text}");
    assert_eq!(
        std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    for (args, stdin, want) in [
        (
            vec!["users", "add", "bob", "--role", "boss"],
            "long enough password\n",
            "\"boss\" is not a role",
        ),
        (
            vec!["users", "add", "bob", "--role", "viewer"],
            "short\n",
            "a password needs at least 12 characters",
        ),
        (
            vec!["users", "add", "Bob!", "--role", "viewer"],
            "long enough password\n",
            "\"Bob!\" is not a user name",
        ),
        (vec!["users", "delete", "carol"], "", "no user \"carol\""),
    ] {
        let o = run(&args, stdin);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "want {want:?}\ngot {err}");
    }
    let list = run(&["users", "list", "--json"], "");
    let users: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(users, json!([{"name": "alice", "role": "admin"}]));
    assert!(run(&["users", "delete", "alice"], "").status.success());
    let list = run(&["users", "list", "--json"], "");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&list.stdout).expect("json"),
        json!([])
    );
}
