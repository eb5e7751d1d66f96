//! One line naming an AWS SDK error, for logs and for the errors this crate keeps as text:
//! the service's error code and message, or, when the call never reached the service
//! (timeout, connection refused), its kind and every cause. Every AWS client in the crate
//! (DynamoDB, AWS Support, CloudWatch, SNS, SQS, STS) uses it, so it belongs to none of them.

// The smithy runtime's types, which every SDK crate shares; any crate's re-export names them.
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// One line naming an SDK error: its code and message, or its kind when it never reached
/// the service (timeout, connection refused).
pub fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> String {
    match e {
        SdkError::ServiceError(_) => format!(
            "{}: {}",
            e.code().unwrap_or("unknown error"),
            e.message().unwrap_or("")
        ),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}
