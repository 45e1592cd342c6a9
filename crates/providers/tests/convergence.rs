//! Deliveries converge: the head branch is one Courier commit on the current base,
//! re-deliveries push nothing, and other people's commits are never pushed over.

mod git_env;

use courier_providers::git::{HeadBranch, Outcome};
use git_env::{Env, bounded, spec};

#[tokio::test]
async fn redelivering_the_same_export_pushes_nothing() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        let files: &[(&str, &[u8])] = &[("a.json", b"{}\n"), ("b/c.json", b"[]\n")];
        let (_, export) = env.export(files);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        let first = ws.push(plan).await.unwrap();
        let Outcome::Push { commit, .. } = &first.outcome else {
            panic!("{:?}", first.outcome)
        };
        let served = env.server.served_requests();

        // Same export, another delivery id: the tree is what the branch already holds.
        let (_, again) = env.export(files);
        let mut s = spec(env.http_remote("web"), Some("tokens"), true);
        s.delivery_id = "delivery-2".into();
        let plan = ws.plan(&s, again).await.unwrap();
        assert_eq!(
            plan.outcome(),
            &Outcome::UpToDate {
                commit: commit.clone()
            }
        );
        assert_eq!(plan.files().added, vec!["tokens/a.json", "tokens/b/c.json"]);
        let second = ws.push(plan).await.unwrap();
        assert!(!second.pushed);
        assert_eq!(
            repo.rev_parse("courier/tokens").as_deref(),
            Some(commit.as_str())
        );
        // Only the fetch talked to the server (advertisement + negotiation), no push.
        let after = env.server.served_requests();
        assert!(
            after - served <= 3,
            "{} requests for an up-to-date delivery",
            after - served
        );
    })
    .await;
}

#[tokio::test]
async fn an_export_equal_to_the_base_is_no_changes() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n"), ("tokens/a.json", b"{}\n")]);
        let ws = env.workspace();
        let (_, export) = env.export(&[("a.json", b"{}\n")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        assert_eq!(
            plan.outcome(),
            &Outcome::NoChanges {
                head: HeadBranch::Absent
            }
        );
        assert!(plan.files().is_empty());
        let done = ws.push(plan).await.unwrap();
        assert!(!done.pushed);
        assert_eq!(repo.rev_parse("refs/heads/courier/tokens"), None);
    })
    .await;
}

#[tokio::test]
async fn a_human_commit_on_the_head_branch_is_never_pushed_over() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let plan = ws.plan(&spec(env.http_remote("web"), Some("tokens"), true), export).await.unwrap();
        ws.push(plan).await.unwrap();
        let human = repo.commit("courier/tokens", &[("tokens/fix.md", Some(b"hand fix\n"))], "Fix by hand");

        let (_, export) = env.export(&[("a.json", b"2\n")]);
        let plan = ws.plan(&spec(env.http_remote("web"), Some("tokens"), true), export).await.unwrap();
        match plan.outcome() {
            Outcome::BranchDiverged { message } => {
                assert!(message.contains("courier/tokens"), "{message}");
                assert!(message.contains("Fix by hand"), "{message}");
                assert!(message.contains("overwrite_diverged"), "{message}");
            }
            other => panic!("expected BranchDiverged, got {other:?}"),
        }
        let done = ws.push(plan).await.unwrap();
        assert!(!done.pushed);
        assert_eq!(repo.rev_parse("courier/tokens"), Some(human.clone()));

        // The target opts in: the branch is rebuilt as one commit on the base.
        let (_, export) = env.export(&[("a.json", b"2\n")]);
        let mut s = spec(env.http_remote("web"), Some("tokens"), true);
        s.overwrite_diverged = true;
        let plan = ws.plan(&s, export).await.unwrap();
        assert!(
            matches!(plan.outcome(), Outcome::Push { replaces: Some(r), .. } if r.as_str() == human),
            "{:?}",
            plan.outcome()
        );
        ws.push(plan).await.unwrap();
        assert_eq!(repo.parents("courier/tokens"), vec![repo.rev_parse("main").unwrap()]);
        assert_eq!(repo.read_file("courier/tokens", "tokens/a.json"), b"2\n");
    })
    .await;
}

#[tokio::test]
async fn a_human_commit_is_detected_over_file_urls_too() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let plan = ws
            .plan(&spec(env.file_remote(&repo), Some("tokens"), true), export)
            .await
            .unwrap();
        ws.push(plan).await.unwrap();
        repo.commit(
            "courier/tokens",
            &[("tokens/fix.md", Some(b"hand fix\n"))],
            "Fix by hand",
        );
        let (_, export) = env.export(&[("a.json", b"2\n")]);
        let plan = ws
            .plan(&spec(env.file_remote(&repo), Some("tokens"), true), export)
            .await
            .unwrap();
        assert!(
            matches!(plan.outcome(), Outcome::BranchDiverged { .. }),
            "{:?}",
            plan.outcome()
        );
    })
    .await;
}

