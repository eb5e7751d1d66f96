//! The subcommands and their own arguments (the global options are [`super::Config`]):
//! kept apart from the configuration so each reads as one list.

use std::time::Duration;

use clap::{ArgAction, Args, Subcommand};

use super::duration_in;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve {
        /// Also consume the SQS queue at QUEUE_URL, as `consume` does.
        #[arg(long)]
        consume: bool,
    },
    /// Read the SQS queue at QUEUE_URL and handle each message as the worker daemon's
    /// delivery (for containers with no worker daemon and no public endpoint); GET /healthz
    /// is served on PORT for the orchestrator.
    Consume,
    /// Move messages from a dead-letter queue back through the same path (what was handled
    /// already is a duplicate), with a summary; `--dry-run` only shows what would happen.
    Redrive(RedriveArgs),
    /// Per-alarm settings: priority, action text, cc addresses, muting.
    #[command(subcommand)]
    Alarms(AlarmsCommand),
    /// What the service did: the ledger of decisions and the cases they touched.
    #[command(subcommand)]
    Cases(CasesCommand),
    /// Maintenance windows ("I'm fixing it"): matching alarms are suppressed meanwhile.
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// DynamoDB tables (aws backend).
    #[command(subcommand)]
    Tables(TablesCommand),
    /// Who is on duty: people, schedules and escalation policies, kept as one TOML file.
    #[command(subcommand)]
    Oncall(OncallCommand),
    /// Pages: the people on duty called about an alarm, stage after stage, until someone
    /// acknowledges it.
    #[command(subcommand)]
    Pages(PagesCommand),
    /// Who was called out, and when: the month's report, for callout pay.
    #[command(subcommand)]
    Callouts(CalloutsCommand),
    /// The console's local accounts (passwords kept as Argon2id hashes).
    #[command(subcommand)]
    Users(UsersCommand),
    /// How well support worked: cases opened by severity (and how many recovered by
    /// themselves), pages and what became of them, time to acknowledge and to resolve
    /// (median, 90th percentile), AWS's first reply against SUPPORT_REPLY_TARGETS, the
    /// noisiest alarms and each person's callouts.
    Report {
        /// A month (YYYY-MM, UTC).
        #[arg(long, conflicts_with = "since")]
        month: Option<String>,
        /// The last span up to now (e.g. 30d, 12h); 30 days unless told.
        #[arg(long)]
        since: Option<String>,
        /// Print JSON (stable field names).
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV: one metric per row.
        #[arg(long)]
        csv: bool,
    },
    /// Check the configured backend. aws: credentials, tables and their keys, Support API
    /// access and the severities the plan allows; local: the data directory and its files.
    /// Exit status 0 only if everything is usable.
    Check {
        /// Instead: whether the account's CloudWatch alarms are ready to be served (aws):
        /// alarms that reach this service without an OK action or settings, settings for
        /// alarms that do not exist, alarms meant for it whose topic does not deliver to it,
        /// composite alarms whose children page on their own; each with its fix.
        #[arg(long)]
        alarms: bool,
        /// With --alarms: print JSON.
        #[arg(long, requires = "alarms")]
        json: bool,
        /// With --alarms: another endpoint subscriptions to this service deliver to (an SQS
        /// queue ARN, as the Elastic Beanstalk worker queue's, or an https URL); PUBLIC_URL's
        /// /serviceme and QUEUE_URL's queue are known already. Repeat for several.
        #[arg(long, requires = "alarms")]
        subscriber: Vec<String>,
    },
    /// Run one body (a file, or - for stdin) through the parsing and decision code and print
    /// the outcome and the exact case it would open (when really opened, a `Reference:` line
    /// is put first). Changes nothing; checks no signature.
    Process {
        /// Path of a JSON body, or - to read standard input.
        file: String,
    },
}

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The dead-letter queue to drain.
    #[arg(long, env = "DLQ_URL")]
    pub from: String,
    /// Show how each message would be handled (outcome and case), changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop after this many messages (0: until the queue is empty).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum PagesCommand {
    /// Pages, newest first.
    List {
        /// Only pages still open or acknowledged.
        #[arg(long)]
        live: bool,
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON: id, alarm, state, owner, ...
        #[arg(long)]
        json: bool,
    },
    /// One page: its state, owner, every message sent and its timeline.
    Show {
        id: String,
        /// Print JSON: state, owner, messages (person, channel, to, text, at, stage), timeline.
        #[arg(long)]
        json: bool,
    },
    /// "I have it": PERSON owns the page and nobody else is called.
    Ack {
        id: String,
        /// Who has it (a person of the on-duty file).
        #[arg(long)]
        by: String,
    },
    /// Call the next stage now.
    Escalate {
        id: String,
        /// Who passed it on (a person of the on-duty file).
        #[arg(long)]
        by: Option<String>,
    },
    /// It is over: the people paged are told.
    Resolve {
        id: String,
        /// Who resolved it (a person of the on-duty file).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add an account, or replace one's role and password. The password is read from
    /// standard input (its first line), never from the command line.
    Add {
        name: String,
        /// viewer (read), responder (act on pages), admin (settings, schedules, users).
        #[arg(long)]
        role: String,
    },
    /// The accounts and their roles.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an account.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CalloutsCommand {
    /// Each person's callouts, off-hours callouts and hours on duty in a month (each person's
    /// own month, in their time zone).
    Report {
        /// The month: YYYY-MM.
        #[arg(long)]
        month: String,
        /// Print CSV.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OncallCommand {
    /// Check a file as a whole and save it; nothing is saved if anything is wrong.
    Import { file: std::path::PathBuf },
    /// Print the saved file (the same file `import` takes), or with --ical a schedule's
    /// shifts as an iCalendar file (RFC 5545), one event per shift.
    Export {
        /// The schedule whose shifts to write as iCalendar.
        #[arg(long, value_name = "SCHEDULE")]
        ical: Option<String>,
        /// Only this person's shifts (with --ical).
        #[arg(long, requires = "ical")]
        person: Option<String>,
        /// From (with --ical; RFC 3339 or local in the schedule's zone); default 7 days ago.
        #[arg(long, requires = "ical")]
        from: Option<String>,
        /// Until (with --ical); default 97 days after --from (90 days from now).
        #[arg(long, requires = "ical")]
        until: Option<String>,
    },
    /// Who is on duty in each schedule, and until when.
    Now {
        /// The instant to ask about (RFC 3339, or a local time in UTC); default now.
        #[arg(long)]
        at: Option<String>,
        /// Print JSON: schedule, person, until.
        #[arg(long)]
        json: bool,
    },
    /// A schedule's shifts between two times (default: the next 7 days).
    Show {
        schedule: String,
        /// From (RFC 3339, or a local time in the schedule's zone); default now.
        #[arg(long)]
        from: Option<String>,
        /// Until; default 7 days after --from.
        #[arg(long)]
        until: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The secret path of PERSON's calendar feed (`GET` it from the service; a calendar app
    /// subscribes to it). Anyone with it sees that person's shifts: share it with them only.
    Feed { person: String },
    /// Put PERSON on duty in SCHEDULE from then until then (local times in the schedule's
    /// zone), saved in the file.
    Override {
        schedule: String,
        person: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        until: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Start a window now.
    Start(WindowStart),
    /// List the windows, active and recent.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End a window now (alarms still in ALARM then raise their case at the next
    /// reconcile); with no id, every active window.
    Stop { id: Option<String> },
}

#[derive(Debug, Args)]
pub struct WindowStart {
    /// How long (each occurrence, with --every): 30m, 2h, 1d; from 1m to 366d (with
    /// --every, at most 7d).
    #[arg(long = "for", value_parser = duration_in::<60_000, 31_622_400>)]
    pub duration: Duration,
    /// Why (recorded with every alarm it suppresses).
    #[arg(long)]
    pub reason: String,
    /// Only alarms whose name matches (`*` and `?` wildcards); default all alarms.
    #[arg(long = "alarm")]
    pub alarm: Option<String>,
    /// Start later: a local date and time in --tz (`2026-12-05T02:00`, `2026-12-05
    /// 02:00`), or an instant with its offset (`2026-12-05T01:00:00Z`, `...+01:00`).
    #[arg(long)]
    pub at: Option<String>,
    /// Repeat weekly: `daily 02:00`, `weekdays 22:30`, `sat,sun 03:00` (local time in
    /// --tz); each occurrence lasts --for.
    #[arg(long)]
    pub every: Option<String>,
    /// The time zone of --at and --every (IANA name, daylight saving followed).
    #[arg(long, default_value = "UTC")]
    pub tz: String,
}

#[derive(Debug, Subcommand)]
pub enum TablesCommand {
    /// Create DBTABLE and LEDGER_TABLE (on-demand, TTL on the ledger). Safe to run twice.
    Create,
}

#[derive(Debug, Subcommand)]
pub enum AlarmsCommand {
    /// Create or change an alarm's settings; options not given keep their stored value.
    Put(Box<AlarmPut>),
    /// Print an alarm's settings as JSON. On the aws backend (TAGS=on) the alarm is looked
    /// up by name in this account (DescribeAlarms) and its `cw-support:` tags merged in, with
    /// where each field came from (`sources`), as a case would use them.
    Get {
        name: String,
        /// The alarm's ARN, instead of looking it up by name (another account's alarm).
        #[arg(long)]
        arn: Option<String>,
    },
    /// List all alarms that have settings.
    List,
    /// Delete an alarm's settings (it falls back to the defaults).
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct AlarmPut {
    /// The alarm name, exactly as in CloudWatch.
    pub name: String,
    /// Case severity: low, normal, high, urgent or critical.
    #[arg(long)]
    pub priority: Option<String>,
    /// Instructions for the support engineer: JSON (pretty-printed in the case) or plain text.
    #[arg(long)]
    pub action: Option<String>,
    /// An address to copy on the case (repeat for several; at most 10).
    #[arg(long = "cc")]
    pub cc: Vec<String>,
    /// Case subject (default: the alarm name).
    #[arg(long)]
    pub subject: Option<String>,
    /// AWS Support service code for this alarm's cases.
    #[arg(long)]
    pub service_code: Option<String>,
    /// AWS Support category code for this alarm's cases.
    #[arg(long)]
    pub category_code: Option<String>,
    /// `false` mutes the alarm: its deliveries are recorded as suppressed.
    #[arg(long, action = ArgAction::Set)]
    pub enabled: Option<bool>,
    /// An alarm name or glob (repeat for several) whose open case takes this alarm's news
    /// instead of a case of its own (`--inhibited-by ''` clears the list).
    #[arg(long = "inhibited-by")]
    pub inhibited_by: Vec<String>,
    /// The group whose one case this alarm shares with the group's other alarms.
    #[arg(long)]
    pub group: Option<String>,
    /// Where the alarm goes: case (an AWS Support case, the default), page (the people on
    /// duty, by its escalation policy) or both.
    #[arg(long)]
    pub route: Option<String>,
    /// The escalation policy of its pages (an id in the on-duty file; default PAGE_POLICY).
    #[arg(long)]
    pub policy: Option<String>,
    /// Start from empty settings instead of the stored ones.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Subcommand)]
pub enum CasesCommand {
    /// The latest decisions, newest first.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this alarm (its ARN, or its name when it has no ARN).
        #[arg(long)]
        alarm: Option<String>,
        /// How many decisions to show (0 = all).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One case: what was sent to support, and every decision that touched it.
    Show {
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A post-incident review draft, in Markdown: the timeline (alarm fired, case opened,
    /// pages and acknowledgements, AWS's replies, recovery, resolution) with times and
    /// durations, the people involved, the metric graph, and headings for cause and actions.
    Review {
        id: String,
        /// Save the graph attached to the case (PNG) here; the draft shows it.
        #[arg(long)]
        graph: Option<std::path::PathBuf>,
    },
}
