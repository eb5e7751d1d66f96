//! A deterministic, wire-level stand-in for the AWS Support API (service `support`,
//! version 2013-04-15), for tests and local runs.
//!
//! Why it exists: the only ready-made local stand-in, moto, implements just CreateCase,
//! DescribeCases and ResolveCase, answers HTTP 500 to AddCommunicationToCase,
//! DescribeServices and DescribeSeverityLevels, and advances case statuses and severities on
//! every DescribeCases call to imitate progress. Tests that drive the real `aws-sdk-support`
//! client need a stand-in whose state only changes when the test says so, and which can
//! inject the faults the real service produces (throttling, 500s, the case creation limit,
//! `SubscriptionRequiredException`, slow answers).
//!
//! It speaks the real protocol, so the official SDK client works unchanged when pointed at
//! [`SupportStandin::endpoint`] (`AWS_ENDPOINT_URL_SUPPORT` or `.endpoint_url(...)`):
//! awsJson1_1, `POST /` with `X-Amz-Target: AWSSupport_20130415.<Operation>`, JSON bodies
//! with the model's camelCase member names, `Content-Type: application/x-amz-json-1.1`.
//! Errors are HTTP 400 (500 for `InternalServerError`) with `{"__type", "message"}` and the
//! `x-amzn-ErrorType` header. SigV4 headers are ignored.
//!
//! Operations: CreateCase, DescribeCases, DescribeCommunications, AddCommunicationToCase,
//! ResolveCase, DescribeSeverityLevels, DescribeServices. Any other target answers 400
//! `UnknownOperationException`. Case statuses change only through ResolveCase,
//! [`SupportStandin::resolve`] and [`SupportStandin::set_status`]; cases are listed in
//! creation order, communications newest first (as `recentCommunications`, at most 5).
//!
//! Control, in process: [`SupportStandin::inject`], [`SupportStandin::cases`],
//! [`SupportStandin::calls`], ... Over HTTP, for other processes and scripts:
//! - `POST   /_standin/faults` `{"operation": "CreateCase" | "*", "fault": "Throttling" |
//!   "InternalError" | "CaseCreationLimitExceeded" | "SubscriptionRequired" |
//!   "CaseIdNotFound" | {"DelayMs": 1500}, "times": 2}`
//! - `GET    /_standin/faults` (pending faults), `DELETE /_standin/faults`
//! - `GET    /_standin/cases`, `POST /_standin/cases/{caseId}/resolve`
//! - `POST   /_standin/cases/{caseId}/status` `{"status": "work-in-progress"}`
//! - `GET    /_standin/calls` (`{"CreateCase": 2, ...}`, every request, faulted ones too)
//! - `PUT    /_standin/severities` `["low", "normal"]`
//! - `POST   /_standin/reset` (forget cases, faults, calls; default severities)
//!
//! Only axum, tokio, serde, serde_json, base64 and chrono are used, and no `crate::` paths, so the
//! file can be included anywhere (`mod`, or `#[path]` from an example binary).
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The `X-Amz-Target` prefix of every Support operation.
pub(crate) const TARGET_PREFIX: &str = "AWSSupport_20130415.";
/// The account that case ids name.
pub(crate) const ACCOUNT_ID: &str = "123456789012";
/// Who the stand-in says submitted cases and communications.
pub(crate) const SUBMITTED_BY: &str = "standin-user@example.com";
/// Severity codes allowed until [`SupportStandin::set_severities`] says otherwise.
pub(crate) const DEFAULT_SEVERITIES: [&str; 5] = ["low", "normal", "high", "urgent", "critical"];
/// Every case status the real service uses.
pub(crate) const CASE_STATUSES: [&str; 7] = [
    "opened",
    "unassigned",
    "work-in-progress",
    "pending-customer-action",
    "customer-action-completed",
    "reopened",
    "resolved",
];
/// Operations the stand-in answers.
pub(crate) const OPERATIONS: [&str; 9] = [
    "CreateCase",
    "AddAttachmentsToSet",
    "DescribeAttachment",
    "DescribeCases",
    "DescribeCommunications",
    "AddCommunicationToCase",
    "ResolveCase",
    "DescribeSeverityLevels",
    "DescribeServices",
];

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const MAX_BODY_CHARS: usize = 8000;
const MAX_CC: usize = 10;
const RECENT_COMMUNICATIONS: usize = 5;
const LANGUAGES: [&str; 4] = ["en", "ja", "ko", "zh"];
const ISSUE_TYPES: [&str; 2] = ["technical", "customer-service"];

