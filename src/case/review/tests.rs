//! A case with a page, an acknowledgement, AWS's reply, its recovery and resolution: the
//! draft's every figure and line asserted.

use super::*;
use crate::domain::delivery::{Delivery, DeliveryKind};
use crate::domain::page::{Channel, PageId, PageState, Position};
use crate::domain::settings::Severity;
use crate::ports::pages::{MessageRecord, PageSummary, TimelineEntry};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

fn decision(outcome: Outcome, at: &str) -> Decision {
    Decision::new(
        &Delivery::new(DeliveryKind::Direct),
        "db-cpu",
        "db-cpu",
        outcome,
        t(at),
    )
    .on_case(Some("case-1".into()))
}

fn message(person: &str, channel: Channel, stage: Option<u32>) -> MessageRecord {
    MessageRecord {
        key: "db-cpu".into(),
        person: person.into(),
        channel,
        to: "+15555550100".into(),
        text: "db-cpu is in ALARM".into(),
        at: t("2026-12-02T03:00:06Z"),
        stage,
        round: stage.map(|_| 0),
        state: "sent".into(),
        sent_at: None,
        error: None,
    }
}

fn facts(closed: bool) -> ReviewFacts {
    let mut opened =
        decision(Outcome::Created, "2026-12-02T03:00:05Z").with_severity(Some(Severity::High));
    opened.state_change_time = "2026-12-02T03:00:00.000+0000".into();
    let mut replied = decision(Outcome::Replied, "2026-12-02T03:41:00Z");
    replied.state_change_time = "2026-12-02T03:40:00Z".into();
    let mut decisions = vec![
        opened,
        replied,
        decision(Outcome::Recovered, "2026-12-02T03:50:00Z"),
        decision(Outcome::Duplicate, "2026-12-02T03:50:01Z"),
    ];
    if closed {
        decisions.push(decision(Outcome::Closed, "2026-12-02T04:10:00Z"));
    }
    let page = PageSummary {
        id: PageId(7),
        alarm: "db-cpu".into(),
        key: "db-cpu".into(),
        state: PageState::Acknowledged,
        policy: "default".into(),
        summary: "db-cpu is in ALARM".into(),
        opened_at: t("2026-12-02T03:00:06Z"),
        owner: Some("alice".into()),
        position: Position::START,
        next_at: None,
        acknowledged_at: Some(t("2026-12-02T03:02:06Z")),
        resolved_at: None,
    };
    let line = |at: &str, text: &str| TimelineEntry {
        at: t(at),
        text: text.into(),
    };
    ReviewFacts {
        case_id: "case-1".into(),
        decisions,
        pages: vec![PageRecord {
            page,
            messages: vec![
                message("alice", Channel::Sms, Some(1)),
                message("bob", Channel::Email, Some(2)),
                message("bob", Channel::Email, None),
                message("the case", Channel::Case, Some(1)),
            ],
            timeline: vec![
                line(
                    "2026-12-02T03:00:06Z",
                    "opened for db-cpu (policy default): db-cpu is in ALARM",
                ),
                line("2026-12-02T03:02:06Z", "acknowledged by alice (via sms)"),
            ],
        }],
        communications: vec![
            CaseMessage {
                at: t("2026-12-02T03:00:05Z"),
                by: "cw-support-api".into(),
                body: "the case's own text".into(),
            },
            CaseMessage {
                at: t("2026-12-02T03:40:00Z"),
                by: "Amazon Web Services".into(),
                body: "We see the <b>CPU</b> | high.\nLooking.".into(),
            },
        ],
        graph: Some(vec![1, 2, 3]),
        gaps: Vec::new(),
        made_at: t("2026-12-03T09:00:00Z"),
    }
}

#[test]
fn a_case_with_a_page_a_reply_and_recovery_has_its_whole_timeline() {
    let md = markdown_draft(&facts(true), Some("graph.png"));
    assert!(
        md.starts_with("# Post-incident review: case case-1\n"),
        "{md}"
    );
    for line in [
        "- Case opened: 5 s\n",
        "- First acknowledged: 2 min 06 s\n",
        "- AWS Support's first reply: 40 min 00 s\n",
        "- Recovered (alarm back to OK): 50 min 00 s\n",
        "- Resolved: 1 h 10 min\n",
    ] {
        assert!(md.contains(line), "{line:?} in\n{md}");
    }
    let timeline: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("| When (UTC)"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(
        timeline,
        [
            "| 2026-12-02 03:00:00 | 0 s | the alarm fired |",
            "| 2026-12-02 03:00:05 | 5 s | case opened for db-cpu, severity high |",
            "| 2026-12-02 03:00:06 | 6 s | page 7: opened for db-cpu \\(policy default\\): db-cpu is in ALARM |",
            "| 2026-12-02 03:02:06 | 2 min 06 s | page 7: acknowledged by alice \\(via sms\\) |",
            "| 2026-12-02 03:40:00 | 40 min 00 s | AWS Support replied |",
            "| 2026-12-02 03:40:00 | 40 min 00 s | Amazon Web Services wrote: We see the &lt;b&gt;CPU&lt;/b&gt; \\| high. Looking. |",
            "| 2026-12-02 03:50:00 | 50 min 00 s | db-cpu back to OK: recovered |",
            "| 2026-12-02 04:10:00 | 1 h 10 min | case resolved |",
        ]
    );
    assert!(
        md.contains(
            "## People involved\n\n- alice: called; acknowledged page 7\n- bob: called\n\n"
        ),
        "{md}"
    );
    assert!(
        md.contains("![The alarm's metric when the case was opened](graph.png)"),
        "{md}"
    );
    for heading in ["## What happened", "## Cause", "## Actions"] {
        assert!(md.contains(heading), "{heading}");
    }
}

#[test]
fn an_open_case_without_pages_or_graph_says_what_is_not_yet() {
    let mut f = facts(false);
    f.pages.clear();
    f.graph = None;
    f.gaps
        .push("the graph could not be read (desk down)".into());
    let md = markdown_draft(&f, None);
    assert!(md.contains("- Resolved: not yet\n"), "{md}");
    assert!(md.contains("- First acknowledged: not yet\n"), "{md}");
    assert!(md.contains("Nobody was paged."), "{md}");
    assert!(md.contains("None was attached to the case."), "{md}");
    assert!(
        md.contains("_Note: the graph could not be read \\(desk down\\)._"),
        "{md}"
    );
    // A graph attached but not saved: the draft says how to save it.
    f.graph = Some(vec![1]);
    assert!(markdown_draft(&f, None).contains("--graph FILE"));
}

#[test]
fn durations_read_as_people_say_them() {
    assert_eq!(took(Duration::seconds(35)), "35 s");
    assert_eq!(took(Duration::seconds(250)), "4 min 10 s");
    assert_eq!(took(Duration::seconds(3900)), "1 h 05 min");
    assert_eq!(took(Duration::seconds(-3)), "0 s");
}
