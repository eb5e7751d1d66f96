//! Runs the AWS Support stand-in as its own process, for scripts and manual runs:
//!
//! ```text
//! cargo run --example support_standin -- --port 4599
//! AWS_ENDPOINT_URL_SUPPORT=http://127.0.0.1:4599 ...
//! curl -X POST localhost:4599/_standin/faults \
//!      -d '{"operation":"CreateCase","fault":"Throttling","times":2}'
//! ```
//!
//! Prints `listening on http://127.0.0.1:PORT` (flushed) once it accepts connections, and
//! runs until SIGTERM or Ctrl-C.
#[path = "../tests/it/common/support_standin.rs"]
mod support_standin;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

fn parse_port() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    let mut port = 0;
    while let Some(arg) = args.next() {
        let value = if arg == "--port" {
            args.next().ok_or("--port needs a value")?
        } else if let Some(v) = arg.strip_prefix("--port=") {
            v.to_string()
        } else if arg == "-h" || arg == "--help" {
            return Err("usage: support_standin [--port N]   (default 0: a free port)".into());
        } else {
            return Err(format!(
                "unknown argument {arg:?}; usage: support_standin [--port N]"
            ));
        };
        port = value
            .parse()
            .map_err(|_| format!("--port: {value:?} is not a port number"))?;
    }
    Ok(port)
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let port = match parse_port() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let standin =
        match support_standin::SupportStandin::start_on(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
                return ExitCode::FAILURE;
            }
        };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", standin.endpoint());
    let _ = out.flush();
    drop(out);
    stop_signal().await;
    standin.shutdown().await;
    ExitCode::SUCCESS
}
