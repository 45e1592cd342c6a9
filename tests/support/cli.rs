//! The git CLI, isolated from the developer's configuration and identity, for building
//! fixtures and for checking what Courier pushed with a tool other than libgit2.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Fixed identity and dates, so fixture commits are reproducible.
const DATE: &str = "2026-01-01T00:00:00+00:00";

/// A home directory of our own, so that neither `~/.gitconfig` nor `~/.config/git` of
/// whoever runs the tests changes what git does. One for all test processes: git only
/// reads it (the global config is `/dev/null`), and a directory per process was never
/// removed, since statics are not dropped at exit.
fn isolated_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir = std::env::temp_dir().join("courier-testkit-home");
        std::fs::create_dir_all(&dir).expect("create isolated HOME");
        dir
    })
}

/// A `git` command with `cwd` as working directory and an isolated environment.
pub fn command(cwd: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(cwd)
        .env("HOME", isolated_home())
        .env("XDG_CONFIG_HOME", isolated_home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Fixture Author")
        .env("GIT_AUTHOR_EMAIL", "fixture@example.invalid")
        .env("GIT_AUTHOR_DATE", DATE)
        .env("GIT_COMMITTER_NAME", "Fixture Author")
        .env("GIT_COMMITTER_EMAIL", "fixture@example.invalid")
        .env("GIT_COMMITTER_DATE", DATE)
        .env("LC_ALL", "C.UTF-8")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE");
    cmd
}

/// Runs git and returns its output whatever the exit status.
pub fn output<I, S>(cwd: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    command(cwd).args(args).output().expect("spawn git")
}

/// Runs git, panics with its stderr if it fails, returns its trimmed stdout.
pub fn git<I, S>(cwd: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<S> = args.into_iter().collect();
    let out = output(cwd, &args);
    if !out.status.success() {
        let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        panic!(
            "git {} (in {}) failed: {}",
            shown.join(" "),
            cwd.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout)
        .expect("utf-8 git output")
        .trim_end()
        .to_owned()
}

/// Handle on the git CLI in one directory (a working tree or a bare repository).
#[derive(Debug, Clone)]
pub struct Git {
    pub dir: PathBuf,
}

impl Git {
    pub fn run<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        git(&self.dir, args)
    }
}

/// One line of `git ls-tree -r`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub mode: String,
    pub kind: String,
    pub oid: String,
    pub path: String,
}

/// A bare repository on disk, read and changed through the git CLI.
#[derive(Debug, Clone)]
pub struct BareRepo {
    pub path: PathBuf,
}

impl BareRepo {
    /// `file://` URL of the repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    fn git(&self) -> Git {
        Git {
            dir: self.path.clone(),
        }
    }

    /// Object id `rev` resolves to, `None` if it does not resolve.
    pub fn rev_parse(&self, rev: &str) -> Option<String> {
        let out = output(&self.path, ["rev-parse", "--verify", "--quiet", rev]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Tree id of the commit `rev` (`rev^{tree}`).
    pub fn tree_of(&self, rev: &str) -> Option<String> {
        self.rev_parse(&format!("{rev}^{{tree}}"))
    }

    /// Every blob (and gitlink) under `rev`, recursively, as `git ls-tree -r -z` lists it.
    pub fn ls_tree(&self, rev: &str) -> Vec<TreeEntry> {
        let raw = self.git().run(["ls-tree", "-r", "-z", rev]);
        raw.split('\0')
            .filter(|l| !l.is_empty())
            .map(|line| {
                let (meta, path) = line.split_once('\t').expect("ls-tree line");
                let mut parts = meta.split(' ');
                TreeEntry {
                    mode: parts.next().unwrap_or_default().to_owned(),
                    kind: parts.next().unwrap_or_default().to_owned(),
                    oid: parts.next().unwrap_or_default().to_owned(),
                    path: path.to_owned(),
                }
            })
            .collect()
    }

    /// Bytes of `path` in commit `rev`.
    pub fn read_file(&self, rev: &str, path: &str) -> Vec<u8> {
        let out = output(&self.path, ["cat-file", "blob", &format!("{rev}:{path}")]);
        assert!(out.status.success(), "no {path} in {rev}");
        out.stdout
    }

    /// Full message of commit `rev`.
    pub fn message(&self, rev: &str) -> String {
        self.git().run(["log", "-1", "--format=%B", rev])
    }

    /// `name <email>` of the author and of the committer of `rev`.
    pub fn author_and_committer(&self, rev: &str) -> (String, String) {
        let line = self
            .git()
            .run(["log", "-1", "--format=%an <%ae>%n%cn <%ce>", rev]);
        let (a, c) = line.split_once('\n').expect("two lines");
        (a.to_owned(), c.to_owned())
    }

    /// Parent commit ids of `rev`.
    pub fn parents(&self, rev: &str) -> Vec<String> {
        let line = self.git().run(["log", "-1", "--format=%P", rev]);
        line.split_whitespace().map(str::to_owned).collect()
    }

    /// Sets a config key of the bare repository (e.g. `receive.denyNonFastForwards`).
    pub fn set_config(&self, key: &str, value: &str) {
        self.git().run(["config", key, value]);
    }

    /// Points `branch` at `rev` (creating it), like a person pushing a new branch.
    pub fn set_branch(&self, branch: &str, rev: &str) {
        self.git()
            .run(["update-ref", &format!("refs/heads/{branch}"), rev]);
    }

    /// Adds one commit on `branch` (which must exist): each change writes the bytes at
    /// the path, or deletes the path when `None`. Returns the new commit id.
    pub fn commit(&self, branch: &str, changes: &[(&str, Option<&[u8]>)], message: &str) -> String {
        let work = tempfile::tempdir().expect("temp work tree");
        let wt = work.path().join("wt");
        git(
            work.path(),
            [
                "clone".as_ref(),
                "-q".as_ref(),
                "--branch".as_ref(),
                branch.as_ref(),
                self.path.as_os_str(),
                wt.as_os_str(),
            ],
        );
        apply_changes(&wt, changes);
        git(&wt, ["-c", "core.autocrlf=false", "add", "-A"]);
        git(&wt, ["commit", "-q", "--allow-empty", "-m", message]);
        git(
            &wt,
            ["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
        );
        git(&wt, ["rev-parse", "HEAD"])
    }
}

fn apply_changes(wt: &Path, changes: &[(&str, Option<&[u8]>)]) {
    for (path, bytes) in changes {
        let target = wt.join(path);
        match bytes {
            Some(bytes) => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).expect("create parent dirs");
                }
                std::fs::write(&target, bytes).expect("write fixture file");
            }
            None => {
                if target.is_dir() {
                    std::fs::remove_dir_all(&target).expect("remove fixture dir");
                } else {
                    std::fs::remove_file(&target).expect("remove fixture file");
                }
            }
        }
    }
}

