//! The console with local accounts (`CONSOLE=local`), through the HTTP edge as a browser
//! would use it (cookies carried by hand, no redirects followed): a new visitor is sent to
//! the login; the login form has `username` and `password` and its own token; a session
//! cookie that script cannot read and other sites cannot send; the CSRF token and the
//! origin checked on every form; what each role may do; each change in the audit log; and
//! the throttle on guessing.

use serde_json::json;

use crate::common::{Options, TestApp};
use cw_support_api::console::SignIn;
use cw_support_api::console::accounts::Accounts;
use cw_support_api::console::roles::Role;
use cw_support_api::domain::documents::Document;
use cw_support_api::domain::settings::AlarmConfigStore;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// The app with a console of local accounts: alice (responder), victor (viewer) and ada
/// (admin), on duty by the walk-through's file, and one alarm that pages.
pub(crate) async fn app(dir: &std::path::Path) -> (TestApp, reqwest::Client) {
    let app = TestApp::spawn_with(
        dir,
        Options {
            console: Some(SignIn::Local),
            ..Options::default()
        },
    )
    .await;
    let mut accounts = Accounts::default();
    accounts
        .put("alice", Role::Responder, PASSWORD)
        .expect("alice");
    accounts
        .put("victor", Role::Viewer, PASSWORD)
        .expect("victor");
    let store = &app.backend.config;
    accounts.put("ada", Role::Admin, PASSWORD).expect("ada");
    store
        .save_document(Document::Users, &accounts.text())
        .await
        .expect("accounts");
    app.page_on_duty("db-down").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    (app, client)
}

pub(crate) fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub(crate) fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().expect("pair");
    pair.split_once('=').expect("=").1.to_owned()
}

/// The first CSRF token in a page.
pub(crate) fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().expect("value").to_owned()
}

/// Signs in as `name`: the session cookie's value.
pub(crate) async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    name: &str,
    pw: &str,
) -> reqwest::Response {
    let form = client
        .get(app.url("/console/login"))
        .send()
        .await
        .expect("form");
    let login = set_cookie(&form, "cw_login").expect("the login form's cookie");
    let token = csrf(&form.text().await.expect("body"));
    client
        .post(app.url("/console/login"))
        .header("cookie", format!("cw_login={}", cookie_value(&login)))
        .form(&[
            ("csrf", token.as_str()),
            ("username", name),
            ("password", pw),
        ])
        .send()
        .await
        .expect("login")
}

pub(crate) async fn session(app: &TestApp, client: &reqwest::Client, name: &str) -> String {
    let r = sign_in(app, client, name, PASSWORD).await;
    assert_eq!(r.status(), 303, "{name} signs in");
    assert_eq!(r.headers()["location"], "/console/");
    let c = set_cookie(&r, "cw_session").expect("a session cookie");
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/console/"),
        "{c}"
    );
    // Served on loopback to a browser on loopback: no TLS to require.
    assert!(!c.contains("Secure"), "{c}");
    format!("cw_session={}", cookie_value(&c))
}

pub(crate) async fn get(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    cookie: &str,
) -> (u16, String) {
    let r = client
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("get");
    (r.status().as_u16(), r.text().await.expect("body"))
}

pub(crate) async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> reqwest::Response {
    let mut req = client
        .post(app.url(path))
        .header("cookie", cookie)
        .form(form);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.expect("post")
}

#[tokio::test]
async fn a_new_visitor_is_sent_to_the_login_whose_form_has_username_and_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    let r = client.get(app.url("/console/")).send().await.expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login");
    let form = client
        .get(app.url("/console/login"))
        .send()
        .await
        .expect("form");
    assert_eq!(form.status(), 200);
    let c = set_cookie(&form, "cw_login").expect("cookie");
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    let csp = form.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let page = form.text().await.expect("body");
    assert!(
        page.contains("name=\"username\"") && page.contains("name=\"password\""),
        "{page}"
    );
    // Reached under another name, the cookie goes only over TLS.
    let r = client
        .get(app.url("/console/login"))
        .header("host", "pager.example.com")
        .send()
        .await
        .expect("form");
    assert!(
        set_cookie(&r, "cw_login")
            .expect("cookie")
            .contains("; Secure")
    );
    app.stop().await;
}

