//! The tree Courier pushes is the tree a person gets with the git CLI by hand (clone,
//! unzip, `rsync -a --delete` or `cp -r` into the path, `git add -A`, commit), compared
//! by tree id read with the git CLI.

mod git_env;

use courier_providers::git::{GitWorkspace, Outcome, Remote};
use courier_testkit::{BareRepo, cli_delivery_tree};
use git_env::{Env, bounded, spec};

/// Delivers `files` with Courier, then checks the pushed tree against the CLI's.
async fn assert_same_as_cli(
    env: &Env,
    ws: &GitWorkspace,
    repo: &BareRepo,
    remote: Remote,
    relative_path: Option<&str>,
    purge: bool,
    files: &[(&str, &[u8])],
) {
    let (zip, export) = env.export(files);
    let plan = ws
        .plan(&spec(remote, relative_path, purge), export)
        .await
        .unwrap();
    assert!(
        matches!(plan.outcome(), Outcome::Push { .. }),
        "{:?}",
        plan.outcome()
    );
    ws.push(plan).await.unwrap();
    let expected = cli_delivery_tree(repo, "main", &zip, relative_path, purge);
    let pushed = repo.tree_of("courier/tokens").expect("head branch pushed");
    assert_eq!(
        pushed,
        expected,
        "Courier's tree differs from the git CLI's\ncourier: {:#?}\ncli base: {:#?}",
        repo.ls_tree("courier/tokens"),
        repo.ls_tree("main")
    );
    assert_eq!(
        repo.parents("courier/tokens"),
        vec![repo.rev_parse("main").unwrap()]
    );
}

fn base_files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("README.md", b"# web\n"),
        ("src/app.ts", b"export const app = 1;\r\n"),
        ("src/tokens/old.json", b"{\"old\":true}\n"),
        ("src/tokens/colors.json", b"{\"red\":\"#e00\"}\n"),
        ("src/tokens/icons/a.svg", b"<svg id=\"a\"/>\n"),
        ("src/tokens/icons/b.svg", b"<svg id=\"b\"/>\n"),
        ("src/tokens/keep/deep/x.txt", b"x\n"),
        ("src/tokensX/sibling.txt", b"not under the path\n"),
        ("docs", b"a file where a directory will go\n"),
    ]
}

const BINARY: &[u8] = &[
    0, 159, 146, 150, 255, 0, 1, 2, b'\n', b'\r', 0, 0x89, b'P', b'N', b'G',
];

fn corpus() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("colors.json", b"{\"red\":\"#f00\"}\n"),
        ("nested/deeper/deepest/spacing.json", b"{\"s\":4}\n"),
        ("nested/empty.txt", b""),
        ("unicodé/Ωmega ✓.json", b"{\"unicode\":\"\xc3\xa9\"}\n"),
        ("日本語/トークン.css", b":root{--a:1}\r\n"),
        ("crlf.txt", b"line one\r\nline two\r\n"),
        ("no-newline.txt", b"end"),
        ("icons/logo.png", BINARY),
    ]
}

#[tokio::test]
async fn purge_replaces_the_directory_over_http() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &base_files());
        let ws = env.workspace();
        assert_same_as_cli(
            &env,
            &ws,
            &repo,
            env.http_remote("web"),
            Some("src/tokens"),
            true,
            &corpus(),
        )
        .await;
        // Deleted by the purge: files the export no longer has, a whole directory.
        let paths: Vec<String> = repo
            .ls_tree("courier/tokens")
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert!(
            !paths
                .iter()
                .any(|p| p == "src/tokens/old.json" || p.starts_with("src/tokens/keep/"))
        );
        assert!(paths.iter().any(|p| p == "src/tokensX/sibling.txt"));
        assert!(
            repo.ls_tree("courier/tokens")
                .iter()
                .all(|e| e.mode == "100644")
        );
    })
    .await;
}

#[tokio::test]
async fn overlay_adds_and_replaces_and_keeps_the_rest_over_file_urls() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &base_files());
        let ws = env.workspace();
        let remote = env.file_remote(&repo);
        assert_same_as_cli(
            &env,
            &ws,
            &repo,
            remote,
            Some("src/tokens"),
            false,
            &corpus(),
        )
        .await;
        assert_eq!(
            repo.read_file("courier/tokens", "src/tokens/old.json"),
            b"{\"old\":true}\n"
        );
        assert_eq!(
            repo.read_file("courier/tokens", "src/tokens/colors.json"),
            b"{\"red\":\"#f00\"}\n"
        );
    })
    .await;
}

