//! Verifies SNS message signatures: cheap checks first (version, URL), then the signing
//! key from a bounded, expiring, single-flight cache (or a pinned certificate directory),
//! then the certificate dates and the RSA signature. Downloads are budgeted per minute and
//! failed URLs remembered for a while, so forged messages cannot turn the service into a
//! download amplifier or push the key in use out of the cache.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;
use url::Url;

use super::cert::{SignatureAlgorithm, SigningCert};
use super::error::SnsError;
use super::http::{CertFetcher, MAX_CERT_BYTES};
use super::message::SnsMessage;
use super::urls::check_signing_cert_url;

/// Source of "now" for certificate validity checks; injectable so tests (and the real AWS
/// vectors, whose certificates have expired) can pick the instant.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Settings of a [`Verifier`].
#[derive(Clone)]
pub struct VerifierConfig {
    /// `SNS_CERT_DIR`: a certificate whose file name matches the URL's
    /// (`SimpleNotificationService-<hex>.pem`) is read from here instead of downloaded.
    pub cert_dir: Option<PathBuf>,
    /// Most signing keys kept (AWS rotates certificates, so URLs change over time).
    /// At least one entry is always allowed.
    pub cache_capacity: usize,
    /// How long a loaded key is reused before it is loaded again.
    pub cache_ttl: Duration,
    /// "Now" for the certificate validity check (and the age of messages).
    pub clock: Clock,
    /// Downloads allowed per minute, across all URLs. Anyone can post a message naming a
    /// fresh certificate file on the SNS host, so without a bound every such post would
    /// cost an outbound request.
    pub fetches_per_minute: u32,
    /// How long a URL whose certificate cannot vouch for anything (not found, wrong
    /// subject, not a certificate) is refused without asking again.
    pub refused_ttl: Duration,
    /// How long a URL whose download failed (network, 5xx) is answered "unavailable"
    /// without asking again; short, since SNS retries 20 s later.
    pub unavailable_ttl: Duration,
}

/// Remembered failures at most (the oldest is forgotten first).
const MAX_REMEMBERED_FAILURES: usize = 1024;

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            cert_dir: None,
            cache_capacity: 32,
            cache_ttl: Duration::from_secs(24 * 60 * 60),
            clock: Arc::new(Utc::now),
            fetches_per_minute: 10,
            refused_ttl: Duration::from_secs(10 * 60),
            unavailable_ttl: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("cert_dir", &self.cert_dir)
            .field("cache_capacity", &self.cache_capacity)
            .field("cache_ttl", &self.cache_ttl)
            .field("fetches_per_minute", &self.fetches_per_minute)
            .finish_non_exhaustive()
    }
}

/// Checks that an [`SnsMessage`] was really signed by SNS.
pub struct Verifier {
    config: VerifierConfig,
    fetcher: Arc<dyn CertFetcher>,
    cache: Mutex<KeyCache>,
}

#[derive(Clone)]
struct LoadedKey {
    cert: Arc<SigningCert>,
    loaded_at: Instant,
}

/// A key in the cache, and when it last verified a message: keys that vouched for
/// something are the last to go, so a flood of messages naming other (even genuine)
/// certificates whose signatures fail never pushes out the key in use.
struct CachedKey {
    key: LoadedKey,
    last_verified: Option<Instant>,
}

/// A URL that failed, remembered for a while so repeating it costs no request.
struct Failure {
    until: Instant,
    /// True: the certificate cannot vouch (403); false: it could not be had (503).
    refused: bool,
    reason: String,
}

#[derive(Default)]
struct KeyCache {
    /// Loaded keys only; a failure never takes a place here.
    keys: HashMap<String, CachedKey>,
    /// Loads under way: every concurrent first user of a URL waits on the same one.
    loading: HashMap<String, Arc<OnceCell<LoadedKey>>>,
    failures: HashMap<String, Failure>,
    /// Token bucket of downloads: `tokens` at `refilled`.
    tokens: f64,
    refilled: Option<Instant>,
}

