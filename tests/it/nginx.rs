//! The Elastic Beanstalk shape with its real proxy: Debian's nginx, laid out as Elastic
//! Beanstalk lays it out on the Procfile platforms and on the Docker platform
//! (`scripts/eb-nginx.sh`, `tests/data/eb-nginx/`), with the project's own `.platform/nginx`
//! files placed where the platform places them, in front of the real binary with
//! `API_TOKENS` set and the `TRUST_SQSD_FROM` of `.ebextensions`. On both, a request from a
//! client address outside the instance never passes as the worker daemon's, whatever
//! `X-Aws-Sqsd-*` or forwarding headers it carries; the daemon itself, posting from the
//! instance, needs no token. On the Docker platform nginx reaches the container from the
//! Docker bridge's gateway (172.17.0.1), which the test gives nginx as its source address.
//!
//! Skipped (loudly) when nginx is not installed, unless `CW_REQUIRE_NGINX=1` (`.ci/run`
//! installs nginx and sets it), where a missing nginx fails the test.

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::ServerProcess;
use serde_json::{Value, json};

const TOKEN: &str = "nginx-test-token-0123456789";

/// The Docker bridge's gateway: where nginx on a Docker platform instance connects to the
/// container from.
const BRIDGE_GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);

/// The tests add addresses to `lo` and take them away again: one at a time.
static ADDRESSES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// An address of this machine's for the duration of a test: already there, or added to
/// `lo` and removed again when dropped.
struct LocalAddress {
    ip: Ipv4Addr,
    added: bool,
}

impl LocalAddress {
    fn present(ip: Ipv4Addr) -> bool {
        std::net::TcpListener::bind((ip, 0)).is_ok()
    }

