//! Shared by the fuzz targets: the runtime, the invariants every parsed alarm must keep, the
//! case bodies built from it through the public case logic, and a generator of JSON values
//! shaped like the payloads the service reads.

use std::sync::{Arc, OnceLock};

use arbitrary::{Result as ArbResult, Unstructured};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Number, Value};

use cw_support_api::alarm::{Alarm, AlarmState};
use cw_support_api::alarm_config::{AlarmConfigRecord, AlarmConfigStore, StoreError};
use cw_support_api::case::{Action, CasePolicy, CaseService, Outcome};
use cw_support_api::delivery::Delivery;
use cw_support_api::desk::{
    CaseInfo, Communication, DeskError, MAX_BODY_CHARS, NewCase, SupportDesk,
};
use cw_support_api::ledger::{
    CaseLedger, Claim, ClaimOutcome, Commit, Decision, DecisionFilter, HeldAlarm, LedgerError,
    OpenCase,
};
use cw_support_api::maintenance::MaintenanceWindow;

/// One current-thread runtime per fuzzing process, to drive the library's async API.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// A fixed instant inside the fuzz certificate's validity, for clocks.
pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// What must hold for every alarm the parser accepts, whatever the input.
pub fn check_alarm(alarm: &Alarm) {
    let name = &alarm.name;
    assert!(
        !name.trim().is_empty(),
        "empty alarm name accepted: {name:?}"
    );
    assert!(
        name.chars().count() <= 255,
        "alarm name of {} characters accepted",
        name.chars().count()
    );
    assert!(
        !name.chars().any(char::is_control),
        "alarm name with a control character accepted: {name:?}"
    );
    let key = alarm.key();
    assert!(!key.is_empty(), "empty alarm key");
    match &alarm.identity.arn {
        Some(arn) => assert_eq!(key, arn),
        None => assert_eq!(key, name),
    }
    let event_key = alarm.event_key();
    assert!(
        event_key.starts_with(&format!("{key}|")),
        "event key {event_key:?} does not start with the alarm key {key:?}"
    );
    assert!(
        event_key.ends_with(&format!("|{}|{}", alarm.state, alarm.state_change_time.raw)),
        "event key {event_key:?} does not end with state and time"
    );
    assert!(
        !alarm.state_change_time.raw.trim().is_empty(),
        "empty StateChangeTime accepted"
    );
    // The alarm is logged and recorded as JSON: that must always work.
    serde_json::to_string(alarm).expect("an accepted alarm serialises");
}

// ---- the case logic over stand-in backends --------------------------------------------------

struct NoConfig;

