//! The per-remote cache: shallow first fetch, incremental later ones, survives
//! restarts, rebuilt when damaged, and one delivery at a time per repository while
//! different repositories run in parallel.

mod git_env;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use courier_providers::git::{Credentials, GitError, GitWorkspace, Outcome, Remote, Timeouts};
use courier_testkit::BareRepo;
use git_env::{Env, bounded, noise, spec};
use tokio::sync::Barrier;

/// A repository whose tip holds a 1 MiB asset outside the delivery's path, above
/// history holding another.
fn repository_with_assets(env: &Env) -> BareRepo {
    let repo = env.repo(
        "web",
        &[
            ("README.md", b"hi\n"),
            ("assets/old.bin", &noise(1 << 20, 7)),
        ],
    );
    repo.commit(
        "main",
        &[
            ("assets/old.bin", None),
            ("assets/other.bin", Some(&noise(1 << 20, 9))),
        ],
        "swap assets",
    );
    repo
}

#[tokio::test]
async fn first_fetch_brings_the_tips_trees_only_and_the_next_only_what_is_new() {
    bounded(async {
        let env = Env::new();
        let repo = repository_with_assets(&env);
        let ws = env.workspace();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let remote = env.http_remote("web");
        let before = env.server.bytes_served();
        let plan = ws
            .plan(&spec(remote.clone(), Some("tokens"), true), export)
            .await
            .unwrap();
        ws.push(plan).await.unwrap();
        let first = env.server.bytes_served() - before;
        assert!(
            ws.cache_path(&remote).join("shallow").exists(),
            "the cache is shallow"
        );
        assert!(
            first < 64 * 1024,
            "neither history nor the tip's blobs outside the delivery's path were fetched ({first} bytes)"
        );

        // A small change on main, and a new process (a new workspace on the same cache).
        repo.commit(
            "main",
            &[("src/lib.rs", Some(b"pub fn f() {}\n"))],
            "small change",
        );
        let ws = GitWorkspace::new(env.cache(), Timeouts::default()).unwrap();
        let (_, export) = env.export(&[("a.json", b"2\n")]);
        let before = env.server.bytes_served();
        let plan = ws
            .plan(&spec(remote, Some("tokens"), true), export)
            .await
            .unwrap();
        assert!(matches!(plan.outcome(), Outcome::Push { .. }));
        let second = env.server.bytes_served() - before;
        assert!(
            second < 64 * 1024,
            "an incremental fetch downloads little, got {second} bytes"
        );
        let pushed = ws.push(plan).await.unwrap();
        assert!(pushed.pushed);
        assert_eq!(
            repo.read_file("courier/tokens", "assets/other.bin"),
            noise(1 << 20, 9),
            "the files outside the path are on the pushed branch"
        );
    })
    .await;
}

#[tokio::test]
async fn a_server_without_partial_fetch_gets_a_shallow_fetch_of_everything() {
    bounded(async {
        let env = Env::without_partial_fetch();
        repository_with_assets(&env);
        let ws = env.workspace();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let remote = env.http_remote("web");
        let plan = ws
            .plan(&spec(remote.clone(), Some("tokens"), true), export)
            .await
            .unwrap();
        ws.push(plan).await.unwrap();
        let served = env.server.bytes_served();
        assert!(
            ws.cache_path(&remote).join("shallow").exists(),
            "the cache is shallow"
        );
        assert!(
            served > 1 << 20,
            "the tip's 1 MiB asset was fetched ({served} bytes)"
        );
        assert!(
            served < 2 << 20,
            "history below the tip was not fetched ({served} bytes)"
        );
    })
    .await;
}

