//! One target of a hook entry: its keys, defaults and templates.

use std::collections::BTreeMap;

use super::Validator;
use crate::config::raw::{RawSigning, RawSigningFormat, RawTarget};
use crate::config::{
    Commits, Connection, ConnectionKind, DEFAULT_AUTHOR_EMAIL, DEFAULT_AUTHOR_NAME,
    DEFAULT_BRANCH_NAME, DEFAULT_COMMIT_MESSAGE, DEFAULT_PULL_REQUEST_DESCRIPTION,
    DEFAULT_PULL_REQUEST_TITLE, Target,
};
use crate::paths::RelPath;
use crate::signing::{SigningFormat, SigningKey};
use crate::template::{TemplateField, check_branch_name};

impl Validator<'_> {
    pub(super) fn target(
        &mut self,
        h: usize,
        t: usize,
        raw: &RawTarget,
        connections: &BTreeMap<String, Connection>,
    ) -> Option<Target> {
        let key = format!("hooks[{h}].targets[{t}]");
        let p = |field: &str| format!("{key}.{field}");

        // `None`: absent (derived below, once the parts are known); `Some(None)`: invalid.
        let explicit_id = raw.id.as_ref().map(|id| {
            let id = self.non_empty(&p("id"), id)?;
            match explicit_id_problem(&id) {
                Some(why) => {
                    self.problem(p("id"), why);
                    None
                }
                None => Some(id),
            }
        });

        let connection_name = self.non_empty(&p("connection"), &raw.connection);
        let connection = connection_name.as_ref().and_then(|name| {
            let found = connections.get(name);
            if found.is_none() && !self.broken_connections.contains(name) {
                let known: Vec<&str> = connections.keys().map(String::as_str).collect();
                let defined = if known.is_empty() {
                    "no connections are defined".to_owned()
                } else {
                    format!("defined: {}", known.join(", "))
                };
                self.problem(
                    p("connection"),
                    format!("unknown connection `{name}` ({defined})"),
                );
            }
            found
        });
        let repository = self.non_empty(&p("repository"), &raw.repository);
        let resolved = match (connection, repository) {
            (Some(c), Some(r)) => self.repository(&p("repository"), c, &r),
            _ => None,
        };

        let branch = match &raw.branch {
            Some(b) => self.non_empty(&p("branch"), b).and_then(|b| {
                check_branch_name(&b)
                    .map_err(|rule| {
                        self.problem(p("branch"), format!("not a valid branch name: {rule}"))
                    })
                    .ok()
                    .map(|()| b)
            }),
            // The name ids and head branches were derived from before the default became
            // the remote's; the base itself is read from the remote when delivering.
            None => Some(DEFAULT_BRANCH_NAME.to_owned()),
        };
        let branch_from_remote = raw.branch.is_none();

        let relative_path = match &raw.relative_path {
            Some(rp) => match self.text(&p("relative_path"), rp) {
                // An empty or `/` path is how people write "the root".
                Some(s) if s.is_empty() || s == "/" => Some(None),
                Some(s) => match RelPath::parse(&s) {
                    Ok(path) => Some(Some(path)),
                    Err(rule) => {
                        self.problem(p("relative_path"), rule.to_string());
                        None
                    }
                },
                None => None,
            },
            None => Some(None),
        };

        let purge_directory = raw.purge_directory.unwrap_or(false);
        let allow_purge_root = raw.allow_purge_root.unwrap_or(false);
        if purge_directory && !allow_purge_root && matches!(relative_path, Some(None)) {
            self.problem(
                p("purge_directory"),
                "would delete every file of the repository that the export does not contain, because `relative_path` is the repository root; set `allow_purge_root: true` if that is intended",
            );
        }

        let commit_author_name = match &raw.commit_author_name {
            Some(n) => self.non_empty(&p("commit_author_name"), n).and_then(|n| {
                if n.contains(['<', '>', '\n']) {
                    self.problem(
                        p("commit_author_name"),
                        "must not contain `<`, `>` or a newline",
                    );
                    None
                } else {
                    Some(n)
                }
            }),
            None => Some(DEFAULT_AUTHOR_NAME.to_owned()),
        };
        let commit_author_email = match &raw.commit_author_email {
            Some(e) => self.non_empty(&p("commit_author_email"), e).and_then(|e| {
                let ok = e
                    .split_once('@')
                    .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
                    && !e.contains(['<', '>', ' ', '\n']);
                if ok {
                    Some(e)
                } else {
                    self.problem(p("commit_author_email"), "not an e-mail address");
                    None
                }
            }),
            None => Some(DEFAULT_AUTHOR_EMAIL.to_owned()),
        };

        // The target's own key, else its connection's; either must sign as the author.
        let signing = match (&raw.signing, connection) {
            (Some(signing), _) => self.signing_key(&p("signing"), signing).map(Some),
            (None, Some(c)) => Some(c.signing.clone()),
            (None, None) => Some(None),
        };
        if raw.signing.is_some()
            && let Some(Connection {
                kind: ConnectionKind::Github(github),
                ..
            }) = connection
            && github.commits == Commits::Api
        {
            self.problem(
                p("signing"),
                "does not apply on a connection with `commits: api`: GitHub signs the commits it creates",
            );
        }
        let signing = match (signing, commit_author_email.as_deref()) {
            (Some(Some(key)), Some(author)) => {
                self.signer_is_author(&key, author, &p).then_some(Some(key))
            }
            (signing, _) => signing,
        };

        // Kind-specific keys: refuse what the connection's kind would silently ignore.
        if let Some(conn) = connection {
            let pr_only: [(&str, bool); 9] = [
                ("pull_request_title", raw.pull_request_title.is_some()),
                (
                    "pull_request_description",
                    raw.pull_request_description.is_some(),
                ),
                ("labels", raw.labels.is_some()),
                ("reviewers", raw.reviewers.is_some()),
                ("team_reviewers", raw.team_reviewers.is_some()),
                ("assignees", raw.assignees.is_some()),
                ("draft", raw.draft.is_some()),
                ("update_description", raw.update_description.is_some()),
                ("auto_merge", raw.auto_merge.is_some()),
            ];
            match &conn.kind {
                ConnectionKind::Git(_) => {
                    for (field, present) in pr_only {
                        if present {
                            self.problem(
                                p(field),
                                "does not apply to a `git` connection (it pushes a branch and opens no pull request)",
                            );
                        }
                    }
                }
                ConnectionKind::Github(_) => {}
                ConnectionKind::Gitlab(_) | ConnectionKind::Azure(_) => {
                    if raw.team_reviewers.is_some() {
                        self.problem(
                            p("team_reviewers"),
                            format!(
                                "only GitHub has team reviewers; not a `{}` connection",
                                conn.kind.name()
                            ),
                        );
                    }
                }
            }
        }

        let labels = self.list(&p("labels"), raw.labels.as_ref());
        let reviewers = self.list(&p("reviewers"), raw.reviewers.as_ref());
        let team_reviewers = self.list(&p("team_reviewers"), raw.team_reviewers.as_ref());
        let assignees = self.list(&p("assignees"), raw.assignees.as_ref());

        let relative_for_default = relative_path.clone().flatten();
        let head_branch = match &raw.head_branch {
            Some(hb) => self.non_empty(&p("head_branch"), hb),
            None => branch
                .as_deref()
                .map(|b| default_head_branch(b, relative_for_default.as_ref())),
        };
        let commit_message = self.template_source(
            &p("commit_message"),
            raw.commit_message.as_deref(),
            DEFAULT_COMMIT_MESSAGE,
        );
        let pull_request_title = self.template_source(
            &p("pull_request_title"),
            raw.pull_request_title.as_deref(),
            DEFAULT_PULL_REQUEST_TITLE,
        );
        let pull_request_description = self.template_source(
            &p("pull_request_description"),
            raw.pull_request_description.as_deref(),
            DEFAULT_PULL_REQUEST_DESCRIPTION,
        );

        // Templates are compiled before the early returns below, so that one run
        // reports a template problem together with any other problem of the target.
        let mut templates_ok = true;
        let sources = [
            (TemplateField::HeadBranch, &head_branch),
            (TemplateField::CommitMessage, &commit_message),
            (TemplateField::PullRequestTitle, &pull_request_title),
            (
                TemplateField::PullRequestDescription,
                &pull_request_description,
            ),
        ];
        for (field, source) in sources {
            let Some(source) = source else { continue };
            let name = format!("{key}.{}", field.key());
            if let Err(e) = self.templates.add(&name, field, source) {
                self.problem(name, template_message(&e));
                templates_ok = false;
            }
        }
        if !templates_ok {
            return None;
        }

        let (repository, clone_url) = resolved?;
        let connection = connection_name?;
        let branch = branch?;
        let relative_path = relative_path?;
        let id = match explicit_id {
            Some(id) => id?,
            None => default_id(&connection, &repository, &branch, relative_path.as_ref()),
        };
        let target = Target {
            id,
            key: key.clone(),
            hook_index: h,
            target_index: t,
            connection,
            repository,
            branch,
            branch_from_remote,
            head_branch: head_branch?,
            relative_path,
            purge_directory,
            allow_purge_root,
            commit_author_name: commit_author_name?,
            commit_author_email: commit_author_email?,
            commit_message: commit_message?,
            pull_request_title: pull_request_title?,
            pull_request_description: pull_request_description?,
            labels,
            reviewers,
            team_reviewers,
            assignees,
            draft: raw.draft.unwrap_or(false),
            update_description: raw.update_description.unwrap_or(true),
            delete_branch_on_converge: raw.delete_branch_on_converge.unwrap_or(true),
            auto_merge: raw.auto_merge.unwrap_or(false),
            allow_empty_export: raw.allow_empty_export.unwrap_or(false),
            allow_protected_paths: raw.allow_protected_paths.unwrap_or(false),
            overwrite_diverged: raw.overwrite_diverged.unwrap_or(false),
            signing: signing?,
            clone_url,
        };
        Some(target)
    }

    /// The signing key, read and unlocked now so that a wrong key or passphrase stops the
    /// configuration, not a delivery.
    pub(super) fn signing_key(&mut self, path: &str, raw: &RawSigning) -> Option<SigningKey> {
        let format = match raw.format {
            RawSigningFormat::Ssh => SigningFormat::Ssh,
            RawSigningFormat::OpenPgp => SigningFormat::OpenPgp,
        };
        let key_path = self.path(&format!("{path}.key"), &raw.key);
        let passphrase = match &raw.passphrase {
            Some(p) => Some(self.secret(&format!("{path}.passphrase"), p)?),
            None => None,
        };
        match SigningKey::load(format, &key_path?, passphrase.as_ref()) {
            Ok(key) => Some(key),
            Err(e) => {
                self.problem(format!("{path}.key"), e.to_string());
                None
            }
        }
    }

    /// A key that names e-mail addresses (an SSH key's comment, an OpenPGP key's user IDs)
    /// signs only as one of them: git and the forges match a signature to the committer's
    /// e-mail, so any other author would push commits no protection accepts. A templated
    /// author is checked by nobody here.
    fn signer_is_author(
        &mut self,
        key: &SigningKey,
        author_email: &str,
        p: &dyn Fn(&str) -> String,
    ) -> bool {
        let identities = key.identities();
        let literal = !author_email.contains("{{");
        let Some(first) = identities.first() else {
            return true;
        };
        if literal
            && !identities
                .iter()
                .any(|i| i.eq_ignore_ascii_case(author_email))
        {
            self.problem(
                p("commit_author_email"),
                format!(
                    "is {author_email}, but the signing key belongs to {}; set `commit_author_email: {first}` or sign with that author's key",
                    identities.join(", ")
                ),
            );
            return false;
        }
        true
    }

    fn template_source(&mut self, path: &str, raw: Option<&str>, default: &str) -> Option<String> {
        match raw {
            Some(s) => self.non_empty(path, s),
            None => Some(default.to_owned()),
        }
    }
}

