//! What each forge accepts as a repository name, and the clone URL built from it.

use url::Url;

use super::{Validator, normalize};
use crate::config::{Connection, ConnectionKind};

impl Validator<'_> {
    /// Checks `repository` against the connection's kind; returns it normalised and
    /// the clone URL.
    pub(super) fn repository(
        &mut self,
        path: &str,
        connection: &Connection,
        repository: &str,
    ) -> Option<(String, Url)> {
        let repository = repository.trim();
        let segments: Vec<&str> = repository.split('/').collect();
        let bad = |v: &mut Self, message: String| {
            v.problem(path, message);
            None
        };
        match &connection.kind {
            ConnectionKind::Github(gh) => {
                let [owner, repo] = segments.as_slice() else {
                    return bad(self, format!("`{repository}` is not `owner/repo`"));
                };
                if !github_owner_ok(owner) {
                    return bad(self, format!("`{owner}` is not a valid GitHub owner name"));
                }
                if let Some(why) = github_repo_problem(repo) {
                    return bad(self, format!("`{repo}` {why}"));
                }
                let url = join_segments(&gh.git_url, &[owner, &format!("{repo}.git")]);
                Some((repository.to_owned(), url))
            }
            ConnectionKind::Gitlab(gl) => {
                if segments.len() < 2 {
                    return bad(
                        self,
                        format!(
                            "`{repository}` is not `group/project` (or `group/subgroup/…/project`)"
                        ),
                    );
                }
                for segment in &segments {
                    if let Some(why) = gitlab_segment_problem(segment) {
                        return bad(self, format!("`{segment}` {why}"));
                    }
                }
                let mut parts: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
                if let Some(last) = parts.last_mut() {
                    last.push_str(".git");
                }
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                Some((repository.to_owned(), join_segments(&gl.git_url, &refs)))
            }
            ConnectionKind::Azure(az) => {
                let [project, repo] = segments.as_slice() else {
                    return bad(self, format!("`{repository}` is not `project/repository`"));
                };
                for name in [project, repo] {
                    if !azure_name_ok(name) {
                        return bad(
                            self,
                            format!(
                                "`{name}` is not a valid Azure DevOps project or repository name"
                            ),
                        );
                    }
                }
                let url = join_segments(&az.git_url, &[&az.organization, project, "_git", repo]);
                Some((repository.to_owned(), url))
            }
            ConnectionKind::Git(git) => {
                let url = self.git_remote(path, repository, git.ssh.is_some())?;
                Some((url.to_string(), url))
            }
        }
    }

    /// A plain git remote: an https/http/file/ssh URL, an scp-like `user@host:path`, or a
    /// filesystem path resolved against the configuration file's directory.
    fn git_remote(&mut self, path: &str, repository: &str, ssh: bool) -> Option<Url> {
        let scp = scp_like(repository);
        if (scp.is_some() || repository.starts_with("ssh://")) && !ssh {
            self.problem(
                path,
                "an SSH repository needs the connection's `ssh` key and `known_hosts`",
            );
            return None;
        }
        if let Some(url) = scp {
            return match Url::parse(&url) {
                Ok(url) => Some(url),
                Err(e) => {
                    self.problem(path, format!("not a valid SSH location: {e}"));
                    None
                }
            };
        }
        if !repository.contains("://") {
            let absolute = match std::path::absolute(self.base_dir.join(repository)) {
                Ok(p) => normalize(&p),
                Err(e) => {
                    self.problem(path, format!("cannot resolve path: {e}"));
                    return None;
                }
            };
            return match Url::from_file_path(&absolute) {
                Ok(url) => Some(url),
                Err(()) => {
                    self.problem(path, "cannot be turned into a file:// URL");
                    None
                }
            };
        }
        let url = match Url::parse(repository) {
            Ok(u) => u,
            Err(e) => {
                self.problem(path, format!("not a valid URL: {e}"));
                return None;
            }
        };
        match url.scheme() {
            "file" => {
                if url
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    self.problem(
                        path,
                        "a file:// URL must be absolute (file:///srv/repo.git); write a plain path for one relative to the configuration file",
                    );
                    return None;
                }
                Some(url)
            }
            "https" | "http" => self.url(path, repository),
            "ssh" if url.host_str().is_some_and(|h| !h.is_empty()) && url.password().is_none() => {
                Some(url)
            }
            "ssh" => {
                self.problem(path, "an ssh:// URL needs a host and no password");
                None
            }
            other => {
                self.problem(
                    path,
                    format!("scheme `{other}` is not supported; use https://, http:// (insecure hosts only), ssh://, user@host:path, file:// or a path"),
                );
                None
            }
        }
    }
}

/// `user@host:path` (git's scp-like syntax: a colon before any slash) as an `ssh://` URL.
/// A relative path becomes absolute (`/path`), which is what forges' SSH servers (GitHub,
/// GitLab, Gitea, Bitbucket, Gerrit) mean by it; for a path under the user's home on a bare
/// server, write `ssh://user@host/~/path`.
fn scp_like(repository: &str) -> Option<String> {
    if repository.contains("://") {
        return None;
    }
    let (location, path) = repository.split_once(':')?;
    if location.contains('/') || location.is_empty() || path.is_empty() {
        return None;
    }
    let path = path.trim_start_matches('/');
    Some(format!("ssh://{location}/{path}"))
}

/// `base` with `segments` appended as path segments (percent-encoded as needed, so an
/// Azure project with a space stays one segment).
fn join_segments(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

fn github_owner_ok(owner: &str) -> bool {
    (1..=39).contains(&owner.len())
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !owner.starts_with('-')
}

fn github_repo_problem(repo: &str) -> Option<&'static str> {
    if repo.is_empty() || repo.len() > 100 {
        return Some("is not a valid GitHub repository name");
    }
    if repo == "." || repo == ".." {
        return Some("is not a valid GitHub repository name");
    }
    if !repo
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Some("is not a valid GitHub repository name (letters, digits, `-`, `_`, `.`)");
    }
    if repo.ends_with(".git") {
        return Some("should be written without the `.git` suffix");
    }
    None
}

fn gitlab_segment_problem(segment: &str) -> Option<&'static str> {
    if segment.is_empty() {
        return Some("is empty: GitLab paths are `group/…/project`");
    }
    if !segment
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || segment.starts_with(['-', '.'])
    {
        return Some(
            "is not a valid GitLab path segment (letters, digits, `-`, `_`, `.`, not starting with `-` or `.`)",
        );
    }
    if segment.ends_with(".git") || segment.ends_with(".atom") {
        return Some("should be written without the `.git`/`.atom` suffix");
    }
    None
}

/// Azure DevOps names: no control characters, none of its reserved characters, not
/// ending in `.`, no surrounding whitespace.
pub(super) fn azure_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.trim() == name
        && !name.ends_with('.')
        && !name.starts_with('_')
        && !name.chars().any(|c| {
            c.is_control()
                || matches!(
                    c,
                    '\\' | '/'
                        | ':'
                        | '*'
                        | '?'
                        | '"'
                        | '<'
                        | '>'
                        | '|'
                        | ';'
                        | '#'
                        | '$'
                        | '{'
                        | '}'
                        | ','
                        | '+'
                        | '='
                        | '['
                        | ']'
                        | '%'
                        | '&'
                )
        })
}