impl Verifier {
    pub fn new(config: VerifierConfig, fetcher: Arc<dyn CertFetcher>) -> Self {
        let tokens = f64::from(config.fetches_per_minute);
        Verifier {
            config,
            fetcher,
            cache: Mutex::new(KeyCache {
                tokens,
                ..KeyCache::default()
            }),
        }
    }

    /// "Now", by the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.config.clock)()
    }

    /// `Ok(())` only if the message's signature verifies under a valid SNS certificate
    /// fetched from the SNS endpoint of the topic's region.
    pub async fn verify(&self, msg: &SnsMessage) -> Result<(), SnsError> {
        // Everything that needs no network comes first, so a forged message costs nothing
        // and never makes us fetch.
        let alg = SignatureAlgorithm::from_version(&msg.signature_version)?;
        let url = check_signing_cert_url(&msg.signing_cert_url, &msg.topic_arn)?;
        let signature = BASE64
            .decode(msg.signature.as_bytes())
            .map_err(|_| SnsError::BadSignature)?;
        // An RSA signature is as long as the key: 128 to 1024 bytes for 1024- to 8192-bit
        // keys (SNS uses 2048). Anything else cannot verify, so it fetches nothing.
        if !(128..=1024).contains(&signature.len()) {
            return Err(SnsError::BadSignature);
        }

        let cert = self.signing_cert(&url, msg.topic_arn.region()).await?;
        cert.check_validity(self.now())?;
        cert.verify(alg, msg.string_to_sign().as_bytes(), &signature)?;
        if let Some(cached) = self.lock_cache().keys.get_mut(url.as_str()) {
            cached.last_verified = Some(Instant::now());
        }
        Ok(())
    }

    async fn signing_cert(&self, url: &Url, region: &str) -> Result<Arc<SigningCert>, SnsError> {
        let cell = match self.cached_or_slot(url.as_str())? {
            Ok(cert) => return Ok(cert),
            Err(cell) => cell,
        };
        let result = cell.get_or_try_init(|| self.load(url, region)).await;
        let mut cache = self.lock_cache();
        if cache
            .loading
            .get(url.as_str())
            .is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            cache.loading.remove(url.as_str());
        }
        match result {
            Ok(loaded) => {
                let cert = Arc::clone(&loaded.cert);
                let loaded = loaded.clone();
                self.insert_key(&mut cache, url.as_str(), loaded);
                Ok(cert)
            }
            Err(err) => {
                self.remember_failure(&mut cache, url.as_str(), &err);
                Err(err)
            }
        }
    }

    fn lock_cache(&self) -> MutexGuard<'_, KeyCache> {
        // A panic while holding this lock cannot leave the maps inconsistent (each update
        // is a single insert/remove), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh cached key, a remembered failure, or the load to wait on.
    #[allow(clippy::type_complexity)]
    fn cached_or_slot(
        &self,
        key: &str,
    ) -> Result<Result<Arc<SigningCert>, Arc<OnceCell<LoadedKey>>>, SnsError> {
        let ttl = self.config.cache_ttl;
        let mut cache = self.lock_cache();
        if let Some(cached) = cache.keys.get(key) {
            if cached.key.loaded_at.elapsed() < ttl {
                return Ok(Ok(Arc::clone(&cached.key.cert)));
            }
            cache.keys.remove(key);
        }
        if let Some(f) = cache.failures.get(key) {
            if f.until > Instant::now() {
                return Err(match f.refused {
                    true => SnsError::UntrustedCertificate(f.reason.clone()),
                    false => SnsError::CertificateUnavailable(f.reason.clone()),
                });
            }
            cache.failures.remove(key);
        }
        let cell = cache
            .loading
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(OnceCell::new()));
        Ok(Err(Arc::clone(cell)))
    }

    /// Keeps a loaded key, making room by dropping first the keys that never verified a
    /// message (oldest first), then the one that verified least recently.
    fn insert_key(&self, cache: &mut KeyCache, key: &str, loaded: LoadedKey) {
        let capacity = self.config.cache_capacity.max(1);
        if let Some(cached) = cache.keys.get_mut(key) {
            cached.key = loaded;
            return;
        }
        while cache.keys.len() >= capacity {
            let victim = cache
                .keys
                .iter()
                .min_by_key(|(_, c)| (c.last_verified.is_some(), c.last_verified, c.key.loaded_at))
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    cache.keys.remove(&k);
                }
                None => break,
            }
        }
        cache.keys.insert(
            key.to_owned(),
            CachedKey {
                key: loaded,
                last_verified: None,
            },
        );
    }

    fn remember_failure(&self, cache: &mut KeyCache, key: &str, err: &SnsError) {
        let (refused, ttl, reason) = match err {
            SnsError::UntrustedCertificate(r) => (true, self.config.refused_ttl, r),
            SnsError::CertificateUnavailable(r) => (false, self.config.unavailable_ttl, r),
            _ => return,
        };
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        if cache.failures.len() >= MAX_REMEMBERED_FAILURES {
            cache.failures.retain(|_, f| f.until > now);
        }
        while cache.failures.len() >= MAX_REMEMBERED_FAILURES {
            let oldest = cache
                .failures
                .iter()
                .min_by_key(|(_, f)| f.until)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    cache.failures.remove(&k);
                }
                None => break,
            }
        }
        cache.failures.insert(
            key.to_owned(),
            Failure {
                until: now + ttl,
                refused,
                reason: reason.clone(),
            },
        );
    }

    /// Takes one download from the per-minute budget, or says the budget is spent (a
    /// retryable refusal, not remembered against the URL: the URL did nothing wrong).
    fn take_fetch_token(&self) -> Result<(), SnsError> {
        let per_minute = f64::from(self.config.fetches_per_minute);
        let mut cache = self.lock_cache();
        let now = Instant::now();
        let elapsed = cache
            .refilled
            .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        cache.tokens = (cache.tokens + elapsed * per_minute / 60.0).min(per_minute);
        cache.refilled = Some(now);
        if cache.tokens >= 1.0 {
            cache.tokens -= 1.0;
            Ok(())
        } else {
            tracing::warn!("SNS certificate download budget spent; refusing further downloads");
            Err(SnsError::CertificateUnavailable(
                "certificate download budget for this minute is spent".into(),
            ))
        }
    }

    async fn load(&self, url: &Url, region: &str) -> Result<LoadedKey, SnsError> {
        let pem = match self.pinned_cert(url).await? {
            Some(pem) => pem,
            None => {
                self.take_fetch_token()?;
                tracing::debug!(%url, "downloading SNS signing certificate");
                self.fetcher.fetch(url).await?
            }
        };
        if pem.len() > MAX_CERT_BYTES {
            return Err(SnsError::UntrustedCertificate(
                "certificate larger than the size cap".into(),
            ));
        }
        let cert = SigningCert::from_pem(&pem, region)?;
        tracing::debug!(
            %url,
            subject = cert.subject_cn(),
            not_after = %cert.not_after(),
            "SNS signing certificate loaded"
        );
        Ok(LoadedKey {
            cert: Arc::new(cert),
            loaded_at: Instant::now(),
        })
    }

    /// The certificate from `cert_dir`, if configured and present under the URL's file name.
    async fn pinned_cert(&self, url: &Url) -> Result<Option<Vec<u8>>, SnsError> {
        let Some(dir) = &self.config.cert_dir else {
            return Ok(None);
        };
        // The URL check pinned the path to `/SimpleNotificationService-<hex>.pem`, so the
        // last segment is a plain file name and cannot climb out of the directory.
        let Some(name) = url.path_segments().and_then(|mut s| s.next_back()) else {
            return Ok(None);
        };
        let path = dir.join(name);
        match tokio::fs::read(&path).await {
            Ok(bytes) => {
                tracing::debug!(path = %path.display(), "using pinned SNS signing certificate");
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SnsError::CertificateUnavailable(format!(
                "cannot read pinned certificate {}: {e}",
                path.display()
            ))),
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
