//! Logging set-up: one line per request, as text for people or JSON for log pipelines, on
//! standard error so command output on standard output stays clean. `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = match format {
        // Fields may hold a payload's text: the text log strips what a terminal would act
        // on (so it has no colours of its own either: they are escape sequences too).
        LogFormat::Text => builder
            .with_ansi(false)
            .with_writer(|| crate::escape::LogWriter)
            .try_init(),
        LogFormat::Json => builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .try_init(),
    };
}
