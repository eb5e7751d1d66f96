//! The Elastic Beanstalk shape with its real proxy: Debian's nginx, started on a loopback
//! port with the project's own `.platform/nginx` files in a server block as Elastic
//! Beanstalk writes it, in front of the real binary with `API_TOKENS` set. A request from a
//! client address outside the instance never passes as the worker daemon's, whatever
//! `X-Aws-Sqsd-*` or forwarding headers it carries; the daemon itself, posting from the
//! instance, needs no token.
//!
//! Skipped (loudly) when nginx is not installed, unless `CW_REQUIRE_NGINX=1` (`.ci/run`
//! installs nginx and sets it), where a missing nginx fails the test.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::ServerProcess;
use serde_json::{Value, json};

const TOKEN: &str = "nginx-test-token-0123456789";

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A local address that is not loopback, for a client "outside the instance". The
/// machine's own interface address when it has one; else one added to `lo` for the test.
struct OutsideAddress {
    ip: Ipv4Addr,
    added: bool,
}

impl OutsideAddress {
    fn find() -> Self {
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
                    .filter(|ip| !ip.is_loopback() && word.contains('/'))
                {
                    return Self { ip, added: false };
                }
            }
        }
        // TEST-NET-2, never routed: added to loopback for the duration of the test.
        let ip = Ipv4Addr::new(198, 51, 100, 77);
        let ok = Command::new("ip")
            .args(["addr", "add", "198.51.100.77/32", "dev", "lo"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "no non-loopback address and none could be added");
        Self { ip, added: true }
    }
}

impl Drop for OutsideAddress {
    fn drop(&mut self) {
        if self.added {
            let _ = Command::new("ip")
                .args(["addr", "del", "198.51.100.77/32", "dev", "lo"])
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

fn copy_platform_config(dest: &Path, upstream_port: u16) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(".platform/nginx/conf.d");
    let eb = dest.join("conf.d/elasticbeanstalk");
    std::fs::create_dir_all(&eb).expect("mkdir");
    for (from, to) in [
        (src.join("proxy.conf"), dest.join("conf.d/proxy.conf")),
        (
            src.join("elasticbeanstalk/00_application.conf"),
            eb.join("00_application.conf"),
        ),
    ] {
        let text = std::fs::read_to_string(&from).expect("project nginx file");
        // The service listens on a test port instead of 5000; nothing else changes.
        let text = text.replace(
            "http://127.0.0.1:5000;",
            &format!("http://127.0.0.1:{upstream_port};"),
        );
        std::fs::write(to, text).expect("write");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn start_nginx(binary: &Path, upstream_port: u16) -> Nginx {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    copy_platform_config(d, upstream_port);
    let port = free_port();
    let p = d.display();
    // The server block as Elastic Beanstalk's nginx.conf has it (port 80 there), with the
    // project's files included where Elastic Beanstalk includes them.
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\n\
         error_log {p}/error.log warn;\nevents {{ worker_connections 128; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
         fastcgi_temp_path {p}/fcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
         include {p}/conf.d/*.conf;\n  server {{\n    listen {port} default_server;\n\
         client_header_timeout 60;\n    client_body_timeout 60;\n    keepalive_timeout 60;\n\
         include {p}/conf.d/elasticbeanstalk/*.conf;\n  }}\n}}\n"
    );
    std::fs::write(d.join("nginx.conf"), conf).expect("write conf");
    let test = Command::new(binary)
        .args(["-t", "-p", &p.to_string(), "-c"])
        .arg(d.join("nginx.conf"))
        .output()
        .expect("nginx -t");
    assert!(
        test.status.success(),
        "the project's nginx files do not load: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    let child = Command::new(binary)
        .args(["-p", &p.to_string(), "-c"])
        .arg(d.join("nginx.conf"))
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
async fn behind_the_bundled_nginx_only_the_local_daemon_passes_without_a_token() {
    let Some(binary) = nginx_binary() else {
        assert!(
            std::env::var("CW_REQUIRE_NGINX").is_err(),
            "CW_REQUIRE_NGINX is set but nginx is not installed"
        );
        eprintln!("SKIPPED: nginx is not installed (apt-get install nginx-light)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("API_TOKENS", TOKEN),
    ]);
    let upstream: SocketAddr = server.addr.parse().expect("addr");
    let nginx = start_nginx(&binary, upstream.port());
    let outside = OutsideAddress::find();

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
        assert_eq!(status, 401, "{headers:?}: {body}");
        assert_eq!(body["error"], "unauthorized");
    }
    // Nor can the attacker run the periodic task.
    let (status, _) = post(
        &attacker,
        &via_outside,
        String::new(),
        &[("x-aws-sqsd-taskname", "reconcile")],
    )
    .await;
    assert_eq!(status, 401);

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
        "{body}"
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
        "{body}"
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