/// A DescribeServices entry: `(code, name, [(category code, category name)])`.
pub(crate) type ServiceEntry = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The fixed answer of DescribeServices.
pub(crate) const SERVICES: &[ServiceEntry] = &[
    (
        "amazon-elastic-compute-cloud-linux",
        "Elastic Compute Cloud (EC2 - Linux)",
        &[
            ("other", "Other"),
            ("instance-issue", "Instance Issue"),
            ("performance", "Performance"),
        ],
    ),
    (
        "amazon-dynamodb",
        "DynamoDB",
        &[("other", "Other"), ("performance", "Performance")],
    ),
    (
        "amazon-cloudwatch",
        "CloudWatch",
        &[("other", "Other"), ("alarms", "Alarms")],
    ),
    (
        "general-info",
        "General Info and Getting Started",
        &[("other", "Other"), ("using-aws", "Using AWS & Services")],
    ),
];

/// A fault to answer with instead of (or, for `Delay`, before) the normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// 400 `ThrottlingException`, "Rate exceeded" (the SDK retries it).
    Throttling,
    /// 500 `InternalServerError` (the SDK retries it: a 500 is transient).
    InternalError,
    /// 400 `CaseCreationLimitExceeded`.
    CaseCreationLimitExceeded,
    /// 400 `SubscriptionRequiredException` (not in the SDK's model: an unhandled error).
    SubscriptionRequired,
    /// 400 `CaseIdNotFound`.
    CaseIdNotFound,
    /// Sleep this long, then answer normally.
    Delay(Duration),
    /// Carry the request out, then answer 200 with a body that is not JSON (a proxy's page, a
    /// cut connection): the caller cannot tell whether it was done.
    Garbled,
}

impl Fault {
    /// Parses the HTTP control form: `"Throttling"`, ..., or `{"DelayMs": 1500}`.
    pub(crate) fn from_json(value: &Value) -> Result<Fault, String> {
        match value {
            Value::String(name) => match name.as_str() {
                "Throttling" => Ok(Fault::Throttling),
                "InternalError" => Ok(Fault::InternalError),
                "CaseCreationLimitExceeded" => Ok(Fault::CaseCreationLimitExceeded),
                "SubscriptionRequired" => Ok(Fault::SubscriptionRequired),
                "CaseIdNotFound" => Ok(Fault::CaseIdNotFound),
                "Garbled" => Ok(Fault::Garbled),
                other => Err(format!("unknown fault {other:?}")),
            },
            Value::Object(map) => match map.get("DelayMs").and_then(Value::as_u64) {
                Some(ms) if map.len() == 1 => Ok(Fault::Delay(Duration::from_millis(ms))),
                _ => Err("a delay is {\"DelayMs\": <milliseconds>}".to_string()),
            },
            _ => Err("fault must be a name or {\"DelayMs\": n}".to_string()),
        }
    }

    /// The HTTP control form of this fault.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Fault::Throttling => json!("Throttling"),
            Fault::InternalError => json!("InternalError"),
            Fault::CaseCreationLimitExceeded => json!("CaseCreationLimitExceeded"),
            Fault::SubscriptionRequired => json!("SubscriptionRequired"),
            Fault::CaseIdNotFound => json!("CaseIdNotFound"),
            Fault::Garbled => json!("Garbled"),
            Fault::Delay(d) => json!({ "DelayMs": d.as_millis() as u64 }),
        }
    }

    fn error(&self) -> Option<ApiError> {
        Some(match self {
            Fault::Throttling => ApiError::new("ThrottlingException", "Rate exceeded"),
            Fault::InternalError => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "InternalServerError",
                message: "We encountered an internal error. Please try again.".to_string(),
            },
            Fault::CaseCreationLimitExceeded => ApiError::new(
                "CaseCreationLimitExceeded",
                "You have exceeded the case creation limit for this account.",
            ),
            Fault::SubscriptionRequired => ApiError::new(
                "SubscriptionRequiredException",
                "AWS Premium Support Subscription is required to use this service.",
            ),
            Fault::CaseIdNotFound => {
                ApiError::new("CaseIdNotFound", "Invalid case ID (injected fault).")
            }
            Fault::Delay(_) | Fault::Garbled => return None,
        })
    }
}

/// An error answer in the awsJson1_1 shape.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationException", message)
    }

    fn case_not_found(case_id: &str) -> ApiError {
        ApiError::new("CaseIdNotFound", format!("Invalid case ID: {case_id}"))
    }
}

#[derive(Debug, Clone)]
struct Communication {
    body: String,
    submitted_by: String,
    time_created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Case {
    case_id: String,
    display_id: String,
    subject: String,
    status: String,
    service_code: Option<String>,
    category_code: Option<String>,
    severity_code: String,
    submitted_by: String,
    time_created: DateTime<Utc>,
    cc_email_addresses: Vec<String>,
    language: String,
    issue_type: String,
    /// Oldest first.
    communications: Vec<Communication>,
    /// The attachments of the set passed to CreateCase: (file name, bytes).
    attachments: Vec<(String, Vec<u8>)>,
}

impl Case {
    fn communication_json(&self, c: &Communication) -> Value {
        let mut v = json!({
            "caseId": self.case_id,
            "body": c.body,
            "submittedBy": c.submitted_by,
            "timeCreated": iso(c.time_created),
        });
        // As AWS does: the set given to CreateCase is on the opening communication, each
        // file by an id DescribeAttachment reads back.
        if std::ptr::eq(c, &self.communications[0]) && !self.attachments.is_empty() {
            v["attachmentSet"] = self
                .attachments
                .iter()
                .enumerate()
                .map(|(i, (name, _))| json!({"attachmentId": format!("{}#{i}", self.case_id), "fileName": name}))
                .collect();
        }
        v
    }

