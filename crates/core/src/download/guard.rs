//! Which hosts and addresses a download may reach.
//!
//! Two doors, because a URL names a host and the connection goes to an address:
//!
//! * before each request (and each redirect hop), the URL's host must be allowed
//!   ([`HostRules::host_allowed`]), and an IP-literal host is checked as an address right
//!   away (reqwest does not call the resolver for IP literals);
//! * at connect time, [`GuardedResolver`] resolves names itself and refuses any answer with
//!   a non-public address. Checking the addresses actually connected to, rather than a
//!   lookup made earlier, is what defeats DNS rebinding.
//!
//! Hosts listed as insecure are exempt from the address rule (and may use plain `http`):
//! that is how tests and a platform on a private network are reached, and it has to be
//! said explicitly per host.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Whether connecting to `ip` must be refused unless the host is explicitly insecure:
/// loopback, private (RFC 1918), shared/CGNAT (100.64/10), link-local, unique-local,
/// unspecified, multicast, broadcast and reserved, documentation and benchmarking ranges,
/// IPv4-mapped and IPv4-compatible IPv6, NAT64 and 6to4 wrapping a forbidden IPv4, Teredo,
/// and IPv6 site-local.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                    // "this network", unspecified
        || a == 10                            // private
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || a == 127                           // loopback
        || (a == 169 && b == 254)             // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)     // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)     // documentation
        || (a == 192 && b == 168)             // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100)  // documentation
        || (a == 203 && b == 0 && c == 113)   // documentation
        || a >= 224 // multicast, reserved, broadcast
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    // ::ffff:0:0/96 (IPv4-mapped) and ::/96 (IPv4-compatible): refused outright, whatever
    // the IPv4 inside; a public server has a real IPv6 address or an A record.
    if s[..5] == [0; 5] && (s[5] == 0 || s[5] == 0xffff) {
        return true;
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    match s[0] {
        // NAT64 well-known prefix 64:ff9b::/96 reaches the embedded IPv4.
        0x0064 if s[1] == 0xff9b && s[2..6] == [0; 4] => forbidden_v4(embedded(s[6], s[7])),
        // Local-use NAT64 64:ff9b:1::/48.
        0x0064 if s[1] == 0xff9b && s[2] == 1 => true,
        // Discard-only 100::/64.
        0x0100 if s[1..4] == [0; 3] => true,
        // Teredo 2001::/32 and documentation 2001:db8::/32.
        0x2001 if s[1] == 0 || s[1] == 0x0db8 => true,
        // 6to4 2002::/16 reaches the IPv4 in bits 16..48.
        0x2002 => forbidden_v4(embedded(s[1], s[2])),
        // Unique-local fc00::/7, link-local fe80::/10, site-local fec0::/10, multicast ff00::/8.
        x if x & 0xfe00 == 0xfc00 || x & 0xffc0 == 0xfe80 || x & 0xffc0 == 0xfec0 => true,
        x if x & 0xff00 == 0xff00 => true,
        _ => false,
    }
}

/// A host as compared against the rules: lower case, no trailing dot, IPv6 without brackets.
pub(crate) fn host_key(url: &Url) -> Option<String> {
    Some(match url.host()? {
        Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    })
}

/// The IP of an IP-literal host.
pub(crate) fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Domain(_) => None,
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
    }
}

/// One entry of `download_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `example.com`, `127.0.0.1`, `::1`: that host only.
    Exact(String),
    /// `*.example.com`: any host ending in `.example.com` (not `example.com` itself).
    Subdomains(String),
}

/// The host rules of a [`DownloadPolicy`](super::DownloadPolicy), validated.
#[derive(Debug, Clone)]
pub(crate) struct HostRules {
    allowed: Vec<HostPattern>,
    insecure: Arc<HashSet<String>>,
}

/// Lower case, no trailing dot, IP addresses in their canonical text (so `::ffff:7f00:1`
/// matches the host key `::ffff:127.0.0.1`).
fn normalise_pattern(raw: &str) -> String {
    let host = raw
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host,
    }
}

fn check_plain_host(raw: &str, host: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("host `{raw}`: {why}"));
    if host.is_empty() {
        return bad("empty");
    }
    if host.contains("://") || host.contains('/') {
        return bad("give a host name, not a URL");
    }
    if host.contains('*') {
        return bad("`*` is only allowed as a leading `*.`");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '@' || c == '?' || c == '#')
    {
        return bad("not a host name");
    }
    if host.parse::<IpAddr>().is_err() && host.contains(':') {
        return bad("give the host without a port");
    }
    Ok(())
}

