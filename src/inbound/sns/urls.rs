//! Checks on the two URLs an SNS message makes us visit (SigningCertURL, SubscribeURL), done
//! on the parsed URL before any network access so a forged message cannot make us fetch
//! from anywhere but the SNS endpoint of the topic's own region (no SSRF).

use url::{Host, Url};

use super::error::SnsError;
use super::regions;
use super::topic::TopicArn;

/// Checks a SigningCertURL and returns it parsed.
///
/// Accepted: `https://sns.<region>.amazonaws.com[.cn]/SimpleNotificationService-<hex>.pem`
/// exactly (canonical form, no userinfo, port, query or fragment), where `<region>` is a
/// real AWS region and the topic's own region.
pub fn check_signing_cert_url(url: &str, topic: &TopicArn) -> Result<Url, SnsError> {
    let parsed = check_sns_endpoint(url, topic).map_err(SnsError::UntrustedCertificateUrl)?;
    if parsed.query().is_some() {
        return Err(SnsError::UntrustedCertificateUrl("URL has a query"));
    }
    if !is_cert_path(parsed.path()) {
        return Err(SnsError::UntrustedCertificateUrl(
            "path is not /SimpleNotificationService-<hex>.pem",
        ));
    }
    // The parser silently normalises some spellings (`:443`, upper case, dot segments,
    // stray tabs); requiring the text to be what it parses to leaves nothing ambiguous.
    if parsed.as_str() != url {
        return Err(SnsError::UntrustedCertificateUrl(
            "URL is not in canonical form",
        ));
    }
    Ok(parsed)
}

/// Checks a SubscribeURL and returns it parsed.
///
/// Accepted: `https://<SNS host of the topic's region>/?Action=ConfirmSubscription&...`,
/// no userinfo, port or fragment; a `TopicArn` query parameter, if present, must be the
/// topic's own ARN.
pub fn check_subscribe_url(url: &str, topic: &TopicArn) -> Result<Url, SnsError> {
    let parsed = check_sns_endpoint(url, topic).map_err(SnsError::UntrustedSubscribeUrl)?;
    if parsed.path() != "/" {
        return Err(SnsError::UntrustedSubscribeUrl("path is not /"));
    }
    let mut actions = 0usize;
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "Action" => {
                if value != "ConfirmSubscription" {
                    return Err(SnsError::UntrustedSubscribeUrl(
                        "Action is not ConfirmSubscription",
                    ));
                }
                actions += 1;
            }
            "TopicArn" if value != topic.as_str() => {
                return Err(SnsError::UntrustedSubscribeUrl(
                    "TopicArn parameter differs from the message's topic",
                ));
            }
            _ => {}
        }
    }
    if actions != 1 {
        return Err(SnsError::UntrustedSubscribeUrl(
            "query must contain Action=ConfirmSubscription exactly once",
        ));
    }
    Ok(parsed)
}

/// The SubscribeURL must confirm with the message's own `Token`: SNS builds it that way,
/// and a URL carrying another token would confirm some other subscription.
pub fn check_subscribe_token(url: &Url, token: &str) -> Result<(), SnsError> {
    let mut tokens = url.query_pairs().filter(|(k, _)| k == "Token");
    match (tokens.next(), tokens.next()) {
        (Some((_, t)), None) if !token.is_empty() && t == token => Ok(()),
        (None, _) => Err(SnsError::UntrustedSubscribeUrl("SubscribeURL has no Token")),
        _ => Err(SnsError::UntrustedSubscribeUrl(
            "SubscribeURL's Token differs from the message's Token",
        )),
    }
}

