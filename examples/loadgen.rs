//! A closed-loop HTTP load generator for `POST /serviceme`, loopback only, bounded in
//! request count and time, reporting JSON on standard output.
//!
//! ```text
//! cargo run --release --example loadgen -- run --url http://127.0.0.1:5000/serviceme \
//!     --scenario dup-sqsd --concurrency 64 --requests 200000 --seconds 10
//! cargo run --release --example loadgen -- wait-healthz --url http://127.0.0.1:5000/healthz \
//!     --since "$EPOCHREALTIME"
//! ```
//!
//! Each of `--concurrency` workers holds one keep-alive HTTP/1.1 connection and sends one
//! request at a time (as wrk does). Every request body is built (and, for SNS, signed)
//! before the clock starts, so signing never competes with the server for the CPU.
//!
//! Scenarios:
//! - `new-sns`: signed SNS Notifications of new ALARM events, each with its own AlarmName,
//!   StateChangeTime and MessageId (needs `--key`, whose certificate the server pins through
//!   SNS_CERT_DIR under the file name of `--cert-url`);
//! - `dup-sqsd`: one worker-daemon delivery (same `x-aws-sqsd-msgid`, same body) repeated;
//! - `dup-sns`: one signed notification repeated (duplicate + signature check);
//! - `invalid`: bodies that must get 400 (not JSON, missing fields, not an object, ...);
//! - `forged-sns`: notifications signed by another key (`--forged-key`): must get 403;
//! - `mix`: new alarms (worker daemon and SNS), duplicates of them (replays and re-posts of
//!   the same state change), malformed bodies and forged messages, interleaved.
//!
//! With `--retries N`, a request answered 5xx (or lost on the wire) is sent again, up to N
//! more times, as the worker daemon and SNS would; `--alarms-out FILE` writes, per valid
//! alarm sent, the case ids its answers carried, for checking against the ledger.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cw_support_api::inbound::sns::SnsMessage;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(about = "Load generator for cw-support-api (loopback only)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send a scenario and print a JSON report.
    Run(RunArgs),
    /// Poll a health URL every millisecond until it answers 200; print the time since
    /// `--since` (seconds since the epoch, as bash's $EPOCHREALTIME) in milliseconds.
    WaitHealthz {
        #[arg(long)]
        url: String,
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 20.0)]
        timeout: f64,
    },
    /// What a durable write costs in a directory: 4 KiB write + fsync over an existing
    /// file, the same growing the file, and a one-row commit with the same SQLite and
    /// settings as the local ledger (WAL, synchronous=FULL) once the WAL has wrapped around.
    Fsync {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 300)]
        count: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    NewSns,
    /// A new alarm per request, as unsigned worker-daemon deliveries (the AWS comparison:
    /// no signature to check, so what is measured is the case work and its AWS calls).
    NewSqsd,
    DupSqsd,
    DupSns,
    Invalid,
    ForgedSns,
    Mix,
    /// `GET /healthz` of the server under test (its own ceiling: the edge with no body, no
    /// parse, no case logic). Give the URL of /healthz.
    Healthz,
}

#[derive(Args)]
struct RunArgs {
    /// Full URL of the endpoint, e.g. http://127.0.0.1:5000/serviceme (loopback only).
    #[arg(long)]
    url: String,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Connections, each with one request in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Most requests sent (each retry is not counted here).
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    /// No new request is started after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// PKCS#8 PEM private key whose certificate the server pins (SNS scenarios).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Another key, for forged messages.
    #[arg(long)]
    forged_key: Option<PathBuf>,
    /// SigningCertURL to put in messages; its file name must match the pinned file.
    #[arg(
        long,
        default_value = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
    )]
    cert_url: String,
    #[arg(
        long,
        default_value = "arn:aws:sns:us-east-1:123456789012:support-cases"
    )]
    topic: String,
    /// SignatureVersion for SNS scenarios other than mix (which alternates 1 and 2).
    #[arg(long, default_value = "2")]
    signature_version: String,
    /// Makes alarm names and message ids unique across runs against one server.
    #[arg(long)]
    run_id: Option<String>,
    /// Send again a request answered 5xx or lost, up to this many more times.
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// Wait before a retry: this times the attempt number, at most 5 s.
    #[arg(long, default_value_t = 100)]
    retry_backoff_ms: u64,
    /// Stop retrying a request this many seconds after it was first sent (as a queue's
    /// retention bounds the worker daemon's retries).
    #[arg(long, default_value_t = 300.0)]
    retry_for: f64,
    /// Runtime worker threads of the generator itself.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Write, per valid alarm sent, the case ids its answers carried (JSON).
    #[arg(long)]
    alarms_out: Option<PathBuf>,
}

