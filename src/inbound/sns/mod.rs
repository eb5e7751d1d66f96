//! Amazon SNS over HTTP(S): parse the message envelope, decide whether its topic is
//! expected, verify its signature, and confirm subscriptions safely.
//!
//! Intended order in a request handler:
//! 1. [`SnsMessage::from_slice`] / [`SnsMessage::parse`] the body (JSON whatever the
//!    Content-Type);
//! 2. [`TopicAllowList::check`] the topic (cheap, and spares a certificate fetch for
//!    foreign topics);
//! 3. [`Verifier::verify`];
//! 4. for a SubscriptionConfirmation only: [`check_subscribe_url`] and
//!    [`check_subscribe_token`], then
//!    [`SubscriptionConfirmer::confirm`]. Never visit an UnsubscribeConfirmation's
//!    SubscribeURL: it re-subscribes.
//!
//! Errors carry [`SnsError::reason_code`] and [`SnsError::is_retryable`] (answer 5xx so
//! SNS retries) for the HTTP mapping.

mod cert;
mod error;
mod http;
mod message;
mod regions;
mod topic;
mod urls;
mod verifier;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

pub use cert::{SignatureAlgorithm, SigningCert};
pub use error::SnsError;
pub use http::{
    CertFetcher, DEFAULT_TIMEOUT, HttpClientBuildError, HttpsCertFetcher, HttpsOptions,
    HttpsSubscriptionConfirmer, MAX_CERT_BYTES, MAX_CONFIRM_BYTES, SubscriptionConfirmer,
    extract_subscription_arn,
};
pub use message::{MessageKind, SnsMessage};
pub use regions::{Partition, partition_of, signing_cert_names, sns_host};
pub use topic::{ArnError, TopicAllowList, TopicArn, TopicPattern};
pub use urls::{check_signing_cert_url, check_subscribe_token, check_subscribe_url};
pub use verifier::{Clock, Verifier, VerifierConfig};
