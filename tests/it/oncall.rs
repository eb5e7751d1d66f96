//! `oncall` through the release-shaped binary, the same scenario on the embedded default
//! and on DynamoDB (moto): import a file, ask who is on duty, refuse a bad file without
//! changing anything, add an override, export and import back unchanged, show the shifts.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::common;
use common::process::BIN;

const EXAMPLE: &str = "tests/data/oncall/example.toml";

/// Runs `oncall ARGS` with this environment.
pub(crate) fn oncall(env: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("oncall").args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("runs")
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn json_of(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).expect("json")
}

/// The whole scenario against one backend.
pub(crate) fn scenario(env: &[(String, String)], scratch: &Path) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
    let example = example.to_str().expect("path");
    assert_eq!(
        ok(&oncall(env, &["import", example])).trim(),
        "imported 3 person(s), 1 schedule(s), 1 policy(ies)"
    );
    // Monday 10:00 in Berlin: the weekday layer (carol) until 18:00; then the weekly
    // rotation (alice) until carol's window opens again on Tuesday.
    let now = |at: &str| json_of(&oncall(env, &["now", "--at", at, "--json"]));
    assert_eq!(
        now("2027-03-01T09:00:00Z"),
        json!([{"schedule": "primary", "person": "carol", "until": "2027-03-01T17:00:00Z"}])
    );
    assert_eq!(
        now("2027-03-01T18:00:00Z"),
        json!([{"schedule": "primary", "person": "alice", "until": "2027-03-02T08:00:00Z"}])
    );

    // A bad file is refused with its line and field, and nothing changes.
    let before = ok(&oncall(env, &["export"]));
    let bad = scratch.join("bad.toml");
    let text = std::fs::read_to_string(example).expect("example");
    std::fs::write(
        &bad,
        text.replacen(
            "people = [\"alice\", \"bob\"]",
            "people = [\"alice\", \"dave\"]",
            1,
        ),
    )
    .expect("write");
    let refused = oncall(env, &["import", bad.to_str().expect("path")]);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("schedule[0].rotation[0].people[1]: dave is not a [[person]] of this file")
            && said.contains("line ")
            && said.contains("nothing saved"),
        "{said}"
    );
    assert_eq!(ok(&oncall(env, &["export"])), before, "nothing saved");

    // An override wins over both layers, in the schedule's local time.
    ok(&oncall(
        env,
        &[
            "override",
            "primary",
            "bob",
            "--from",
            "2027-03-02T00:00",
            "--until",
            "2027-03-03T00:00",
        ],
    ));
    assert_eq!(
        now("2027-03-02T12:00:00Z"),
        json!([{"schedule": "primary", "person": "bob", "until": "2027-03-02T23:00:00Z"}])
    );
    let refused = oncall(
        env,
        &[
            "override",
            "primary",
            "zoe",
            "--from",
            "2027-03-02T00:00",
            "--until",
            "2027-03-03T00:00",
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "an unknown person");

    // Export then import is the identity.
    let exported = ok(&oncall(env, &["export"]));
    let again = scratch.join("again.toml");
    std::fs::write(&again, &exported).expect("write");
    ok(&oncall(env, &["import", again.to_str().expect("path")]));
    assert_eq!(ok(&oncall(env, &["export"])), exported);

    let shifts = json_of(&oncall(
        env,
        &[
            "show",
            "primary",
            "--from",
            "2027-03-01T00:00",
            "--until",
            "2027-03-02T00:00",
            "--json",
        ],
    ));
    assert_eq!(
        shifts,
        json!([
            {"person": "carol", "from": "2027-03-01T08:00:00Z", "until": "2027-03-01T17:00:00Z"},
            {"person": "alice", "from": "2027-03-01T17:00:00Z", "until": "2027-03-01T23:00:00Z"}
        ])
    );
    calendar_reads_in_a_standard_library(env);
}