// ---- requests -------------------------------------------------------------------------------

/// What a request must get.
#[derive(Clone, Debug)]
enum Expect {
    /// A valid alarm event: 200, with a case for this alarm name.
    Alarm(Arc<str>),
    /// Invalid input: 400.
    BadRequest,
    /// Forged SNS message: 403.
    Forbidden,
    /// `GET /healthz`: 200.
    Healthy,
}

struct Req {
    method: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
    expect: Expect,
    /// What kind of request this is, for the report.
    class: &'static str,
}

struct Signer {
    key: RsaPrivateKey,
}

impl Signer {
    fn load(path: &PathBuf) -> Result<Self, String> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read key {}: {e}", path.display()))?;
        let key = RsaPrivateKey::from_pkcs8_pem(&pem)
            .map_err(|e| format!("{} is not a PKCS#8 RSA key: {e}", path.display()))?;
        Ok(Self { key })
    }

    fn sign(&self, version: &str, data: &[u8]) -> String {
        let sig = if version == "1" {
            self.key
                .sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(data))
        } else {
            self.key
                .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data))
        };
        BASE64.encode(sig.expect("RSA signing"))
    }
}

/// A CloudWatch alarm as CloudWatch publishes it to SNS (and as sqsd delivers it).
fn alarm_json(name: &str, time: &str) -> String {
    json!({
        "AlarmName": name,
        "AlarmDescription": "5xx responses above 5% for 5 minutes (load test)",
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-10-02T11:04:17.310+0000",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 5 out of the last 5 datapoints [7.2, 6.9, 8.1, 5.5, 6.0] were greater than the threshold (5.0).",
        "StateChangeTime": time,
        "Region": "US East (N. Virginia)",
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
        "OldStateValue": "OK",
        "OKActions": [],
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:support-cases"],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Namespace": "AWS/ApplicationELB",
            "StatisticType": "Statistic",
            "Statistic": "SUM",
            "Unit": null,
            "Dimensions": [{"value": "app/prod-api/50dc6c495c0c9188", "name": "LoadBalancer"}],
            "Period": 60,
            "EvaluationPeriods": 5,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 5.0,
            "TreatMissingData": "missing"
        }
    })
    .to_string()
}

struct Builder<'a> {
    args: &'a RunArgs,
    run: String,
    base: DateTime<Utc>,
    signer: Option<&'a Signer>,
    forger: Option<&'a Signer>,
}