#[tokio::test]
async fn wrong_passwords_are_refused_alike_and_guessing_is_throttled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    // An unknown name and a wrong password: the same answer, no session.
    for (name, pw) in [("nobody", PASSWORD), ("alice", "not the password at all")] {
        let r = sign_in(&app, &client, name, pw).await;
        assert_eq!(r.status(), 401);
        assert!(set_cookie(&r, "cw_session").is_none());
        assert!(
            r.text()
                .await
                .expect("body")
                .contains("Wrong user name or password.")
        );
    }
    // Four more for alice make five: the next attempt waits, even with the password.
    for _ in 0..4 {
        assert_eq!(
            sign_in(&app, &client, "alice", "still not the password")
                .await
                .status(),
            401
        );
    }
    let r = sign_in(&app, &client, "alice", PASSWORD).await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("s")
        .parse()
        .expect("n");
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(set_cookie(&r, "cw_session").is_none());
    // Another account is not held up by alice's.
    assert_eq!(
        sign_in(&app, &client, "victor", PASSWORD).await.status(),
        303
    );
    app.stop().await;
}

#[tokio::test]
async fn a_login_without_its_forms_token_or_from_another_origin_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    let fields = [
        ("csrf", "guess"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    let r = client
        .post(app.url("/console/login"))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let form = client
        .get(app.url("/console/login"))
        .send()
        .await
        .expect("form");
    let login = format!(
        "cw_login={}",
        cookie_value(&set_cookie(&form, "cw_login").expect("c"))
    );
    let token = csrf(&form.text().await.expect("body"));
    let fields = [
        ("csrf", token.as_str()),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    let r = post(
        &app,
        &client,
        "/console/login",
        &login,
        &fields,
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(r.status(), 403);
    // Malformed forms: the field named twice, a field missing, too large.
    let twice = format!("csrf={token}&username=alice&username=bob&password=x");
    let r = client
        .post(app.url("/console/login"))
        .header("cookie", &login)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(twice)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let r = post(
        &app,
        &client,
        "/console/login",
        &login,
        &[("csrf", token.as_str()), ("username", "alice")],
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    let huge = "x".repeat(20_000);
    let r = post(
        &app,
        &client,
        "/console/login",
        &login,
        &[("csrf", token.as_str()), ("password", huge.as_str())],
        None,
    )
    .await;
    assert_eq!(r.status(), 413);
    // With its token, from its own origin: in.
    let r = post(
        &app,
        &client,
        "/console/login",
        &login,
        &fields,
        Some(&app.url("")),
    )
    .await;
    assert_eq!(r.status(), 303);
    app.stop().await;
}

#[tokio::test]
async fn a_responder_acknowledges_and_says_im_fixing_and_each_change_is_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let alarm = json!({"AlarmName": "db-down", "AlarmDescription": evil, "NewStateValue": "ALARM",
        "NewStateReason": evil, "StateChangeTime": "2026-12-07T03:00:00.000+0000"});
    let (status, body) = app.post(alarm.to_string()).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("paged")),
        "{body}"
    );

    let alice = session(&app, &client, "alice").await;
    let (status, page) = get(&app, &client, "/console/", &alice).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("db-down") && page.contains("I have it"),
        "{page}"
    );
    assert!(
        !page.contains("<script>") && !page.contains("<img"),
        "{page}"
    );
    let token = csrf(&page);

    // Without the token, with another's, or from another origin: refused, nothing changed.
    for (form, origin) in [
        (vec![], None),
        (vec![("csrf", "0123")], None),
        (vec![("csrf", token.as_str())], Some("https://evil.example")),
        (vec![("csrf", token.as_str())], Some("null")),
    ] {
        let r = post(&app, &client, "/console/pages/1/ack", &alice, &form, origin).await;
        assert_eq!(r.status(), 403, "{form:?} {origin:?}");
    }
    let (_, shown) = get(&app, &client, "/console/pages/1", &alice).await;
    assert!(shown.contains(">open<"), "{shown}");

    let r = post(
        &app,
        &client,
        "/console/pages/1/ack",
        &alice,
        &[("csrf", &token)],
        Some(&app.url("")),
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, shown) = get(&app, &client, "/console/pages/1", &alice).await;
    assert!(shown.contains(" s after it opened</p>"), "{shown}");
    assert!(
        shown.contains(">acknowledged<") && shown.contains("acknowledged by alice (via console)"),
        "{shown}"
    );
    assert!(
        !shown.contains("<script>") && !shown.contains("<img"),
        "{shown}"
    );
    // Twice: said, not done again.
    let r = post(
        &app,
        &client,
        "/console/pages/1/ack",
        &alice,
        &[("csrf", &token)],
        None,
    )
    .await;
    assert_eq!(r.status(), 409);
    // A page that is not there, an action that is not one.
    assert_eq!(
        post(
            &app,
            &client,
            "/console/pages/99/ack",
            &alice,
            &[("csrf", &token)],
            None
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        post(
            &app,
            &client,
            "/console/pages/1/delete",
            &alice,
            &[("csrf", &token)],
            None
        )
        .await
        .status(),
        404
    );

    assert_eq!(
        post(
            &app,
            &client,
            "/console/pages/one/ack",
            &alice,
            &[("csrf", &token)],
            None
        )
        .await
        .status(),
        404
    );
    for path in [
        "/console/pages/99",
        "/console/pages/one",
        "/console/pages/-1",
    ] {
        assert_eq!(get(&app, &client, path, &alice).await.0, 404, "{path}");
    }

    // I'm fixing, for an hour; then stopped.
    let fix = [
        ("csrf", token.as_str()),
        ("alarm", "db-*"),
        ("minutes", "60"),
        ("reason", "restarting it"),
    ];
    assert_eq!(
        post(&app, &client, "/console/fixing", &alice, &fix, None)
            .await
            .status(),
        303
    );
    let windows = app.backend.config.windows().await.expect("windows");
    assert_eq!(windows.len(), 1);
    let w = &windows[0];
    assert_eq!(
        (w.alarm_pattern.as_deref(), w.by.as_deref()),
        (Some("db-*"), Some("alice"))
    );
    assert_eq!(w.reason, "alice is fixing it: restarting it");
    assert_eq!(w.ends_at - w.starts_at, chrono::Duration::hours(1));
    for bad in [
        vec![("csrf", token.as_str()), ("alarm", ""), ("minutes", "60")],
        vec![("csrf", token.as_str()), ("alarm", "db"), ("minutes", "0")],
        vec![
            ("csrf", token.as_str()),
            ("alarm", "db"),
            ("minutes", "100000"),
        ],
        vec![
            ("csrf", token.as_str()),
            ("alarm", "db"),
            ("minutes", "an hour"),
        ],
    ] {
        assert_eq!(
            post(&app, &client, "/console/fixing", &alice, &bad, None)
                .await
                .status(),
            400,
            "{bad:?}"
        );
    }
    let (_, dash) = get(&app, &client, "/console/", &alice).await;
    assert!(dash.contains("alice is fixing it: restarting it"), "{dash}");
    let stop = format!("/console/fixing/{}/stop", w.id);
    assert_eq!(
        post(&app, &client, &stop, &alice, &[("csrf", &token)], None)
            .await
            .status(),
        303
    );
    assert_eq!(
        post(&app, &client, &stop, &alice, &[("csrf", &token)], None)
            .await
            .status(),
        409
    );
    assert!(!app.backend.config.windows().await.expect("w")[0].active_at(chrono::Utc::now()));

    let (_, audit) = get(&app, &client, "/console/audit", &alice).await;
    for line in [
        "signed in",
        "acknowledged page 1 (db-down)",
        "started I&#39;m fixing",
        "stopped I&#39;m fixing",
    ] {
        assert!(audit.contains(line), "{line}: {audit}");
    }

    // Signed out: the session is over, on the server too.
    let r = post(
        &app,
        &client,
        "/console/logout",
        &alice,
        &[("csrf", &token)],
        None,
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), r.headers()["location"].to_str().ok()),
        (303, Some("/console/login"))
    );
    let r = client
        .get(app.url("/console/"))
        .header("cookie", &alice)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_sees_but_cannot_act_and_a_deleted_account_is_signed_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    let alarm = json!({"AlarmName": "db-down", "NewStateValue": "ALARM", "StateChangeTime": "2026-12-07T03:00:00.000+0000"});
    assert_eq!(app.post(alarm.to_string()).await.0, 200);
    let victor = session(&app, &client, "victor").await;
    let (status, page) = get(&app, &client, "/console/", &victor).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("db-down") && !page.contains("I have it") && !page.contains("fixing-form"),
        "{page}"
    );
    let token = csrf(&page);
    let r = post(
        &app,
        &client,
        "/console/pages/1/ack",
        &victor,
        &[("csrf", &token)],
        None,
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("needs the responder role")
    );
    let fix = [
        ("csrf", token.as_str()),
        ("alarm", "db-*"),
        ("minutes", "60"),
    ];
    assert_eq!(
        post(&app, &client, "/console/fixing", &victor, &fix, None)
            .await
            .status(),
        403
    );
    let (_, shown) = get(&app, &client, "/console/pages/1", &victor).await;
    assert!(shown.contains(">open<"), "{shown}");

    // The account removed: its open session lets nobody in any more.
    let mut accounts = Accounts::read(
        app.backend
            .config
            .document(Document::Users)
            .await
            .expect("doc")
            .as_deref(),
    )
    .expect("accounts");
    assert!(accounts.delete("victor"));
    app.backend
        .config
        .save_document(Document::Users, &accounts.text())
        .await
        .expect("saved");
    let r = client
        .get(app.url("/console/"))
        .header("cookie", &victor)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    app.stop().await;
}

