//! The binary as a user runs it: `alarms`, `process`, `cases`, and `serve` stopped by
//! SIGTERM.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::payload_path;
use serde_json::Value;

use common::process::{BIN, ServerProcess};

fn cli(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .env_remove("PORT")
        .env_remove("BACKEND")
        .output()
        .expect("runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_every_option_with_its_env_var() {
    let o = cli(Path::new("."), &["--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    for var in [
        "PORT",
        "BIND",
        "BACKEND",
        "DATA_DIR",
        "LOG_FORMAT",
        "REQUEST_TIMEOUT",
        "UPDATE_COOLDOWN",
        "RECOVERY_NOTE",
        "CLOSE_ON_RECOVERY",
        "DEFAULT_SERVICE_CODE",
        "DEFAULT_CATEGORY_CODE",
    ] {
        assert!(
            help.contains(&format!("[env: {var}=")),
            "{var} missing from --help"
        );
    }
}

#[test]
fn alarms_put_get_list_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let o = cli(
        d,
        &[
            "alarms",
            "put",
            "db-cpu",
            "--priority",
            "urgent",
            "--action",
            r#"{"runbook":"fail over"}"#,
            "--cc",
            "ops@example.com",
            "--cc",
            "dba@example.com",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let o = cli(d, &["alarms", "get", "db-cpu"]);
    assert!(o.status.success());
    let v: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["priority"], "urgent");
    assert_eq!(v["ccemail"][1], "dba@example.com");

    // A partial put keeps the other fields.
    let o = cli(d, &["alarms", "put", "db-cpu", "--enabled", "false"]);
    assert!(o.status.success());
    let v: Value =
        serde_json::from_str(&stdout(&cli(d, &["alarms", "get", "db-cpu"]))).expect("json");
    assert_eq!(v["priority"], "urgent");
    assert_eq!(v["enabled"], false);

    // The file is plain JSON a person can read.
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("alarms.json")).expect("file"))
            .expect("json");
    assert_eq!(file["db-cpu"]["priority"], "urgent");

    let list = stdout(&cli(d, &["alarms", "list"]));
    assert!(list.contains("db-cpu") && list.contains("urgent"), "{list}");

    assert!(cli(d, &["alarms", "delete", "db-cpu"]).status.success());
    let o = cli(d, &["alarms", "get", "db-cpu"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no settings"));
}

#[test]
fn alarms_put_refuses_bad_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = cli(dir.path(), &["alarms", "put", "x", "--priority", "p1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown priority"), "{}", stderr(&o));
    // Refused, not "used with a fallback" as a stored value would be at case time.
    assert!(!stderr(&o).contains("using priority low"), "{}", stderr(&o));
    let o = cli(dir.path(), &["alarms", "put", "x", "--cc", "not-an-email"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not an email"));
    assert!(!dir.path().join("alarms.json").exists());
}

#[test]
fn process_prints_the_case_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    cli(
        d,
        &[
            "alarms",
            "put",
            "prod-api-5xx-rate",
            "--priority",
            "high",
            "--cc",
            "ops@example.com",
        ],
    );
    let file = payload_path("metric-alarm.json");
    let o = cli(d, &["process", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["outcome"], "created");
    assert_eq!(v["plan"]["action"], "create");
    let case = &v["plan"]["case"];
    assert_eq!(case["subject"], "prod-api-5xx-rate");
    assert_eq!(case["severityCode"], "high");
    assert_eq!(case["ccEmailAddresses"][0], "ops@example.com");
    assert_eq!(case["serviceCode"], "amazon-elastic-compute-cloud-linux");
    assert!(
        case["communicationBody"]
            .as_str()
            .unwrap_or("")
            .contains("HTTPCode_Target_5XX_Count")
    );

    // Nothing was recorded: processing twice gives the same answer.
    let again: Value = serde_json::from_str(&stdout(&cli(
        d,
        &["process", file.to_str().expect("utf-8")],
    )))
    .expect("json");
    assert_eq!(again["outcome"], "created");
    assert!(stdout(&cli(d, &["cases", "list"])).contains("no decisions"));
}

#[test]
fn process_reads_stdin_and_reports_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .args(["process", "-"])
        .env("DATA_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"AlarmName": "x"}"#)
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing_field"), "{}", stderr(&o));
    assert!(stderr(&o).contains("StateChangeTime"));
}

#[tokio::test]
async fn serve_handles_a_post_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(&[("DATA_DIR", dir.path().to_str().expect("utf-8"))]);
    let addr = server.addr.clone();
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{addr}/serviceme"))
        .body(std::fs::read(payload_path("minimal.json")).expect("fixture"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["outcome"], "created");

    // While the server runs, the ledger can be read by another process.
    let list = cli(dir.path(), &["cases", "list", "--json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let decisions: Value = serde_json::from_str(&stdout(&list)).expect("json");
    assert_eq!(decisions[0]["outcome"], "created");
    assert_eq!(decisions[0]["caseId"], "dry-run-1");

    let show = cli(dir.path(), &["cases", "show", "dry-run-1"]);
    assert!(show.status.success());
    let text = stdout(&show);
    assert!(text.contains("Subject: My Alarm"), "{text}");
    assert!(text.contains("Severity: low"));
    assert!(text.contains("created"));

    let status = server.terminate();
    assert!(status.success(), "exit 0 on SIGTERM, got {status}");
}

#[test]
fn cases_show_unknown_id_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = cli(dir.path(), &["cases", "show", "dry-run-77"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no case"));
}

#[test]
fn maintenance_start_list_stop_and_suppression() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let o = cli(
        d,
        &[
            "maintenance",
            "start",
            "--for",
            "2h",
            "--reason",
            "database upgrade",
            "--alarm",
            "prod-api-*",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("database upgrade"));

    let listed: Value =
        serde_json::from_str(&stdout(&cli(d, &["maintenance", "list", "--json"]))).expect("json");
    assert_eq!(listed[0]["alarmPattern"], "prod-api-*");
    let table = stdout(&cli(d, &["maintenance", "list"]));
    assert!(
        table.contains("active") && table.contains("prod-api-*"),
        "{table}"
    );

    // An alarm it covers is suppressed with the window's reason, as `process` shows.
    let file = payload_path("metric-alarm.json");
    let v: Value = serde_json::from_str(&stdout(&cli(
        d,
        &["process", file.to_str().expect("utf-8")],
    )))
    .expect("json");
    assert_eq!(v["outcome"], "suppressed");
    assert!(
        v["plan"]["why"]
            .as_str()
            .unwrap_or("")
            .contains("database upgrade"),
        "{v}"
    );

    let o = cli(d, &["maintenance", "stop"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&cli(
        d,
        &["process", file.to_str().expect("utf-8")],
    )))
    .expect("json");
    assert_eq!(v["outcome"], "created");
    let o = cli(d, &["maintenance", "stop"]);
    assert!(!o.status.success(), "nothing left to stop");

    let o = cli(d, &["maintenance", "start", "--for", "0s", "--reason", "x"]);
    assert_eq!(o.status.code(), Some(2));
    let o = cli(
        d,
        &["maintenance", "start", "--for", "1h", "--reason", "  "],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn check_on_the_local_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = cli(dir.path(), &["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("dry-run"));
    std::fs::write(dir.path().join("alarms.json"), "{ broken").expect("write");
    let o = cli(dir.path(), &["check"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("[FAIL] settings"), "{}", stderr(&o));
}

#[test]
fn alarms_put_refuses_a_code_aws_support_does_not_know() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = cli(
        dir.path(),
        &[
            "alarms",
            "put",
            "db-cpu",
            "--service-code",
            "amazon-dynamo-db",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did you mean amazon-dynamodb"),
        "{}",
        stderr(&o)
    );
    assert!(
        !cli(dir.path(), &["alarms", "get", "db-cpu"])
            .status
            .success()
    );
    let o = cli(
        dir.path(),
        &[
            "alarms",
            "put",
            "db-cpu",
            "--service-code",
            "amazon-dynamodb",
            "--category-code",
            "throttle",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean throttling"),
        "{}",
        stderr(&o)
    );
    let o = cli(
        dir.path(),
        &[
            "alarms",
            "put",
            "db-cpu",
            "--service-code",
            "amazon-dynamodb",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn check_reports_every_stored_setting_with_an_unknown_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Edited by hand, so never checked by `alarms put`.
    std::fs::write(
        dir.path().join("alarms.json"),
        r#"{"db-cpu": {"priority": "high", "service_code": "amazon-rds-typo"},
            "web": {"service_code": "amazon-elastic-compute-cloud-linux"}}"#,
    )
    .expect("write");
    let o = cli(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("[FAIL] alarm \"db-cpu\"") && out.contains("amazon-rds-typo"),
        "{out}"
    );
    assert!(!out.contains("alarm \"web\""), "{out}");
}

/// A hand-edited value no case can use: `check` names it, and `alarms get` shows the
/// problem beside the value instead of passing it off as a stored setting like any other.
#[test]
fn check_and_alarms_get_name_a_stored_value_no_case_can_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("alarms.json"),
        r#"{"db-cpu": {"priority": "bogus", "group": "a\u0007b"}, "web": {"priority": "high"}}"#,
    )
    .expect("write");
    let o = cli(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("[FAIL] alarm \"db-cpu\": unknown priority") && out.contains("group:"),
        "{out}"
    );
    assert!(!out.contains("alarm \"web\""), "{out}");
    let v: Value = serde_json::from_str(&stdout(&cli(dir.path(), &["alarms", "get", "db-cpu"])))
        .expect("json");
    assert!(
        v["problems"]
            .as_str()
            .is_some_and(|p| p.contains("unknown priority")),
        "{v}"
    );
    let v: Value =
        serde_json::from_str(&stdout(&cli(dir.path(), &["alarms", "get", "web"]))).expect("json");
    assert!(v.get("problems").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_the_desk_refuses_with_the_defaults_too_is_failed_and_answered_5xx() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", d),
        ("DEFAULT_SERVICE_CODE", "not-a-support-service"),
    ]);
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .header("x-aws-sqsd-msgid", "m-1")
        .body(std::fs::read(payload_path("metric-alarm.json")).expect("fixture"))
        .send()
        .await
        .expect("post");
    // Not 200: the worker daemon keeps it and, after its retries, moves it to the
    // dead-letter queue, where it is seen.
    assert_eq!(resp.status().as_u16(), 502);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"], "support_rejected");
    assert!(server.terminate().success());
    let o = cli(dir.path(), &["cases", "list", "--json"]);
    let listed: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(listed[0]["outcome"], "failed", "{listed}");
    assert!(
        listed[0]["note"]
            .as_str()
            .unwrap_or("")
            .contains("not-a-support-service"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_stored_code_still_gets_a_case_with_the_defaults_and_a_note() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("alarms.json"),
        r#"{"prod-api-5xx-rate": {"priority": "high", "service_code": "amazon-api-gatway"}}"#,
    )
    .expect("write");
    let mut server = ServerProcess::start(&[("DATA_DIR", dir.path().to_str().expect("utf-8"))]);
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .body(std::fs::read(payload_path("metric-alarm.json")).expect("fixture"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(server.terminate().success());
    let o = cli(dir.path(), &["cases", "show", "dry-run-1", "--json"]);
    let case: Value = serde_json::from_str(&stdout(&o)).expect("json");
    let text = case.to_string();
    assert!(
        text.contains("amazon-elastic-compute-cloud-linux"),
        "{text}"
    );
    assert!(
        text.contains("amazon-api-gatway"),
        "the case says why: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_desk_keeps_the_graph_it_would_attach_and_cases_show_points_to_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(&[("DATA_DIR", dir.path().to_str().expect("utf-8"))]);
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .body(std::fs::read(payload_path("metric-alarm.json")).expect("fixture"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    assert!(server.terminate().success());
    let o = cli(dir.path(), &["cases", "show", "dry-run-1"]);
    let text = stdout(&o);
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("Graph (would be attached): "))
        .unwrap_or_else(|| panic!("no graph in: {text}"));
    assert!(
        text.contains("Graph attached: prod-api-5xx-rate-HTTPCode_Target_5XX_Count.png"),
        "{text}"
    );
    // A valid image a decoder reads, of the size drawn.
    let bytes = std::fs::read(path).expect("the graph file");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().expect("a PNG");
    assert_eq!((reader.info().width, reader.info().height), (800, 300));
}

#[test]
fn alarms_put_takes_the_alarms_an_alarm_is_inhibited_by() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = cli(
        dir.path(),
        &[
            "alarms",
            "put",
            "prod-db-replica-lag",
            "--inhibited-by",
            "prod-db-primary*",
            "--inhibited-by",
            "prod-network",
            "--group",
            "database",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(dir.path(), &["alarms", "get", "prod-db-replica-lag"]);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["inhibited_by"], "prod-db-primary*,prod-network");
    assert_eq!(v["group"], "database");
    let bad = cli(
        dir.path(),
        &["alarms", "put", "x", "--inhibited-by", "bad\u{7}name"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("inhibited_by"), "{}", stderr(&bad));
}

#[test]
fn weekly_and_scheduled_maintenance_windows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = cli(
        dir.path(),
        &[
            "maintenance",
            "start",
            "--for",
            "2h",
            "--reason",
            "backups",
            "--alarm",
            "prod-db-*",
            "--every",
            "sat,sun 02:00",
            "--tz",
            "Europe/Berlin",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("next from"), "{}", stdout(&o));
    let o = cli(
        dir.path(),
        &[
            "maintenance",
            "start",
            "--for",
            "1h",
            "--reason",
            "upgrade",
            "--at",
            "2099-01-01T03:00",
            "--tz",
            "UTC",
        ],
    );
    assert!(stdout(&o).starts_with("planned"), "{}", stdout(&o));
    let list = stdout(&cli(dir.path(), &["maintenance", "list"]));
    assert!(list.contains("sat,sun 02:00 Europe/Berlin"), "{list}");
    assert!(list.contains("2099-01-01T03:00:00Z"), "{list}");
    assert!(list.contains("planned"), "{list}");
    for (args, want) in [
        (vec!["--every", "someday 02:00"], "is not a day"),
        (
            vec!["--every", "sat 02:00", "--tz", "Mars/Olympus"],
            "time zone",
        ),
        (vec!["--at", "tomorrow"], "--at"),
        (
            vec!["--every", "weekdays 22:30 extra"],
            "expected `<days> HH:MM`",
        ),
        // A window that would be over before it is saved.
        (vec!["--at", "2020-01-01T00:00Z"], "would have ended"),
    ] {
        let mut all = vec!["maintenance", "start", "--for", "1h", "--reason", "x"];
        all.extend(args);
        let o = cli(dir.path(), &all);
        assert_eq!(o.status.code(), Some(2), "{all:?}");
        assert!(stderr(&o).contains(want), "{all:?}: {}", stderr(&o));
    }
}

/// Durations are bounded before anything is saved, and a stored window that cannot be used
/// (written by hand, or by another version) is left out with a warning: never a panic.
#[test]
fn huge_durations_are_refused_and_bad_stored_windows_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    for huge in ["100000000d", "1000000d"] {
        let o = cli(
            dir.path(),
            &["maintenance", "start", "--for", huge, "--reason", "x"],
        );
        assert_eq!(o.status.code(), Some(2), "{huge}: {}", stderr(&o));
        assert!(stderr(&o).contains("--for"), "{}", stderr(&o));
        // The range of --for itself, not some wider limit of durations in general.
        assert!(stderr(&o).contains("1m to 366d"), "{}", stderr(&o));
        assert!(!dir.path().join("maintenance.json").exists());
    }
    std::fs::write(
        dir.path().join("maintenance.json"),
        r#"[
          {"id": "backwards", "reason": "x", "startsAt": "2026-12-06T10:00:00Z", "endsAt": "2026-12-06T09:00:00Z"},
          {"id": "endless-occurrence", "reason": "x", "startsAt": "2026-01-01T00:00:00Z",
           "endsAt": "9999-12-31T23:59:59Z",
           "every": {"days": ["sun"], "at": "02:00", "tz": "UTC", "minutes": 1440000000000}},
          {"id": "good", "reason": "upgrade", "startsAt": "2026-01-01T00:00:00Z", "endsAt": "9999-12-31T23:59:59Z"}
        ]"#,
    )
    .expect("write");
    let o = cli(dir.path(), &["maintenance", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = stdout(&o);
    assert!(
        list.contains("good") && !list.contains("backwards"),
        "{list}"
    );
    assert!(!list.contains("endless-occurrence"), "{list}");
    assert!(stderr(&o).contains("left out"), "{}", stderr(&o));
    let file = payload_path("metric-alarm.json");
    let o = cli(dir.path(), &["process", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["outcome"], "suppressed", "{v}");
}

/// "Every day's deploy hour", entered during the deploy: the occurrence under way holds
/// alarms now, not from tomorrow; `--at` takes RFC 3339 and a space as well.
#[test]
fn a_recurring_window_entered_during_its_occurrence_is_active_now() {
    let dir = tempfile::tempdir().expect("tempdir");
    let began = chrono::Utc::now() - chrono::Duration::minutes(5);
    let every = format!("daily {}", began.format("%H:%M"));
    let o = cli(
        dir.path(),
        &[
            "maintenance",
            "start",
            "--for",
            "1h",
            "--reason",
            "deploy",
            "--every",
            &every,
            "--tz",
            "UTC",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("started"), "{}", stdout(&o));
    let list = stdout(&cli(dir.path(), &["maintenance", "list"]));
    assert!(list.contains("active"), "{list}");

    let later = chrono::Utc::now() + chrono::Duration::days(30);
    for at in [
        later.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        later.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        later.format("%Y-%m-%d %H:%M").to_string(),
    ] {
        let o = cli(
            dir.path(),
            &[
                "maintenance",
                "start",
                "--for",
                "1h",
                "--reason",
                "later",
                "--at",
                &at,
            ],
        );
        assert!(o.status.success(), "--at {at}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with("planned"),
            "--at {at}: {}",
            stdout(&o)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_desk_records_the_account_it_would_have_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = std::process::Command::new(BIN)
        .args(["serve", "--port", "0"])
        .env("DATA_DIR", dir.path())
        .env("ACCOUNT_ROLES", "123456789012=not-a-role")
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ACCOUNT_ROLES"));
    let role = "arn:aws:iam::123456789012:role/cw-support";
    let mut server = ServerProcess::start(&[
        ("DATA_DIR", dir.path().to_str().expect("utf-8")),
        ("ACCOUNT_ROLES", &format!("123456789012={role}")),
    ]);
    let resp = reqwest::Client::new()
        .post(server.url("/serviceme"))
        .body(std::fs::read(payload_path("metric-alarm.json")).expect("fixture"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    assert!(server.terminate().success());
    let o = cli(dir.path(), &["cases", "show", "dry-run-1", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["case"]["case"]["account"], "123456789012", "{v}");
    assert_eq!(v["case"]["case"]["accountRole"], role);
    // The record people read says it too: which account, and the role assumed there.
    let text = stdout(&cli(dir.path(), &["cases", "show", "dry-run-1"]));
    assert!(
        text.contains(&format!("Opened in: account 123456789012, as {role}")),
        "{text}"
    );
}

#[test]
fn alarms_get_says_where_each_field_comes_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(
        cli(
            dir.path(),
            &["alarms", "put", "db-cpu", "--priority", "high"]
        )
        .status
        .success()
    );
    let o = cli(dir.path(), &["alarms", "get", "db-cpu"]);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["priority"], "high");
    assert_eq!(v["sources"]["priority"], "stored");
    assert_eq!(v["sources"]["ccemail"], "default");
}

/// Payloads real senders publish (`tests/data/real/`, each with its source): `process`
/// gives each the outcome the manifest expects, as the server does (`tests/it/http.rs`).
#[test]
fn real_payloads_get_their_expected_outcome_from_process() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real");
    let manifest: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(root.join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert!(manifest.len() >= 40, "at least 40 payloads");
    for entry in &manifest {
        let file = entry["file"].as_str().expect("file");
        let want = entry["expect"].as_str().expect("expect");
        let dir = tempfile::tempdir().expect("tempdir");
        let o = cli(
            dir.path(),
            &["process", root.join(file).to_str().expect("utf-8")],
        );
        let got = match o.status.success() {
            true => {
                let v: Value = serde_json::from_str(&stdout(&o)).expect("json");
                match v["alarms"].as_array() {
                    // A group of alerts: every one has the expected outcome.
                    Some(all) => {
                        let each: Vec<&str> = all
                            .iter()
                            .map(|a| a["outcome"].as_str().unwrap_or("?"))
                            .collect();
                        assert!(each.iter().all(|o| *o == each[0]), "{file}: {each:?}");
                        each[0].to_owned()
                    }
                    None => v["outcome"].as_str().unwrap_or("?").to_owned(),
                }
            }
            false => {
                let err = stderr(&o);
                let code = err
                    .split("error: ")
                    .nth(1)
                    .and_then(|e| e.split(':').next())
                    .unwrap_or("?");
                format!("error:{code}")
            }
        };
        assert_eq!(got, want, "{file} ({}): {}", entry["why"], stderr(&o));
    }
}

/// `SUPPORT_REPLY_TARGETS` is read before anything runs: a bad one stops the command with
/// what is wrong (exit 2); a good one is what `report` holds replies to.
#[test]
fn reply_targets_are_checked_and_then_used_by_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (bad, want) in [
        ("high=4x", "minutes, hours or days"),
        ("severe=1h", "severe"),
        ("high", "severity=time"),
    ] {
        let o = cli(dir.path(), &["report", "--support-reply-targets", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{bad}: {}", stderr(&o));
    }
    let o = cli(
        dir.path(),
        &["report", "--json", "--support-reply-targets", "high=2h"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(r["aws_replies"][2]["target_seconds"], 7200);
    assert_eq!(
        r["aws_replies"][0]["target_seconds"],
        serde_json::Value::Null
    );
}
