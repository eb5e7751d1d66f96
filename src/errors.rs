//! How errors are written down. [`Chain`]: any error followed by its causes (`#[source]`),
//! which is how the log and the command line show them; errors keep their causes as
//! sources rather than pasting them into their own message.

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
