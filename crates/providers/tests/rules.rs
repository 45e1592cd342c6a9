//! What an export may not do (protected paths, LFS paths, emptying a directory by
//! accident), invalid specs, the diff shown by `dry-run --diff`, and the changes a plan
//! hands to a forge's API.

mod git_env;

use courier_providers::git::{ApiPlan, GitError, Outcome};
use git_env::{Env, bounded, spec};

#[tokio::test]
async fn protected_paths_are_refused_unless_the_target_opts_in() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo(
            "web",
            &[("README.md", b"hi\n"), (".gitlab-ci.yml", b"stages: []\n")],
        );
        let ws = env.workspace();

        // Checked on the final repository path: relative_path + entry path.
        let (_, export) = env.export(&[("workflows/release.yml", b"on: push\n")]);
        let err = ws
            .plan(
                &spec(env.http_remote("web"), Some(".github"), false),
                export,
            )
            .await
            .unwrap_err();
        match &err {
            GitError::ProtectedPath { path } => assert_eq!(path, ".github/workflows/release.yml"),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("allow_protected_paths"), "{err}");

        let (_, export) = env.export(&[("pkg/azure-pipelines.yml", b"trigger: none\n")]);
        let err = ws
            .plan(&spec(env.http_remote("web"), None, false), export)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::ProtectedPath { .. }), "{err:?}");

        // A purge at the root would delete the CI file: a change too.
        let (_, export) = env.export(&[("README.md", b"hi\n")]);
        let err = ws
            .plan(&spec(env.http_remote("web"), None, true), export)
            .await
            .unwrap_err();
        match &err {
            GitError::ProtectedPath { path } => assert_eq!(path, ".gitlab-ci.yml"),
            other => panic!("{other:?}"),
        }

        let (_, export) = env.export(&[("workflows/release.yml", b"on: push\n")]);
        let mut s = spec(env.http_remote("web"), Some(".github"), false);
        s.allow_protected_paths = true;
        let plan = ws.plan(&s, export).await.unwrap();
        ws.push(plan).await.unwrap();
        assert_eq!(
            repo.read_file("courier/tokens", ".github/workflows/release.yml"),
            b"on: push\n"
        );
    })
    .await;
}

#[tokio::test]
async fn paths_stored_with_lfs_are_refused() {
    bounded(async {
        let env = Env::new();
        env.repo(
            "web",
            &[
                (
                    ".gitattributes",
                    b"*.png filter=lfs diff=lfs merge=lfs -text\n*.md text\n",
                ),
                ("assets/.gitattributes", b"fonts/** filter=lfs -text\n"),
                ("README.md", b"hi\n"),
            ],
        );
        let ws = env.workspace();
        let (_, export) = env.export(&[("colors.json", b"{}\n"), ("icons/logo.png", b"\x89PNG")]);
        let err = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap_err();
        match &err {
            GitError::Lfs { path } => assert_eq!(path, "tokens/icons/logo.png"),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("LFS"), "{err}");

        // A nested .gitattributes, with a pattern relative to its own directory.
        let (_, export) = env.export(&[("fonts/inter.woff2", b"font")]);
        let err = ws
            .plan(&spec(env.http_remote("web"), Some("assets"), false), export)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, GitError::Lfs { path } if path == "assets/fonts/inter.woff2"),
            "{err:?}"
        );

        // The same names outside the patterns are fine.
        let (_, export) = env.export(&[("fonts/inter.woff2", b"font"), ("logo.svg", b"<svg/>")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        assert!(matches!(plan.outcome(), Outcome::Push { .. }));
        drop(plan);

        // An export that brings its own LFS rule for what it writes is refused too.
        let (_, export) = env.export(&[
            (".gitattributes", b"*.bin filter=lfs\n"),
            ("x.bin", b"\0\x01"),
        ]);
        let err = ws
            .plan(&spec(env.http_remote("web"), Some("data"), true), export)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, GitError::Lfs { path } if path == "data/x.bin"),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_empty_export_is_refused_unless_allowed() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n"), ("tokens/a.json", b"{}\n")]);
        let ws = env.workspace();
        let (_, export) = env.export(&[("only-a-directory/", b"")]);
        let err = ws
            .plan(
                &spec(env.http_remote("web"), Some("tokens"), true),
                export.clone(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, GitError::EmptyExport { path } if path == "tokens"),
            "{err:?}"
        );

        let mut s = spec(env.http_remote("web"), Some("tokens"), true);
        s.allow_empty_export = true;
        let plan = ws.plan(&s, export).await.unwrap();
        assert_eq!(plan.files().deleted, vec!["tokens/a.json"]);
        ws.push(plan).await.unwrap();
        let paths: Vec<String> = repo
            .ls_tree("courier/tokens")
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, vec!["README.md"]);
    })
    .await;
}

