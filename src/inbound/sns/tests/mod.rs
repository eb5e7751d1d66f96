//! End-to-end tests of verification: self-signed vectors through fake fetchers (tampering,
//! versions, URL refusals, certificate checks, caching, pinned directory), the real AWS
//! vectors from the shared fixtures, and the real HTTPS clients against a loopback server.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use url::Url;

use super::test_support::{
    CERT_FILE, CERT_URL, FakeFetcher, PanicFetcher, TOPIC, TlsServer, confirmation, fixtures_dir,
    keys, notification,
};
use super::*;

mod aws_vectors;
mod https;

fn verifier(fetcher: Arc<dyn CertFetcher>) -> Verifier {
    Verifier::new(VerifierConfig::default(), fetcher)
}

fn verifier_at(fetcher: Arc<dyn CertFetcher>, now: DateTime<Utc>) -> Verifier {
    let config = VerifierConfig {
        clock: Arc::new(move || now),
        ..VerifierConfig::default()
    };
    Verifier::new(config, fetcher)
}

fn all_good_messages() -> Vec<(&'static str, SnsMessage)> {
    vec![
        ("notification v1", notification("1", None)),
        ("notification v2", notification("2", None)),
        (
            "notification v1 subject",
            notification("1", Some("ALARM: cpu-high")),
        ),
        (
            "notification v2 subject",
            notification("2", Some("ALARM: cpu-high")),
        ),
        (
            "subscription v1",
            confirmation(MessageKind::SubscriptionConfirmation, "1"),
        ),
        (
            "subscription v2",
            confirmation(MessageKind::SubscriptionConfirmation, "2"),
        ),
        (
            "unsubscribe v1",
            confirmation(MessageKind::UnsubscribeConfirmation, "1"),
        ),
        (
            "unsubscribe v2",
            confirmation(MessageKind::UnsubscribeConfirmation, "2"),
        ),
    ]
}

#[tokio::test]
async fn genuine_messages_verify() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    let v = verifier(fetcher.clone());
    for (name, msg) in all_good_messages() {
        if let Err(e) = v.verify(&msg).await {
            panic!("{name}: {e}");
        }
    }
    // All eight share one certificate URL: fetched once.
    assert_eq!(fetcher.calls(), 1);
}

#[tokio::test]
async fn opt_in_style_subject_verifies() {
    let v = verifier(FakeFetcher::serving(&keys().signing_east_pem));
    assert!(v.verify(&notification("2", None)).await.is_ok());
}

/// A named way of altering a signed message.
type Tamper = Box<dyn Fn(&mut SnsMessage)>;

async fn assert_bad_signature(v: &Verifier, msg: &SnsMessage, what: &str) {
    match v.verify(msg).await {
        Err(SnsError::BadSignature) => {}
        other => panic!("{what}: expected BadSignature, got {other:?}"),
    }
}

/// Each signed field of a notification, altered.
fn notification_tampers() -> Vec<(&'static str, Tamper)> {
    vec![
        ("Message", Box::new(|m| m.message.push('!'))),
        ("MessageId", Box::new(|m| m.message_id.push('0'))),
        (
            "Subject",
            Box::new(|m| m.subject = Some("OK: cpu-high".into())),
        ),
        ("Subject removed", Box::new(|m| m.subject = None)),
        (
            "Timestamp",
            Box::new(|m| {
                m.timestamp =
                    crate::inbound::sns::test_support::recent_timestamp().replace(".", ".9")
            }),
        ),
        (
            "TopicArn",
            Box::new(|m| {
                m.topic_arn =
                    TopicArn::parse("arn:aws:sns:us-east-1:123456789012:alarms2").expect("arn")
            }),
        ),
        (
            "Type",
            Box::new(|m| m.kind = MessageKind::SubscriptionConfirmation),
        ),
        (
            "Signature",
            Box::new(|m| {
                // Flip one base64 character in the middle of the signature.
                let mid = m.signature.len() / 2;
                let c = if &m.signature[mid..=mid] == "A" {
                    "B"
                } else {
                    "A"
                };
                m.signature.replace_range(mid..=mid, c);
            }),
        ),
    ]
}

