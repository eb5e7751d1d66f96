//! A secret key that signs what the service hands out as URLs (a calendar feed, a page's
//! acknowledgement link), so that only the URLs it made open anything. Each use signs its
//! own message form, so a token made for one use is never valid for another.

use ring::hmac;

/// An HMAC-SHA256 key.
#[derive(Clone)]
pub struct SigningKey(hmac::Key);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

/// Why a key cannot be used: too short to be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} must be at least 32 characters")]
pub struct ShortKey(pub &'static str);

impl SigningKey {
    /// A key from its secret text; `name` says which setting it came from.
    pub fn new(name: &'static str, secret: &str) -> Result<Self, ShortKey> {
        if secret.trim().len() < 32 {
            return Err(ShortKey(name));
        }
        Ok(Self(hmac::Key::new(
            hmac::HMAC_SHA256,
            secret.trim().as_bytes(),
        )))
    }

    /// The token of a message (hex).
    pub fn sign(&self, message: &str) -> String {
        let tag = hmac::sign(&self.0, message.as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `token` is the message's, compared in constant time.
    pub fn verifies(&self, message: &str, token: &str) -> bool {
        let Some(tag) = unhex(token) else {
            return false;
        };
        hmac::verify(&self.0, message.as_bytes(), &tag).is_ok()
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A fresh secret: 32 random bytes, as hex.
pub fn fresh_secret() -> Option<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