#[tokio::test]
async fn only_the_blobs_a_delivery_replaces_are_fetched() {
    bounded(async {
        let env = Env::new();
        let big = noise(1 << 20, 5);
        let repo = env.repo(
            "web",
            &[
                ("README.md", b"hi\n"),
                ("tokens/colors.css", b":root {\n  --red: #f00;\n}\n"),
                ("tokens/gone.json", b"{\"gone\": 1}\n"),
                ("tokens/icons.bin", &big),
            ],
        );
        let ws = env.workspace();
        let (_, export) = env.export(&[
            ("colors.css", b":root {\n  --red: #e00;\n}\n"),
            ("icons.bin", &big),
        ]);
        let remote = env.http_remote("web");
        let plan = ws
            .plan(&spec(remote.clone(), Some("tokens"), true), export)
            .await
            .unwrap();
        // The unchanged 1 MiB file under the path stays on the server.
        let served = env.server.bytes_served();
        assert!(served < 64 * 1024, "{served} bytes fetched");
        // One conversation: the capabilities, the refs, the trees, then the blobs.
        assert_eq!(env.server.served_requests(), 4);
        // What the delivery reads of the replaced and deleted files is there.
        let diff = ws.diff(&plan).await.unwrap();
        assert!(diff.contains("-  --red: #f00;"), "{diff}");
        assert!(diff.contains("-{\"gone\": 1}"), "{diff}");
        let tokens = ws.token_diff(&plan).await.unwrap();
        assert_eq!(tokens.changed, 1, "{tokens:?}");
        let Outcome::Push { commit, .. } = plan.outcome().clone() else {
            panic!("expected a push, got {:?}", plan.outcome());
        };
        assert!(ws.push(plan).await.unwrap().pushed);
        assert_eq!(env.server.served_requests(), 6);
        assert_eq!(
            repo.rev_parse("refs/heads/courier/tokens").as_deref(),
            Some(commit.as_str())
        );
        assert_eq!(repo.read_file("courier/tokens", "tokens/icons.bin"), big);
        // The cache kept what it fetched: a second plan fetches no blob again.
        let (_, export) = env.export(&[("colors.css", b":root {}\n"), ("icons.bin", &big)]);
        let before = env.server.bytes_served();
        drop(
            ws.plan(&spec(remote, Some("tokens"), true), export)
                .await
                .unwrap(),
        );
        assert!(env.server.bytes_served() - before < 16 * 1024);
        // Three conversations (a fetch, a push, a fetch) share one client, so mostly one
        // connection: a client each would open three. A connection hyper has not yet
        // put back in its pool when the next request leaves is not reused, which once in
        // a few hundred runs under load makes it two.
        let connections = env.server.connections();
        assert!(
            connections <= 2,
            "{connections} connections: the push and the next fetch did not reuse the first"
        );
    })
    .await;
}

/// A file the base holds unchanged at the same path is on the server already: the build
/// names it by its id and neither fetches nor writes it, and the push sends nothing for
/// it. A new file with the same bytes at another path is written and pushed.
#[tokio::test]
async fn a_file_the_base_holds_unchanged_is_neither_fetched_nor_written() {
    bounded(async {
        let env = Env::new();
        let big = noise(1 << 20, 7);
        let repo = env.repo(
            "web",
            &[
                ("README.md", b"hi\n"),
                ("tokens/colors.css", b":root {\n  --red: #f00;\n}\n"),
                ("tokens/icons.bin", &big),
                ("tokens/same.css", b"a { color: red }\n"),
            ],
        );
        let ws = env.workspace();
        let (_, export) = env.export(&[
            ("colors.css", b":root {\n  --red: #e00;\n}\n"),
            ("copy/same.css", b"a { color: red }\n"),
            ("icons.bin", &big),
            ("same.css", b"a { color: red }\n"),
        ]);
        let remote = env.http_remote("web");
        let plan = ws
            .plan(&spec(remote.clone(), Some("tokens"), true), export)
            .await
            .unwrap();
        let cache = git2::Repository::open_bare(ws.cache_path(&remote)).unwrap();
        let odb = cache.odb().unwrap();
        let id = |bytes: &[u8]| git2::Oid::hash_object(git2::ObjectType::Blob, bytes).unwrap();
        assert!(
            !odb.exists(id(&big)),
            "the unchanged 1 MiB file was written"
        );
        assert!(odb.exists(id(b":root {\n  --red: #e00;\n}\n")));
        assert!(
            odb.exists(id(b"a { color: red }\n")),
            "the copy's blob is written"
        );
        let Outcome::Push { commit, .. } = plan.outcome().clone() else {
            panic!("expected a push, got {:?}", plan.outcome());
        };
        assert!(ws.push(plan).await.unwrap().pushed);
        assert_eq!(
            repo.rev_parse("refs/heads/courier/tokens").as_deref(),
            Some(commit.as_str())
        );
        assert_eq!(repo.read_file("courier/tokens", "tokens/icons.bin"), big);
        assert_eq!(
            repo.read_file("courier/tokens", "tokens/copy/same.css"),
            b"a { color: red }\n"
        );
        courier_testkit::git(&repo.path, ["fsck", "--strict", "--no-dangling"]);
    })
    .await;
}