/// Each signed field of a subscription confirmation, altered.
fn confirmation_tampers() -> Vec<(&'static str, Tamper)> {
    vec![
        ("Message", Box::new(|m| m.message.push('!'))),
        ("MessageId", Box::new(|m| m.message_id.push('0'))),
        ("Timestamp", Box::new(|m| m.timestamp.push('0'))),
        ("Token", Box::new(|m| m.token = Some("attacker".into()))),
        (
            "SubscribeURL",
            Box::new(|m| {
                m.subscribe_url = Some(
                    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x"
                        .into(),
                )
            }),
        ),
        (
            "Type",
            Box::new(|m| m.kind = MessageKind::UnsubscribeConfirmation),
        ),
    ]
}

#[tokio::test]
async fn tampering_with_any_signed_field_breaks_the_signature() {
    let v = verifier(FakeFetcher::serving(&keys().good_pem));
    for version in ["1", "2"] {
        let good = notification(version, Some("ALARM: cpu-high"));
        for (what, tamper) in notification_tampers() {
            let mut msg = good.clone();
            tamper(&mut msg);
            assert_bad_signature(&v, &msg, what).await;
        }
        // Adding a Subject to a message signed without one.
        let mut msg = notification(version, None);
        msg.subject = Some("injected".into());
        assert_bad_signature(&v, &msg, "Subject added").await;
    }
}

#[tokio::test]
async fn tampering_with_a_confirmation_breaks_the_signature() {
    let v = verifier(FakeFetcher::serving(&keys().good_pem));
    for version in ["1", "2"] {
        let good = confirmation(MessageKind::SubscriptionConfirmation, version);
        for (what, tamper) in confirmation_tampers() {
            let mut msg = good.clone();
            tamper(&mut msg);
            assert_bad_signature(&v, &msg, what).await;
        }
    }
}

#[tokio::test]
async fn unsigned_fields_may_change() {
    let v = verifier(FakeFetcher::serving(&keys().good_pem));
    // Unsigned fields may change without breaking anything (they are not trusted either).
    let mut msg = notification("1", None);
    msg.unsubscribe_url = None;
    assert!(v.verify(&msg).await.is_ok());
}

#[tokio::test]
async fn garbage_signatures_are_bad_signatures() {
    let v = verifier(FakeFetcher::serving(&keys().good_pem));
    for sig in ["", "not base64!", "AAAA", "QUJD\nREVG"] {
        let mut msg = notification("1", None);
        msg.signature = sig.into();
        assert_bad_signature(&v, &msg, sig).await;
    }
}

#[tokio::test]
async fn another_keys_certificate_does_not_verify() {
    let v = verifier(FakeFetcher::serving(&keys().other_key_pem));
    assert_bad_signature(&v, &notification("2", None), "other key").await;
}

#[tokio::test]
async fn unsupported_versions_are_refused_before_any_fetch() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    let v = verifier(fetcher.clone());
    for version in ["3", "", "0", "1 ", "2.0"] {
        let mut msg = notification("1", None);
        msg.signature_version = version.into();
        let err = v.verify(&msg).await.expect_err("refused");
        assert!(
            matches!(err, SnsError::UnsupportedSignatureVersion),
            "{version:?}: {err:?}"
        );
        assert_eq!(err.reason_code(), "unsupported_signature_version");
    }
    assert_eq!(fetcher.calls(), 0);

    // A message without SignatureVersion does not even parse.
    let mut body: Value = serde_json::json!({
        "Type": "Notification", "MessageId": "m", "TopicArn": TOPIC, "Message": "x",
        "Timestamp": "2024-05-01T12:00:00.000Z", "Signature": "AAAA", "SigningCertURL": CERT_URL,
    });
    assert!(matches!(
        SnsMessage::parse(&body),
        Err(SnsError::MalformedMessage {
            field: "SignatureVersion",
            ..
        })
    ));
    body["SignatureVersion"] = serde_json::json!(1);
    assert!(matches!(
        SnsMessage::parse(&body),
        Err(SnsError::MalformedMessage {
            field: "SignatureVersion",
            ..
        })
    ));
}

