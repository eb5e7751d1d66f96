//! How errors are written down. [`Chain`]: any error followed by its causes (`#[source]`),
//! which is how the log and the command line show them; errors keep their causes as
//! sources rather than pasting them into their own message. [`describe`]: one line naming
//! an AWS SDK error (its code and message, or, when the call never reached the service, its
//! kind and every cause), used by every AWS client in the crate, so it belongs to none.

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

/// A cause kept by an error of this crate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Displays an error followed by each of its causes: `what failed: why: why that`.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'a));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(s) = source {
            let next = s.to_string();
            // An error whose message already names its cause (`#[error(transparent)]` or
            // a `{0}` message) is not repeated.
            if !text.contains(&next) {
                text.push_str(": ");
                text.push_str(&next);
            }
            source = s.source();
        }
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("ledger storage failed: writing a decision")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_chain_names_every_cause_once() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(
            Chain(&e).to_string(),
            "ledger storage failed: writing a decision: disk full"
        );
        let io = std::io::Error::other("disk full");
        assert_eq!(Chain(&io).to_string(), "disk full");
    }
}
