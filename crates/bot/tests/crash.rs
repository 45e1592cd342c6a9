//! `courier serve` delivering to GitHub over real TCP, and surviving crashes at each step.
//!
//! The binary runs as a child process; the branch goes to a real smart-HTTP git server,
//! the pull request to the stateful GitHub fake (served by the test's own runtime), the
//! artifact comes from a local HTTP server. To crash at an exact step without any hook in
//! Courier itself, the test holds one request where it stands (the artifact download, the
//! push in a `pre-receive` hook, or a GitHub call, before or after the fake applies it),
//! kills the server (`kill -9`, or SIGTERM), starts it again on the same data directory,
//! lets the held request go, and checks that the delivery finished exactly once: one
//! commit on the head branch, one pull request, its URL recorded, the lost lease visible
//! in the attempts.
//!
//! Courier's calls for one delivery, in order: download; fetch; push; then on GitHub
//! `GET /pulls?state=open` (find the open PR by head), `GET /pulls?state=closed` (one it
//! would supersede), `POST /pulls` (create), then the decorations (`POST
//! /issues/{n}/labels`, `POST /pulls/{n}/requested_reviewers`). The first GitHub call
//! comes after the push, so holding it stops Courier between the push and the PR.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::forge::{ADMIN_TOKEN, Forge, HEAD, HOOK_TOKEN, Kind, PushHold, assert_no_secrets};
use common::serve::{http, wait_until};
use courier_testkit::forges::github_fake::{Fault, Hold, HoldMode};
use serde_json::Value;

const REPO: &str = "acme/web";
/// The `Courier-Delivery` trailer of the seed's job (workspace 1, job 6) at that target.
const TRAILER: &str = "Courier-Delivery: 1/6 github:acme/web@main:tokens";
const PULLS: &str = "/repos/{owner}/{repo}/pulls";
/// Bound on waiting for a held request to arrive or settle.
const HOLD_WAIT: Duration = Duration::from_secs(60);