impl Builder<'_> {
    fn time(&self, n: usize) -> String {
        let t = self.base + chrono::Duration::milliseconds(n as i64);
        t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
    }

    fn alarm_name(&self, prefix: &str, n: usize) -> String {
        format!("{prefix}-{}-{n}", self.run)
    }

    fn sqsd(&self, msgid: &str, name: &str, time: &str) -> Req {
        Req {
            method: "POST",
            headers: vec![
                ("x-aws-sqsd-msgid", msgid.to_owned()),
                ("x-aws-sqsd-receive-count", "1".into()),
                (
                    "x-aws-sqsd-queue",
                    "awseb-e-load-stack-AWSEBWorkerQueue".into(),
                ),
                ("content-type", "application/json".into()),
            ],
            body: Bytes::from(alarm_json(name, time)),
            expect: Expect::Alarm(name.into()),
            class: "sqsd",
        }
    }

    fn direct(&self, name: &str, time: &str) -> Req {
        Req {
            method: "POST",
            headers: vec![("content-type", "application/json".into())],
            body: Bytes::from(alarm_json(name, time)),
            expect: Expect::Alarm(name.into()),
            class: "direct",
        }
    }

    /// A Notification of `name`'s ALARM, signed by `signer` (None: the forger).
    fn sns(&self, id: &str, name: &str, time: &str, version: &str, forged: bool) -> Req {
        let signer = if forged { self.forger } else { self.signer }
            .expect("SNS scenarios need --key (and --forged-key for forged messages)");
        let mut body = json!({
            "Type": "Notification",
            "MessageId": id,
            "TopicArn": self.args.topic,
            "Subject": format!("ALARM: \"{name}\" in US East (N. Virginia)"),
            "Message": alarm_json(name, time),
            "Timestamp": Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "SignatureVersion": version,
            "Signature": "",
            "SigningCertURL": self.args.cert_url,
            "UnsubscribeURL": format!("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={}:load", self.args.topic),
        });
        let msg = SnsMessage::parse(&body).expect("a well-formed SNS message");
        body["Signature"] = json!(signer.sign(version, msg.string_to_sign().as_bytes()));
        Req {
            method: "POST",
            headers: vec![
                ("x-amz-sns-message-type", "Notification".into()),
                ("x-amz-sns-message-id", id.to_owned()),
                ("x-amz-sns-topic-arn", self.args.topic.clone()),
                ("content-type", "text/plain; charset=UTF-8".into()),
            ],
            body: Bytes::from(body.to_string()),
            expect: if forged {
                Expect::Forbidden
            } else {
                Expect::Alarm(name.into())
            },
            class: if forged { "forged-sns" } else { "sns" },
        }
    }

    fn invalid(&self, n: usize) -> Req {
        let body: String = match n % 5 {
            0 => "this is not JSON {".into(),
            1 => r#"{"AlarmName": "half-an-alarm"}"#.into(),
            2 => r#"["an", "array"]"#.into(),
            3 => r#"{"hello": "world"}"#.into(),
            _ => json!({"AlarmName": "", "StateChangeTime": self.time(n)}).to_string(),
        };
        Req {
            method: "POST",
            headers: vec![("content-type", "application/json".into())],
            body: Bytes::from(body),
            expect: Expect::BadRequest,
            class: "invalid",
        }
    }
}