#[tokio::test]
async fn bad_certificate_urls_are_refused_without_fetching() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    let v = verifier(fetcher.clone());
    let file = CERT_FILE;
    let bad_urls = [
        format!("http://sns.us-east-1.amazonaws.com/{file}"),
        format!("https://evil.com/{file}"),
        format!("https://evil.com/sns.us-east-1.amazonaws.com/{file}"),
        format!("https://sns.us-east-1.amazonaws.com.evil.com/{file}"),
        format!("https://sns.us-east-1.amazonaws.com@evil.com/{file}"),
        format!("https://user:pw@sns.us-east-1.amazonaws.com/{file}"),
        format!("https://sns.us-east-1.amazonaws.com:8443/{file}"),
        format!("https://sns.us-east-1.amazonaws.com:443/{file}"),
        format!("https://sns.us-east-1.amazonaws.com/{file}?x=1"),
        format!("https://sns.us-east-1.amazonaws.com/{file}#frag"),
        "https://sns.us-east-1.amazonaws.com/cert.pem".to_owned(),
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.crt".to_owned(),
        format!("https://sns.us-east-1.amazonaws.com/../{file}"),
        format!("https://sns.s3-ap-southeast-2.amazonaws.com/{file}"),
        format!("https://sns.s3-us-east-1.amazonaws.com/{file}"),
        format!("https://sns.my-bucket.amazonaws.com/{file}"),
        format!("https://sns.us-east-7.amazonaws.com/{file}"),
        format!("https://sns.us-west-2.amazonaws.com/{file}"),
        format!("https://sns.cn-north-1.amazonaws.com.cn/{file}"),
        format!("https://127.0.0.1/{file}"),
        String::new(),
    ];
    for url in bad_urls {
        let mut msg = notification("1", None);
        msg.signing_cert_url = url.clone();
        let err = v.verify(&msg).await.expect_err("refused");
        assert!(
            matches!(err, SnsError::UntrustedCertificateUrl(_)),
            "{url}: {err:?}"
        );
        assert_eq!(err.reason_code(), "untrusted_certificate_url");
        assert!(!err.is_retryable());
    }
    assert_eq!(fetcher.calls(), 0, "a refused URL must never be fetched");
}

#[tokio::test]
async fn certificate_with_wrong_subject_is_refused() {
    let v = verifier(FakeFetcher::serving(&keys().wrong_cn_pem));
    let err = v
        .verify(&notification("1", None))
        .await
        .expect_err("refused");
    assert!(matches!(err, SnsError::UntrustedCertificate(_)), "{err:?}");
    assert_eq!(err.reason_code(), "untrusted_certificate");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn certificate_outside_its_dates_is_refused() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    let msg = notification("2", None);
    for now in [
        Utc::now() + chrono::Duration::days(60),
        Utc::now() - chrono::Duration::days(2),
    ] {
        let err = verifier_at(fetcher.clone(), now)
            .verify(&msg)
            .await
            .expect_err("refused");
        assert!(matches!(err, SnsError::UntrustedCertificate(_)), "{err:?}");
    }
    // Dates are checked at every use, not only when loading: a key cached while its
    // certificate was valid stops working when the clock passes notAfter.
    let now = Arc::new(std::sync::Mutex::new(Utc::now()));
    let clock_now = Arc::clone(&now);
    let config = VerifierConfig {
        clock: Arc::new(move || *clock_now.lock().expect("lock")),
        ..VerifierConfig::default()
    };
    let v = Verifier::new(config, fetcher.clone());
    assert!(v.verify(&msg).await.is_ok());
    *now.lock().expect("lock") = Utc::now() + chrono::Duration::days(60);
    assert!(matches!(
        v.verify(&msg).await,
        Err(SnsError::UntrustedCertificate(_))
    ));
}

#[tokio::test]
async fn unusable_certificate_bodies_are_refused() {
    for body in [&b"<html>not a cert</html>"[..], &keys().private_pem] {
        let v = verifier(FakeFetcher::serving(body));
        assert!(matches!(
            v.verify(&notification("1", None)).await,
            Err(SnsError::UntrustedCertificate(_))
        ));
    }
    let huge = vec![b'A'; MAX_CERT_BYTES + 1];
    let v = verifier(FakeFetcher::serving(&huge));
    assert!(matches!(
        v.verify(&notification("1", None)).await,
        Err(SnsError::UntrustedCertificate(_))
    ));
}