/// The delivery finished `delivered` exactly once: one commit on the base holding the
/// export, one pull request from the head branch, its URL recorded.
fn assert_delivered_once(setup: &Forge, detail: &Value) {
    let delivery = &detail["delivery"];
    assert_eq!(delivery["state"], "delivered", "{detail}");
    assert_eq!(delivery["head_branch"], HEAD, "{detail}");

    let commit = delivery["commit"].as_str().expect("the pushed commit");
    assert_eq!(setup.repo.rev_parse(HEAD).as_deref(), Some(commit));
    assert_eq!(setup.commits_on_head(), "1", "one commit over the base");
    let base = setup.repo.rev_parse("main").unwrap();
    assert_eq!(setup.repo.parents(HEAD), vec![base]);
    assert_eq!(
        setup.repo.read_file(HEAD, "tokens/colors.css"),
        b":root { --primary: #1463ff; }\n"
    );
    assert_eq!(
        setup.repo.read_file(HEAD, "tokens/nested/typography.css"),
        b":root { --body: 16px; }\n"
    );
    assert_eq!(setup.repo.read_file(HEAD, "README.md"), b"# web\n");
    let message = setup.head_message();
    assert!(message.trim_end().ends_with(TRAILER), "{message}");

    let prs: Vec<_> = setup
        .github()
        .prs(REPO)
        .into_iter()
        .filter(|p| p.head == HEAD)
        .collect();
    assert_eq!(prs.len(), 1, "exactly one pull request: {prs:#?}");
    let pr = &prs[0];
    assert_eq!((pr.base.as_str(), pr.state.as_str()), ("main", "open"));
    assert_eq!(pr.title, "Tokens v0.1: 2 files");
    assert!(
        pr.body
            .ends_with("<!-- courier: hook=5 target=github:acme/web@main:tokens -->"),
        "{}",
        pr.body
    );
    let url = format!("/{REPO}/pull/{}", pr.number);
    assert!(
        delivery["pr_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&url)),
        "the PR URL is recorded: {detail}"
    );
}

#[test]
fn a_webhook_over_tcp_opens_one_pull_request_on_github() {
    let setup = Forge::start(Kind::GitHub);
    let server = setup.serve_as("serve.log");
    wait_until("readiness", || {
        server.request("GET", "/readyz", "", "").0 == 200
    });

    let id = server.post_event(HOOK_TOKEN, &setup.payload());
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_delivered_once(&setup, &detail);
    assert_eq!(detail["delivery"]["files"]["added"], 1, "{detail}");
    assert_eq!(detail["delivery"]["files"]["modified"], 1, "{detail}");
    assert_eq!(setup.artifacts.hits(), 1);
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{detail}");
    assert_eq!(attempts[0]["outcome"], "delivered", "{detail}");
    // Where the time went: each phase, and the whole attempt, which holds them all.
    let timings = &detail["delivery"]["timings"];
    let phase = |name: &str| {
        timings[name]
            .as_u64()
            .unwrap_or_else(|| panic!("phase {name} in {detail}"))
    };
    let phases: u64 = ["download", "validate", "plan", "push", "pull_request"]
        .into_iter()
        .map(phase)
        .sum();
    assert!(phases <= phase("total"), "{timings}");
    // Building is part of planning; the fetch ran alongside the download and the
    // validation, and ended before the plan did.
    assert!(phase("build") <= phase("plan"), "{timings}");
    assert!(
        phase("fetch") <= phase("download") + phase("validate") + phase("plan"),
        "{timings}"
    );

    // The PR was opened and decorated, in that order, after the push.
    let pr = &setup.github().prs(REPO)[0];
    assert_eq!(pr.labels, vec!["design-tokens".to_owned()]);
    assert_eq!(pr.reviewers, vec!["octocat".to_owned()]);
    let calls = setup.github().request_lines();
    let n = pr.number;
    assert_eq!(
        calls,
        vec![
            "GET /repos/acme/web/pulls".to_owned(),
            "GET /repos/acme/web/pulls".to_owned(),
            "POST /repos/acme/web/pulls".to_owned(),
            format!("POST /repos/acme/web/issues/{n}/labels"),
            format!("POST /repos/acme/web/pulls/{n}/requested_reviewers"),
        ],
    );
    let states: Vec<String> = setup.github().requests()[..2]
        .iter()
        .map(|r| {
            r.query
                .iter()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        states,
        ["open", "closed"],
        "open PR first, then a closed one"
    );

    // The listing carries the PR URL too.
    let listed = server.deliveries(ADMIN_TOKEN);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "delivered");
    assert_eq!(listed[0]["pr_url"], detail["delivery"]["pr_url"]);

    let (status, metrics) = http(server.addr, "GET", "/metrics", "", "");
    assert_eq!(status, 200);
    for line in [
        "courier_webhooks_total{result=\"accepted\"} 1",
        "courier_deliveries_total{outcome=\"delivered\",provider=\"github\"} 1",
        "courier_delivery_attempts_total 1",
        "courier_delivery_phase_seconds_count{phase=\"fetch\"} 1",
        "courier_delivery_phase_seconds_count{phase=\"build\"} 1",
        "courier_delivery_phase_seconds_count{phase=\"push\"} 1",
        "courier_delivery_phase_seconds_count{phase=\"pull_request\"} 1",
        "courier_queue_depth 0",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    setup.github().assert_contract();
    assert_no_secrets(&server);
}

/// Where the first server is stopped.
enum Step {
    /// While downloading the artifact.
    Download,
    /// While the git server runs its `pre-receive` hook; `lands`: the push completes
    /// after Courier is gone (else it is let go only once the restart has delivered).
    Push { lands: bool },
    /// While GitHub holds this call.
    Api {
        method: &'static str,
        template: &'static str,
        mode: HoldMode,
    },
}

impl Step {
    /// Whether the held request is let go between the stop and the restart (else only
    /// after the restart has delivered). A download must go on, or the restart could not
    /// download either.
    fn goes_on_before_restart(&self) -> bool {
        match self {
            Step::Download => true,
            Step::Push { lands } => *lands,
            Step::Api { .. } => false,
        }
    }

    /// Whether the branch holds the stopped run's commit by the time the server restarts.
    fn leaves_a_push(&self) -> bool {
        match self {
            Step::Download => false,
            Step::Push { lands } => *lands,
            // Every GitHub call comes after the push.
            Step::Api { .. } => true,
        }
    }
}

/// How the first server is stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Kill,
    Terminate,
}

/// The test's grip on the held request.
enum Held {
    Download,
    Push(PushHold),
    Api(Hold),
}

impl Held {
    fn arm(setup: &Forge, step: &Step) -> Held {
        match step {
            Step::Download => {
                setup.artifacts.stall.store(true, Ordering::SeqCst);
                Held::Download
            }
            Step::Push { .. } => Held::Push(setup.hold_first_push()),
            Step::Api {
                method,
                template,
                mode,
            } => Held::Api(setup.github().hold(method, template, *mode)),
        }
    }

    fn wait_arrived(&self, setup: &Forge) {
        match self {
            Held::Download => wait_until("the download to start", || setup.artifacts.hits() >= 1),
            Held::Push(push) => push.wait_arrived(),
            Held::Api(hold) => assert!(hold.wait_arrived(HOLD_WAIT), "the held call arrived"),
        }
    }

    /// Lets the held request go, and waits until it is over.
    fn release(&self, setup: &Forge) {
        match self {
            Held::Download => setup.artifacts.stall.store(false, Ordering::SeqCst),
            Held::Push(push) => push.release(),
            Held::Api(hold) => {
                hold.release();
                assert!(hold.wait_settled(HOLD_WAIT), "the held call settled");
            }
        }
    }
}

/// Delivers the seed, stops the server at `step`, starts it again on the same data
/// directory and checks the delivery finished exactly once.
fn crash_and_recover(step: Step, stop: Stop) -> (Forge, Value) {
    crash_and_recover_on(step, stop, None)
}

/// [`crash_and_recover`] with the store at `store` (a PostgreSQL URL), or SQLite.
fn crash_and_recover_on(step: Step, stop: Stop, store: Option<String>) -> (Forge, Value) {
    let setup = Forge::on_store(Kind::GitHub, store);
    let held = Held::arm(&setup, &step);
    let first = setup.serve_as("first.log");
    let id = first.post_event(HOOK_TOKEN, &setup.payload());
    held.wait_arrived(&setup);
    let running = first.deliveries(ADMIN_TOKEN);
    assert_eq!(running[0]["state"], "running", "{running:?}");
    assert_no_secrets(&first);
    match stop {
        Stop::Kill => first.kill_hard(),
        Stop::Terminate => first.terminate_cleanly("github"),
    }

    let before_restart = step.goes_on_before_restart();
    if before_restart {
        held.release(&setup);
    }
    if let Step::Push { lands: true } = step {
        // The git server completed the push for a client that is gone: the branch holds
        // Courier's commit, which nobody recorded.
        wait_until("the abandoned push to land", || {
            setup.repo.rev_parse(HEAD).is_some()
        });
        assert!(setup.head_message().contains(TRAILER));
    }
    // What the stopped run left on the branch; the restart must build on it, not
    // replace it with a commit of its own.
    let left_behind = setup.repo.rev_parse(HEAD);
    assert_eq!(
        left_behind.is_some(),
        step.leaves_a_push(),
        "{left_behind:?}"
    );

    let second = setup.serve_as("second.log");
    let detail = second.wait_finished(ADMIN_TOKEN, &id);
    if !before_restart {
        // The held request goes on only now, after the restart has delivered: a late
        // create or push must not add a second pull request or commit.
        held.release(&setup);
    }
    assert_delivered_once(&setup, &detail);
    if let Some(commit) = left_behind {
        assert_eq!(detail["delivery"]["commit"], commit.as_str(), "{detail}");
    }

    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{detail}");
    assert_eq!(attempts[0]["outcome"], "lease_expired", "{detail}");
    assert_eq!(attempts[1]["outcome"], "delivered", "{detail}");
    let listed = second.deliveries(ADMIN_TOKEN);
    assert_eq!(listed[0]["pr_url"], detail["delivery"]["pr_url"]);
    let (_, metrics) = http(second.addr, "GET", "/metrics", "", "");
    let line = "courier_deliveries_total{outcome=\"delivered\",provider=\"github\"} 1";
    assert!(metrics.contains(line), "{line} in:\n{metrics}");
    assert_no_secrets(&second);
    setup.github().assert_contract();
    drop(second);
    (setup, detail)
}

/// The same recovery with the store on PostgreSQL, as replicas run it.
fn on_postgres(step: Step) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(common::postgres_database_url()) else {
        return;
    };
    crash_and_recover_on(step, Stop::Kill, Some(database));
}

