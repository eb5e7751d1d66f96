//! The AWS Support desk: CreateCase, AddCommunicationToCase, ResolveCase and DescribeCases
//! through the official SDK.
//!
//! Before adding to a case it asks DescribeCases whether support already resolved it (then
//! a new case is opened instead), and it lowers a severity the account's plan does not allow
//! (DescribeSeverityLevels, asked once) rather than have the whole case refused.

mod history;

use crate::domain::case_event::account_of_case;
use async_trait::async_trait;
use aws_sdk_support::Client;
use aws_sdk_support::config::http::HttpResponse;
use aws_sdk_support::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::OnceCell;
use tracing::warn;

use crate::backend::aws::describe;
use crate::domain::settings::Severity;
use crate::ports::desk::{
    CaseBody, CaseInfo, CaseMessage, Communication, DeskError, NewCase, ServiceCatalog, SupportDesk,
};
use crate::ports::graph::Attachment;
use std::sync::Arc;

pub struct AwsSupportDesk {
    client: Client,
    /// The severity codes this account's plan allows, learnt on first use.
    severities: OnceCell<Vec<Severity>>,
    /// The service and category codes (DescribeServices), learnt on first use.
    services: OnceCell<Arc<ServiceCatalog>>,
}

/// Maps an SDK error to what the case logic can act on.
fn desk_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    e: SdkError<E, HttpResponse>,
) -> DeskError {
    let text = format!("{op}: {}", describe(&e));
    match &e {
        // A 2xx the SDK could not read (a proxy's page, a cut body) is an "error" to it, but
        // the request was carried out as far as anyone knows.
        SdkError::ServiceError(service) if service.raw().status().is_success() => {
            DeskError::Uncertain(text)
        }
        SdkError::ServiceError(service) => {
            answered(e.code(), service.raw().status().is_server_error(), text)
        }
        // Timeouts, lost connections, unreadable answers: worth a retry, but the request
        // may have been carried out.
        _ => DeskError::Uncertain(text),
    }
}

/// What an error answer means. SubscriptionRequiredException is not in the API model, so
/// it is matched by its code.
fn answered(code: Option<&str>, server_error: bool, text: String) -> DeskError {
    match code {
        Some("SubscriptionRequiredException") => DeskError::SubscriptionRequired(text),
        Some("CaseIdNotFound") => DeskError::CaseNotFound(text),
        Some(
            "CaseCreationLimitExceeded"
            | "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException",
        ) => DeskError::Unavailable(text),
        // The service failed while handling the request: it may have been done.
        _ if server_error => DeskError::Uncertain(text),
        _ => DeskError::Rejected(text),
    }
}

