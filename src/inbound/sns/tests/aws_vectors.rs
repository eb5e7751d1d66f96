//! The real AWS-signed vectors from the shared fixtures (their certificates have expired:
//! each is verified at its own timestamp, never at the calendar's).

use super::*;

fn fixture_messages(dir: &Path) -> Vec<(String, SnsMessage)> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("messages"))
        .expect("messages dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join("messages").join(&name)).expect("read message");
            let msg = SnsMessage::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
            (name, msg)
        })
        .collect()
}

fn at_own_timestamp(msg: &SnsMessage, cert_dir: &Path) -> Verifier {
    let now = msg.timestamp_utc().expect("fixture Timestamp parses");
    let config = VerifierConfig {
        cert_dir: Some(cert_dir.to_path_buf()),
        clock: Arc::new(move || now),
        ..VerifierConfig::default()
    };
    Verifier::new(config, Arc::new(PanicFetcher))
}

#[tokio::test]
async fn real_aws_vectors_verify() {
    let Some(dir) = fixtures_dir() else {
        return;
    };
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).expect("manifest"))
            .expect("manifest JSON");
    let listed = manifest.as_array().map_or(0, Vec::len);
    let messages = fixture_messages(&dir);
    assert!(!messages.is_empty());
    assert_eq!(messages.len(), listed, "every vector is in MANIFEST.json");

    let certs = dir.join("certs");
    let mut kinds = std::collections::HashSet::new();
    for (name, msg) in &messages {
        // The canonical bytes must match what AWS signed, byte for byte.
        let expected = dir
            .join("string_to_sign")
            .join(name.replace(".json", ".txt"));
        if let Ok(expected) = std::fs::read_to_string(&expected) {
            assert_eq!(msg.string_to_sign(), expected, "{name}: string to sign");
        }
        let v = at_own_timestamp(msg, &certs);
        if let Err(e) = v.verify(msg).await {
            panic!("{name}: {e}");
        }
        kinds.insert((msg.kind, msg.signature_version.clone()));
    }
    // The set covers both versions and all three types.
    assert!(kinds.contains(&(MessageKind::Notification, "1".into())));
    assert!(kinds.contains(&(MessageKind::Notification, "2".into())));
    assert!(kinds.contains(&(MessageKind::SubscriptionConfirmation, "1".into())));
    assert!(kinds.contains(&(MessageKind::UnsubscribeConfirmation, "2".into())));
}

#[tokio::test]
async fn real_aws_vectors_fail_when_tampered_or_expired() {
    let Some(dir) = fixtures_dir() else {
        return;
    };
    let certs = dir.join("certs");
    for (name, msg) in fixture_messages(&dir) {
        let mut tampered = msg.clone();
        tampered.message.push(' ');
        let err = at_own_timestamp(&msg, &certs)
            .verify(&tampered)
            .await
            .expect_err("tampered");
        assert!(matches!(err, SnsError::BadSignature), "{name}: {err:?}");

        // Far in the future every one of these certificates has expired.
        let config = VerifierConfig {
            cert_dir: Some(certs.clone()),
            clock: Arc::new(|| {
                DateTime::parse_from_rfc3339("2100-01-01T00:00:00Z")
                    .map(|t| t.with_timezone(&Utc))
                    .expect("date")
            }),
            ..VerifierConfig::default()
        };
        let err = Verifier::new(config, Arc::new(PanicFetcher))
            .verify(&msg)
            .await
            .expect_err("expired");
        assert!(
            matches!(err, SnsError::UntrustedCertificate(_)),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn real_subscribe_urls_pass_the_check() {
    let Some(dir) = fixtures_dir() else {
        return;
    };
    let mut seen = 0;
    for (name, msg) in fixture_messages(&dir) {
        check_signing_cert_url(&msg.signing_cert_url, &msg.topic_arn)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(u) = &msg.subscribe_url {
            check_subscribe_url(u, &msg.topic_arn).unwrap_or_else(|e| panic!("{name}: {e}"));
            seen += 1;
        }
    }
    assert!(seen >= 2);
}
