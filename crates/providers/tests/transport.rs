//! Credentials, push status and secrets, against a real smart-HTTP server with token
//! auth and against `file://` bare repositories.

mod git_env;

use std::time::{Duration, Instant};

use base64::Engine as _;

use courier_providers::git::{GitError, Outcome, Remote};
use courier_testkit::install_pre_receive_hook;
use git_env::{Env, TOKEN, bounded, files_under, spec};

#[tokio::test]
async fn good_token_pushes_over_http() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hello\n")]);
        let (_, export) = env.export(&[("colors.json", b"{\"red\":\"#f00\"}\n")]);
        let ws = env.workspace();
        let plan = ws
            .plan(
                &spec(env.http_remote("web"), Some("src/tokens"), true),
                export,
            )
            .await
            .unwrap();
        let Outcome::Push {
            commit,
            replaces: None,
        } = plan.outcome().clone()
        else {
            panic!("expected a push of a new branch, got {:?}", plan.outcome());
        };
        let done = ws.push(plan).await.unwrap();
        assert!(done.pushed);
        assert_eq!(
            repo.rev_parse("refs/heads/courier/tokens").as_deref(),
            Some(commit.as_str())
        );
        assert_eq!(
            repo.read_file("courier/tokens", "src/tokens/colors.json"),
            b"{\"red\":\"#f00\"}\n"
        );
        assert_eq!(
            repo.parents("courier/tokens"),
            vec![repo.rev_parse("main").unwrap()]
        );
        let message = repo.message("courier/tokens");
        assert!(message.starts_with("Update design tokens\n"), "{message}");
        assert!(
            message.trim_end().ends_with("Courier-Delivery: delivery-1"),
            "{message}"
        );
        let (author, committer) = repo.author_and_committer("courier/tokens");
        assert_eq!(author, "Courier Bot <courier@example.invalid>");
        assert_eq!(committer, author);
    })
    .await;
}

/// An exporter writes the same file once per theme. The cache bounds the push's delta
/// search (for speed), and those near-copies must still go as deltas.
#[tokio::test]
async fn near_copies_are_pushed_as_deltas() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hello\n")]);
        // Keep the received pack as sent, instead of unpacking its few objects.
        repo.set_config("receive.unpackLimit", "1");
        let common: String = (0..200)
            .map(|i| format!("--color-{i}: #{:06x};\n", i * 7919))
            .collect();
        let files: Vec<(String, Vec<u8>)> = ["light", "dark"]
            .iter()
            .flat_map(|theme| {
                let common = &common;
                (0..5).map(move |i| {
                    let name = format!("{theme}/tokens{i}.css");
                    let body = format!("/* {theme} {i} */\n{common}--theme: {theme};\n");
                    (name, body.into_bytes())
                })
            })
            .collect();
        let borrowed: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let (_, export) = env.export(&borrowed);
        let ws = env.workspace();
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        assert!(ws.push(plan).await.unwrap().pushed);

        let listing = kept_pack(&repo);
        // A deltified object's line ends with its depth and base.
        let deltas = listing
            .lines()
            .filter(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.get(1) == Some(&"blob") && cols.len() == 7
            })
            .count();
        assert!(deltas >= 9, "9 of the 10 files are near-copies:\n{listing}");
    })
    .await;
}