#[tokio::test]
async fn a_moved_base_rebuilds_the_branch_on_the_new_base() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        let files: &[(&str, &[u8])] = &[("a.json", b"1\n")];
        let (_, export) = env.export(files);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        let first = ws.push(plan).await.unwrap();
        let Outcome::Push {
            commit: first_commit,
            ..
        } = first.outcome
        else {
            unreachable!()
        };

        let new_base = repo.commit(
            "main",
            &[("src/main.rs", Some(b"fn main() {}\n"))],
            "feature",
        );
        let (_, export) = env.export(files);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        assert_eq!(plan.base_commit().as_str(), new_base);
        assert_eq!(plan.head_before().as_ref(), Some(&first_commit));
        let Outcome::Push { commit, replaces } = plan.outcome().clone() else {
            panic!("{:?}", plan.outcome())
        };
        assert_eq!(replaces.as_ref(), Some(&first_commit));
        ws.push(plan).await.unwrap();
        assert_eq!(
            repo.rev_parse("courier/tokens").as_deref(),
            Some(commit.as_str())
        );
        assert_eq!(repo.parents("courier/tokens"), vec![new_base]);
        assert_eq!(
            repo.read_file("courier/tokens", "src/main.rs"),
            b"fn main() {}\n"
        );

        // And once rebuilt, the same export is up to date on the new base.
        let (_, export) = env.export(files);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        assert_eq!(plan.outcome(), &Outcome::UpToDate { commit });
    })
    .await;
}

#[tokio::test]
async fn a_head_branch_changed_after_the_plan_is_not_overwritten() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        ws.push(plan).await.unwrap();

        let (_, export) = env.export(&[("a.json", b"2\n")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        assert!(matches!(
            plan.outcome(),
            Outcome::Push {
                replaces: Some(_),
                ..
            }
        ));
        // Someone pushes between plan and push.
        let human = repo.commit("courier/tokens", &[("tokens/x", Some(b"x\n"))], "sneaky");
        let err = ws.push(plan).await.unwrap_err();
        assert!(
            matches!(err, courier_providers::git::GitError::HeadMoved { .. }),
            "{err:?}"
        );
        assert!(err.is_transient());
        assert_eq!(repo.rev_parse("courier/tokens"), Some(human));
    })
    .await;
}

#[tokio::test]
async fn a_deleted_head_branch_is_created_again() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n")]);
        let ws = env.workspace();
        let files: &[(&str, &[u8])] = &[("a.json", b"1\n")];
        let (_, export) = env.export(files);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        ws.push(plan).await.unwrap();
        courier_testkit::git(
            &repo.path,
            ["update-ref", "-d", "refs/heads/courier/tokens"],
        );

        let (_, export) = env.export(files);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        assert!(
            matches!(plan.outcome(), Outcome::Push { replaces: None, .. }),
            "{:?}",
            plan.outcome()
        );
        ws.push(plan).await.unwrap();
        assert!(repo.rev_parse("courier/tokens").is_some());
    })
    .await;
}

#[tokio::test]
async fn no_changes_says_whose_commits_the_head_branch_holds() {
    bounded(async {
        let env = Env::new();
        let repo = env.repo("web", &[("README.md", b"hi\n"), ("tokens/a.json", b"{}\n")]);
        let ws = env.workspace();
        let (_, export) = env.export(&[("a.json", b"1\n")]);
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        let done = ws.push(plan).await.unwrap();
        let Outcome::Push { commit, .. } = &done.outcome else {
            panic!("{:?}", done.outcome)
        };

        let (_, same_as_base) = env.export(&[("a.json", b"{}\n")]);
        let plan = ws
            .plan(
                &spec(env.http_remote("web"), Some("tokens"), true),
                same_as_base,
            )
            .await
            .unwrap();
        assert_eq!(
            plan.outcome(),
            &Outcome::NoChanges {
                head: HeadBranch::Courier {
                    tip: commit.clone()
                }
            }
        );
        drop(plan);

        let human = repo.commit(
            "courier/tokens",
            &[("tokens/fix.md", Some(b"fix\n"))],
            "Fix by hand",
        );
        let (_, same_as_base) = env.export(&[("a.json", b"{}\n")]);
        let plan = ws
            .plan(
                &spec(env.http_remote("web"), Some("tokens"), true),
                same_as_base,
            )
            .await
            .unwrap();
        match plan.outcome() {
            Outcome::NoChanges {
                head: HeadBranch::Foreign { tip, commits },
            } => {
                assert_eq!(tip.as_str(), human);
                assert_eq!(commits.len(), 1);
                assert_eq!(commits[0].as_str(), human);
            }
            other => panic!("expected NoChanges over foreign commits, got {other:?}"),
        }
    })
    .await;
}