/// A cheap deterministic generator (xorshift), so a mix is the same for the same run id.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Builds every request of the run; SNS messages are signed on all cores, in chunks.
fn build(args: &RunArgs) -> Result<Vec<Arc<Req>>, String> {
    let signer = args.key.as_ref().map(Signer::load).transpose()?;
    let forger = args.forged_key.as_ref().map(Signer::load).transpose()?;
    let needs_key = matches!(
        args.scenario,
        Scenario::NewSns | Scenario::DupSns | Scenario::Mix
    );
    if needs_key && signer.is_none() {
        return Err("this scenario needs --key".into());
    }
    if matches!(args.scenario, Scenario::ForgedSns | Scenario::Mix) && forger.is_none() {
        return Err("this scenario needs --forged-key".into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let run = args
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{}-{}", std::process::id(), now.as_millis()));
    let b = Builder {
        args,
        run,
        base: Utc::now(),
        signer: signer.as_ref(),
        forger: forger.as_ref(),
    };
    let n = args.requests;
    let v = args.signature_version.as_str();
    let reqs: Vec<Arc<Req>> = match args.scenario {
        Scenario::Healthz => {
            let one = Arc::new(Req {
                method: "GET",
                headers: Vec::new(),
                body: Bytes::new(),
                expect: Expect::Healthy,
                class: "healthz",
            });
            vec![one; n]
        }
        Scenario::DupSqsd => {
            let one = Arc::new(b.sqsd(
                &format!("dup-sqsd-{}", b.run),
                &b.alarm_name("dup-sqsd", 0),
                &b.time(0),
            ));
            vec![one; n]
        }
        Scenario::DupSns => {
            let one = Arc::new(b.sns(
                &format!("dup-sns-{}", b.run),
                &b.alarm_name("dup-sns", 0),
                &b.time(0),
                v,
                false,
            ));
            vec![one; n]
        }
        // Refusals never reach the ledger, so a small pool of distinct bodies, cycled, does.
        Scenario::Invalid => {
            let pool: Vec<Arc<Req>> = (0..5).map(|i| Arc::new(b.invalid(i))).collect();
            (0..n).map(|i| pool[i % pool.len()].clone()).collect()
        }
        Scenario::ForgedSns => {
            let pool = parallel(n.min(64), |i| {
                b.sns(
                    &format!("forged-{}-{i}", b.run),
                    &b.alarm_name("forged", i),
                    &b.time(i),
                    v,
                    true,
                )
            });
            (0..n).map(|i| pool[i % pool.len()].clone()).collect()
        }
        Scenario::NewSns => parallel(n, |i| {
            b.sns(
                &format!("new-sns-{}-{i}", b.run),
                &b.alarm_name("new-sns", i),
                &b.time(i),
                v,
                false,
            )
        }),
        Scenario::NewSqsd => parallel(n, |i| {
            b.sqsd(
                &format!("new-sqsd-{}-{i}", b.run),
                &b.alarm_name("new-sqsd", i),
                &b.time(i),
            )
        }),
        Scenario::Mix => mix(&b, n),
    };
    Ok(reqs)
}

fn parallel(n: usize, f: impl Fn(usize) -> Req + Sync) -> Vec<Arc<Req>> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = n.div_ceil(threads).max(1);
    let mut out: Vec<Option<Arc<Req>>> = (0..n).map(|_| None).collect();
    std::thread::scope(|s| {
        for (c, slots) in out.chunks_mut(chunk).enumerate() {
            let f = &f;
            s.spawn(move || {
                for (j, slot) in slots.iter_mut().enumerate() {
                    *slot = Some(Arc::new(f(c * chunk + j)));
                }
            });
        }
    });
    out.into_iter().flatten().collect()
}

/// In every ten requests: four new alarms (two by the worker daemon, two by SNS), three
/// duplicates of earlier ones (a replayed delivery, a replayed SNS message, the same state
/// change posted again directly), two malformed bodies and one forged SNS message.
fn mix(b: &Builder<'_>, n: usize) -> Vec<Arc<Req>> {
    #[derive(Clone, Copy)]
    enum Kind {
        NewSqsd,
        NewSns,
        Replay,
        Repost,
        Invalid,
        Forged,
    }
    const PATTERN: [Kind; 10] = [
        Kind::NewSqsd,
        Kind::NewSns,
        Kind::Invalid,
        Kind::Replay,
        Kind::NewSqsd,
        Kind::Forged,
        Kind::NewSns,
        Kind::Replay,
        Kind::Invalid,
        Kind::Repost,
    ];
    let kinds: Vec<Kind> = (0..n).map(|i| PATTERN[i % PATTERN.len()]).collect();
    // New alarms first (they need signing, done in parallel), then the rest in order.
    let fresh: Vec<(usize, bool)> = kinds
        .iter()
        .enumerate()
        .filter_map(|(i, k)| match k {
            Kind::NewSqsd => Some((i, false)),
            Kind::NewSns => Some((i, true)),
            _ => None,
        })
        .collect();
    let built = parallel(fresh.len(), |j| {
        let (i, sns) = fresh[j];
        let name = b.alarm_name("mix", i);
        let time = b.time(i);
        if sns {
            let version = if j % 2 == 0 { "1" } else { "2" };
            b.sns(
                &format!("mix-sns-{}-{i}", b.run),
                &name,
                &time,
                version,
                false,
            )
        } else {
            b.sqsd(&format!("mix-sqs-{}-{i}", b.run), &name, &time)
        }
    });
    let forged_at: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter_map(|(i, k)| matches!(k, Kind::Forged).then_some(i))
        .collect();
    let forged = parallel(forged_at.len(), |j| {
        let i = forged_at[j];
        b.sns(
            &format!("mix-forged-{}-{i}", b.run),
            &b.alarm_name("mix-forged", i),
            &b.time(i),
            "2",
            true,
        )
    });
    let mut by_index: HashMap<usize, Arc<Req>> = fresh
        .iter()
        .map(|(i, _)| *i)
        .zip(built.iter().cloned())
        .collect();
    by_index.extend(forged_at.iter().copied().zip(forged));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ b.run.len() as u64);
    let mut sent_new: Vec<(usize, Arc<Req>)> = Vec::new();
    let mut out = Vec::with_capacity(n);
    for (i, kind) in kinds.iter().enumerate() {
        let req = match kind {
            Kind::NewSqsd | Kind::NewSns | Kind::Forged => {
                let r = by_index.remove(&i).expect("built");
                if !matches!(kind, Kind::Forged) {
                    sent_new.push((i, r.clone()));
                }
                r
            }
            Kind::Invalid => Arc::new(b.invalid(i / 5)),
            // Before any new alarm exists, duplicates have nothing to repeat: malformed.
            Kind::Replay | Kind::Repost if sent_new.is_empty() => Arc::new(b.invalid(i)),
            Kind::Replay => sent_new[rng.below(sent_new.len())].1.clone(),
            Kind::Repost => {
                let (j, _) = sent_new[rng.below(sent_new.len())];
                Arc::new(b.direct(&b.alarm_name("mix", j), &b.time(j)))
            }
        };
        out.push(req);
    }
    out
}