#[async_trait]
impl AlarmConfigStore for NoConfig {
    async fn get(&self, _: &str) -> Result<Option<AlarmConfigRecord>, StoreError> {
        Ok(None)
    }
    async fn put(&self, _: &str, _: &AlarmConfigRecord) -> Result<(), StoreError> {
        Err(StoreError::backend_said("read-only fuzz store"))
    }
    async fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        Ok(Vec::new())
    }
    async fn save_windows(&self, _: &[MaintenanceWindow]) -> Result<(), StoreError> {
        Err(StoreError::backend_said("read-only fuzz store"))
    }
    async fn list(&self) -> Result<Vec<(String, AlarmConfigRecord)>, StoreError> {
        Ok(Vec::new())
    }
    async fn delete(&self, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// A ledger that has handled nothing and holds either no open case or an old one for every
/// alarm; `plan` never writes, so writing fails.
struct StandInLedger {
    open_case: bool,
}

#[async_trait]
impl CaseLedger for StandInLedger {
    async fn find_handled(&self, _: &[String]) -> Result<Option<Decision>, LedgerError> {
        Ok(None)
    }
    async fn open_case(&self, alarm_key: &str) -> Result<Option<OpenCase>, LedgerError> {
        let long_ago = Utc
            .with_ymd_and_hms(2020, 1, 1, 0, 0, 0)
            .single()
            .expect("date");
        Ok(self.open_case.then(|| OpenCase {
            alarm_key: alarm_key.to_owned(),
            alarm_name: "open".into(),
            case_id: "case-1".into(),
            opened_at: long_ago,
            last_update_at: long_ago,
            coalesced: 3,
            updates: 1,
            recovered: false,
            digest: None,
            cycles: Vec::new(),
            flapping: false,
            group: None,
        }))
    }
    async fn open_cases(&self) -> Result<Vec<OpenCase>, LedgerError> {
        Ok(Vec::new())
    }
    async fn claim(&self, _: &Claim, _: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError> {
        Err(LedgerError::storage_said("read-only fuzz ledger"))
    }
    async fn renew(&self, _: &Claim, _: DateTime<Utc>) -> Result<bool, LedgerError> {
        Err(LedgerError::storage_said("read-only fuzz ledger"))
    }
    async fn case_slots_taken(&self, _: DateTime<Utc>) -> Result<usize, LedgerError> {
        Ok(0)
    }
    async fn take_case_slot(&self, _: usize, _: DateTime<Utc>) -> Result<bool, LedgerError> {
        Err(LedgerError::storage_said("read-only fuzz ledger"))
    }
    async fn return_case_slot(&self, _: DateTime<Utc>) -> Result<(), LedgerError> {
        Err(LedgerError::storage_said("read-only fuzz ledger"))
    }
    async fn held(&self) -> Result<Vec<HeldAlarm>, LedgerError> {
        Ok(Vec::new())
    }
    async fn release(&self, _: &Claim) -> Result<(), LedgerError> {
        Err(LedgerError::storage_said("read-only fuzz ledger"))
    }
    async fn commit(&self, _: Commit) -> Result<i64, LedgerError> {
        Err(LedgerError::storage_said("read-only fuzz ledger"))
    }
    async fn decisions(&self, _: &DecisionFilter) -> Result<Vec<Decision>, LedgerError> {
        Ok(Vec::new())
    }
}

struct NoDesk;

#[async_trait]
impl SupportDesk for NoDesk {
    async fn create_case(&self, _: &NewCase) -> Result<String, DeskError> {
        Err(DeskError::Unavailable("fuzz".into()))
    }
    async fn add_communication(&self, _: &str, _: &Communication) -> Result<(), DeskError> {
        Err(DeskError::Unavailable("fuzz".into()))
    }
    async fn resolve_case(&self, _: &str) -> Result<(), DeskError> {
        Err(DeskError::Unavailable("fuzz".into()))
    }
    async fn case_info(&self, _: &str) -> Result<Option<CaseInfo>, DeskError> {
        Ok(None)
    }
    async fn find_case(&self, _: &str, _: DateTime<Utc>) -> Result<Option<String>, DeskError> {
        Ok(None)
    }
}

fn services() -> &'static [CaseService; 2] {
    static S: OnceLock<[CaseService; 2]> = OnceLock::new();
    S.get_or_init(|| {
        [false, true].map(|open_case| {
            CaseService::new(
                Arc::new(NoConfig),
                Arc::new(StandInLedger { open_case }),
                Arc::new(NoDesk),
                CasePolicy::default(),
            )
            .with_clock(fixed_now)
        })
    })
}

fn check_body(what: &str, body: &str) {
    let n = body.chars().count();
    assert!(
        n <= MAX_BODY_CHARS,
        "{what} body has {n} characters, more than {MAX_BODY_CHARS}"
    );
}

/// Plans the alarm with no open case and with an old open case, and checks every body the
/// case logic would send to AWS Support.
pub fn check_case_bodies(delivery: &Delivery, alarm: &Alarm) {
    let [fresh, open] = services();
    let rt = runtime();

    let plan = rt
        .block_on(fresh.plan(delivery, alarm))
        .expect("planning against stand-ins does not fail");
    match (&plan.action, alarm.state) {
        (Action::Create { case, .. }, AlarmState::Alarm) => {
            assert_eq!(plan.outcome, Outcome::Created);
            check_body("new case", &case.communication_body);
            assert_eq!(case.subject, alarm.name);
            assert!(
                case.communication_body
                    .contains(&format!("Alarm: {}\n", alarm.name)),
                "the case body does not name the alarm"
            );
        }
        (Action::Ignored { .. }, AlarmState::Ok | AlarmState::InsufficientData) => {}
        (other, state) => panic!("{state} with no open case planned as {other:?}"),
    }

    let plan = rt
        .block_on(open.plan(delivery, alarm))
        .expect("planning against stand-ins does not fail");
    match (&plan.action, alarm.state) {
        (Action::Update { communication, .. }, AlarmState::Alarm) => {
            check_body("update", &communication.communication_body)
        }
        (
            Action::Recover {
                communication: Some(c),
                ..
            },
            AlarmState::Ok,
        ) => check_body("recovery", &c.communication_body),
        (Action::Ignored { .. }, AlarmState::InsufficientData) => {}
        (other, state) => panic!("{state} with an old open case planned as {other:?}"),
    }
}

// ---- JSON shaped like the payloads ----------------------------------------------------------

/// Keys the parsers look for (and a few they do not), so generated objects reach deep paths.
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "AlarmName", "AlarmDescription", "StateChangeTime", "NewStateValue", "OldStateValue",
    "NewStateReason", "AlarmArn", "AWSAccountId", "AlarmRule", "TriggeringChildren", "Trigger",
    "Metrics", "MetricName", "Namespace", "Dimensions", "Statistic", "ExtendedStatistic",
    "Period", "ComparisonOperator", "Threshold", "ThresholdMetricId", "DatapointsToAlarm",
    "EvaluationPeriods", "Id", "id", "Expression", "expression", "MetricStat", "metricStat",
    "Metric", "metric", "Stat", "stat", "period", "name", "value", "Name", "Value", "Arn",
    "State", "detail-type", "detail", "alarmName", "state", "timestamp", "reason",
    "previousState", "configuration", "description", "metrics", "namespace", "dimensions",
    "alarmRule", "resources", "account", "region", "eventArn", "eventTypeCode", "statusCode",
    "lastUpdatedTime", "startTime", "eventDescription", "language", "latestDescription",
    "affectedEntities", "entityValue", "service", "eventTypeCategory", "eventRegion",
    "affectedAccount", "Region", "Type", "TopicArn", "Message", "MessageId", "source",
];