#[tokio::test]
async fn file_urls_fall_back_to_a_full_fetch() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        repo.commit("main", &[("b.txt", Some(b"b\n"))], "second");
        let ws = env.workspace();
        let remote = env.file_remote(&repo);
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let plan = ws
            .plan(&spec(remote.clone(), None, false), export)
            .await
            .unwrap();
        assert!(matches!(plan.outcome(), Outcome::Push { .. }));
        assert!(!ws.cache_path(&remote).join("shallow").exists());
    })
    .await;
}

#[tokio::test]
async fn a_cache_that_cannot_be_opened_is_rebuilt() {
    bounded(async {
        let env = Env::new();
        env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        let remote = env.http_remote("web");
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        drop(
            ws.plan(&spec(remote.clone(), None, false), export)
                .await
                .unwrap(),
        );

        let cache = ws.cache_path(&remote);
        std::fs::write(cache.join("HEAD"), b"garbage\n").unwrap();
        std::fs::write(cache.join("config"), b"[core\x00 nonsense").unwrap();
        let (_, export) = env.export(&[("a.json", b"2\n")]);
        let plan = ws.plan(&spec(remote, None, false), export).await.unwrap();
        assert!(
            matches!(plan.outcome(), Outcome::Push { .. }),
            "{:?}",
            plan.outcome()
        );
        ws.push(plan).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_cache_with_damaged_objects_is_rebuilt() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n"), ("tokens/a.json", b"0\n")]);
        let ws = env.workspace();
        let remote = env.http_remote("web");
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        ws.push(
            ws.plan(&spec(remote.clone(), Some("tokens"), true), export)
                .await
                .unwrap(),
        )
        .await
        .unwrap();

        // Truncate every pack and loose object: the refs still point at them.
        let cache = ws.cache_path(&remote);
        for (path, _) in git_env::files_under(&cache.join("objects")) {
            std::fs::write(&path, b"").unwrap();
        }
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let plan = ws
            .plan(&spec(remote, Some("tokens"), true), export)
            .await
            .unwrap();
        let pushed = repo.rev_parse("courier/tokens").unwrap();
        match plan.outcome() {
            Outcome::UpToDate { commit } => assert_eq!(commit.as_str(), pushed),
            other => panic!("expected UpToDate after the rebuild, got {other:?}"),
        }
    })
    .await;
}