    fn ensure(ip: Ipv4Addr) -> Self {
        if Self::present(ip) {
            return Self { ip, added: false };
        }
        let ok = Command::new("ip")
            .args(["addr", "add", &format!("{ip}/32"), "dev", "lo"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{ip} is not an address of this machine and could not be added to lo"
        );
        Self { ip, added: true }
    }

    /// A local address that is not loopback, for a client "outside the instance": the
    /// machine's own interface address when it has one, else TEST-NET-2 (never routed).
    fn outside() -> Self {
        let out = Command::new("ip")
            .args(["-4", "-o", "addr", "show", "scope", "global"])
            .output();
        if let Ok(out) = out {
            let text = String::from_utf8_lossy(&out.stdout);
            for word in text.split_whitespace() {
                if let Some(ip) = word
                    .split('/')
                    .next()
                    .and_then(|a| a.parse::<Ipv4Addr>().ok())
                    .filter(|ip| !ip.is_loopback() && *ip != BRIDGE_GATEWAY && word.contains('/'))
                {
                    return Self { ip, added: false };
                }
            }
        }
        Self::ensure(Ipv4Addr::new(198, 51, 100, 77))
    }
}

impl Drop for LocalAddress {
    fn drop(&mut self) {
        if self.added {
            let _ = Command::new("ip")
                .args(["addr", "del", &format!("{}/32", self.ip), "dev", "lo"])
                .status();
        }
    }
}

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Which Elastic Beanstalk platform's nginx layout.
#[derive(Debug, Clone, Copy)]
enum Layout {
    Procfile,
    Docker,
}

/// nginx laid out as Elastic Beanstalk does on `layout` (the project's files included by
/// `scripts/eb-nginx.sh` as the platform includes them), forwarding to the service.
fn start_nginx(
    binary: &Path,
    layout: Layout,
    upstream_port: u16,
    bridge: Option<Ipv4Addr>,
) -> Nginx {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let port = free_port();
    let mut assemble = Command::new("bash");
    assemble
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/eb-nginx.sh"))
        .arg(match layout {
            Layout::Procfile => "procfile",
            Layout::Docker => "docker",
        })
        .arg(d)
        .arg(port.to_string())
        .arg(format!("127.0.0.1:{upstream_port}"));
    if let Some(bridge) = bridge {
        assemble.arg(bridge.to_string());
    }
    let assembled = assemble.output().expect("scripts/eb-nginx.sh");
    assert!(
        assembled.status.success(),
        "scripts/eb-nginx.sh: {}",
        String::from_utf8_lossy(&assembled.stderr)
    );
    let prefix = d.display().to_string();
    let conf = d.join("nginx.conf");
    let globals = "daemon off; master_process off;";
    let test = Command::new(binary)
        .args(["-t", "-p", &prefix, "-g", globals, "-c"])
        .arg(&conf)
        .output()
        .expect("nginx -t");
    assert!(
        test.status.success(),
        "the project's nginx files do not load in the {layout:?} layout: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    let child = Command::new(binary)
        .args(["-p", &prefix, "-g", globals, "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx {
        child,
        port,
        _dir: dir,
    }
}

/// `TRUST_SQSD_FROM` as `.ebextensions` sets it for both platforms.
fn deployed_trust() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ebextensions/01-worker.config");
    let text = std::fs::read_to_string(path).expect(".ebextensions/01-worker.config");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("TRUST_SQSD_FROM:"))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
        .expect(".ebextensions sets TRUST_SQSD_FROM")
}

/// Imports the example on-duty file into `data_dir` and returns alice's feed path (before
/// the server starts: it holds the directory's lock).
fn feed_path(data_dir: &Path) -> String {
    let run = |args: &[&str]| {
        let o = std::process::Command::new(crate::common::process::BIN)
            .args(args)
            .env("DATA_DIR", data_dir)
            .env_remove("BACKEND")
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/oncall/example.toml");
    run(&["oncall", "import", example.to_str().expect("utf-8")]);
    run(&["oncall", "feed", "alice"])
}

fn alarm(name: &str) -> String {
    json!({"AlarmName": name, "AlarmDescription": "via nginx", "StateChangeTime": "2026-11-20T03:12:45Z"})
        .to_string()
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = client.post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request through nginx");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_procfile_platforms_nginx_only_the_local_daemon_passes_without_a_token() {
    only_the_local_daemon_passes_without_a_token(Layout::Procfile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_docker_platforms_nginx_only_the_local_daemon_passes_without_a_token() {
    only_the_local_daemon_passes_without_a_token(Layout::Docker).await;
}

async fn only_the_local_daemon_passes_without_a_token(layout: Layout) {
    let Some(binary) = nginx_binary() else {
        assert!(
            std::env::var("CW_REQUIRE_NGINX").is_err(),
            "CW_REQUIRE_NGINX is set but nginx is not installed"
        );
        eprintln!("SKIPPED: nginx is not installed (apt-get install nginx-light)");
        return;
    };
    let _one_at_a_time = ADDRESSES.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let trust = deployed_trust();
    let feed = feed_path(dir.path());
    let server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("API_TOKENS", TOKEN),
        ("TRUST_SQSD_FROM", &trust),
    ]);
    let upstream: SocketAddr = server.addr.parse().expect("addr");
    let bridge = match layout {
        Layout::Procfile => None,
        Layout::Docker => Some(LocalAddress::ensure(BRIDGE_GATEWAY)),
    };
    let nginx = start_nginx(
        &binary,
        layout,
        upstream.port(),
        bridge.as_ref().map(|b| b.ip),
    );
    let outside = LocalAddress::outside();

    // An attacker on the network reaches nginx from its own address.
    let attacker = reqwest::Client::builder()
        .local_address(IpAddr::V4(outside.ip))
        .build()
        .expect("client");
    let via_outside = format!("http://{}:{}/serviceme", outside.ip, nginx.port);
    let spoofs: [&[(&str, &str)]; 4] = [
        &[("x-aws-sqsd-msgid", "6a1b0c39-spoofed")],
        &[
            ("x-aws-sqsd-msgid", "6a1b0c39-spoofed"),
            ("user-agent", "aws-sqsd/2.4"),
            ("x-aws-sqsd-queue", "awseb-e-worker-queue"),
        ],
        // Claiming to be local in the forwarding headers changes nothing: nginx appends
        // the real address.
        &[
            ("x-aws-sqsd-msgid", "6a1b0c39-spoofed"),
            ("x-forwarded-for", "127.0.0.1"),
            ("x-real-ip", "127.0.0.1"),
        ],
        &[
            ("x-aws-sqsd-receive-count", "1"),
            ("forwarded", "for=127.0.0.1"),
        ],
    ];
    for headers in spoofs {
        let (status, body) = post(&attacker, &via_outside, alarm("db-down"), headers).await;
        assert_eq!(status, 401, "{layout:?} {headers:?}: {body}");
        assert_eq!(body["error"], "unauthorized");
    }
    // A person's calendar feed, from anywhere with its secret URL, reaches the service.
    let url = format!("http://{}:{}{feed}", outside.ip, nginx.port);
    let answer = attacker.get(url).send().await.expect("answered");
    assert_eq!(
        answer.status(),
        200,
        "{layout:?}: the calendar feed behind nginx"
    );
    assert_eq!(
        answer.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    // Nor can the attacker run the periodic task.
    let (status, _) = post(
        &attacker,
        &via_outside,
        String::new(),
        &[("x-aws-sqsd-taskname", "reconcile")],
    )
    .await;
    assert_eq!(status, 401, "{layout:?}: the periodic task from outside");

    // The worker daemon posts from the instance itself: no token needed. The alarm the
    // attacker sent is new to the service, so none of the spoofs opened a case.
    let daemon = reqwest::Client::new();
    let via_local = format!("http://127.0.0.1:{}/serviceme", nginx.port);
    let (status, body) = post(
        &daemon,
        &via_local,
        alarm("db-down"),
        &[
            ("x-aws-sqsd-msgid", "6a1b0c39-genuine"),
            ("user-agent", "aws-sqsd/2.4"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("created")),
        "{layout:?}: the daemon from the instance: {body}"
    );
    assert_eq!(
        body["caseId"], "dry-run-1",
        "the first case: no spoof opened one"
    );
    let (status, body) = post(
        &daemon,
        &via_local,
        String::new(),
        &[
            ("x-aws-sqsd-taskname", "reconcile"),
            ("x-aws-sqsd-msgid", "task-1"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("reconciled")),
        "{layout:?}: {body}"
    );

    // An outside caller with the token is heard (as a direct post, not as the daemon).
    let bearer = format!("Bearer {TOKEN}");
    let (status, body) = post(
        &attacker,
        &via_outside,
        alarm("disk-full"),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("created")),
        "{body}"
    );
    drop(server);
}