#[tokio::test]
async fn the_schedules_case_story_and_last_days_chart_are_shown_and_overrides_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    // An alarm that opens a case (no route to people): the dry-run desk's case 1.
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string();
    let alarm = json!({"AlarmName": "api-5xx", "NewStateValue": "ALARM", "StateChangeTime": now});
    let (status, body) = app.post(alarm.to_string()).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("created")),
        "{body}"
    );
    let case = body["caseId"].as_str().expect("case id").to_owned();

    let alice = session(&app, &client, "alice").await;
    let (_, dash) = get(&app, &client, "/console/", &alice).await;
    assert!(
        dash.contains("<svg") && dash.contains(": 1</title></rect>"),
        "one alarm this hour: {dash}"
    );
    assert!(
        dash.contains(&format!("href=\"/console/cases/{case}\"")),
        "{dash}"
    );
    let (status, story) = get(&app, &client, &format!("/console/cases/{case}"), &alice).await;
    assert_eq!(status, 200);
    assert!(
        story.contains("api-5xx") && story.contains("created"),
        "{story}"
    );
    for bad in [
        "/console/cases/nope-0",
        "/console/cases/%3Cscript%3E",
        &format!("/console/cases/{}", "x".repeat(200)),
    ] {
        assert_eq!(get(&app, &client, bad, &alice).await.0, 404, "{bad}");
    }

    // The week's shifts, and an override for tomorrow.
    let (status, week) = get(&app, &client, "/console/schedules", &alice).await;
    assert_eq!(status, 200);
    assert!(
        week.contains("<h2>primary</h2>") && week.contains("override-form"),
        "{week}"
    );
    let token = csrf(&week);
    let day = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let (from, until) = (format!("{day}T09:00"), format!("{day}T17:00"));
    let form = [
        ("csrf", token.as_str()),
        ("schedule", "primary"),
        ("person", "bob"),
        ("from", &from),
        ("until", &until),
    ];
    let r = post(
        &app,
        &client,
        "/console/schedules/override",
        &alice,
        &form,
        None,
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, week) = get(&app, &client, "/console/schedules", &alice).await;
    assert!(week.contains("<td>bob</td>"), "{week}");
    let saved = app
        .backend
        .config
        .on_call()
        .await
        .expect("read")
        .expect("file");
    assert!(
        saved.contains("[[schedule.override]]") && saved.contains(&from),
        "{saved}"
    );
    // Every mistake said, nothing saved.
    for (field, value, said) in [
        ("person", "mallory", "no person mallory"),
        ("schedule", "nightly", "no schedule &quot;nightly&quot;"),
        ("from", "tomorrow", "tomorrow"),
        ("until", &from, "ends"),
    ] {
        let mut bad: Vec<(&str, &str)> = form.to_vec();
        for f in bad.iter_mut().filter(|f| f.0 == field) {
            f.1 = value;
        }
        let r = post(
            &app,
            &client,
            "/console/schedules/override",
            &alice,
            &bad,
            None,
        )
        .await;
        assert_eq!(r.status(), 400, "{field}");
        let text = r.text().await.expect("body");
        assert!(text.contains(said), "{field}: {text}");
    }
    assert_eq!(
        app.backend
            .config
            .on_call()
            .await
            .expect("read")
            .expect("file"),
        saved
    );
    let (_, audit) = get(&app, &client, "/console/audit", &alice).await;
    assert!(
        audit.contains(&format!(
            "put bob on duty in primary from {from} until {until}"
        )),
        "{audit}"
    );

    // A viewer sees the week, has no form, and cannot post one.
    let victor = session(&app, &client, "victor").await;
    let (_, week) = get(&app, &client, "/console/schedules", &victor).await;
    assert!(
        week.contains("<h2>primary</h2>") && !week.contains("override-form"),
        "{week}"
    );
    let token = csrf(&week);
    let form = [
        ("csrf", token.as_str()),
        ("schedule", "primary"),
        ("person", "bob"),
        ("from", &from),
        ("until", &until),
    ];
    assert_eq!(
        post(
            &app,
            &client,
            "/console/schedules/override",
            &victor,
            &form,
            None
        )
        .await
        .status(),
        403
    );
    app.stop().await;
}

