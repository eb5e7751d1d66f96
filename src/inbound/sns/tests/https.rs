//! The real HTTPS clients (certificate fetcher, subscription confirmer) against a loopback
//! TLS server.

use super::*;

fn options_for(server: &TlsServer) -> HttpsOptions {
    HttpsOptions {
        timeout: Duration::from_secs(5),
        resolve: vec![("sns.us-east-1.amazonaws.com".to_owned(), server.addr)],
        extra_root_pems: vec![server.ca_pem.clone()],
    }
}

fn http_response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.0 {status}\r\n{headers}\r\n").into_bytes();
    r.extend_from_slice(body);
    r
}

/// A server holding the good certificate at `CERT_FILE`, and a fetcher that trusts it.
fn fetcher_setup() -> (TlsServer, Arc<HttpsCertFetcher>) {
    let server = TlsServer::start();
    server.serve(
        CERT_FILE,
        &http_response("200 OK", "Content-Type: text/plain\r\n", &keys().good_pem),
    );
    let fetcher = Arc::new(HttpsCertFetcher::with_options(&options_for(&server)).expect("client"));
    (server, fetcher)
}

fn url_for(file: &str) -> Url {
    Url::parse(&format!("https://sns.us-east-1.amazonaws.com/{file}")).expect("url")
}

#[tokio::test]
async fn https_fetcher_end_to_end() {
    let (server, fetcher) = fetcher_setup();

    // The whole path: URL check, HTTPS download, certificate checks, signature.
    let v = verifier(fetcher.clone());
    assert!(v.verify(&notification("2", Some("s"))).await.is_ok());

    // Without the test CA the server is not trusted.
    let untrusting = HttpsCertFetcher::with_options(&HttpsOptions {
        extra_root_pems: Vec::new(),
        ..options_for(&server)
    })
    .expect("client");
    let err = untrusting
        .fetch(&url_for(CERT_FILE))
        .await
        .expect_err("untrusted server");
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn https_fetcher_answers_by_status() {
    let (server, fetcher) = fetcher_setup();
    server.serve(
        "missing.pem",
        &http_response("404 Not Found", "", b"no such key"),
    );
    let err = fetcher
        .fetch(&url_for("missing.pem"))
        .await
        .expect_err("404");
    // No such certificate is a refusal (403), not something a retry could fix.
    assert!(
        matches!(err, SnsError::UntrustedCertificate(_)) && err.to_string().contains("404"),
        "{err}"
    );
    server.serve(
        "busy.pem",
        &http_response("503 Service Unavailable", "", b"later"),
    );
    let err = fetcher.fetch(&url_for("busy.pem")).await.expect_err("503");
    assert!(err.is_retryable(), "{err}");

    // A redirect is not followed, even to a URL that would have worked.
    server.serve(
        "moved.pem",
        &http_response(
            "302 Found",
            &format!("Location: https://sns.us-east-1.amazonaws.com/{CERT_FILE}\r\n"),
            b"",
        ),
    );
    let err = fetcher
        .fetch(&url_for("moved.pem"))
        .await
        .expect_err("redirect");
    assert!(err.to_string().contains("302"), "{err}");
}

#[tokio::test]
async fn https_fetcher_caps_the_size() {
    let (server, fetcher) = fetcher_setup();
    // Oversized bodies are cut off while streaming (no Content-Length here)...
    server.serve(
        "huge.pem",
        &http_response("200 OK", "", &vec![b'A'; MAX_CERT_BYTES + 10]),
    );
    let err = fetcher
        .fetch(&url_for("huge.pem"))
        .await
        .expect_err("too big");
    assert!(err.to_string().contains("size cap"), "{err}");
    // ...and refused up front when Content-Length announces it.
    server.serve(
        "announced.pem",
        &http_response(
            "200 OK",
            &format!("Content-Length: {}\r\n", MAX_CERT_BYTES + 10),
            &vec![b'A'; MAX_CERT_BYTES + 10],
        ),
    );
    let err = fetcher
        .fetch(&url_for("announced.pem"))
        .await
        .expect_err("too big");
    assert!(err.to_string().contains("size cap"), "{err}");
}

#[tokio::test]
async fn https_confirmer_end_to_end() {
    let server = TlsServer::start();
    let confirmer =
        HttpsSubscriptionConfirmer::with_options(&options_for(&server)).expect("client");
    let topic = TopicArn::parse(TOPIC).expect("arn");
    let sub_url = |token: &str| {
        check_subscribe_url(
            &format!(
                "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token={token}"
            ),
            &topic,
        )
        .expect("checked")
    };
    // s_server -HTTP maps "GET /<rest>" to the file named <rest>.
    server.serve(
        "?Action=ConfirmSubscription&Token=good",
        &http_response(
            "200 OK",
            "Content-Type: text/xml\r\n",
            b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:us-east-1:123456789012:alarms:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>",
        ),
    );
    assert_eq!(
        confirmer
            .confirm(&sub_url("good"))
            .await
            .expect("confirmed"),
        "arn:aws:sns:us-east-1:123456789012:alarms:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"
    );

    server.serve(
        "?Action=ConfirmSubscription&Token=busy",
        &http_response("503 Service Unavailable", "", b""),
    );
    let err = confirmer.confirm(&sub_url("busy")).await.expect_err("503");
    assert!(err.is_retryable(), "{err}");

    server.serve(
        "?Action=ConfirmSubscription&Token=expired",
        &http_response(
            "403 Forbidden",
            "",
            b"<ErrorResponse><Error><Code>AuthorizationError</Code></Error></ErrorResponse>",
        ),
    );
    let err = confirmer
        .confirm(&sub_url("expired"))
        .await
        .expect_err("403");
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(err.reason_code(), "subscription_confirmation_failed");

    server.serve(
        "?Action=ConfirmSubscription&Token=odd",
        &http_response("200 OK", "", b"<html>hello</html>"),
    );
    let err = confirmer
        .confirm(&sub_url("odd"))
        .await
        .expect_err("no arn");
    assert!(!err.is_retryable(), "{err}");
}
