//! Raw configuration to validated [`Config`], collecting every problem.
//!
//! Each check pushes a [`Problem`] with the key path and carries on with a
//! placeholder, so one run reports everything wrong with the file. The placeholders
//! never escape: any problem turns the result into [`ConfigError::Invalid`].
//!
//! This file holds the validator, its entry point and the string helpers every section
//! uses; each section of the file is checked in its own module.

mod connections;
mod hooks;
mod naming;
mod platform;
mod targets;

use std::path::{Component, Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::error::{ConfigError, Location, Problem};
use super::interpolate::interpolate;
use super::locate::locate;
use super::raw::{IdString, RawConfig, RawProxy, RawTls};
use super::{Config, HostPattern, Limits, TlsRoots};
use crate::proxy::Proxies;
use crate::template::Templates;

const DEFAULT_WORKERS: u32 = 4;
const MAX_WORKERS: u32 = 256;

pub(super) fn load(
    text: &str,
    source_name: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        source_name: source_name.to_owned(),
        problems,
    };
    let raw = parse(text).map_err(|p| invalid(vec![p]))?;
    // The environment's proxies, read once for every setting without a `proxy` block;
    // a broken variable is one problem, not one per connection.
    let mut problems = Vec::new();
    let env_proxies = Proxies::from_env(env)
        .map_err(|e| problems.push(Problem::at("", format!("the proxy environment: {e}"))))
        .ok();
    let mut v = Validator {
        env,
        env_proxies,
        base_dir,
        problems,
        templates: Templates::new(),
        insecure_hosts: Vec::new(),
        broken_connections: Vec::new(),
    };
    let config = v.config(raw);
    if v.problems.is_empty() {
        return Ok(config);
    }
    for problem in &mut v.problems {
        if problem.location.is_none() {
            problem.location = locate(text, &problem.path);
        }
    }
    // Top to bottom, the order a person fixes them in.
    v.problems
        .sort_by_key(|p| p.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
    Err(invalid(v.problems))
}

fn parse(text: &str) -> Result<RawConfig, Problem> {
    if text.trim().is_empty() {
        return Err(Problem::at(
            "",
            "the configuration is empty; at least one entry under `hooks` is required",
        ));
    }
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        // serde_path_to_error writes `?` for a position it could not name (inside a
        // YAML syntax error); the location says more.
        let path = error.path().to_string();
        let mut path = path.trim_end_matches(".?").to_owned();
        if path == "." || path == "?" {
            path.clear();
        }
        let inner = error.into_inner();
        let location = inner.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        });
        let mut message = inner.to_string();
        // serde_norway appends the position and prefixes its own key path; both are
        // printed from the structured fields instead.
        if let Some(loc) = location {
            let at = format!(" at line {} column {}", loc.line, loc.column);
            message = message.replacen(&at, "", 1);
        }
        // Its key path is the parent of ours for an unknown key, ours otherwise.
        let mut prefix = path.as_str();
        while !prefix.is_empty() {
            if let Some(stripped) = message.strip_prefix(&format!("{prefix}: ")) {
                message = stripped.to_owned();
                break;
            }
            prefix = &prefix[..prefix.rfind(['.', '[']).unwrap_or(0)];
        }
        Problem {
            path,
            location,
            message,
        }
    })
}

struct Validator<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// `None` when the environment's proxy variables are unusable (already a problem).
    env_proxies: Option<Proxies>,
    base_dir: &'a Path,
    problems: Vec<Problem>,
    templates: Templates,
    insecure_hosts: Vec<HostPattern>,
    /// Connections that exist but failed validation: targets naming them are not
    /// "unknown connection" errors (the connection's own problem is reported).
    broken_connections: Vec<String>,
}