#[tokio::test]
async fn an_admin_changes_an_alarms_settings_and_nobody_else_can() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    let ada = session(&app, &client, "ada").await;
    let (status, page) = get(&app, &client, "/console/settings", &ada).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<td>db-down</td>") && page.contains("settings-form"),
        "{page}"
    );
    let token = csrf(&page);
    let form = [
        ("csrf", token.as_str()),
        ("alarm", "db-down"),
        ("priority", "High"),
        ("route", "both"),
        ("action", "Fail over: runbook/db.md"),
    ];
    assert_eq!(
        post(&app, &client, "/console/settings", &ada, &form, None)
            .await
            .status(),
        303
    );
    let r = app
        .backend
        .config
        .get("db-down")
        .await
        .expect("read")
        .expect("record");
    assert_eq!(
        (
            r.priority.as_deref(),
            r.route.as_deref(),
            r.policy.as_deref(),
            r.action.as_deref()
        ),
        (
            Some("high"),
            Some("both"),
            Some("default"),
            Some("Fail over: runbook/db.md")
        )
    );
    // What a case could not use is refused, said, and nothing saved.
    for (field, value, said) in [
        ("priority", "whenever", "priority"),
        ("route", "sometimes", "route"),
        ("enabled", "maybe", "enabled: yes or no"),
        ("alarm", "", "Name the alarm"),
        ("policy", "", "Nothing to change"),
    ] {
        let mut bad = vec![("csrf", token.as_str()), ("alarm", "db-down")];
        match bad.iter_mut().find(|f| f.0 == field) {
            Some(f) => f.1 = value,
            None => bad.push((field, value)),
        }
        let r = post(&app, &client, "/console/settings", &ada, &bad, None).await;
        assert_eq!(r.status(), 400, "{field}");
        assert!(r.text().await.expect("body").contains(said), "{field}");
    }
    assert_eq!(
        app.backend
            .config
            .get("db-down")
            .await
            .expect("read")
            .expect("record")
            .priority
            .as_deref(),
        Some("high")
    );
    let (_, audit) = get(&app, &client, "/console/audit", &ada).await;
    assert!(audit.contains("changed the settings of db-down: priority=High, route=both, action=Fail over: runbook/db.md"), "{audit}");

    // A responder sees the settings and has no form; a post is refused.
    let alice = session(&app, &client, "alice").await;
    let (_, page) = get(&app, &client, "/console/settings", &alice).await;
    assert!(
        page.contains("<td>high</td>") && !page.contains("settings-form"),
        "{page}"
    );
    let token = csrf(&page);
    let form = [
        ("csrf", token.as_str()),
        ("alarm", "db-down"),
        ("enabled", "false"),
    ];
    let r = post(&app, &client, "/console/settings", &alice, &form, None).await;
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("needs the admin role")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cases_view_shows_what_the_desk_said_and_its_graph() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    let (status, body) = app.post(crate::common::payload("metric-alarm.json")).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("created")),
        "{body}"
    );
    let case = body["caseId"].as_str().expect("case").to_owned();
    let victor = session(&app, &client, "victor").await;
    let (status, page) = get(&app, &client, &format!("/console/cases/{case}"), &victor).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<table id=\"communications\">") && page.contains("cw-support-api (dry run)"),
        "{page}"
    );
    assert!(
        page.contains(&format!("<img src=\"/console/cases/{case}/graph\"")),
        "{page}"
    );
    let r = client
        .get(app.url(&format!("/console/cases/{case}/graph")))
        .header("cookie", &victor)
        .send()
        .await
        .expect("graph");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.bytes().await.expect("png").starts_with(b"\x89PNG"));
    // Nobody signed in gets no picture; a case with none is 404.
    let r = client
        .get(app.url(&format!("/console/cases/{case}/graph")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(
        get(&app, &client, "/console/cases/dry-run-99/graph", &victor)
            .await
            .0,
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn the_report_page_shows_this_months_figures_to_everyone_signed_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, client) = app(dir.path()).await;
    let alarm = json!({"AlarmName": "db-down", "NewStateValue": "ALARM", "StateChangeTime": "2026-12-07T03:00:00.000+0000"});
    assert_eq!(app.post(alarm.to_string()).await.0, 200);
    let alice = session(&app, &client, "alice").await;
    let (_, page) = get(&app, &client, "/console/", &alice).await;
    let token = csrf(&page);
    assert_eq!(
        post(
            &app,
            &client,
            "/console/pages/1/ack",
            &alice,
            &[("csrf", &token)],
            None
        )
        .await
        .status(),
        303
    );
    let victor = session(&app, &client, "victor").await;
    let (status, page) = get(&app, &client, "/console/report", &victor).await;
    assert_eq!(status, 200);
    let this = chrono::Utc::now().format("%Y-%m").to_string();
    assert!(page.contains(&format!("<h2>{this} so far</h2>")), "{page}");
    assert!(page.contains("<th>Pages opened</th><td>1</td>"), "{page}");
    assert!(
        page.contains("<title>acknowledged: 1</title>") && page.contains("(of 1)"),
        "{page}"
    );
    assert!(
        page.contains("<td>db-down</td><td>1</td><td>0</td><td>0</td>"),
        "{page}"
    );
    // No case was opened (the alarm pages only): each severity's row, its target, nothing met.
    assert!(
        page.contains("<tr><td>high</td><td>0</td><td>240 min</td><td>0</td><td>0</td><td>0</td><td>-</td><td>-</td></tr>"),
        "{page}"
    );
    // Acknowledged before its first step called anyone: no callouts.
    assert!(!page.contains("<h3>Callouts</h3>"), "{page}");
    // Nobody signed in: to the login.
    let r = client
        .get(app.url("/console/report"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    app.stop().await;
}