/// Two deliveries to one repository and head branch at once: the second plans only
/// after the first has pushed, sees its commit, and converges on top of it instead of
/// failing on a stale head.
async fn assert_serialised(first: GitWorkspace, second: GitWorkspace, env: &Env) {
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for (n, ws) in [first, second].into_iter().enumerate() {
        let barrier = barrier.clone();
        let remote = env.http_remote("web");
        let content = format!("{n}\n").into_bytes();
        let (_, export) = env.export(&[("a.json", &content)]);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let plan = ws
                .plan(&spec(remote, Some("tokens"), true), export)
                .await
                .unwrap();
            let planned = Instant::now();
            let head_before = plan.head_before();
            let done = ws.push(plan).await.unwrap();
            (planned, Instant::now(), head_before, done)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results.sort_by_key(|r| r.0);
    let (a, b) = (&results[0], &results[1]);
    assert!(
        b.0 >= a.1,
        "the second delivery planned before the first had pushed"
    );
    let Outcome::Push { commit, .. } = &a.3.outcome else {
        panic!("{:?}", a.3.outcome)
    };
    assert_eq!(
        b.2.as_ref(),
        Some(commit),
        "the second delivery saw the first one's commit"
    );
    assert!(b.3.pushed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_the_same_repository_are_serialised() {
    bounded(async {
        let env = Env::new();
        env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        assert_serialised(ws.clone(), ws, &env).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workspaces_on_one_cache_directory_take_turns_through_the_file_lock() {
    bounded(async {
        let env = Env::new();
        env.repo("web", &[("README.md", b"hi\n")]);
        // Separate in-process lock tables, like two processes: only the OS lock is shared.
        assert_serialised(env.workspace(), env.workspace(), &env).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_different_repositories_run_in_parallel() {
    let env = Env::new();
    env.repo("one", &[("README.md", b"1\n")]);
    env.repo("two", &[("README.md", b"2\n")]);
    let ws = env.workspace();
    // Each delivery holds its plan (and so its repository's lock) until both have
    // planned: with one lock for everything, this would never complete.
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for name in ["one", "two"] {
        let (ws, barrier, remote) = (ws.clone(), barrier.clone(), env.http_remote(name));
        let (_, export) = env.export(&[("a.json", name.as_bytes())]);
        tasks.push(tokio::spawn(async move {
            let plan = ws
                .plan(&spec(remote, Some("tokens"), true), export)
                .await
                .unwrap();
            barrier.wait().await;
            ws.push(plan).await.unwrap()
        }));
    }
    let all = async {
        for t in tasks {
            assert!(t.await.unwrap().pushed);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("deliveries to different repositories waited for each other");
}

#[tokio::test]
async fn waiting_for_a_busy_repository_times_out_with_a_clear_error() {
    bounded(async {
        let env = Env::new();
        env.repo("web", &[("README.md", b"hi\n")]);
        let timeouts = Timeouts {
            lock: Duration::from_millis(300),
            ..Timeouts::default()
        };
        let ws = GitWorkspace::new(env.cache(), timeouts).unwrap();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let held = ws
            .plan(&spec(env.http_remote("web"), None, false), export.clone())
            .await
            .unwrap();
        let err = ws
            .plan(&spec(env.http_remote("web"), None, false), export)
            .await
            .unwrap_err();
        assert!(
            matches!(err, courier_providers::git::GitError::Timeout { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("another delivery"), "{err}");
        drop(held);
    })
    .await;
}

/// A fetch made ahead of its export (`fetch`, then `plan_fetched`) holds the repository as
/// a plan does, and serves only the target it was made for.
#[tokio::test]
async fn a_fetch_ahead_holds_the_repository_and_serves_only_its_own_target() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let timeouts = Timeouts {
            lock: Duration::from_millis(300),
            ..Timeouts::default()
        };
        let ws = GitWorkspace::new(env.cache(), timeouts).unwrap();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let spec = spec(env.http_remote("web"), Some("tokens"), true);
        let fetch = || ws.fetch(&spec.remote, spec.base_branch.as_deref(), &spec.head_branch);
        let fetched = fetch().await.unwrap();
        let err = ws.plan(&spec, export.clone()).await.unwrap_err();
        assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");

        let mut other = spec.clone();
        other.head_branch = "courier/other".into();
        let err = ws
            .plan_fetched(&other, export.clone(), fetched)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("another target"), "{err}");

        // The refused fetch let the repository go; the next one delivers.
        let plan = ws.plan_fetched(&spec, export, fetch().await.unwrap()).await;
        let done = ws.push(plan.unwrap()).await.unwrap();
        let Outcome::Push { commit, .. } = &done.outcome else {
            panic!("{:?}", done.outcome)
        };
        assert_eq!(
            repo.rev_parse("refs/heads/courier/tokens").as_deref(),
            Some(commit.as_str())
        );
    })
    .await;
}

/// Someone makes the head branch after the push read the remote's refs and before the
/// server updates it (a `pre-receive` hook does, outside git's quarantine): the server
/// refuses the update, and the push says the head moved (retried from a new plan) rather
/// than that the delivery was refused. Their branch stays.
#[tokio::test]
async fn a_head_branch_made_during_the_push_is_a_moved_head_not_a_refusal() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let hook = repo.path.join("hooks/pre-receive");
        std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
        std::fs::write(
            &hook,
            "#!/bin/sh\nenv -u GIT_QUARANTINE_PATH git update-ref refs/heads/courier/tokens refs/heads/main\n",
        )
        .unwrap();
        let mut mode = std::fs::metadata(&hook).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
        std::fs::set_permissions(&hook, mode).unwrap();
        let ws = env.workspace();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let spec = spec(env.http_remote("web"), Some("tokens"), true);
        let plan = ws.plan(&spec, export).await.unwrap();
        assert_eq!(plan.head_before(), None);
        let err = ws.push(plan).await.unwrap_err();
        assert!(matches!(err, GitError::HeadMoved { .. }), "{err:?}");
        assert_eq!(
            repo.rev_parse("refs/heads/courier/tokens"),
            repo.rev_parse("refs/heads/main"),
            "their branch stays"
        );
    })
    .await;
}

/// The file `name` the repository's cache keeps beside git's own.
fn kept_file(env: &Env, name: &str) -> std::path::PathBuf {
    std::fs::read_dir(env.cache())
        .unwrap()
        .map(|e| e.unwrap().path().join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("the cache keeps {name}"))
}

/// Delivers `content` as `tokens/a.json` and pushes it.
async fn deliver(ws: &GitWorkspace, env: &Env, content: &[u8]) -> Result<Outcome, GitError> {
    let (_, export) = env.export(&[("a.json", content)]);
    let plan = ws
        .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
        .await?;
    Ok(ws.push(plan).await?.outcome)
}

/// The first push asks for the remote's refs and keeps its capabilities; later pushes
/// skip that request (a round trip), and the branch still lands where each plan put it.
/// A kept file that is no use is ignored.
#[tokio::test]
async fn after_the_first_push_a_push_skips_the_ref_advertisement() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        for (n, content) in [b"1\n", b"2\n", b"3\n"].into_iter().enumerate() {
            let outcome = deliver(&ws, &env, content).await.unwrap();
            let Outcome::Push { commit, .. } = outcome else {
                panic!("{outcome:?}")
            };
            assert_eq!(
                repo.rev_parse("refs/heads/courier/tokens").as_deref(),
                Some(commit.as_str())
            );
            assert_eq!(env.server.advertisements("git-receive-pack"), 1, "push {n}");
        }
        assert_eq!(env.server.pushes(), 3);
        courier_testkit::git(&repo.path, ["fsck", "--strict", "--no-dangling"]);

        let kept = kept_file(&env, "courier-push-capabilities");
        std::fs::write(&kept, "no use").unwrap();
        deliver(&ws, &env, b"4\n").await.unwrap();
        assert_eq!(env.server.advertisements("git-receive-pack"), 2);
        assert!(
            std::fs::read_to_string(&kept)
                .unwrap()
                .contains("report-status")
        );
    })
    .await;
}

/// The first fetch asks for the server's capabilities and keeps them; later fetches skip
/// that request and still bring what moved. A kept file that is no use is forgotten.
#[tokio::test]
async fn after_the_first_fetch_a_fetch_skips_the_capability_advertisement() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        for n in 0..3u8 {
            let moved = repo.commit(
                "main",
                &[("notes.txt", Some(format!("{n}\n").as_bytes()))],
                "elsewhere",
            );
            let (_, export) = env.export(&[("a.json", b"1\n")]);
            let plan = ws
                .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
                .await
                .unwrap();
            assert_eq!(plan.base_commit().as_str(), moved, "fetch {n}");
            assert_eq!(env.server.advertisements("git-upload-pack"), 1, "fetch {n}");
        }
        let kept = kept_file(&env, "courier-fetch-capabilities");
        std::fs::write(&kept, "no use").unwrap();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        ws.plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        assert_eq!(env.server.advertisements("git-upload-pack"), 2);
        assert!(std::fs::read(&kept).unwrap().starts_with(b"000e"));
    })
    .await;
}

