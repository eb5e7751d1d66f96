use super::*;

#[test]
fn durations() {
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
    assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert!(parse_duration("m").is_err());
    assert!(parse_duration("5 weeks").is_err());
    assert!(parse_duration("-5s").is_err());
    // Nothing long enough to overflow a time: ten years at most, and no overflow on the way.
    assert_eq!(
        parse_duration("3650d"),
        Ok(Duration::from_secs(3650 * 86_400))
    );
    for huge in [
        "3651d",
        "100000000d",
        "100000000000d",
        "18446744073709551615ms",
        "99999999999999999999s",
    ] {
        assert!(parse_duration(huge).is_err(), "{huge}");
    }
}

#[test]
fn every_duration_option_has_a_range() {
    let parse = |args: &[&str]| Cli::try_parse_from([&["cw-support-api"], args].concat());
    for (flag, bad, good) in [
        ("--claim-ttl", "100000000000d", "15s"),
        ("--claim-ttl", "10ms", "1s"),
        ("--request-timeout", "2h", "60s"),
        ("--idempotency-ttl", "400d", "15d"),
        ("--retry-visibility", "13h", "12h"),
        ("--flap-window", "30s", "1m"),
        ("--flap-window", "99999999999999999999s", "1m"),
    ] {
        let e = parse(&[flag, bad])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        // However far out, the error names the option's own range.
        assert!(e.contains("is outside"), "{flag} {bad}: {e}");
        assert!(parse(&[flag, good]).is_ok(), "{flag} {good}");
    }
}

#[test]
fn defaults_and_no_subcommand() {
    let cli = Cli::try_parse_from(["cw-support-api"]).expect("parses");
    assert!(cli.command.is_none());
    assert_eq!(cli.config.server.port, 5000);
    assert_eq!(cli.config.cases.update_cooldown, Duration::from_secs(600));
    assert!(cli.config.cases.recovery_note);
    assert!(!cli.config.cases.close_on_recovery);
}

#[test]
fn global_flags_after_the_subcommand() {
    let cli = Cli::try_parse_from([
        "cw-support-api",
        "serve",
        "--port",
        "8080",
        "--recovery-note",
        "false",
    ])
    .expect("parses");
    assert_eq!(cli.config.server.port, 8080);
    assert!(!cli.config.cases.recovery_note);
}

/// The README's configuration table names every option's variable, with its default.
#[test]
fn the_readme_table_is_true() {
    use clap::CommandFactory;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    let cmd = Cli::command();
    for arg in cmd.get_arguments() {
        let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
            continue;
        };
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| `{env}` |")))
            .unwrap_or_else(|| panic!("README's table has no row for {env}"));
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .filter_map(|d| d.to_str())
            .map(str::to_owned)
            .collect();
        if let Some(d) = default.first().filter(|d| !d.is_empty()) {
            assert!(
                row.contains(&format!("`{d}`")),
                "README gives another default for {env}: {row}"
            );
        }
    }
}

#[test]
fn a_malformed_token_list_is_reported_without_its_value() {
    let cli = Cli::try_parse_from([
        "cw-support-api",
        "--api-tokens",
        "good-token-0123456789,short-secret",
    ])
    .expect("clap accepts it, the check comes after");
    let err = cli.config.api_tokens().expect_err("too short");
    assert!(
        !err.contains("short-secret") && !err.contains("good-token"),
        "{err}"
    );
    let debug = format!("{:?}", cli.config);
    assert!(
        !debug.contains("short-secret") && !debug.contains("good-token"),
        "{debug}"
    );
    let cli = Cli::try_parse_from(["cw-support-api", "--api-tokens", "good-token-0123456789"])
        .expect("parses");
    assert!(!cli.config.api_tokens().expect("fine").is_empty());
    assert!(!format!("{:?}", cli.config).contains("good-token-0123456789"));
}

