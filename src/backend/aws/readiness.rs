//! What `check --alarms` asks AWS (issue 29): every alarm of the account in the region,
//! metric and composite (DescribeAlarms), and, for each topic their actions name, whether a
//! subscription delivers to this service (ListSubscriptionsByTopic). Only AWS can say what
//! is configured there; the verdict is `case::readiness`'s.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::AlarmType;

use super::{AwsClients, AwsError};
use crate::case::readiness::{AlarmDefinition, Endpoint, Subscribed};

/// Pages read at most (100 alarms each; 100 subscriptions each per topic). More is refused
/// as an error rather than judged on a part: a check that silently read only some alarms
/// would call an account ready that is not.
const MOST_PAGES: usize = 200;

fn too_many(what: &str) -> AwsError {
    AwsError::Answer(format!(
        "{what} still had more after {MOST_PAGES} pages; not judged on a part"
    ))
}

/// Every alarm, metric and composite, with its actions and (composite) rule.
pub async fn alarms(clients: &AwsClients) -> Result<Vec<AlarmDefinition>, AwsError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MOST_PAGES {
        let page = clients
            .cloudwatch
            .describe_alarms()
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .max_records(100)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeAlarms", e))?;
        out.extend(page.metric_alarms().iter().map(|a| AlarmDefinition {
            name: a.alarm_name().unwrap_or_default().to_owned(),
            composite: false,
            actions_enabled: a.actions_enabled().unwrap_or(true),
            alarm_actions: a.alarm_actions().to_vec(),
            ok_actions: a.ok_actions().to_vec(),
            rule: None,
        }));
        out.extend(page.composite_alarms().iter().map(|a| AlarmDefinition {
            name: a.alarm_name().unwrap_or_default().to_owned(),
            composite: true,
            actions_enabled: a.actions_enabled().unwrap_or(true),
            alarm_actions: a.alarm_actions().to_vec(),
            ok_actions: a.ok_actions().to_vec(),
            rule: a.alarm_rule().map(str::to_owned),
        }));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
    Err(too_many("DescribeAlarms"))
}

/// The queue's ARN (GetQueueAttributes): what an SQS subscription names.
pub async fn queue_arn(clients: &AwsClients, queue_url: &str) -> Result<String, AwsError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let out = aws_sdk_sqs::Client::new(&clients.sdk)
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| AwsError::call("GetQueueAttributes", e))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| AwsError::Answer(format!("no QueueArn for {queue_url}")))
}

/// For each SNS topic among `topics`, whether a subscription delivers to one of
/// `endpoints`; a topic whose subscriptions cannot be read is `Unknown`.
pub async fn subscriptions(
    clients: &AwsClients,
    topics: impl IntoIterator<Item = String>,
    endpoints: &[Endpoint],
) -> BTreeMap<String, Subscribed> {
    let sns = aws_sdk_sns::Client::new(&clients.sdk);
    let mut out = BTreeMap::new();
    for topic in topics {
        let said = match subscribed(&sns, &topic, endpoints).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(topic, error = %crate::errors::Chain(&e), "could not read the topic's subscriptions");
                Subscribed::Unknown
            }
        };
        out.insert(topic, said);
    }
    out
}

async fn subscribed(
    sns: &aws_sdk_sns::Client,
    topic: &str,
    endpoints: &[Endpoint],
) -> Result<Subscribed, AwsError> {
    let mut found = Subscribed::No;
    let mut token: Option<String> = None;
    for _ in 0..MOST_PAGES {
        let page = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| AwsError::call("ListSubscriptionsByTopic", e))?;
        for s in page.subscriptions() {
            let here = endpoints.iter().any(|e| {
                s.protocol() == Some(e.protocol.as_str())
                    && s.endpoint() == Some(e.endpoint.as_str())
            });
            if here {
                // Until confirmed, SNS names the subscription `PendingConfirmation`.
                match s.subscription_arn() {
                    Some("PendingConfirmation") | None => found = Subscribed::Pending,
                    Some(_) => return Ok(Subscribed::Yes),
                }
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(found),
        }
    }
    Err(too_many("ListSubscriptionsByTopic"))
}
