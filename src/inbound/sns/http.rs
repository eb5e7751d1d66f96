//! Outbound HTTPS for SNS: fetching signing certificates and visiting SubscribeURLs, both
//! behind traits so tests and the server can swap them. The real clients are deliberately
//! narrow: https only, no redirects, short timeouts, a body size cap enforced while reading.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Client, StatusCode, redirect};
use url::Url;

use super::error::SnsError;

/// Largest certificate we read (real ones are ~2 KiB).
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Largest ConfirmSubscription answer we read (real ones are ~400 bytes).
pub const MAX_CONFIRM_BYTES: usize = 64 * 1024;
/// SNS waits 15 s for our answer; outbound calls must fit well inside that.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Gets the PEM bytes of a signing certificate. Only called with URLs that passed
/// [`check_signing_cert_url`](super::check_signing_cert_url).
#[async_trait]
pub trait CertFetcher: Send + Sync {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, SnsError>;
}

/// Confirms a subscription by visiting its SubscribeURL; returns the SubscriptionArn.
/// Only called with URLs that passed [`check_subscribe_url`](super::check_subscribe_url),
/// and only for a verified SubscriptionConfirmation.
#[async_trait]
pub trait SubscriptionConfirmer: Send + Sync {
    async fn confirm(&self, url: &Url) -> Result<String, SnsError>;
}

/// The HTTPS client could not be built (TLS backend or root store problem).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the SNS HTTPS client: {0}")]
pub struct HttpClientBuildError(String);

/// Settings shared by the real HTTPS clients.
#[derive(Debug, Clone)]
pub struct HttpsOptions {
    /// Whole-request timeout (connect + TLS + body).
    pub timeout: Duration,
    /// DNS overrides, e.g. `("sns.us-east-1.amazonaws.com", 127.0.0.1:port)` in tests.
    pub resolve: Vec<(String, SocketAddr)>,
    /// Extra trusted root certificates (PEM), on top of the OS store, e.g. a test CA.
    pub extra_root_pems: Vec<Vec<u8>>,
}

impl Default for HttpsOptions {
    fn default() -> Self {
        HttpsOptions {
            timeout: DEFAULT_TIMEOUT,
            resolve: Vec::new(),
            extra_root_pems: Vec::new(),
        }
    }
}

