//! Arbitrary bytes as an SNS message: parsing, the string to sign, both URL checks and the
//! signature verification, with a fetcher that serves one fixed test certificate
//! (fuzz/data/fuzz-test-cert.pem, CN sns.amazonaws.com) and a clock inside its validity.
//! Never panics; the fetcher is only ever asked for a URL the URL check accepts; and
//! `verify` returns Ok only for a message signed with the fuzz test key (the seeds written
//! by fuzz/data/sign-seeds.sh): random input can never be.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use cw_support_api::sns::{
    CertFetcher, MessageKind, SnsError, SnsMessage, Verifier, VerifierConfig,
    check_signing_cert_url, check_subscribe_url, signing_cert_names, sns_host,
};
use cw_support_api_fuzz::{fixed_now, runtime};
use libfuzzer_sys::fuzz_target;
use url::Url;

const CERT_PEM: &[u8] = include_bytes!("../data/fuzz-test-cert.pem");

/// The messages signed with the fuzz test key: the only ones that may verify.
const SIGNED: &[&[u8]] = &[
    include_bytes!("../seeds/sns_verify/signed-notification-v1-subject.json"),
    include_bytes!("../seeds/sns_verify/signed-notification-v2-nosubject.json"),
    include_bytes!("../seeds/sns_verify/signed-SubscriptionConfirmation.json"),
    include_bytes!("../seeds/sns_verify/signed-UnsubscribeConfirmation.json"),
];

fn signed_strings() -> &'static [String] {
    static S: OnceLock<Vec<String>> = OnceLock::new();
    S.get_or_init(|| {
        SIGNED
            .iter()
            .map(|b| {
                SnsMessage::from_slice(b)
                    .expect("signed seed parses")
                    .string_to_sign()
            })
            .collect()
    })
}

/// Serves the test certificate for any URL and remembers what it was asked for.
#[derive(Default)]
struct OneCertFetcher {
    asked: Mutex<Vec<String>>,
}

impl OneCertFetcher {
    fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("lock").clone()
    }
}

#[async_trait]
impl CertFetcher for OneCertFetcher {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, SnsError> {
        self.asked
            .lock()
            .expect("lock")
            .push(url.as_str().to_owned());
        Ok(CERT_PEM.to_vec())
    }
}

fn verifier(fetcher: &Arc<OneCertFetcher>) -> Verifier {
    let config = VerifierConfig {
        cert_dir: None,
        cache_capacity: 4,
        cache_ttl: Duration::from_secs(3600),
        clock: Arc::new(fixed_now),
        // Every input may name a new URL: no budget, so the fuzzer reaches the fetcher.
        fetches_per_minute: u32::MAX,
        ..VerifierConfig::default()
    };
    Verifier::new(config, Arc::clone(fetcher) as Arc<dyn CertFetcher>)
}

fn check_accepted_subscribe_url(url: &Url, msg: &SnsMessage) {
    assert_eq!(url.scheme(), "https");
    assert_eq!(url.host_str(), sns_host(msg.topic_arn.region()).as_deref());
    assert_eq!(url.port(), None);
    assert_eq!(url.path(), "/");
    assert!(url.username().is_empty() && url.password().is_none());
    let actions: Vec<_> = url.query_pairs().filter(|(k, _)| k == "Action").collect();
    assert_eq!(actions.len(), 1, "{url}");
    assert_eq!(actions[0].1, "ConfirmSubscription");
    for (k, v) in url.query_pairs() {
        if k == "TopicArn" {
            assert_eq!(v, msg.topic_arn.as_str());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let msg = match SnsMessage::from_slice(data) {
        Ok(m) => m,
        Err(e) => {
            assert_eq!(e.reason_code(), "malformed_sns_message", "{e}");
            return;
        }
    };

    // The string to sign: the documented key list, in order, ending with the type.
    let sts = msg.string_to_sign();
    assert!(sts.starts_with("Message\n"));
    assert!(sts.ends_with(&format!("\nType\n{}\n", msg.kind.as_str())));
    assert_eq!(sts, msg.string_to_sign());

    // The certificate URL check.
    let cert_url = check_signing_cert_url(&msg.signing_cert_url, &msg.topic_arn);
    match &cert_url {
        Ok(url) => {
            assert_eq!(url.as_str(), msg.signing_cert_url);
            assert_eq!(url.scheme(), "https");
            assert_eq!(url.host_str(), sns_host(msg.topic_arn.region()).as_deref());
            assert!(url.query().is_none() && url.fragment().is_none() && url.port().is_none());
            assert!(url.path().starts_with("/SimpleNotificationService-"));
            assert!(url.path().ends_with(".pem"));
        }
        Err(e) => assert_eq!(e.reason_code(), "untrusted_certificate_url", "{e}"),
    }

    // The SubscribeURL check, on both URLs a message may carry.
    for url in [&msg.subscribe_url, &msg.unsubscribe_url]
        .into_iter()
        .flatten()
    {
        match check_subscribe_url(url, &msg.topic_arn) {
            Ok(parsed) => check_accepted_subscribe_url(&parsed, &msg),
            Err(e) => assert_eq!(e.reason_code(), "untrusted_subscribe_url", "{e}"),
        }
    }
    if msg.kind == MessageKind::Notification {
        assert!(msg.subscribe_url.is_none() && msg.token.is_none());
    } else {
        assert!(msg.subscribe_url.is_some() && msg.token.is_some());
    }

    // Verification, twice on one verifier (the second from its cache).
    let fetcher = Arc::new(OneCertFetcher::default());
    let v = verifier(&fetcher);
    let first = runtime().block_on(v.verify(&msg));
    let asked = fetcher.asked();
    match &cert_url {
        Ok(url) => assert!(
            asked.is_empty() || asked == [url.as_str().to_owned()],
            "fetched {asked:?} for {url}"
        ),
        Err(_) => assert!(asked.is_empty(), "fetched {asked:?} for a rejected URL"),
    }
    match &first {
        Ok(()) => {
            assert!(
                signed_strings().contains(&sts),
                "a message not signed with the fuzz key verified:\n{sts}"
            );
            assert!(cert_url.is_ok() && asked.len() == 1);
        }
        Err(e) => {
            let code = e.reason_code();
            let sns_cn_ok = signing_cert_names(msg.topic_arn.region())
                .iter()
                .any(|n| n == "sns.amazonaws.com");
            match code {
                "unsupported_signature_version" | "untrusted_certificate_url" => {
                    assert!(asked.is_empty(), "{code} after a fetch")
                }
                "bad_signature" => assert!(cert_url.is_ok()),
                // The test certificate's CN is only right for commercial regions.
                "untrusted_certificate" => assert!(!sns_cn_ok, "{e}"),
                other => panic!("unexpected verify error {other}: {e}"),
            }
        }
    }
    let second = runtime().block_on(v.verify(&msg));
    assert_eq!(
        first.as_ref().map_err(SnsError::reason_code),
        second.as_ref().map_err(SnsError::reason_code)
    );
    if first.is_ok() || matches!(&first, Err(SnsError::BadSignature)) && !asked.is_empty() {
        assert_eq!(
            fetcher.asked().len(),
            asked.len(),
            "a cached key was fetched again"
        );
    }
});