#[tokio::test]
async fn invalid_branches_are_refused_before_any_network_call() {
    bounded(async {
        let env = Env::new();
        env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        let (_, export) = env.export(&[("a", b"a")]);
        for (base, head) in [("main", "main"), ("main", "bad..name"), ("", "courier/x")] {
            let mut s = spec(env.http_remote("web"), None, false);
            s.base_branch = Some(base.into());
            s.head_branch = head.into();
            let err = ws.plan(&s, export.clone()).await.unwrap_err();
            assert!(
                matches!(err, GitError::InvalidRemote { .. }),
                "{base} {head}: {err:?}"
            );
        }
        assert_eq!(
            env.server.served_requests() + env.server.refused_requests(),
            0
        );
    })
    .await;
}

#[tokio::test]
async fn file_changes_and_unified_diff_for_dry_runs() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo(
            "web",
            &[
                ("README.md", b"hi\n"),
                ("tokens/a.json", b"{\n  \"a\": 1\n}\n"),
                ("tokens/gone.json", b"{}\n"),
            ],
        );
        let ws = env.workspace();
        let (_, export) = env.export(&[
            ("a.json", b"{\n  \"a\": 2\n}\n"),
            ("new.json", b"[]\n"),
            ("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        ]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        let files = plan.files();
        assert_eq!(files.added, vec!["tokens/logo.png", "tokens/new.json"]);
        assert_eq!(files.modified, vec!["tokens/a.json"]);
        assert_eq!(files.deleted, vec!["tokens/gone.json"]);
        let diff = ws.diff(&plan).await.unwrap();
        assert!(
            diff.contains("diff --git a/tokens/a.json b/tokens/a.json"),
            "{diff}"
        );
        assert!(diff.contains("-  \"a\": 1\n+  \"a\": 2\n"), "{diff}");
        assert!(diff.contains("+++ b/tokens/new.json"), "{diff}");
        assert!(diff.contains("--- a/tokens/gone.json"), "{diff}");
        assert!(
            diff.contains("Binary files /dev/null and b/tokens/logo.png differ"),
            "{diff}"
        );
        assert!(!diff.contains("IHDR"), "binary bytes printed: {diff}");
        assert!(
            plan.commit_message()
                .ends_with("Courier-Delivery: delivery-1\n")
        );
        // A dry run pushes nothing: dropping the plan leaves the remote as it was.
        drop(plan);
        assert_eq!(repo.rev_parse("refs/heads/courier/tokens"), None);
    })
    .await;
}