// ---- sending --------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Answer {
    outcome: Option<String>,
    error: Option<String>,
    #[serde(rename = "caseId")]
    case_id: Option<String>,
}

#[derive(Default)]
struct Stats {
    /// Microseconds per exchange (every attempt).
    latencies: Vec<u32>,
    status: BTreeMap<String, u64>,
    outcomes: BTreeMap<String, u64>,
    classes: BTreeMap<&'static str, u64>,
    transport_errors: u64,
    retries: u64,
    /// Valid alarms whose last answer was not 200 after every retry.
    unresolved: u64,
    /// Invalid bodies not answered 400, forged messages not answered 403.
    wrong_status: u64,
    /// First few problems, for the report.
    examples: Vec<String>,
    /// Alarm name → case ids seen in its 200 answers; whether it ended with a 200.
    alarms: HashMap<Arc<str>, (BTreeSet<String>, bool)>,
    sent: u64,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.latencies.extend(o.latencies);
        for (k, v) in o.status {
            *self.status.entry(k).or_default() += v;
        }
        for (k, v) in o.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        for (k, v) in o.classes {
            *self.classes.entry(k).or_default() += v;
        }
        self.transport_errors += o.transport_errors;
        self.retries += o.retries;
        self.unresolved += o.unresolved;
        self.wrong_status += o.wrong_status;
        self.sent += o.sent;
        for e in o.examples {
            if self.examples.len() < 10 {
                self.examples.push(e);
            }
        }
        for (k, (ids, ok)) in o.alarms {
            let e = self.alarms.entry(k).or_default();
            e.0.extend(ids);
            e.1 |= ok;
        }
    }

    fn problem(&mut self, what: String) {
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }
}

struct Target {
    addr: SocketAddr,
    authority: String,
    path: String,
}

