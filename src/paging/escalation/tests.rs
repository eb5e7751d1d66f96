use super::*;
use crate::oncall::file::import;

const EXAMPLE: &str = include_str!("../../../tests/data/oncall/example.toml");

fn example() -> OnCall {
    import(EXAMPLE).expect("valid")
}

/// Walks a policy from the start until it is exhausted: each step's instant (from the
/// page's opening) and what it did.
fn walk(policy: &Policy) -> Vec<(u64, String)> {
    let mut at = Position::START;
    let mut t = first_wait(policy);
    let mut out = Vec::new();
    for _ in 0..100 {
        match step(policy, at) {
            Step::Notify {
                targets,
                next,
                wait,
            } => {
                let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
                out.push((t.as_secs(), format!("r{} {}", at.round, names.join(","))));
                (at, t) = (next, t + wait);
            }
            Step::NextRound { next, wait } => {
                out.push((t.as_secs(), format!("round {}", next.round)));
                (at, t) = (next, t + wait);
            }
            Step::Exhausted => {
                out.push((t.as_secs(), "unanswered".into()));
                return out;
            }
        }
    }
    panic!("never exhausted: {out:?}")
}

#[test]
fn the_example_policy_runs_three_rounds_then_is_unanswered() {
    let policy = &example().policies[0];
    let s = |t: u64, w: &str| (t, w.to_owned());
    // Stage 1 at once, stage 2 ten minutes on, five minutes to answer it (the default),
    // then the whole again, twice (repeat = 2).
    assert_eq!(
        walk(policy),
        vec![
            s(0, "r0 schedule:primary"),
            s(600, "r0 person:carol"),
            s(900, "round 1"),
            s(900, "r1 schedule:primary"),
            s(1500, "r1 person:carol"),
            s(1800, "round 2"),
            s(1800, "r2 schedule:primary"),
            s(2400, "r2 person:carol"),
            s(2700, "unanswered"),
        ]
    );
}

#[test]
fn a_first_stage_with_a_delay_waits_in_every_round() {
    let mut policy = example().policies[0].clone();
    policy.stages[0].after = Duration::from_secs(30);
    policy.repeat = 1;
    policy.answer_within = Duration::from_secs(60);
    let times: Vec<u64> = walk(&policy).into_iter().map(|(t, _)| t).collect();
    assert_eq!(times, vec![30, 630, 690, 720, 1320, 1380]);
}

#[test]
fn a_schedule_target_names_whoever_is_on_duty_then() {
    let on_call = example();
    let at = |s: &str| s.parse::<DateTime<Utc>>().expect("t");
    let targets = vec![Target::Schedule("primary".into())];
    // The first week of March 2027 is alice's (hand-over Mondays 09:00 Berlin), but the
    // business-hours layer (carol) wins on weekdays 09:00-18:00.
    let (r, problems) = recipients(&on_call, &targets, at("2027-03-02T20:00:00Z"));
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].person.id.as_str(), "alice");
    assert_eq!(r[0].schedule.as_deref(), Some("primary"));
    let (r, _) = recipients(&on_call, &targets, at("2027-03-02T10:00:00Z"));
    assert_eq!(r[0].person.id.as_str(), "carol");
    let (r, _) = recipients(&on_call, &targets, at("2027-03-09T20:00:00Z"));
    assert_eq!(r[0].person.id.as_str(), "bob");
}

#[test]
fn each_person_is_reached_once_and_what_names_nobody_is_said() {
    let on_call = example();
    let at: DateTime<Utc> = "2027-03-02T10:00:00Z".parse().expect("t");
    let carol = crate::oncall::model::PersonId::parse("carol").expect("id");
    let targets = vec![
        Target::Schedule("primary".into()),
        Target::Person(carol),
        Target::Schedule("secondary".into()),
    ];
    let (r, problems) = recipients(&on_call, &targets, at);
    assert_eq!(r.len(), 1, "carol once: {r:?}");
    assert_eq!(
        r[0].schedule.as_deref(),
        Some("primary"),
        "the first target says how"
    );
    assert_eq!(problems, vec!["no schedule secondary in the on-duty file"]);
    // Before the rotation starts nobody is on duty.
    let early: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("t");
    let (r, problems) = recipients(&on_call, &targets[..1], early);
    assert!(r.is_empty());
    assert_eq!(problems, vec!["nobody is on duty in schedule primary"]);
}

#[test]
fn every_contact_method_is_a_channel_and_keys_are_distinct() {
    let on_call = example();
    let alice = &on_call.people[0];
    assert_eq!(
        contacts(alice),
        vec![
            (Channel::Sms, "+15555550100".to_owned()),
            (Channel::Email, "alice@example.com".to_owned())
        ]
    );
    let k = |round, stage, ch| message_key(PageId(7), Position { round, stage }, "alice", ch);
    assert_eq!(k(0, 1, Channel::Sms), "7/0/1/alice/sms");
    let all = [
        k(0, 0, Channel::Sms),
        k(0, 0, Channel::Email),
        k(0, 1, Channel::Sms),
        k(1, 0, Channel::Sms),
    ];
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
}

#[test]
fn a_wait_delays_only_the_first_round() {
    let mut policy = example().policies[0].clone();
    policy.wait = Duration::from_secs(120);
    policy.repeat = 1;
    let times: Vec<u64> = walk(&policy).into_iter().map(|(t, _)| t).collect();
    // Stage 1 after the wait; the next round's first stage at once, as without one.
    assert_eq!(times, vec![120, 720, 1020, 1020, 1620, 1920]);
}