impl AwsSupportDesk {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            severities: OnceCell::new(),
            services: OnceCell::new(),
        }
    }

    /// The severities the plan allows, lowest first.
    pub async fn allowed_severities(&self) -> Result<Vec<Severity>, DeskError> {
        self.severities
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .describe_severity_levels()
                    .language("en")
                    .send()
                    .await
                    .map_err(|e| desk_error("DescribeSeverityLevels", e))?;
                let mut codes: Vec<Severity> = out
                    .severity_levels()
                    .iter()
                    .filter_map(|l| l.code()?.parse().ok())
                    .collect();
                codes.sort();
                Ok(codes)
            })
            .await
            .cloned()
    }

    /// AddAttachmentsToSet: the id of a new set holding these files.
    async fn attachment_set(
        &self,
        files: &[crate::ports::graph::Attachment],
    ) -> Result<String, super::AwsError> {
        let attachments = files
            .iter()
            .take(3)
            .filter(|f| f.data.len() <= 5 * 1024 * 1024)
            .map(|f| {
                aws_sdk_support::types::Attachment::builder()
                    .file_name(&f.file_name)
                    .data(aws_sdk_support::primitives::Blob::new(f.data.clone()))
                    .build()
            })
            .collect();
        let out = self
            .client
            .add_attachments_to_set()
            .set_attachments(Some(attachments))
            .send()
            .await
            .map_err(|e| super::AwsError::call("AddAttachmentsToSet", e))?;
        out.attachment_set_id().map(str::to_owned).ok_or_else(|| {
            super::AwsError::Answer("AddAttachmentsToSet answered without an id".into())
        })
    }

    async fn describe(&self, case_id: &str) -> Result<Option<CaseInfo>, DeskError> {
        Ok(self
            .describe_with(case_id, None)
            .await?
            .map(|(info, _)| info))
    }

    /// The case, and whether one of its recent communications carries `reference`.
    async fn describe_with(
        &self,
        case_id: &str,
        reference: Option<&str>,
    ) -> Result<Option<(CaseInfo, bool)>, DeskError> {
        let result = self
            .client
            .describe_cases()
            .case_id_list(case_id)
            .include_resolved_cases(true)
            .include_communications(reference.is_some())
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                return match desk_error("DescribeCases", e) {
                    DeskError::CaseNotFound(_) => Ok(None),
                    other => Err(other),
                };
            }
        };
        Ok(out
            .cases()
            .iter()
            .find(|c| c.case_id() == Some(case_id))
            .map(|c| {
                let status = c.status().unwrap_or("unknown").to_owned();
                let carries = reference.is_some_and(|r| {
                    c.recent_communications()
                        .map(|rc| rc.communications())
                        .unwrap_or_default()
                        .iter()
                        .any(|m| m.body().is_some_and(|b| b.contains(r)))
                });
                let info = CaseInfo {
                    case_id: case_id.to_owned(),
                    display_id: c.display_id().map(str::to_owned),
                    subject: c.subject().unwrap_or_default().to_owned(),
                    resolved: status == "resolved",
                    status,
                    severity_code: c.severity_code().map(str::to_owned),
                };
                (info, carries)
            }))
    }
}

/// For the calls that must never be sent twice blindly: one attempt, no SDK retry. A
/// timeout or 5xx is then an uncertain outcome, settled by looking the case up by its
/// reference (the case logic does) before anything is sent again.
fn once() -> aws_sdk_support::config::Builder {
    aws_sdk_support::config::Builder::default()
        .retry_config(aws_sdk_support::config::retry::RetryConfig::disabled())
}

/// The highest allowed severity not above the wanted one (or the lowest allowed).
fn fit_severity(wanted: Severity, allowed: &[Severity]) -> Severity {
    if allowed.is_empty() || allowed.contains(&wanted) {
        return wanted;
    }
    allowed
        .iter()
        .rev()
        .find(|s| **s <= wanted)
        .or(allowed.first())
        .copied()
        .unwrap_or(wanted)
}

#[async_trait]
impl SupportDesk for AwsSupportDesk {
    async fn communications(&self, case_id: &str) -> Result<Vec<CaseMessage>, DeskError> {
        self.history(case_id).await
    }
    async fn graph(&self, case_id: &str) -> Result<Option<Attachment>, DeskError> {
        self.opening_graph(case_id).await
    }
    async fn latest_reply(&self, case_id: &str) -> Result<Option<String>, DeskError> {
        let out = self
            .client
            .describe_communications()
            .case_id(case_id)
            .max_results(10)
            .send()
            .await
            .map_err(|e| desk_error("DescribeCommunications", e))?;
        // Newest first; AWS's own are submitted by "Amazon Web Services".
        Ok(out
            .communications()
            .iter()
            .find(|c| {
                c.submitted_by()
                    .is_some_and(|s| s.contains("Amazon Web Services"))
            })
            .and_then(|c| c.body().map(str::to_owned)))
    }

