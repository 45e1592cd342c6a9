//! The same scenarios through `courier serve` on each forge: GitHub, GitLab and Azure
//! DevOps, each a stateful fake driven by the real SDK client inside the real binary, with
//! the branch on a real smart-HTTP git server. A scenario is written once, over [`Forge`];
//! every request each fake received is checked against the forge's official description.

mod common;

use std::sync::atomic::Ordering;

use common::forge::{ADMIN_TOKEN, Forge, HEAD, HOOK_TOKEN, Kind, PushHold, Step, TOKEN};
use common::proxy::{PROXY_PASSWORD, PROXY_USER, Squid};
use common::serve::{Server, wait_until};
use courier_testkit::forges::fault::Fault;
use courier_testkit::forges::hold::HoldMode;

/// Bound on waiting for a held request to arrive or settle.
const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Open (labelled, with its reviewer), then update for a newer export, then close when an
/// export equals the base.
fn opens_updates_and_closes(kind: Kind) {
    let forge = Forge::start(kind);
    // Creating the pull request fails once and is retried in place.
    forge.fault_next(Step::Create, Fault::status(502, "Server Error"));
    let server = forge.serve();

    let detail = forge.deliver_job(&server, "6", "delivered");
    // Each forge call is timed, by name, its retry part of it.
    let calls = &detail["forge_calls"];
    let create = calls
        .as_array()
        .and_then(|calls| calls.iter().find(|c| c["call"] == "create pull request"))
        .unwrap_or_else(|| panic!("{kind:?}: creating is timed: {detail}"));
    let counts = [&create["count"], &create["retries"], &create["failed"]];
    assert_eq!(counts, [1, 1, 0], "{kind:?}: {detail}");
    assert!(create["ms"].is_u64(), "{kind:?}: {detail}");
    let names: Vec<_> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "push credentials",
            "find open pull request",
            "find closed pull request",
            "create pull request",
            "decorate pull request"
        ],
        "{kind:?}: in the order called: {detail}"
    );
    let prs = forge.prs();
    assert_eq!(prs.len(), 1, "{kind:?}: {prs:?}");
    assert!(
        prs[0].open && prs[0].title == "Tokens v0.1: 2 files",
        "{kind:?}: {prs:?}"
    );
    let number = prs[0].number;
    assert_eq!(
        prs[0].labels,
        ["design-tokens"],
        "{kind:?}: decorated: {prs:?}"
    );
    assert_eq!(
        prs[0].reviewers,
        std::slice::from_ref(&forge.reviewer),
        "{kind:?}: {prs:?}"
    );
    assert_eq!(
        detail["delivery"]["warnings"],
        serde_json::json!([]),
        "{kind:?}: {detail}"
    );
    assert!(
        detail["delivery"]["pr_url"].as_str().is_some(),
        "{kind:?}: the PR's page is recorded: {detail}"
    );

    forge.serve_export(&[
        ("colors.css", b":root { --primary: #0550ae; }\n"),
        ("nested/typography.css", b":root { --body: 16px; }\n"),
    ]);
    forge.deliver_job(&server, "7", "delivered");
    let prs = forge.prs();
    assert_eq!(prs.len(), 1, "{kind:?}: updated, not a second one: {prs:?}");
    assert_eq!(
        forge.repo.read_file(HEAD, "tokens/colors.css"),
        b":root { --primary: #0550ae; }\n"
    );

    forge.serve_export(&[("colors.css", b"old\n")]);
    forge.sync_head();
    forge.deliver_job(&server, "8", "no_changes");
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].number == number && !prs[0].open,
        "{kind:?}: closed: {prs:?}"
    );
    assert!(
        !forge.has_head_branch(),
        "{kind:?}: the head branch is deleted"
    );

    let (_, metrics) = common::serve::http(server.addr, "GET", "/metrics", "", "");
    let line = format!(
        "courier_deliveries_total{{outcome=\"delivered\",provider=\"{}\"}} 2",
        forge.provider()
    );
    assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    let line = format!(
        "courier_forge_call_seconds_count{{provider=\"{}\",call=\"create pull request\"}} 1",
        forge.provider()
    );
    assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    assert!(!server.log().contains(TOKEN), "{kind:?}: the token leaked");
    forge.assert_contract();
}

/// A person's commit on the bot's branch survives an export that equals the base: the
/// pull request stays open with one comment saying why, however often it happens.
fn a_persons_commit_is_never_destroyed(kind: Kind) {
    let forge = Forge::start(kind);
    let server = forge.serve();
    forge.deliver_job(&server, "6", "delivered");
    let fixup = forge.repo.commit(
        HEAD,
        &[(
            "tokens/colors.css",
            Some(b":root { --primary: #1463ff; } /* reviewed */\n"),
        )],
        "A reviewer's fix-up",
    );

    forge.sync_head();
    forge.serve_export(&[("colors.css", b"old\n")]);
    for job in ["7", "8"] {
        let detail = forge.deliver_job(&server, job, "no_changes");
        assert!(
            detail["delivery"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("did not make")),
            "{kind:?}: the delivery says why: {detail}"
        );
    }
    assert_eq!(
        forge.repo.rev_parse(HEAD),
        Some(fixup),
        "{kind:?}: the commit stays"
    );
    assert!(forge.has_head_branch(), "{kind:?}: the branch stays");
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].open,
        "{kind:?}: left open: {prs:?}"
    );
    let why: Vec<&String> = prs[0]
        .comments
        .iter()
        .filter(|c| c.contains("courier:converged-left-open"))
        .collect();
    assert_eq!(why.len(), 1, "{kind:?}: one comment: {:?}", prs[0].comments);
    forge.assert_contract();
}