/// Creates `<dir>/<name>.git`, a bare repository whose `branch` holds one commit with
/// `files`. Nothing of the caller's git configuration is read.
pub fn make_bare_repo(dir: &Path, name: &str, branch: &str, files: &[(&str, &[u8])]) -> BareRepo {
    let path = dir.join(format!("{name}.git"));
    git(
        dir,
        [
            "init".as_ref(),
            "-q".as_ref(),
            "--bare".as_ref(),
            "--initial-branch".as_ref(),
            branch.as_ref(),
            path.as_os_str(),
        ],
    );
    let work = tempfile::tempdir().expect("temp work tree");
    git(work.path(), ["init", "-q", "--initial-branch", branch]);
    let changes: Vec<(&str, Option<&[u8]>)> = files.iter().map(|(p, b)| (*p, Some(*b))).collect();
    apply_changes(work.path(), &changes);
    git(work.path(), ["-c", "core.autocrlf=false", "add", "-A"]);
    git(
        work.path(),
        ["commit", "-q", "--allow-empty", "-m", "initial content"],
    );
    git(
        work.path(),
        [
            "push".as_ref(),
            "-q".as_ref(),
            path.as_os_str(),
            format!("HEAD:refs/heads/{branch}").as_ref(),
        ],
    );
    BareRepo { path }
}

/// Installs an executable `pre-receive` hook with the given shell script body.
pub fn install_pre_receive_hook(repo: &BareRepo, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let hooks = repo.path.join("hooks");
    std::fs::create_dir_all(&hooks).expect("hooks dir");
    let hook = hooks.join("pre-receive");
    std::fs::write(&hook, format!("#!/bin/sh\n{script}\n")).expect("write hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod hook");
}

/// The tree a person gets delivering the export by hand with the git CLI: clone `base`,
/// `unzip` the archive, `rsync -a --delete` it into the path (purge) or `cp -r` it over
/// the path (overlay), `git add -A`, commit. Returns `HEAD^{tree}`.
pub fn cli_delivery_tree(
    repo: &BareRepo,
    base: &str,
    zip: &Path,
    relative_path: Option<&str>,
    purge: bool,
) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let wt = work.path().join("wt");
    let export = work.path().join("export");
    git(
        work.path(),
        [
            "clone".as_ref(),
            "-q".as_ref(),
            "--branch".as_ref(),
            base.as_ref(),
            repo.path.as_os_str(),
            wt.as_os_str(),
        ],
    );
    std::fs::create_dir_all(&export).expect("export dir");
    let status = Command::new("unzip")
        .env("LC_ALL", "C.UTF-8")
        .arg("-q")
        .arg(zip)
        .arg("-d")
        .arg(&export)
        .status()
        .expect("spawn unzip");
    assert!(status.success(), "unzip failed");
    let target = match relative_path {
        Some(p) => wt.join(p),
        None => wt.clone(),
    };
    if target.is_file() {
        std::fs::remove_file(&target).expect("replace file by directory");
    }
    std::fs::create_dir_all(&target).expect("target dir");
    let status = if purge {
        Command::new("rsync")
            .args(["-a", "--delete", "--exclude=/.git"])
            .arg(format!("{}/", export.display()))
            .arg(format!("{}/", target.display()))
            .status()
            .expect("spawn rsync")
    } else {
        Command::new("cp")
            .arg("-r")
            .arg(format!("{}/.", export.display()))
            .arg(&target)
            .status()
            .expect("spawn cp")
    };
    assert!(status.success(), "copying the export failed");
    git(&wt, ["-c", "core.autocrlf=false", "add", "-A"]);
    git(&wt, ["commit", "-q", "--allow-empty", "-m", "by hand"]);
    git(&wt, ["rev-parse", "HEAD^{tree}"])
}
