//! Where push requests may connect: public addresses only, checked on the
//! same resolution the connection uses.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Whether a push endpoint may be sent to at this address. Endpoints come
/// from account holders, so without this an account could aim our POSTs at
/// the deployment's own network (SSRF) and read the answer's class off its
/// subscription (a 404 or 410 forgets it). Push services are on the public
/// internet: refused are loopback, private (RFC 1918, unique-local),
/// shared (CGNAT), link-local (the 169.254.169.254 and fd00:ec2::254
/// metadata services), multicast, broadcast, documentation and reserved
/// ranges, and IPv6 forms that embed an IPv4 address (mapped, compatible,
/// NAT64, 6to4) are judged by that address.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

pub(super) fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, IETF protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15, benchmarking.
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved.
        || a >= 240)
}

pub(super) fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let seg = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // ::a.b.c.d (IPv4-compatible, deprecated) and 64:ff9b::a.b.c.d (NAT64).
    if seg[..6] == [0; 6] || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(embedded(seg[6], seg[7]));
    }
    // 2002::/16, 6to4: the IPv4 address is the next 32 bits.
    if seg[0] == 0x2002 {
        return is_public_v4(embedded(seg[1], seg[2]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7, unique local.
        || (seg[0] & 0xfe00) == 0xfc00
        // fe80::/10 link-local, and fec0::/10, the old site-local.
        || (seg[0] & 0xffc0) == 0xfe80
        || (seg[0] & 0xffc0) == 0xfec0
        // 2001:db8::/32, documentation.
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)
        // 100::/64, discard-only.
        || seg[..4] == [0x100, 0, 0, 0])
}

/// A host name's addresses (port 0: the connector sets the URL's).
pub(super) type Lookup =
    dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>> + Send + Sync;

/// Every name a push request connects to goes through this resolver, which
/// hands the connector only public addresses: the check and the connection
/// see the same answer, so a name that resolves differently the second
/// time (DNS rebinding) cannot slip past it.
pub(super) struct PublicOnlyResolver {
    pub(super) lookup: Arc<Lookup>,
}

/// The refusal, recognised in `send` to report it as permanent.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no public address")]
pub(super) struct NotPublic(String);

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = Arc::clone(&self.lookup);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = lookup(host.clone()).await?;
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public_address(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub(super) fn system_lookup() -> Arc<Lookup> {
    Arc::new(|host: String| {
        Box::pin(async move { tokio::net::lookup_host((host.as_str(), 0)).await.map(Iterator::collect) })
    })
}

pub(super) fn public_only_client(lookup: Arc<Lookup>) -> Result<reqwest::Client, ConfigError> {
    http::builder()
        .dns_resolver(Arc::new(PublicOnlyResolver { lookup }))
        // Through a proxy the proxy would pick the address, unchecked.
        .no_proxy()
        .build()
        .map_err(|e| ConfigError::Client(error_chain(&e)))
}
