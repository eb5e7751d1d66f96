//! Who may be heard: the checks at the edge, before any body is trusted.
//!
//! - A signed SNS message (posted by SNS, or inside an SQS body) must come from an allowed
//!   topic and carry a valid SNS signature; then it needs nothing else.
//! - Every other request is an unsigned post. When `API_TOKENS` is set it needs
//!   `Authorization: Bearer <token>`, except worker-daemon deliveries from inside the
//!   instance: the TCP peer and every address a proxy says it forwarded for must be in
//!   `TRUST_SQSD_FROM` (sqsd cannot add headers; a proxy's own address proves nothing).
//!   With no tokens, unsigned posts are heard only from inside the instance
//!   (`TRUST_SQSD_FROM`, loopback by default); anyone else is told to set tokens (401).
//!
//! Tokens are compared in constant time and never logged or printed.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::delivery::DeliveryKind;
use crate::inbound::delivery::Received;
use crate::inbound::sns::{
    SnsError, SnsMessage, SubscriptionConfirmer, TopicAllowList, Verifier, check_subscribe_token,
    check_subscribe_url,
};

/// Why the gate refused a request.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// No tokens are set, and the request comes from outside the instance: unsigned posts are
    /// heard only from `TRUST_SQSD_FROM` until tokens are set.
    #[error(
        "unsigned posts from outside this host need a token: set API_TOKENS on the service \
         and send Authorization: Bearer <token> (or deliver through SNS)"
    )]
    TokensRequired,
    /// An AWS Support event that did not come through a verified SNS message or the worker
    /// queue: a token proves who posted, not what AWS Support did.
    #[error(
        "AWS Support events are believed only as AWS delivers them: a verified SNS message \
         from an allowed topic, or the worker queue"
    )]
    UnprovenSupportEvent,
    /// A text message reply that did not come as AWS delivers it: anyone can post a JSON
    /// body naming a number, only AWS can say which number sent it.
    #[error(
        "SMS replies are believed only as AWS delivers them: a verified SNS message from an \
         allowed topic, or the worker queue"
    )]
    UnprovenSmsReply,
    #[error(transparent)]
    Sns(#[from] SnsError),
}

/// Bearer tokens for unsigned posts. Kept as SHA-256 digests so a comparison takes the same
/// time whatever the length or content of the guess; `Debug` shows only how many there are.
#[derive(Clone, Default)]
pub struct ApiTokens(Vec<[u8; 32]>);

impl ApiTokens {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an `Authorization` header value carries one of the tokens.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(token) = authorization.and_then(|h| {
            let (scheme, token) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        }) else {
            return false;
        };
        let guess: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Check every token, without stopping early, so timing says nothing about which.
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |found, t| found | t.ct_eq(&guess))
            .into()
    }
}

impl FromStr for ApiTokens {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut tokens = Vec::new();
        for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                // Never echo the value: it is a secret even when it is a bad one.
                return Err("each API token must be at least 16 characters with no spaces".into());
            }
            tokens.push(Sha256::digest(t.as_bytes()).into());
        }
        Ok(Self(tokens))
    }
}

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiTokens({} redacted)", self.0.len())
    }
}

/// An IP network such as `127.0.0.0/8` or `::1/128`; a bare address is that one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let net = match s.contains('/') {
            true => s.parse::<ipnet::IpNet>().ok(),
            false => s.parse::<IpAddr>().ok().map(ipnet::IpNet::from),
        };
        net.map(Self).ok_or_else(|| {
            format!("{s:?} is not an IP network (an address, or address/prefix with a prefix of 0 to 32 for IPv4, 128 for IPv6)")
        })
    }
}

/// A comma-separated list of networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrList(pub Vec<Cidr>);