/// Common part: https, the exact SNS host of the topic's (real) region, nothing in the
/// authority but that host. Returns a fixed reason on failure.
fn check_sns_endpoint(url: &str, topic: &TopicArn) -> Result<Url, &'static str> {
    let parsed = Url::parse(url).map_err(|_| "not a valid absolute URL")?;
    if parsed.scheme() != "https" {
        return Err("scheme is not https");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("URL has userinfo");
    }
    if parsed.port().is_some() {
        return Err("URL has a port");
    }
    if parsed.fragment().is_some() {
        return Err("URL has a fragment");
    }
    let host = match parsed.host() {
        Some(Host::Domain(d)) => d,
        Some(_) => return Err("host is an IP address"),
        None => return Err("URL has no host"),
    };
    let region = host_region(host)?;
    if region != topic.region() {
        return Err("host region differs from the topic's region");
    }
    match regions::partition_of(region) {
        Some(p) if p.arn_name() == topic.partition() => {}
        _ => return Err("topic partition does not match its region"),
    }
    // The parser drops a default `:443` and lower-cases the host; insist the raw text's
    // authority is exactly the host so what we checked is what was written.
    let expected_prefix = format!("https://{host}/");
    if !url.starts_with(&expected_prefix) {
        return Err("authority is not exactly the SNS host");
    }
    Ok(parsed)
}

/// The region named by an SNS endpoint host, if the host is exactly `sns.<known region>.`
/// followed by that region's partition suffix.
fn host_region(host: &str) -> Result<&str, &'static str> {
    let rest = host
        .strip_prefix("sns.")
        .ok_or("host is not an SNS endpoint")?;
    let region = rest
        .strip_suffix(".amazonaws.com.cn")
        .or_else(|| rest.strip_suffix(".amazonaws.com"))
        .ok_or("host is not an SNS endpoint")?;
    // Only a real region name may sit there: this is what rejects S3 website hosts of a
    // bucket called "sns" (sns.s3-ap-southeast-2.amazonaws.com) and similar look-alikes.
    if regions::partition_of(region).is_none() {
        return Err("host does not name a known AWS region");
    }
    // Also pins the suffix to the partition (.com.cn only for China regions).
    if regions::sns_host(region).as_deref() != Some(host) {
        return Err("host is not the SNS endpoint of its region");
    }
    Ok(region)
}