/// The forge answers the pull request's creation with a rate limit longer than a worker
/// waits in place: the delivery goes back to the queue for the time asked (visible in the
/// API), without counting as a failed attempt, and completes once that time has passed.
fn a_rate_limit_is_waited_out(kind: Kind) {
    let forge = Forge::start(kind);
    forge.rate_limit_next_create(12);
    let server = forge.serve();
    let id = server.post_event(HOOK_TOKEN, &forge.job("6"));
    let detail = || {
        server
            .request("GET", &format!("/api/deliveries/{id}"), ADMIN_TOKEN, "")
            .1
    };
    wait_until("the delivery to wait out the limit", || {
        detail()["delivery"]["state"] == "retrying"
    });
    let waiting = detail();
    assert!(
        waiting["delivery"]["next_attempt_at"].is_string(),
        "{kind:?}: {waiting}"
    );
    assert!(
        waiting["delivery"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("rate limited; retry after 12s")),
        "{kind:?}: {waiting}"
    );
    assert_eq!(
        waiting["attempts"][0]["outcome"], "rate_limited",
        "{kind:?}: {waiting}"
    );
    assert!(
        forge.prs().is_empty(),
        "{kind:?}: not before the time asked"
    );

    let done = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(done["delivery"]["state"], "delivered", "{kind:?}: {done}");
    let outcomes = Server::attempt_outcomes(&done);
    assert_eq!(outcomes, ["rate_limited", "delivered"], "{kind:?}: {done}");
    assert_eq!(forge.prs().len(), 1, "{kind:?}");
    assert_eq!(
        forge.repo.rev_parse(HEAD),
        done["delivery"]["commit"].as_str().map(str::to_owned)
    );
    let (_, metrics) = common::serve::http(server.addr, "GET", "/metrics", "", "");
    let line = format!(
        "courier_rate_limit_waits_total{{provider=\"{}\"}} 1",
        forge.provider()
    );
    assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    forge.assert_contract();
}

/// Where the first server is killed.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// While downloading the artifact.
    Download,
    /// While the git server runs its `pre-receive` hook; `lands`: the push completes after
    /// Courier is gone (else it is let go only once the restart has delivered).
    Push { lands: bool },
    /// While the forge holds one call of the pull-request step, before or after applying
    /// it.
    Forge(Step, HoldMode),
}

/// Killed (SIGKILL) mid-delivery and started again on the same data: the delivery ends
/// exactly once, with one commit over the base and one pull request.
fn survives_a_kill(kind: Kind, at: KillAt) {
    survives_a_stop(Forge::start(kind), at, Stop::Kill);
}

/// [`survives_a_kill`] with the store on PostgreSQL, as replicas run it.
fn survives_a_kill_on_postgres(kind: Kind, at: KillAt) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(common::postgres_database_url()) else {
        return;
    };
    survives_a_stop(Forge::on_store(kind, Some(database)), at, Stop::Kill);
}

/// How the first server is stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGKILL: nothing is cleaned up.
    Kill,
    /// SIGTERM: the server stops taking work and exits 0 after its grace period, leaving
    /// the delivery it could not finish to the next server.
    Terminate,
}

fn survives_a_stop(forge: Forge, at: KillAt, stop: Stop) {
    let kind = forge.kind;
    let (push, create) = match at {
        KillAt::Download => {
            forge.artifacts.stall.store(true, Ordering::SeqCst);
            (None, None)
        }
        KillAt::Push { .. } => {
            let control = forge.dir.path().join("push-hold");
            (Some(PushHold::arm(&forge.repo, &control)), None)
        }
        KillAt::Forge(step, mode) => (None, Some(forge.hold(step, mode))),
    };
    let first = forge.serve_as("first.log");
    let id = first.post_event(HOOK_TOKEN, &forge.job("6"));
    match (&push, &create) {
        (Some(push), _) => push.wait_arrived(),
        (_, Some(held)) => assert!(held.wait_arrived(WAIT), "{kind:?}: the {at:?} call arrived"),
        _ => wait_until("the download to start", || forge.artifacts.hits() >= 1),
    }
    match stop {
        Stop::Kill => first.kill_hard(),
        Stop::Terminate => first.terminate_cleanly(&format!("{kind:?}")),
    }
    match (at, &push) {
        (KillAt::Download, _) => forge.artifacts.stall.store(false, Ordering::SeqCst),
        (KillAt::Push { lands: true }, Some(push)) => {
            push.release();
            // The git server updates the ref once the hook is over.
            wait_until("the abandoned push to land", || {
                forge.repo.rev_parse(HEAD).is_some()
            });
        }
        _ => {}
    }
    let left_behind = forge.repo.rev_parse(HEAD);

    let second = forge.serve_as("second.log");
    let detail = second.wait_finished(ADMIN_TOKEN, &id);
    if let (KillAt::Push { lands: false }, Some(push)) = (at, &push) {
        // The killed run's push goes on only now: it must not land over the delivery.
        push.release();
    }
    if let Some(held) = &create {
        // Likewise its forge call: applied late (or already), it must not make a second
        // pull request or undo the restart's work.
        held.release();
        assert!(
            held.wait_settled(WAIT),
            "{kind:?}: the held {at:?} call settled"
        );
    }
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    let commit = detail["delivery"]["commit"].as_str().unwrap();
    assert_eq!(
        forge.repo.rev_parse(HEAD).as_deref(),
        Some(commit),
        "{kind:?}"
    );
    if let Some(left) = left_behind {
        assert_eq!(
            commit, left,
            "{kind:?}: the restart built on the landed push"
        );
    }
    let count = courier_testkit::git(
        forge.repo.path.as_path(),
        ["rev-list", "--count", &format!("main..{HEAD}")],
    );
    assert_eq!(count.trim(), "1", "{kind:?}: one commit over the base");
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].open,
        "{kind:?}: one pull request: {prs:?}"
    );
    // Decorations are finished by the restart, whichever step the kill interrupted.
    assert_eq!(
        prs[0].labels,
        ["design-tokens"],
        "{kind:?}: decorated after the restart: {prs:?}"
    );
    let outcomes = Server::attempt_outcomes(&detail);
    assert_eq!(
        outcomes,
        ["lease_expired", "delivered"],
        "{kind:?}: {detail}"
    );
    forge.assert_contract();
}

