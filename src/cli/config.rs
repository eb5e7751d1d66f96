//! The configuration's options, grouped by what they shape: each group is a small clap
//! [`Args`] struct flattened into [`super::Config`], so every use names its concern
//! (`config.server.port`, `config.store.dbtable`), and each option's flag, variable, default
//! and range are still declared once, beside its doc line.
//!
//! `--help` does not list the options by group: [`HELP_ORDER`] keeps the order they have
//! always been shown in.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, Args};

use super::{BackendKind, Graphs, LogFormat, Switch, duration_in};
use crate::backend::aws::AwsSettings;
use crate::case::HealthFilter;
use crate::case::report::ReplyTargets;
use crate::inbound::gate::{ApiTokens, CidrList};
use crate::inbound::sns::TopicAllowList;

/// The HTTP server: where it listens, how it logs, and how long and how much it takes on.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// TCP port to listen on (Elastic Beanstalk's proxy forwards to 5000).
    #[arg(long, env = "PORT", default_value_t = 5000, global = true)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "BIND", default_value = "0.0.0.0", global = true)]
    pub bind: IpAddr,

    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Give up on a request after this long and answer 503 so it is retried (work already
    /// started still finishes). Keep it below the worker daemon's InactivityTimeout (299 s).
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "60s", value_parser = duration_in::<100, 900>, global = true)]
    pub request_timeout: Duration,

    /// How long a client may take to send a request's headers (also how long an idle
    /// keep-alive connection stays open), and, separately, its body.
    #[arg(long, env = "READ_TIMEOUT", default_value = "10s", value_parser = duration_in::<100, 900>, global = true)]
    pub read_timeout: Duration,

    /// Requests handled at once; more wait for a slot (bounded memory under any storm).
    #[arg(long, env = "MAX_CONCURRENCY", default_value_t = 64, global = true)]
    pub max_concurrency: usize,

    /// On SIGTERM, how long in-flight work may take to finish before the process exits.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "30s", value_parser = duration_in::<0, 3_600>, global = true)]
    pub shutdown_grace: Duration,
}

/// Where settings, the ledger and cases live (the backend) and how it is reached: the local
/// data directory, or the DynamoDB tables and the AWS Support endpoint.
#[derive(Debug, Clone, Args)]
pub struct StoreConfig {
    /// Where settings, the ledger and cases live: `local` is the embedded default.
    #[arg(long, env = "BACKEND", value_enum, default_value_t = BackendKind::Local, global = true)]
    pub backend: BackendKind,

    /// Directory of the local backend: alarms.json (settings) and ledger.sqlite3.
    #[arg(long, env = "DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// DynamoDB table of per-alarm settings (the original service's table; its hash key is
    /// the alarm name, whatever the attribute is called).
    #[arg(long, env = "DBTABLE", default_value = "cw-support-api", global = true)]
    pub dbtable: String,

    /// Region of the DynamoDB tables and CloudWatch metrics.
    #[arg(long, env = "DBREGION", default_value = "us-east-1", global = true)]
    pub dbregion: String,