#[test]
fn on_postgres_killed_while_downloading() {
    on_postgres(Step::Download);
}

#[test]
fn on_postgres_killed_while_pushing_the_push_landing_unanswered() {
    on_postgres(Step::Push { lands: true });
}

#[test]
fn on_postgres_killed_after_github_created_the_pull_request_but_before_answering() {
    on_postgres(Step::Api {
        method: "POST",
        template: PULLS,
        mode: HoldMode::AfterApply,
    });
}

#[test]
fn killed_while_downloading() {
    crash_and_recover(Step::Download, Stop::Kill);
}

#[test]
fn killed_while_pushing_before_the_push_lands() {
    crash_and_recover(Step::Push { lands: false }, Stop::Kill);
}

#[test]
fn killed_while_pushing_the_push_landing_unanswered() {
    crash_and_recover(Step::Push { lands: true }, Stop::Kill);
}

#[test]
fn killed_after_the_push_before_the_pull_request_lookup_answers() {
    let (setup, _) = crash_and_recover(
        Step::Api {
            method: "GET",
            template: PULLS,
            mode: HoldMode::BeforeApply,
        },
        Stop::Kill,
    );
    // The restart opened the pull request itself, decorations included.
    let pr = &setup.github().prs(REPO)[0];
    assert_eq!(pr.labels, vec!["design-tokens".to_owned()]);
}