/// Killed after the failure comment was made and before it was recorded: the restart
/// finds the comment and writes none of its own.
fn failure_comment_survives_a_kill(kind: Kind) {
    failure_comment_survives_a_kill_on(Forge::start(kind));
}

/// The same with the store on PostgreSQL.
fn failure_comment_survives_a_kill_on_postgres(kind: Kind) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(common::postgres_database_url()) else {
        return;
    };
    failure_comment_survives_a_kill_on(Forge::on_store(kind, Some(database)));
}

fn failure_comment_survives_a_kill_on(forge: Forge) {
    let kind = forge.kind;
    let number = forge.seed_open_pr();
    let held = forge.hold_comment(HoldMode::AfterApply);
    let first = forge.serve_as("first.log");
    let failed = forge
        .job("6")
        .replace("\"status\": \"Success\"", "\"status\": \"Failure\"");
    let id = first.post_event(HOOK_TOKEN, &failed);
    assert!(held.wait_arrived(WAIT), "{kind:?}: the comment was posted");
    first.kill_hard();

    let second = forge.serve_as("second.log");
    let detail = second.wait_finished(ADMIN_TOKEN, &id);
    held.release();
    assert!(held.wait_settled(WAIT));
    assert_eq!(
        detail["delivery"]["state"], "commented",
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    let pr = prs.iter().find(|p| p.number == number).unwrap();
    let told = pr
        .comments
        .iter()
        .filter(|c| c.contains("The export for job `6` failed"))
        .count();
    assert_eq!(told, 1, "{kind:?}: {:?}", pr.comments);
    forge.assert_contract();
}

/// A failed job is told once on the open pull request, also when posted twice.
fn a_failed_job_is_told_once(kind: Kind) {
    let forge = Forge::start(kind);
    let number = forge.seed_open_pr();
    let server = forge.serve();
    let failed = forge
        .job("6")
        .replace("\"status\": \"Success\"", "\"status\": \"Failure\"");
    let id = server.post_event(HOOK_TOKEN, &failed);
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "commented",
        "{kind:?}: {detail}"
    );
    let (status, answer) = server.request("POST", "/webhooks/supernova", HOOK_TOKEN, &failed);
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate"))
    );

    let prs = forge.prs();
    let pr = prs.iter().find(|p| p.number == number).unwrap();
    let told: Vec<&String> = pr
        .comments
        .iter()
        .filter(|c| c.contains("The export for job `6` failed"))
        .collect();
    assert_eq!(told.len(), 1, "{kind:?}: {:?}", pr.comments);
    assert!(pr.open, "{kind:?}: left open");
    assert_eq!(forge.artifacts.hits(), 0, "{kind:?}: nothing downloaded");
    forge.assert_contract();
}

/// Another delivery opens the pull request between Courier's lookup and its create: the
/// forge answers "already exists", and Courier finds that one and updates it.
fn a_creation_race_ends_with_one_pull_request(kind: Kind) {
    let forge = Forge::start(kind);
    let create = forge.hold_create(HoldMode::BeforeApply);
    let server = forge.serve();
    let id = server.post_event(HOOK_TOKEN, &forge.job("6"));
    assert!(create.wait_arrived(WAIT), "{kind:?}: the create arrived");
    let theirs = forge.seed_open_pr();
    create.release();
    assert!(create.wait_settled(WAIT));
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].number == theirs && prs[0].open,
        "{kind:?}: the one that won the race: {prs:?}"
    );
    assert_eq!(
        prs[0].title, "Tokens v0.1: 2 files",
        "{kind:?}: updated to this export"
    );
    forge.assert_contract();
}

fn terminated_while_creating_the_pull_request(kind: Kind) {
    survives_a_stop(
        Forge::start(kind),
        KillAt::Forge(Step::Create, HoldMode::BeforeApply),
        Stop::Terminate,
    );
}

