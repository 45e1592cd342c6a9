//! Outbound HTTP proxies: which proxy, if any, a request to a URL goes through.
//!
//! One answer for every client Courier has (the downloader, the three forge clients and
//! libgit2's fetch and push), decided here so that they cannot disagree. The settings
//! come from a `proxy:` block in the configuration (per connection, and for the
//! platform) or, when there is none, from the environment the way curl reads it:
//! `https_proxy`/`HTTPS_PROXY` for `https://` URLs, `http_proxy`/`HTTP_PROXY` for
//! `http://`, `all_proxy`/`ALL_PROXY` for either, and `no_proxy`/`NO_PROXY` for the
//! exceptions. They are read once, when the configuration is loaded.

use std::fmt;
use std::net::IpAddr;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// The environment variables read, lower case first as curl does.
const HTTPS_VARS: [&str; 2] = ["https_proxy", "HTTPS_PROXY"];
const HTTP_VARS: [&str; 2] = ["http_proxy", "HTTP_PROXY"];
const ALL_VARS: [&str; 2] = ["all_proxy", "ALL_PROXY"];
const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// Where requests go: straight to their host, or through a proxy for some URLs.
#[derive(Clone, Default)]
pub struct Proxies {
    http: Option<ProxyServer>,
    https: Option<ProxyServer>,
    bypass: Vec<Bypass>,
}

/// One proxy server. Its credentials are secrets: [`ProxyServer::url`] and `Debug`
/// never show them.
#[derive(Clone)]
pub struct ProxyServer {
    url: Url,
    credentials: Option<(String, SecretString)>,
}

/// A `no_proxy` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bypass {
    /// `*`: no URL goes through the proxy.
    All,
    /// A name and its subdomains (`example.com` and `.example.com` alike).
    Domain(String),
    /// An IP address, or a network in CIDR notation.
    Network(IpAddr, u8),
    /// A host (name or address) on one port only: `host:port`.
    HostPort(String, u16),
}

impl Proxies {
    /// No proxy at all: every request goes straight to its host.
    pub fn direct() -> Proxies {
        Proxies::default()
    }

    /// One proxy for `http://` and `https://` URLs alike, except those `no_proxy` names.
    /// `url` is `http://` or `https://` with a host and an optional port, no credentials
    /// (they go in `credentials`) and no path.
    pub fn configured(
        url: &str,
        credentials: Option<(String, SecretString)>,
        no_proxy: &[String],
    ) -> Result<Proxies, String> {
        let server = ProxyServer::parse(url, credentials, false)?;
        Ok(Proxies {
            http: Some(server.clone()),
            https: Some(server),
            bypass: parse_bypass(no_proxy.iter().map(String::as_str))?,
        })
    }

    /// The proxies the environment names; [`Proxies::direct`] when it names none. A proxy
    /// URL there may carry credentials (`http://user:password@proxy:3128`), as curl allows;
    /// errors name the variable and never its value's credentials.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Proxies, String> {
        let read = |names: &[&'static str]| -> Option<(&'static str, String)> {
            names.iter().find_map(|name| {
                env(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (*name, v.trim().to_owned()))
            })
        };
        let server = |names: &[&'static str]| -> Result<Option<ProxyServer>, String> {
            match read(names).or_else(|| read(&ALL_VARS)) {
                Some((name, value)) => ProxyServer::parse(&value, None, true)
                    .map(Some)
                    .map_err(|e| format!("{name}: {e}")),
                None => Ok(None),
            }
        };
        let bypass = match read(&NO_PROXY_VARS) {
            Some((name, value)) => {
                parse_bypass(value.split(',')).map_err(|e| format!("{name}: {e}"))?
            }
            None => Vec::new(),
        };
        Ok(Proxies {
            http: server(&HTTP_VARS)?,
            https: server(&HTTPS_VARS)?,
            bypass,
        })
    }

    /// Whether no URL at all goes through a proxy.
    pub fn is_direct(&self) -> bool {
        (self.http.is_none() && self.https.is_none()) || self.bypass.contains(&Bypass::All)
    }

    /// The proxy a request to `target` goes through, or `None` to go straight there.
    pub fn for_url(&self, target: &Url) -> Option<&ProxyServer> {
        let server = match target.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            // ssh://, file://: libgit2 has no proxy for these.
            _ => None,
        }?;
        let host = target.host_str()?;
        let port = target.port_or_known_default();
        if self.bypass.iter().any(|rule| rule.matches(host, port)) {
            return None;
        }
        Some(server)
    }

    /// These proxies as a reqwest client takes them (`None` when nothing goes through one),
    /// for a client built with `no_proxy`, so the environment is never read behind them.
    pub fn for_reqwest(&self) -> Option<reqwest::Proxy> {
        if self.is_direct() {
            return None;
        }
        let proxies = self.clone();
        Some(reqwest::Proxy::custom(move |url| {
            proxies
                .for_url(url)
                .map(|p| p.url_with_credentials().expose_secret().to_owned())
        }))
    }

    /// The hosts of the proxies themselves: the downloader lets these resolve to private
    /// addresses, since a company's proxy normally sits at one.
    pub fn proxy_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = [&self.http, &self.https]
            .into_iter()
            .flatten()
            .filter_map(|s| s.url.host_str().map(|h| unbracket(h).to_ascii_lowercase()))
            .collect();
        hosts.dedup();
        hosts
    }
}

