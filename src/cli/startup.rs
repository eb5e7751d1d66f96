//! Wiring: the one place the application is assembled from its configuration. [`build`]
//! opens the backend and puts the case logic together over it (graphs, tags, who is told,
//! where counters go); [`App::into_state`] adds the edge (SNS verification, the topic allow
//! list, tokens) and the HTTP limits. `serve`, `consume`, every other command and the tests
//! all start here, so what runs in production is what the tests run.

use std::sync::Arc;

use tracing::{info, warn};

use crate::backend::aws::AwsConfig;
use crate::backend::aws::metrics::CloudWatchMetrics;
use crate::backend::{Backend, BackendError, BackendKind};
use crate::case::CaseService;
use crate::cli::VoiceProvider;
use crate::cli::{Config, Graphs, Switch};
use crate::domain::signing::SigningKey;
use crate::inbound::gate::Gate;
use crate::inbound::http::AppState;
use crate::inbound::sns::{
    HttpsCertFetcher, HttpsSubscriptionConfirmer, TopicAllowList, Verifier, VerifierConfig,
};
use crate::oncall::feed::FeedKey;
use crate::paging::notices::Notifier;
use crate::paging::twilio::{TwilioAccount, TwilioVoice};
use crate::paging::webhook::WebhookSink;
use crate::ports::metrics::{MetricsSink, NoMetrics};
use crate::ports::notify::NoticeSink;
use crate::ports::pages::Transport;

/// The application: its backend and the case logic over it.
pub struct App {
    pub backend: Backend,
    pub cases: CaseService,
    pub metrics: Arc<dyn MetricsSink>,
    /// The CloudWatch publisher, when counters go there: closed after the server stops.
    pub publisher: Option<Arc<CloudWatchMetrics>>,
    /// The AWS configuration, loaded once: the aws backend's, or the one the SNS topic
    /// needed; `None` until something needs it.
    aws: Option<AwsConfig>,
    /// The voice calls' account, whose keypresses the HTTP edge verifies.
    twilio: Option<TwilioAccount>,
}