#[tokio::test]
async fn key_is_cached_per_url() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    let v = verifier(fetcher.clone());
    let msg = notification("1", None);
    assert!(v.verify(&msg).await.is_ok());
    assert!(v.verify(&msg).await.is_ok());
    assert_eq!(fetcher.calls(), 1);

    // Another URL is another cache entry.
    let other = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ffffffffffffffffffffffffffffffff.pem";
    fetcher.add(other, &keys().good_pem);
    let mut msg2 = msg.clone();
    msg2.signing_cert_url = other.into();
    assert!(v.verify(&msg2).await.is_ok());
    assert!(v.verify(&msg2).await.is_ok());
    assert_eq!(fetcher.calls(), 2);
}

// The paused clock makes the slow fetch exact: all eight ask while it is under way, whatever
// the machine's load.
#[tokio::test(start_paused = true)]
async fn concurrent_first_uses_fetch_once() {
    let fetcher = FakeFetcher::slow(&keys().good_pem, Duration::from_millis(200));
    let v = Arc::new(verifier(fetcher.clone()));
    let msg = Arc::new(notification("2", Some("s")));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let v = Arc::clone(&v);
            let msg = Arc::clone(&msg);
            tokio::spawn(async move { v.verify(&msg).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.expect("task").is_ok());
    }
    assert_eq!(fetcher.calls(), 1);
}

/// A verifier that remembers no failure, to watch retries reach the fetcher.
fn forgetful(fetcher: Arc<dyn CertFetcher>) -> Verifier {
    let config = VerifierConfig {
        refused_ttl: Duration::ZERO,
        unavailable_ttl: Duration::ZERO,
        ..VerifierConfig::default()
    };
    Verifier::new(config, fetcher)
}

#[tokio::test]
async fn failures_never_take_a_place_in_the_key_cache() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    fetcher.fail_next(1);
    let v = forgetful(fetcher.clone());
    let msg = notification("1", None);
    let err = v.verify(&msg).await.expect_err("outage");
    assert!(matches!(err, SnsError::CertificateUnavailable(_)));
    assert!(err.is_retryable());
    assert_eq!(err.reason_code(), "certificate_unavailable");
    assert!(v.verify(&msg).await.is_ok());
    assert_eq!(fetcher.calls(), 2);
    assert!(v.verify(&msg).await.is_ok());
    assert_eq!(fetcher.calls(), 2);

    // An unusable certificate is not kept either: once the right one is served, it works.
    let fetcher = FakeFetcher::serving(&keys().wrong_cn_pem);
    let v = forgetful(fetcher.clone());
    assert!(v.verify(&msg).await.is_err());
    fetcher.add(CERT_URL, &keys().good_pem);
    assert!(v.verify(&msg).await.is_ok());
    assert_eq!(fetcher.calls(), 2);
}

fn with_cert_url(i: usize) -> SnsMessage {
    let mut m = notification("1", None);
    m.signing_cert_url =
        format!("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{i:032x}.pem");
    m
}

#[tokio::test]
async fn failed_urls_are_remembered_so_repeating_them_costs_nothing() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    let v = verifier(fetcher.clone());
    // Not found at the SNS host: a refusal, and asked once only.
    for _ in 0..5 {
        let err = v.verify(&with_cert_url(7)).await.expect_err("no such cert");
        assert!(matches!(err, SnsError::UntrustedCertificate(_)), "{err}");
    }
    assert_eq!(fetcher.calls(), 1);
    // An outage is remembered too, briefly, and answered as retryable.
    fetcher.fail_next(1);
    for _ in 0..3 {
        let err = v
            .verify(&notification("1", None))
            .await
            .expect_err("outage");
        assert!(err.is_retryable(), "{err}");
    }
    assert_eq!(fetcher.calls(), 2);
}

#[tokio::test]
async fn downloads_are_budgeted_per_minute() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    let config = VerifierConfig {
        fetches_per_minute: 3,
        ..VerifierConfig::default()
    };
    let v = Verifier::new(config, fetcher.clone());
    for i in 0..20 {
        let err = v.verify(&with_cert_url(100 + i)).await.expect_err("forged");
        // The first three are asked about (404: refused); the rest wait for the budget.
        match i {
            0..3 => assert!(matches!(err, SnsError::UntrustedCertificate(_)), "{err}"),
            _ => assert!(err.is_retryable(), "{i}: {err}"),
        }
    }
    assert_eq!(fetcher.calls(), 3, "the budget bounds outbound requests");
}