/// The description says what changed in the tokens against the base: a changed value,
/// a rename, an addition, in a table per file and theme; on Azure the whole description
/// stays within its 4,000 characters, cut at a row with "and N more". The deliveries API
/// has the same diff.
fn the_description_shows_token_changes(kind: Kind) {
    let forge = Forge::start(kind);
    let grays = |value: &str| {
        (0..200)
            .map(|i| format!("  --gray-{i:03}: {value};\n"))
            .collect::<String>()
    };
    let base = format!(
        ":root {{\n  --primary: #1463ff;\n  --radius-pill: 999px;\n{}}}\n[data-theme=\"dark\"] {{ --primary: #000000; }}\n",
        grays("#0969da")
    );
    forge.repo.commit(
        "main",
        &[("tokens/colors.css", Some(base.as_bytes()))],
        "Tokens as a person wrote them",
    );
    let export = format!(
        ":root {{\n  --primary: #0550ae;\n  --radius-full: 999px;\n{}}}\n[data-theme=\"dark\"] {{ --primary: #000000; }}\n",
        grays("#0550ae")
    );
    forge.serve_export(&[
        ("colors.css", export.as_bytes()),
        ("nested/typography.css", b":root { --body: 16px; }\n"),
        // Hostile and broken files: named in a note, never a failed delivery.
        ("broken.json", b"{ \"color\": { \"$value\": \"#fff\" "),
        (
            "z.css",
            b":root { --evil: <script>alert(1)</script>|`x`; }\n",
        ),
    ]);
    let server = forge.serve();
    let detail = forge.deliver_job(&server, "6", "delivered");
    let prs = forge.prs();
    assert_eq!(prs.len(), 1, "{kind:?}: {prs:?}");
    let body = &prs[0].body;
    assert!(
        body.contains("201 tokens changed, 2 added, 1 renamed in 3 files."),
        "{kind:?}: {body}"
    );
    assert!(
        body.contains("#### `tokens/colors.css` · `:root`"),
        "{kind:?}: {body}"
    );
    assert!(
        body.contains("| `gray-000` | changed | `#0969da` | `#0550ae` |"),
        "{kind:?}: {body}"
    );
    assert!(
        body.contains("- Could not read tokens in `tokens/broken.json`: "),
        "{kind:?}: {body}"
    );
    match kind {
        Kind::Azure => {
            assert!(
                body.chars().count() <= 4000,
                "{kind:?}: {}",
                body.chars().count()
            );
            assert!(
                body.contains("more token changes not shown here._"),
                "{kind:?}: {body}"
            );
            assert!(
                body.ends_with("-->"),
                "{kind:?}: the marker survives: {body}"
            );
        }
        Kind::Git | Kind::GitHub | Kind::GitLab => {
            for row in [
                "| `primary` | changed | `#1463ff` | `#0550ae` |",
                "| `radius-full` | renamed from `radius-pill` | `999px` | `999px` |",
                "| `body` | added |  | `16px` |",
            ] {
                assert!(body.contains(row), "{kind:?}: {row} in {body}");
            }
            assert!(!body.contains("not shown here"), "{kind:?}: {body}");
            assert!(
                body.contains("| `evil` | added |  | `` <script>alert(1)</script>\\|`x` `` |"),
                "{kind:?}: values stay inside their code span: {body}"
            );
            assert!(
                !body.contains("data-theme"),
                "{kind:?}: unchanged theme listed: {body}"
            );
        }
    }
    let tokens = &detail["tokens"];
    assert_eq!(
        (
            &tokens["changed"],
            &tokens["added"],
            &tokens["renamed"],
            &tokens["files"]
        ),
        (
            &serde_json::json!(201),
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(3)
        ),
        "{kind:?}: {detail}"
    );
    assert_eq!(
        tokens["unreadable"][0]["path"], "tokens/broken.json",
        "{kind:?}: {detail}"
    );
    assert!(
        detail["delivery"]["timings"]["tokens"].is_u64(),
        "{kind:?}: the comparison is timed: {detail}"
    );
    forge.assert_contract();
}

/// A target with `auto_merge` asks the forge to merge the new pull request once its
/// checks pass (GitHub's auto-merge, GitLab's merge when the pipeline succeeds, Azure's
/// auto-complete), and records no warning where the repository allows it.
fn auto_merge_is_requested(kind: Kind) {
    let forge = Forge::with_target(kind, "        auto_merge: true\n");
    if kind == Kind::GitHub {
        forge.github().set_auto_merge_allowed(forge.slug(), true);
    }
    let server = forge.serve();
    let detail = forge.deliver_job(&server, "6", "delivered");
    assert_eq!(
        detail["delivery"]["warnings"],
        serde_json::json!([]),
        "{kind:?}: {detail}"
    );
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].auto_merge,
        "{kind:?}: auto-merge requested: {prs:?}"
    );
    forge.assert_contract();
}

/// A target that names no `branch` delivers onto the repository's default branch (here
/// `trunk`) and opens its pull request against it; a failed job is told there.
fn the_default_branch_is_the_base(kind: Kind) {
    let forge = Forge::with_default_branch(kind, "trunk");
    let server = forge.serve();
    forge.deliver_job(&server, "6", "delivered");
    let prs = forge.prs();
    assert!(
        prs.len() == 1 && prs[0].base == "trunk",
        "{kind:?}: {prs:?}"
    );
    let parent = courier_testkit::git(
        forge.repo.path.as_path(),
        ["rev-parse", &format!("{HEAD}^")],
    );
    assert_eq!(
        Some(parent.trim()),
        forge.repo.rev_parse("trunk").as_deref()
    );

    // A failed job finds that pull request against the same default branch.
    let failed = forge
        .job("7")
        .replace("\"status\": \"Success\"", "\"status\": \"Failure\"");
    let id = server.post_event(HOOK_TOKEN, &failed);
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "commented",
        "{kind:?}: {detail}"
    );
    forge.assert_contract();
}