/// Explicit ids go into commit trailers and URLs, so they keep to an alphabet that needs
/// no quoting in either.
const MAX_ID_CHARS: usize = 100;

fn explicit_id_problem(id: &str) -> Option<String> {
    let chars = id.chars().count();
    if chars > MAX_ID_CHARS {
        return Some(format!(
            "is {chars} characters long; at most {MAX_ID_CHARS} (the id goes into commit trailers and URLs)"
        ));
    }
    let bad = id
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !"-_.:/@".contains(*c))?;
    Some(format!(
        "`{id}` contains {bad:?}: use only ASCII letters, digits and `-_.:/@` (the id goes into commit trailers and URLs)"
    ))
}

/// The id of a target without `id:`: what it delivers to, never its position, so that
/// reordering targets or hook entries keeps every id.
fn default_id(
    connection: &str,
    repository: &str,
    branch: &str,
    relative_path: Option<&RelPath>,
) -> String {
    match relative_path {
        Some(path) => format!("{connection}:{repository}@{branch}:{path}"),
        None => format!("{connection}:{repository}@{branch}"),
    }
}

fn template_message(e: &crate::template::TemplateError) -> String {
    use crate::template::TemplateError;
    match e {
        TemplateError::Invalid { message, .. } | TemplateError::Render { message, .. } => {
            message.clone()
        }
        TemplateError::InvalidBranch { branch, rule, .. } => format!(
            "renders `{branch}` for a sample event, which is not a valid branch name: {rule}"
        ),
        TemplateError::Unknown(name) => format!("template {name} is missing"),
    }
}

