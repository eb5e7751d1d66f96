//! Verifies SNS message signatures: cheap checks first (version, URL), then the signing
//! key from a bounded, expiring, single-flight cache (or a pinned certificate directory),
//! then the certificate dates and the RSA signature.

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
    /// "Now" for the certificate validity check.
    pub clock: Clock,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            cert_dir: None,
            cache_capacity: 32,
            cache_ttl: Duration::from_secs(24 * 60 * 60),
            clock: Arc::new(Utc::now),
        }
    }
}

impl fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("cert_dir", &self.cert_dir)
            .field("cache_capacity", &self.cache_capacity)
            .field("cache_ttl", &self.cache_ttl)
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

/// One URL's slot. The cell is shared by every concurrent first user so one load serves
/// them all; a failed load leaves it empty (failures are not cached).
struct Slot {
    cell: Arc<OnceCell<LoadedKey>>,
    inserted: u64,
}

#[derive(Default)]
struct KeyCache {
    slots: HashMap<String, Slot>,
    next_seq: u64,
}

impl Verifier {
    pub fn new(config: VerifierConfig, fetcher: Arc<dyn CertFetcher>) -> Self {
        Verifier {
            config,
            fetcher,
            cache: Mutex::new(KeyCache::default()),
        }
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
        cert.check_validity((self.config.clock)())?;
        cert.verify(alg, msg.string_to_sign().as_bytes(), &signature)
    }

    async fn signing_cert(&self, url: &Url, region: &str) -> Result<Arc<SigningCert>, SnsError> {
        let cell = self.slot_for(url.as_str());
        match cell.get_or_try_init(|| self.load(url, region)).await {
            Ok(loaded) => Ok(Arc::clone(&loaded.cert)),
            Err(err) => {
                self.forget_if_empty(url.as_str(), &cell);
                Err(err)
            }
        }
    }

    fn lock_cache(&self) -> MutexGuard<'_, KeyCache> {
        // A panic while holding this lock cannot leave the map inconsistent (each update
        // is a single insert/remove), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot for `key`, replacing an expired one and evicting the oldest when full.
    fn slot_for(&self, key: &str) -> Arc<OnceCell<LoadedKey>> {
        let ttl = self.config.cache_ttl;
        let capacity = self.config.cache_capacity.max(1);
        let mut cache = self.lock_cache();
        if let Some(slot) = cache.slots.get(key) {
            let expired = slot
                .cell
                .get()
                .is_some_and(|loaded| loaded.loaded_at.elapsed() >= ttl);
            if !expired {
                return Arc::clone(&slot.cell);
            }
            cache.slots.remove(key);
        }
        while cache.slots.len() >= capacity {
            let oldest = cache
                .slots
                .iter()
                .min_by_key(|(_, slot)| slot.inserted)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    cache.slots.remove(&k);
                }
                None => break,
            }
        }
        let cell = Arc::new(OnceCell::new());
        let inserted = cache.next_seq;
        cache.next_seq += 1;
        cache.slots.insert(
            key.to_owned(),
            Slot {
                cell: Arc::clone(&cell),
                inserted,
            },
        );
        cell
    }

    /// After a failed load, drop the (still empty) slot so it does not take the place of
    /// a useful key; leave it if someone else has since filled or replaced it.
    fn forget_if_empty(&self, key: &str, cell: &Arc<OnceCell<LoadedKey>>) {
        let mut cache = self.lock_cache();
        let same_and_empty = cache
            .slots
            .get(key)
            .is_some_and(|slot| Arc::ptr_eq(&slot.cell, cell) && !slot.cell.initialized());
        if same_and_empty {
            cache.slots.remove(key);
        }
    }

    async fn load(&self, url: &Url, region: &str) -> Result<LoadedKey, SnsError> {
        let pem = match self.pinned_cert(url).await? {
            Some(pem) => pem,
            None => {
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