    async fn services(&self) -> Result<Option<Arc<ServiceCatalog>>, DeskError> {
        let catalog = self
            .services
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .describe_services()
                    .language("en")
                    .send()
                    .await
                    .map_err(|e| desk_error("DescribeServices", e))?;
                Ok::<_, DeskError>(Arc::new(ServiceCatalog::new(
                    out.services().iter().filter_map(|s| {
                        let categories = s
                            .categories()
                            .iter()
                            .filter_map(|c| c.code().map(str::to_owned))
                            .collect();
                        Some((s.code()?.to_owned(), categories))
                    }),
                )))
            })
            .await?;
        // An empty answer would make every code look unknown: no check then.
        Ok((!catalog.is_empty()).then(|| catalog.clone()))
    }

    async fn create_case(&self, case: &NewCase) -> Result<String, DeskError> {
        let allowed = self.allowed_severities().await?;
        let severity = fit_severity(case.severity_code, &allowed);
        let mut body = case.communication_body.clone();
        if severity != case.severity_code {
            warn!(
                wanted = case.severity_code.as_str(),
                used = severity.as_str(),
                "the support plan does not allow the configured severity; lowered"
            );
            // Said first, so truncation of a long body cannot hide it.
            body = CaseBody::new(format!(
                "Note: severity lowered from {} to {}, the highest this account's support plan allows.\n\n{body}",
                case.severity_code, severity
            ));
        }
        // The graph goes first into an attachment set (at most 3 files of 5 MB; one here);
        // a set that cannot be made costs the picture, never the case, which says why.
        let mut attachment_set = None;
        if !case.attachments.is_empty() {
            match self.attachment_set(&case.attachments).await {
                Ok(id) => attachment_set = Some(id),
                Err(e) => {
                    warn!(error = %e, "could not attach the graph; the case says so");
                    body = CaseBody::new(format!(
                        "{body}\n\nNote: the graph could not be attached ({}).",
                        e.to_string().chars().take(200).collect::<String>()
                    ));
                }
            }
        }
        // Never sent twice blindly: an uncertain outcome is settled by looking the case up
        // by its reference (the case logic does) before anything is sent again.
        let created = self
            .client
            .create_case()
            .subject(&case.subject)
            .service_code(&case.service_code)
            .severity_code(severity.as_str())
            .category_code(&case.category_code)
            .communication_body(body.as_str())
            .set_cc_email_addresses((!case.cc_email_addresses.is_empty()).then(|| {
                case.cc_email_addresses
                    .iter()
                    .map(|e| e.as_str().to_owned())
                    .collect()
            }))
            .language(&case.language)
            .issue_type(&case.issue_type)
            .set_attachment_set_id(attachment_set)
            .customize()
            .config_override(once())
            .send()
            .await
            .map_err(|e| desk_error("CreateCase", e))?;
        created
            .case_id()
            .map(str::to_owned)
            .ok_or_else(|| DeskError::Unavailable("CreateCase answered without a caseId".into()))
    }

    async fn add_communication(
        &self,
        case_id: &str,
        comm: &Communication,
    ) -> Result<(), DeskError> {
        // A case support already resolved cannot take the news: the caller opens a new one.
        // The same call says whether an earlier attempt whose answer was lost already added
        // this communication (its reference line): then it is not added twice.
        let reference = crate::ports::desk::communication_reference(&comm.communication_body);
        match self.describe_with(case_id, reference).await? {
            Some((_, true)) => return Ok(()),
            Some((info, false)) if !info.resolved => {}
            _ => return Err(DeskError::CaseNotFound(case_id.to_owned())),
        }
        self.client
            .add_communication_to_case()
            .case_id(case_id)
            .communication_body(comm.communication_body.as_str())
            .set_cc_email_addresses((!comm.cc_email_addresses.is_empty()).then(|| {
                comm.cc_email_addresses
                    .iter()
                    .map(|e| e.as_str().to_owned())
                    .collect()
            }))
            .customize()
            .config_override(once())
            .send()
            .await
            .map_err(|e| desk_error("AddCommunicationToCase", e))?;
        Ok(())
    }

    async fn resolve_case(&self, case_id: &str) -> Result<(), DeskError> {
        self.client
            .resolve_case()
            .case_id(case_id)
            .send()
            .await
            .map_err(|e| desk_error("ResolveCase", e))?;
        Ok(())
    }

    async fn case_info(&self, case_id: &str) -> Result<Option<CaseInfo>, DeskError> {
        self.describe(case_id).await
    }

    async fn find_case(
        &self,
        reference: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<String>, DeskError> {
        // A little slack for clock skew between this instance and AWS.
        let after = (since - chrono::Duration::minutes(5))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut pages = self
            .client
            .describe_cases()
            .after_time(after)
            .include_resolved_cases(true)
            .include_communications(true)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| desk_error("DescribeCases", e))?;
            for case in page.cases() {
                let carries = case
                    .recent_communications()
                    .map(|r| r.communications())
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.body().is_some_and(|b| b.contains(reference)));
                if carries {
                    return Ok(case.case_id().map(str::to_owned));
                }
            }
        }
        Ok(None)
    }
}