#[tokio::test]
async fn the_key_in_use_is_never_pushed_out_by_keys_that_verify_nothing() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    let config = VerifierConfig {
        cache_capacity: 2,
        fetches_per_minute: 1000,
        ..VerifierConfig::default()
    };
    let v = Verifier::new(config, fetcher.clone());
    let genuine = notification("1", None);
    assert!(v.verify(&genuine).await.is_ok());
    // A flood of messages naming other real certificates with signatures that fail.
    for i in 0..10 {
        let mut forged = with_cert_url(200 + i);
        fetcher.add(&forged.signing_cert_url.clone(), &keys().good_pem);
        forged.message.push_str(" (tampered)");
        assert!(matches!(
            v.verify(&forged).await,
            Err(SnsError::BadSignature)
        ));
    }
    let calls = fetcher.calls();
    assert!(v.verify(&genuine).await.is_ok());
    assert_eq!(fetcher.calls(), calls, "the genuine key is still cached");
}

#[tokio::test]
async fn cache_entries_expire() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    let config = VerifierConfig {
        cache_ttl: Duration::ZERO,
        ..VerifierConfig::default()
    };
    let v = Verifier::new(config, fetcher.clone());
    let msg = notification("1", None);
    for _ in 0..3 {
        assert!(v.verify(&msg).await.is_ok());
    }
    assert_eq!(fetcher.calls(), 3);
}

#[tokio::test]
async fn cache_is_bounded_and_evicts_the_oldest() {
    let fetcher = FakeFetcher::serving(&keys().good_pem);
    let urls: Vec<String> = (0..3)
        .map(|i| {
            format!("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{i:032x}.pem")
        })
        .collect();
    for u in &urls {
        fetcher.add(u, &keys().good_pem);
    }
    let config = VerifierConfig {
        cache_capacity: 2,
        ..VerifierConfig::default()
    };
    let v = Verifier::new(config, fetcher.clone());
    let with_url = |u: &str| {
        let mut m = notification("1", None);
        m.signing_cert_url = u.to_owned();
        m
    };
    for u in &urls {
        assert!(v.verify(&with_url(u)).await.is_ok());
    }
    assert_eq!(fetcher.calls(), 3);
    // urls[1] and urls[2] are still cached; urls[0] was evicted.
    assert!(v.verify(&with_url(&urls[2])).await.is_ok());
    assert!(v.verify(&with_url(&urls[1])).await.is_ok());
    assert_eq!(fetcher.calls(), 3);
    assert!(v.verify(&with_url(&urls[0])).await.is_ok());
    assert_eq!(fetcher.calls(), 4);
}

#[tokio::test]
async fn pinned_certificate_directory_is_used_without_fetching() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(CERT_FILE), &keys().good_pem).expect("write");
    let config = VerifierConfig {
        cert_dir: Some(dir.path().to_path_buf()),
        ..VerifierConfig::default()
    };
    let v = Verifier::new(config.clone(), Arc::new(PanicFetcher));
    for (name, msg) in all_good_messages() {
        assert!(v.verify(&msg).await.is_ok(), "{name}");
    }

    // A URL whose file is not pinned falls back to the fetcher.
    let fetcher = FakeFetcher::default();
    let other = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abcdef.pem";
    fetcher.add(other, &keys().good_pem);
    let fetcher = Arc::new(fetcher);
    let v = Verifier::new(config, fetcher.clone());
    let mut msg = notification("1", None);
    assert!(v.verify(&msg).await.is_ok());
    assert_eq!(fetcher.calls(), 0);
    msg.signing_cert_url = other.into();
    assert!(v.verify(&msg).await.is_ok());
    assert_eq!(fetcher.calls(), 1);
}

#[tokio::test]
async fn pinned_certificate_still_has_its_subject_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(CERT_FILE), &keys().wrong_cn_pem).expect("write");
    let config = VerifierConfig {
        cert_dir: Some(dir.path().to_path_buf()),
        ..VerifierConfig::default()
    };
    let v = Verifier::new(config, Arc::new(PanicFetcher));
    assert!(matches!(
        v.verify(&notification("1", None)).await,
        Err(SnsError::UntrustedCertificate(_))
    ));
}
