//! What an alarm means: every payload shape that can reach the service (CloudWatch metric,
//! metric-math, anomaly and composite alarms, the EventBridge "CloudWatch Alarm State Change"
//! event, AWS Health events and the minimal three-key format) parsed into ONE validated
//! [`Alarm`]. Past this module nothing looks at raw JSON again, except to quote it in a case.
//!
//! Parsing is tolerant where CloudWatch is loose (null descriptions, absent trigger fields,
//! `+0000` offsets) and strict where the service needs a value to act on (`AlarmName`,
//! `StateChangeTime`, a known state). Every refusal is a [`PayloadError`] naming the problem.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// The longest alarm name accepted. CloudWatch allows 255 characters; a longer name can only
/// come from a hand-written post and would not fit a case subject anyway.
const MAX_NAME_CHARS: usize = 255;

/// CloudWatch's own limits: an alarm description is at most 1,024 characters, a state reason
/// 1,023. Anything longer did not come from CloudWatch.
const MAX_DESCRIPTION_CHARS: usize = 1024;
const MAX_REASON_CHARS: usize = 1023;
/// An AWS Health event's description, which AWS writes at length.
const MAX_HEALTH_DESCRIPTION_CHARS: usize = 10_240;
/// ARNs and event ids become ledger keys (DynamoDB allows 2,048 bytes for a key, and the
/// ledger adds a prefix): an alarm ARN is at most about 320 characters.
const MAX_ARN_CHARS: usize = 1024;
/// A time, in any of the forms senders use, fits in 64 characters.
const MAX_TIME_CHARS: usize = 64;
/// Any other string in a payload, and any object key: CloudWatch's longest field (a
/// composite alarm's rule) is 10,240 characters.
pub const MAX_STRING_CHARS: usize = 10_240;

/// Why a body could not become an alarm. Each variant is answered with 400 and its
/// [`code`](PayloadError::code), so callers can tell their mistakes apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the request body is empty")]
    EmptyBody,
    #[error("the request body is not JSON: {0}")]
    NotJson(String),
    #[error("the request body is JSON but not an object")]
    NotAnObject,
    #[error("the JSON holds more than {0} values")]
    TooComplex(usize),
    #[error("the alarm is larger than {0} bytes, the most SNS or SQS carries")]
    TooLarge(usize),
    #[error("{0}")]
    MalformedSns(String),
    #[error("the SNS Message field does not hold a JSON alarm: {0}")]
    SnsMessageNotJson(String),
    #[error("unknown payload shape: {0}")]
    UnknownShape(String),
    #[error("unsupported event: {0}")]
    UnsupportedEvent(String),
    #[error("required field {0} is missing")]
    MissingField(String),
    #[error("field {field} is invalid: {problem}")]
    InvalidField { field: String, problem: String },
}

impl PayloadError {
    /// A stable, machine-readable name for the problem.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyBody => "empty_body",
            Self::NotJson(_) => "not_json",
            Self::NotAnObject => "not_an_object",
            Self::TooComplex(_) => "too_complex",
            Self::TooLarge(_) => "alarm_too_large",
            Self::MalformedSns(_) => "malformed_sns_message",
            Self::SnsMessageNotJson(_) => "sns_message_not_json",
            Self::UnknownShape(_) => "unknown_shape",
            Self::UnsupportedEvent(_) => "unsupported_event",
            Self::MissingField(_) => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
        }
    }

    fn invalid(field: &str, problem: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

/// The three states of a CloudWatch alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Alarm,
    Ok,
    InsufficientData,
}