/// Handed over to a forge's API, a plan to push becomes its changes on the base tree:
/// each added or modified file with its blob (id, size, bytes from the cache), each
/// deleted one with no object; any other outcome has nothing to send.
#[tokio::test]
async fn a_plan_handed_to_the_api_lists_its_changes_on_the_base_tree() {
    bounded(async {
        let env = Env::new();
        env.repo(
            "web",
            &[
                ("README.md", b"hi\n"),
                ("tokens/a.json", b"{}\n"),
                ("tokens/gone.json", b"[]\n"),
            ],
        );
        let ws = env.workspace();
        let (_, export) = env.export(&[("a.json", b"{\"a\": 2}\n"), ("new.json", b"[1]\n")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        let base = plan.base_commit();
        let message = plan.commit_message().to_owned();
        let ApiPlan::Commit(commit) = ws.hand_over(plan).await.unwrap() else {
            panic!("a push is handed over as a commit to create");
        };
        assert_eq!(commit.base_commit(), base);
        assert_eq!(commit.message(), message);
        assert_eq!(commit.head_before(), None);
        let listed: Vec<(&str, u32, Option<u64>)> = commit
            .changes()
            .iter()
            .map(|c| (c.path.as_str(), c.mode, c.object.as_ref().map(|o| o.size)))
            .collect();
        assert_eq!(
            listed,
            [
                ("tokens/a.json", 0o100644, Some(9)),
                ("tokens/gone.json", 0o100644, None),
                ("tokens/new.json", 0o100644, Some(4)),
            ]
        );
        let new = commit.changes()[2].object.as_ref().unwrap();
        assert!(!new.on_base);
        assert_eq!(commit.read_blob(&new.id).await.unwrap(), b"[1]\n");
        drop(commit);

        // The base again: nothing to send, delivered as planned.
        let (_, export) = env.export(&[("a.json", b"{}\n"), ("gone.json", b"[]\n")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        match ws.hand_over(plan).await.unwrap() {
            ApiPlan::Nothing(delivered) => {
                assert!(!delivered.pushed);
                assert!(matches!(delivered.outcome, Outcome::NoChanges { .. }));
            }
            ApiPlan::Commit(commit) => panic!("nothing to create: {commit:?}"),
        }
    })
    .await;
}

/// The token diff reads the changed token files on both sides by the blobs the tree diff
/// names: a changed, an added and a deleted file, a file of another kind left alone, and a
/// token file over the size limit named, not loaded.
#[tokio::test]
async fn the_token_diff_reads_changed_files_on_both_sides() {
    bounded(async {
        let env = Env::new();
        let _repo = env.repo(
            "web",
            &[
                ("README.md", b"hi\n"),
                ("tokens/a.css", b":root { --a: 1px; --b: 2px; }\n"),
                ("tokens/gone.scss", b"$gone: red;\n"),
                ("tokens/same.css", b":root { --same: 0; }\n"),
            ],
        );
        let ws = env.workspace();
        // Incompressible (the archive rules refuse a suspicious ratio), over the limit.
        let mut seed = 0x2545_f491_u32;
        let noise: String = (0..courier_core::tokens::MAX_FILE_BYTES)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                char::from(b'a' + (seed % 26) as u8)
            })
            .collect();
        let huge = format!(":root {{ --x: {noise}; }}\n");
        let (_, export) = env.export(&[
            ("a.css", b":root { --a: 3px; --b: 2px; }\n"),
            ("same.css", b":root { --same: 0; }\n"),
            ("new.json", b"{ \"c\": { \"$value\": \"#fff\" } }\n"),
            ("logo.svg", b"<svg/>\n"),
            ("huge.css", huge.as_bytes()),
        ]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        let tokens = ws.token_diff(&plan).await.unwrap();
        let changes: Vec<(&str, &str, Vec<&str>)> = tokens
            .groups
            .iter()
            .map(|g| {
                let names = g.changes.iter().map(|c| c.name()).collect();
                (g.path.as_str(), g.context.as_str(), names)
            })
            .collect();
        assert_eq!(
            changes,
            [
                ("tokens/a.css", ":root", vec!["a"]),
                ("tokens/gone.scss", "", vec!["gone"]),
                ("tokens/new.json", "", vec!["c"]),
            ]
        );
        assert_eq!((tokens.changed, tokens.added, tokens.removed), (1, 1, 1));
        assert_eq!(tokens.skipped.len(), 1, "{tokens:?}");
        assert_eq!(tokens.skipped[0].path, "tokens/huge.css");
        assert!(tokens.unreadable.is_empty(), "{tokens:?}");
    })
    .await;
}

/// Enough changed token files that every core takes its share, each worker on its own
/// handle on the cache: every file is read on both sides and counted once, whichever
/// worker took it, and the result comes out sorted.
#[tokio::test]
async fn many_changed_token_files_are_each_read_once_on_every_core() {
    bounded(async {
        let env = Env::new();
        let before: Vec<(String, Vec<u8>)> = (0..150)
            .map(|i| {
                let text = format!(":root {{ --t{i}: {i}px; --kept: 0; }}\n");
                (format!("tokens/f{i:03}.css"), text.into_bytes())
            })
            .collect();
        let files: Vec<(&str, &[u8])> = before
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_slice()))
            .collect();
        let _repo = env.repo("web", &files);
        let ws = env.workspace();
        // Files 0-119 change a value, 120-149 are gone, and 30 new files come in.
        let after: Vec<(String, Vec<u8>)> = (0..120)
            .map(|i| format!(":root {{ --t{i}: {}px; --kept: 0; }}\n", i + 1))
            .chain((0..30).map(|i| format!("{{ \"n{i}\": {{ \"$value\": \"#fff\" }} }}\n")))
            .enumerate()
            .map(|(i, text)| {
                let name = if i < 120 {
                    format!("f{i:03}.css")
                } else {
                    format!("n{i:03}.json")
                };
                (name, text.into_bytes())
            })
            .collect();
        let entries: Vec<(&str, &[u8])> = after
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_slice()))
            .collect();
        let (_, export) = env.export(&entries);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        let tokens = ws.token_diff(&plan).await.unwrap();
        assert_eq!(
            (tokens.changed, tokens.added, tokens.removed),
            (120, 30, 60),
            "{tokens:?}"
        );
        let paths: Vec<&str> = tokens.groups.iter().map(|g| g.path.as_str()).collect();
        let mut expected: Vec<String> = (0..150).map(|i| format!("tokens/f{i:03}.css")).collect();
        expected.extend((120..150).map(|i| format!("tokens/n{i:03}.json")));
        assert_eq!(paths, expected);
        assert!(
            tokens.unreadable.is_empty() && tokens.skipped.is_empty(),
            "{tokens:?}"
        );
    })
    .await;
}