/// `courier/{{ hook.id }}/<slug>-<hash>`: one branch per hook and per (base branch,
/// relative path), so that targets into one repository never share a branch. The
/// hash keeps two paths that slug alike (`a-b` and `a/b`) apart; it is CRC-32, fixed
/// forever, because changing it would orphan every open pull request.
fn default_head_branch(branch: &str, relative_path: Option<&RelPath>) -> String {
    let identity = format!(
        "{branch}\0{}",
        relative_path.map(RelPath::as_str).unwrap_or_default()
    );
    let hash = crc32fast::hash(identity.as_bytes());
    let mut slug = String::new();
    let readable = match relative_path {
        Some(p) => format!("{branch}-{p}"),
        None => branch.to_owned(),
    };
    for c in readable.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            c
        } else {
            '-'
        };
        // No `..` (invalid in refs) and no runs of `-`.
        if (c == '-' || c == '.') && slug.ends_with(['-', '.']) {
            continue;
        }
        slug.push(c);
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_matches(['-', '.']);
    format!("courier/{{{{ hook.id }}}}/{slug}-{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_id_rules() {
        assert_eq!(explicit_id_problem("web-tokens_1.x:src/a@b"), None);
        assert_eq!(explicit_id_problem(&"a".repeat(100)), None);
        let long = explicit_id_problem(&"a".repeat(101)).unwrap();
        assert!(long.starts_with("is 101 characters long"), "{long}");
        let spaced = explicit_id_problem("web tokens").unwrap();
        assert!(spaced.starts_with("`web tokens` contains ' '"), "{spaced}");
        assert!(explicit_id_problem("tökens").is_some());
        assert!(explicit_id_problem("a#b").is_some());
    }

    #[test]
    fn default_ids_name_what_is_delivered() {
        let path = RelPath::parse("src/tokens").unwrap();
        assert_eq!(
            default_id("github", "acme/web", "main", Some(&path)),
            "github:acme/web@main:src/tokens"
        );
        assert_eq!(
            default_id("github", "acme/web", "release/1.x", None),
            "github:acme/web@release/1.x"
        );
    }

    #[test]
    fn default_head_branches_are_valid_and_distinct() {
        let rp = |s: &str| RelPath::parse(s).unwrap();
        let cases = [
            default_head_branch("main", None),
            default_head_branch("main", Some(&rp("src/tokens"))),
            default_head_branch("main", Some(&rp("src-tokens"))),
            default_head_branch("develop", Some(&rp("src/tokens"))),
            default_head_branch("release/1.x", Some(&rp("a..b/.x"))),
        ];
        // Pinned: changing the scheme would orphan every open pull request
        // (CRC-32 of "main\0", as computed by zlib).
        assert_eq!(cases[0], "courier/{{ hook.id }}/main-98626201");
        assert!(cases[1].starts_with("courier/{{ hook.id }}/main-src-tokens-"));
        for (i, a) in cases.iter().enumerate() {
            let rendered = a.replace("{{ hook.id }}", "5");
            assert_eq!(check_branch_name(&rendered), Ok(()), "{rendered}");
            for b in &cases[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
