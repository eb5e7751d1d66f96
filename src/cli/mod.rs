//! The command line and typed configuration, read once at start-up. Every option has a
//! flag, an environment variable, a default and a doc line (shown by `--help` and in the
//! README's table); options that shape the service are global, so they work before or after
//! the subcommand and with no subcommand at all.

mod args;
pub mod commands;
mod config;
pub mod startup;
pub mod telemetry;

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};

pub use self::args::{
    AlarmPut, AlarmsCommand, CalloutsCommand, CasesCommand, Command, MaintenanceCommand,
    OncallCommand, PagesCommand, RedriveArgs, TablesCommand, UsersCommand, WindowStart,
};
pub use self::config::{
    CaseConfig, NotifyConfig, QueueConfig, ServerConfig, StoreConfig, TelemetryConfig, TokensArg,
    TrustConfig,
};
pub use crate::backend::BackendKind;
use crate::backend::BackendSettings;
use crate::backend::aws::AwsSettings;
use crate::case::CasePolicy;
use crate::inbound::gate::ApiTokens;

#[derive(Debug, Parser)]
#[command(
    name = "cw-support-api",
    version,
    about = "Turns CloudWatch alarms into AWS Support cases, exactly once per problem.",
    long_about = "Turns CloudWatch alarms into AWS Support cases, exactly once per problem.\n\n\
                  With no subcommand, runs the HTTP server (`serve`)."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Service-wide configuration, grouped by concern (each group's options are global, so
/// they work before or after the subcommand).
#[derive(Debug, Clone, Args)]
#[command(mut_args = config::in_help_order)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub store: StoreConfig,
    #[command(flatten)]
    pub cases: CaseConfig,
    #[command(flatten)]
    pub trust: TrustConfig,
    #[command(flatten)]
    pub notify: NotifyConfig,
    #[command(flatten)]
    pub queue: QueueConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

impl Config {
    /// `ACCOUNT_ROLES` read: account id → role ARN, or what is wrong with it.
    pub fn account_roles(&self) -> Result<BTreeMap<String, String>, String> {
        self.cases.account_roles()
    }

    /// The bearer tokens, or why `API_TOKENS` is malformed (never echoing it).
    pub fn api_tokens(&self) -> Result<ApiTokens, String> {
        self.trust.api_tokens()
    }

    /// What the backend needs, or what is wrong with it (`ACCOUNT_ROLES`).
    pub fn backend_settings(&self) -> Result<BackendSettings, String> {
        Ok(BackendSettings {
            kind: self.store.backend,
            data_dir: self.store.data_dir.clone(),
            aws: self.aws(),
            account_roles: self.account_roles()?,
        })
    }

    pub fn aws(&self) -> AwsSettings {
        self.store.aws()
    }

    pub fn policy(&self) -> CasePolicy {
        let cases = &self.cases;
        CasePolicy {
            update_cooldown: cases.update_cooldown,
            recovery_note: cases.recovery_note,
            close_on_recovery: cases.close_on_recovery,
            default_service_code: cases.default_service_code.clone(),
            default_category_code: cases.default_category_code.clone(),
            claim_ttl: cases.claim_ttl,
            // Waiting for concurrent work on the same alarm fits in the request's time.
            busy_wait: self.server.request_timeout,
            storm_cap: cases.storm_cap,
            remember_handled: self.store.idempotency_ttl,
            account_roles: self.account_roles().unwrap_or_default(),
            // Known once the aws backend has asked STS (`App::into_state`).
            own_account: None,
            flap_limit: cases.flap_limit,
            flap_window: cases.flap_window,
            health: cases.health(),
            reply_targets: cases.support_reply_targets.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Graphs {
    Auto,
    Cloudwatch,
    Local,
    Off,
}

/// Whether the web console is served, and how people sign in to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsoleMode {
    /// No console.
    Off,
    /// Behind an Application Load Balancer with OIDC sign-in: the ALB's signed
    /// `x-amzn-oidc-data` token is verified (needs CONSOLE_ALB_ARN and CONSOLE_ROLES).
    Alb,
    /// Local accounts (`users add`), signed in at `/console/login`.
    Local,
}

/// Who places pages' voice calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VoiceProvider {
    /// No calls: voice messages fail, on the page's timeline (the embedded default keeps
    /// them in its outbox).
    Off,
    /// A Twilio-compatible API: the call asks for a key (1 acknowledges, 2 escalates).
    Twilio,
    /// AWS End User Messaging `SendVoiceMessage`: spoken, one way (acknowledged by the
    /// other means).
    Aws,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The longest duration anything accepts: ten years. Past it (and well before chrono's
/// limits) a sum of a time and a duration could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// Reads `90`, `90s`, `10m`, `2h`, `1d` or `250ms`, at most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    read_duration(s)?
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| {
            format!(
                "{:?} is longer than the longest duration accepted, 3650d",
                s.trim()
            )
        })
}

/// The duration written, or `None` when it is well formed but too long to count.
fn read_duration(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("{s:?} is not a duration such as 90s, 10m or 2h"));
    }
    let ms_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{s:?}: unknown unit (use ms, s, m, h or d)")),
    };
    // Only digits are left, so a failed parse is a number past u64: too long, like an overflow.
    Ok(digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(ms_per_unit))
        .map(Duration::from_millis))
}

/// A duration between `MIN_MS` milliseconds and `MAX_S` seconds: each option's own range, so
/// that an absurd value stops the start with a clear error instead of failing the first
/// alarm. The error names this range, however far past it the value is.
pub fn duration_in<const MIN_MS: u64, const MAX_S: u64>(s: &str) -> Result<Duration, String> {
    let (min, max) = (Duration::from_millis(MIN_MS), Duration::from_secs(MAX_S));
    match read_duration(s)? {
        Some(d) if d >= min && d <= max => Ok(d),
        _ => Err(format!(
            "{:?} is outside {} to {}",
            s.trim(),
            crate::case::text::humantime(min),
            crate::case::text::humantime(max)
        )),
    }
}

#[cfg(test)]
mod tests;
