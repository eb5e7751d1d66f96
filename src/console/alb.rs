//! Who is signed in, behind an Application Load Balancer with OIDC authentication: the ALB
//! adds `x-amzn-oidc-data`, a JWT it signs with ES256. Anyone who can reach the service
//! around the load balancer can send that header too, so it is believed only when:
//!
//! - its algorithm is ES256 (never `none`, never another);
//! - its `signer` is this load balancer's ARN (`CONSOLE_ALB_ARN`);
//! - its `kid` is a key id and nothing else, so the key is fetched from the region's ALB
//!   public-key endpoint only (`https://public-keys.auth.elb.REGION.amazonaws.com/KID`);
//! - it has not expired (`exp`, in the header as the ALB writes it, and in the claims);
//! - its signature verifies under that key, over the header and claims exactly as sent.
//!
//! The ALB writes base64url with padding; both forms are read.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::Value;

/// The longest token read: an ALB's is a few kilobytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token is not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlbError {
    #[error("not a JWT (three base64url parts of JSON)")]
    Malformed,
    #[error("algorithm {0:?} is not ES256")]
    Algorithm(String),
    #[error("signed by {0:?}, not this load balancer")]
    Signer(String),
    #[error("key id {0:?} is not a key id")]
    KeyId(String),
    #[error("expired")]
    Expired,
    #[error("the signature does not verify")]
    Signature,
    #[error("the load balancer's key could not be had: {0}")]
    Key(String),
}

/// Where the load balancer's public keys are read (the region's endpoint; tests give their
/// own).
#[async_trait]
pub trait AlbKeys: Send + Sync {
    /// The PEM of the key at `url`.
    async fn fetch(&self, url: &str) -> Result<String, String>;
}

/// The region's ALB public-key endpoint over HTTPS: no redirects followed (a key is
/// served where it is asked for, or not at all), a short timeout, a bounded answer.
pub struct HttpAlbKeys {
    client: reqwest::Client,
}

impl HttpAlbKeys {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(5))
            .build()?;
        Ok(Self { client })
    }
}

#[async_trait]
impl AlbKeys for HttpAlbKeys {
    async fn fetch(&self, url: &str) -> Result<String, String> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > 4096 {
            return Err("an answer too large for a public key".into());
        }
        String::from_utf8(body.to_vec()).map_err(|_| "not text".into())
    }
}

/// The signed-in person, as the identity provider named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbIdentity {
    pub subject: String,
    pub email: Option<String>,
    /// The groups the identity provider says the person is in (`groups`, or Cognito's
    /// `cognito:groups`), for `CONSOLE_ROLES`' `ROLE:group:NAME`.
    pub groups: Vec<String>,
}

/// Groups read from a token at most, and the longest name taken (bounded input).
const MAX_GROUPS: usize = 100;
const MAX_GROUP_CHARS: usize = 256;

/// The groups a token's claims name: an array of strings or one string, under `groups` or
/// `cognito:groups`; anything else is no group.
fn groups(claims: &serde_json::Value) -> Vec<String> {
    ["groups", "cognito:groups"]
        .iter()
        .flat_map(|k| match &claims[*k] {
            serde_json::Value::String(g) => vec![g.as_str()],
            serde_json::Value::Array(a) => a.iter().filter_map(|g| g.as_str()).collect(),
            _ => Vec::new(),
        })
        .filter(|g| !g.is_empty() && g.chars().count() <= MAX_GROUP_CHARS)
        .take(MAX_GROUPS)
        .map(str::to_owned)
        .collect()
}

/// Verifies one load balancer's tokens, keeping the keys it fetched (they do not change
/// under a key id).
pub struct AlbVerifier {
    signer: String,
    region: String,
    keys: Box<dyn AlbKeys>,
    cache: Mutex<HashMap<String, Vec<u8>>>,
}

