//! The client's address for per-client budgets (B5) — the one place it is decided.
//!
//! It is the TCP peer, unless the peer is in `ABBOTIK_TRUSTED_PROXIES` (CIDRs): then it is the
//! last address of `X-Forwarded-For` that is not itself a trusted proxy (read right to left,
//! since each proxy appends the address it saw). When every hop is trusted the leftmost one is
//! the client; an unparseable entry stops the walk at the last hop proven so far.

use axum::http::HeaderMap;
use std::net::IpAddr;

/// One `address/prefix` network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `fd00::/8`, or a bare address (a single host).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
        };
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// A comma- or space-separated list of CIDRs (`ABBOTIK_TRUSTED_PROXIES`).
pub fn parse_list(s: &str) -> Result<Vec<Cidr>, String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(Cidr::parse)
        .collect()
}

fn trusted(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

/// The client address of a request from `peer` with `headers`.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, proxies: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if proxies.is_empty() || !trusted(proxies, peer) {
        return Some(peer);
    }
    let mut client = peer;
    // Header lines in order, entries right to left.
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for entry in lines.iter().rev().flat_map(|l| l.rsplit(',')) {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            return Some(client);
        };
        client = ip.to_canonical();
        if !trusted(proxies, client) {
            return Some(client);
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(xff: &[&str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for v in xff {
            m.append("x-forwarded-for", v.parse().unwrap());
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.1.2.3")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert_eq!(parse_list("10.0.0.0/8, 127.0.0.1 ::1").unwrap().len(), 3);
        assert!(parse_list("").unwrap().is_empty());
    }

    #[test]
    fn forwarded_for() {
        let p = parse_list("10.0.0.0/8").unwrap();
        let peer = Some(ip("10.0.0.5"));
        // Untrusted peer: the header is ignored.
        assert_eq!(
            resolve(Some(ip("8.8.8.8")), &h(&["1.1.1.1"]), &p),
            Some(ip("8.8.8.8"))
        );
        // No proxies configured: the peer.
        assert_eq!(resolve(peer, &h(&["1.1.1.1"]), &[]), peer);
        // The last untrusted address wins over a spoofed leftmost one.
        assert_eq!(
            resolve(peer, &h(&["6.6.6.6, 2.2.2.2, 10.0.0.9"]), &p),
            Some(ip("2.2.2.2"))
        );
        assert_eq!(
            resolve(peer, &h(&["6.6.6.6", "2.2.2.2"]), &p),
            Some(ip("2.2.2.2"))
        );
        // All trusted: the leftmost.
        assert_eq!(
            resolve(peer, &h(&["10.0.0.7, 10.0.0.8"]), &p),
            Some(ip("10.0.0.7"))
        );
        // Garbage stops at the last proven hop; no header → the peer.
        assert_eq!(
            resolve(peer, &h(&["junk, 10.0.0.8"]), &p),
            Some(ip("10.0.0.8"))
        );
        assert_eq!(resolve(peer, &h(&[]), &p), peer);
    }
}