/// Values the parsers compare against, plus awkward ones.
#[rustfmt::skip]
const STRINGS: &[&str] = &[
    "ALARM", "OK", "INSUFFICIENT_DATA", "alarm", "CloudWatch Alarm State Change",
    "AWS Health Event", "open", "closed", "upcoming", "en", "en_US", "fr",
    "2026-11-20T03:12:45.118+0000", "2026-11-20T03:12:45Z", "Fri, 20 Nov 2026 03:12:45 GMT",
    "+262143-12-31T23:59:59Z", "9999-99-99T99:99:99+9999",
    "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x", "arn:aws:cloudwatch::123:alarm:x",
    "arn:aws:cloudwatch:us-east-1::alarm:x", "arn:aws-cn:cloudwatch:cn-north-1:1:alarm:a:b:c",
    "arn:aws:health:global::event/EC2/X", "arn:aws:sns:us-east-1:123456789012:t",
    "Notification", "", " ", "\t", "\u{0}", "\u{7f}", "\u{85}", "\u{200b}", "\u{202e}rtl",
    "\u{feff}", "é", "💥", "a\nb", "GreaterThanThreshold", "m1", "ad1",
];

/// Builds a JSON value from fuzz bytes: nesting at most `depth` levels, strings and keys
/// mostly from the vocabulary the parsers know.
pub fn arbitrary_json(u: &mut Unstructured<'_>, depth: u32) -> ArbResult<Value> {
    let choice = if depth == 0 {
        u.int_in_range(0..=5)?
    } else {
        u.int_in_range(0..=8)?
    };
    Ok(match choice {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(match u.int_in_range(0..=3)? {
            0 => Number::from(u.arbitrary::<i64>()?),
            1 => Number::from(u.arbitrary::<u64>()?),
            _ => Number::from_f64(u.arbitrary::<f64>()?).unwrap_or_else(|| Number::from(0)),
        }),
        3 | 4 => Value::String(arbitrary_string(u)?),
        5 => Value::String(String::from(*u.choose(STRINGS)?)),
        6 => {
            let n = u.int_in_range(0..=4)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(arbitrary_json(u, depth - 1)?);
            }
            Value::Array(items)
        }
        _ => Value::Object(arbitrary_object(u, depth - 1)?),
    })
}

/// An object whose keys are mostly ones the parsers read.
pub fn arbitrary_object(u: &mut Unstructured<'_>, depth: u32) -> ArbResult<Map<String, Value>> {
    let n = u.int_in_range(0..=8)?;
    let mut map = Map::new();
    for _ in 0..n {
        let key = if u.ratio(1, 8)? {
            arbitrary_string(u)?
        } else {
            String::from(*u.choose(KEYS)?)
        };
        map.insert(key, arbitrary_json(u, depth)?);
    }
    Ok(map)
}

fn arbitrary_string(u: &mut Unstructured<'_>) -> ArbResult<String> {
    let s: String = u.arbitrary()?;
    // Sometimes very long, to exercise the name limit and the body truncation.
    if u.ratio(1, 32)? {
        let len = u.int_in_range(200..=9_000)?;
        let unit = if s.is_empty() { "x" } else { s.as_str() };
        let mut long = unit.repeat(len / unit.len() + 1);
        let mut cut = len;
        while !long.is_char_boundary(cut) {
            cut -= 1;
        }
        long.truncate(cut);
        Ok(long)
    } else {
        Ok(s)
    }
}