    /// The CaseDetails shape of DescribeCases.
    fn details(&self, include_communications: bool) -> Value {
        let mut v = json!({
            "caseId": self.case_id,
            "displayId": self.display_id,
            "subject": self.subject,
            "status": self.status,
            "severityCode": self.severity_code,
            "submittedBy": self.submitted_by,
            "timeCreated": iso(self.time_created),
            "ccEmailAddresses": self.cc_email_addresses,
            "language": self.language,
        });
        let obj = v.as_object_mut().expect("an object");
        if let Some(s) = &self.service_code {
            obj.insert("serviceCode".into(), json!(s));
        }
        if let Some(c) = &self.category_code {
            obj.insert("categoryCode".into(), json!(c));
        }
        if include_communications {
            let newest_first: Vec<Value> = self
                .communications
                .iter()
                .rev()
                .take(RECENT_COMMUNICATIONS)
                .map(|c| self.communication_json(c))
                .collect();
            let mut recent = json!({ "communications": newest_first });
            if self.communications.len() > RECENT_COMMUNICATIONS {
                recent["nextToken"] = json!(page_token(RECENT_COMMUNICATIONS));
            }
            obj.insert("recentCommunications".into(), recent);
        }
        v
    }

    /// The control snapshot: CaseDetails plus `issueType` and every communication, oldest
    /// first.
    fn snapshot(&self) -> Value {
        let mut v = self.details(false);
        v["issueType"] = json!(self.issue_type);
        v["attachments"] = self
            .attachments
            .iter()
            .map(|(name, data)| json!({"fileName": name, "size": data.len(), "data": BASE64.encode(data)}))
            .collect();
        v["communications"] = self
            .communications
            .iter()
            .map(|c| self.communication_json(c))
            .collect();
        v
    }
}

#[derive(Debug)]
struct FaultEntry {
    operation: String,
    fault: Fault,
    remaining: usize,
}

#[derive(Debug)]
struct Inner {
    cases: Vec<Case>,
    /// (operation, access key id) of every request.
    signed_by: Vec<(String, String)>,
    /// Attachment sets by id (AddAttachmentsToSet), until a case takes one.
    attachment_sets: BTreeMap<String, Vec<(String, Vec<u8>)>>,
    created: u64,
    severities: Vec<String>,
    faults: VecDeque<FaultEntry>,
    calls: BTreeMap<String, usize>,
    requests: u64,
}

impl Default for Inner {
    fn default() -> Inner {
        Inner {
            cases: Vec::new(),
            signed_by: Vec::new(),
            attachment_sets: BTreeMap::new(),
            created: 0,
            severities: DEFAULT_SEVERITIES.iter().map(|s| s.to_string()).collect(),
            faults: VecDeque::new(),
            calls: BTreeMap::new(),
            requests: 0,
        }
    }
}

impl Inner {
    /// Takes the first pending fault for `op` (or `*`), in the order they were injected.
    fn take_fault(&mut self, op: &str) -> Option<Fault> {
        let idx = self
            .faults
            .iter()
            .position(|f| f.operation == op || f.operation == "*")?;
        let entry = &mut self.faults[idx];
        let fault = entry.fault.clone();
        entry.remaining -= 1;
        if entry.remaining == 0 {
            self.faults.remove(idx);
        }
        Some(fault)
    }