    /// DynamoDB table of the ledger (`pk`/`sk` string keys, TTL on `expires_at`).
    #[arg(
        long,
        env = "LEDGER_TABLE",
        default_value = "cw-support-api-ledger",
        global = true
    )]
    pub ledger_table: String,

    /// Region of the AWS Support endpoint: us-east-1 for every commercial region
    /// (cn-north-1 for China, us-gov-west-1 for GovCloud), whatever DBREGION says.
    #[arg(
        long,
        env = "SUPPORT_REGION",
        default_value = "us-east-1",
        global = true
    )]
    pub support_region: String,

    /// (aws) How long one AWS Support call may take. CreateCase and AddCommunicationToCase
    /// are never resent on a timeout (they have no idempotency token): the case is looked
    /// up by its reference instead.
    #[arg(long, env = "SUPPORT_TIMEOUT", default_value = "10s", value_parser = duration_in::<100, 300>, global = true)]
    pub support_timeout: Duration,

    /// Read per-alarm settings from the alarm's `cw-support:` tags (CloudWatch
    /// ListTagsForResource, cached CONFIG_CACHE_TTL) on the aws backend.
    #[arg(long, env = "TAGS", value_enum, default_value_t = Switch::On, global = true)]
    pub tags: Switch,

    /// How long per-alarm settings read from DynamoDB are reused, so a storm of one alarm
    /// costs one read.
    #[arg(long, env = "CONFIG_CACHE_TTL", default_value = "60s", value_parser = duration_in::<0, 86_400>, global = true)]
    pub config_cache_ttl: Duration,

    /// How long a handled delivery or alarm event is remembered as such (SQS keeps a
    /// message 14 days at most).
    #[arg(long, env = "IDEMPOTENCY_TTL", default_value = "15d", value_parser = duration_in::<3_600_000, 31_622_400>, global = true)]
    pub idempotency_ttl: Duration,
}

/// How alarms become cases: what is opened, updated, folded and closed, and in which account.
#[derive(Debug, Clone, Args)]
pub struct CaseConfig {
    /// At most one "it happened again" update per alarm within this time; repeats in
    /// between are counted on the case's ledger entry.
    #[arg(long, env = "UPDATE_COOLDOWN", default_value = "10m", value_parser = duration_in::<0, 604_800>, global = true)]
    pub update_cooldown: Duration,

    /// More than this many ALARM → OK → ALARM cycles within FLAP_WINDOW and an alarm is
    /// flapping: one communication says so, further cycles are counted, not sent.
    #[arg(long, env = "FLAP_LIMIT", default_value_t = 3, global = true)]
    pub flap_limit: usize,

    /// The window FLAP_LIMIT counts cycles in.
    #[arg(long, env = "FLAP_WINDOW", default_value = "1h", value_parser = duration_in::<60_000, 604_800>, global = true)]
    pub flap_window: Duration,

    /// New cases per hour before further new alarms are folded into one storm case (AWS
    /// Support allows about 10 new cases per hour).
    #[arg(long, env = "STORM_CAP", default_value_t = 8, global = true)]
    pub storm_cap: usize,

    /// The lease of a claim to open a case: while CreateCase is in flight its owner renews
    /// it, keeping other deliveries (and instances) from opening one for the same alarm; a
    /// claim whose owner died lapses within it and is taken over.
    #[arg(long, env = "CLAIM_TTL", default_value = "15s", value_parser = duration_in::<1_000, 3_600>, global = true)]
    pub claim_ttl: Duration,

    /// Add a short note to the open case when its alarm returns to OK.
    #[arg(long, env = "RECOVERY_NOTE", default_value_t = true, action = ArgAction::Set, global = true)]
    pub recovery_note: bool,

    /// Resolve the case when its alarm returns to OK (otherwise a person closes it).
    #[arg(long, env = "CLOSE_ON_RECOVERY", default_value_t = false, action = ArgAction::Set, global = true)]
    pub close_on_recovery: bool,