/// The load balancer's ARN and the region it is in (from the ARN), or why not.
pub fn parse_alb_arn(arn: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "elasticloadbalancing"
        && parts[5].starts_with("loadbalancer/app/")
        && region_ok(parts[3]);
    match ok {
        true => Ok((arn.to_owned(), parts[3].to_owned())),
        false => Err(format!(
            "CONSOLE_ALB_ARN {arn:?} is not an Application Load Balancer's ARN \
             (arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID)"
        )),
    }
}

fn region_ok(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A key id: what the ALB uses (a UUID), so it can only name a key at the endpoint.
fn kid_ok(k: &str) -> bool {
    !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn b64(part: &str) -> Result<Vec<u8>, AlbError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AlbError::Malformed)
}

fn json(part: &str) -> Result<Value, AlbError> {
    let v: Value = serde_json::from_slice(&b64(part)?).map_err(|_| AlbError::Malformed)?;
    v.is_object().then_some(v).ok_or(AlbError::Malformed)
}

/// The 65-byte uncompressed P-256 point of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
fn p256_point(pem: &str) -> Option<Vec<u8>> {
    // The DER prefix of every P-256 SubjectPublicKeyInfo: SEQUENCE, the id-ecPublicKey and
    // prime256v1 OIDs, and the BIT STRING header of the 65-byte point.
    const PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()?;
    (der.len() == PREFIX.len() + 65 && der.starts_with(&PREFIX))
        .then(|| der[PREFIX.len()..].to_vec())
}

impl std::fmt::Debug for AlbVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlbVerifier")
            .field("signer", &self.signer)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AlbVerifier {
    pub fn new(alb_arn: &str, keys: Box<dyn AlbKeys>) -> Result<Self, String> {
        let (signer, region) = parse_alb_arn(alb_arn)?;
        Ok(Self {
            signer,
            region,
            keys,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The URL of a key: the region's ALB endpoint, and only it.
    pub fn key_url(&self, kid: &str) -> Result<String, AlbError> {
        if !kid_ok(kid) {
            return Err(AlbError::KeyId(kid.chars().take(80).collect()));
        }
        Ok(format!(
            "https://public-keys.auth.elb.{}.amazonaws.com/{kid}",
            self.region
        ))
    }

    async fn key(&self, kid: &str) -> Result<Vec<u8>, AlbError> {
        let url = self.key_url(kid)?;
        if let Some(k) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
        {
            return Ok(k.clone());
        }
        let pem = self.keys.fetch(&url).await.map_err(AlbError::Key)?;
        let point =
            p256_point(&pem).ok_or_else(|| AlbError::Key("not a P-256 public key".into()))?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 64 {
            cache.clear();
        }
        cache.insert(kid.to_owned(), point.clone());
        Ok(point)
    }

    /// The person a token names, if it is one this load balancer signed and it is current.
    pub async fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AlbIdentity, AlbError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AlbError::Malformed);
        }
        let mut parts = token.trim().split('.');
        let (Some(h), Some(p), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AlbError::Malformed);
        };
        let header = json(h)?;
        let alg = header["alg"].as_str().unwrap_or_default();
        if alg != "ES256" {
            return Err(AlbError::Algorithm(alg.chars().take(20).collect()));
        }
        let signer = header["signer"].as_str().unwrap_or_default();
        if signer != self.signer {
            return Err(AlbError::Signer(signer.chars().take(200).collect()));
        }
        let claims = json(p)?;
        let exp = [&header["exp"], &claims["exp"]]
            .iter()
            .filter_map(|v| v.as_i64())
            .min()
            .ok_or(AlbError::Malformed)?;
        if exp <= now.timestamp() {
            return Err(AlbError::Expired);
        }
        let point = self.key(header["kid"].as_str().unwrap_or_default()).await?;
        let signed = &token.trim()[..h.len() + 1 + p.len()];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(signed.as_bytes(), &b64(sig)?)
            .map_err(|_| AlbError::Signature)?;
        let subject = claims["sub"]
            .as_str()
            .ok_or(AlbError::Malformed)?
            .to_owned();
        Ok(AlbIdentity {
            subject,
            email: claims["email"].as_str().map(str::to_owned),
            groups: groups(&claims),
        })
    }
}

#[cfg(test)]
mod tests;