impl HostRules {
    pub(crate) fn new(
        download_hosts: &[String],
        insecure_hosts: &[String],
    ) -> Result<Self, String> {
        let mut allowed = Vec::with_capacity(download_hosts.len());
        for raw in download_hosts {
            let host = normalise_pattern(raw);
            let pattern = match host.strip_prefix("*.") {
                Some(suffix) => {
                    check_plain_host(raw, suffix)?;
                    if !suffix.contains('.') {
                        return Err(format!(
                            "host `{raw}`: a wildcard needs at least two labels after `*.`"
                        ));
                    }
                    HostPattern::Subdomains(suffix.to_owned())
                }
                None => {
                    check_plain_host(raw, &host)?;
                    HostPattern::Exact(host)
                }
            };
            allowed.push(pattern);
        }
        let mut insecure = HashSet::with_capacity(insecure_hosts.len());
        for raw in insecure_hosts {
            let host = normalise_pattern(raw);
            check_plain_host(raw, &host)?;
            insecure.insert(host);
        }
        Ok(HostRules {
            allowed,
            insecure: Arc::new(insecure),
        })
    }

    /// Whether `host` (a [`host_key`]) matches `download_hosts`.
    pub(crate) fn host_allowed(&self, host: &str) -> bool {
        self.allowed.iter().any(|pattern| match pattern {
            HostPattern::Exact(exact) => exact == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        })
    }

    /// Whether `host` (a [`host_key`]) may use `http` and private addresses.
    pub(crate) fn is_insecure(&self, host: &str) -> bool {
        self.insecure.contains(host)
    }

    /// The resolver, which also lets the configured proxies' own hosts resolve to private
    /// addresses: a company's proxy sits at one, and the operator named it.
    pub(crate) fn resolver(&self, proxy_hosts: &[String]) -> GuardedResolver {
        let mut trusted = (*self.insecure).clone();
        trusted.extend(proxy_hosts.iter().cloned());
        GuardedResolver {
            insecure: Arc::new(trusted),
        }
    }
}

/// The resolver refused a name because one of its addresses is not public. Carried through
/// reqwest's error chain and turned back into
/// [`DownloadError::AddressNotAllowed`](super::DownloadError::AddressNotAllowed).
#[derive(Debug)]
pub(crate) struct AddressRefused {
    pub(crate) host: String,
    pub(crate) addr: IpAddr,
}

impl fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves to non-public address {}",
            self.host, self.addr
        )
    }
}

impl std::error::Error for AddressRefused {}

/// The system resolver, filtered: a name with any non-public address is refused (unless
/// the host is insecure). Refusing the whole answer rather than dropping the bad addresses
/// keeps a half-poisoned name from working some of the time.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    insecure: Arc<HashSet<String>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let insecure = Arc::clone(&self.insecure);
        Box::pin(async move {
            let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !insecure.contains(&host)
                && let Some(bad) = addrs.iter().find(|a| is_forbidden_address(a.ip()))
            {
                return Err(Box::new(AddressRefused {
                    host,
                    addr: bad.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_and_public_addresses() {
        let forbidden = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ];
        for ip in forbidden {
            assert!(
                is_forbidden_address(ip.parse().unwrap()),
                "{ip} must be refused"
            );
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "192.169.0.1",
            "198.17.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450::1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for ip in public {
            assert!(
                !is_forbidden_address(ip.parse().unwrap()),
                "{ip} must be allowed"
            );
        }
    }

    #[test]
    fn host_patterns_match_on_a_dot_boundary() {
        let rules = HostRules::new(
            &[
                "*.Supernova.io".into(),
                "exact.example.com.".into(),
                "[::1]".into(),
            ],
            &[],
        )
        .unwrap();
        assert!(rules.host_allowed("a.supernova.io"));
        assert!(rules.host_allowed("a.b.supernova.io"));
        assert!(!rules.host_allowed("supernova.io"));
        assert!(!rules.host_allowed("evilsupernova.io"));
        assert!(!rules.host_allowed("supernova.io.evil.com"));
        assert!(!rules.host_allowed(".supernova.io"));
        assert!(rules.host_allowed("exact.example.com"));
        assert!(!rules.host_allowed("sub.exact.example.com"));
        assert!(rules.host_allowed("::1"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "*",
            "*.io",
            "a.*.io",
            "https://a.io",
            "a.io/x",
            "a.io:443",
            "",
            "u@a.io",
        ] {
            assert!(
                HostRules::new(&[bad.into()], &[]).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(HostRules::new(&[], &["*.local".into()]).is_err());
    }

    #[test]
    fn host_key_normalises() {
        let key = |u: &str| host_key(&Url::parse(u).unwrap()).unwrap();
        assert_eq!(key("https://A.Example.COM./x"), "a.example.com");
        assert_eq!(key("http://[::1]:8080/"), "::1");
        assert_eq!(key("http://2130706433/"), "127.0.0.1");
    }
}