/// Without the advertisement the push cannot see that someone moved the head branch
/// after the plan: the server refuses the update, the push says the head moved, and
/// their branch stays.
#[tokio::test]
async fn a_push_without_the_advertisement_still_finds_a_moved_head() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        deliver(&ws, &env, b"1\n").await.unwrap();
        let (_, export) = env.export(&[("a.json", b"2\n")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        courier_testkit::git(
            &repo.path,
            ["update-ref", "refs/heads/courier/tokens", "refs/heads/main"],
        );
        let theirs = repo.rev_parse("refs/heads/courier/tokens");
        let (advertisements, pushes) = (
            env.server.advertisements("git-receive-pack"),
            env.server.pushes(),
        );
        let err = ws.push(plan).await.unwrap_err();
        assert!(matches!(err, GitError::HeadMoved { .. }), "{err:?}");
        assert_eq!(repo.rev_parse("refs/heads/courier/tokens"), theirs);
        assert_eq!(
            env.server.pushes(),
            pushes + 1,
            "the update went out, refused"
        );
        assert_eq!(
            env.server.advertisements("git-receive-pack"),
            advertisements + 1,
            "only the refusal asked for the refs"
        );
    })
    .await;
}

/// Another process (a replica, with a cache of its own) pushed the head branch: this cache
/// fetches that branch without blobs, so the version of a file the base does not have,
/// which the delivery replaces, is only on the server. The push sends the file whole.
#[tokio::test]
async fn a_head_branch_file_the_cache_never_fetched_is_replaced() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let remote = env.http_remote("web");
        let (_, export) = env.export(&[("job.txt", b"job 1\n")]);
        let other =
            GitWorkspace::new(env.dir.path().join("other-cache"), Timeouts::default()).unwrap();
        let plan = other
            .plan(&spec(remote.clone(), Some("tokens"), true), export)
            .await
            .unwrap();
        assert!(other.push(plan).await.unwrap().pushed);

        let ws = env.workspace();
        let (_, export) = env.export(&[("job.txt", b"job 2\n")]);
        let plan = ws
            .plan(&spec(remote, Some("tokens"), true), export)
            .await
            .unwrap();
        assert!(matches!(
            plan.outcome(),
            Outcome::Push {
                replaces: Some(_),
                ..
            }
        ));
        assert!(ws.push(plan).await.unwrap().pushed);
        assert_eq!(
            repo.read_file("courier/tokens", "tokens/job.txt"),
            b"job 2\n"
        );
    })
    .await;
}