    fn case_mut(&mut self, case_id: &str) -> Option<&mut Case> {
        self.cases.iter_mut().find(|c| c.case_id == case_id)
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    // A panicking test thread must not take every later assertion down with it.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running stand-in. Stops when dropped (or on [`SupportStandin::shutdown`]).
#[derive(Debug)]
pub(crate) struct SupportStandin {
    addr: SocketAddr,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SupportStandin {
    /// Starts on `127.0.0.1:0` (a free port). Panics if that cannot be bound.
    pub(crate) async fn start() -> SupportStandin {
        SupportStandin::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the Support stand-in on 127.0.0.1:0")
    }

    /// Starts on `addr` (port 0 for a free one).
    pub(crate) async fn start_on(addr: SocketAddr) -> std::io::Result<SupportStandin> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared: Shared = Arc::new(Mutex::new(Inner::default()));
        let app = router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // A dropped sender stops the server too.
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(SupportStandin {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url` or `AWS_ENDPOINT_URL_SUPPORT`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues `fault` for the next `times` requests of operation `op` (or `"*"`: any).
    /// Faults for one operation are used up in the order they were injected.
    pub(crate) fn inject(&self, op: &str, fault: Fault, times: usize) {
        if times == 0 {
            return;
        }
        lock(&self.shared).faults.push_back(FaultEntry {
            operation: op.to_string(),
            fault,
            remaining: times,
        });
    }

    /// Drops every pending fault.
    pub(crate) fn clear_faults(&self) {
        lock(&self.shared).faults.clear();
    }

    /// Pending faults: `(operation, fault, remaining)`.
    pub(crate) fn pending_faults(&self) -> Vec<(String, Fault, usize)> {
        lock(&self.shared)
            .faults
            .iter()
            .map(|f| (f.operation.clone(), f.fault.clone(), f.remaining))
            .collect()
    }

    /// Every case, in creation order, as CaseDetails JSON plus `issueType` and
    /// `communications` (all of them, oldest first).
    pub(crate) fn cases(&self) -> Vec<Value> {
        lock(&self.shared)
            .cases
            .iter()
            .map(Case::snapshot)
            .collect()
    }

    /// One case, as in [`SupportStandin::cases`].
    pub(crate) fn case(&self, case_id: &str) -> Option<Value> {
        lock(&self.shared)
            .cases
            .iter()
            .find(|c| c.case_id == case_id)
            .map(Case::snapshot)
    }

    /// The access key ids that signed each call of `op`, in order.
    pub(crate) fn access_keys(&self, op: &str) -> Vec<String> {
        lock(&self.shared)
            .signed_by
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Adds a communication from AWS Support's side ("Amazon Web Services"), as an engineer
    /// replying would. Returns false if there is no such case.
    pub(crate) fn reply(&self, case_id: &str, body: &str) -> bool {
        match lock(&self.shared).case_mut(case_id) {
            Some(case) => {
                case.communications.push(Communication {
                    body: body.to_string(),
                    submitted_by: "Amazon Web Services".to_string(),
                    time_created: Utc::now(),
                });
                true
            }
            None => false,
        }
    }

    /// Resolves a case as AWS Support would. Returns false if there is no such case.
    pub(crate) fn resolve(&self, case_id: &str) -> bool {
        self.set_status(case_id, "resolved")
    }

    /// Sets a case's status (one of [`CASE_STATUSES`]). Returns false if there is no such
    /// case or status.
    pub(crate) fn set_status(&self, case_id: &str, status: &str) -> bool {
        if !CASE_STATUSES.contains(&status) {
            return false;
        }
        match lock(&self.shared).case_mut(case_id) {
            Some(case) => {
                case.status = status.to_string();
                true
            }
            None => false,
        }
    }

    /// Sets the severity codes the account may use (DescribeSeverityLevels, CreateCase).
    pub(crate) fn set_severities(&self, codes: &[&str]) {
        lock(&self.shared).severities = codes.iter().map(|s| s.to_string()).collect();
    }

    /// How many requests named operation `op` (`"*"`: all operations), faulted ones included.
    pub(crate) fn calls(&self, op: &str) -> usize {
        let inner = lock(&self.shared);
        if op == "*" {
            inner.calls.values().sum()
        } else {
            inner.calls.get(op).copied().unwrap_or(0)
        }
    }

    /// Requests per operation.
    pub(crate) fn all_calls(&self) -> BTreeMap<String, usize> {
        lock(&self.shared).calls.clone()
    }

    /// Forgets cases, faults and calls, and restores the default severities.
    pub(crate) fn reset(&self) {
        *lock(&self.shared) = Inner::default();
    }

    /// Stops accepting connections, lets requests in flight finish (at most 5 s), and
    /// waits for the server to stop.
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for SupportStandin {
    fn drop(&mut self) {
        // Graceful: open connections are told to close once their request is answered.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", post(support))
        .route(
            "/_standin/faults",
            get(list_faults).post(add_fault).delete(delete_faults),
        )
        .route("/_standin/cases", get(list_cases))
        .route("/_standin/cases/{case_id}/resolve", post(resolve_case))
        .route("/_standin/cases/{case_id}/status", post(set_case_status))
        .route("/_standin/calls", get(list_calls))
        .route(
            "/_standin/severities",
            get(get_severities).put(put_severities),
        )
        .route("/_standin/reset", post(reset))
        .with_state(shared)
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn page_token(offset: usize) -> String {
    format!("standin-page-{offset}")
}

fn parse_page_token(token: Option<&str>) -> Result<usize, ApiError> {
    match token {
        None => Ok(0),
        Some(t) => t
            .strip_prefix("standin-page-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::validation(format!("Invalid pagination token: {t}"))),
    }
}

fn json_response(status: StatusCode, request_id: &str, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    resp
}

fn error_response(err: &ApiError, request_id: &str) -> Response {
    let body = json!({ "__type": err.code, "message": err.message });
    let mut resp = json_response(err.status, request_id, &body);
    resp.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(err.code));
    resp
}

/// Every Support operation: `POST /` with `X-Amz-Target`.
async fn support(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let op = target.strip_prefix(TARGET_PREFIX).unwrap_or("").to_string();

    let known = OPERATIONS.contains(&op.as_str());
    // Which credentials signed the call (SigV4: `Credential=<access key>/<date>/...`).
    let access_key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or("")
        .to_string();
    let (request_id, fault) = {
        let mut inner = lock(&shared);
        inner.requests += 1;
        inner.signed_by.push((op.clone(), access_key));
        let request_id = format!("00000000-0000-4000-8000-{:012x}", inner.requests);
        let counted = match (op.is_empty(), target.is_empty()) {
            (false, _) => op.as_str(),
            (true, false) => target.as_str(),
            (true, true) => "(no X-Amz-Target)",
        };
        *inner.calls.entry(counted.to_string()).or_insert(0) += 1;
        // Unknown operations leave the pending faults alone.
        let fault = if known { inner.take_fault(&op) } else { None };
        (request_id, fault)
    };

    if !known {
        let err = ApiError::new(
            "UnknownOperationException",
            format!("The Support stand-in does not answer X-Amz-Target {target:?}"),
        );
        return error_response(&err, &request_id);
    }

    match fault {
        // Like the real service, a slow answer is still carried out when the caller has
        // stopped waiting: the work runs in its own task, not in the connection's.
        Some(Fault::Delay(d)) => {
            let done = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                answer(&shared, &op, &body, &request_id)
            });
            return done
                .await
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        Some(Fault::Garbled) => {
            let _carried_out = answer(&shared, &op, &body, &request_id);
            return (StatusCode::OK, "<html>502 Bad Gateway</html>").into_response();
        }
        Some(fault) => {
            if let Some(err) = fault.error() {
                return error_response(&err, &request_id);
            }
        }
        None => {}
    }
    answer(&shared, &op, &body, &request_id)
}

/// Carries out one known operation.
fn answer(shared: &Shared, op: &str, body: &[u8], request_id: &str) -> Response {
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                let err = ApiError::new("SerializationException", "Expected a JSON object");
                return error_response(&err, request_id);
            }
            Err(e) => {
                let err = ApiError::new("SerializationException", e.to_string());
                return error_response(&err, request_id);
            }
        }
    };

    let result = {
        let mut inner = lock(shared);
        let input = Input(&input);
        match op {
            "CreateCase" => create_case(&mut inner, input),
            "AddAttachmentsToSet" => add_attachments(&mut inner, input),
            "DescribeCases" => describe_cases(&inner, input),
            "DescribeCommunications" => describe_communications(&inner, input),
            "DescribeAttachment" => describe_attachment(&inner, input),
            "AddCommunicationToCase" => add_communication(&mut inner, input),
            "ResolveCase" => resolve_case_op(&mut inner, input),
            "DescribeSeverityLevels" => describe_severity_levels(&inner, input),
            "DescribeServices" => describe_services(input),
            _ => unreachable!("checked against OPERATIONS"),
        }
    };
    match result {
        Ok(v) => json_response(StatusCode::OK, request_id, &v),
        Err(err) => error_response(&err, request_id),
    }
}

/// Typed access to an operation's input members.
#[derive(Clone, Copy)]
struct Input<'a>(&'a Map<String, Value>);

fn type_error(name: &str, expected: &str) -> ApiError {
    ApiError::new(
        "SerializationException",
        format!("Member {name} must be {expected}"),
    )
}

impl Input<'_> {
    fn str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(type_error(name, "a string")),
        }
    }

    fn required_str(&self, name: &str) -> Result<String, ApiError> {
        self.str(name)?.ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value null at '{name}' failed to satisfy \
                 constraint: Member must not be null"
            ))
        })
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(type_error(name, "a boolean")),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| type_error(name, "an integer")),
        }
    }

    fn str_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| type_error(name, "a list of strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(type_error(name, "a list of strings")),
        }
    }

    fn dry_run(&self) -> Result<(), ApiError> {
        if self.bool("dryRun")? == Some(true) {
            return Err(ApiError::new(
                "DryRunOperationException",
                "The request would have succeeded, but the dryRun parameter was set.",
            ));
        }
        Ok(())
    }
}

fn check_body(name: &str, body: &str) -> Result<(), ApiError> {
    let n = body.chars().count();
    if n == 0 || n > MAX_BODY_CHARS {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{name}' failed to satisfy constraint: \
             Member must have length between 1 and {MAX_BODY_CHARS} (it has {n})"
        )));
    }
    Ok(())
}

fn check_cc(cc: &[String]) -> Result<(), ApiError> {
    if cc.len() > MAX_CC {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'ccEmailAddresses' failed to satisfy \
             constraint: Member must have length less than or equal to {MAX_CC}"
        )));
    }
    Ok(())
}

fn parse_time(name: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(s) = value else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
        let t = d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        return Ok(Some(t));
    }
    Err(ApiError::validation(format!(
        "Invalid {name}: {s:?} is not an ISO 8601 date or time"
    )))
}

fn page_size(input: Input<'_>) -> Result<usize, ApiError> {
    match input.int("maxResults")? {
        None => Ok(100),
        Some(n @ 10..=100) => Ok(n as usize),
        Some(n) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy \
             constraint: Member must have value between 10 and 100"
        ))),
    }
}

fn create_case(inner: &mut Inner, input: Input<'_>) -> Result<Value, ApiError> {
    let subject = input.required_str("subject")?;
    let body = input.required_str("communicationBody")?;
    check_body("communicationBody", &body)?;
    if subject.is_empty() {
        return Err(ApiError::validation("subject must not be empty"));
    }
    let severity = input
        .str("severityCode")?
        .unwrap_or_else(|| "low".to_string());
    if !inner.severities.contains(&severity) {
        return Err(ApiError::validation(format!(
            "Invalid severity code {severity:?}: this account may use {:?}",
            inner.severities
        )));
    }
    let service_code = input.str("serviceCode")?;
    let category_code = input.str("categoryCode")?;
    if let Some(code) = &service_code {
        let Some((_, _, categories)) = SERVICES.iter().find(|(c, _, _)| c == code) else {
            return Err(ApiError::validation(format!(
                "Invalid service code {code:?}"
            )));
        };
        if let Some(cat) = &category_code
            && !categories.iter().any(|(c, _)| c == cat)
        {
            return Err(ApiError::validation(format!(
                "Invalid category code {cat:?} for service {code:?}"
            )));
        }
    }
    let cc = input.str_list("ccEmailAddresses")?.unwrap_or_default();
    check_cc(&cc)?;
    let language = input.str("language")?.unwrap_or_else(|| "en".to_string());
    if !LANGUAGES.contains(&language.as_str()) {
        return Err(ApiError::validation(format!(
            "Invalid language {language:?}: one of {LANGUAGES:?}"
        )));
    }
    let issue_type = input
        .str("issueType")?
        .unwrap_or_else(|| "technical".to_string());
    if !ISSUE_TYPES.contains(&issue_type.as_str()) {
        return Err(ApiError::validation(format!(
            "Invalid issueType {issue_type:?}: one of {ISSUE_TYPES:?}"
        )));
    }
    let attachments = match input.str("attachmentSetId")? {
        Some(id) => match inner.attachment_sets.get(&id) {
            Some(set) => set.clone(),
            None => {
                return Err(ApiError::new(
                    "AttachmentSetIdNotFound",
                    format!("No attachment set {id}"),
                ));
            }
        },
        None => Vec::new(),
    };
    input.dry_run()?;

    inner.created += 1;
    let n = inner.created;
    let now = Utc::now();
    let case_id = format!("case-{ACCOUNT_ID}-muen-{}-{n:016x}", now.format("%Y"));
    inner.cases.push(Case {
        case_id: case_id.clone(),
        display_id: format!("{}", 170_000_000_000u64 + n),
        subject,
        status: "opened".to_string(),
        service_code,
        category_code,
        severity_code: severity,
        submitted_by: SUBMITTED_BY.to_string(),
        time_created: now,
        cc_email_addresses: cc,
        language,
        issue_type,
        communications: vec![Communication {
            body,
            submitted_by: SUBMITTED_BY.to_string(),
            time_created: now,
        }],
        attachments,
    });
    Ok(json!({ "caseId": case_id }))
}

/// AddAttachmentsToSet: at most 3 attachments, 5 MB each, `data` base64 (the JSON form of
/// a blob); answers the set's id.
fn add_attachments(inner: &mut Inner, input: Input<'_>) -> Result<Value, ApiError> {
    let list = match input.0.get("attachments") {
        Some(Value::Array(a)) => a.clone(),
        _ => return Err(ApiError::validation("attachments must be a list")),
    };
    if list.is_empty() || list.len() > 3 {
        return Err(ApiError::new(
            "AttachmentLimitExceeded",
            "An attachment set holds 1 to 3 attachments",
        ));
    }
    let mut set = Vec::new();
    for a in list {
        let name = a["fileName"].as_str().unwrap_or_default().to_owned();
        let data = BASE64
            .decode(a["data"].as_str().unwrap_or_default())
            .map_err(|_| ApiError::validation("attachment data is not base64"))?;
        if data.len() > 5 * 1024 * 1024 {
            return Err(ApiError::new(
                "AttachmentLimitExceeded",
                "5 MB per attachment",
            ));
        }
        set.push((name, data));
    }
    let id = format!("attachment-set-{}", inner.attachment_sets.len() + 1);
    inner.attachment_sets.insert(id.clone(), set);
    Ok(json!({ "attachmentSetId": id, "expiryTime": iso(Utc::now() + chrono::Duration::hours(1)) }))
}

fn describe_cases(inner: &Inner, input: Input<'_>) -> Result<Value, ApiError> {
    let ids = input.str_list("caseIdList")?;
    if let Some(ids) = &ids {
        if ids.len() > 100 {
            return Err(ApiError::validation(
                "1 validation error detected: Value at 'caseIdList' failed to satisfy \
                 constraint: Member must have length less than or equal to 100",
            ));
        }
        if let Some(missing) = ids
            .iter()
            .find(|id| !inner.cases.iter().any(|c| &c.case_id == *id))
        {
            return Err(ApiError::case_not_found(missing));
        }
    }
    let display_id = input.str("displayId")?;
    let after = parse_time("afterTime", input.str("afterTime")?)?;
    let before = parse_time("beforeTime", input.str("beforeTime")?)?;
    let include_resolved = input.bool("includeResolvedCases")?.unwrap_or(false);
    let include_comms = input.bool("includeCommunications")?.unwrap_or(true);
    let max = page_size(input)?;
    let offset = parse_page_token(input.str("nextToken")?.as_deref())?;
    if let Some(lang) = input.str("language")?
        && !LANGUAGES.contains(&lang.as_str())
    {
        return Err(ApiError::validation(format!("Invalid language {lang:?}")));
    }
    input.dry_run()?;

    let matching: Vec<&Case> = inner
        .cases
        .iter()
        .filter(|c| ids.as_ref().is_none_or(|ids| ids.contains(&c.case_id)))
        .filter(|c| display_id.as_ref().is_none_or(|d| &c.display_id == d))
        .filter(|c| after.is_none_or(|t| c.time_created >= t))
        .filter(|c| before.is_none_or(|t| c.time_created < t))
        .filter(|c| include_resolved || c.status != "resolved")
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(max)
        .map(|c| c.details(include_comms))
        .collect();
    let mut out = json!({ "cases": page });
    if offset + max < matching.len() {
        out["nextToken"] = json!(page_token(offset + max));
    }
    Ok(out)
}

fn describe_communications(inner: &Inner, input: Input<'_>) -> Result<Value, ApiError> {
    let case_id = input.required_str("caseId")?;
    let after = parse_time("afterTime", input.str("afterTime")?)?;
    let before = parse_time("beforeTime", input.str("beforeTime")?)?;
    let max = page_size(input)?;
    let offset = parse_page_token(input.str("nextToken")?.as_deref())?;
    input.dry_run()?;
    let case = inner
        .cases
        .iter()
        .find(|c| c.case_id == case_id)
        .ok_or_else(|| ApiError::case_not_found(&case_id))?;
    let matching: Vec<&Communication> = case
        .communications
        .iter()
        .rev()
        .filter(|c| after.is_none_or(|t| c.time_created >= t))
        .filter(|c| before.is_none_or(|t| c.time_created < t))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(max)
        .map(|c| case.communication_json(c))
        .collect();
    let mut out = json!({ "communications": page });
    if offset + max < matching.len() {
        out["nextToken"] = json!(page_token(offset + max));
    }
    Ok(out)
}

/// DescribeAttachment: a file of a case's opening set, by the id its communication names.
fn describe_attachment(inner: &Inner, input: Input<'_>) -> Result<Value, ApiError> {
    let id = input.required_str("attachmentId")?;
    let found = id.rsplit_once('#').and_then(|(case_id, i)| {
        let case = inner.cases.iter().find(|c| c.case_id == case_id)?;
        case.attachments.get(i.parse::<usize>().ok()?)
    });
    match found {
        Some((name, data)) => {
            Ok(json!({"attachment": {"fileName": name, "data": BASE64.encode(data)}}))
        }
        None => Err(ApiError::new(
            "AttachmentIdNotFound",
            format!("No attachment {id}"),
        )),
    }
}

fn add_communication(inner: &mut Inner, input: Input<'_>) -> Result<Value, ApiError> {
    let case_id = input.str("caseId")?;
    let body = input.required_str("communicationBody")?;
    check_body("communicationBody", &body)?;
    let cc = input.str_list("ccEmailAddresses")?.unwrap_or_default();
    check_cc(&cc)?;
    input.dry_run()?;
    // Without a caseId the real service adds to the most recent case; the stand-in asks
    // for one.
    let case_id = case_id.ok_or_else(|| ApiError::validation("caseId is required"))?;
    let case = match inner.case_mut(&case_id) {
        Some(c) if c.status != "resolved" => c,
        _ => return Err(ApiError::case_not_found(&case_id)),
    };
    for addr in cc {
        if !case.cc_email_addresses.contains(&addr) {
            case.cc_email_addresses.push(addr);
        }
    }
    case.communications.push(Communication {
        body,
        submitted_by: SUBMITTED_BY.to_string(),
        time_created: Utc::now(),
    });
    Ok(json!({ "result": true }))
}

fn resolve_case_op(inner: &mut Inner, input: Input<'_>) -> Result<Value, ApiError> {
    let case_id = input.required_str("caseId")?;
    input.dry_run()?;
    let case = inner
        .case_mut(&case_id)
        .ok_or_else(|| ApiError::case_not_found(&case_id))?;
    let initial = std::mem::replace(&mut case.status, "resolved".to_string());
    Ok(json!({ "initialCaseStatus": initial, "finalCaseStatus": "resolved" }))
}

fn severity_name(code: &str) -> String {
    match code {
        "low" => "Low".to_string(),
        "normal" => "Normal".to_string(),
        "high" => "High".to_string(),
        "urgent" => "Urgent".to_string(),
        "critical" => "Critical".to_string(),
        other => other.to_string(),
    }
}

fn describe_severity_levels(inner: &Inner, input: Input<'_>) -> Result<Value, ApiError> {
    input.dry_run()?;
    let levels: Vec<Value> = inner
        .severities
        .iter()
        .map(|c| json!({ "code": c, "name": severity_name(c) }))
        .collect();
    Ok(json!({ "severityLevels": levels }))
}

fn describe_services(input: Input<'_>) -> Result<Value, ApiError> {
    let wanted = input.str_list("serviceCodeList")?;
    input.dry_run()?;
    let services: Vec<Value> = SERVICES
        .iter()
        .filter(|(code, _, _)| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == code)))
        .map(|(code, name, cats)| {
            let categories: Vec<Value> = cats
                .iter()
                .map(|(c, n)| json!({ "code": c, "name": n }))
                .collect();
            json!({ "code": code, "name": name, "categories": categories })
        })
        .collect();
    Ok(json!({ "services": services }))
}

// ---------------------------------------------------------------------------------------
// Control over HTTP

fn control_json(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn control_error(message: impl Into<String>) -> Response {
    control_json(StatusCode::BAD_REQUEST, json!({ "error": message.into() }))
}

async fn add_fault(State(shared): State<Shared>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return control_error(format!("body is not JSON: {e}")),
    };
    let Some(operation) = v.get("operation").and_then(Value::as_str) else {
        return control_error("operation (an operation name or \"*\") is required");
    };
    let fault = match v.get("fault").map(Fault::from_json) {
        Some(Ok(f)) => f,
        Some(Err(e)) => return control_error(e),
        None => return control_error("fault is required"),
    };
    let times = match v.get("times") {
        None => 1,
        Some(t) => match t.as_u64() {
            Some(t) => t as usize,
            None => return control_error("times must be a non-negative integer"),
        },
    };
    let mut inner = lock(&shared);
    if times > 0 {
        inner.faults.push_back(FaultEntry {
            operation: operation.to_string(),
            fault,
            remaining: times,
        });
    }
    control_json(StatusCode::OK, json!({ "pending": inner.faults.len() }))
}

async fn list_faults(State(shared): State<Shared>) -> Response {
    let faults: Vec<Value> = lock(&shared)
        .faults
        .iter()
        .map(|f| json!({ "operation": f.operation, "fault": f.fault.to_json(), "times": f.remaining }))
        .collect();
    control_json(StatusCode::OK, Value::Array(faults))
}

async fn delete_faults(State(shared): State<Shared>) -> Response {
    lock(&shared).faults.clear();
    control_json(StatusCode::OK, json!({ "pending": 0 }))
}

async fn list_cases(State(shared): State<Shared>) -> Response {
    let cases: Vec<Value> = lock(&shared).cases.iter().map(Case::snapshot).collect();
    control_json(StatusCode::OK, Value::Array(cases))
}

fn set_status_over_http(shared: &Shared, case_id: &str, status: &str) -> Response {
    if !CASE_STATUSES.contains(&status) {
        return control_error(format!("status must be one of {CASE_STATUSES:?}"));
    }
    let mut inner = lock(shared);
    match inner.case_mut(case_id) {
        Some(case) => {
            case.status = status.to_string();
            control_json(StatusCode::OK, case.snapshot())
        }
        None => control_json(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no case {case_id}") }),
        ),
    }
}

async fn resolve_case(State(shared): State<Shared>, Path(case_id): Path<String>) -> Response {
    set_status_over_http(&shared, &case_id, "resolved")
}

async fn set_case_status(
    State(shared): State<Shared>,
    Path(case_id): Path<String>,
    body: Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match v.get("status").and_then(Value::as_str) {
        Some(status) => set_status_over_http(&shared, &case_id, status),
        None => control_error("body must be {\"status\": \"...\"}"),
    }
}

async fn list_calls(State(shared): State<Shared>) -> Response {
    let calls = lock(&shared).calls.clone();
    control_json(StatusCode::OK, json!(calls))
}

async fn get_severities(State(shared): State<Shared>) -> Response {
    let severities = lock(&shared).severities.clone();
    control_json(StatusCode::OK, json!(severities))
}

async fn put_severities(State(shared): State<Shared>, body: Bytes) -> Response {
    match serde_json::from_slice::<Vec<String>>(&body) {
        Ok(codes) => {
            lock(&shared).severities = codes.clone();
            control_json(StatusCode::OK, json!(codes))
        }
        Err(e) => control_error(format!("body must be a list of severity codes: {e}")),
    }
}

async fn reset(State(shared): State<Shared>) -> Response {
    *lock(&shared) = Inner::default();
    control_json(StatusCode::OK, json!({ "reset": true }))
}