fn parse_target(url: &str) -> Result<Target, String> {
    let u = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    if u.scheme() != "http" {
        return Err("only http:// URLs".into());
    }
    let host = u.host_str().ok_or("URL without a host")?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("{host}: give a loopback IP address"))?;
    if !ip.is_loopback() {
        return Err(format!(
            "{ip} is not a loopback address: load goes to 127.0.0.1 only"
        ));
    }
    let port = u.port_or_known_default().ok_or("URL without a port")?;
    let mut path = u.path().to_owned();
    if let Some(q) = u.query() {
        path = format!("{path}?{q}");
    }
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        authority: format!("{host}:{port}"),
        path,
    })
}

type Conn = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Conn, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn exchange(
    conn: &mut Conn,
    target: &Target,
    method: &str,
    req: Option<&Req>,
) -> Result<(u16, Bytes), String> {
    let mut builder = Request::builder()
        .method(method)
        .uri(target.path.as_str())
        .header(header::HOST, target.authority.as_str());
    let body = match req {
        Some(r) => {
            for (k, v) in &r.headers {
                builder = builder.header(*k, v.as_str());
            }
            r.body.clone()
        }
        None => Bytes::new(),
    };
    let request = builder
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    conn.ready().await.map_err(|e| format!("ready: {e}"))?;
    let resp = conn
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, body))
}

struct Shared {
    reqs: Vec<Arc<Req>>,
    next: AtomicUsize,
    deadline: Instant,
    target: Target,
    retries: u32,
    backoff: Duration,
    retry_for: Duration,
}

impl Shared {
    /// Whether to try again, after waiting, a request first sent at `first`.
    async fn again(&self, attempt: u32, first: Instant, st: &mut Stats) -> bool {
        if attempt > self.retries || first.elapsed() >= self.retry_for {
            return false;
        }
        st.retries += 1;
        let wait = (self.backoff * attempt).min(Duration::from_secs(5));
        tokio::time::sleep(wait).await;
        true
    }
}

async fn worker(shared: Arc<Shared>) -> Stats {
    let mut st = Stats::default();
    let mut conn: Option<Conn> = None;
    loop {
        if Instant::now() >= shared.deadline {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(req) = shared.reqs.get(i) else { break };
        st.sent += 1;
        *st.classes.entry(req.class).or_default() += 1;
        let mut attempt = 0;
        let first = Instant::now();
        let last = loop {
            attempt += 1;
            if conn.is_none() {
                match connect(shared.target.addr).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        st.transport_errors += 1;
                        st.problem(e.clone());
                        if shared.again(attempt, first, &mut st).await {
                            continue;
                        }
                        break Err(e);
                    }
                }
            }
            let c = conn.as_mut().expect("connected");
            // A keep-alive connection the server closed meanwhile is not an error: reconnect.
            if c.ready().await.is_err() {
                conn = None;
                attempt -= 1;
                continue;
            }
            let started = Instant::now();
            let result = exchange(c, &shared.target, req.method, Some(req)).await;
            let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
            match result {
                Ok((status, body)) => {
                    st.latencies.push(micros);
                    *st.status.entry(status.to_string()).or_default() += 1;
                    let answer: Option<Answer> = serde_json::from_slice(&body).ok();
                    let label = answer
                        .as_ref()
                        .and_then(|a| a.outcome.clone().or_else(|| a.error.clone()))
                        .unwrap_or_else(|| "-".into());
                    *st.outcomes.entry(label).or_default() += 1;
                    if status >= 500 && shared.again(attempt, first, &mut st).await {
                        continue;
                    }
                    break Ok((status, answer));
                }
                Err(e) => {
                    conn = None;
                    st.transport_errors += 1;
                    st.problem(e.clone());
                    if shared.again(attempt, first, &mut st).await {
                        continue;
                    }
                    break Err(e);
                }
            }
        };
        match (&req.expect, last) {
            (Expect::Alarm(name), Ok((200, answer))) => {
                let e = st.alarms.entry(name.clone()).or_default();
                e.1 = true;
                if let Some(id) = answer.and_then(|a| a.case_id) {
                    e.0.insert(id);
                }
            }
            (Expect::Alarm(name), other) => {
                st.alarms.entry(name.clone()).or_default();
                st.unresolved += 1;
                let what = match other {
                    Ok((s, _)) => format!("status {s}"),
                    Err(e) => e,
                };
                st.problem(format!("alarm {name}: ended with {what}"));
            }
            (Expect::BadRequest, Ok((400, _)))
            | (Expect::Forbidden, Ok((403, _)))
            | (Expect::Healthy, Ok((200, _))) => {}
            (expect, other) => {
                st.wrong_status += 1;
                let what = match other {
                    Ok((s, _)) => format!("status {s}"),
                    Err(e) => e,
                };
                st.problem(format!("{expect:?} request ended with {what}"));
            }
        }
    }
    st
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