impl AlarmState {
    fn parse(field: &str, value: &str) -> Result<Self, PayloadError> {
        match value {
            "ALARM" => Ok(Self::Alarm),
            "OK" => Ok(Self::Ok),
            "INSUFFICIENT_DATA" => Ok(Self::InsufficientData),
            other => Err(PayloadError::invalid(
                field,
                format!("expected ALARM, OK or INSUFFICIENT_DATA, got {other:?}"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "ALARM",
            Self::Ok => "OK",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which payload shape the alarm came in; it decides how the trigger is summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmKind {
    Metric,
    MetricMath,
    Anomaly,
    Composite,
    /// A CloudWatch alarm notification with neither a trigger nor a rule.
    Alarm,
    /// The three-key format of third-party monitors.
    Minimal,
    /// An AWS Health event from EventBridge.
    Health,
    /// A Trusted Advisor check item's refresh, from EventBridge.
    TrustedAdvisor,
    /// One alert of a Prometheus Alertmanager or Grafana alerting webhook.
    Alertmanager,
}

/// When the alarm changed state, kept verbatim (it is part of the event's identity and must
/// compare equal across redeliveries) and parsed when it is in a known form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateChangeTime {
    pub raw: String,
    pub parsed: Option<DateTime<Utc>>,
}

impl StateChangeTime {
    pub fn new(raw: &str) -> Self {
        Self {
            raw: raw.to_owned(),
            parsed: parse_time(raw),
        }
    }
}

/// CloudWatch writes `2024-03-05T20:31:04.488+0000` (no colon in the offset), which strict
/// RFC 3339 parsers reject; EventBridge and hand-written posts use RFC 3339; AWS Health uses
/// the RFC 2822 form of HTTP dates.
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(raw))
        .or_else(|_| DateTime::parse_from_rfc2822(raw))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Who the alarm is: the ARN when the payload carries one (unique across accounts and
/// regions), else the name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmIdentity {
    pub arn: Option<String>,
    pub account: Option<String>,
    /// A region code such as `us-east-1` (never CloudWatch's display name).
    pub region: Option<String>,
}

/// One validated alarm event, whatever shape it arrived in.
#[derive(Debug, Clone, Serialize)]
pub struct Alarm {
    pub identity: AlarmIdentity,
    pub name: String,
    pub kind: AlarmKind,
    pub description: Option<String>,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    pub state_change_time: StateChangeTime,
    pub reason: Option<String>,
    /// A readable account of what triggered the alarm, for the support engineer.
    pub trigger: String,
    /// The alarm exactly as received, quoted in the case body.
    pub raw: Value,
}

impl Alarm {
    /// The key the ledger groups events by: the ARN when known, else the name.
    pub fn key(&self) -> &str {
        self.identity.arn.as_deref().unwrap_or(&self.name)
    }

    /// The key of this state change; a second delivery of the same event has the same one.
    pub fn event_key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.key(),
            self.state,
            self.state_change_time.raw
        )
    }

    /// Parses a JSON body (already unwrapped from any SNS envelope) into an alarm.
    pub fn parse(value: Value) -> Result<Self, PayloadError> {
        let obj = value.as_object().ok_or(PayloadError::NotAnObject)?;
        check_strings(&value)?;
        if obj.contains_key("detail-type") || obj.contains_key("detail") {
            return eventbridge::parse_event(obj, &value);
        }
        if obj.contains_key("alarmData") {
            return eventbridge::parse_lambda_action(obj, &value);
        }
        if alertmanager::is_legacy_grafana(obj) {
            return alertmanager::parse_legacy_grafana(obj, &value);
        }
        if obj.contains_key("AlarmName") {
            return parse_cloudwatch(obj, &value);
        }
        Err(PayloadError::UnknownShape(
            "expected a CloudWatch alarm (AlarmName), an EventBridge event (detail-type), \
             CloudWatch's Lambda action payload (alarmData), an Alertmanager or Grafana webhook \
             (alerts), or the minimal format (AlarmName, AlarmDescription, StateChangeTime)"
                .into(),
        ))
    }
}

// ---- field access -------------------------------------------------------------------------

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Refuses a payload with any string or object key longer than [`MAX_STRING_CHARS`],
/// naming where it is (`Trigger.Dimensions[0].value`).
pub fn check_strings(v: &Value) -> Result<(), PayloadError> {
    fn long(s: &str) -> bool {
        // Bytes first: most strings are short, and a char count is only needed near the bound.
        s.len() > MAX_STRING_CHARS && s.chars().count() > MAX_STRING_CHARS
    }
    fn walk(v: &Value, path: &mut Vec<String>) -> Option<String> {
        match v {
            Value::String(s) if long(s) => Some(path.concat()),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| {
                path.push(format!("[{i}]"));
                let found = walk(x, path);
                path.pop();
                found
            }),
            Value::Object(map) => map.iter().find_map(|(k, x)| {
                let dot = if path.is_empty() { "" } else { "." };
                if long(k) {
                    let short: String = k.chars().take(40).collect();
                    return Some(format!("{}{dot}{short}… (a key)", path.concat()));
                }
                path.push(format!("{dot}{k}"));
                let found = walk(x, path);
                path.pop();
                found
            }),
            _ => None,
        }
    }
    match walk(v, &mut Vec::new()) {
        Some(path) => Err(PayloadError::invalid(
            &path,
            format!("longer than {MAX_STRING_CHARS} characters"),
        )),
        None => Ok(()),
    }
}

/// An optional string of at most `max` characters, refused (naming the field) beyond it.
fn bounded<'a>(
    v: Option<&'a str>,
    max: usize,
    path: &str,
) -> Result<Option<&'a str>, PayloadError> {
    match v {
        Some(s) if s.len() > max && s.chars().count() > max => Err(PayloadError::invalid(
            path,
            format!("longer than {max} characters"),
        )),
        other => Ok(other),
    }
}