/// A TCP proxy to the test server that, while `cut` is set, drops the connection once an
/// answer has passed its `packfile` header and a few hundred bytes of the pack.
fn cutting_proxy(upstream: u16, cut: Arc<AtomicBool>) -> u16 {
    use std::io::{Read as _, Write as _};
    use std::net::{Shutdown, TcpListener, TcpStream};
    const KEPT: usize = 300;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let cut = cut.clone();
            std::thread::spawn(move || {
                let mut server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                let (mut from_client, mut to_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_client, &mut to_server);
                    let _ = to_server.shutdown(Shutdown::Write);
                });
                let (mut seen, mut buf) = (Vec::new(), [0u8; 4096]);
                while let Ok(n @ 1..) = server.read(&mut buf) {
                    let start = seen.len();
                    seen.extend_from_slice(&buf[..n]);
                    let header = seen.windows(9).position(|w| w == b"packfile\n");
                    match header.filter(|_| cut.load(Ordering::SeqCst)) {
                        Some(at) if seen.len() > at + KEPT => {
                            let end = (at + KEPT).max(start);
                            let _ = client.write_all(&seen[start..end]);
                            break;
                        }
                        _ if client.write_all(&buf[..n]).is_err() => break,
                        _ => {}
                    }
                }
                let _ = client.shutdown(Shutdown::Both);
            });
        }
    });
    port
}

/// A fetch whose pack is cut off part way fails, and leaves a cache the next delivery
/// fetches into and pushes from.
#[tokio::test]
async fn a_fetch_cut_off_in_its_pack_fails_and_the_next_delivery_succeeds() {
    bounded(async {
        let env = Env::new();
        // Enough directories that the pack of trees is several kilobytes.
        let files: Vec<(String, Vec<u8>)> = (0..300)
            .map(|i| {
                (
                    format!("src/m{}/f{i}.txt", i % 30),
                    format!("{i}\n").into_bytes(),
                )
            })
            .collect();
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_slice()))
            .collect();
        let repo = env.repo("web", &files);
        let cut = Arc::new(AtomicBool::new(true));
        let port = cutting_proxy(env.server.port(), cut.clone());
        let remote = Remote::new(
            &format!("http://127.0.0.1:{port}/web.git"),
            Some(Credentials {
                username: "x-access-token".into(),
                token: secrecy::SecretString::from(git_env::TOKEN),
            }),
        )
        .unwrap();
        let ws = env.workspace();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let failed = ws
            .plan(&spec(remote.clone(), Some("tokens"), true), export.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(failed, GitError::Transient { .. }),
            "a connection lost mid-pack is worth retrying: {failed:?}"
        );

        cut.store(false, Ordering::SeqCst);
        let plan = ws
            .plan(&spec(remote, Some("tokens"), true), export)
            .await
            .unwrap();
        assert!(ws.push(plan).await.unwrap().pushed);
        assert_eq!(repo.read_file("courier/tokens", "tokens/a.json"), b"1\n");
        assert_eq!(repo.read_file("courier/tokens", "src/m7/f7.txt"), b"7\n");
    })
    .await;
}
