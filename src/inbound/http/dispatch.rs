//! Dispatch: what an admitted delivery is for, and the case logic's answer. The periodic
//! task, SNS subscription events, and alarms and AWS Support events each go their own way;
//! case work runs as tracked tasks ([`tracked`]), so a caller that hangs up or times out
//! never cancels a case half-opened, and shutdown waits for it.

use std::future::Future;

use crate::case::{CaseError, Outcome};
use crate::domain::alarm::PayloadError;
use crate::domain::delivery::{Delivery, Message};
use crate::inbound::delivery::{Body, Received};
use crate::inbound::gate::GateError;
use crate::inbound::sns::{MessageKind, SnsError, SnsMessage};

use super::{ApiError, AppState, RECONCILE_TASK, Reply, VerifiedDelivery};

pub(super) async fn dispatch(
    state: &AppState,
    admitted: VerifiedDelivery,
) -> Result<Reply, ApiError> {
    let VerifiedDelivery {
        received,
        verified,
        from_aws,
        ..
    } = admitted;
    match &received.body {
        Body::Periodic(name) => periodic_task(state, &received.delivery, name).await,
        Body::Sns(msg) if msg.kind == MessageKind::SubscriptionConfirmation => {
            confirm_subscription(state, &received.delivery, msg, verified).await
        }
        // Its SubscribeURL would subscribe the endpoint again: never visited.
        Body::Sns(msg) if msg.kind == MessageKind::UnsubscribeConfirmation => {
            let topic = msg.topic_arn.as_str().to_owned();
            state
                .cases
                .record_subscription(
                    &received.delivery,
                    &topic,
                    msg.kind,
                    &msg.timestamp,
                    Outcome::Unsubscribed,
                    None,
                )
                .await?;
            Ok(Reply::Unsubscribed { topic })
        }
        Body::Sns(_) | Body::Bare(_) => handle_message(state, received, from_aws).await,
    }
}

/// The worker daemon's periodic task: `reconcile` is the one there is.
async fn periodic_task(
    state: &AppState,
    delivery: &Delivery,
    name: &str,
) -> Result<Reply, ApiError> {
    if name != RECONCILE_TASK {
        return Err(PayloadError::UnsupportedEvent(format!(
            "no periodic task named {name:?} (the one task is {RECONCILE_TASK:?})"
        ))
        .into());
    }
    let (cases, delivery) = (state.cases.clone(), delivery.clone());
    let report = tracked(state, async move { cases.reconcile(&delivery).await }).await?;
    Ok(Reply::Task {
        name: name.to_owned(),
        report,
    })
}

/// Confirms an SNS subscription by visiting its SubscribeURL, and records it.
async fn confirm_subscription(
    state: &AppState,
    delivery: &Delivery,
    msg: &SnsMessage,
    verified: bool,
) -> Result<Reply, ApiError> {
    // Only a verified confirmation is ever visited: an unverified one could name any
    // topic's subscription.
    if !verified {
        return Err(GateError::Sns(SnsError::UnverifiedConfirmation).into());
    }
    let subscription_arn = state.gate.confirm(msg).await?;
    let topic = msg.topic_arn.as_str().to_owned();
    state
        .cases
        .record_subscription(
            delivery,
            &topic,
            msg.kind,
            &msg.timestamp,
            Outcome::Confirmed,
            Some(subscription_arn.clone()),
        )
        .await?;
    Ok(Reply::Confirmed {
        topic,
        subscription_arn,
    })
}

/// An alarm, a batch of alerts or an AWS Support event: opened, then handed to the case
/// logic as tracked work.
async fn handle_message(
    state: &AppState,
    received: Received,
    from_aws: bool,
) -> Result<Reply, ApiError> {
    // A worker-daemon redelivery this process recorded: answered from its message id, before
    // the body is parsed (the parse is most of what a duplicate costs).
    if let Some(handled) = state.cases.redelivered(&received.delivery).await {
        return Ok(Reply::Case(handled));
    }
    let (delivery, message) = received.into_message()?;
    // Only AWS can say what AWS Support did: an event that did not come the way only AWS
    // sends is refused before it touches anything (no record, no AWS call, no notice).
    if matches!(message, Message::CaseUpdate(_)) && !from_aws {
        return Err(GateError::UnprovenSupportEvent.into());
    }
    if matches!(message, Message::SmsReply(_)) && !from_aws {
        return Err(GateError::UnprovenSmsReply.into());
    }
    let cases = state.cases.clone();
    let handled = tracked(state, async move {
        match message {
            Message::Alarm(alarm) => cases.handle(&delivery, &alarm).await.map(|h| vec![h]),
            Message::CaseUpdate(update) => {
                cases.case_update(&delivery, &update).await.map(|h| vec![h])
            }
            Message::Ignored { about, why } => {
                cases.ignore(&delivery, &about, why).await.map(|h| vec![h])
            }
            Message::Alarms(alarms) => cases.handle_all(&delivery, &alarms).await,
            Message::SmsReply(reply) => cases.sms_reply(&delivery, &reply).await.map(|h| vec![h]),
        }
    })
    .await?;
    Ok(match handled.len() {
        1 => Reply::Case(handled.into_iter().next().expect("one")),
        _ => Reply::Batch(handled),
    })
}

/// Runs case work as a tracked task, waiting for it up to the request timeout: past that
/// the caller is answered 503 while the work carries on (its sender retries, and then
/// finds what it did).
async fn tracked<T: Send + 'static>(
    state: &AppState,
    work: impl Future<Output = Result<T, CaseError>> + Send + 'static,
) -> Result<T, ApiError> {
    let job = state.tasks.spawn(work);
    match tokio::time::timeout(state.request_timeout, job).await {
        Err(_) => Err(ApiError::Timeout(state.request_timeout)),
        Ok(joined) => Ok(joined??),
    }
}
