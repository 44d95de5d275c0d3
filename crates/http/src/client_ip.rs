//! The client's address (SEC-60): the socket peer's, unless the peer is a
//! configured trusted proxy (`trusted_proxies`); then the right-most
//! address of `X-Forwarded-For` that is not itself a trusted proxy.
//!
//! Right-most, not left-most: each proxy appends the address it saw, so
//! entries to the left of the last untrusted hop were written by the client
//! and prove nothing. A request straight from an untrusted peer is judged by
//! its socket address whatever headers it carries. An entry that does not
//! parse where the client's address should be gives no address at all
//! ("unknown"), which no allow-list admits.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use twostep_domain::policy::allowlist::{IpRange, parse_ip};

/// The request's client address, decided once per request by `resolve`.
/// `None`: not known (no socket address, or a garbled forwarded chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// The address as audit entries and allow-lists read it.
    pub fn text(self) -> String {
        self.0.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`) as some proxies write it.
fn forwarded_entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    parse_ip(s).or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip().to_canonical()))
}

/// Decides the client address from the peer, the `X-Forwarded-For` headers
/// (all of them, in order) and the trusted proxies.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpRange]) -> Option<IpAddr> {
    let peer = peer.map(|p| p.to_canonical());
    let trusts = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    let mut current = peer?;
    if !trusts(current) {
        return Some(current);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for hop in hops.iter().rev() {
        // `current` is trusted, so the hop it reports is believed.
        current = forwarded_entry(hop)?;
        if !trusts(current) {
            return Some(current);
        }
    }
    // Every hop was a trusted proxy: the first one is the client.
    Some(current)
}

/// Middleware: stores the `ClientIp` for the extractors.
pub async fn resolve(trusted: Arc<Vec<IpRange>>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip = client_ip(peer, req.headers(), &trusted);
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn proxies(s: &str) -> Vec<IpRange> {
        twostep_domain::policy::allowlist::parse_ranges(s).expect("ranges")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let h = xff(&["203.0.113.7"]);
        assert_eq!(client_ip(Some(ip("198.51.100.1")), &h, &[]), Some(ip("198.51.100.1")));
        assert_eq!(client_ip(Some(ip("198.51.100.1")), &h, &proxies("127.0.0.1")), Some(ip("198.51.100.1")));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies("127.0.0.1/32, 10.0.0.0/8");
        let peer = Some(ip("127.0.0.1"));
        assert_eq!(client_ip(peer, &xff(&["203.0.113.7"]), &p), Some(ip("203.0.113.7")));
        // The client forged a left-most entry; the proxy appended what it saw.
        assert_eq!(client_ip(peer, &xff(&["192.0.2.1, 203.0.113.7"]), &p), Some(ip("203.0.113.7")));
        // Two proxies: skip the inner one.
        assert_eq!(client_ip(peer, &xff(&["192.0.2.1, 203.0.113.7, 10.1.2.3"]), &p), Some(ip("203.0.113.7")));
        // Several headers read as one list, in order.
        assert_eq!(client_ip(peer, &xff(&["192.0.2.1", "203.0.113.8"]), &p), Some(ip("203.0.113.8")));
        // No header: the proxy itself.
        assert_eq!(client_ip(peer, &HeaderMap::new(), &p), Some(ip("127.0.0.1")));
        // Only trusted hops: the first one.
        assert_eq!(client_ip(peer, &xff(&["10.9.9.9, 10.1.1.1"]), &p), Some(ip("10.9.9.9")));
    }

    #[test]
    fn ports_mapped_addresses_and_ipv6_are_understood() {
        let p = proxies("127.0.0.1, ::1");
        assert_eq!(client_ip(Some(ip("::1")), &xff(&["[2001:db8::5]:4711"]), &p), Some(ip("2001:db8::5")));
        assert_eq!(client_ip(Some(ip("127.0.0.1")), &xff(&["203.0.113.7:443"]), &p), Some(ip("203.0.113.7")));
        assert_eq!(client_ip(Some(ip("::ffff:127.0.0.1")), &xff(&["::ffff:203.0.113.9"]), &p), Some(ip("203.0.113.9")));
    }

    #[test]
    fn garbage_where_the_client_should_be_is_unknown() {
        let p = proxies("127.0.0.1");
        assert_eq!(client_ip(Some(ip("127.0.0.1")), &xff(&["not-an-ip"]), &p), None);
        // Garbage left of a real hop is never reached.
        assert_eq!(client_ip(Some(ip("127.0.0.1")), &xff(&["junk, 203.0.113.7"]), &p), Some(ip("203.0.113.7")));
        assert_eq!(client_ip(None, &xff(&["203.0.113.7"]), &p), None);
        assert_eq!(ClientIp(None).text(), "unknown");
    }
}
