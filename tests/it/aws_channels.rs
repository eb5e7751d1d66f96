//! Pages' messages through the AWS SDK to moto's server: a text message by SNS `Publish` to
//! the phone number (transactional), an e-mail by SES v2 `SendEmail` from the verified
//! `PAGE_EMAIL_FROM`; what the provider refuses (an unverified sender) is the message's
//! error; a channel with no provider says which setting is missing.

use std::sync::Arc;

use cw_support_api::backend::aws::AwsConfig;
use cw_support_api::domain::page::{Channel, PageId};
use cw_support_api::paging::transport::Channels;
use cw_support_api::ports::pages::{OutMessage, Transport};

use crate::common::moto::{sdk_config, sent, unique};

fn message(channel: Channel, to: &str, text: &str) -> OutMessage {
    OutMessage {
        id: 1,
        page: PageId(4),
        key: format!("4/0/0/alice/{}", channel.as_str()),
        person: "alice".into(),
        channel,
        to: to.into(),
        text: text.into(),
        attempts: 0,
    }
}

#[tokio::test]
async fn sms_goes_by_sns_and_email_by_ses_from_a_verified_sender() {
    let aws = AwsConfig::from(sdk_config());
    let from = format!("{}@pager.example.com", unique("from"));
    aws_sdk_sesv2::Client::new(&sdk_config())
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("identity");
    let channels = Channels {
        sms: Some(aws.sms_transport()),
        email: Some(aws.email_transport(&from)),
        ..Channels::default()
    };
    let number = format!("+1555{:07}", std::process::id() % 10_000_000);
    let text = format!("Page 4: prod-db is in ALARM. Reply ACK 4 if you have it ({from}).");
    channels
        .send(&message(Channel::Sms, &number, &text))
        .await
        .expect("sms");
    let to = format!("{}@example.com", unique("alice"));
    channels
        .send(&message(Channel::Email, &to, &text))
        .await
        .expect("email");
    let s = sent().await;
    let sms: Vec<&serde_json::Value> = s["sms"]
        .as_array()
        .expect("sms")
        .iter()
        .filter(|m| m["to"] == number.as_str())
        .collect();
    assert_eq!(sms.len(), 1, "{s:#}");
    assert_eq!(sms[0]["message"], text.as_str());
    let mails: Vec<&serde_json::Value> = s["emails"]
        .as_array()
        .expect("emails")
        .iter()
        .filter(|m| m["to"][0] == to.as_str())
        .collect();
    assert_eq!(mails.len(), 1, "{s:#}");
    assert_eq!(mails[0]["from"], from.as_str());
    assert_eq!(mails[0]["subject"], "Page 4: prod-db is in ALARM");
    assert_eq!(mails[0]["body"], text.as_str());
}

#[tokio::test]
async fn a_refused_or_unconfigured_channel_fails_with_why() {
    let aws = AwsConfig::from(sdk_config());
    let unverified = Arc::new(Channels {
        email: Some(aws.email_transport("nobody-verified-me@pager.example.com")),
        ..Channels::default()
    });
    let e = unverified
        .send(&message(Channel::Email, "alice@example.com", "Page 4"))
        .await
        .expect_err("SES refuses an unverified sender");
    assert!(e.to_string().contains("MessageRejected"), "{e}");
    for (channel, want) in [
        (Channel::Sms, "no SMS provider is configured"),
        (Channel::Email, "no e-mail provider: set PAGE_EMAIL_FROM"),
        (Channel::Voice, "no voice provider is configured"),
        (Channel::Webhook, "no webhook client"),
    ] {
        let e = Channels::default()
            .send(&message(channel, "x", "Page 4"))
            .await
            .expect_err(want);
        assert_eq!(e.to_string(), want);
    }
}