impl CidrList {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

impl FromStr for CidrList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// The edge checks, configured once at start-up.
pub struct Gate {
    pub verifier: Verifier,
    pub topics: TopicAllowList,
    /// The service's own AWS account, when known (STS GetCallerIdentity at start on the
    /// aws backend): with no `SNS_TOPIC_ARNS`, only its topics are served.
    pub own_account: Option<String>,
    pub confirmer: Arc<dyn SubscriptionConfirmer>,
    pub tokens: ApiTokens,
    /// Where the worker daemon's requests come from: the TCP peer and every forwarding
    /// hop a proxy names must be in it.
    pub trust_sqsd_from: CidrList,
    /// Off only for queues that only trusted producers can write.
    pub verify_sqs_envelopes: bool,
    /// A direct SNS delivery older than this is a replay, not a retry (SNS retries for an
    /// hour at most). Envelopes read from a queue are exempt: they wait there legitimately.
    pub max_message_age: Duration,
}

/// The headers in which proxies name the addresses a request came through.
const FORWARDING_HEADERS: [&str; 3] = ["x-forwarded-for", "x-real-ip", "forwarded"];

/// One address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:5678`, or
/// (in `Forwarded`) `for="[::1]:5678"`. Anything else (`unknown`, obfuscated names) is
/// `None`: not an address we can trust.
fn forwarded_ip(item: &str) -> Option<IpAddr> {
    let item = item.trim().trim_matches('"');
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = item.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = item.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

/// Every address the forwarding headers name, or `None` if one of them is unreadable.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut hops = Vec::new();
    for name in FORWARDING_HEADERS {
        for value in headers.get_all(name) {
            let value = value.to_str().ok()?;
            for item in value.split(',') {
                let item = match name {
                    // Forwarded: for=...;proto=...;by=... — only `for` names a client.
                    "forwarded" => {
                        let Some(f) = item.split(';').find_map(|kv| {
                            let (k, v) = kv.split_once('=')?;
                            k.trim().eq_ignore_ascii_case("for").then_some(v)
                        }) else {
                            continue;
                        };
                        f
                    }
                    _ => item,
                };
                hops.push(forwarded_ip(item)?);
            }
        }
    }
    Some(hops)
}

impl Gate {
    /// Whether the request came from inside the instance, as the worker daemon's do: the
    /// TCP peer is trusted, and so is every address a proxy in between says it forwarded
    /// for. Headers can only make a request *less* trusted: a proxy that forwards an
    /// outsider appends the outsider's address (the bundled nginx, ALB and EB's own nginx
    /// all do), and an outsider cannot remove it.
    pub fn from_trusted_origin(&self, headers: &HeaderMap, peer: IpAddr) -> bool {
        self.trust_sqsd_from.contains(peer)
            && forwarded_hops(headers)
                .is_some_and(|hops| hops.iter().all(|ip| self.trust_sqsd_from.contains(*ip)))
    }

    /// Whether worker-daemon headers may be believed: from a trusted origin, or on a
    /// request that proves itself with a token anyway. Anyone else's `X-Aws-Sqsd-*`
    /// headers are ignored: they do not run periodic tasks, skip envelope checks or name
    /// the message.
    pub fn believes_sqsd(&self, headers: &HeaderMap, peer: IpAddr) -> bool {
        crate::inbound::delivery::has_sqsd_headers(headers)
            && (self.from_trusted_origin(headers, peer) || self.has_token(headers))
    }

    fn has_token(&self, headers: &HeaderMap) -> bool {
        let auth = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        !self.tokens.is_empty() && self.tokens.accepts(auth)
    }

    /// Whether this request's SNS signature is to be checked (rather than the request
    /// being treated as an unsigned post).
    pub fn wants_signature(&self, received: &Received) -> bool {
        match &received.body {
            crate::inbound::delivery::Body::Sns(_) => {
                received.delivery.kind != DeliveryKind::Sqsd || self.verify_sqs_envelopes
            }
            _ => false,
        }
    }

    /// The topic allow list, on verified and unverified SNS messages alike.
    pub fn check_topic(&self, msg: &SnsMessage) -> Result<(), GateError> {
        Ok(self
            .topics
            .check(&msg.topic_arn, self.own_account.as_deref())?)
    }