    /// AWS Support service code for alarms with no `service_code` setting.
    #[arg(
        long,
        env = "DEFAULT_SERVICE_CODE",
        default_value = "amazon-elastic-compute-cloud-linux",
        global = true
    )]
    pub default_service_code: String,

    /// AWS Support category code for alarms with no `category_code` setting.
    #[arg(
        long,
        env = "DEFAULT_CATEGORY_CODE",
        default_value = "other",
        global = true
    )]
    pub default_category_code: String,

    /// AWS Health event categories worth a case (comma-separated; empty: all). Scheduled
    /// changes and account notifications are not incidents.
    #[arg(
        long,
        env = "HEALTH_CATEGORIES",
        default_value = "issue",
        global = true
    )]
    pub health_categories: String,

    /// AWS Health services worth a case, e.g. `EC2,RDS` (empty: all).
    #[arg(long, env = "HEALTH_SERVICES", default_value = "", global = true)]
    pub health_services: String,

    /// AWS Health regions worth a case, e.g. `eu-west-1,global` (empty: all).
    #[arg(long, env = "HEALTH_REGIONS", default_value = "", global = true)]
    pub health_regions: String,

    /// Who draws the graph attached to a metric alarm's new case: `cloudwatch`
    /// (GetMetricWidgetImage: three hours of the metric; aws backend), `local` (the alarm's
    /// own datapoints), `off`. `auto`: cloudwatch on the aws backend, local otherwise.
    #[arg(long, env = "GRAPHS", value_enum, default_value_t = Graphs::Auto, global = true)]
    pub graphs: Graphs,

    /// Accounts whose alarms open their case in their own account:
    /// `111122223333=arn:aws:iam::111122223333:role/cw-support,...` (STS AssumeRole,
    /// credentials kept until they expire). Other accounts use the service's own.
    #[arg(long, env = "ACCOUNT_ROLES", default_value = "", global = true)]
    pub account_roles: String,

    /// The support plan's promised time to AWS's first reply, per severity, that `report`
    /// holds each case to (none: no targets). The default is Business and Enterprise
    /// Support's; AWS changes its plans on 1 January 2027.
    #[arg(long, env = "SUPPORT_REPLY_TARGETS", default_value = crate::case::report::DEFAULT_TARGETS, value_parser = parse_reply_targets, global = true)]
    pub support_reply_targets: ReplyTargets,
}

/// Who may post: the SNS topics and signatures accepted, the bearer tokens, and the worker
/// daemon's networks.
#[derive(Debug, Clone, Args)]
pub struct TrustConfig {
    /// SNS topics this endpoint serves, comma-separated ARNs (`*` allowed as the whole
    /// region, never as the account). Empty: the topics of the service's own AWS account
    /// (aws backend, from STS), or none where that is unknown. `*` alone: any topic of any
    /// account (not recommended; logged at start-up).
    #[arg(long, env = "SNS_TOPIC_ARNS", default_value = "", value_parser = parse_topics, global = true)]
    pub sns_topic_arns: TopicAllowList,

    /// Refuse a direct SNS delivery whose Timestamp is older than this (403
    /// `stale_message`): a replay, since SNS retries for an hour at most. Envelopes read
    /// from SQS are exempt.
    #[arg(long, env = "SNS_MAX_AGE", default_value = "2h", value_parser = duration_in::<60_000, 2_592_000>, global = true)]
    pub sns_max_age: Duration,

    /// Directory of pinned SNS signing certificates: a file named like the certificate
    /// URL's file name (SimpleNotificationService-<hex>.pem) is used and nothing downloaded.
    #[arg(long, env = "SNS_CERT_DIR", global = true)]
    pub sns_cert_dir: Option<PathBuf>,

