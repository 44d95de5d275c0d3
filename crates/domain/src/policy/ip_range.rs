//! Addresses and CIDR ranges as allow-lists, trusted proxies and access
//! rules name them: parsed, normalised and matched, with nothing else.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

use crate::policy::store::AllowlistRecord;

/// The broadest IPv4 range an allow-list takes: `0.0.0.0/0` would restrict
/// nothing yet still count as "a list" for the mandate.
pub const MIN_V4_PREFIX: u8 = 8;
/// The broadest IPv6 range an allow-list takes (a provider's allocation).
pub const MIN_V6_PREFIX: u8 = 32;

/// An address or a CIDR range, normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpRange(IpNet);

/// Why a text is not an acceptable range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("{0:?} is not an IP address or a CIDR range like 203.0.113.0/24")]
    Invalid(String),
    #[error("{0:?} is too broad: IPv4 ranges must be /8 or narrower, IPv6 ranges /32 or narrower")]
    TooBroad(String),
}

/// An address as the allow-list compares it: IPv4-mapped IPv6 as IPv4.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    IpAddr::from_str(s.trim()).ok().map(|ip| ip.to_canonical())
}

impl IpRange {
    /// Parses an address (`203.0.113.7`, `2001:db8::1`) or a CIDR range
    /// (`203.0.113.0/24`), of any breadth. Host bits are cleared.
    pub fn parse_any(s: &str) -> Result<Self, RangeError> {
        let t = s.trim();
        let invalid = || RangeError::Invalid(t.to_owned());
        let net = if t.contains('/') {
            IpNet::from_str(t).map_err(|_| invalid())?
        } else {
            IpNet::from(IpAddr::from_str(t).map_err(|_| invalid())?)
        };
        Ok(Self(canonical(net).trunc()))
    }

    /// `parse_any` for an allow-list entry: refuses ranges broader than
    /// `MIN_V4_PREFIX` / `MIN_V6_PREFIX`.
    pub fn parse(s: &str) -> Result<Self, RangeError> {
        let range = Self::parse_any(s)?;
        let min = match range.0 {
            IpNet::V4(_) => MIN_V4_PREFIX,
            IpNet::V6(_) => MIN_V6_PREFIX,
        };
        if range.0.prefix_len() < min {
            return Err(RangeError::TooBroad(s.trim().to_owned()));
        }
        Ok(range)
    }

    /// One address as a range of one.
    pub fn host(ip: IpAddr) -> Self {
        Self(IpNet::from(ip.to_canonical()))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// A single address (`/32`, `/128`).
    pub fn is_host(&self) -> bool {
        self.0.prefix_len() == self.0.max_prefix_len()
    }
}

/// `::ffff:192.0.2.0/120` is `192.0.2.0/24`.
fn canonical(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(n) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(n);
    }
    net
}

/// A single address prints without its prefix length.
impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() { write!(f, "{}", self.0.addr()) } else { write!(f, "{}", self.0) }
    }
}

impl FromStr for IpRange {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Parses a comma-separated list of addresses and ranges of any breadth
/// (the `trusted_proxies` setting).
pub fn parse_ranges(list: &str) -> Result<Vec<IpRange>, RangeError> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(IpRange::parse_any).collect()
}

/// Whether `ip` is in any of `ranges`; an address that does not parse is in none.
pub fn in_any(ranges: &[IpRange], ip: &str) -> bool {
    parse_ip(ip).is_some_and(|ip| ranges.iter().any(|r| r.contains(ip)))
}

/// Whether `ip` may use an account with this stored list.
pub(crate) fn allows(list: &[AllowlistRecord], ip: &str) -> bool {
    if list.is_empty() {
        return true;
    }
    let Some(ip) = parse_ip(ip) else { return false };
    list.iter().any(|r| IpRange::parse_any(&r.cidr).is_ok_and(|range| range.contains(ip)))
}
