//! The console's charts, drawn on the server as SVG: no script, nothing fetched, the same
//! picture on a phone. Plain functions from numbers to markup; every label is escaped.

use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::domain::alarm::AlarmState;
use crate::domain::outcome::{DecisionState, Outcome};
use crate::escape::html;
use crate::ports::ledger::Decision;

/// How many alarms came in each of the 24 hours up to `now` (oldest first), counting each
/// ALARM event once (a redelivery is a duplicate, not another alarm).
pub fn alarms_per_hour(decisions: &[Decision], now: DateTime<Utc>) -> (DateTime<Utc>, [u32; 24]) {
    let end = now.duration_trunc(Duration::hours(1)).unwrap_or(now) + Duration::hours(1);
    let start = end - Duration::hours(24);
    let mut counts = [0u32; 24];
    for d in decisions {
        if d.state != DecisionState::Alarm(AlarmState::Alarm) || d.outcome == Outcome::Duplicate {
            continue;
        }
        if d.at < start || d.at >= end {
            continue;
        }
        let hour = (d.at - start).num_hours();
        if let Some(c) = usize::try_from(hour).ok().and_then(|h| counts.get_mut(h)) {
            *c += 1;
        }
    }
    (start, counts)
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 140;
const TOP: u32 = 16;
const BOTTOM: u32 = 22;

/// A bar per hour from `start`, labelled every six hours, with the largest count named.
pub fn hourly_bars(title: &str, start: DateTime<Utc>, counts: &[u32]) -> String {
    let n = u32::try_from(counts.len().max(1)).unwrap_or(1);
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    let step = WIDTH / n;
    let plot = HEIGHT - TOP - BOTTOM;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>\
         <line x1=\"0\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\" stroke=\"#999\"/>\
         <text x=\"0\" y=\"11\" font-size=\"11\" fill=\"#555\">{most} at most</text>",
        t = html(title),
        base = HEIGHT - BOTTOM,
    );
    for (i, c) in counts.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(0);
        let h = c * plot / most;
        let at = start + Duration::hours(i64::from(i));
        out.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{h}\" fill=\"#b00020\">\
             <title>{}: {c}</title></rect>",
            i * step + 1,
            HEIGHT - BOTTOM - h,
            step.saturating_sub(2).max(1),
            at.format("%H:00 UTC"),
        ));
        if i % 6 == 0 {
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#555\">{}</text>",
                i * step + 1,
                HEIGHT - 6,
                at.format("%H:00"),
            ));
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::{Delivery, DeliveryKind};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn decision(at: &str, state: AlarmState, outcome: Outcome) -> Decision {
        let mut d = Decision::new(
            &Delivery::new(DeliveryKind::Direct),
            "k",
            "db",
            outcome,
            t(at),
        );
        d.state = DecisionState::Alarm(state);
        d
    }

    #[test]
    fn alarms_are_counted_per_hour_once_each() {
        let now = t("2026-12-07T10:20:00Z");
        let ds = [
            decision("2026-12-07T10:05:00Z", AlarmState::Alarm, Outcome::Created),
            decision(
                "2026-12-07T10:06:00Z",
                AlarmState::Alarm,
                Outcome::Duplicate,
            ),
            decision("2026-12-07T10:07:00Z", AlarmState::Ok, Outcome::Recovered),
            decision("2026-12-07T09:59:59Z", AlarmState::Alarm, Outcome::Updated),
            decision("2026-12-06T11:00:00Z", AlarmState::Alarm, Outcome::Created),
            // More than a day ago: not shown.
            decision("2026-12-06T10:59:59Z", AlarmState::Alarm, Outcome::Created),
        ];
        let (start, counts) = alarms_per_hour(&ds, now);
        assert_eq!(start, t("2026-12-06T11:00:00Z"));
        assert_eq!((counts[0], counts[22], counts[23]), (1, 1, 1));
        assert_eq!(counts.iter().sum::<u32>(), 3);
    }

    #[test]
    fn the_chart_scales_to_the_busiest_hour_and_escapes_its_title() {
        let svg = hourly_bars("<b>alarms</b>", t("2026-12-06T11:00:00Z"), &[0, 2, 4, 1]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(
            svg.contains("<title>&lt;b&gt;alarms&lt;/b&gt;</title>"),
            "{svg}"
        );
        assert!(svg.contains("4 at most"), "{svg}");
        // The busiest bar is the plot's full height (102 px); an empty hour is flat.
        assert!(svg.contains("height=\"102\" fill"), "{svg}");
        assert!(svg.contains("height=\"0\" fill"), "{svg}");
        assert!(svg.contains("<title>13:00 UTC: 4</title>"), "{svg}");
    }
}