    /// Bearer tokens (comma-separated, 16+ characters) required on unsigned posts; empty:
    /// unsigned posts need none. Never logged.
    #[arg(
        long,
        env = "API_TOKENS",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true,
        value_parser = read_tokens,
        global = true
    )]
    pub api_tokens: TokensArg,

    /// Networks (CIDRs) whose worker-daemon deliveries need no token, because sqsd cannot
    /// send one. The TCP peer and every address in X-Forwarded-For, X-Real-IP and
    /// Forwarded must be in it, so a request a proxy forwarded from outside never passes.
    #[arg(
        long,
        env = "TRUST_SQSD_FROM",
        default_value = "127.0.0.0/8,::1/128",
        global = true
    )]
    pub trust_sqsd_from: CidrList,

    /// Verify the SNS signature of envelopes inside SQS bodies. Set false only for queues
    /// that only trusted producers can write.
    #[arg(long, env = "VERIFY_SQS_ENVELOPES", default_value_t = true, action = ArgAction::Set, global = true)]
    pub verify_sqs_envelopes: bool,

    /// Key (32+ characters) of the on-duty calendar feeds' secret URLs (`oncall feed
    /// PERSON`). Unset: kept in DATA_DIR on the embedded default; the feeds are off on the
    /// aws backend. Never logged.
    #[arg(long, env = "ONCALL_FEED_KEY", hide_env_values = true, global = true)]
    pub oncall_feed_key: Option<String>,

    /// Key (32+ characters) of the acknowledgement links in pages' messages. Unset: kept in
    /// DATA_DIR on the embedded default; no links on the aws backend. Never logged.
    #[arg(long, env = "PAGE_LINK_KEY", hide_env_values = true, global = true)]
    pub page_link_key: Option<String>,

    /// The service's address as people's phones reach it (`https://pager.example.com`):
    /// pages' messages carry an acknowledgement link under it. Unset: no links.
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// The web console: off, local (local accounts, `users add`, signed in at
    /// /console/login) or alb (behind an Application Load Balancer with OIDC sign-in, its
    /// signed token verified; needs CONSOLE_ALB_ARN and CONSOLE_ROLES).
    #[arg(long, env = "CONSOLE", value_enum, default_value_t = super::ConsoleMode::Off, global = true)]
    pub console: super::ConsoleMode,

    /// The load balancer's ARN: the only signer of console tokens believed; its region
    /// names the only endpoint its keys are fetched from.
    #[arg(long, env = "CONSOLE_ALB_ARN", global = true)]
    pub console_alb_arn: Option<String>,

    /// Who may use the console: `ROLE:ADDRESS`, `ROLE:@DOMAIN` or `ROLE:group:NAME` (a group
    /// the identity provider names in the token), comma-separated (roles: viewer,
    /// responder, admin); anyone not named is refused.
    #[arg(long, env = "CONSOLE_ROLES", global = true)]
    pub console_roles: Option<String>,
}

/// Where what happened to cases is told.
#[derive(Debug, Clone, Args)]
pub struct NotifyConfig {
    /// SNS topic told what happened to cases (opened, AWS replied, resolved, failed, folded).
    #[arg(long, env = "NOTIFY_TOPIC_ARN", global = true)]
    pub notify_topic_arn: Option<String>,

    /// Slack-compatible incoming webhook told the same (`{"text": ...}`). A secret: never
    /// logged or shown.
    #[arg(
        long,
        env = "NOTIFY_WEBHOOK_URL",
        hide_env_values = true,
        global = true
    )]
    pub notify_webhook_url: Option<String>,

    /// First pause before a notice is sent again to a sink that failed (doubled; three
    /// attempts in all).
    #[arg(long, env = "NOTIFY_RETRY", default_value = "2s", value_parser = duration_in::<10, 3_600>, global = true)]
    pub notify_retry: Duration,

    /// The escalation policy (an id in the on-duty file) of pages whose alarm names none
    /// (`alarms put NAME --route page|both [--policy ID]`).
    #[arg(long, env = "PAGE_POLICY", global = true)]
    pub page_policy: Option<String>,

    /// The address pages' e-mail is sent from, through Amazon SES (an identity verified
    /// there; aws backend). Unset: e-mail messages fail, on the page's timeline.
    #[arg(long, env = "PAGE_EMAIL_FROM", global = true)]
    pub page_email_from: Option<String>,

    /// Who places pages' voice calls: off, twilio (a Twilio-compatible API; needs
    /// TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM and PUBLIC_URL) or aws (AWS End
    /// User Messaging SendVoiceMessage from PAGE_VOICE_FROM).
    #[arg(long, env = "PAGE_VOICE", value_enum, default_value_t = super::VoiceProvider::Off, global = true)]
    pub page_voice: super::VoiceProvider,

    /// The origination identity (a phone number or its ARN) of AWS End User Messaging
    /// voice calls (PAGE_VOICE=aws).
    #[arg(long, env = "PAGE_VOICE_FROM", global = true)]
    pub page_voice_from: Option<String>,

    /// The Twilio-compatible account's SID (PAGE_VOICE=twilio).
    #[arg(long, env = "TWILIO_ACCOUNT_SID", global = true)]
    pub twilio_account_sid: Option<String>,

    /// The account's auth token: authenticates the calls and verifies the keypresses'
    /// signatures. Never logged.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true, global = true)]
    pub twilio_auth_token: Option<String>,

    /// The number calls come from (E.164).
    #[arg(long, env = "TWILIO_FROM", global = true)]
    pub twilio_from: Option<String>,

    /// The Twilio-compatible API's address.
    #[arg(
        long,
        env = "TWILIO_API_URL",
        default_value = "https://api.twilio.com",
        global = true
    )]
    pub twilio_api_url: String,
}