    /// Topic first and age next (cheap, and no certificate is fetched for a foreign topic
    /// or a replay), then the signature.
    pub async fn verify_sns(&self, msg: &SnsMessage, kind: DeliveryKind) -> Result<(), GateError> {
        self.check_topic(msg)?;
        if kind != DeliveryKind::Sqsd {
            let at = msg.timestamp_utc().ok_or(SnsError::MalformedMessage {
                field: "Timestamp",
                problem: "is not an ISO 8601 time",
            })?;
            let age = self.verifier.now().signed_duration_since(at);
            if age.to_std().is_ok_and(|age| age > self.max_message_age) {
                return Err(SnsError::StaleMessage.into());
            }
        }
        self.verifier.verify(msg).await?;
        Ok(())
    }

    /// An unsigned post may be acted on when it is the worker daemon's (as
    /// [`Gate::believes_sqsd`] found, once, for this request), or carries a token; with no
    /// tokens set, when it comes from inside the instance (`from_inside`: the peer and every
    /// forwarding hop in `TRUST_SQSD_FROM`, or read from the queue by this process). Secure by
    /// default: a service reachable from outside hears nobody unsigned until tokens are set.
    pub fn admit_unsigned(
        &self,
        headers: &HeaderMap,
        believed_sqsd: bool,
        from_inside: bool,
    ) -> Result<(), GateError> {
        if believed_sqsd || self.has_token(headers) {
            return Ok(());
        }
        match (self.tokens.is_empty(), from_inside) {
            (true, true) => Ok(()),
            (true, false) => Err(GateError::TokensRequired),
            (false, _) => Err(GateError::Unauthorized),
        }
    }

    /// Confirms a verified SubscriptionConfirmation by visiting its SubscribeURL, once the
    /// URL is known to be SNS's own confirmation endpoint for the topic's region, with the
    /// message's own token.
    pub async fn confirm(&self, msg: &SnsMessage) -> Result<String, GateError> {
        let missing = |field| SnsError::MalformedMessage {
            field,
            problem: "is missing",
        };
        let url = msg
            .subscribe_url
            .as_deref()
            .ok_or_else(|| missing("SubscribeURL"))?;
        let token = msg.token.as_deref().ok_or_else(|| missing("Token"))?;
        let url = check_subscribe_url(url, &msg.topic_arn)?;
        check_subscribe_token(&url, token)?;
        Ok(self.confirmer.confirm(&url).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_accept_only_their_bearer() {
        let t: ApiTokens = "first-token-0123456789, second-token-0123456789"
            .parse()
            .expect("tokens");
        assert!(t.accepts(Some("Bearer first-token-0123456789")));
        assert!(t.accepts(Some("bearer second-token-0123456789")));
        assert!(!t.accepts(Some("Bearer first-token-012345678")));
        assert!(!t.accepts(Some("Basic first-token-0123456789")));
        assert!(!t.accepts(Some("first-token-0123456789")));
        assert!(!t.accepts(None));
        assert!(ApiTokens::default().is_empty());
    }

    #[test]
    fn tokens_never_show() {
        let t: ApiTokens = "super-secret-value-42".parse().expect("tokens");
        assert_eq!(format!("{t:?}"), "ApiTokens(1 redacted)");
        let err = "short".parse::<ApiTokens>().expect_err("too short");
        assert!(!err.contains("short\""), "{err}");
    }

    #[test]
    fn cidrs() {
        let l: CidrList = "127.0.0.0/8, ::1/128, 172.17.0.1".parse().expect("cidrs");
        for ok in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "172.17.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(l.contains(ok.parse().expect("ip")), "{ok}");
        }
        for no in ["10.0.0.1", "172.17.0.2", "::2", "128.0.0.1"] {
            assert!(!l.contains(no.parse().expect("ip")), "{no}");
        }
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .expect("any")
                .contains("8.8.8.8".parse().expect("ip"))
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.com/8".parse::<Cidr>().is_err());
        assert_eq!("".parse::<CidrList>(), Ok(CidrList::default()));
    }
}