/// The pull-request step keeps failing after the push (the forge answers 502 to every
/// try of the run): the delivery is retried later, finds its own commit on the branch,
/// opens the pull request and is recorded `delivered`, with one commit and one PR.
fn a_failing_pull_request_step_is_retried(kind: Kind) {
    let forge = Forge::start(kind);
    // A run tries a forge call 5 times before the attempt gives up.
    for _ in 0..5 {
        forge.fault_next(Step::Create, Fault::status(502, "Server Error"));
    }
    let server = forge.serve();
    let detail = forge.deliver_job(&server, "6", "delivered");
    assert_eq!(
        Server::attempt_outcomes(&detail),
        ["retry", "delivered"],
        "{kind:?}: {detail}"
    );
    assert!(
        detail["attempts"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("pull request step failed")),
        "{kind:?}: {detail}"
    );
    let count = courier_testkit::git(
        forge.repo.path.as_path(),
        ["rev-list", "--count", &format!("main..{HEAD}")],
    );
    assert_eq!(count.trim(), "1", "{kind:?}: one commit over the base");
    let prs = forge.prs();
    assert!(prs.len() == 1 && prs[0].open, "{kind:?}: {prs:?}");
    forge.assert_contract();
}

/// A forge and git server inside a company's network, with certificates from the company's
/// own certificate authority: with `tls.ca_file` the delivery succeeds, every call over
/// HTTPS; without it, it fails saying the certificate is not trusted. The CA adds to the
/// system's roots: nothing turns verification off. Last, the CA in the system's store
/// (`SSL_CERT_FILE`) and no `tls.ca_file`: the system's roots alone carry git and the API.
fn a_private_certificate_authority_is_trusted(kind: Kind) {
    let forge = Forge::builder(kind).behind_tls().start();
    let with_ca = std::fs::read_to_string(&forge.config).unwrap();
    let tls_line = with_ca
        .lines()
        .find(|l| l.trim_start().starts_with("tls: { ca_file:"))
        .expect("the connection trusts the test CA")
        .to_owned();
    std::fs::write(&forge.config, with_ca.replace(&format!("{tls_line}\n"), "")).unwrap();
    let server = forge.serve_as("without-ca.log");
    let detail = forge.deliver_job(&server, "6", "failed");
    let error = detail["delivery"]["last_error"].as_str().unwrap();
    assert!(error.contains("certificate"), "{kind:?}: {error}");
    // A failed run says where its time went too: up to the fetch that failed.
    let timings = &detail["delivery"]["timings"];
    assert!(
        timings["plan"].is_u64() && timings["total"].is_u64() && timings["push"].is_null(),
        "{kind:?}: {detail}"
    );
    assert_eq!(
        detail["forge_calls"][0]["call"], "push credentials",
        "{kind:?}: {detail}"
    );
    drop(server);

    std::fs::write(&forge.config, &with_ca).unwrap();
    let server = forge.serve_as("with-ca.log");
    let detail = forge.deliver_job(&server, "7", "delivered");
    assert_eq!(
        forge.prs().len(),
        1,
        "{kind:?}: the pull request went over HTTPS"
    );
    assert!(
        detail["delivery"]["commit"].as_str().is_some() && forge.repo.rev_parse(HEAD).is_some(),
        "{kind:?}: the branch went over HTTPS: {detail}"
    );
    drop(server);

    let ca_file = tls_line
        .split("ca_file:")
        .nth(1)
        .and_then(|rest| rest.trim().strip_suffix('}'))
        .expect("tls: { ca_file: PATH }")
        .trim()
        .to_owned();
    std::fs::write(&forge.config, with_ca.replace(&format!("{tls_line}\n"), "")).unwrap();
    let server = forge
        .serve_command("system-roots.log")
        .env("SSL_CERT_FILE", &ca_file)
        .start();
    // The same export again: up to date, which only a fetch over HTTPS can tell.
    let detail = forge.deliver_job(&server, "8", "up_to_date");
    assert!(
        detail["delivery"]["timings"]["fetch"].is_u64(),
        "{kind:?}: git went over HTTPS on the system's roots: {detail}"
    );
    drop(server);

    // The certificate names 127.0.0.1 only: the same server as `localhost` is refused.
    let git = forge.git_port().expect("a git URL");
    let config = std::fs::read_to_string(&forge.config).unwrap();
    let renamed = config.replace(
        &format!("https://127.0.0.1:{git}"),
        &format!("https://localhost:{git}"),
    );
    assert_ne!(
        renamed, config,
        "{kind:?}: the git URL is in the configuration"
    );
    std::fs::write(&forge.config, renamed).unwrap();
    let server = forge
        .serve_command("wrong-name.log")
        .env("SSL_CERT_FILE", &ca_file)
        .start();
    let detail = forge.deliver_job(&server, "9", "failed");
    let error = detail["delivery"]["last_error"].as_str().unwrap();
    assert!(
        error.contains("certificate") && error.contains("localhost"),
        "{kind:?}: {error}"
    );
    forge.assert_contract();
}