impl ProxyServer {
    fn parse(
        raw: &str,
        credentials: Option<(String, SecretString)>,
        credentials_in_url: bool,
    ) -> Result<ProxyServer, String> {
        // curl takes a bare `host:port` as an http proxy; so does everyone who copies it.
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("http://{raw}")
        };
        let mut url = Url::parse(&with_scheme).map_err(|e| format!("not a proxy URL ({e})"))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(format!(
                    "`{other}` proxies are not supported; use an http:// or https:// proxy"
                ));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the proxy URL has no host".into());
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err("a proxy URL is a scheme, host and port only".into());
        }
        let in_url = !url.username().is_empty() || url.password().is_some();
        let credentials = match (in_url, credentials_in_url) {
            (false, _) => credentials,
            (true, false) => {
                return Err(
                    "put the proxy's credentials in `username` and `password`, not in the URL"
                        .into(),
                );
            }
            (true, true) => {
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                let pair = (
                    decode(url.username()),
                    SecretString::from(decode(url.password().unwrap_or(""))),
                );
                let _ = url.set_username("");
                let _ = url.set_password(None);
                Some(pair)
            }
        };
        url.set_path("");
        Ok(ProxyServer { url, credentials })
    }

    /// The proxy's URL without credentials: safe to log.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The user name and password to send to the proxy, if any.
    pub fn credentials(&self) -> Option<(&str, &SecretString)> {
        self.credentials.as_ref().map(|(u, p)| (u.as_str(), p))
    }

    /// The URL with the credentials in it, for the clients that take them that way
    /// (libgit2, reqwest). A secret: hand it to the client, never to a log.
    pub fn url_with_credentials(&self) -> SecretString {
        let mut url = self.url.clone();
        if let Some((user, password)) = &self.credentials {
            let _ = url.set_username(user);
            let _ = url.set_password(Some(password.expose_secret()));
        }
        SecretString::from(url.to_string())
    }
}

impl Bypass {
    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let host = unbracket(host).to_ascii_lowercase();
        match self {
            Bypass::All => true,
            Bypass::Domain(domain) => {
                host == *domain
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
            Bypass::Network(net, bits) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_network(ip, *net, *bits)),
            Bypass::HostPort(h, p) => port == Some(*p) && host == *h,
        }
    }
}

fn parse_bypass<'a>(entries: impl Iterator<Item = &'a str>) -> Result<Vec<Bypass>, String> {
    let mut out = Vec::new();
    for entry in entries.map(str::trim).filter(|e| !e.is_empty()) {
        let rule = if entry == "*" {
            Bypass::All
        } else if let Some((net, bits)) = entry.split_once('/') {
            let ip: IpAddr = net
                .parse()
                .map_err(|_| format!("`{entry}` is not a network (address/bits)"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits
                .parse()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("`{entry}`: the prefix length is 0 to {max}"))?;
            Bypass::Network(ip, bits)
        } else if let Ok(ip) = unbracket(entry).parse::<IpAddr>() {
            Bypass::Network(ip, if ip.is_ipv4() { 32 } else { 128 })
        } else if let Some((host, port)) = entry.rsplit_once(':')
            && let Ok(port) = port.parse::<u16>()
        {
            Bypass::HostPort(unbracket(host).to_ascii_lowercase(), port)
        } else {
            let domain = entry.trim_start_matches("*.").trim_start_matches('.');
            if domain.is_empty() || domain.contains(['/', ':', '*', ' ']) {
                return Err(format!("`{entry}` is not a host, domain or network"));
            }
            Bypass::Domain(domain.to_ascii_lowercase())
        };
        out.push(rule);
    }
    Ok(out)
}

fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    if shift >= width {
        return true;
    }
    (ip >> shift) == (net >> shift)
}

