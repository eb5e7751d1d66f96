//! The console in a real browser: headless Chromium (Debian's `chromium`) driven over
//! WebDriver by `chromedriver`, against the service on loopback with local accounts. A
//! responder signs in, sees an alarm arrive, acknowledges its page, starts and stops "I'm
//! fixing" and signs out; a viewer cannot acknowledge; a form posted without its CSRF token
//! or from a page of another origin is refused; an alarm whose name, reason and description
//! hold `<script>` and `<img onerror>` is shown as text (had any of it run, its `alert`
//! would hold the browser and every later step would fail).
//!
//! `.ci/run` installs Chromium and sets `CW_REQUIRE_CHROMIUM=1`, so there these tests fail
//! rather than skip when it is missing. With `CW_UPDATE_SCREENSHOT=1` the dashboard's
//! screenshot is written to `docs/console.png` (the README's); it is always written to
//! `target/console.png`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::common::TestApp;
use serde_json::json;

use cw_support_api::domain::settings::AlarmConfigStore;

use crate::console_local::PASSWORD;
const EVIL: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";

/// chromedriver, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn found(var: &str, default: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.into()));
    p.exists().then_some(p)
}

/// chromedriver and Chromium, started; `None` (said) where they are not installed and the
/// run does not require them.
async fn driver() -> Option<(Driver, Client)> {
    let (Some(chromedriver), Some(chromium)) = (
        found("CHROMEDRIVER", "/usr/bin/chromedriver"),
        found("CHROMIUM", "/usr/bin/chromium"),
    ) else {
        assert!(
            std::env::var_os("CW_REQUIRE_CHROMIUM").is_none(),
            "CW_REQUIRE_CHROMIUM is set but chromium/chromedriver are not installed \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no chromium/chromedriver (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().expect("profile dir");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    // Ready when its status answers (it starts in well under a second; 20 s is generous).
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await
            && r.status().is_success()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "chromedriver did not answer on {}", driver.url);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            // As root, without a display, on a machine with no way out: no sandbox, no GPU,
            // and none of Chromium's own calls home.
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    Some((driver, client))
}

/// The service of `console_local` (alice responder, victor viewer, `db-down` paging), with
/// an alarm whose very name is markup paging too.
async fn service(dir: &Path) -> TestApp {
    let (app, _) = crate::console_local::app(dir).await;
    app.page_on_duty(EVIL).await;
    app
}

async fn fire(app: &TestApp, name: &str) {
    let alarm = json!({"AlarmName": name, "AlarmDescription": EVIL, "NewStateValue": "ALARM",
        "NewStateReason": EVIL, "StateChangeTime": "2026-12-07T03:00:00.000+0000"});
    let (status, body) = app.post(alarm.to_string()).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("paged")),
        "{body}"
    );
}

/// The element `css` names, waited for up to ten seconds (a page still loading after a
/// click); a test that cannot find it fails with the page it was on.
async fn find(b: &Client, css: &str) -> fantoccini::elements::Element {
    match b
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => panic!(
            "{css}: {e}\non {:?}:\n{}",
            b.current_url().await.map(|u| u.to_string()),
            b.source().await.unwrap_or_default()
        ),
    }
}

async fn text(b: &Client, css: &str) -> String {
    find(b, css).await.text().await.expect("text")
}

/// Waits until the browser is at `path` (a post, its redirect and the page after it).
async fn at(b: &Client, path: &str) {
    for _ in 0..100 {
        if b.current_url().await.expect("url").path() == path
            && b.execute("return document.readyState", vec![]).await.ok() == Some(json!("complete"))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "not at {path} but {:?}:\n{}",
        b.current_url().await.map(|u| u.to_string()),
        b.source().await.unwrap_or_default()
    );
}

async fn sign_in(b: &Client, base: &str, name: &str) {
    b.goto(&format!("{base}/console/")).await.expect("goto");
    // A new visitor lands on the login.
    at(b, "/console/login").await;
    find(b, "input[name=username]")
        .await
        .send_keys(name)
        .await
        .expect("type");
    find(b, "input[name=password]")
        .await
        .send_keys(PASSWORD)
        .await
        .expect("type");
    click(b, "form[action='/console/login'] button").await;
    at(b, "/console/").await;
}

