//! Unsigned posts at the edge: tokens, the worker daemon's headers (believed only from a
//! trusted origin), staleness and the topic allow list.

use super::*;

#[tokio::test]
async fn unsigned_posts_need_a_token_when_tokens_are_set() {
    let alarm = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/payloads/minimal.json"
    ))
    .expect("fixture");
    let h = harness(Setup {
        tokens: TOKEN,
        peer: "10.1.2.3:5555",
        ..Default::default()
    });
    let (status, body, headers) = post(&h, alarm.clone(), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(
        headers.get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let wrong = format!("Bearer {TOKEN}x");
    let (status, _, _) = post(&h, alarm.clone(), &[("authorization", &wrong)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Bad input from an unauthenticated caller is 401, not a description of the problem.
    let (status, _, _) = post(&h, "not json".into(), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A worker-daemon delivery from an untrusted peer is no different.
    let (status, _, _) = post(&h, alarm.clone(), &[("x-aws-sqsd-msgid", "m1")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Raw SNS delivery is unsigned too.
    let (status, _, _) = post(&h, alarm.clone(), &[("x-amz-sns-rawdelivery", "true")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(decisions(&h).await, 0);

    let right = format!("Bearer {TOKEN}");
    let (status, body, _) = post(&h, alarm.clone(), &[("authorization", &right)]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("created"))
    );
    // A verified SNS message needs no token, wherever it comes from.
    let (status, body, _) = post(
        &h,
        to_body(&alarm_notification("2")),
        &sns_headers("Notification"),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("created")),
        "{body}"
    );
}

#[tokio::test]
async fn the_worker_daemon_on_a_trusted_peer_needs_no_token() {
    let alarm = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/payloads/minimal.json"
    ))
    .expect("fixture");
    let h = harness(Setup {
        tokens: TOKEN,
        peer: "127.0.0.1:5555",
        ..Default::default()
    });
    let (status, _, _) = post(&h, alarm.clone(), &[("x-aws-sqsd-msgid", "m1")]).await;
    assert_eq!(status, StatusCode::OK);
    // Loopback alone is not enough without the worker daemon's headers.
    let (status, _, _) = post(&h, alarm, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn minimal_alarm(name: &str) -> String {
    json!({"AlarmName": name, "AlarmDescription": "d", "StateChangeTime": "2026-11-20T03:12:45Z"})
        .to_string()
}

#[tokio::test]
async fn worker_daemon_headers_forwarded_from_outside_are_not_believed() {
    // The peer is the local proxy; what it says it forwarded decides.
    let h = harness(Setup {
        tokens: TOKEN,
        peer: "127.0.0.1:5555",
        ..Default::default()
    });
    for (i, forwarded) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-for", "127.0.0.1, 203.0.113.9"),
        ("x-forwarded-for", "unknown"),
        ("x-real-ip", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9;proto=http"),
        ("forwarded", "for=\"[2001:db8::1]:443\""),
    ]
    .into_iter()
    .enumerate()
    {
        let body = minimal_alarm(&format!("spoofed-{i}"));
        let (status, b, _) = post(&h, body, &[("x-aws-sqsd-msgid", "m1"), forwarded]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{forwarded:?}: {b}");
    }
    // A spoofed periodic task is refused the same way.
    let (status, _, _) = post(
        &h,
        String::new(),
        &[
            ("x-aws-sqsd-taskname", "reconcile"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(decisions(&h).await, 0);
    // The daemon itself, through the same proxy: every hop is local.
    for (i, forwarded) in [
        ("x-forwarded-for", "127.0.0.1"),
        ("x-real-ip", "127.0.0.1"),
        ("forwarded", "for=127.0.0.1"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = minimal_alarm(&format!("local-{i}"));
        let (status, b, _) = post(&h, body, &[("x-aws-sqsd-msgid", "m2"), forwarded]).await;
        assert_eq!(status, StatusCode::OK, "{forwarded:?}: {b}");
    }
}

/// Secure by default: with no tokens set, unsigned posts are heard only from inside the
/// instance; anyone else is told how to set tokens, and nothing is recorded.
#[tokio::test]
async fn without_tokens_only_the_instance_is_heard_unsigned() {
    let h = harness(Setup {
        peer: "127.0.0.1:5555",
        ..Default::default()
    });
    for headers in [
        // Through a local proxy, from outside: a periodic task, an alarm, a daemon's id.
        vec![
            ("x-aws-sqsd-taskname", "reconcile"),
            ("x-forwarded-for", "198.51.100.7"),
        ],
        vec![("x-forwarded-for", "198.51.100.7")],
        vec![
            ("x-aws-sqsd-msgid", "m9"),
            ("x-forwarded-for", "198.51.100.7"),
        ],
    ] {
        let (status, body, _) = post(&h, minimal_alarm("outside"), &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert_eq!(body["error"], "unauthorized");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("set API_TOKENS")),
            "{body}"
        );
    }
    assert_eq!(decisions(&h).await, 0);
    // From the instance itself: heard.
    let (status, body, _) = post(&h, minimal_alarm("inside"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A peer outside the instance, with no proxy in between.
    let h = harness(Setup {
        peer: "10.0.0.9:5555",
        ..Default::default()
    });
    let (status, body, _) = post(&h, minimal_alarm("direct"), &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    assert_eq!(decisions(&h).await, 0);
}

#[tokio::test]
async fn an_unauthenticated_post_is_refused_before_it_is_parsed() {
    let h = harness(Setup {
        tokens: TOKEN,
        peer: "10.0.0.9:5555",
        ..Default::default()
    });
    let huge = format!(
        r#"{{"AlarmName": "x", "junk": [{}0]}}"#,
        "0,".repeat(100_000)
    );
    let (status, _, _) = post(&h, huge.clone(), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let right = format!("Bearer {TOKEN}");
    let (status, body, _) = post(&h, huge, &[("authorization", &right)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("too_complex"))
    );
}

#[tokio::test]
async fn replayed_direct_deliveries_are_stale_and_queued_envelopes_are_not() {
    let h = harness(Setup::default());
    let mut old = alarm_notification("1");
    old.timestamp = (chrono::Utc::now() - chrono::Duration::hours(3))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    keys().sign(&mut old);
    let (status, body, _) = post(&h, to_body(&old), &sns_headers("Notification")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("stale_message"))
    );
    assert_eq!(h.fetcher.calls(), 0, "a replay costs no certificate fetch");
    assert_eq!(decisions(&h).await, 0);
    // The same envelope read from a queue waited there legitimately.
    let (status, body, _) = post(&h, to_body(&old), &[("x-aws-sqsd-msgid", "q-1")]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("created")),
        "{body}"
    );
}

#[tokio::test]
async fn a_subscribe_url_with_another_token_is_never_visited() {
    let h = harness(Setup::default());
    let mut c = confirmation(MessageKind::SubscriptionConfirmation, "1");
    c.subscribe_url = Some(format!(
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=someone-elses"
    ));
    keys().sign(&mut c);
    let (status, body, _) = post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("untrusted_subscribe_url"))
    );
    assert!(h.confirmer.urls.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn unverified_envelopes_still_need_an_allowed_topic_and_never_confirm() {
    let h = harness(Setup {
        verify_sqs_envelopes: false,
        topics: "arn:aws:sns:us-east-1:999999999999:other",
        ..Default::default()
    });
    let sqsd = [("x-aws-sqsd-msgid", "q-2")];
    let (status, body, _) = post(&h, to_body(&alarm_notification("1")), &sqsd).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("topic_not_allowed"))
    );
    let h = harness(Setup {
        verify_sqs_envelopes: false,
        ..Default::default()
    });
    let c = confirmation(MessageKind::SubscriptionConfirmation, "1");
    let (status, body, _) = post(&h, to_body(&c), &sqsd).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("unverified_confirmation"))
    );
    assert!(h.confirmer.urls.lock().expect("lock").is_empty());
    assert_eq!(h.fetcher.calls(), 0);
    assert_eq!(decisions(&h).await, 0);
}

#[tokio::test]
async fn with_no_list_only_the_own_accounts_topics_are_served() {
    let foreign = "arn:aws:sns:us-east-1:999999999999:alarms";
    let from = |topic: &str| {
        let mut m = alarm_notification("1");
        m.topic_arn = topic.parse().expect("arn");
        m.message_id = format!("id-{topic}");
        keys().sign(&mut m);
        m
    };
    let h = harness(Setup {
        topics: "",
        own_account: Some("123456789012"),
        ..Default::default()
    });
    let (status, body, _) = post(&h, to_body(&from(foreign)), &sns_headers("Notification")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("topic_not_allowed"))
    );
    let mut c = confirmation(MessageKind::SubscriptionConfirmation, "1");
    c.topic_arn = foreign.parse().expect("arn");
    c.subscribe_url = Some(format!(
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={foreign}&Token={}",
        crate::inbound::sns::test_support::CONFIRMATION_TOKEN
    ));
    keys().sign(&mut c);
    let (status, _, _) = post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        h.confirmer.urls.lock().expect("lock").is_empty(),
        "never confirmed"
    );
    assert_eq!(h.fetcher.calls(), 0);
    let (status, body, _) = post(&h, to_body(&from(TOPIC)), &sns_headers("Notification")).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("created"))
    );

    // Own account unknown: nothing is served.
    let h = harness(Setup {
        topics: "",
        ..Default::default()
    });
    let (status, body, _) = post(&h, to_body(&from(TOPIC)), &sns_headers("Notification")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("topic_not_allowed"))
    );
}

/// Fails every fetch with a detailed reason, as a real outage would.
struct DetailedOutage;

#[async_trait]
impl CertFetcher for DetailedOutage {
    async fn fetch(&self, _url: &url::Url) -> Result<Vec<u8>, SnsError> {
        Err(SnsError::CertificateUnavailable(
            "cannot read pinned certificate /etc/secret-dir/x.pem: error sending request: tcp connect error".into(),
        ))
    }
}

#[tokio::test]
async fn five_hundreds_carry_no_internal_detail() {
    let counting = FakeFetcher::serving(&keys().good_pem);
    let h = harness_with(
        Setup::default(),
        Arc::new(DetailedOutage),
        VerifierConfig::default(),
        counting,
    );
    let (status, body, _) = post(
        &h,
        to_body(&alarm_notification("1")),
        &sns_headers("Notification"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let text = body.to_string();
    assert!(!text.contains("/etc") && !text.contains("tcp"), "{text}");
    assert_eq!(body["error"], "certificate_unavailable");
}

/// The real AWS-signed messages verify end to end through pinned certificates
/// (SNS_CERT_DIR), with the clock at each message's own time since the certificates
/// have expired. Fails when ../shared is absent, unless opted out.
#[tokio::test]
async fn real_aws_vectors_pass_the_edge_through_pinned_certificates() {
    let Some(dir) = crate::inbound::shared_fixtures::dir("fixtures/sns-aws-signed") else {
        return;
    };
    let entries = std::fs::read_dir(dir.join("messages")).expect("the signed messages");
    let mut checked = 0;
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("read");
        let value: Value = serde_json::from_str(&text).expect("json");
        let msg = SnsMessage::parse(&value).expect("parses");
        let at = msg.timestamp_utc().expect("timestamp");
        let config = VerifierConfig {
            cert_dir: Some(dir.join("certs")),
            clock: Arc::new(move || at),
            ..VerifierConfig::default()
        };
        let never = Arc::new(FakeFetcher::default());
        let h = harness_with(
            Setup {
                topics: "*",
                ..Default::default()
            },
            Arc::new(PanicFetcher),
            config,
            never,
        );
        let (status, body, _) = post(&h, text, &[]).await;
        let name = entry.file_name();
        assert_ne!(status, StatusCode::FORBIDDEN, "{name:?}: {body}");
        match msg.kind {
            // Their messages are not alarms: verification passed, parsing says why not.
            MessageKind::Notification => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {body}")
            }
            MessageKind::SubscriptionConfirmation => {
                assert_eq!(body["outcome"], "confirmed", "{name:?}");
                assert_eq!(h.confirmer.urls.lock().expect("lock").len(), 1);
            }
            MessageKind::UnsubscribeConfirmation => {
                assert_eq!(body["outcome"], "unsubscribed", "{name:?}")
            }
        }
        checked += 1;
    }
    assert!(checked >= 17, "checked {checked}");
}

/// A worker-daemon redelivery of a message this process recorded is answered from its
/// message id before the body is parsed (SQS redelivers a message under its id with the
/// same body): the same case, the same alarm, one more line of history. A new id is parsed
/// as usual. (The daemon's headers are believed only from a trusted peer: the tests above.)
#[tokio::test]
async fn a_worker_daemon_redelivery_is_answered_from_its_message_id() {
    let h = harness(Setup {
        tokens: TOKEN,
        peer: "127.0.0.1:5555",
        ..Default::default()
    });
    let (status, first, _) = post(
        &h,
        minimal_alarm("redelivered"),
        &[("x-aws-sqsd-msgid", "m-77")],
    )
    .await;
    assert_eq!(
        (status, first["outcome"].as_str()),
        (StatusCode::OK, Some("created")),
        "{first}"
    );
    // Past the edge's first look (JSON, not an SNS envelope), only the id is read: even a
    // body that holds no alarm.
    let not_an_alarm = r#"{"hello": "world"}"#.to_owned();
    let (status, again, _) = post(&h, not_an_alarm.clone(), &[("x-aws-sqsd-msgid", "m-77")]).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["outcome"], "duplicate");
    assert_eq!(again["caseId"], first["caseId"]);
    assert_eq!(again["alarm"], "redelivered");
    // A message this process has not recorded is parsed: the same body is a 400.
    let (status, bad, _) = post(&h, not_an_alarm.clone(), &[("x-aws-sqsd-msgid", "m-78")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["error"], "unknown_shape");
    // The created decision and the duplicate's line.
    let listed = h
        .backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("ledger");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(
        listed[0].outcome,
        crate::domain::outcome::Outcome::Duplicate
    );
    assert_eq!(listed[0].alarm_name, "redelivered");
    assert_eq!(listed[0].delivery_id.as_deref(), Some("m-77"));
}
