//! A case's story as AWS Support keeps it, for the console's case view: its
//! communications (DescribeCommunications, oldest first) and the graph attached when it was
//! opened (the opening communication's attachment set, read back by DescribeAttachment).

use chrono::{DateTime, Utc};

use super::{AwsSupportDesk, desk_error};
use crate::ports::desk::{CaseMessage, DeskError};
use crate::ports::graph::Attachment;

/// Communications read at most (DescribeCommunications pages of up to 100).
const MOST: usize = 200;

fn when(text: Option<&str>) -> DateTime<Utc> {
    // AWS writes `2026-12-07T03:00:00.123Z`; a time it did not give sorts first.
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

impl AwsSupportDesk {
    /// Every communication (up to [`MOST`]), with the attachment ids each carries.
    async fn described(
        &self,
        case_id: &str,
    ) -> Result<Vec<(CaseMessage, Vec<(String, String)>)>, DeskError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_communications()
                .case_id(case_id)
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| desk_error("DescribeCommunications", e))?;
            for c in page.communications() {
                let files = c
                    .attachment_set()
                    .iter()
                    .filter_map(|a| {
                        Some((a.attachment_id()?.to_owned(), a.file_name()?.to_owned()))
                    })
                    .collect();
                let message = CaseMessage {
                    at: when(c.time_created()),
                    by: c.submitted_by().unwrap_or("-").to_owned(),
                    body: c.body().unwrap_or_default().to_owned(),
                };
                out.push((message, files));
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() || out.len() >= MOST {
                break;
            }
        }
        // AWS answers newest first.
        out.sort_by_key(|(m, _)| m.at);
        Ok(out)
    }

    pub(super) async fn history(&self, case_id: &str) -> Result<Vec<CaseMessage>, DeskError> {
        Ok(self
            .described(case_id)
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// The first PNG attached to the case's earliest communication (its opening).
    pub(super) async fn opening_graph(
        &self,
        case_id: &str,
    ) -> Result<Option<Attachment>, DeskError> {
        let Some(id) = self
            .described(case_id)
            .await?
            .into_iter()
            .flat_map(|(_, files)| files)
            .find(|(_, name)| name.ends_with(".png"))
            .map(|(id, _)| id)
        else {
            return Ok(None);
        };
        let out = self
            .client
            .describe_attachment()
            .attachment_id(id)
            .send()
            .await
            .map_err(|e| desk_error("DescribeAttachment", e))?;
        Ok(out.attachment().and_then(|a| {
            Some(Attachment {
                file_name: a.file_name()?.to_owned(),
                data: a.data()?.as_ref().to_vec(),
            })
        }))
    }
}