async fn click(b: &Client, css: &str) {
    find(b, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// How many elements the page holds that the alarm's text would have made, had it been
/// taken as markup.
async fn injected(b: &Client) -> u64 {
    b.execute(
        "return document.querySelectorAll('main script, main img, [onerror]').length",
        vec![],
    )
    .await
    .expect("script")
    .as_u64()
    .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_signs_in_acknowledges_says_im_fixing_and_signs_out() {
    // One browser at a time, and never beside a test that keeps time (`common::TIMING`).
    let _one = crate::common::TIMING.lock().await;
    let Some((_driver, b)) = driver().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let app = service(dir.path()).await;
    let base = app.url("");
    sign_in(&b, &base, "alice").await;
    assert_eq!(text(&b, "#pages + p, h2 + p").await, "None.");

    // An alarm arrives: after a reload it is on the dashboard, its markup as text.
    fire(&app, "db-down").await;
    fire(&app, EVIL).await;
    b.refresh().await.expect("reload");
    let pages = text(&b, "#pages").await;
    assert!(
        pages.contains("db-down is in ALARM: <script>alert(1)</script>"),
        "{pages}"
    );
    assert!(pages.contains(&format!("{EVIL} is in ALARM")), "{pages}");
    assert_eq!(injected(&b).await, 0);

    // Its page, acknowledged.
    click(&b, "form[action='/console/pages/1/ack'] button").await;
    assert_eq!(
        b.current_url().await.expect("url").path(),
        "/console/pages/1"
    );
    assert_eq!(text(&b, "strong").await, "acknowledged");
    let timeline = text(&b, "#timeline").await;
    assert!(
        timeline.contains("acknowledged by alice (via console)"),
        "{timeline}"
    );
    assert!(
        timeline.contains(&format!("The alarm's description: {EVIL}")),
        "{timeline}"
    );
    assert_eq!(injected(&b).await, 0);

    // I'm fixing, for an hour, then stopped.
    b.goto(&format!("{base}/console/")).await.expect("goto");
    find(&b, "#fixing-form input[name=alarm]")
        .await
        .send_keys("db-*")
        .await
        .expect("type");
    find(&b, "#fixing-form input[name=reason]")
        .await
        .send_keys("failing over")
        .await
        .expect("type");
    click(&b, "#fixing-form button").await;
    at(&b, "/console/").await;
    let fixing = text(&b, "#fixing").await;
    assert!(
        fixing.contains("db-*") && fixing.contains("alice is fixing it: failing over"),
        "{fixing}"
    );
    std::fs::create_dir_all("target").ok();
    let shot = b.screenshot().await.expect("screenshot");
    assert!(shot.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write("target/console.png", &shot).expect("saved");
    if std::env::var_os("CW_UPDATE_SCREENSHOT").is_some() {
        std::fs::write("docs/console.png", &shot).expect("saved for the README");
    }
    click(&b, "#fixing form[action$='/stop'] button").await;
    assert!(
        b.find(Locator::Css("#fixing")).await.is_err(),
        "no window active"
    );
    let windows = app.backend.config.windows().await.expect("windows");
    assert_eq!(windows[0].by.as_deref(), Some("alice"));

    // The audit log says who did what.
    b.goto(&format!("{base}/console/audit"))
        .await
        .expect("goto");
    let audit = text(&b, "#audit").await;
    for line in [
        "signed in",
        "acknowledged page 1 (db-down)",
        "started I'm fixing",
        "stopped I'm fixing",
    ] {
        assert!(audit.contains(line), "{line}: {audit}");
    }

    // Signed out: back to the login, and the console is closed again.
    click(&b, "form[action='/console/logout'] button").await;
    at(&b, "/console/login").await;
    b.goto(&format!("{base}/console/")).await.expect("goto");
    at(&b, "/console/login").await;
    b.close().await.expect("close");
    app.stop().await;
}

/// A page of another origin (another port of this host) whose form posts to the console
/// as soon as it loads, with the token it could not know left out.
async fn attacker(target: &str) -> SocketAddr {
    let page = format!(
        "<!doctype html><form id=f method=post action=\"{target}/console/pages/1/ack\">\
         <input type=hidden name=csrf value=guessed></form>\
         <script>document.getElementById('f').submit()</script>"
    );
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_cannot_acknowledge_and_forged_forms_are_refused() {
    // One browser at a time, and never beside a test that keeps time (`common::TIMING`).
    let _one = crate::common::TIMING.lock().await;
    let Some((_driver, b)) = driver().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let app = service(dir.path()).await;
    let base = app.url("");
    fire(&app, "db-down").await;

    // A viewer sees the page but has no button, and a post made by hand is refused.
    sign_in(&b, &base, "victor").await;
    assert!(text(&b, "#pages").await.contains("db-down"));
    assert!(b.find(Locator::Css("form[action$='/ack']")).await.is_err());
    assert!(b.find(Locator::Css("#fixing-form")).await.is_err());
    b.execute(
        "const f = document.createElement('form'); f.method = 'post';
         f.action = '/console/pages/1/ack';
         const t = document.querySelector('input[name=csrf]').cloneNode();
         f.appendChild(t); document.body.appendChild(f); f.submit();",
        vec![],
    )
    .await
    .expect("posted");
    at(&b, "/console/pages/1/ack").await;
    assert!(
        text(&b, "main")
            .await
            .contains("This needs the responder role")
    );
    click(&b, "main a[href='/console/']").await;
    at(&b, "/console/").await;
    click(&b, "form[action='/console/logout'] button").await;
    at(&b, "/console/login").await;

    // A responder's form with its CSRF token taken out: refused.
    sign_in(&b, &base, "alice").await;
    b.execute(
        "document.querySelector(\"form[action='/console/pages/1/ack'] input[name=csrf]\").remove()",
        vec![],
    )
    .await
    .expect("token removed");
    click(&b, "form[action='/console/pages/1/ack'] button").await;
    at(&b, "/console/pages/1/ack").await;
    assert!(text(&b, "main").await.contains("This form has expired"));

    // A page of another origin posting to the console as alice (her cookie goes along: the
    // same host is the same site): refused for its origin.
    let evil = attacker(&base).await;
    b.goto(&format!("http://{evil}/")).await.expect("goto");
    at(&b, "/console/pages/1/ack").await;
    assert!(
        text(&b, "main")
            .await
            .contains("This form was not sent from the console")
    );

    // Nothing was acknowledged.
    b.goto(&format!("{base}/console/pages/1"))
        .await
        .expect("goto");
    assert_eq!(text(&b, "strong").await, "open");
    b.close().await.expect("close");
    app.stop().await;
}
