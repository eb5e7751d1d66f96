//! `check` (every part of the configured backend, one line each) and `tables create`.

use std::io::Write;

use crate::backend::Backend;
use crate::backend::aws::{AwsClients, AwsSettings, dynamo};
use crate::cli::{BackendKind, Config};
use crate::domain::settings::AlarmConfigRecord;

use anyhow::Context;

use super::{Usage, write_out};

pub(super) async fn tables_create(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let settings = config.aws();
    let clients = AwsClients::load(&settings).await;
    let done = dynamo::create_tables(
        &clients.dynamodb,
        &settings.config_table,
        &settings.ledger_table,
    )
    .await?;
    for (table, outcome) in done {
        let what = match outcome {
            dynamo::TableOutcome::Created => "created",
            dynamo::TableOutcome::AlreadyExists => "already exists",
        };
        write_out(out, &format!("{table} ({}): {what}", settings.region))?;
    }
    Ok(())
}

/// The local backend: the data directory, the ledger and the settings file.
async fn check_local(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = config.store.data_dir.display();
    let backend = crate::cli::startup::build(config)
        .await
        .with_context(|| format!("[FAIL] local backend in {dir}"))?
        .backend;
    write_out(out, &format!("[ ok ] ledger {dir}/ledger.sqlite3 opens"))?;
    let alarms = backend.config.list().await.context("[FAIL] settings")?;
    write_out(
        out,
        &format!(
            "[ ok ] settings {dir}/alarms.json: {} alarm(s)",
            alarms.len()
        ),
    )?;
    let windows = backend
        .config
        .windows()
        .await
        .context("[FAIL] maintenance windows")?;
    write_out(
        out,
        &format!("[ ok ] maintenance windows: {}", windows.len()),
    )?;
    write_out(
        out,
        "[ ok ] support desk: dry-run (cases are recorded, not opened; BACKEND=aws opens them)",
    )?;
    let problems = setting_problems(&backend, &alarms).await;
    for p in &problems {
        write_out(out, &format!("[FAIL] {p}"))?;
    }
    match problems.len() {
        0 => write_out(out, ALL_SETTINGS_USABLE),
        n => Err(anyhow::Error::msg(format!(
            "{n} problem(s) in the stored settings"
        ))),
    }
}

const ALL_SETTINGS_USABLE: &str =
    "[ ok ] every stored setting is usable and every service and category code is known";

/// Every stored setting a case could not use as it stands: a value that is not valid (a
/// hand-edited file, an item written by something else), or a service or category code the
/// desk does not know (unless the desk cannot say). Such an alarm's cases fall back to the
/// defaults, with a note.
async fn setting_problems(
    backend: &Backend,
    alarms: &[(String, AlarmConfigRecord)],
) -> Vec<String> {
    let catalog = match backend.desk.services().await {
        Ok(Some(c)) => Some(c),
        _ => None,
    };
    let mut problems = Vec::new();
    for (name, r) in alarms {
        if let Err(e) = r.validate() {
            problems.push(format!("alarm {name:?}: {e}"));
        }
        if let (Some(catalog), Some(service)) = (&catalog, r.service_code.as_deref())
            && let Err(e) = catalog.check(service, r.category_code.as_deref())
        {
            problems.push(format!("alarm {name:?}: {e}"));
        }
    }
    problems
}

/// Tries every part of the aws backend and prints one line per check.
pub(super) async fn check(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    if config.store.backend == BackendKind::Local {
        return check_local(config, out).await;
    }
    let settings = config.aws();
    let clients = AwsClients::load(&settings).await;
    let mut report = Report { out, failures: 0 };
    report.line(credentials(&clients).await)?;
    report.line(settings_table(&clients, &settings).await)?;
    report.line(ledger_table(&clients, &settings).await)?;
    report.line(ledger_transactions(&clients, &settings).await)?;
    report.line(support_api(&clients, &settings).await)?;
    if let Ok(backend) = Backend::on_aws(clients.clone(), &settings).await
        && let Ok(alarms) = backend.config.list().await
    {
        let problems = setting_problems(&backend, &alarms).await;
        let ok = problems.is_empty();
        for p in problems {
            report.line(Err(p))?;
        }
        if ok {
            let line = ALL_SETTINGS_USABLE.trim_start_matches("[ ok ] ");
            report.line(Ok(line.into()))?;
        }
    }
    if report.failures > 0 {
        return Err(anyhow::Error::msg(format!(
            "{} check(s) failed",
            report.failures
        )));
    }
    Ok(())
}