/// Why the application could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration itself is wrong (exit status 2).
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{what}")]
    Client {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The key of the on-duty calendar feeds' URLs: `ONCALL_FEED_KEY`, else on the embedded
/// default the one kept in `DATA_DIR` (made on first use); the aws backend without the
/// variable has none, since each instance would make its own and the URLs would differ.
pub(crate) fn feed_key(config: &Config) -> Result<Option<FeedKey>, StartupError> {
    let secret = secret(config, &config.trust.oncall_feed_key, "oncall-feed.key")?;
    secret
        .map(|s| FeedKey::new(&s).map_err(|e| StartupError::Config(e.to_string())))
        .transpose()
}

/// The key of pages' acknowledgement links (`PAGE_LINK_KEY`), found as the feeds' is.
fn page_link_key(config: &Config) -> Result<Option<SigningKey>, StartupError> {
    let secret = secret(config, &config.trust.page_link_key, "page-link.key")?;
    secret
        .map(|s| {
            SigningKey::new("PAGE_LINK_KEY", &s).map_err(|e| StartupError::Config(e.to_string()))
        })
        .transpose()
}

/// The console's gate (`CONSOLE=local|alb`): refused at start when half-configured (`alb`
/// without the load balancer's ARN or the roles).
pub(crate) fn console(
    config: &Config,
    backend: &Backend,
) -> Result<Option<crate::console::Console>, StartupError> {
    use crate::cli::ConsoleMode;
    use crate::console::SignIn;
    let sign_in = match config.trust.console {
        ConsoleMode::Off => return Ok(None),
        ConsoleMode::Local => SignIn::Local,
        ConsoleMode::Alb => {
            let arn = config.trust.console_alb_arn.as_deref().ok_or_else(|| {
                StartupError::Config(
                    "CONSOLE=alb needs CONSOLE_ALB_ARN (the load balancer's ARN)".into(),
                )
            })?;
            let roles = config.trust.console_roles.as_deref().ok_or_else(|| {
                StartupError::Config("CONSOLE=alb needs CONSOLE_ROLES (who may use it)".into())
            })?;
            let roles = crate::console::roles::Roles::parse(roles).map_err(StartupError::Config)?;
            let keys =
                crate::console::alb::HttpAlbKeys::new().map_err(|e| StartupError::Client {
                    what: "the load balancer's key client",
                    source: e.into(),
                })?;
            let verifier = crate::console::alb::AlbVerifier::new(arn, Box::new(keys))
                .map_err(StartupError::Config)?;
            SignIn::Alb { verifier, roles }
        }
    };
    Ok(Some(crate::console::Console {
        sign_in,
        store: backend.console.clone(),
        settings: backend.config.clone(),
        throttle: Default::default(),
    }))
}

/// Where pages' messages go: on the embedded default its local outbox (`pages show`); on
/// AWS, SMS through SNS, e-mail through SES (`PAGE_EMAIL_FROM`) and each person's webhook.
/// Voice calls by `PAGE_VOICE`, on either backend (the outbox when off, on the default).
async fn transport(
    config: &Config,
    backend: &Backend,
    aws: &mut Option<AwsConfig>,
) -> Result<(Arc<dyn Transport>, Option<TwilioAccount>), StartupError> {
    use crate::paging::transport::Channels;
    let mut channels = match backend.local() {
        Some(_) => {
            let outbox: Arc<dyn Transport> = Arc::new(crate::backend::local::LocalOutbox);
            Channels {
                sms: Some(outbox.clone()),
                email: Some(outbox.clone()),
                voice: Some(outbox.clone()),
                webhook: Some(outbox),
                case: None,
            }
        }
        None => aws_channels(config, aws).await?,
    };
    let mut twilio = None;
    match config.notify.page_voice {
        VoiceProvider::Off => {}
        VoiceProvider::Aws => {
            let from = config.notify.page_voice_from.as_deref().ok_or_else(|| {
                StartupError::Config(
                    "PAGE_VOICE=aws needs PAGE_VOICE_FROM (the origination number)".into(),
                )
            })?;
            let sdk = load_aws_once(aws, &config.store.dbregion).await;
            channels.voice = Some(sdk.voice_transport(from));
        }
        VoiceProvider::Twilio => {
            let account = twilio_account(config)?;
            let voice = TwilioVoice::new(account.clone()).map_err(|e| StartupError::Client {
                what: "the voice calls' client",
                source: e.into(),
            })?;
            channels.voice = Some(Arc::new(voice));
            twilio = Some(account);
        }
    }
    // The AWS case is told through the desk on either backend (the dry-run desk records it).
    channels.case = Some(Arc::new(crate::case::told::DeskTransport::new(
        backend.desk.clone(),
    )));
    Ok((Arc::new(channels), twilio))
}

async fn aws_channels(
    config: &Config,
    aws: &mut Option<AwsConfig>,
) -> Result<crate::paging::transport::Channels, StartupError> {
    let sdk = load_aws_once(aws, &config.store.dbregion).await;
    let email = match &config.notify.page_email_from {
        Some(from) => {
            crate::domain::settings::EmailAddress::parse(from)
                .map_err(|e| StartupError::Config(format!("PAGE_EMAIL_FROM: {e}")))?;
            Some(sdk.email_transport(from))
        }
        None => None,
    };
    let webhook =
        crate::paging::transport::PersonalWebhook::new().map_err(|e| StartupError::Client {
            what: "the personal webhooks' client",
            source: e.into(),
        })?;
    Ok(crate::paging::transport::Channels {
        sms: Some(sdk.sms_transport()),
        email,
        voice: None,
        webhook: Some(Arc::new(webhook)),
        case: None,
    })
}

/// The Twilio-compatible account, whole: every setting and `PUBLIC_URL` (where the
/// keypresses come back), or the start is refused naming what is missing.
pub(crate) fn twilio_account(config: &Config) -> Result<TwilioAccount, StartupError> {
    let n = &config.notify;
    let missing: Vec<&str> = [
        ("TWILIO_ACCOUNT_SID", n.twilio_account_sid.is_none()),
        ("TWILIO_AUTH_TOKEN", n.twilio_auth_token.is_none()),
        ("TWILIO_FROM", n.twilio_from.is_none()),
        ("PUBLIC_URL", config.trust.public_url.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    if !missing.is_empty() {
        return Err(StartupError::Config(format!(
            "PAGE_VOICE=twilio needs {}",
            missing.join(", ")
        )));
    }
    let from = n.twilio_from.clone().unwrap_or_default();
    if !crate::domain::sms_reply::is_e164(&from) {
        return Err(StartupError::Config(format!(
            "TWILIO_FROM {from:?} is not a phone number in E.164 form"
        )));
    }
    Ok(TwilioAccount {
        sid: n.twilio_account_sid.clone().unwrap_or_default(),
        token: n.twilio_auth_token.clone().unwrap_or_default(),
        from,
        api: n.twilio_api_url.clone(),
        public_url: config.trust.public_url.clone().unwrap_or_default(),
    })
}

/// The acknowledgement links of pages' messages, when `PUBLIC_URL` says where the service
/// is; refused at start when it is set and there is no key (the aws backend needs
/// `PAGE_LINK_KEY`), so a half-configured pager fails now, not at 3 a.m.
pub(crate) fn page_links(
    config: &Config,
) -> Result<Option<crate::paging::links::PageLinks>, StartupError> {
    let Some(url) = &config.trust.public_url else {
        return Ok(None);
    };
    let key = page_link_key(config)?.ok_or_else(|| {
        StartupError::Config(
            "PUBLIC_URL is set but PAGE_LINK_KEY is not: set the same 32+ character key on \
             every instance, or unset PUBLIC_URL"
                .into(),
        )
    })?;
    crate::paging::links::PageLinks::new(key, url)
        .map(Some)
        .map_err(|e| StartupError::Config(e.to_string()))
}

/// A secret from its setting, else on the embedded default kept in `DATA_DIR/file`.
fn secret(
    config: &Config,
    given: &Option<String>,
    file: &str,
) -> Result<Option<String>, StartupError> {
    if let Some(secret) = given {
        return Ok(Some(secret.clone()));
    }
    match config.store.backend {
        BackendKind::Aws => Ok(None),
        BackendKind::Local => kept_secret(&config.store.data_dir, file)
            .map(Some)
            .map_err(|e| StartupError::Client {
                what: "a key kept in DATA_DIR",
                source: e.into(),
            }),
    }
}

/// `DATA_DIR/<file>`: read, or made once (32 random bytes, readable by the owner only,
/// written whole under another name and linked into place, so two processes starting
/// together keep one key and never read half of it).
fn kept_secret(data_dir: &std::path::Path, file: &str) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(file);
    let read = |p: &std::path::Path| std::fs::read_to_string(p);
    if path.exists() {
        return read(&path);
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = crate::domain::signing::fresh_secret()
        .ok_or_else(|| std::io::Error::other("no randomness for a key"))?;
    let fresh = data_dir.join(format!("{file}.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&fresh)?;
    f.write_all(secret.as_bytes())?;
    f.sync_all()?;
    let linked = std::fs::hard_link(&fresh, &path);
    std::fs::remove_file(&fresh)?;
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => read(&path),
    }
}

/// Opens the configured backend and assembles the application on it.
pub async fn build(config: &Config) -> Result<App, StartupError> {
    let settings = config.backend_settings().map_err(StartupError::Config)?;
    build_on(config, Backend::open(&settings).await?).await
}

/// The application on a backend already open (the tests give theirs stand-in stores).
pub async fn build_on(config: &Config, backend: Backend) -> Result<App, StartupError> {
    let mut aws = backend.aws().map(|clients| clients.config());
    let (metrics, publisher) = match (backend.aws(), config.telemetry.metrics) {
        (Some(clients), Switch::On) => {
            let publisher = Arc::new(CloudWatchMetrics::start(
                clients.cloudwatch.clone(),
                config.telemetry.metrics_interval,
            ));
            (publisher.clone() as Arc<dyn MetricsSink>, Some(publisher))
        }
        _ => (Arc::new(NoMetrics) as Arc<dyn MetricsSink>, None),
    };
    let grapher: Arc<dyn crate::ports::graph::Grapher> = match (config.cases.graphs, backend.aws())
    {
        (Graphs::Off, _) => Arc::new(crate::ports::graph::NoGrapher),
        (Graphs::Auto | Graphs::Cloudwatch, Some(clients)) => clients.grapher(),
        _ => Arc::new(crate::backend::local::graph::LocalGrapher),
    };
    let mut cases = CaseService::new(
        backend.config.clone(),
        backend.ledger.clone(),
        backend.desk.clone(),
        config.policy(),
    )
    .with_grapher(grapher)
    .with_metrics(metrics.clone());
    let notifier = notifier(config, &backend, &mut aws, metrics.clone()).await?;
    let mut twilio = None;
    if let Some(pages) = &backend.pages {
        let (transport, account) = transport(config, &backend, &mut aws).await?;
        twilio = account;
        let pager = crate::paging::engine::Pager::new(
            pages.clone(),
            backend.config.clone(),
            transport,
            config.notify.page_policy.clone(),
        )
        .with_metrics(metrics.clone())
        .with_notifier(notifier.clone())
        .with_links(page_links(config)?)
        .with_cases(backend.ledger.clone());
        cases = cases.with_pager(Arc::new(pager));
    }
    cases = cases.with_notifier(notifier);
    if let (Switch::On, Some(clients)) = (config.store.tags, backend.aws()) {
        cases = cases.with_tags(Arc::new(clients.tags(config.store.config_cache_ttl)));
    }
    Ok(App {
        backend,
        cases,
        metrics,
        publisher,
        aws,
        twilio,
    })
}

/// The AWS configuration already loaded, or loaded now (in DBREGION) and kept.
async fn load_aws_once(loaded: &mut Option<AwsConfig>, region: &str) -> AwsConfig {
    match loaded {
        Some(c) => c.clone(),
        None => loaded.insert(AwsConfig::load(region).await).clone(),
    }
}

impl App {
    /// The SQS queue at `url` (`consume`, `redrive`), on the configuration loaded once.
    pub async fn work_queue(
        &mut self,
        config: &Config,
        url: &str,
    ) -> Arc<dyn crate::ports::queue::WorkQueue> {
        load_aws_once(&mut self.aws, &config.store.dbregion)
            .await
            .work_queue(url)
    }

    /// The HTTP edge over this application: the gate as configured, with the service's own
    /// account when SNS topics default to it, and the configured limits.
    pub async fn into_state(self, config: &Config) -> Result<AppState, StartupError> {
        // The service's own account, asked once: alarms from accounts it does not serve are
        // refused, and with no SNS_TOPIC_ARNS only its topics are served.
        let own = match self.backend.aws() {
            Some(clients) => match clients.own_account().await {
                Ok(account) => Some(account),
                Err(e) => {
                    warn!(error = %e, "the service's own AWS account is unknown (STS GetCallerIdentity failed): alarms from any account are served with its own credentials unless ACCOUNT_ROLES maps them");
                    None
                }
            },
            None => None,
        };
        let cases = self.cases.with_own_account(own.clone());
        let own_account = own_account(config, own);
        Ok(AppState::new(
            cases,
            gate(config, own_account)?,
            config.server.request_timeout,
        )
        .with_metrics(self.metrics)
        .with_limits(config.server.max_concurrency, config.server.shutdown_grace)
        .with_read_timeout(config.server.read_timeout)
        .with_voice(self.twilio)
        .with_console(console(config, &self.backend)?)
        .with_feed(
            feed_key(config)?.map(|key| crate::inbound::http::feed::Feed {
                key,
                store: self.backend.config.clone(),
            }),
        ))
    }
}

/// Who is told what happened to cases: the local ledger on the embedded default, and the
/// SNS topic and webhook when configured.
async fn notifier(
    config: &Config,
    backend: &Backend,
    aws: &mut Option<AwsConfig>,
    metrics: Arc<dyn MetricsSink>,
) -> Result<Notifier, StartupError> {
    let mut sinks: Vec<Arc<dyn NoticeSink>> = Vec::new();
    if let Some(local) = backend.local() {
        sinks.push(local.notices.clone());
    }
    if let Some(topic) = &config.notify.notify_topic_arn {
        crate::inbound::sns::TopicArn::parse(topic).map_err(|_| {
            StartupError::Config(format!(
                "NOTIFY_TOPIC_ARN {topic:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
            ))
        })?;
        sinks.push(
            load_aws_once(aws, &config.store.dbregion)
                .await
                .notice_sink(topic),
        );
    }
    if let Some(url) = &config.notify.notify_webhook_url {
        check_webhook_url(url).map_err(StartupError::Config)?;
        let sink = WebhookSink::new(url.clone()).map_err(|e| StartupError::Client {
            what: "the webhook client (NOTIFY_WEBHOOK_URL)",
            source: e.into(),
        })?;
        sinks.push(Arc::new(sink));
    }
    Ok(Notifier::new(
        backend.outbox.clone(),
        sinks,
        metrics,
        config.notify.notify_retry,
        Some(backend.desk.clone()),
    ))
}

/// A webhook URL must be https, or http to this host only (a local relay): checked at
/// start, so a typo fails now and not at 3 a.m. The URL is a secret: never in the error.
fn check_webhook_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("NOTIFY_WEBHOOK_URL (value not shown): {why}"));
    let Ok(parsed) = url::Url::parse(url) else {
        return bad("not a URL (https://...)");
    };
    let local = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return bad("has no host"),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if local => Ok(()),
        "http" => bad("http is allowed only to this host (127.0.0.1, ::1, localhost); use https"),
        _ => bad("must be an https URL"),
    }
}

/// With no `SNS_TOPIC_ARNS`, the account whose topics are served: the aws backend asks STS
/// once; where it cannot be known, SNS messages are refused and the log says what to set.
fn own_account(config: &Config, own: Option<String>) -> Option<String> {
    const HOW: &str = "set SNS_TOPIC_ARNS to the alarm topics' ARNs (or `*` to accept any \
                       topic of any AWS account, not recommended)";
    match (&config.trust.sns_topic_arns, own) {
        (TopicAllowList::Any, _) => {
            warn!(
                "SNS_TOPIC_ARNS=*: messages from ANY SNS topic of ANY AWS account with a valid \
                 signature are accepted; anyone can subscribe this endpoint to their own topic"
            );
            None
        }
        (TopicAllowList::Listed(p), _) => {
            info!(
                topics = p.len(),
                "SNS: serving the topics in SNS_TOPIC_ARNS only"
            );
            None
        }
        (TopicAllowList::OwnAccount, Some(account)) => {
            info!(%account, "SNS: SNS_TOPIC_ARNS is empty, serving this account's topics only");
            Some(account)
        }
        (TopicAllowList::OwnAccount, None) => {
            warn!(
                "SNS: SNS_TOPIC_ARNS is empty and the service's own AWS account is unknown \
                 (the local backend knows none; on aws, STS failed), so every SNS message is \
                 refused with 403 topic_not_allowed; {HOW}"
            );
            None
        }
    }
}

/// The edge checks as configured: SNS verification with the system's trusted roots (or
/// pinned certificates), the topic allow list, tokens and trusted worker-daemon peers.
pub fn gate(config: &Config, own_account: Option<String>) -> Result<Gate, StartupError> {
    let client = |what, e: Box<dyn std::error::Error + Send + Sync>| StartupError::Client {
        what,
        source: e,
    };
    let fetcher =
        HttpsCertFetcher::new().map_err(|e| client("the certificate client", e.into()))?;
    let confirmer = HttpsSubscriptionConfirmer::new()
        .map_err(|e| client("the subscription confirmation client", e.into()))?;
    let verifier = Verifier::new(
        VerifierConfig {
            cert_dir: config.trust.sns_cert_dir.clone(),
            ..VerifierConfig::default()
        },
        Arc::new(fetcher),
    );
    Ok(Gate {
        verifier,
        topics: config.trust.sns_topic_arns.clone(),
        own_account,
        confirmer: Arc::new(confirmer),
        tokens: config.api_tokens().map_err(StartupError::Config)?,
        trust_sqsd_from: config.trust.trust_sqsd_from.clone(),
        verify_sqs_envelopes: config.trust.verify_sqs_envelopes,
        max_message_age: config.trust.sns_max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_is_https_or_local_and_never_echoed() {
        for ok in [
            "https://hooks.slack.com/services/T0/B0/secret",
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]:9/hook",
        ] {
            assert_eq!(check_webhook_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "hooks.slack.com/services/T0/B0/secret",
            "http://hooks.example.com/secret",
            "ftp://example.com/secret",
            "https://",
        ] {
            let e = check_webhook_url(bad).expect_err(bad);
            assert!(e.starts_with("NOTIFY_WEBHOOK_URL (value not shown)"), "{e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