impl Validator<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::at(path, message));
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let listen = self.listen(raw.listen.as_deref());
        let data_dir = self.data_dir(raw.data_dir.as_deref());
        let store = self.store(raw.store.as_ref(), &data_dir);
        let platform = self.platform(raw.platform);
        let webhook = self.webhook(raw.webhook, listen, &platform);
        let admin = self.admin(raw.admin, webhook.as_ref());
        let limits = Limits {
            archive: raw.limits.archive,
            download: raw.limits.download,
        };
        self.limits(&limits);
        let workers = raw.workers.unwrap_or(DEFAULT_WORKERS);
        if workers == 0 || workers > MAX_WORKERS {
            self.problem("workers", format!("must be between 1 and {MAX_WORKERS}"));
        }
        let connections = self.connections(raw.connections);
        let hooks = self.hooks(raw.hooks, &connections);
        Config {
            listen,
            data_dir,
            store,
            webhook,
            admin,
            platform,
            limits,
            workers,
            connections,
            hooks,
            templates: std::mem::take(&mut self.templates),
        }
    }

    // ---- strings -------------------------------------------------------------------

    /// Interpolates a string value; `None` (with a problem recorded) on failure.
    fn text(&mut self, path: &str, raw: &str) -> Option<String> {
        match interpolate(raw, self.env) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problem(path, e.to_string());
                None
            }
        }
    }

    /// Interpolates a string that must not be empty.
    fn non_empty(&mut self, path: &str, raw: &str) -> Option<String> {
        let s = self.text(path, raw)?;
        if s.trim().is_empty() {
            self.problem(path, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn id(&mut self, path: &str, raw: &IdString) -> Option<String> {
        self.non_empty(path, &raw.0)
    }

    fn list(&mut self, path: &str, raw: Option<&Vec<String>>) -> Vec<String> {
        let mut out = Vec::new();
        for (i, item) in raw.into_iter().flatten().enumerate() {
            if let Some(s) = self.non_empty(&format!("{path}[{i}]"), item) {
                out.push(s);
            }
        }
        out
    }

    /// Interpolates a secret without ever copying its value into a message.
    fn secret(&mut self, path: &str, raw: &SecretString) -> Option<SecretString> {
        let value = self.text(path, raw.expose_secret())?;
        if value.trim().is_empty() {
            self.problem(path, "must not be empty");
            return None;
        }
        Some(SecretString::from(value))
    }

    /// The certificate authorities of a `tls.ca_file`, read now: a file that cannot be
    /// read or holds no certificate is a configuration error naming it.
    fn tls(&mut self, path: &str, raw: &RawTls) -> Option<TlsRoots> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let key = format!("{path}.ca_file");
        let file = self.path(&key, &raw.ca_file)?;
        let certs: Result<Vec<Vec<u8>>, _> = CertificateDer::pem_file_iter(&file)
            .and_then(|certs| certs.map(|c| c.map(|c| c.to_vec())).collect());
        match certs {
            Ok(certs) if !certs.is_empty() => Some(TlsRoots {
                ca_file: file,
                certs: std::sync::Arc::new(certs),
            }),
            Ok(_) => {
                self.problem(key, format!("{} holds no PEM certificate", file.display()));
                None
            }
            Err(e) => {
                self.problem(key, format!("cannot read {}: {e}", file.display()));
                None
            }
        }
    }

    /// A `proxy` block, or the environment's proxies (read once, in `load`) when there is
    /// none.
    fn proxy(&mut self, path: &str, raw: Option<&RawProxy>) -> Option<Proxies> {
        let Some(raw) = raw else {
            return self.env_proxies.clone();
        };
        let url = self.non_empty(&format!("{path}.url"), &raw.url)?;
        let username = match &raw.username {
            Some(u) => Some(self.non_empty(&format!("{path}.username"), u)?),
            None => None,
        };
        let password = match &raw.password {
            Some(p) => Some(self.secret(&format!("{path}.password"), p)?),
            None => None,
        };
        let credentials = match (username, password) {
            (Some(user), password) => {
                Some((user, password.unwrap_or_else(|| SecretString::from(""))))
            }
            (None, Some(_)) => {
                self.problem(format!("{path}.password"), "needs `username`");
                return None;
            }
            (None, None) => None,
        };
        let mut no_proxy = Vec::with_capacity(raw.no_proxy.len());
        for (i, entry) in raw.no_proxy.iter().enumerate() {
            no_proxy.push(self.non_empty(&format!("{path}.no_proxy[{i}]"), entry)?);
        }
        match Proxies::configured(&url, credentials, &no_proxy) {
            Ok(proxies) => Some(proxies),
            Err(e) => {
                self.problem(path, e);
                None
            }
        }
    }

    fn path(&mut self, path: &str, raw: &str) -> Option<PathBuf> {
        let s = self.non_empty(path, raw)?;
        Some(normalize(&self.base_dir.join(s)))
    }

    /// An http(s) base URL: https, or http to an insecure host; no credentials,
    /// query or fragment.
    fn url(&mut self, path: &str, raw: &str) -> Option<Url> {
        let s = self.non_empty(path, raw)?;
        let url = match Url::parse(&s) {
            Ok(url) => url,
            Err(e) => {
                self.problem(path, format!("not a valid URL: {e}"));
                return None;
            }
        };
        match url.scheme() {
            "https" => {}
            "http" => {
                let host = url.host_str().unwrap_or_default();
                if !self.insecure_hosts.iter().any(|p| p.matches(host)) {
                    self.problem(
                        path,
                        format!(
                            "plain http is allowed only for hosts listed in platform.insecure_hosts (`{host}` is not)"
                        ),
                    );
                    return None;
                }
            }
            other => {
                self.problem(
                    path,
                    format!("scheme `{other}` is not supported; use https"),
                );
                return None;
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            self.problem(path, "URL has no host");
            return None;
        }
        if !self.no_credentials_in(path, &url) {
            return None;
        }
        if url.query().is_some() || url.fragment().is_some() {
            self.problem(path, "must not have a query or fragment");
            return None;
        }
        Some(url)
    }

    fn no_credentials_in(&mut self, path: &str, url: &Url) -> bool {
        if !url.username().is_empty() || url.password().is_some() {
            self.problem(
                path,
                "must not contain credentials; put them in the connection's `token`/`username`",
            );
            return false;
        }
        true
    }
}

/// Lexical normalisation (`a/./b/../c` → `a/c`) without touching the filesystem, so
/// paths in errors and URLs are the ones a person would write.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("./x")), PathBuf::from("x"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }
}