#[tokio::test]
async fn an_export_that_empties_a_directory_removes_it() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &base_files());
        let ws = env.workspace();
        // icons/ and keep/ exist in the repository, not in the export.
        let files: Vec<(&str, &[u8])> = vec![("colors.json", b"{}\n")];
        assert_same_as_cli(
            &env,
            &ws,
            &repo,
            env.http_remote("web"),
            Some("src/tokens"),
            true,
            &files,
        )
        .await;
        let paths: Vec<String> = repo
            .ls_tree("courier/tokens")
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert!(
            !paths.iter().any(|p| p.starts_with("src/tokens/icons")),
            "{paths:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_file_in_the_way_of_the_path_is_replaced_and_root_overlay_works() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &base_files());
        let ws = env.workspace();
        assert_same_as_cli(
            &env,
            &ws,
            &repo,
            env.http_remote("web"),
            Some("docs"),
            true,
            &corpus(),
        )
        .await;

        let repo2 = env.repo("root", &base_files());
        let files: Vec<(&str, &[u8])> =
            vec![("README.md", b"# replaced\n"), ("new/top.txt", b"t\n")];
        assert_same_as_cli(
            &env,
            &ws,
            &repo2,
            env.http_remote("root"),
            None,
            false,
            &files,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_50_mb_file_is_streamed_byte_for_byte() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("big", &[("README.md", b"big\n")]);
        let ws = env.workspace();
        // Pseudo-random, so it does not compress away and both sides really carry 50 MB.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let big: Vec<u8> = (0..50 * 1024 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let files: Vec<(&str, &[u8])> =
            vec![("assets/big.bin", &big), ("assets/small.txt", b"s\n")];
        assert_same_as_cli(
            &env,
            &ws,
            &repo,
            env.http_remote("big"),
            Some("vendor"),
            true,
            &files,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn other_paths_changing_between_deliveries_are_kept() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &base_files());
        let ws = env.workspace();
        assert_same_as_cli(
            &env,
            &ws,
            &repo,
            env.http_remote("web"),
            Some("src/tokens"),
            true,
            &corpus(),
        )
        .await;

        // People work on main meanwhile, outside and inside the path.
        repo.commit(
            "main",
            &[
                ("src/app.ts", Some(b"export const app = 2;\n")),
                ("README.md", None),
                ("lib/new.rs", Some(b"fn main() {}\n")),
                ("src/tokens/manual.txt", Some(b"added by hand\n")),
            ],
            "work on main",
        );
        let mut next = corpus();
        next.retain(|(p, _)| *p != "crlf.txt");
        next.push(("added-later.json", b"{}\n"));
        assert_same_as_cli(
            &env,
            &ws,
            &repo,
            env.http_remote("web"),
            Some("src/tokens"),
            true,
            &next,
        )
        .await;

        repo.commit("main", &[("lib/more.rs", Some(b"// more\n"))], "more work");
        assert_same_as_cli(
            &env,
            &ws,
            &repo,
            env.http_remote("web"),
            Some("src/tokens"),
            false,
            &next[..3],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn hundreds_of_files_written_by_several_threads_match_too() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("many", &base_files());
        let ws = env.workspace();
        let names: Vec<String> = (0..300)
            .map(|i| format!("g{}/sub{}/file-{i}.json", i % 7, i % 3))
            .collect();
        let bodies: Vec<Vec<u8>> = (0..300)
            .map(|i| format!("{{\"n\":{i}}}\n").repeat(i % 17 + 1).into_bytes())
            .collect();
        let files: Vec<(&str, &[u8])> = names
            .iter()
            .map(String::as_str)
            .zip(bodies.iter().map(Vec::as_slice))
            .collect();
        assert_same_as_cli(
            &env,
            &ws,
            &repo,
            env.http_remote("many"),
            Some("src/tokens"),
            true,
            &files,
        )
        .await;
        assert_eq!(
            repo.ls_tree("courier/tokens")
                .iter()
                .filter(|e| e.path.starts_with("src/tokens/"))
                .count(),
            300
        );
    })
    .await;
}
