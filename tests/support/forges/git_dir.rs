//! A fake forge's git data: a real bare repository (the one the test git server serves),
//! written with git's own plumbing, so that what a fake's git database API creates is
//! what a later fetch, libgit2 or the git CLI, sees.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// One entry of a tree request: `sha: None` deletes the path.
pub(crate) struct TreeEdit {
    pub path: String,
    pub mode: String,
    pub sha: Option<String>,
}

/// Who a commit names; the date is the time it is written.
pub(crate) struct Person<'a> {
    pub name: &'a str,
    pub email: &'a str,
}

pub(crate) struct GitDir {
    path: PathBuf,
}

impl GitDir {
    pub fn new(path: &Path) -> GitDir {
        GitDir {
            path: path.to_owned(),
        }
    }

    /// Runs git on the repository with `stdin` (and a separate index, for building trees);
    /// its trimmed stdout, or its stderr.
    fn git(&self, args: &[&str], stdin: &[u8], index: Option<&Path>) -> Result<String, String> {
        let mut command = crate::cli::command(&self.path);
        command.arg("--git-dir=.").args(args);
        if let Some(index) = index {
            command.env("GIT_INDEX_FILE", index);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(stdin)
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Whether the repository holds `sha` as an object of type `kind`.
    pub fn has(&self, sha: &str, kind: &str) -> bool {
        self.git(&["cat-file", "-t", sha], b"", None).as_deref() == Ok(kind)
    }

    pub fn write_blob(&self, content: &[u8]) -> Result<String, String> {
        self.git(&["hash-object", "-w", "--stdin"], content, None)
    }

    /// `base` (a tree id) with `edits` applied, as git would write it. A deletion of a
    /// path the tree does not have, or an object the repository lacks, is refused.
    pub fn build_tree(&self, base: Option<&str>, edits: &[TreeEdit]) -> Result<String, String> {
        let index = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let index = index.path();
        // An empty file is not an index: git must create it.
        std::fs::remove_file(index).map_err(|e| e.to_string())?;
        match base {
            Some(base) => self.git(&["read-tree", base], b"", Some(index))?,
            None => self.git(&["read-tree", "--empty"], b"", Some(index))?,
        };
        for edit in edits {
            match &edit.sha {
                None => {
                    // `ls-files` wants a work tree; the base tree says what exists.
                    let exists = base.is_some_and(|base| {
                        self.git(
                            &["cat-file", "-e", &format!("{base}:{}", edit.path)],
                            b"",
                            None,
                        )
                        .is_ok()
                    });
                    if !exists {
                        return Err(format!("{} does not exist", edit.path));
                    }
                    // Mode 0 removes the entry (`--force-remove` wants a work tree).
                    let info = format!("0 {}\t{}\n", "0".repeat(40), edit.path);
                    self.git(
                        &["update-index", "--index-info"],
                        info.as_bytes(),
                        Some(index),
                    )?;
                }
                Some(sha) => {
                    let kind = if edit.mode == "160000" {
                        "commit"
                    } else {
                        "blob"
                    };
                    if kind == "blob" && !self.has(sha, "blob") {
                        return Err(format!("{sha} is not a blob of the repository"));
                    }
                    let info = format!("{},{sha},{}", edit.mode, edit.path);
                    self.git(
                        &["update-index", "--add", "--replace", "--cacheinfo", &info],
                        b"",
                        Some(index),
                    )?;
                }
            }
        }
        self.git(&["write-tree"], b"", Some(index))
    }

    /// A commit object written as given; `signature` goes in its `gpgsig` header.
    pub fn write_commit(
        &self,
        tree: &str,
        parents: &[String],
        message: &str,
        author: &Person<'_>,
        committer: &Person<'_>,
        signature: Option<&str>,
    ) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let mut text = format!("tree {tree}\n");
        for parent in parents {
            text.push_str(&format!("parent {parent}\n"));
        }
        text.push_str(&format!(
            "author {} <{}> {now} +0000\ncommitter {} <{}> {now} +0000\n",
            author.name, author.email, committer.name, committer.email
        ));
        if let Some(signature) = signature {
            text.push_str("gpgsig");
            for line in signature.lines() {
                text.push(' ');
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push('\n');
        text.push_str(message);
        self.git(
            &["hash-object", "-t", "commit", "-w", "--stdin"],
            text.as_bytes(),
            None,
        )
    }

    /// Where `refs/heads/{branch}` points, if it exists.
    pub fn tip(&self, branch: &str) -> Option<String> {
        self.git(
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}^{{commit}}"),
            ],
            b"",
            None,
        )
        .ok()
        .filter(|sha| !sha.is_empty())
    }

    /// Points `branch` at `sha`, if it still points at `old` (`None`: does not exist).
    pub fn set_branch(&self, branch: &str, sha: &str, old: Option<&str>) -> Result<(), String> {
        let name = format!("refs/heads/{branch}");
        self.git(&["update-ref", &name, sha, old.unwrap_or("")], b"", None)
            .map(drop)
    }

    pub fn delete_branch(&self, branch: &str) -> Result<(), String> {
        self.git(
            &["update-ref", "-d", &format!("refs/heads/{branch}")],
            b"",
            None,
        )
        .map(drop)
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        self.git(
            &["merge-base", "--is-ancestor", ancestor, descendant],
            b"",
            None,
        )
        .is_ok()
    }
}
