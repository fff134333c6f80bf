//! `fetch.deny_private`: for deployments where feed lists come from untrusted people, refuse to
//! fetch from this machine, its network, or a cloud's metadata service (SSRF). Checked on every
//! URL (the feed's and each redirect's) and on every address a host name resolves to, at
//! connect time, so DNS rebinding cannot slip a private address past a check made earlier.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why an address is refused, or `None` when it is a public one.
pub fn private_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_kind(v4),
            None => v6_kind(v6),
        },
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        // 169.254.169.254 is the metadata service of AWS, GCP, Azure and others.
        Some("a link-local or cloud metadata address")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("an unspecified address")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Some("a broadcast, multicast or reserved address")
    } else {
        None
    }
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private (unique local) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// Refuses URLs that are not http(s) or that name a private IP literally. Host names are
/// checked when they resolve ([`PublicOnly`]).
/// Why an address is refused under `fetch.deny_private`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} is not an http(s) URL")]
    NotHttp(Url),
    #[error("{ip} is {kind}")]
    Private { ip: IpAddr, kind: &'static str },
    /// Every address the name resolves to is private (or it resolves to none).
    #[error("{host} resolves to {kind}")]
    Resolves { host: String, kind: &'static str },
    #[error("redirect to {to}: {why}")]
    Redirect { to: Url, why: Box<Refusal> },
}

pub fn check_url(url: &Url) -> Result<(), Refusal> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::NotHttp(url.clone()));
    }
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    match private_kind(ip) {
        Some(kind) => Err(Refusal::Private { ip, kind }),
        None => Ok(()),
    }
}

/// A resolver that drops private addresses and fails when nothing public is left.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| private_kind(a.ip()).is_none())
                .collect();
            if public.is_empty() {
                let kind = all
                    .first()
                    .and_then(|a| private_kind(a.ip()))
                    .unwrap_or("not resolvable");
                // Typed, so that the fetcher finds it in reqwest's chain of errors.
                return Err(Box::new(Refusal::Resolves { host, kind }) as _);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.100.100.200",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                private_kind(private.parse().unwrap()).is_some(),
                "{private}"
            );
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "172.32.0.1",
        ] {
            assert!(private_kind(public.parse().unwrap()).is_none(), "{public}");
        }
    }

    #[test]
    fn literal_urls_are_checked() {
        assert!(
            check_url(&Url::parse("http://127.0.0.1:8080/feed").unwrap())
                .unwrap_err()
                .to_string()
                .contains("loopback")
        );
        assert!(check_url(&Url::parse("http://[::1]/feed").unwrap()).is_err());
        assert!(
            check_url(&Url::parse("http://169.254.169.254/latest/meta-data/").unwrap())
                .unwrap_err()
                .to_string()
                .contains("metadata")
        );
        assert!(check_url(&Url::parse("file:///etc/passwd").unwrap()).is_err());
        assert!(check_url(&Url::parse("https://cointelegraph.com/rss").unwrap()).is_ok());
    }
}