/// A time field: at most [`MAX_TIME_CHARS`] printable characters (it is part of the event's
/// identity, so it is kept verbatim).
fn check_time<'a>(t: &'a str, path: &str) -> Result<&'a str, PayloadError> {
    bounded(Some(t), MAX_TIME_CHARS, path)?;
    if t.chars().any(char::is_control) {
        return Err(PayloadError::invalid(path, "contains control characters"));
    }
    Ok(t)
}

/// An AWS account id: twelve digits.
fn check_account<'a>(a: Option<&'a str>, path: &str) -> Result<Option<&'a str>, PayloadError> {
    match a {
        Some(a) if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) => Err(
            PayloadError::invalid(path, "expected a 12-digit AWS account id"),
        ),
        other => Ok(other),
    }
}

/// A region code such as `eu-west-1` (or AWS Health's `global`): at most 32 lowercase
/// letters, digits and dashes.
fn check_region<'a>(r: Option<&'a str>, path: &str) -> Result<Option<&'a str>, PayloadError> {
    match r {
        Some(r)
            if r.len() > 32
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Err(PayloadError::invalid(
                path,
                "expected a region code such as eu-west-1",
            ))
        }
        other => Ok(other),
    }
}

/// A required, non-empty string.
fn req_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, PayloadError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(PayloadError::MissingField(path.to_owned())),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(PayloadError::invalid(path, "must not be empty"))
        }
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(PayloadError::invalid(
            path,
            format!("expected a string, got {}", type_name(other)),
        )),
    }
}

/// An optional string: absent, null and "" all mean "none".
fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, PayloadError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(PayloadError::invalid(
            path,
            format!("expected a string, got {}", type_name(other)),
        )),
    }
}

/// An optional object: absent and null mean "none".
fn opt_obj<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, PayloadError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(PayloadError::invalid(
            path,
            format!("expected an object, got {}", type_name(other)),
        )),
    }
}

fn check_name(name: &str, path: &str) -> Result<String, PayloadError> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(PayloadError::invalid(
            path,
            format!("longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || is_line_or_bidi_control(c))
    {
        return Err(PayloadError::invalid(
            path,
            "contains control, line-separator or bidirectional-override characters",
        ));
    }
    if name.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
        return Err(PayloadError::invalid(path, "has no visible characters"));
    }
    Ok(name.to_owned())
}

/// Characters that would break a case subject or a log line, or reorder what a reader sees.
fn is_line_or_bidi_control(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Zero-width characters: a name made only of these (and spaces) shows as nothing.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{00ad}')
}

/// A loose textual rendering of a trigger value: numbers and strings as they are, anything
/// else skipped. Trigger fields only feed the summary, so a surprise there is never fatal.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads an alarm ARN, `arn:aws:cloudwatch:<region>:<account>:alarm:<name>`, into its parts:
/// at most [`MAX_ARN_CHARS`], a region code and a 12-digit account.
fn arn_parts(arn: &str) -> Option<(String, String)> {
    // Alarm names (the ARN's last part) may hold spaces, never control characters.
    if arn.len() > MAX_ARN_CHARS || arn.chars().any(char::is_control) {
        return None;
    }
    let mut parts = arn.splitn(7, ':');
    let (Some("arn"), Some(_partition), Some("cloudwatch"), Some(region), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let region_ok = check_region(Some(region), "").is_ok() && !region.is_empty();
    let account_ok = check_account(Some(account), "").is_ok();
    (region_ok && account_ok).then(|| (region.to_owned(), account.to_owned()))
}

fn identity(arn: Option<&str>, account: Option<&str>, region: Option<&str>) -> AlarmIdentity {
    let from_arn = arn.and_then(arn_parts);
    AlarmIdentity {
        arn: arn.map(str::to_owned),
        account: from_arn
            .as_ref()
            .map(|(_, a)| a.clone())
            .or_else(|| account.map(str::to_owned)),
        region: from_arn
            .map(|(r, _)| r)
            .or_else(|| region.map(str::to_owned)),
    }
}

pub mod alertmanager;
mod cloudwatch;
use cloudwatch::parse_cloudwatch;
mod eventbridge;
pub use eventbridge::ignorable;
mod metric;
mod regions;
pub mod service;

#[cfg(test)]
mod tests;