/// The SQS queue `consume` (and `serve --consume`) reads.
#[derive(Debug, Clone, Args)]
pub struct QueueConfig {
    /// The SQS queue `consume` (and `serve --consume`) reads: the worker queue the alarm
    /// topic delivers to. The endpoint comes from the SDK's chain (AWS_ENDPOINT_URL_SQS).
    #[arg(long, env = "QUEUE_URL", global = true)]
    pub queue_url: Option<String>,

    /// Messages `consume` handles at once (each also takes one of MAX_CONCURRENCY's slots).
    #[arg(long, env = "CONSUME_CONCURRENCY", default_value_t = 10, global = true)]
    pub consume_concurrency: usize,

    /// How long a message that failed in a way a retry can fix stays hidden before its
    /// next try; doubled on every further receive (at most 15 minutes).
    #[arg(long, env = "RETRY_VISIBILITY", default_value = "30s", value_parser = duration_in::<0, 43_200>, global = true)]
    pub retry_visibility: Duration,

    /// How often `consume` runs the periodic `reconcile` itself (there is no worker daemon
    /// to schedule it); each run publishes the `Task/Reconciled` heartbeat. 0s: never.
    #[arg(long, env = "RECONCILE_INTERVAL", default_value = "10m", value_parser = duration_in::<0, 86_400>, global = true)]
    pub reconcile_interval: Duration,
}

/// The service's own CloudWatch metrics.
#[derive(Debug, Clone, Args)]
pub struct TelemetryConfig {
    /// Publish CloudWatch metrics (namespace Support) with the aws backend.
    #[arg(long, env = "METRICS", value_enum, default_value_t = Switch::On, global = true)]
    pub metrics: Switch,

    /// How often metrics are published.
    #[arg(long, env = "METRICS_INTERVAL", default_value = "60s", value_parser = duration_in::<1_000, 3_600>, global = true)]
    pub metrics_interval: Duration,
}

/// Every option, in the order `--help` has always listed them (an option's place in this
/// list is its display order): grouping the fields must not reshuffle the help, and a
/// global option's place also decides where it falls among a subcommand's own options.
pub(super) const HELP_ORDER: [&str; 61] = [
    "port",
    "bind",
    "backend",
    "data_dir",
    "log_format",
    "request_timeout",
    "update_cooldown",
    "flap_limit",
    "flap_window",
    "storm_cap",
    "claim_ttl",
    "support_timeout",
    "max_concurrency",
    "shutdown_grace",
    "recovery_note",
    "close_on_recovery",
    "default_service_code",
    "default_category_code",
    "sns_topic_arns",
    "sns_max_age",
    "read_timeout",
    "sns_cert_dir",
    "api_tokens",
    "trust_sqsd_from",
    "verify_sqs_envelopes",
    "health_categories",
    "health_services",
    "health_regions",
    "graphs",
    "tags",
    "account_roles",
    "notify_topic_arn",
    "notify_webhook_url",
    "notify_retry",
    "page_policy",
    "page_email_from",
    "page_voice",
    "page_voice_from",
    "twilio_account_sid",
    "twilio_auth_token",
    "twilio_from",
    "twilio_api_url",
    "queue_url",
    "consume_concurrency",
    "retry_visibility",
    "reconcile_interval",
    "dbtable",
    "dbregion",
    "ledger_table",
    "support_region",
    "metrics",
    "metrics_interval",
    "config_cache_ttl",
    "idempotency_ttl",
    "oncall_feed_key",
    "page_link_key",
    "public_url",
    "console",
    "console_alb_arn",
    "console_roles",
    "support_reply_targets",
];