impl fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.credentials {
            Some((user, _)) => write!(f, "ProxyServer({}, user {user})", self.url),
            None => write!(f, "ProxyServer({})", self.url),
        }
    }
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxies")
            .field("http", &self.http)
            .field("https", &self.https)
            .field("no_proxy", &self.bypass)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn via(proxies: &Proxies, url: &str) -> Option<String> {
        proxies
            .for_url(&Url::parse(url).unwrap())
            .map(|p| p.url().to_string())
    }

    #[test]
    fn the_environment_picks_a_proxy_by_scheme_and_lower_case_first() {
        let p = Proxies::from_env(&env(&[
            ("https_proxy", "http://secure.proxy:3128"),
            ("HTTPS_PROXY", "http://ignored:1"),
            ("HTTP_PROXY", "plain.proxy:8080"),
        ]))
        .unwrap();
        assert_eq!(
            via(&p, "https://github.com/x").as_deref(),
            Some("http://secure.proxy:3128/")
        );
        assert_eq!(
            via(&p, "http://git.corp/x").as_deref(),
            Some("http://plain.proxy:8080/")
        );
        assert_eq!(via(&p, "ssh://git.corp/x"), None);
        let all = Proxies::from_env(&env(&[("ALL_PROXY", "http://all:1")])).unwrap();
        assert_eq!(via(&all, "https://a.b/").as_deref(), Some("http://all:1/"));
        assert!(Proxies::from_env(&env(&[])).unwrap().is_direct());
    }

    #[test]
    fn no_proxy_matches_domains_addresses_networks_and_ports() {
        let p = Proxies::configured(
            "http://proxy:3128",
            None,
            &[
                ".corp.example".into(),
                "10.0.0.0/8".into(),
                "::1".into(),
                "127.0.0.1:8443".into(),
            ],
        )
        .unwrap();
        for direct in [
            "https://corp.example/",
            "https://git.corp.example/",
            "http://10.1.2.3/",
            "http://[::1]:80/",
            "https://127.0.0.1:8443/",
        ] {
            assert_eq!(via(&p, direct), None, "{direct}");
        }
        for proxied in [
            "https://notcorp.example/",
            "http://11.0.0.1/",
            "https://127.0.0.1:8444/",
            "https://github.com/",
        ] {
            assert!(via(&p, proxied).is_some(), "{proxied}");
        }
        let all = Proxies::configured("http://proxy:1", None, &["*".into()]).unwrap();
        assert!(all.is_direct());
        assert_eq!(via(&all, "https://github.com/"), None);
    }

    #[test]
    fn credentials_are_kept_out_of_the_url_and_debug_output() {
        let p =
            Proxies::from_env(&env(&[("HTTPS_PROXY", "http://me:s%40cret@proxy:3128")])).unwrap();
        let server = p.for_url(&Url::parse("https://x.y/").unwrap()).unwrap();
        assert_eq!(server.url().as_str(), "http://proxy:3128/");
        let (user, password) = server.credentials().unwrap();
        assert_eq!((user, password.expose_secret()), ("me", "s@cret"));
        assert_eq!(
            server.url_with_credentials().expose_secret(),
            "http://me:s%40cret@proxy:3128/"
        );
        assert!(!format!("{p:?}").contains("cret"));
        // In the configuration, credentials have their own keys (and `${VAR}`).
        let err = Proxies::configured("http://me:pw@proxy:3128", None, &[]).unwrap_err();
        assert!(
            err.contains("`username` and `password`") && !err.contains("pw"),
            "{err}"
        );
    }

    #[test]
    fn unusable_settings_are_refused_with_the_variable_named() {
        let err = Proxies::from_env(&env(&[("HTTPS_PROXY", "socks5://p:1080")])).unwrap_err();
        assert!(err.starts_with("HTTPS_PROXY: `socks5` proxies"), "{err}");
        let err = Proxies::from_env(&env(&[("NO_PROXY", "10.0.0.0/40")])).unwrap_err();
        assert!(err.contains("NO_PROXY") && err.contains("0 to 32"), "{err}");
        assert!(Proxies::configured("http://proxy:1/path", None, &[]).is_err());
    }
}
