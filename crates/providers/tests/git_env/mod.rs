//! Fixtures shared by the git workspace tests (`mod git_env;`): a smart-HTTP server
//! over temp repositories, remotes, exports and delivery specs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use courier_core::archive::{ArchiveLimits, Export};
use courier_core::paths::RelPath;
use courier_providers::git::{
    Credentials, DeliverySpec, GitWorkspace, Remote, Signature, Timeouts,
};
use courier_testkit::{BareRepo, GitServer, make_bare_repo, write_zip};
use secrecy::SecretString;
use tempfile::TempDir;

pub const TOKEN: &str = "s3cret-token-4f9c2a";

/// A temp directory holding served repositories, a cache and scratch files, with a
/// running smart-HTTP server over the repositories.
pub struct Env {
    pub dir: TempDir,
    pub server: GitServer,
}

impl Env {
    pub fn new() -> Env {
        Env::serving(GitServer::start)
    }

    /// The same, with a server that serves no partial fetch: libgit2 fetches.
    pub fn without_partial_fetch() -> Env {
        Env::serving(GitServer::start_without_partial_fetch)
    }

    fn serving(start: fn(&Path, &str) -> GitServer) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("repos")).unwrap();
        std::fs::create_dir_all(dir.path().join("scratch")).unwrap();
        let server = start(&dir.path().join("repos"), TOKEN);
        Env { dir, server }
    }

    pub fn repos(&self) -> PathBuf {
        self.dir.path().join("repos")
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn workspace(&self) -> GitWorkspace {
        GitWorkspace::new(self.cache(), Timeouts::default()).expect("workspace")
    }

    /// A served bare repository `name` with `files` on `main`.
    pub fn repo(&self, name: &str, files: &[(&str, &[u8])]) -> BareRepo {
        make_bare_repo(&self.repos(), name, "main", files)
    }

    /// The repository's remote over smart HTTP with the right token.
    pub fn http_remote(&self, name: &str) -> Remote {
        self.http_remote_with(name, TOKEN)
    }

    pub fn http_remote_with(&self, name: &str, token: &str) -> Remote {
        Remote::new(
            &self.server.url(name),
            Some(Credentials {
                username: "x-access-token".into(),
                token: SecretString::from(token),
            }),
        )
        .expect("remote")
    }

    /// The repository's remote as a `file://` URL.
    pub fn file_remote(&self, repo: &BareRepo) -> Remote {
        Remote::new(&repo.file_url(), None).expect("remote")
    }

    /// Writes a zip of `files` and opens it as a validated export.
    pub fn export(&self, files: &[(&str, &[u8])]) -> (PathBuf, Arc<Export>) {
        let n = std::fs::read_dir(self.dir.path().join("scratch"))
            .unwrap()
            .count();
        let path = self
            .dir
            .path()
            .join("scratch")
            .join(format!("export-{n}.zip"));
        write_zip(&path, files);
        let export = Export::open(&path, &ArchiveLimits::default()).expect("valid export");
        (path, Arc::new(export))
    }
}

pub fn spec(remote: Remote, relative_path: Option<&str>, purge: bool) -> DeliverySpec {
    DeliverySpec {
        remote,
        base_branch: Some("main".into()),
        head_branch: "courier/tokens".into(),
        relative_path: relative_path.map(|p| RelPath::parse(p).expect("valid path")),
        purge,
        author: Signature {
            name: "Courier Bot".into(),
            email: "courier@example.invalid".into(),
        },
        commit_message: "Update design tokens".into(),
        delivery_id: "delivery-1".into(),
        allow_protected_paths: false,
        overwrite_diverged: false,
        allow_empty_export: false,
        signing: None,
    }
}

/// Every file under `dir`, recursively, read as bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// `len` incompressible bytes (xorshift; `seed | 1`, so use odd seeds for distinct streams).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// Bounds every async test: a hang is a failure, not a stuck CI job.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(180), f)
        .await
        .expect("test timed out")
}
