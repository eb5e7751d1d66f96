use std::process::ExitCode;

use clap::Parser;
use cw_support_api::cli::{Cli, commands, telemetry};

/// mimalloc's per-thread heaps: glibc's malloc spent a fifth of a busy server's CPU in its
/// own locks and free lists (perf, issue 16).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.config.server.log_format);
    commands::run(cli).await
}