fn is_cert_path(path: &str) -> bool {
    path.strip_prefix("/SimpleNotificationService-")
        .and_then(|p| p.strip_suffix(".pem"))
        .is_some_and(|hex| {
            !hex.is_empty() && hex.len() <= 128 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem";

    fn topic(s: &str) -> TopicArn {
        TopicArn::parse(s).expect("test ARN parses")
    }

    fn east() -> TopicArn {
        topic("arn:aws:sns:us-east-1:123456789012:alarms")
    }

    fn cert_reason(url: &str, t: &TopicArn) -> &'static str {
        match check_signing_cert_url(url, t) {
            Err(SnsError::UntrustedCertificateUrl(r)) => r,
            other => panic!("{url}: expected UntrustedCertificateUrl, got {other:?}"),
        }
    }

    #[test]
    fn accepts_real_cert_urls() {
        let url = check_signing_cert_url(GOOD, &east()).expect("accepted");
        assert_eq!(url.host_str(), Some("sns.us-east-1.amazonaws.com"));
        for (u, t) in [
            (
                "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-3242f2f6c3a1a3dd9ed5f8a6f5d6f7e1.pem",
                "arn:aws-cn:sns:cn-north-1:123456789012:t",
            ),
            (
                "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-3242f2f6c3a1a3dd9ed5f8a6f5d6f7e1.pem",
                "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t",
            ),
            (
                "https://sns.us-gov-east-1.amazonaws.com/SimpleNotificationService-3242f2f6c3a1a3dd9ed5f8a6f5d6f7e1.pem",
                "arn:aws-us-gov:sns:us-gov-east-1:123456789012:t",
            ),
            (
                "https://sns.ap-southeast-7.amazonaws.com/SimpleNotificationService-3242f2f6c3a1a3dd9ed5f8a6f5d6f7e1.pem",
                "arn:aws:sns:ap-southeast-7:123456789012:t",
            ),
        ] {
            assert!(
                check_signing_cert_url(u, &topic(t)).is_ok(),
                "{u} should pass"
            );
        }
    }

    const PEM: &str = "/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem";

    /// Each URL is refused for `east()`'s topic, with a reason that says `want`.
    fn assert_cert_reasons(cases: Vec<(String, &str)>) {
        let t = east();
        for (url, want) in cases {
            let reason = cert_reason(&url, &t);
            assert!(
                reason.contains(want),
                "{url}: reason {reason:?} lacks {want:?}"
            );
        }
    }

    /// Not HTTPS, not an SNS host, or someone else's host dressed as one.
    #[test]
    fn rejects_bad_cert_urls_with_a_reason() {
        assert_cert_reasons(vec![
            (format!("http://sns.us-east-1.amazonaws.com{PEM}"), "https"),
            (format!("https://evil.com{PEM}"), "SNS endpoint"),
            (
                format!("https://evil.com/sns.us-east-1.amazonaws.com{PEM}"),
                "SNS endpoint",
            ),
            (
                format!("https://sns.us-east-1.amazonaws.com.evil.com{PEM}"),
                "SNS endpoint",
            ),
            (
                format!("https://sns.us-east-1.amazonaws.com@evil.com{PEM}"),
                "userinfo",
            ),
            (
                format!("https://user@sns.us-east-1.amazonaws.com{PEM}"),
                "userinfo",
            ),
            (format!("https://52.94.0.1{PEM}"), "IP address"),
            ("not a url".to_owned(), "valid absolute URL"),
            (format!("file:///etc/passwd{PEM}"), "https"),
        ]);
    }

    /// A port, a spelling of the host other than the canonical one, a query or a fragment.
    #[test]
    fn rejects_cert_urls_with_more_than_a_host() {
        assert_cert_reasons(vec![
            (
                format!("https://sns.us-east-1.amazonaws.com:8443{PEM}"),
                "port",
            ),
            (
                format!("https://sns.us-east-1.amazonaws.com:443{PEM}"),
                "authority",
            ),
            (
                format!("https://SNS.us-east-1.amazonaws.com{PEM}"),
                "authority",
            ),
            (
                format!("https://sns.us-east-1.amazonaws.com{PEM}?x=1"),
                "query",
            ),
            (
                format!("https://sns.us-east-1.amazonaws.com{PEM}?"),
                "query",
            ),
            (
                format!("https://sns.us-east-1.amazonaws.com{PEM}#f"),
                "fragment",
            ),
        ]);
    }

    /// Only `/SimpleNotificationService-<hex>.pem`, as written.
    #[test]
    fn rejects_cert_urls_with_a_wrong_path() {
        assert_cert_reasons(vec![
            (
                "https://sns.us-east-1.amazonaws.com/evil.pem".to_owned(),
                "path",
            ),
            (
                "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-.pem".to_owned(),
                "path",
            ),
            (
                "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-zz.pem".to_owned(),
                "path",
            ),
            (
                "https://sns.us-east-1.amazonaws.com/x/SimpleNotificationService-ab.pem".to_owned(),
                "path",
            ),
            (
                "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ab.pem.txt"
                    .to_owned(),
                "path",
            ),
            (
                "https://sns.us-east-1.amazonaws.com/a/../SimpleNotificationService-ab.pem"
                    .to_owned(),
                "canonical",
            ),
        ]);
    }

    /// The host must be the SNS endpoint of a known region, the topic's.
    #[test]
    fn rejects_cert_urls_of_a_wrong_region() {
        assert_cert_reasons(vec![
            (
                format!("https://sns.s3-ap-southeast-2.amazonaws.com{PEM}"),
                "known AWS region",
            ),
            (
                format!("https://sns.my-bucket.amazonaws.com{PEM}"),
                "known AWS region",
            ),
            (
                format!("https://sns.us-east-9.amazonaws.com{PEM}"),
                "known AWS region",
            ),
            (
                format!("https://sns.us-west-2.amazonaws.com{PEM}"),
                "differs from the topic",
            ),
            (
                format!("https://sns.us-east-1.amazonaws.com.cn{PEM}"),
                "endpoint of its region",
            ),
            (
                format!("https://sns.us-east-1.amazonaws.com.{PEM}"),
                "SNS endpoint",
            ),
        ]);
    }

    #[test]
    fn partition_must_match_region() {
        let t = topic("arn:aws-cn:sns:us-east-1:123456789012:t");
        assert!(cert_reason(GOOD, &t).contains("partition"));
    }

    const SUB: &str = "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37fb";

    fn west() -> TopicArn {
        topic("arn:aws:sns:us-west-2:123456789012:MyTopic")
    }

    fn sub_reason(url: &str, t: &TopicArn) -> &'static str {
        match check_subscribe_url(url, t) {
            Err(SnsError::UntrustedSubscribeUrl(r)) => r,
            other => panic!("{url}: expected UntrustedSubscribeUrl, got {other:?}"),
        }
    }

    #[test]
    fn the_subscribe_token_must_be_the_message_token() {
        let url = check_subscribe_url(SUB, &west()).expect("accepted");
        assert!(check_subscribe_token(&url, "2336412f37fb").is_ok());
        for (token, url) in [
            ("other", SUB.to_owned()),
            ("", SUB.to_owned()),
            (
                "2336412f37fb",
                "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription".to_owned(),
            ),
            ("2336412f37fb", format!("{SUB}&Token=2336412f37fb")),
        ] {
            let url = check_subscribe_url(&url, &west()).expect("URL itself fine");
            assert!(
                matches!(
                    check_subscribe_token(&url, token),
                    Err(SnsError::UntrustedSubscribeUrl(_))
                ),
                "{url} with {token:?}"
            );
        }
    }

    #[test]
    fn accepts_real_subscribe_urls() {
        let url = check_subscribe_url(SUB, &west()).expect("accepted");
        assert_eq!(url.host_str(), Some("sns.us-west-2.amazonaws.com"));
        // No TopicArn parameter is fine too.
        assert!(
            check_subscribe_url(
                "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=ab",
                &west()
            )
            .is_ok()
        );
    }

    #[test]
    fn rejects_bad_subscribe_urls() {
        let t = west();
        let q = "?Action=ConfirmSubscription&Token=ab";
        for (url, want) in [
            (format!("http://sns.us-west-2.amazonaws.com/{q}"), "https"),
            (format!("https://evil.com/{q}"), "SNS endpoint"),
            (
                format!("https://evil.com/sns.us-west-2.amazonaws.com/{q}"),
                "SNS endpoint",
            ),
            (
                format!("https://u:p@sns.us-west-2.amazonaws.com/{q}"),
                "userinfo",
            ),
            (format!("https://sns.us-west-2.amazonaws.com:444/{q}"), "port"),
            (
                format!("https://sns.us-west-2.amazonaws.com:443/{q}"),
                "authority",
            ),
            (
                format!("https://sns.us-west-2.amazonaws.com/other{q}"),
                "path",
            ),
            (format!("https://sns.us-west-2.amazonaws.com/{q}#x"), "fragment"),
            (
                format!("https://sns.us-east-1.amazonaws.com/{q}"),
                "differs from the topic",
            ),
            (
                format!("https://sns.s3-us-west-2.amazonaws.com/{q}"),
                "known AWS region",
            ),
            (
                "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&Token=ab".to_owned(),
                "Action",
            ),
            (
                "https://sns.us-west-2.amazonaws.com/?Token=ab".to_owned(),
                "exactly once",
            ),
            (
                "https://sns.us-west-2.amazonaws.com/".to_owned(),
                "exactly once",
            ),
            (
                "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Action=ConfirmSubscription".to_owned(),
                "exactly once",
            ),
            (
                "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:Other".to_owned(),
                "TopicArn",
            ),
        ] {
            let reason = sub_reason(&url, &t);
            assert!(reason.contains(want), "{url}: reason {reason:?} lacks {want:?}");
        }
    }
}