/// A company's outbound proxy (a real squid with basic auth) carries every request of
/// a delivery. The forge's API and the git server sit behind TLS fronts that accept only
/// the proxy's own address (127.0.0.2): a request that went around it would fail the
/// delivery. The proxy's log shows the tunnels to both and each artifact download. Then
/// the environment's proxy (`HTTPS_PROXY`/`HTTP_PROXY`, credentials in the URL) with the
/// artifact server in `NO_PROXY`: that one is reached directly, the rest still through the
/// proxy. The password shows nowhere.
fn every_request_goes_through_the_proxy(kind: Kind) {
    const PROXY_ADDRESS: &str = "127.0.0.2";
    let proxy_dir = tempfile::tempdir().unwrap();
    let proxy = Squid::start(proxy_dir.path(), Some(PROXY_ADDRESS));
    let block = format!(
        "proxy: {{ url: \"{}\", username: {PROXY_USER}, password: \"${{TEST_PROXY_PASSWORD}}\" }}",
        proxy.url()
    );
    let forge = Forge::builder(kind)
        .behind_tls_reached_from(PROXY_ADDRESS)
        .connection(&format!("    {block}\n"))
        .start();
    let configured = std::fs::read_to_string(&forge.config).unwrap();
    std::fs::write(
        &forge.config,
        configured.replacen("platform:\n", &format!("platform:\n  {block}\n"), 1),
    )
    .unwrap();
    let api = forge.api_port().expect("a forge API");
    let git = forge.git_port().expect("a git URL");
    let artifacts = forge.artifacts.addr.port();
    let tunnels = |port: u16| proxy.passed_to(port).len();

    let server = forge
        .serve_command("proxied.log")
        .env("TEST_PROXY_PASSWORD", PROXY_PASSWORD)
        .start();
    forge.deliver_job(&server, "7", "delivered");
    assert_eq!(forge.prs().len(), 1, "{kind:?}");
    let log = server.log();
    drop(server);
    proxy.settle();
    assert!(
        tunnels(api) > 0 && tunnels(git) > 0,
        "{kind:?}: the API and git went through the proxy: {:#?}",
        proxy.logged()
    );
    // Plain HTTP through a proxy names its URL, one line a request: every download.
    assert_eq!(
        tunnels(artifacts),
        forge.artifacts.hits(),
        "{kind:?}: the download: {:#?}",
        proxy.logged()
    );
    assert!(
        !log.contains(PROXY_PASSWORD),
        "{kind:?}: the proxy password leaked"
    );

    // The environment's proxies, and NO_PROXY naming the artifact server by host and port.
    std::fs::write(
        &forge.config,
        configured.replace(&format!("    {block}\n"), ""),
    )
    .unwrap();
    forge.serve_export(&[("colors.css", b":root { --primary: #0550ae; }\n")]);
    let before = (tunnels(api), tunnels(git), tunnels(artifacts));
    let hits = forge.artifacts.hits();
    let through = format!(
        "http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{}",
        proxy.port
    );
    let server = forge
        .serve_command("environment.log")
        .env("HTTPS_PROXY", &through)
        .env("HTTP_PROXY", &through)
        .env(
            "NO_PROXY",
            &format!("example.invalid, 127.0.0.1:{artifacts}"),
        )
        .start();
    forge.deliver_job(&server, "8", "delivered");
    let log = server.log();
    drop(server);
    proxy.settle();
    assert!(
        forge.artifacts.hits() > hits && tunnels(artifacts) == before.2,
        "{kind:?}: NO_PROXY names the artifact server: {:#?}",
        proxy.logged()
    );
    assert!(
        tunnels(api) > before.0 && tunnels(git) > before.1,
        "{kind:?}: the API and git still went through the proxy: {:#?}",
        proxy.logged()
    );
    assert!(
        !log.contains(PROXY_PASSWORD),
        "{kind:?}: the proxy password leaked"
    );
    forge.assert_contract();
}