/// The calendar export, read by Python's `icalendar` (PyPI): one event per shift, at the
/// shifts' times. Skipped (loudly) without it, unless `CW_REQUIRE_ICALENDAR=1` (`.ci/run`).
fn calendar_reads_in_a_standard_library(env: &[(String, String)]) {
    let range = ["--from", "2027-03-01T00:00", "--until", "2027-03-08T00:00"];
    let ics = ok(&oncall(
        env,
        &[&["export", "--ical", "primary"][..], &range].concat(),
    ));
    let shifts = json_of(&oncall(
        env,
        &[&["show", "primary", "--json"][..], &range].concat(),
    ));
    const READ: &str = "import sys, json, icalendar\n\
        cal = icalendar.Calendar.from_ical(sys.stdin.buffer.read())\n\
        print(json.dumps([{'start': e.decoded('dtstart').isoformat(), \
        'end': e.decoded('dtend').isoformat(), 'summary': str(e.get('summary'))} \
        for e in cal.walk('VEVENT')]))";
    let mut child = match Command::new("python3")
        .args(["-c", "import icalendar"])
        .status()
    {
        Ok(s) if s.success() => Command::new("python3")
            .args(["-c", READ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3"),
        _ => {
            assert!(
                std::env::var_os("CW_REQUIRE_ICALENDAR").is_none(),
                "python's icalendar is required here: pip install icalendar"
            );
            eprintln!("SKIPPED: python's icalendar is not installed (pip install icalendar)");
            return;
        }
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ics.as_bytes())
        .expect("write");
    let read = child.wait_with_output().expect("python");
    assert!(read.status.success(), "icalendar refused it:\n{ics}");
    let events: Value = serde_json::from_slice(&read.stdout).expect("json");
    let events = events.as_array().expect("events");
    let shifts = shifts.as_array().expect("shifts");
    assert_eq!(events.len(), shifts.len(), "{ics}");
    for (e, s) in events.iter().zip(shifts) {
        let utc = |t: &Value| t.as_str().expect("time").replace("+00:00", "Z");
        assert_eq!(utc(&e["start"]), s["from"].as_str().expect("from"));
        assert_eq!(utc(&e["end"]), s["until"].as_str().expect("until"));
        assert!(
            e["summary"]
                .as_str()
                .expect("summary")
                .starts_with("On duty: ")
        );
    }
}

#[test]
fn on_duty_on_the_embedded_default() {
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("BACKEND".to_owned(), "local".to_owned()),
    ];
    scenario(&env, dir.path());
}

/// A person's calendar feed over HTTP behind its secret URL: their shifts only, and the same
/// 404 for a wrong token, another person's token and an unknown person; the token is never
/// logged.
#[tokio::test]
async fn a_person_reads_their_feed_and_nobody_else_can() {
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("BACKEND".to_owned(), "local".to_owned()),
    ];
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
    ok(&oncall(&env, &["import", example.to_str().expect("path")]));
    let path = ok(&oncall(&env, &["feed", "alice"])).trim().to_owned();
    let token = path
        .strip_prefix("/oncall/feed/alice/")
        .and_then(|t| t.strip_suffix(".ics"))
        .expect("the feed's path")
        .to_owned();
    assert_eq!(token.len(), 64);
    let refused = oncall(&env, &["feed", "zoe"]);
    assert_eq!(refused.status.code(), Some(2), "an unknown person");

    let data_dir = dir.path().display().to_string();
    let server = common::process::ServerProcess::start(&[("DATA_DIR", &data_dir)]);
    let client = reqwest::Client::new();
    let get = |p: String| {
        let (client, url) = (client.clone(), server.url(&p));
        async move { client.get(url).send().await.expect("answered") }
    };
    let feed = get(path.clone()).await;
    assert_eq!(feed.status(), 200);
    assert_eq!(
        feed.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let ics = feed.text().await.expect("body");
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"), "{ics}");
    assert!(
        ics.contains("X-WR-CALNAME:On duty: Alice Example\r\n"),
        "{ics}"
    );
    assert!(
        !ics.contains("Carol Example") && !ics.contains("Bob Example"),
        "{ics}"
    );

    let mut other = token.clone().into_bytes();
    other[0] = if other[0] == b'a' { b'b' } else { b'a' };
    let other = String::from_utf8(other).expect("hex");
    for refused in [
        format!("/oncall/feed/alice/{other}.ics"),
        format!("/oncall/feed/bob/{token}.ics"),
        format!("/oncall/feed/zoe/{token}.ics"),
        format!("/oncall/feed/alice/{token}"),
    ] {
        let answer = get(refused.clone()).await;
        assert_eq!(answer.status(), 404, "{refused}");
        assert_eq!(answer.text().await.expect("body"), "not found");
    }
    assert!(!server.log().contains(&token), "the token is never logged");
    assert!(
        std::fs::read_to_string(dir.path().join("oncall-feed.key")).is_ok_and(|k| k.len() == 64),
        "the key kept in DATA_DIR"
    );
}

/// Every kind of bad input to the commands: a clear message and exit status 2 (1 for a file
/// that cannot be read), and nothing saved.
#[test]
fn bad_input_to_the_oncall_commands_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("BACKEND".to_owned(), "local".to_owned()),
    ];
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
    ok(&oncall(&env, &["import", example.to_str().expect("path")]));
    let saved = ok(&oncall(&env, &["export"]));
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, "#".repeat(300 * 1024)).expect("write");
    let huge = huge.to_str().expect("path").to_owned();
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["import", "/nonexistent/team.toml"],
            1,
            "reading /nonexistent/team.toml",
        ),
        (&["import", &huge], 2, "larger than an on-duty file may be"),
        (&["now", "--at", "tomorrow"], 2, "is not a date and time"),
        (&["show", "nosuch"], 2, "no schedule \"nosuch\""),
        (
            &[
                "show",
                "primary",
                "--from",
                "2027-03-02T00:00",
                "--until",
                "2027-03-01T00:00",
            ],
            2,
            "--until must come after --from",
        ),
        (
            &[
                "show",
                "primary",
                "--from",
                "2027-03-01T00:00",
                "--until",
                "2028-06-01T00:00",
            ],
            2,
            "within a year",
        ),
        (
            &[
                "override",
                "primary",
                "bob",
                "--from",
                "2027-03-02T00:00",
                "--until",
                "2027-03-01T00:00",
            ],
            2,
            "the override ends",
        ),
        (
            &[
                "override",
                "nosuch",
                "bob",
                "--from",
                "2027-03-01T00:00",
                "--until",
                "2027-03-02T00:00",
            ],
            2,
            "no schedule \"nosuch\"",
        ),
        (
            &[
                "override",
                "primary",
                "Bob",
                "--from",
                "2027-03-01T00:00",
                "--until",
                "2027-03-02T00:00",
            ],
            2,
            "is not a person id",
        ),
        (
            &[
                "override",
                "primary",
                "bob",
                "--from",
                "next week",
                "--until",
                "2027-03-02T00:00",
            ],
            2,
            "is not a local date and time",
        ),
        (&["feed", "zoe"], 2, "no person zoe"),
        (&["export", "--ical", "nosuch"], 2, "no schedule \"nosuch\""),
    ];
    for (args, status, want) in cases {
        let o = oncall(&env, args);
        let said = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(*status), "{args:?}: {said}");
        assert!(said.contains(want), "{args:?}: want {want:?}, got {said}");
    }
    assert_eq!(ok(&oncall(&env, &["export"])), saved, "nothing saved");

    // A feed key too short stops the command (exit 2); a good one makes the same URL each
    // time, unlike the key kept in DATA_DIR.
    let mut short = env.to_vec();
    short.push(("ONCALL_FEED_KEY".to_owned(), "short".to_owned()));
    let o = oncall(&short, &["feed", "alice"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 32 characters"));
    let mut keyed = env.to_vec();
    keyed.push(("ONCALL_FEED_KEY".to_owned(), "k".repeat(40)));
    let first = ok(&oncall(&keyed, &["feed", "alice"]));
    assert_eq!(ok(&oncall(&keyed, &["feed", "alice"])), first);
    assert_ne!(ok(&oncall(&env, &["feed", "alice"])), first);
}
