//! One alarm of each defect and one healthy, every finding asserted.

use super::*;

const OURS: &str = "arn:aws:sns:us-east-1:111122223333:alarms";
const ALLOWED: &str = "arn:aws:sns:us-east-1:111122223333:allowed-only";
const OTHER: &str = "arn:aws:sns:us-east-1:111122223333:team-mail";

fn alarm(name: &str, alarm_actions: &[&str], ok_actions: &[&str]) -> AlarmDefinition {
    AlarmDefinition {
        name: name.into(),
        composite: false,
        actions_enabled: true,
        alarm_actions: alarm_actions.iter().map(|s| (*s).to_owned()).collect(),
        ok_actions: ok_actions.iter().map(|s| (*s).to_owned()).collect(),
        rule: None,
    }
}

fn composite(name: &str, rule: &str) -> AlarmDefinition {
    AlarmDefinition {
        composite: true,
        rule: Some(rule.into()),
        ..alarm(name, &[OURS], &[OURS])
    }
}

fn alarms() -> Vec<AlarmDefinition> {
    vec![
        alarm("healthy", &[OURS], &[OURS]),
        alarm("no-ok", &[OURS], &[OTHER]),
        alarm("no-settings", &[OURS], &[OURS]),
        alarm("unsubscribed", &[OTHER], &[OTHER]),
        // To a topic SNS_TOPIC_ARNS allows but nothing subscribes: meant for us, not
        // delivered.
        alarm("allowed-unsubscribed", &[ALLOWED], &[ALLOWED]),
        composite(
            "service-down",
            "ALARM(\"child-pages\") AND ALARM(child-quiet)",
        ),
        alarm("child-pages", &[OURS], &[OURS]),
        alarm("child-quiet", &[OTHER], &[]),
        AlarmDefinition {
            actions_enabled: false,
            ..alarm("disabled", &[OURS], &[OURS])
        },
        // Neither routed nor meant for us: not this service's business.
        alarm("someone-else", &[OTHER], &[]),
    ]
}

fn settings() -> Vec<String> {
    [
        "healthy",
        "no-ok",
        "unsubscribed",
        "service-down",
        "child-pages",
        "disabled",
        "deleted-long-ago",
        "AWS_EC2_INSTANCE_STORE_DRIVE_PERFORMANCE_DEGRADED",
    ]
    .map(String::from)
    .to_vec()
}

fn topics() -> BTreeMap<String, Subscribed> {
    BTreeMap::from([
        (OURS.to_owned(), Subscribed::Yes),
        (ALLOWED.to_owned(), Subscribed::Pending),
        (OTHER.to_owned(), Subscribed::No),
    ])
}

fn endpoint() -> Endpoint {
    Endpoint {
        protocol: "https".into(),
        endpoint: "https://support.example.com/serviceme".into(),
    }
}

#[test]
fn each_defect_is_found_once_with_its_fix_and_the_healthy_alarm_is_ready() {
    let (alarms, settings, topics, endpoint) = (alarms(), settings(), topics(), endpoint());
    let r = check(&Facts {
        alarms: &alarms,
        topics: &topics,
        allowed_topics: &[ALLOWED.to_owned()],
        settings: &settings,
        endpoint: Some(&endpoint),
    });
    let found: Vec<(&str, Defect)> = r
        .findings
        .iter()
        .map(|f| (f.alarm.as_str(), f.defect))
        .collect();
    assert_eq!(
        found,
        [
            ("allowed-unsubscribed", Defect::NoSettings),
            ("allowed-unsubscribed", Defect::NoSubscription),
            ("deleted-long-ago", Defect::DeadSettings),
            ("disabled", Defect::NoSubscription),
            ("no-ok", Defect::NoOkAction),
            ("no-settings", Defect::NoSettings),
            ("service-down", Defect::ChildPages),
            ("unsubscribed", Defect::NoSubscription),
        ]
    );
    assert_eq!(r.alarms, 10);
    assert_eq!(r.ready, ["child-pages", "healthy"]);
    let fix = |alarm: &str, defect| {
        r.findings
            .iter()
            .find(|f| f.alarm == alarm && f.defect == defect)
            .map(|f| (f.detail.clone(), f.fix.clone()))
            .expect(alarm)
    };
    let (_, f) = fix("no-ok", Defect::NoOkAction);
    assert!(
        f.contains(&format!("put-metric-alarm ... --ok-actions {OURS}")),
        "{f}"
    );
    let (_, f) = fix("no-settings", Defect::NoSettings);
    assert!(
        f.starts_with("cw-support-api alarms put \"no-settings\""),
        "{f}"
    );
    let (_, f) = fix("deleted-long-ago", Defect::DeadSettings);
    assert!(
        f.starts_with("cw-support-api alarms delete \"deleted-long-ago\""),
        "{f}"
    );
    let (d, f) = fix("unsubscribed", Defect::NoSubscription);
    assert!(d.contains("no subscription to this service"), "{d}");
    assert_eq!(
        f,
        format!(
            "aws sns subscribe --topic-arn {OTHER} --protocol https --notification-endpoint https://support.example.com/serviceme"
        )
    );
    let (d, _) = fix("service-down", Defect::ChildPages);
    assert!(d.contains("\"child-pages\""), "{d}");
    let (d, _) = fix("allowed-unsubscribed", Defect::NoSubscription);
    assert!(d.contains("pending confirmation"), "{d}");
    let (d, f) = fix("disabled", Defect::NoSubscription);
    assert!(
        d.contains("disabled") && f.contains("enable-alarm-actions"),
        "{d} {f}"
    );
}

#[test]
fn a_rule_names_its_children_however_written() {
    assert_eq!(
        children(
            "(ALARM(\"a b\") OR OK(c)) AND NOT INSUFFICIENT_DATA(arn:aws:cloudwatch:us-east-1:111122223333:alarm:d) AND ALARM(c) AND TRUE"
        ),
        ["a b", "c", "d"]
    );
    // `OK(` inside a name is not a function.
    assert_eq!(children("ALARM(\"FALLBACK(x)\")"), ["FALLBACK(x)"]);
    assert!(children("TRUE").is_empty());
    assert!(children("ALARM(\"unclosed").is_empty());
}

#[test]
fn without_its_endpoint_the_fix_says_what_to_subscribe() {
    let alarms = vec![alarm("unsubscribed", &[OTHER], &[OTHER])];
    let r = check(&Facts {
        alarms: &alarms,
        topics: &topics(),
        allowed_topics: &[],
        settings: &["unsubscribed".to_owned()],
        endpoint: None,
    });
    assert_eq!(r.findings.len(), 1);
    assert!(
        r.findings[0]
            .fix
            .contains(&format!("subscribe this service to {OTHER}"))
    );
    assert!(r.routed.is_empty() && r.ready.is_empty());
}