/// What one check found: `Ok` with what works, or `Err` with what does not.
type Checked = Result<String, String>;

/// The lines `check` prints, `[ ok ]` or `[FAIL]` each, with the failures counted for its
/// exit status.
struct Report<'a> {
    out: &'a mut dyn Write,
    failures: usize,
}

impl Report<'_> {
    fn line(&mut self, checked: Checked) -> anyhow::Result<()> {
        let (mark, what) = match checked {
            Ok(what) => (" ok ", what),
            Err(what) => {
                self.failures += 1;
                ("FAIL", what)
            }
        };
        write_out(self.out, &format!("[{mark}] {what}"))
    }
}

async fn credentials(clients: &AwsClients) -> Checked {
    match clients.access_key_prefix().await {
        Ok(prefix) => Ok(format!("credentials found (access key {prefix}…)")),
        Err(e) => Err(format!("credentials: {}", crate::errors::Chain(&e))),
    }
}

async fn settings_table(clients: &AwsClients, settings: &AwsSettings) -> Checked {
    match dynamo::hash_key_of(&clients.dynamodb, &settings.config_table).await {
        Ok(key) => Ok(format!(
            "settings table {} (hash key {key})",
            settings.config_table
        )),
        Err(e) => Err(format!("settings table: {e}")),
    }
}

async fn ledger_table(clients: &AwsClients, settings: &AwsSettings) -> Checked {
    match dynamo::ledger_keys(&clients.dynamodb, &settings.ledger_table).await {
        Ok(keys)
            if keys
                == [
                    ("pk".to_owned(), "HASH".to_owned()),
                    ("sk".to_owned(), "RANGE".to_owned()),
                ] =>
        {
            Ok(format!("ledger table {} (pk, sk)", settings.ledger_table))
        }
        Ok(keys) => Err(format!(
            "ledger table {} has keys {keys:?}, expected pk (HASH) and sk (RANGE)",
            settings.ledger_table
        )),
        Err(e) => Err(format!("ledger table: {e}")),
    }
}

/// One transaction that writes nothing: the ledger's writes are allowed, not only reads.
async fn ledger_transactions(clients: &AwsClients, settings: &AwsSettings) -> Checked {
    let ledger = crate::backend::aws::dynamo::DynamoLedger::on(clients, settings);
    match ledger.probe_transactions().await {
        Ok(()) => Ok("ledger transactions reach DynamoDB".into()),
        Err(e) => Err(format!("ledger transactions: {e}")),
    }
}

async fn support_api(clients: &AwsClients, settings: &AwsSettings) -> Checked {
    let desk = crate::backend::aws::support::AwsSupportDesk::new(clients.support.clone());
    match desk.allowed_severities().await {
        Ok(levels) => {
            let codes: Vec<&str> = levels.iter().map(|s| s.as_str()).collect();
            Ok(format!(
                "AWS Support API reachable ({}); severities allowed: {}",
                settings.support_region,
                codes.join(", ")
            ))
        }
        Err(e) => Err(format!("AWS Support API: {e}")),
    }
}