/// The branches are fetched while the export downloads: with the download held, the
/// git server sees the fetch (after the forge minted the push credentials), and the
/// delivery then lands as usual, its calls still in the order made.
fn the_branches_are_fetched_while_the_export_downloads(kind: Kind) {
    let forge = Forge::start(kind);
    forge.artifacts.stall.store(true, Ordering::SeqCst);
    let served = forge.git.served_requests();
    let server = forge.serve();
    let id = server.post_event(HOOK_TOKEN, &forge.job("6"));
    wait_until("the download to start", || forge.artifacts.hits() >= 1);
    // The advertisement, the branches' list and the fetch itself.
    let started = std::time::Instant::now();
    while forge.git.served_requests() < served + 3 {
        assert!(
            started.elapsed() < WAIT,
            "{kind:?}: no fetch while the download was held ({} requests)",
            forge.git.served_requests() - served
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        forge.artifacts.hits(),
        1,
        "{kind:?}: the download is still the first one, held"
    );
    assert_eq!(
        forge.git.pushes(),
        0,
        "{kind:?}: nothing pushed before the export"
    );
    forge.artifacts.stall.store(false, Ordering::SeqCst);
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(
        detail["delivery"]["state"], "delivered",
        "{kind:?}: {detail}"
    );
    assert_eq!(
        forge.repo.rev_parse(HEAD).as_deref(),
        detail["delivery"]["commit"].as_str(),
        "{kind:?}: {detail}"
    );
    if kind != Kind::Git {
        let first = &detail["forge_calls"][0]["call"];
        assert_eq!(first, "push credentials", "{kind:?}: {detail}");
        assert_eq!(forge.prs().len(), 1, "{kind:?}");
        forge.assert_contract();
    }
}

#[test]
fn the_branches_are_fetched_while_the_export_downloads_on_plain_git() {
    the_branches_are_fetched_while_the_export_downloads(Kind::Git);
}

crate::on_each_forge!(
    opens_updates_and_closes,
    the_branches_are_fetched_while_the_export_downloads,
    every_request_goes_through_the_proxy,
    a_private_certificate_authority_is_trusted,
    the_default_branch_is_the_base,
    auto_merge_is_requested,
    the_description_shows_token_changes,
    a_persons_commit_is_never_destroyed,
    a_rate_limit_is_waited_out,
    a_failed_job_is_told_once,
    a_creation_race_ends_with_one_pull_request,
    failure_comment_survives_a_kill,
    failure_comment_survives_a_kill_on_postgres,
    terminated_while_creating_the_pull_request,
    a_failing_pull_request_step_is_retried,
);

/// The crash matrix: SIGKILL at each step, on each forge, on SQLite and on PostgreSQL:
/// `killed::STEP::{sqlite,postgres}::{github,gitlab,azure}`.
macro_rules! kill_matrix {
    ($($step:ident => $at:expr),* $(,)?) => {
        mod killed {$(
            mod $step {
                fn at() -> super::super::KillAt {
                    use super::super::*;
                    $at
                }

                kill_matrix!(@store sqlite, survives_a_kill);
                kill_matrix!(@store postgres, survives_a_kill_on_postgres);
            }
        )*}
    };
    (@store $store:ident, $run:ident) => {
        mod $store {
            use super::super::super::{Kind, $run};

            #[test]
            fn github() {
                $run(Kind::GitHub, super::at());
            }

            #[test]
            fn gitlab() {
                $run(Kind::GitLab, super::at());
            }

            #[test]
            fn azure() {
                $run(Kind::Azure, super::at());
            }
        }
    };
}

kill_matrix!(
    while_downloading => KillAt::Download,
    while_pushing => KillAt::Push { lands: false },
    after_the_push_landed => KillAt::Push { lands: true },
    before_the_pr_lookup => KillAt::Forge(Step::Lookup, HoldMode::BeforeApply),
    before_the_create_is_applied => KillAt::Forge(Step::Create, HoldMode::BeforeApply),
    after_the_create_was_applied => KillAt::Forge(Step::Create, HoldMode::AfterApply),
    before_the_labels_are_applied => KillAt::Forge(Step::Labels, HoldMode::BeforeApply),
    after_the_labels_were_applied => KillAt::Forge(Step::Labels, HoldMode::AfterApply),
);

/// `commits: api` on a GitHub connection: GitHub creates the commit through its Git
/// database API (and signs it), instead of receiving it by push.
mod api_commit {
    use super::common::forge::{Builder, Forge, HEAD, Kind};
    use super::common::serve::Server;
    use courier_testkit::forges::fault::Fault;
    use courier_testkit::forges::github_fake::{TOKEN_USER, TOKEN_USER_EMAIL};
    use courier_testkit::forges::hold::HoldMode;

    const REPO: &str = "/repos/acme/web";

    fn github() -> Builder {
        Forge::builder(Kind::GitHub).api_commits()
    }

    /// How many requests of `line` (`"POST /git/blobs"`) the fake received.
    fn calls(forge: &Forge, method: &str, rest: &str) -> usize {
        let line = format!("{method} {REPO}{rest}");
        forge.request_lines().iter().filter(|l| **l == line).count()
    }

    /// The files under `tokens/` on the head branch, by the git CLI on the server's
    /// repository.
    fn tokens_on_head(forge: &Forge) -> String {
        courier_testkit::git(
            &forge.repo.path,
            ["ls-tree", "-r", "--name-only", HEAD, "tokens/"],
        )
    }

    fn deliver(forge: &Forge, server: &Server, job: &str, state: &str) -> serde_json::Value {
        forge.deliver_job(server, job, state)
    }

    /// The branch holds exactly the export, in a commit GitHub made (its token's user as
    /// author, signed), with Courier's message and trailer, on the base; nothing was
    /// pushed; the pull request is open. The same export again converges on that commit.
    #[test]
    fn the_commit_is_created_by_github_and_converges() {
        let forge = github().start();
        // A transient answer is retried by the forge calls' retry policy.
        forge.github().enqueue_fault(
            "POST",
            "/repos/{owner}/{repo}/git/trees",
            Fault::status(502, "Bad gateway"),
        );
        let server = forge.serve();
        let detail = deliver(&forge, &server, "6", "delivered");

        assert_eq!(forge.git.pushes(), 0, "nothing was pushed with git");
        assert_eq!(
            calls(&forge, "POST", "/git/blobs"),
            2,
            "{:?}",
            forge.request_lines()
        );
        assert_eq!(
            calls(&forge, "POST", "/git/trees"),
            2,
            "the 502, then the tree"
        );
        assert_eq!(calls(&forge, "POST", "/git/commits"), 1);
        assert_eq!(calls(&forge, "POST", "/git/refs"), 1, "the branch was new");
        let tip = forge.repo.rev_parse(HEAD).expect("the head branch exists");
        assert_eq!(detail["delivery"]["commit"], tip.as_str(), "{detail}");

        // The git CLI on the server's repository: the tokens directory is the export.
        assert_eq!(
            tokens_on_head(&forge),
            "tokens/colors.css\ntokens/nested/typography.css"
        );
        assert_eq!(
            forge.repo.read_file(HEAD, "tokens/colors.css"),
            b":root { --primary: #1463ff; }\n"
        );
        assert_eq!(
            forge.repo.read_file(HEAD, "tokens/nested/typography.css"),
            b":root { --body: 16px; }\n"
        );
        assert_eq!(forge.repo.read_file(HEAD, "README.md"), b"# web\n");
        assert_eq!(
            forge.repo.parents(HEAD),
            [forge.repo.rev_parse("main").unwrap()]
        );
        let (author, committer) = forge.repo.author_and_committer(HEAD);
        assert_eq!(
            author,
            format!("{TOKEN_USER} <{TOKEN_USER_EMAIL}>"),
            "GitHub's, not Courier's"
        );
        assert_eq!(committer, "GitHub <noreply@github.com>");
        let raw = courier_testkit::git(&forge.repo.path, ["cat-file", "commit", HEAD]);
        assert!(raw.contains("\ngpgsig "), "signed by GitHub: {raw}");
        assert!(
            forge.head_message().contains("\n\nCourier-Delivery: "),
            "{}",
            forge.head_message()
        );
        let prs = forge.prs();
        assert!(prs.len() == 1 && prs[0].open, "{prs:?}");

        // The same export again: the commit GitHub made is recognised, nothing is made.
        deliver(&forge, &server, "7", "up_to_date");
        assert_eq!(forge.repo.rev_parse(HEAD), Some(tip));
        assert_eq!(calls(&forge, "POST", "/git/commits"), 1, "no second commit");
        assert_eq!(forge.git.pushes(), 0);
        assert_eq!(forge.prs().len(), 1);

        // A newer export replaces Courier's commit: the branch is moved, not created.
        forge.serve_export(&[("colors.css", b":root { --primary: #0550ae; }\n")]);
        deliver(&forge, &server, "8", "delivered");
        assert_eq!(
            calls(&forge, "PATCH", &format!("/git/refs/heads/{HEAD}")),
            1
        );
        assert_eq!(forge.commits_on_head(), "1");
        assert_eq!(
            tokens_on_head(&forge),
            "tokens/colors.css",
            "the purge deleted the other file"
        );
        assert_eq!(forge.git.pushes(), 0);
        forge.assert_contract();
    }

    /// A person's commit on the head branch is never overwritten: not when it is there at
    /// planning (the branch has diverged), nor when it lands while GitHub creates the
    /// commit (the branch is re-read before it is moved).
    #[test]
    fn a_persons_commit_is_not_overwritten() {
        let forge = github().start();
        let server = forge.serve();
        deliver(&forge, &server, "6", "delivered");
        let fixup = forge.repo.commit(
            HEAD,
            &[("tokens/colors.css", Some(b"/* reviewed */\n"))],
            "A reviewer's fix-up",
        );
        forge.serve_export(&[("colors.css", b":root { --primary: #0550ae; }\n")]);
        deliver(&forge, &server, "7", "branch_diverged");
        assert_eq!(forge.repo.rev_parse(HEAD).as_ref(), Some(&fixup));

        // Courier's branch again (the person's work merged elsewhere and the branch reset)...
        let courier = forge.repo.parents(&fixup).remove(0);
        forge.repo.set_branch(HEAD, &courier);
        let hold = forge.github().hold(
            "POST",
            "/repos/{owner}/{repo}/git/commits",
            HoldMode::BeforeApply,
        );
        let id = server.post_event(super::HOOK_TOKEN, &forge.job("8"));
        assert!(
            hold.wait_arrived(super::WAIT),
            "the commit is being created"
        );
        // ...and a person pushes while GitHub creates Courier's commit.
        let late = forge.repo.commit(
            HEAD,
            &[("tokens/colors.css", Some(b"/* pushed meanwhile */\n"))],
            "Pushed while Courier was delivering",
        );
        hold.release();
        // The moved branch fails the attempt (retryable); the next one plans again and
        // finds the person's commit.
        let detail = server.wait_finished(super::ADMIN_TOKEN, &id);
        assert_eq!(detail["delivery"]["state"], "branch_diverged", "{detail}");
        assert!(
            server.log().contains("changed on the remote"),
            "{}",
            server.log()
        );
        assert_eq!(
            forge.repo.rev_parse(HEAD),
            Some(late),
            "the person's commit stays"
        );
        assert_eq!(
            calls(&forge, "PATCH", &format!("/git/refs/heads/{HEAD}")),
            0
        );
        forge.assert_contract();
    }

    /// An export beyond what the API takes fails before any write, naming the limit and
    /// the way out.
    #[test]
    fn an_export_over_the_limit_fails_naming_it() {
        let forge = github().start();
        let names: Vec<String> = (0..401).map(|i| format!("icons/{i}.svg")).collect();
        let files: Vec<(&str, &[u8])> =
            names.iter().map(|n| (n.as_str(), &b"<svg/>"[..])).collect();
        forge.serve_export(&files);
        let server = forge.serve();
        let detail = deliver(&forge, &server, "6", "failed");
        let error = detail["delivery"]["last_error"]
            .as_str()
            .unwrap_or_default();
        assert!(
            // 401 icons added, and the purge deletes colors.css.
            error.contains("changes 402 files")
                && error.contains("400 changed files per delivery")
                && error.contains("`commits: git`"),
            "{detail}"
        );
        assert_eq!(
            forge.request_lines(),
            Vec::<String>::new(),
            "no call was made"
        );
        assert_eq!(forge.repo.rev_parse(HEAD), None);
        assert_eq!(forge.git.pushes(), 0);
    }
}