impl HttpsOptions {
    fn build_client(&self) -> Result<Client, HttpClientBuildError> {
        let mut builder = Client::builder()
            // Redirects would let the answer send us to a host we never checked.
            .redirect(redirect::Policy::none())
            .https_only(true)
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(concat!("cw-support-api-sns/", env!("CARGO_PKG_VERSION")));
        for (host, addr) in &self.resolve {
            builder = builder.resolve(host, *addr);
        }
        for pem in &self.extra_root_pems {
            // Parse eagerly: a PEM with no certificate in it would otherwise be ignored.
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| HttpClientBuildError(describe(&e)))?;
            if certs.is_empty() {
                return Err(HttpClientBuildError(
                    "extra root PEM holds no certificate".into(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build()
            .map_err(|e| HttpClientBuildError(describe(&e)))
    }
}

/// Downloads signing certificates over HTTPS (OS root store; `SSL_CERT_FILE` honoured).
#[derive(Debug, Clone)]
pub struct HttpsCertFetcher {
    client: Client,
}

impl HttpsCertFetcher {
    pub fn new() -> Result<Self, HttpClientBuildError> {
        Self::with_options(&HttpsOptions::default())
    }

    pub fn with_options(options: &HttpsOptions) -> Result<Self, HttpClientBuildError> {
        Ok(HttpsCertFetcher {
            client: options.build_client()?,
        })
    }
}

#[async_trait]
impl CertFetcher for HttpsCertFetcher {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, SnsError> {
        match capped_get(&self.client, url, MAX_CERT_BYTES).await {
            Ok((StatusCode::OK, body)) => Ok(body),
            // The SNS host says there is no such certificate: no retry will change that,
            // and a forged message names a made-up file, so this is a refusal (403).
            Ok((status, _))
                if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS =>
            {
                Err(SnsError::UntrustedCertificate(format!(
                    "the SNS host has no such certificate (HTTP {})",
                    status.as_u16()
                )))
            }
            Ok((status, _)) => Err(SnsError::CertificateUnavailable(format!(
                "certificate download answered HTTP {}",
                status.as_u16()
            ))),
            Err(e) => Err(SnsError::CertificateUnavailable(format!(
                "certificate download failed: {e}"
            ))),
        }
    }
}

/// Confirms subscriptions by GETting the SubscribeURL.
#[derive(Debug, Clone)]
pub struct HttpsSubscriptionConfirmer {
    client: Client,
}

impl HttpsSubscriptionConfirmer {
    pub fn new() -> Result<Self, HttpClientBuildError> {
        Self::with_options(&HttpsOptions::default())
    }

    pub fn with_options(options: &HttpsOptions) -> Result<Self, HttpClientBuildError> {
        Ok(HttpsSubscriptionConfirmer {
            client: options.build_client()?,
        })
    }
}

#[async_trait]
impl SubscriptionConfirmer for HttpsSubscriptionConfirmer {
    async fn confirm(&self, url: &Url) -> Result<String, SnsError> {
        let (status, body) = capped_get(&self.client, url, MAX_CONFIRM_BYTES)
            .await
            .map_err(|e| SnsError::ConfirmationFailed {
                // Network trouble and timeouts may pass; an oversized answer will not.
                retryable: !matches!(e, GetError::TooLarge),
                reason: format!("SubscribeURL request failed: {e}"),
            })?;
        if !status.is_success() {
            return Err(SnsError::ConfirmationFailed {
                reason: format!("SubscribeURL answered HTTP {}", status.as_u16()),
                retryable: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
            });
        }
        let text = String::from_utf8_lossy(&body);
        extract_subscription_arn(&text).ok_or_else(|| SnsError::ConfirmationFailed {
            reason: "SubscribeURL answer has no SubscriptionArn".into(),
            retryable: false,
        })
    }
}

/// Pulls the text of `<SubscriptionArn>…</SubscriptionArn>` out of SNS's XML answer.
/// SNS's answer is fixed and tiny, so a tag search is enough; the value must look like an
/// ARN so a surprise document cannot smuggle markup through.
pub fn extract_subscription_arn(xml: &str) -> Option<String> {
    const OPEN: &str = "<SubscriptionArn>";
    const CLOSE: &str = "</SubscriptionArn>";
    let start = xml.find(OPEN)? + OPEN.len();
    let len = xml[start..].find(CLOSE)?;
    let value = xml[start..start + len].trim();
    let plausible = value.starts_with("arn:")
        && value.len() <= 1024
        && !value
            .chars()
            .any(|c| c.is_whitespace() || "<>&\"'".contains(c));
    plausible.then(|| value.to_owned())
}

#[derive(Debug, thiserror::Error)]
enum GetError {
    #[error("{0}")]
    Transport(String),
    #[error("answer larger than the size cap")]
    TooLarge,
}

/// GET with the body read chunk by chunk so an oversized (or endless) answer is cut off
/// at `max` bytes instead of being buffered whole. Non-success bodies are not read.
async fn capped_get(
    client: &Client,
    url: &Url,
    max: usize,
) -> Result<(StatusCode, Vec<u8>), GetError> {
    let mut resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| GetError::Transport(describe(&e.without_url())))?;
    let status = resp.status();
    if !status.is_success() {
        return Ok((status, Vec::new()));
    }
    if resp.content_length().is_some_and(|len| len > max as u64) {
        return Err(GetError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| GetError::Transport(describe(&e.without_url())))?
    {
        if body.len() + chunk.len() > max {
            return Err(GetError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// An error with its sources ("error sending request: connection refused"), since
/// reqwest's own Display hides the useful part. URLs are stripped by the caller: a
/// SubscribeURL carries the subscription token.
fn describe(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ConfirmSubscriptionResult>
    <SubscriptionArn>arn:aws:sns:us-west-2:123456789012:MyTopic:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55</SubscriptionArn>
  </ConfirmSubscriptionResult>
  <ResponseMetadata>
    <RequestId>075ecce8-8dac-11e1-bf80-f781d96e9307</RequestId>
  </ResponseMetadata>
</ConfirmSubscriptionResponse>"#;

    #[test]
    fn extracts_subscription_arn() {
        assert_eq!(
            extract_subscription_arn(ANSWER).as_deref(),
            Some("arn:aws:sns:us-west-2:123456789012:MyTopic:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55")
        );
        assert_eq!(
            extract_subscription_arn("<SubscriptionArn>\n  arn:aws:sns:x  \n</SubscriptionArn>")
                .as_deref(),
            Some("arn:aws:sns:x")
        );
    }

    #[test]
    fn refuses_answers_without_a_plausible_arn() {
        for bad in [
            "",
            "<ErrorResponse><Error><Code>InvalidParameter</Code></Error></ErrorResponse>",
            "<SubscriptionArn>arn:aws:sns:x",
            "<SubscriptionArn></SubscriptionArn>",
            "<SubscriptionArn>pending confirmation</SubscriptionArn>",
            "<SubscriptionArn>arn:<b>x</b></SubscriptionArn>",
            "</SubscriptionArn><SubscriptionArn>",
        ] {
            assert_eq!(extract_subscription_arn(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn default_clients_build() {
        assert!(HttpsCertFetcher::new().is_ok());
        assert!(HttpsSubscriptionConfirmer::new().is_ok());
        let bad = HttpsOptions {
            extra_root_pems: vec![b"not a pem".to_vec()],
            ..HttpsOptions::default()
        };
        assert!(HttpsCertFetcher::with_options(&bad).is_err());
    }

    #[tokio::test]
    async fn real_fetcher_refuses_plain_http() {
        // https_only is a second line of defence behind the URL checks.
        let fetcher = HttpsCertFetcher::new().expect("builds");
        let url = Url::parse("http://127.0.0.1:9/x.pem").expect("url");
        let err = fetcher.fetch(&url).await.expect_err("http refused");
        assert!(err.is_retryable());
    }
}