/// `git verify-pack -v` of the one pack a repository kept (with `receive.unpackLimit`
/// 1, the pushed pack as received).
fn kept_pack(repo: &courier_testkit::BareRepo) -> String {
    let pack = std::fs::read_dir(repo.path.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .expect("the pushed pack is kept");
    courier_testkit::git(&repo.path, ["verify-pack", "-v", pack.to_str().unwrap()])
}

#[tokio::test]
async fn wrong_token_fails_fast_with_auth_and_never_loops() {
    bounded(async {
        let env = Env::new();
        env.repo("web", &[("README.md", b"hello\n")]);
        let (_, export) = env.export(&[("a.txt", b"a")]);
        let ws = env.workspace();
        let started = Instant::now();
        let err = ws
            .plan(
                &spec(
                    env.http_remote_with("web", "wrong-token-value"),
                    None,
                    false,
                ),
                export,
            )
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, GitError::Auth { .. }), "{err:?}");
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
        // One anonymous probe and one try with the token; a loop would be many more.
        assert!(
            env.server.refused_requests() <= 3,
            "{} refused requests",
            env.server.refused_requests()
        );
        assert!(!err.to_string().contains("wrong-token-value"));
        assert!(err.to_string().contains("token"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn missing_token_is_an_auth_error() {
    bounded(async {
        let env = Env::new();
        env.repo("web", &[("README.md", b"hello\n")]);
        let (_, export) = env.export(&[("a.txt", b"a")]);
        let remote = Remote::new(&env.server.url("web"), None).unwrap();
        let err = env
            .workspace()
            .plan(&spec(remote, None, false), export)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::Auth { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn unknown_repository_and_base_branch_are_not_found() {
    bounded(async {
        let env = Env::new();
        env.repo("web", &[("README.md", b"hello\n")]);
        let (_, export) = env.export(&[("a.txt", b"a")]);
        let ws = env.workspace();
        let err = ws
            .plan(&spec(env.http_remote("nope"), None, false), export.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::NotFound { .. }), "{err:?}");

        let mut s = spec(env.http_remote("web"), None, false);
        s.base_branch = Some("develop".into());
        let err = ws.plan(&s, export).await.unwrap_err();
        match err {
            GitError::NotFound { what, .. } => assert!(what.contains("develop"), "{what}"),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

/// Without a configured base, the delivery is built on the branch the remote's `HEAD`
/// points at (here `trunk`), and says so; a remote with no `HEAD` branch (an empty
/// repository) is refused with what to set.
#[tokio::test]
async fn without_a_base_the_remote_default_branch_is_the_base() {
    bounded(async {
        let env = Env::new();
        let repo = courier_testkit::make_bare_repo(
            &env.repos(),
            "web",
            "trunk",
            &[("README.md", b"hello\n")],
        );
        let (_, export) = env.export(&[("a.txt", b"a")]);
        let ws = env.workspace();
        let mut s = spec(env.http_remote("web"), Some("tokens"), false);
        s.base_branch = None;
        assert_eq!(
            ws.default_branch(&env.http_remote("web")).await.unwrap(),
            "trunk"
        );
        // Protocol v2: the capabilities, then `ls-refs` for HEAD alone (libgit2 reads
        // every ref in one request).
        assert_eq!(env.server.served_requests(), 2);
        let plan = ws.plan(&s, export.clone()).await.unwrap();
        assert_eq!(plan.base_branch(), "trunk");
        assert_eq!(
            plan.base_commit().as_str(),
            repo.rev_parse("trunk").unwrap()
        );
        let delivered = ws.push(plan).await.unwrap();
        assert!(delivered.pushed);
        let parent = courier_testkit::git(
            repo.path.as_path(),
            ["rev-parse", &format!("{}^", delivered.head_branch)],
        );
        assert_eq!(parent.trim(), repo.rev_parse("trunk").unwrap());

        // An empty repository has no branch for HEAD to point at.
        let empty = env.repos().join("empty.git");
        courier_testkit::git(
            env.repos().as_path(),
            ["init", "-q", "--bare", empty.to_str().unwrap()],
        );
        let err = ws
            .plan(&spec(env.http_remote("empty"), None, false), export.clone())
            .await;
        let mut s = spec(env.http_remote("empty"), None, false);
        s.base_branch = None;
        let err2 = ws.plan(&s, export).await.unwrap_err();
        assert!(err.is_err(), "main does not exist there either");
        match err2 {
            GitError::NotFound { what, .. } => {
                assert!(what.contains("set `branch`"), "{what}")
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

/// From a server without partial fetches, libgit2 reads the default branch.
#[tokio::test]
async fn the_default_branch_is_read_from_a_server_without_partial_fetch_too() {
    bounded(async {
        let env = Env::without_partial_fetch();
        courier_testkit::make_bare_repo(&env.repos(), "web", "trunk", &[("a", b"a")]);
        let ws = env.workspace();
        assert_eq!(
            ws.default_branch(&env.http_remote("web")).await.unwrap(),
            "trunk"
        );
    })
    .await;
}

const HOOK: &str = r#"while read old new ref; do
  case "$ref" in
    refs/heads/courier/*) echo "policy: courier branches need a ticket (CR-7)" >&2; exit 1;;
  esac
done
exit 0"#;

#[tokio::test]
async fn pre_receive_rejection_carries_the_hook_message_over_http() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hello\n")]);
        install_pre_receive_hook(&repo, HOOK);
        let (_, export) = env.export(&[("a.txt", b"a")]);
        let ws = env.workspace();
        let plan = ws
            .plan(&spec(env.http_remote("web"), None, false), export)
            .await
            .unwrap();
        let err = ws.push(plan).await.unwrap_err();
        match &err {
            GitError::Rejected { reference, message } => {
                assert_eq!(reference, "refs/heads/courier/tokens");
                assert!(message.contains("CR-7"), "{message}");
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
        assert_eq!(repo.rev_parse("refs/heads/courier/tokens"), None);
    })
    .await;
}

/// libgit2's `file://` transport writes into the target repository in-process: it
/// pushes without credentials and runs none of the target's hooks. Server-side
/// policies exist only behind a server; this pins that documented limitation.
#[tokio::test]
async fn file_urls_push_without_credentials_and_run_no_hooks() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hello\n")]);
        install_pre_receive_hook(&repo, HOOK);
        let (_, export) = env.export(&[("a.txt", b"a")]);
        let ws = env.workspace();
        let plan = ws
            .plan(&spec(env.file_remote(&repo), None, false), export)
            .await
            .unwrap();
        let done = ws.push(plan).await.unwrap();
        assert!(done.pushed);
        assert_eq!(repo.read_file("courier/tokens", "a.txt"), b"a");
    })
    .await;
}

#[tokio::test]
async fn protected_branch_style_rejection_is_not_swallowed() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hello\n")]);
        repo.set_config("receive.denyNonFastForwards", "true");
        let ws = env.workspace();
        let (_, first) = env.export(&[("a.txt", b"one")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), None, false), first)
            .await
            .unwrap();
        ws.push(plan).await.unwrap();
        let pushed = repo.rev_parse("courier/tokens").unwrap();

        // Rebuilding the branch is not a fast-forward: the server refuses it.
        let (_, second) = env.export(&[("a.txt", b"two")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), None, false), second)
            .await
            .unwrap();
        assert!(matches!(
            plan.outcome(),
            Outcome::Push {
                replaces: Some(_),
                ..
            }
        ));
        let err = ws.push(plan).await.unwrap_err();
        match &err {
            GitError::Rejected { message, .. } => assert!(
                message.contains("fast-forward") || message.contains("fast forward"),
                "{message}"
            ),
            other => panic!("expected Rejected, got {other:?}"),
        }
        assert_eq!(repo.rev_parse("courier/tokens").unwrap(), pushed);
    })
    .await;
}

#[tokio::test]
async fn token_is_never_stored_in_the_cache_nor_in_errors() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hello\n")]);
        let ws = env.workspace();
        let (_, export) = env.export(&[("t/a.txt", b"a")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), None, false), export)
            .await
            .unwrap();
        ws.push(plan).await.unwrap();
        assert!(repo.rev_parse("courier/tokens").is_some());

        // An error path too: a hook rejection echoing what it can.
        install_pre_receive_hook(&repo, "echo \"env: $(env)\" >&2; exit 1");
        let (_, export) = env.export(&[("t/a.txt", b"b")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), None, false), export)
            .await
            .unwrap();
        let err = ws.push(plan).await.unwrap_err();
        assert!(!format!("{err} {err:?}").contains(TOKEN));

        let cache = env.cache();
        let files = files_under(&cache);
        assert!(
            files.iter().any(|(p, _)| p.ends_with("config")),
            "cache has a config file"
        );
        for (path, bytes) in files {
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "token found in {}",
                path.display()
            );
            if path.ends_with("config") {
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains("[remote"), "a remote was stored: {text}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    bounded(async {
        let env = Env::new();
        // Accepts connections and never says a word, until told to hang up.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (hang_up, told) = std::sync::mpsc::channel::<()>();
        let held = std::thread::spawn(move || {
            let mut open = Vec::new();
            while told.try_recv().is_err() {
                if let Ok((stream, _)) = listener.accept() {
                    open.push(stream);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let remote = Remote::new(&format!("http://{addr}/web.git"), None).unwrap();
        let timeouts = courier_providers::git::Timeouts {
            fetch: Duration::from_secs(1),
            build: Duration::from_secs(1),
            ..Default::default()
        };
        let ws = courier_providers::git::GitWorkspace::new(env.cache(), timeouts).unwrap();
        let (_, export) = env.export(&[("a.txt", b"a")]);
        let started = Instant::now();
        let err = ws
            .plan(&spec(remote, None, false), export)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // libgit2 is still blocked reading that socket (its socket timeout is a process-wide
        // setting the binary makes and this test binary does not; `silent_server.rs`
        // tests it); closing it lets the thread finish.
        hang_up.send(()).unwrap();
        held.join().unwrap();
    })
    .await;
}

/// A server that answers every request with `answer(port_of_the_other_server)` and
/// reports each request's head.
fn scripted_server(
    answer: impl Fn(&str) -> String + Send + 'static,
) -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && matches!(stream.read(&mut byte), Ok(1)) {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let _ = stream.write_all(answer(&head).as_bytes());
            let _ = tx.send(head);
        }
    });
    (port, rx)
}

#[tokio::test]
async fn the_token_is_never_sent_to_the_host_a_redirect_names() {
    bounded(async {
        let env = Env::new();
        // The stranger asks for credentials, and records whether it got the token.
        let (stranger, heads) = scripted_server(|_| {
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
        });
        let (origin, _) = scripted_server(move |head| {
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{stranger}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        });
        let remote = Remote::new(
            &format!("http://127.0.0.1:{origin}/web.git"),
            Some(courier_providers::git::Credentials {
                username: "x-access-token".into(),
                token: secrecy::SecretString::from(TOKEN),
            }),
        )
        .unwrap();
        let (_, export) = env.export(&[("a.txt", b"a")]);
        let err = env
            .workspace()
            .plan(&spec(remote, None, false), export)
            .await
            .unwrap_err();
        let seen: Vec<String> = heads.try_iter().collect();
        let authorized = base64::engine::general_purpose::STANDARD
            .encode(format!("x-access-token:{TOKEN}"));
        assert!(
            seen.iter().all(|h| !h.contains(&authorized) && !h.to_ascii_lowercase().contains("authorization")),
            "the token went to the other host: {seen:#?}"
        );
        let named = format!("redirected to 127.0.0.1:{stranger}, another host or port");
        assert!(
            matches!(&err, GitError::Auth { detail, .. } if detail.contains(&named)),
            "{err:?}"
        );
        assert!(!err.is_transient(), "a person must fix the URL: {err:?}");
    })
    .await;
}

/// A redelivery sends what changed, as `git push` would: the files that changed go as
/// deltas against their previous version, which the remote has and the pack does not
/// (a thin pack), and the files that did not change are not sent at all, even though the
/// branch is rebuilt on its base.
#[tokio::test]
async fn a_redelivery_sends_changed_files_as_deltas_and_nothing_unchanged() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hello\n")]);
        let file = |i: usize, changed: bool| -> Vec<u8> {
            (0..120)
                .map(|line| {
                    let value = if changed && line == 60 {
                        0xabcdef
                    } else {
                        line * 7919 + i
                    };
                    format!("--color-{i}-{line}: #{value:06x};\n")
                })
                .collect::<String>()
                .into_bytes()
        };
        let export = |changed: &[usize]| {
            let files: Vec<(String, Vec<u8>)> = (0..20)
                .map(|i| (format!("f{i}.css"), file(i, changed.contains(&i))))
                .collect();
            let borrowed: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(n, b)| (n.as_str(), b.as_slice()))
                .collect();
            env.export(&borrowed).1
        };
        let ws = env.workspace();
        let plan = ws
            .plan(
                &spec(env.http_remote("web"), Some("tokens"), true),
                export(&[]),
            )
            .await
            .unwrap();
        ws.push(plan).await.unwrap();
        let first = repo.rev_parse("courier/tokens").unwrap();

        // Keep the received pack as sent (with the bases `--fix-thin` appends).
        repo.set_config("receive.unpackLimit", "1");
        let changed = [3, 7, 11, 15, 19];
        let plan = ws
            .plan(
                &spec(env.http_remote("web"), Some("tokens"), true),
                export(&changed),
            )
            .await
            .unwrap();
        assert!(matches!(
            plan.outcome(),
            Outcome::Push {
                replaces: Some(_),
                ..
            }
        ));
        ws.push(plan).await.unwrap();

        let listing = kept_pack(&repo);
        // A deltified object's line ends with its depth and base.
        let deltas: Vec<(String, String)> = listing
            .lines()
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (cols.get(1) == Some(&"blob") && cols.len() == 7)
                    .then(|| (cols[0].to_owned(), cols[6].to_owned()))
            })
            .collect();
        let mut expected: Vec<(String, String)> = changed
            .iter()
            .map(|i| {
                let path = format!("tokens/f{i}.css");
                (
                    repo.rev_parse(&format!("courier/tokens:{path}")).unwrap(),
                    repo.rev_parse(&format!("{first}:{path}")).unwrap(),
                )
            })
            .collect();
        let mut deltas_sorted = deltas.clone();
        deltas_sorted.sort();
        expected.sort();
        assert_eq!(deltas_sorted, expected, "{listing}");
        for i in (0..20).filter(|i| !changed.contains(i)) {
            let unchanged = repo
                .rev_parse(&format!("courier/tokens:tokens/f{i}.css"))
                .unwrap();
            assert!(
                !listing.contains(&unchanged),
                "f{i}.css was sent again:\n{listing}"
            );
        }
        courier_testkit::git(&repo.path, ["fsck", "--strict", "--no-dangling"]);
        for i in 0..20 {
            assert_eq!(
                repo.read_file("courier/tokens", &format!("tokens/f{i}.css")),
                file(i, changed.contains(&i))
            );
        }
    })
    .await;
}
