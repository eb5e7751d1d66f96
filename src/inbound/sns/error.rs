//! The one error type of the SNS module, with a stable reason code and a retry hint so
//! the HTTP layer can map each failure to a status without string matching.

/// Why an SNS message (or a step around it) was refused.
///
/// Display strings never contain the message body or any other sender-controlled value
/// (they end up in logs and HTTP answers); they only name fields and fixed reasons.
#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    /// The JSON envelope is not a usable SNS message.
    #[error("malformed SNS message: field {field} {problem}")]
    MalformedMessage {
        field: &'static str,
        problem: &'static str,
    },

    /// SignatureVersion is neither "1" nor "2".
    #[error("unsupported SNS signature version")]
    UnsupportedSignatureVersion,

    /// SigningCertURL is not an SNS certificate URL we are willing to fetch.
    #[error("untrusted signing certificate URL: {0}")]
    UntrustedCertificateUrl(&'static str),

    /// SubscribeURL is not an SNS confirmation URL we are willing to visit.
    #[error("untrusted SubscribeURL: {0}")]
    UntrustedSubscribeUrl(&'static str),

    /// The certificate was obtained but cannot vouch for the message
    /// (unparsable, wrong subject, outside its validity dates, not RSA).
    #[error("signing certificate unusable: {0}")]
    UntrustedCertificate(String),

    /// The certificate could not be obtained (network, timeout, HTTP status, size).
    /// Transient: the caller should answer 5xx so SNS retries.
    #[error("signing certificate unavailable: {0}")]
    CertificateUnavailable(String),

    /// The signature does not match the string to sign under the certificate's key.
    #[error("SNS signature does not verify")]
    BadSignature,

    /// The TopicArn is not in the configured allow list.
    #[error("SNS topic not allowed")]
    TopicNotAllowed,

    /// A direct delivery whose `Timestamp` is older than SNS's longest retry policy: a
    /// captured message replayed later, not a retry.
    #[error("SNS message is older than the accepted age")]
    StaleMessage,

    /// A subscription confirmation whose signature was not checked (VERIFY_SQS_ENVELOPES
    /// off): its SubscribeURL is never visited.
    #[error("subscription confirmation not verified: its SubscribeURL is never visited")]
    UnverifiedConfirmation,

    /// Visiting the SubscribeURL did not confirm the subscription.
    #[error("subscription confirmation failed: {reason}")]
    ConfirmationFailed { reason: String, retryable: bool },
}

impl SnsError {
    /// A short, stable, machine-readable code for logs, metrics and HTTP answers.
    pub fn reason_code(&self) -> &'static str {
        match self {
            SnsError::MalformedMessage { .. } => "malformed_sns_message",
            SnsError::UnsupportedSignatureVersion => "unsupported_signature_version",
            SnsError::UntrustedCertificateUrl(_) => "untrusted_certificate_url",
            SnsError::UntrustedSubscribeUrl(_) => "untrusted_subscribe_url",
            SnsError::UntrustedCertificate(_) => "untrusted_certificate",
            SnsError::CertificateUnavailable(_) => "certificate_unavailable",
            SnsError::BadSignature => "bad_signature",
            SnsError::TopicNotAllowed => "topic_not_allowed",
            SnsError::StaleMessage => "stale_message",
            SnsError::UnverifiedConfirmation => "unverified_confirmation",
            SnsError::ConfirmationFailed { .. } => "subscription_confirmation_failed",
        }
    }

    /// What the sender may read. Fixed text only: the detailed reasons (error chains,
    /// certificate paths, what a certificate host answered) stay in the log.
    pub fn public_message(&self) -> &'static str {
        match self {
            SnsError::MalformedMessage { .. } => "the SNS message is malformed",
            SnsError::UnsupportedSignatureVersion => "unsupported SNS signature version",
            SnsError::UntrustedCertificateUrl(_) => "untrusted signing certificate URL",
            SnsError::UntrustedSubscribeUrl(_) => "untrusted SubscribeURL",
            SnsError::UntrustedCertificate(_) => "the signing certificate cannot vouch for it",
            SnsError::CertificateUnavailable(_) => {
                "the signing certificate could not be obtained; retry later"
            }
            SnsError::BadSignature => "SNS signature does not verify",
            SnsError::TopicNotAllowed => "this endpoint does not serve that SNS topic",
            SnsError::StaleMessage => "the SNS message is too old to be a retry",
            SnsError::UnverifiedConfirmation => {
                "an unverified subscription confirmation is never confirmed"
            }
            SnsError::ConfirmationFailed {
                retryable: true, ..
            } => "the subscription could not be confirmed; retry later",
            SnsError::ConfirmationFailed { .. } => "the subscription could not be confirmed",
        }
    }

    /// True when the failure may go away on its own, so the server should answer 5xx
    /// (SNS retries 5xx) rather than a 4xx (which SNS does not retry).
    pub fn is_retryable(&self) -> bool {
        match self {
            SnsError::CertificateUnavailable(_) => true,
            SnsError::ConfirmationFailed { retryable, .. } => *retryable,
            _ => false,
        }
    }

    pub(crate) fn malformed(field: &'static str, problem: &'static str) -> Self {
        SnsError::MalformedMessage { field, problem }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(SnsError::CertificateUnavailable("timeout".into()).is_retryable());
        assert!(
            SnsError::ConfirmationFailed {
                reason: "x".into(),
                retryable: true
            }
            .is_retryable()
        );
        assert!(
            !SnsError::ConfirmationFailed {
                reason: "x".into(),
                retryable: false
            }
            .is_retryable()
        );
        assert!(!SnsError::BadSignature.is_retryable());
        assert!(!SnsError::UntrustedCertificate("dates".into()).is_retryable());
        assert!(!SnsError::UntrustedCertificateUrl("http").is_retryable());
        assert!(!SnsError::TopicNotAllowed.is_retryable());
        assert!(!SnsError::UnsupportedSignatureVersion.is_retryable());
        assert!(!SnsError::malformed("Type", "is missing").is_retryable());
    }

    #[test]
    fn reason_codes_are_stable() {
        assert_eq!(SnsError::BadSignature.reason_code(), "bad_signature");
        assert_eq!(
            SnsError::UnsupportedSignatureVersion.reason_code(),
            "unsupported_signature_version"
        );
        assert_eq!(
            SnsError::UntrustedCertificateUrl("x").reason_code(),
            "untrusted_certificate_url"
        );
        assert_eq!(
            SnsError::UntrustedCertificate("x".into()).reason_code(),
            "untrusted_certificate"
        );
        assert_eq!(
            SnsError::CertificateUnavailable("x".into()).reason_code(),
            "certificate_unavailable"
        );
        assert_eq!(SnsError::TopicNotAllowed.reason_code(), "topic_not_allowed");
        assert_eq!(
            SnsError::malformed("Type", "is missing").reason_code(),
            "malformed_sns_message"
        );
    }

    #[test]
    fn malformed_names_the_field() {
        let e = SnsError::malformed("MessageId", "is missing");
        assert_eq!(
            e.to_string(),
            "malformed SNS message: field MessageId is missing"
        );
    }
}
