//! The login throttle: failed sign-ins are counted per account and per address over a
//! window, and past a limit the next attempts are refused until the oldest failure leaves
//! the window (a guesser gets a handful of tries a quarter-hour; the person themselves, a
//! wait, never a lock that needs an admin). Kept in memory: each instance of a fleet counts
//! on its own, so a fleet of N allows N times as many; with passwords of 12 characters or
//! more, hashed with Argon2id, that is still far from a guess.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::time::Instant;

/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures of one account within the window before its next attempts wait.
pub const PER_ACCOUNT: usize = 5;
/// Failures from one address within the window (people share addresses behind NAT).
pub const PER_ADDRESS: usize = 20;
/// Accounts and addresses remembered at most: past it the stalest is forgotten, so a flood
/// from many addresses cannot grow the process.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn account_key(account: &str) -> String {
    format!("account:{account}")
}

fn address_key(address: IpAddr) -> String {
    format!("address:{address}")
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(wait)`: too many failures of this account or from this address just now.
    pub fn check(&self, account: &str, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.lock();
        let wait = |key: String, limit: usize| -> Option<Duration> {
            let times = map.get(&key)?;
            let recent: Vec<&Instant> = times.iter().filter(|t| now < **t + WINDOW).collect();
            (recent.len() >= limit).then(|| (*recent[recent.len() - limit] + WINDOW) - now)
        };
        match (
            wait(account_key(account), PER_ACCOUNT),
            wait(address_key(address), PER_ADDRESS),
        ) {
            (None, None) => Ok(()),
            (a, b) => Err(a.unwrap_or_default().max(b.unwrap_or_default())),
        }
    }

    pub fn failed(&self, account: &str, address: IpAddr) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| times.back().is_some_and(|t| now < *t + WINDOW));
        }
        if map.len() >= MAX_KEYS
            && let Some(stalest) = map
                .iter()
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(k, _)| k.clone())
        {
            map.remove(&stalest);
        }
        for (key, limit) in [
            (account_key(account), PER_ACCOUNT),
            (address_key(address), PER_ADDRESS),
        ] {
            let times = map.entry(key).or_default();
            times.retain(|t| now < *t + WINDOW);
            times.push_back(now);
            // Only the last `limit` matter for the wait.
            while times.len() > limit {
                times.pop_front();
            }
        }
    }

    /// A sign-in succeeded: the account's failures are forgotten (the address's are not:
    /// one good password does not buy an address more guesses at others).
    pub fn succeeded(&self, account: &str) {
        self.lock().remove(&account_key(account));
    }
}

/// The address a sign-in came from, for the throttle. The TCP peer, unless it is a proxy on
/// this host or in a private network (nginx, the load balancer): then the last address in
/// `X-Forwarded-For` that is not private, the one the outermost proxy of ours saw. Earlier
/// entries are the client's own say and are never believed; when every hop is private the
/// peer stands for all of them.
pub fn client_address(headers: &HeaderMap, peer: IpAddr) -> IpAddr {
    if !is_private(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse::<IpAddr>().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|ip| !is_private(*ip))
        .unwrap_or(peer)
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[tokio::test(start_paused = true)]
    async fn an_account_waits_after_five_failures_until_the_first_leaves_the_window() {
        let t = Throttle::default();
        let from = ip("203.0.113.9");
        for _ in 0..PER_ACCOUNT {
            assert_eq!(t.check("alice", from), Ok(()));
            t.failed("alice", from);
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        // Five failures at 0..4 minutes, now at 5: the first counts until 15.
        assert_eq!(t.check("alice", from), Err(Duration::from_secs(10 * 60)));
        // Another account from the same address may still try.
        assert_eq!(t.check("bob", from), Ok(()));
        tokio::time::advance(Duration::from_secs(10 * 60)).await;
        assert_eq!(t.check("alice", from), Ok(()));
        // A success forgets the account's failures.
        t.failed("alice", from);
        assert!(t.check("alice", from).is_err());
        t.succeeded("alice");
        assert_eq!(t.check("alice", from), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_waits_after_twenty_failures_across_accounts() {
        let t = Throttle::default();
        let from = ip("203.0.113.9");
        for i in 0..PER_ADDRESS {
            t.failed(&format!("user{i}"), from);
        }
        assert_eq!(t.check("someone", from), Err(WINDOW));
        assert_eq!(t.check("someone", ip("198.51.100.1")), Ok(()));
        tokio::time::advance(WINDOW).await;
        assert_eq!(t.check("someone", from), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_bounded_under_a_flood_of_addresses() {
        let t = Throttle::default();
        for i in 0..(MAX_KEYS as u32 + 50) {
            t.failed("x", IpAddr::V4(std::net::Ipv4Addr::from(i)));
        }
        assert!(t.lock().len() <= MAX_KEYS);
    }

    #[test]
    fn the_address_is_the_one_our_outermost_proxy_saw() {
        let mut h = HeaderMap::new();
        // Straight from the internet: the peer, whatever the headers say.
        h.insert("x-forwarded-for", "10.0.0.1".parse().expect("v"));
        assert_eq!(client_address(&h, ip("203.0.113.9")), ip("203.0.113.9"));
        // Through nginx and the load balancer: the client's forged entry on the left is
        // passed over for what the load balancer appended.
        h.insert(
            "x-forwarded-for",
            "198.51.100.7, 203.0.113.9, 10.0.1.20".parse().expect("v"),
        );
        assert_eq!(client_address(&h, ip("127.0.0.1")), ip("203.0.113.9"));
        // Every hop private (an internal console): the peer.
        h.insert("x-forwarded-for", "10.0.2.2".parse().expect("v"));
        assert_eq!(client_address(&h, ip("127.0.0.1")), ip("127.0.0.1"));
        // Junk is passed over, not taken as a reason to lump everyone together.
        h.insert("x-forwarded-for", "junk, 203.0.113.9".parse().expect("v"));
        assert_eq!(client_address(&h, ip("127.0.0.1")), ip("203.0.113.9"));
    }
}
