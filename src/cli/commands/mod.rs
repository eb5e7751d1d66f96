//! The subcommands: `serve`, `alarms ...`, `cases ...`, `process` and the rest. Each builds
//! the application (`startup::build`) and does one thing; output goes to standard output,
//! logs to standard error, and the exit status says whether it worked: 0, 1 for a failure,
//! 2 for bad input. Errors are `anyhow` errors with context, printed once, with their causes.

mod cases;
mod check;
mod oncall;
mod pages;
mod report;
mod serve;
mod settings;
mod users;

use std::io::Write;

use anyhow::Context;
use std::process::ExitCode;

use crate::cli::{Cli, Command, TablesCommand};

pub use cases::process;
pub use settings::{alarms, maintenance};

/// Bad input on the command line (exit status 2); every other failure exits 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

pub async fn run(cli: Cli) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let config = &cli.config;
    let result = match cli.command.unwrap_or(Command::Serve { consume: false }) {
        Command::Serve { consume } => {
            serve::serve(
                config,
                serve::Mode {
                    http: true,
                    consume,
                },
            )
            .await
        }
        Command::Consume => {
            serve::serve(
                config,
                serve::Mode {
                    http: false,
                    consume: true,
                },
            )
            .await
        }
        Command::Redrive(args) => cases::redrive(config, args, &mut out).await,
        Command::Alarms(cmd) => alarms(config, cmd, &mut out).await,
        Command::Cases(cmd) => cases::cases(config, cmd, &mut out).await,
        Command::Process { file } => process(config, &file, &mut out).await,
        Command::Tables(TablesCommand::Create) => check::tables_create(config, &mut out).await,
        Command::Check { alarms: false, .. } => check::check(config, &mut out).await,
        Command::Check {
            alarms: true,
            json,
            subscriber,
        } => check::alarms(config, json, &subscriber, &mut out).await,
        Command::Maintenance(cmd) => maintenance(config, cmd, &mut out).await,
        Command::Oncall(cmd) => oncall::oncall(config, cmd, &mut out).await,
        Command::Pages(cmd) => pages::pages(config, cmd, &mut out).await,
        Command::Callouts(cmd) => pages::callouts(config, cmd, &mut out).await,
        Command::Users(cmd) => users::users(config, cmd, &mut out).await,
        Command::Report {
            month,
            since,
            json,
            csv,
        } => report::run(config, month, since, (json, csv), &mut out).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::errors::Chain(e.as_ref()));
            let usage = e.downcast_ref::<Usage>().is_some()
                || matches!(
                    e.downcast_ref::<crate::cli::startup::StartupError>(),
                    Some(crate::cli::startup::StartupError::Config(_))
                );
            match usage {
                true => ExitCode::from(2),
                false => ExitCode::FAILURE,
            }
        }
    }
}

fn write_out(out: &mut dyn Write, text: &str) -> anyhow::Result<()> {
    writeln!(out, "{text}").context("writing to standard output")
}

fn pretty(v: &impl serde::Serialize) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(v)?)
}