async fn run(args: RunArgs) -> Result<Value, String> {
    let target = parse_target(&args.url)?;
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let built_at = Instant::now();
    let reqs = build(&args)?;
    let build_s = built_at.elapsed().as_secs_f64();
    let started = Instant::now();
    let shared = Arc::new(Shared {
        reqs,
        next: AtomicUsize::new(0),
        deadline: started + Duration::from_secs_f64(args.seconds),
        target,
        retries: args.retries,
        backoff: Duration::from_millis(args.retry_backoff_ms),
        retry_for: Duration::from_secs_f64(args.retry_for),
    });
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(worker(shared.clone())))
        .collect();
    let mut st = Stats::default();
    for w in workers {
        st.merge(w.await.map_err(|e| format!("worker: {e}"))?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    st.latencies.sort_unstable();
    let n = st.latencies.len();
    let mean = if n == 0 {
        0.0
    } else {
        st.latencies.iter().map(|&l| f64::from(l)).sum::<f64>() / n as f64 / 1000.0
    };
    let multi: Vec<&Arc<str>> = st
        .alarms
        .iter()
        .filter(|(_, (ids, _))| ids.len() > 1)
        .map(|(k, _)| k)
        .collect();
    let without_case = st
        .alarms
        .values()
        .filter(|(ids, ok)| *ok && ids.is_empty())
        .count();
    if let Some(path) = &args.alarms_out {
        let map: BTreeMap<&str, Value> = st
            .alarms
            .iter()
            .map(|(k, (ids, ok))| (k.as_ref(), json!({"caseIds": ids, "answered200": ok})))
            .collect();
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&map).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(json!({
        "scenario": args.scenario,
        "concurrency": args.concurrency,
        "requests": st.sent,
        "exchanges": n,
        "seconds": round(elapsed, 3),
        "build_seconds": round(build_s, 3),
        "rps": round(n as f64 / elapsed.max(1e-9), 1),
        "latency_ms": {
            "p50": round(percentile(&st.latencies, 50.0), 3),
            "p90": round(percentile(&st.latencies, 90.0), 3),
            "p99": round(percentile(&st.latencies, 99.0), 3),
            "max": round(percentile(&st.latencies, 100.0), 3),
            "mean": round(mean, 3),
        },
        "status": st.status,
        "outcomes": st.outcomes,
        "classes": st.classes,
        "transport_errors": st.transport_errors,
        "retries": st.retries,
        "checks": {
            "alarms": st.alarms.len(),
            "alarms_unresolved": st.unresolved,
            "alarms_with_several_case_ids": multi.len(),
            "alarms_answered_without_case_id": without_case,
            "wrong_status": st.wrong_status,
        },
        "problems": st.examples,
    }))
}

async fn wait_healthz(url: &str, since: Option<&str>, timeout: f64) -> Result<Value, String> {
    let target = parse_target(url)?;
    let t0 = match since {
        Some(s) => {
            let secs: f64 = s
                .replace(',', ".")
                .parse()
                .map_err(|_| format!("--since {s:?}: seconds since the epoch"))?;
            UNIX_EPOCH + Duration::from_secs_f64(secs)
        }
        None => SystemTime::now(),
    };
    let limit = Instant::now() + Duration::from_secs_f64(timeout);
    let mut polls = 0u64;
    loop {
        polls += 1;
        if let Ok(mut c) = connect(target.addr).await
            && let Ok((200, _)) = exchange(&mut c, &target, "GET", None).await
        {
            let ms = SystemTime::now()
                .duration_since(t0)
                .unwrap_or_default()
                .as_secs_f64()
                * 1000.0;
            return Ok(json!({"ready_ms": round(ms, 1), "polls": polls}));
        }
        if Instant::now() > limit {
            return Err(format!("{url} did not answer 200 within {timeout} s"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn fsync(dir: &std::path::Path, n: usize) -> Result<Value, String> {
    use std::io::{Seek, SeekFrom, Write};
    let n = n.max(1);
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", dir.display());
    let path = dir.join("loadgen-fsync.bin");
    let block = [0u8; 4096];
    let per_write = |f: &mut std::fs::File, grow: bool| -> Result<f64, String> {
        let t0 = Instant::now();
        for i in 0..n {
            if !grow {
                f.seek(SeekFrom::Start((i * block.len()) as u64))
                    .map_err(|e| err(&e))?;
            }
            f.write_all(&block).map_err(|e| err(&e))?;
            f.sync_all().map_err(|e| err(&e))?;
        }
        Ok(t0.elapsed().as_secs_f64() * 1000.0 / n as f64)
    };
    let mut f = std::fs::File::create(&path).map_err(|e| err(&e))?;
    let append_ms = per_write(&mut f, true)?;
    let overwrite_ms = per_write(&mut f, false)?;
    drop(f);
    let _ = std::fs::remove_file(&path);

    let db_path = dir.join("loadgen-fsync.sqlite3");
    let commit_ms = {
        let c = rusqlite::Connection::open(&db_path).map_err(|e| err(&e))?;
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE t (x TEXT NOT NULL);",
        )
        .map_err(|e| err(&e))?;
        let commits = |k: usize| -> Result<f64, String> {
            let t0 = Instant::now();
            for i in 0..k {
                c.execute("INSERT INTO t (x) VALUES (?1)", [format!("row {i}")])
                    .map_err(|e| err(&e))?;
            }
            Ok(t0.elapsed().as_secs_f64() * 1000.0 / k as f64)
        };
        // Past the 1000-page auto-checkpoint (quickly, without syncing), so that the WAL is
        // reused rather than grown, as the ledger's is in steady state.
        c.execute_batch("PRAGMA synchronous = OFF;")
            .map_err(|e| err(&e))?;
        commits(3000)?;
        c.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(|e| err(&e))?;
        commits(n)?
    };
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
    }
    Ok(json!({
        "fsync_overwrite_ms": round(overwrite_ms, 3),
        "fsync_append_ms": round(append_ms, 3),
        "sqlite_commit_ms": round(commit_ms, 3),
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.cmd {
        Cmd::Run(a) => a.threads.max(1),
        Cmd::WaitHealthz { .. } | Cmd::Fsync { .. } => 1,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.cmd {
            Cmd::Run(args) => {
                // A hard stop well past the time bound, whatever happens (retries included).
                let hard = Duration::from_secs_f64(args.seconds + args.retry_for.min(600.0) + 60.0);
                match tokio::time::timeout(hard, run(args)).await {
                    Ok(r) => r,
                    Err(_) => Err("hard time limit reached".into()),
                }
            }
            Cmd::WaitHealthz {
                url,
                since,
                timeout,
            } => wait_healthz(&url, since.as_deref(), timeout).await,
            Cmd::Fsync { dir, count } => tokio::task::spawn_blocking(move || fsync(&dir, count))
                .await
                .map_err(|e| e.to_string())?,
        }
    });
    match result {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
