use std::process::ExitCode;

use clap::Parser;
use cw_support_api::{cli::Cli, commands, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.config.log_format);
    commands::run(cli).await
}
