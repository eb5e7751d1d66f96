//! The acknowledgement link in a page's messages: `PUBLIC_URL/pages/ID/PERSON/UNTIL/TOKEN`,
//! where TOKEN signs the page, the person it was sent to and the instant it lapses. A GET
//! shows the page and a button; only the POST the button makes acknowledges, so a link
//! scanner that follows every link in a mail or a text changes nothing. A link opens only
//! its own page, for its own person, until it lapses and while the page is live.

use chrono::{DateTime, Utc};

use crate::domain::page::PageId;
use crate::domain::signing::SigningKey;

/// How long a link works: a day, long past any escalation (each round's messages carry
/// fresh links).
pub const LINK_LIFE: chrono::Duration = chrono::Duration::hours(24);

/// Makes and checks the links.
#[derive(Debug, Clone)]
pub struct PageLinks {
    key: SigningKey,
    /// `PUBLIC_URL`, without a trailing slash.
    base: String,
}

/// Why `PUBLIC_URL` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "PUBLIC_URL {0:?} is not the service's address: https://host[:port][/path] (http only for \
     localhost), with no query or fragment"
)]
pub struct BadPublicUrl(String);

impl PageLinks {
    pub fn new(key: SigningKey, public_url: &str) -> Result<Self, BadPublicUrl> {
        let bad = || BadPublicUrl(public_url.to_owned());
        let url = url::Url::parse(public_url.trim()).map_err(|_| bad())?;
        let local = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => return Err(bad()),
        };
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && local);
        if !scheme_ok || url.query().is_some() || url.fragment().is_some() {
            return Err(bad());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad());
        }
        Ok(Self {
            key,
            base: url.as_str().trim_end_matches('/').to_owned(),
        })
    }

    fn message(page: PageId, person: &str, until: i64) -> String {
        // Bound to this use: a token for a feed or anything else never opens a page.
        format!("cw-support-api page link v1:{page}:{person}:{until}")
    }

    /// The link for a person, lapsing `LINK_LIFE` after `now`.
    pub fn link(&self, page: PageId, person: &str, now: DateTime<Utc>) -> String {
        let until = (now + LINK_LIFE).timestamp();
        let token = self.key.sign(&Self::message(page, person, until));
        format!("{}/pages/{page}/{person}/{until}/{token}", self.base)
    }

    /// Whether a link's parts are one this service made, not yet lapsed at `now`.
    pub fn check(
        &self,
        page: PageId,
        person: &str,
        until: i64,
        token: &str,
        now: DateTime<Utc>,
    ) -> bool {
        until > now.timestamp()
            && self
                .key
                .verifies(&Self::message(page, person, until), token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> PageLinks {
        let key = SigningKey::new("PAGE_LINK_KEY", &"k".repeat(32)).expect("key");
        PageLinks::new(key, "https://pager.example.com/").expect("url")
    }

    /// Splits a link into its parts, as the route reads them.
    fn parts(link: &str) -> (PageId, String, i64, String) {
        let rest = link
            .strip_prefix("https://pager.example.com/pages/")
            .expect("prefix");
        let p: Vec<&str> = rest.split('/').collect();
        (
            p[0].parse().expect("id"),
            p[1].into(),
            p[2].parse().expect("until"),
            p[3].into(),
        )
    }

    #[test]
    fn a_link_opens_its_page_for_its_person_until_it_lapses() {
        let now: DateTime<Utc> = "2027-03-01T03:00:00Z".parse().expect("t");
        let l = links();
        let link = l.link(PageId(12), "alice", now);
        let (page, person, until, token) = parts(&link);
        assert_eq!((page, person.as_str()), (PageId(12), "alice"));
        assert!(l.check(page, &person, until, &token, now));
        assert!(l.check(
            page,
            &person,
            until,
            &token,
            now + LINK_LIFE - chrono::Duration::seconds(1)
        ));
        assert!(
            !l.check(page, &person, until, &token, now + LINK_LIFE),
            "lapsed"
        );
        assert!(
            !l.check(PageId(13), &person, until, &token, now),
            "another page"
        );
        assert!(!l.check(page, "bob", until, &token, now), "another person");
        assert!(
            !l.check(page, &person, until + 3600, &token, now),
            "a later lapse"
        );
        let mut tampered = token.clone();
        tampered.replace_range(0..1, if token.starts_with('0') { "1" } else { "0" });
        assert!(!l.check(page, &person, until, &tampered, now), "tampered");
        assert!(!l.check(page, &person, until, "zz", now), "not hex");
        let other = PageLinks::new(
            SigningKey::new("PAGE_LINK_KEY", &"x".repeat(32)).expect("key"),
            "https://pager.example.com",
        )
        .expect("url");
        assert!(
            !other.check(page, &person, until, &token, now),
            "another key"
        );
    }

    #[test]
    fn the_public_url_must_be_the_services_address() {
        let key = || SigningKey::new("PAGE_LINK_KEY", &"k".repeat(32)).expect("key");
        for good in [
            "https://pager.example.com",
            "https://x.example.com:8443/pager/",
            "http://localhost:5000",
            "http://127.0.0.1:5000",
        ] {
            assert!(PageLinks::new(key(), good).is_ok(), "{good}");
        }
        for bad in [
            "http://pager.example.com",
            "pager.example.com",
            "https://pager.example.com/?a=1",
            "https://u:p@pager.example.com",
            "https://pager.example.com/#x",
            "",
        ] {
            let e = PageLinks::new(key(), bad).expect_err(bad);
            assert!(
                e.to_string().contains("is not the service's address"),
                "{e}"
            );
        }
        assert_eq!(
            PageLinks::new(key(), "https://x.example.com/pager/")
                .expect("url")
                .link(PageId(1), "a", Utc::now())
                .split("/pages/")
                .next(),
            Some("https://x.example.com/pager")
        );
    }
}
