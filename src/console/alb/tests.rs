use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

use super::*;

const ARN: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/pager/50dc6c495c0c9188";

fn b64url(bytes: &[u8]) -> String {
    // The ALB pads its base64url; so do these tokens.
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

struct Key {
    pair: EcdsaKeyPair,
}

impl Key {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("pair");
        Self { pair }
    }

    fn pem(&self) -> String {
        let mut der = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        der.extend_from_slice(self.pair.public_key().as_ref());
        let b = base64::engine::general_purpose::STANDARD.encode(der);
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &b[..64],
            &b[64..]
        )
    }

    fn token(&self, header: Value, claims: Value) -> String {
        let signed = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .expect("sign");
        format!("{signed}.{}", b64url(sig.as_ref()))
    }
}

/// Serves one key under one id, and records every URL asked for.
struct FakeKeys {
    kid: String,
    pem: String,
    asked: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl AlbKeys for FakeKeys {
    async fn fetch(&self, url: &str) -> Result<String, String> {
        self.asked.lock().expect("lock").push(url.to_owned());
        match url.ends_with(&format!("/{}", self.kid)) {
            true => Ok(self.pem.clone()),
            false => Err("404".into()),
        }
    }
}

const KID: &str = "2a2b4e4a-3b1f-4c7d-9e0f-1a2b3c4d5e6f";

fn now() -> DateTime<Utc> {
    "2026-12-07T03:00:00Z".parse().expect("t")
}

fn header(exp: i64) -> Value {
    serde_json::json!({
        "alg": "ES256", "kid": KID, "signer": ARN, "iss": "https://idp.example.com",
        "client": "client-1", "typ": "JWT", "exp": exp,
    })
}

fn claims(exp: i64) -> Value {
    serde_json::json!({"sub": "1234-5678", "email": "alice@example.com", "exp": exp, "iss": "https://idp.example.com",
        "cognito:groups": ["pager-admins", "", 7], "groups": "oncall"})
}

fn verifier(key: &Key) -> (AlbVerifier, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let keys = FakeKeys {
        kid: KID.into(),
        pem: key.pem(),
        asked: asked.clone(),
    };
    (
        AlbVerifier::new(ARN, Box::new(keys)).expect("verifier"),
        asked,
    )
}

#[tokio::test]
async fn a_valid_alb_token_is_believed_with_its_key_from_the_regions_endpoint_only() {
    let key = Key::new();
    let (v, asked) = verifier(&key);
    let exp = now().timestamp() + 60;
    let who = v
        .verify(&key.token(header(exp), claims(exp)), now())
        .await
        .expect("valid");
    assert_eq!(
        who,
        AlbIdentity {
            subject: "1234-5678".into(),
            email: Some("alice@example.com".into()),
            // Both claims read, a string or an array of strings; anything else left out.
            groups: vec!["oncall".into(), "pager-admins".into()],
        }
    );
    assert_eq!(
        *asked.lock().expect("lock"),
        vec![format!(
            "https://public-keys.auth.elb.eu-west-1.amazonaws.com/{KID}"
        )]
    );
    // The key is kept: a second token asks for nothing.
    v.verify(&key.token(header(exp), claims(exp)), now())
        .await
        .expect("valid");
    assert_eq!(asked.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn every_forged_or_stale_token_is_refused() {
    let key = Key::new();
    let (v, asked) = verifier(&key);
    let exp = now().timestamp() + 60;
    let good = key.token(header(exp), claims(exp));

    let mut other_signer = header(exp);
    other_signer["signer"] = ARN.replace("pager", "evil").into();
    assert!(matches!(
        v.verify(&key.token(other_signer, claims(exp)), now()).await,
        Err(AlbError::Signer(_))
    ));

    let past = now().timestamp() - 1;
    assert_eq!(
        v.verify(&key.token(header(past), claims(exp)), now()).await,
        Err(AlbError::Expired)
    );
    assert_eq!(
        v.verify(&key.token(header(exp), claims(past)), now()).await,
        Err(AlbError::Expired)
    );

    for alg in ["none", "HS256", "RS256", "es256"] {
        let mut h = header(exp);
        h["alg"] = alg.into();
        let unsigned = format!(
            "{}.{}.",
            b64url(h.to_string().as_bytes()),
            b64url(claims(exp).to_string().as_bytes())
        );
        assert_eq!(
            v.verify(&unsigned, now()).await,
            Err(AlbError::Algorithm(alg.into())),
            "{alg}"
        );
    }

    // A key id that would point anywhere but the region's ALB endpoint: refused unread.
    for kid in [
        "../../evil",
        "x@evil.example.com",
        "evil.example.com/key",
        "a b",
        "",
    ] {
        let mut h = header(exp);
        h["kid"] = kid.into();
        assert!(
            matches!(
                v.verify(&key.token(h, claims(exp)), now()).await,
                Err(AlbError::KeyId(_))
            ),
            "{kid}"
        );
    }
    assert!(
        asked.lock().expect("lock").is_empty(),
        "no key fetched for any of these"
    );

    v.verify(&good, now()).await.expect("the good one still is");
}

#[test]
fn only_an_application_load_balancers_arn_is_taken() {
    assert_eq!(parse_alb_arn(ARN).expect("arn").1, "eu-west-1");
    for bad in [
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/x/1",
        "arn:aws:sns:eu-west-1:123456789012:topic",
        "arn:aws:elasticloadbalancing:EU_WEST:123456789012:loadbalancer/app/x/1",
        "pager",
    ] {
        let e = parse_alb_arn(bad).expect_err(bad);
        assert!(
            e.contains("is not an Application Load Balancer's ARN"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn a_changed_payload_another_key_or_junk_is_refused() {
    let key = Key::new();
    let (v, _) = verifier(&key);
    let exp = now().timestamp() + 60;
    let good = key.token(header(exp), claims(exp));
    // A payload changed after signing.
    let (h, rest) = good.split_once('.').expect("parts");
    let (_, sig) = rest.split_once('.').expect("parts");
    let mut changed = claims(exp);
    changed["email"] = "mallory@example.com".into();
    let tampered = format!("{h}.{}.{sig}", b64url(changed.to_string().as_bytes()));
    assert_eq!(v.verify(&tampered, now()).await, Err(AlbError::Signature));

    // Signed by another key under the same id.
    let other = Key::new();
    assert_eq!(
        v.verify(&other.token(header(exp), claims(exp)), now())
            .await,
        Err(AlbError::Signature)
    );

    for junk in ["", "a.b", "a.b.c.d", "!!!.???.***", &"x".repeat(20_000)] {
        assert_eq!(
            v.verify(junk, now()).await,
            Err(AlbError::Malformed),
            "{}",
            junk.len()
        );
    }
}
