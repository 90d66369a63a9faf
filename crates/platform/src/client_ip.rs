//! The client's address behind proxies. `X-Forwarded-For` is believed only when the peer is a
//! trusted proxy (`EMPORIUM_TRUSTED_PROXIES`), and then read from the right: the nearest address
//! that is not itself a trusted proxy is the client. Anything a client writes into the header
//! itself sits further left and is never reached, so it cannot dodge a per-IP limit.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;
use ipnet::IpNet;

pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// Networks whose `X-Forwarded-For` is believed. Empty (the default): the peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8, 127.0.0.1, ::1`: addresses or CIDR networks, comma-separated.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = IpNet::from_str(item)
                .or_else(|_| IpAddr::from_str(item).map(IpNet::from))
                .map_err(|_| format!("{item:?} is not an IP address or CIDR network"))?;
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The addresses in `X-Forwarded-For`, left (original client) to right (nearest proxy).
    fn chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
        headers
            .get_all(FORWARDED_FOR)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| IpAddr::from_str(s.trim()).ok().map(canonical))
            .collect()
    }

    /// The believed hops, nearest last: from the right, trusted proxies up to and including
    /// the first address that is not one (the client).
    fn believed(&self, peer: IpAddr, headers: &HeaderMap) -> Vec<IpAddr> {
        let mut hops = vec![peer];
        if !self.contains(peer) {
            return hops;
        }
        for hop in Self::chain(headers).into_iter().rev() {
            match hop {
                Some(ip) if self.contains(ip) => hops.push(ip),
                Some(ip) => {
                    hops.push(ip);
                    break;
                }
                // A garbled entry: nothing left of it can be believed.
                None => break,
            }
        }
        hops.reverse();
        hops
    }

    /// The client: the peer, unless the peer is trusted and names who it forwards for.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        self.believed(canonical(peer?), headers).first().copied()
    }

    /// The `X-Forwarded-For` a proxy sends on: the believed part of the incoming chain plus
    /// the peer. An untrusted peer's own header is dropped.
    pub fn forward_for(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<String> {
        let hops = self.believed(canonical(peer?), headers);
        Some(
            hops.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address for this request, with the app's `TrustedProxies` (none registered:
/// the peer).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    match req.app_data::<TrustedProxies>() {
        Some(trusted) => trusted.client_ip(peer, req.headers()),
        None => peer.map(canonical),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(
                HeaderName::from_static(FORWARDED_FOR),
                HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("")),
            );
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        IpAddr::from_str(s).ok()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("198.51.100.9"), &headers(&["203.0.113.1"])),
            ip("198.51.100.9")
        );
        let lan = TrustedProxies::parse("10.0.0.0/8").unwrap_or_default();
        assert_eq!(
            lan.client_ip(ip("198.51.100.9"), &headers(&["203.0.113.1"])),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap_or_default();
        // The client spoofs 1.1.1.1; the edge proxy appended the real address.
        let h = headers(&["1.1.1.1, 203.0.113.7", "10.0.0.5"]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.7"));
        assert_eq!(
            t.forward_for(ip("127.0.0.1"), &h).as_deref(),
            Some("203.0.113.7, 10.0.0.5, 127.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(
            t.client_ip(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        // Garbage stops the walk at the last believed hop.
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), &headers(&["nonsense, 10.0.0.5"])),
            ip("10.0.0.5")
        );
        // IPv4-mapped peers count as IPv4.
        assert_eq!(
            t.client_ip(ip("::ffff:127.0.0.1"), &headers(&["203.0.113.7"])),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn an_untrusted_peer_forwards_only_itself() {
        let t = TrustedProxies::default();
        assert_eq!(
            t.forward_for(ip("203.0.113.7"), &headers(&["1.1.1.1"]))
                .as_deref(),
            Some("203.0.113.7")
        );
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/8, banana").is_err());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert_eq!(TrustedProxies::parse(""), Ok(TrustedProxies::default()));
    }
}
