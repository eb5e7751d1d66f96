use super::*;

/// The example, with the people it names (also what the README shows).
const EXAMPLE: &str = include_str!("../../../tests/data/oncall/example.toml");

#[test]
fn the_example_is_read_whole() {
    let on_call = import(EXAMPLE).expect("valid");
    assert_eq!(on_call.people.len(), 3);
    let primary = &on_call.schedules[0];
    assert_eq!(primary.rotations.len(), 2);
    assert_eq!(primary.rotations[0].shift, ShiftLength::Days(7));
    assert_eq!(primary.overrides.len(), 1);
    let policy = &on_call.policies[0];
    assert_eq!(policy.repeat, 2);
    assert_eq!(policy.stages[1].after, std::time::Duration::from_secs(600));
    assert_eq!(
        policy.stages[0].notify,
        [Target::Schedule("primary".into())]
    );
}

#[test]
fn export_then_import_is_the_identity() {
    let on_call = import(EXAMPLE).expect("valid");
    let text = export(&on_call).expect("written");
    let again = import(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(again, on_call);
    // One canonical form: written again, the same text.
    assert_eq!(export(&again).expect("written"), text);
    assert!(text.contains("[[schedule.rotation]]"), "{text}");
    assert!(
        text.contains("active = \"mon,tue,wed,thu,fri 09:00-18:00\""),
        "{text}"
    );
}

/// Refuses each edit of the example with its message; nothing is returned.
fn refused(cases: &[(&str, &str, &str)]) {
    for (from, to, want) in cases {
        assert!(EXAMPLE.contains(from), "{from}");
        let text = EXAMPLE.replacen(from, to, 1);
        let e = import(&text).expect_err(want);
        let said = e.to_string();
        assert!(said.contains(want), "want {want:?}\ngot {said}");
        assert!(said.contains("nothing saved"), "{said}");
    }
}

/// Each kind of mistake about a person, on the line and field of the value.
#[test]
fn every_invalid_person_is_refused_with_the_line_and_field() {
    refused(&[
        (
            "sms = \"+15555550100\"",
            "sms = \"555-0100\"",
            "line 6: person[0].sms: \"555-0100\" is not a phone number in E.164 form",
        ),
        (
            "email = \"alice@example.com\"",
            "email = \"alice\"",
            "line 7: person[0].email: \"alice\" is not an email address",
        ),
        (
            "time_zone = \"America/New_York\"",
            "time_zone = \"Mars/Olympus\"",
            "line 12: person[1].time_zone: \"Mars/Olympus\" is not a time zone",
        ),
        (
            "id = \"bob\"",
            "id = \"alice\"",
            "line 10: person[1].id: alice is listed twice",
        ),
        (
            "webhook = \"https://hooks.example.com/carol\"",
            "webhook = \"http://hooks.example.com/carol\"",
            "line 19: person[2].webhook: \"http://hooks.example.com/carol\" is not an https URL",
        ),
        (
            "voice = \"+15555550101\"",
            "",
            "line 10: person[1].id: no way to reach them",
        ),
    ]);
}

/// Each kind of mistake in a schedule or a policy, on the line and field of the value.
#[test]
fn every_invalid_schedule_or_policy_is_refused_with_the_line_and_field() {
    refused(&[
        (
            "people = [\"alice\", \"bob\"]",
            "people = [\"alice\", \"dave\"]",
            "line 25: schedule[0].rotation[0].people[1]: dave is not a [[person]] of this file",
        ),
        (
            "people = [\"alice\", \"bob\"]",
            "people = []",
            "line 25: schedule[0].rotation[0].people: a rotation needs at least one person",
        ),
        (
            "shift = \"1w\"",
            "shift = \"1y\"",
            "line 27: schedule[0].rotation[0].shift: \"1y\" is not a shift length",
        ),
        (
            "start = \"2027-03-01T09:00\"",
            "start = \"next monday\"",
            "line 26: schedule[0].rotation[0].start: \"next monday\" is not a local date and time",
        ),
        (
            "active = \"mon-fri 09:00-18:00\"",
            "active = \"office hours\"",
            "line 32: schedule[0].rotation[1].active: \"office hours\" is not an active window",
        ),
        (
            "until = \"2027-03-29T09:00\"",
            "until = \"2027-03-26T09:00\"",
            "line 36: schedule[0].override[0].until: the override ends (2027-03-26 09:00:00) before it starts (2027-03-27 18:00:00)",
        ),
        (
            "notify = [\"person:carol\"]",
            "notify = [\"person:zoe\"]",
            "line 46: policy[0].stage[1].notify[0]: \"zoe\" is not a [[person]] of this file",
        ),
        (
            "notify = [\"schedule:primary\"]",
            "notify = [\"team:ops\"]",
            "line 43: policy[0].stage[0].notify[0]: expected schedule:ID or person:ID",
        ),
        (
            "notify = [\"schedule:primary\"]",
            "notify = []",
            "line 43: policy[0].stage[0].notify: notifies nobody",
        ),
        (
            "after = \"10m\"",
            "after = \"soon\"",
            "line 45: policy[0].stage[1].after: not a delay",
        ),
        (
            "repeat = 2",
            "repeat = 9",
            "line 40: policy[0].repeat: 9 is not 0 to 5",
        ),
    ]);
}

#[test]
fn a_file_of_the_wrong_shape_says_where() {
    for (text, want) in [
        (
            "[[person]]\nid = \"alice\"\nnmae = \"x\"\n",
            "line 3: unknown field `nmae`",
        ),
        (
            "[[schedule]]\nid = 7\n",
            "line 2: invalid type: integer `7`, expected a string",
        ),
        ("[[person]\n", "line 1:"),
    ] {
        let e = import(text).expect_err(text);
        assert!(matches!(e, FileError::Shape(_)), "{e}");
        assert!(e.to_string().contains(want), "{text}: {e}");
    }
    // Several problems are all reported at once.
    let text = EXAMPLE
        .replacen("sms = \"+15555550100\"", "sms = \"x\"", 1)
        .replacen("shift = \"1w\"", "shift = \"x\"", 1);
    match import(&text) {
        Err(FileError::Invalid(problems)) => assert_eq!(problems.len(), 2, "{problems:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_empty_file_is_an_empty_on_duty_setup() {
    assert_eq!(import(""), Ok(OnCall::default()));
    assert_eq!(
        import(&export(&OnCall::default()).expect("written")),
        Ok(OnCall::default())
    );
}

#[test]
fn a_file_too_large_is_refused_unread() {
    let huge = format!("# {}\n", "x".repeat(MAX_FILE_BYTES));
    let e = import(&huge).expect_err("too large");
    assert!(matches!(e, FileError::Shape(_)), "{e}");
    assert!(e.to_string().contains("at most 262144"), "{e}");
}

/// A person's working hours and a policy's answer time: read, written back only when
/// given (or not the default), and refused with the line and field when wrong.
#[test]
fn working_hours_and_answer_within_round_trip_and_are_checked() {
    let text = EXAMPLE
        .replacen(
            "webhook = \"https://hooks.example.com/carol\"",
            "webhook = \"https://hooks.example.com/carol\"\nworking_hours = \"mon-thu 08:00-16:00\"",
            1,
        )
        .replacen("repeat = 2", "repeat = 2\nanswer_within = \"2m\"", 1);
    let on_call = import(&text).expect("valid");
    let carol = &on_call.people[2];
    assert_eq!(
        carol
            .working_hours
            .as_ref()
            .map(ActiveWindow::text)
            .as_deref(),
        Some("mon,tue,wed,thu 08:00-16:00")
    );
    assert_eq!(on_call.people[0].working_hours, None);
    assert_eq!(
        on_call.policies[0].answer_within,
        std::time::Duration::from_secs(120)
    );
    let written = export(&on_call).expect("written");
    assert!(
        written.contains("working_hours = \"mon,tue,wed,thu 08:00-16:00\""),
        "{written}"
    );
    assert!(written.contains("answer_within = \"2m\""), "{written}");
    assert_eq!(import(&written).expect("again"), on_call);
    // The default is not written.
    let plain = export(&import(EXAMPLE).expect("valid")).expect("written");
    assert!(!plain.contains("answer_within"), "{plain}");
    assert!(!plain.contains("working_hours"), "{plain}");

    let bad_hours = EXAMPLE.replacen(
        "email = \"alice@example.com\"",
        "email = \"alice@example.com\"\nworking_hours = \"weekdays\"",
        1,
    );
    let said = import(&bad_hours).expect_err("refused").to_string();
    assert!(said.contains("line 8: person[0].working_hours:"), "{said}");
    for bad in ["0m", "2 minutes", "2d"] {
        let text = EXAMPLE.replacen(
            "repeat = 2",
            &format!("repeat = 2\nanswer_within = \"{bad}\""),
            1,
        );
        let said = import(&text).expect_err(bad).to_string();
        assert!(said.contains("policy[0].answer_within: "), "{bad}: {said}");
        assert!(said.contains("not a delay above zero"), "{bad}: {said}");
    }
}

/// Off-hours is judged in the person's own zone, against their hours or the default.
#[test]
fn off_hours_is_judged_in_the_persons_zone() {
    let on_call = import(EXAMPLE).expect("valid");
    let alice = &on_call.people[0]; // Berlin, default hours (Mon-Fri 09:00-18:00)
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().expect("t");
    // Monday 2027-03-01: 08:30 UTC is 09:30 in Berlin (inside); 17:30 UTC is 18:30 (outside).
    assert!(!alice.off_hours(at("2027-03-01T08:30:00Z")));
    assert!(alice.off_hours(at("2027-03-01T17:30:00Z")));
    // Saturday, midday: off hours.
    assert!(alice.off_hours(at("2027-03-06T11:00:00Z")));
    let bob = &on_call.people[1]; // New York: 14:00 UTC Monday is 09:00 there.
    assert!(!bob.off_hours(at("2027-03-01T14:00:00Z")));
    assert!(bob.off_hours(at("2027-03-01T13:00:00Z")));
}

/// A policy's `wait` and `resolve_on_ok`: read, written back only when not the default,
/// and refused with the line and field when wrong.
#[test]
fn wait_and_resolve_on_ok_round_trip_and_are_checked() {
    let text = EXAMPLE.replacen(
        "repeat = 2",
        "repeat = 2\nwait = \"2m\"\nresolve_on_ok = false",
        1,
    );
    let on_call = import(&text).expect("valid");
    let policy = &on_call.policies[0];
    assert_eq!(policy.wait, std::time::Duration::from_secs(120));
    assert!(!policy.resolve_on_ok);
    let written = export(&on_call).expect("written");
    assert!(written.contains("wait = \"2m\""), "{written}");
    assert!(written.contains("resolve_on_ok = false"), "{written}");
    assert_eq!(import(&written).expect("again"), on_call);
    let plain = import(EXAMPLE).expect("valid");
    assert!(plain.policies[0].wait.is_zero() && plain.policies[0].resolve_on_ok);
    let written = export(&plain).expect("written");
    assert!(
        !written.contains("wait") && !written.contains("resolve_on_ok"),
        "{written}"
    );
    for (bad, want) in [
        (
            "wait = \"soon\"",
            "line 41: policy[0].wait: not a delay (0m, 30s, 5m, 1h",
        ),
        ("wait = \"2d\"", "line 41: policy[0].wait: not a delay"),
        (
            "resolve_on_ok = \"no\"",
            "line 41: invalid type: string \"no\", expected a boolean",
        ),
    ] {
        let text = EXAMPLE.replacen("repeat = 2", &format!("repeat = 2\n{bad}"), 1);
        let said = import(&text).expect_err(bad).to_string();
        assert!(said.contains(want), "{bad}: {said}");
    }
}