/// `check --alarms`: the account's alarms (aws), held to what this service needs; exit
/// status 0 only when nothing needs fixing.
pub(super) async fn alarms(
    config: &Config,
    json: bool,
    subscribers: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    use crate::backend::aws::readiness;
    use crate::case::readiness::{Facts, check};
    if config.store.backend == BackendKind::Local {
        return Err(Usage(
            "check --alarms asks CloudWatch and SNS: run it with BACKEND=aws".into(),
        )
        .into());
    }
    let settings = config.aws();
    let clients = AwsClients::load(&settings).await;
    let endpoints = endpoints(config, &clients, subscribers).await?;
    let alarms = readiness::alarms(&clients).await?;
    // The SNS topics the actions name (other actions: Auto Scaling, Lambda, ...), and those
    // SNS_TOPIC_ARNS names.
    let topics: std::collections::BTreeMap<&str, crate::inbound::sns::TopicArn> = alarms
        .iter()
        .flat_map(|a| a.alarm_actions.iter().chain(&a.ok_actions))
        .filter_map(|t| Some((t.as_str(), crate::inbound::sns::TopicArn::parse(t).ok()?)))
        .collect();
    let patterns = config.trust.sns_topic_arns.patterns();
    let allowed: Vec<String> = topics
        .iter()
        .filter(|(_, arn)| patterns.iter().any(|p| p.matches(arn)))
        .map(|(t, _)| (*t).to_owned())
        .collect();
    let subscribed =
        readiness::subscriptions(&clients, topics.keys().map(|t| (*t).to_owned()), &endpoints)
            .await;
    let backend = Backend::on_aws(clients.clone(), &settings).await?;
    let named: Vec<String> = backend
        .config
        .list()
        .await
        .context("the stored settings")?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let r = check(&Facts {
        alarms: &alarms,
        topics: &subscribed,
        allowed_topics: &allowed,
        settings: &named,
        endpoint: endpoints.first(),
    });
    match json {
        true => write_out(out, &super::pretty(&r)?)?,
        false => write!(
            out,
            "{}",
            crate::escape::printable(&readiness_text(&r, &settings.region, endpoints.is_empty()))
        )?,
    }
    match r.findings.len() {
        0 => Ok(()),
        n => Err(anyhow::Error::msg(format!("{n} thing(s) to fix"))),
    }
}

/// `check --alarms` for a person: a line per finding with its fix, then the ready alarms.
fn readiness_text(
    r: &crate::case::readiness::Readiness,
    region: &str,
    no_endpoint: bool,
) -> String {
    let mut text = format!(
        "[ ok ] {} alarm(s) in {region}; {} reach this service\n",
        r.alarms,
        r.routed.len()
    );
    if no_endpoint {
        text.push_str("[warn] this service's own endpoint is unknown (set PUBLIC_URL or QUEUE_URL, or name it with --subscriber): no subscription can be recognised as its\n");
    }
    for f in &r.findings {
        text.push_str(&format!(
            "[FAIL] {:?}: {}\n       fix: {}\n",
            f.alarm, f.detail, f.fix
        ));
    }
    for name in &r.ready {
        text.push_str(&format!("[ ok ] {name:?} is ready\n"));
    }
    text
}

/// Where subscriptions to this service deliver: PUBLIC_URL's `/serviceme`, QUEUE_URL's queue
/// (its ARN, asked of SQS) and each `--subscriber`.
async fn endpoints(
    config: &Config,
    clients: &AwsClients,
    subscribers: &[String],
) -> anyhow::Result<Vec<crate::case::readiness::Endpoint>> {
    use crate::case::readiness::Endpoint;
    let url = |u: &str| -> Option<Endpoint> {
        let protocol = u.split_once("://")?.0.to_ascii_lowercase();
        matches!(protocol.as_str(), "http" | "https").then(|| Endpoint {
            protocol,
            endpoint: u.to_owned(),
        })
    };
    let mut out = Vec::new();
    if let Some(public) = &config.trust.public_url {
        out.extend(url(&format!("{}/serviceme", public.trim_end_matches('/'))));
    }
    if let Some(queue) = &config.queue.queue_url {
        let arn = crate::backend::aws::readiness::queue_arn(clients, queue)
            .await
            .with_context(|| format!("QUEUE_URL {queue}"))?;
        out.push(Endpoint {
            protocol: "sqs".into(),
            endpoint: arn,
        });
    }
    for s in subscribers {
        let e = match s.starts_with("arn:") && s.split(':').nth(2) == Some("sqs") {
            true => Some(Endpoint {
                protocol: "sqs".into(),
                endpoint: s.clone(),
            }),
            false => url(s),
        };
        out.push(e.ok_or_else(|| {
            Usage(format!(
                "--subscriber {s:?}: an SQS queue ARN or an http(s) URL"
            ))
        })?);
    }
    Ok(out)
}