#[test]
fn killed_while_creating_the_pull_request_before_github_applies_it() {
    crash_and_recover(
        Step::Api {
            method: "POST",
            template: PULLS,
            mode: HoldMode::BeforeApply,
        },
        Stop::Kill,
    );
}

#[test]
fn killed_after_github_created_the_pull_request_but_before_answering() {
    crash_and_recover(
        Step::Api {
            method: "POST",
            template: PULLS,
            mode: HoldMode::AfterApply,
        },
        Stop::Kill,
    );
}

/// The pull request a crashed run created is found open by the restart, which updates
/// it but, as for any open PR, does not decorate it again (that would undo people's
/// changes to labels and reviewers); so the crashed run's missing decorations stay
/// missing. Telling "created by this delivery's own crashed run" from "opened by an
/// earlier job" needs the PR to name the delivery that created it.
#[test]
fn killed_after_github_created_the_pull_request_it_is_still_decorated() {
    let (setup, _) = crash_and_recover(
        Step::Api {
            method: "POST",
            template: PULLS,
            mode: HoldMode::AfterApply,
        },
        Stop::Kill,
    );
    let pr = &setup.github().prs(REPO)[0];
    assert_eq!(pr.labels, vec!["design-tokens".to_owned()]);
    assert_eq!(pr.reviewers, vec!["octocat".to_owned()]);
}

#[test]
fn killed_while_labelling_the_new_pull_request() {
    crash_and_recover(
        Step::Api {
            method: "POST",
            template: "/repos/{owner}/{repo}/issues/{issue_number}/labels",
            mode: HoldMode::AfterApply,
        },
        Stop::Kill,
    );
}

#[test]
fn sigterm_while_creating_the_pull_request() {
    crash_and_recover(
        Step::Api {
            method: "POST",
            template: PULLS,
            mode: HoldMode::BeforeApply,
        },
        Stop::Terminate,
    );
}

/// Not a crash but the same recovery: the pull request step keeps failing after the push
/// (GitHub answers 502 to every try of the run), the delivery is retried later, finds its
/// own commit on the branch, opens the PR and is recorded `delivered` with that commit.
#[test]
fn a_pull_request_step_failing_after_the_push_is_retried_and_delivered() {
    let setup = Forge::start(Kind::GitHub);
    // The pipeline tries a provider call 5 times before the attempt gives up.
    for _ in 0..5 {
        setup
            .github()
            .enqueue_fault("POST", PULLS, Fault::status(502, "Server Error"));
    }
    let server = setup.serve_as("serve.log");
    let id = server.post_event(HOOK_TOKEN, &setup.payload());
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_delivered_once(&setup, &detail);
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{detail}");
    assert_eq!(attempts[0]["outcome"], "retry", "{detail}");
    assert!(
        attempts[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("pull request step failed")),
        "{detail}"
    );
    assert_eq!(attempts[1]["outcome"], "delivered", "{detail}");
    let creates = setup
        .github()
        .request_lines()
        .iter()
        .filter(|l| *l == "POST /repos/acme/web/pulls")
        .count();
    assert_eq!(creates, 6, "five refused, one accepted");
    setup.github().assert_contract();
    assert_no_secrets(&server);
}
