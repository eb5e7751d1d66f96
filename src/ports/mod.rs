//! The traits the case logic works through, and what crosses them: the ledger, the support
//! desk, per-alarm settings, graphs, metrics. `backend::local` and `backend::aws` implement
//! them.

pub mod console;
pub mod desk;
pub mod graph;
pub mod ledger;
pub mod metrics;
pub mod notify;
pub mod pages;
pub mod queue;
pub mod tags;

use std::borrow::Cow;

use crate::errors::BoxError;

/// Why a port could not do what was asked (a graph, an alarm's tags, a notice): said as the
/// service writes it where it goes (a case's text, the ledger, the log), with the error
/// behind it, when there is one, kept as its source for the log's chain.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct PortError {
    reason: Cow<'static, str>,
    #[source]
    source: Option<BoxError>,
}

impl PortError {
    /// A reason with the error behind it (whose text the reason already says, so the
    /// chain does not repeat it).
    pub fn caused(reason: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }
}

impl From<&'static str> for PortError {
    fn from(reason: &'static str) -> Self {
        Self {
            reason: Cow::Borrowed(reason),
            source: None,
        }
    }
}

impl From<String> for PortError {
    fn from(reason: String) -> Self {
        Self {
            reason: Cow::Owned(reason),
            source: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::Chain;

    #[test]
    fn a_port_error_says_its_reason_and_keeps_its_cause_once() {
        let cause = std::io::Error::other("connection reset");
        let e = PortError::caused(format!("webhook request failed: {cause}"), cause);
        assert_eq!(e.to_string(), "webhook request failed: connection reset");
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
        // The log's chain does not repeat a cause the reason already says.
        assert_eq!(
            Chain(&e).to_string(),
            "webhook request failed: connection reset"
        );
        let plain = PortError::from("graphs are off (GRAPHS=off)");
        assert!(std::error::Error::source(&plain).is_none());
        assert_eq!(plain.to_string(), "graphs are off (GRAPHS=off)");
    }
}