/// Cases opened where the alarm came from: one desk per account of `ACCOUNT_ROLES` (its
/// client signs with the role's credentials, assumed with STS and kept until they expire),
/// and the service's own desk for every other account. A case's later calls go to the desk
/// of the account its id names (`case-<account>-...`).
pub struct AccountDesks {
    pub own: Arc<AwsSupportDesk>,
    pub by_account: std::collections::BTreeMap<String, Arc<AwsSupportDesk>>,
}

impl AccountDesks {
    fn for_account(&self, account: Option<&str>) -> &AwsSupportDesk {
        account
            .and_then(|a| self.by_account.get(a))
            .map_or(&*self.own, |d| &**d)
    }

    fn for_case(&self, case_id: &str) -> &AwsSupportDesk {
        self.for_account(account_of_case(case_id))
    }
}

#[async_trait]
impl SupportDesk for AccountDesks {
    async fn services(&self) -> Result<Option<Arc<ServiceCatalog>>, DeskError> {
        self.own.services().await
    }
    async fn latest_reply(&self, case_id: &str) -> Result<Option<String>, DeskError> {
        self.for_case(case_id).latest_reply(case_id).await
    }
    async fn communications(&self, case_id: &str) -> Result<Vec<CaseMessage>, DeskError> {
        self.for_case(case_id).communications(case_id).await
    }
    async fn graph(&self, case_id: &str) -> Result<Option<Attachment>, DeskError> {
        self.for_case(case_id).graph(case_id).await
    }
    async fn create_case(&self, case: &NewCase) -> Result<String, DeskError> {
        let desk = match &case.account_role {
            Some(_) => self.for_account(case.account.as_deref()),
            None => &self.own,
        };
        desk.create_case(case).await
    }
    async fn add_communication(
        &self,
        case_id: &str,
        comm: &Communication,
    ) -> Result<(), DeskError> {
        self.for_case(case_id)
            .add_communication(case_id, comm)
            .await
    }
    async fn resolve_case(&self, case_id: &str) -> Result<(), DeskError> {
        self.for_case(case_id).resolve_case(case_id).await
    }
    async fn case_info(&self, case_id: &str) -> Result<Option<CaseInfo>, DeskError> {
        self.for_case(case_id).case_info(case_id).await
    }
    async fn find_case(
        &self,
        reference: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<String>, DeskError> {
        if let Some(found) = self.own.find_case(reference, since).await? {
            return Ok(Some(found));
        }
        for desk in self.by_account.values() {
            if let Some(found) = desk.find_case(reference, since).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Severity::*;

    #[test]
    fn a_case_id_names_its_account() {
        assert_eq!(
            account_of_case("case-111122223333-muen-2022-7118885805350839"),
            Some("111122223333")
        );
        assert_eq!(account_of_case("dry-run-1"), None);
        assert_eq!(account_of_case("case-12-x"), None);
    }

    #[test]
    fn severities_are_lowered_to_what_the_plan_allows() {
        assert_eq!(fit_severity(Critical, &[Low, Normal, High, Urgent]), Urgent);
        assert_eq!(fit_severity(Urgent, &[Low, Normal]), Normal);
        assert_eq!(fit_severity(High, &[Low, Normal, High]), High);
        assert_eq!(
            fit_severity(Low, &[Normal, High]),
            Normal,
            "nothing lower: the lowest allowed"
        );
        assert_eq!(
            fit_severity(Urgent, &[]),
            Urgent,
            "unknown plan: as configured"
        );
    }
}