#[test]
fn account_roles_are_read_and_bad_ones_named() {
    let parse = |v: &str| {
        Cli::try_parse_from(["cw-support-api", "--account-roles", v])
            .expect("parses")
            .config
            .account_roles()
    };
    let ok = parse("444455556666=arn:aws:iam::444455556666:role/cw-support, 777788889999=arn:aws-cn:iam::777788889999:role/x")
        .expect("fine");
    assert_eq!(ok.len(), 2);
    assert_eq!(
        ok["444455556666"],
        "arn:aws:iam::444455556666:role/cw-support"
    );
    for (bad, want) in [
        ("444455556666", "is not `<account id>=<role ARN>`"),
        (
            "4444=arn:aws:iam::444455556666:role/x",
            "12-digit account id",
        ),
        (
            "444455556666=arn:aws:iam::444455556666:user/x",
            "not an IAM role ARN",
        ),
        ("444455556666=arn:aws:s3:::bucket", "not an IAM role ARN"),
        (
            "444455556666=arn:aws:iam::111122223333:role/x",
            "is a role of account 111122223333, not of 444455556666",
        ),
    ] {
        let e = parse(bad).expect_err(bad);
        assert!(
            e.contains(want) && e.contains("ACCOUNT_ROLES"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

/// One place for each default: the case logic's own defaults (what the library, `process`
/// and the tests start from) are the configuration's, so the two can never disagree again
/// (they did: a 10 s busy wait beside a 60 s request timeout).
#[test]
fn the_case_logic_defaults_are_the_configurations() {
    let cli = Cli::try_parse_from(["cw-support-api"]).expect("parses");
    let configured = cli.config.policy();
    let library = CasePolicy::default();
    assert_eq!(format!("{configured:?}"), format!("{library:?}"));
}

/// Every option has one place in the help's order: a new option is put somewhere on purpose
/// instead of falling wherever its group happens to be flattened.
#[test]
fn every_option_has_one_place_in_the_help() {
    let cmd = Config::augment_args(clap::Command::new("cw-support-api"));
    let mut options: Vec<&str> = cmd.get_arguments().map(|a| a.get_id().as_str()).collect();
    let mut placed = config::HELP_ORDER.to_vec();
    options.sort_unstable();
    placed.sort_unstable();
    assert_eq!(options, placed);
}

/// Grouping the options by concern left `--help` as it was: they are listed in their old
/// order, not group by group.
#[test]
fn the_help_lists_the_options_in_their_old_order() {
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    let at = |id: &str| {
        let flag = format!("--{} <", id.replace('_', "-"));
        help.find(&flag)
            .unwrap_or_else(|| panic!("{flag} is not in the help"))
    };
    for pair in config::HELP_ORDER.windows(2) {
        assert!(at(pair[0]) < at(pair[1]), "{} after {}", pair[0], pair[1]);
    }
}

/// Links in pages' messages need a key every instance shares: on the aws backend a
/// `PUBLIC_URL` without `PAGE_LINK_KEY` is refused at start, as is a short key or a URL
/// that is not the service's address; with neither set there are no links.
#[test]
fn page_links_are_configured_whole_or_refused() {
    let config = |args: &[&str]| {
        let mut all = vec!["cw-support-api", "--backend", "aws"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parses").config
    };
    let refused = |args: &[&str], want: &str| {
        let e = crate::cli::startup::page_links(&config(args)).expect_err(want);
        assert!(
            matches!(e, crate::cli::startup::StartupError::Config(_)),
            "{e}"
        );
        assert!(e.to_string().contains(want), "want {want:?}\ngot {e}");
    };
    assert!(
        crate::cli::startup::page_links(&config(&[]))
            .expect("none")
            .is_none()
    );
    refused(
        &["--public-url", "https://pager.example.com"],
        "PUBLIC_URL is set but PAGE_LINK_KEY is not",
    );
    refused(
        &[
            "--public-url",
            "https://pager.example.com",
            "--page-link-key",
            "short",
        ],
        "PAGE_LINK_KEY must be at least 32 characters",
    );
    let key = "0123456789abcdef0123456789abcdef";
    refused(
        &[
            "--public-url",
            "http://pager.example.com",
            "--page-link-key",
            key,
        ],
        "is not the service's address",
    );
    let links = crate::cli::startup::page_links(&config(&[
        "--public-url",
        "https://pager.example.com",
        "--page-link-key",
        key,
    ]))
    .expect("configured")
    .expect("links");
    assert!(
        links
            .link(crate::domain::page::PageId(3), "alice", chrono::Utc::now())
            .starts_with("https://pager.example.com/pages/3/alice/")
    );
}

/// The console behind a load balancer is configured whole or refused at start.
#[test]
fn the_console_is_configured_whole_or_refused() {
    let config = |args: &[&str]| {
        let mut all = vec!["cw-support-api"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parses").config
    };
    let arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/pager/1";
    let dir = tempfile::tempdir().expect("tempdir");
    let backend: crate::backend::Backend = crate::backend::local::LocalBackend::open(dir.path())
        .expect("local backend")
        .into();
    assert!(
        crate::cli::startup::console(&config(&["--console", "local"]), &backend)
            .expect("local needs nothing more")
            .is_some_and(|c| c.is_local())
    );
    assert!(
        crate::cli::startup::console(&config(&[]), &backend)
            .expect("off")
            .is_none()
    );
    for (args, want) in [
        (
            vec!["--console", "alb"],
            "CONSOLE=alb needs CONSOLE_ALB_ARN",
        ),
        (
            vec!["--console", "alb", "--console-alb-arn", arn],
            "CONSOLE=alb needs CONSOLE_ROLES",
        ),
        (
            vec![
                "--console",
                "alb",
                "--console-alb-arn",
                "pager",
                "--console-roles",
                "admin:a@example.com",
            ],
            "is not an Application Load Balancer's ARN",
        ),
        (
            vec![
                "--console",
                "alb",
                "--console-alb-arn",
                arn,
                "--console-roles",
                "boss:a@example.com",
            ],
            "is not ROLE:ADDRESS, ROLE:@DOMAIN or ROLE:group:NAME",
        ),
    ] {
        let e = crate::cli::startup::console(&config(&args), &backend).expect_err(want);
        assert!(
            matches!(e, crate::cli::startup::StartupError::Config(_)),
            "{e}"
        );
        assert!(e.to_string().contains(want), "want {want:?}\ngot {e}");
    }
    let on = config(&[
        "--console",
        "alb",
        "--console-alb-arn",
        arn,
        "--console-roles",
        "admin:a@example.com",
    ]);
    assert!(
        crate::cli::startup::console(&on, &backend)
            .expect("configured")
            .is_some()
    );
}