/// Gives each of the configuration's options its place in [`HELP_ORDER`].
pub(super) fn in_help_order(arg: Arg) -> Arg {
    match HELP_ORDER.iter().position(|id| arg.get_id() == *id) {
        Some(place) => arg.display_order(place),
        None => arg,
    }
}

impl StoreConfig {
    /// The aws backend's tables, regions and timeouts.
    pub(crate) fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.dbregion.clone(),
            config_table: self.dbtable.clone(),
            ledger_table: self.ledger_table.clone(),
            support_region: self.support_region.clone(),
            config_cache_ttl: self.config_cache_ttl,
            handled_ttl: self.idempotency_ttl,
            support_timeout: self.support_timeout,
        }
    }
}

impl CaseConfig {
    /// `ACCOUNT_ROLES` read: account id → role ARN, or what is wrong with it.
    pub(crate) fn account_roles(&self) -> Result<BTreeMap<String, String>, String> {
        let mut roles = BTreeMap::new();
        for entry in self
            .account_roles
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (account, role) = entry.split_once('=').ok_or_else(|| {
                format!("ACCOUNT_ROLES: {entry:?} is not `<account id>=<role ARN>`")
            })?;
            let (account, role) = (account.trim(), role.trim());
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "ACCOUNT_ROLES: {account:?} is not a 12-digit account id"
                ));
            }
            let parts: Vec<&str> = role.splitn(6, ':').collect();
            let is_role = parts.len() == 6
                && parts[0] == "arn"
                && parts[2] == "iam"
                && parts[4].len() == 12
                && parts[4].bytes().all(|b| b.is_ascii_digit())
                && parts[5]
                    .strip_prefix("role/")
                    .is_some_and(|n| !n.is_empty());
            if !is_role {
                return Err(format!(
                    "ACCOUNT_ROLES: {role:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
                ));
            }
            // The case is opened in the account whose role signs it: a role of another
            // account would open account A's cases in account B.
            if parts[4] != account {
                return Err(format!(
                    "ACCOUNT_ROLES: {role:?} is a role of account {}, not of {account}: the case would be opened in the wrong account",
                    parts[4]
                ));
            }
            roles.insert(account.to_owned(), role.to_owned());
        }
        Ok(roles)
    }

    /// Which AWS Health events are worth a case.
    pub(crate) fn health(&self) -> HealthFilter {
        HealthFilter {
            categories: list(&self.health_categories),
            services: list(&self.health_services),
            regions: list(&self.health_regions),
        }
    }
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

impl TrustConfig {
    /// The bearer tokens, or why `API_TOKENS` is malformed (never echoing it).
    pub(crate) fn api_tokens(&self) -> Result<ApiTokens, String> {
        self.api_tokens
            .0
            .clone()
            .map_err(|e| format!("API_TOKENS (value not shown): {e}"))
    }
}

fn parse_reply_targets(s: &str) -> Result<ReplyTargets, String> {
    ReplyTargets::parse(s)
}

fn parse_topics(s: &str) -> Result<TopicAllowList, String> {
    TopicAllowList::parse(s).map_err(|e| e.to_string())
}

/// `API_TOKENS` as given, checked after the command line is read: clap's own error for a
/// bad value prints the value, and no token may ever be printed.
#[derive(Clone, Debug)]
pub struct TokensArg(Result<ApiTokens, String>);

fn read_tokens(s: &str) -> Result<TokensArg, String> {
    Ok(TokensArg(s.parse::<ApiTokens>()))
}
