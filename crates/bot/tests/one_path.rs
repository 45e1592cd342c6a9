//! What the one delivery path promises through `courier serve` (the real binary over TCP,
//! a real git server, the GitHub fake): a failed job is told once on the open pull
//! request, even across a crash; a queued delivery follows its target's stable id, never
//! its position; and a delivery whose lease another replica took over stops before any
//! further write.

mod common;

use std::process::Command;
use std::time::Duration;

use common::forge::{ADMIN_TOKEN, Forge, HEAD, HOOK_TOKEN, Kind, assert_no_secrets};
use common::serve::{Server, http, wait_until, with_job_id};
use courier::store::{JobNames, NewDelivery, NewJob, Routing, Store};
use courier_core::config::Store as StoreConfig;
use courier_testkit::forges::github_fake::HoldMode;
use serde_json::Value;

const REPO: &str = "acme/web";
const COMMENTS: &str = "/repos/{owner}/{repo}/issues/{issue_number}/comments";
const HOLD_WAIT: Duration = Duration::from_secs(60);

/// The seed's job, ended with `Failure`.
fn failed(world: &Forge) -> String {
    let payload = world.payload();
    assert!(payload.contains("\"status\": \"Success\""));
    payload.replace("\"status\": \"Success\"", "\"status\": \"Failure\"")
}

/// Comments Courier wrote about failed exports on pull request `number`.
fn failure_comments(world: &Forge, number: u64) -> Vec<String> {
    world
        .github()
        .pr(REPO, number)
        .comments
        .into_iter()
        .map(|(_, body)| body)
        .filter(|body| body.contains("failed**"))
        .collect()
}

/// An open pull request from the target's head branch, as an earlier export left it.
fn open_pr(world: &Forge) -> u64 {
    world.github().seed_pr(
        REPO,
        HEAD,
        "main",
        "Tokens v0.0",
        "The previous export.",
        "open",
    )
}

#[test]
fn a_failed_job_is_told_once_on_the_open_pull_request() {
    let world = Forge::start(Kind::GitHub);
    let server = world.serve_as("serve.log");

    // No pull request yet: nothing to tell, and that is recorded.
    let early = server.post_event(HOOK_TOKEN, &with_job_id(&failed(&world), "5"));
    let detail = server.wait_finished(ADMIN_TOKEN, &early);
    assert_eq!(
        detail["delivery"]["state"], "no_open_pull_request",
        "{detail}"
    );

    let number = open_pr(&world);
    let id = server.post_event(HOOK_TOKEN, &failed(&world));
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(detail["delivery"]["state"], "commented", "{detail}");
    assert_eq!(
        detail["delivery"]["last_error"],
        format!("commented on #{number}"),
        "{detail}"
    );
    // The platform sends the same event again: recorded once, told once.
    let (status, answer) =
        server.request("POST", "/webhooks/supernova", HOOK_TOKEN, &failed(&world));
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    std::thread::sleep(Duration::from_millis(500));

    let comments = failure_comments(&world, number);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert!(
        comments[0].contains("The export for job `6` failed"),
        "{}",
        comments[0]
    );
    assert!(
        comments[0].contains("[info] Finished exporting source colors.pr"),
        "the log's last lines are quoted: {}",
        comments[0]
    );
    // A failed job downloads nothing and pushes nothing.
    assert_eq!(world.artifacts.hits(), 0);
    assert_eq!(world.repo.rev_parse(HEAD), None);
    let listed = server.deliveries(ADMIN_TOKEN);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "commented");
    let (_, metrics) = http(server.addr, "GET", "/metrics", "", "");
    let line = "courier_deliveries_total{outcome=\"commented\",provider=\"github\"} 1";
    assert!(metrics.contains(line), "{line} in:\n{metrics}");
    world.github().assert_contract();
    assert_no_secrets(&server);
}

#[test]
fn killed_after_the_failure_comment_was_made_before_it_was_recorded() {
    let world = Forge::start(Kind::GitHub);
    let number = open_pr(&world);
    let hold = world.github().hold("POST", COMMENTS, HoldMode::AfterApply);
    let first = world.serve_as("first.log");
    let id = first.post_event(HOOK_TOKEN, &failed(&world));
    assert!(hold.wait_arrived(HOLD_WAIT), "the comment was posted");
    first.kill_hard();

    let second = world.serve_as("second.log");
    let detail = second.wait_finished(ADMIN_TOKEN, &id);
    hold.release();
    assert!(hold.wait_settled(HOLD_WAIT));
    assert_eq!(detail["delivery"]["state"], "commented", "{detail}");
    let outcomes = Server::attempt_outcomes(&detail);
    assert_eq!(outcomes, ["lease_expired", "commented"], "{detail}");
    // The restart found the crashed run's comment and wrote none of its own.
    assert_eq!(failure_comments(&world, number).len(), 1);
    world.github().assert_contract();
}

/// A target with an explicit id, delivering to `repository` on `world`'s forge.
fn target_with_id(world: &Forge, id: &str, repository: &str) -> String {
    format!(
        r#"      - id: {id}
        connection: {connection}
        repository: {repository}
        branch: main
        relative_path: src/tokens
"#,
        connection = world.provider()
    )
}

/// Branches of a bare repository.
fn branches(repo: &courier_testkit::BareRepo) -> Vec<String> {
    courier_testkit::git(
        repo.path.as_path(),
        ["for-each-ref", "--format=%(refname:short)", "refs/heads"],
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

fn queued_deliveries_follow_their_target_not_its_position(kind: Kind) {
    let world = Forge::start(kind);
    let [mobile_slug, extra_slug, tablet_slug] =
        ["mobile", "extra", "tablet"].map(|n| world.sibling(n));
    let mobile = world.add_repo(&mobile_slug);
    let extra = world.add_repo(&extra_slug);
    let tablet = world.add_repo(&tablet_slug);
    world.write_config(
        2,
        &world.hooks(&[
            world.target_yaml(),
            target_with_id(&world, "mobile", &mobile_slug),
        ]),
    );
    // The deliveries wait in the download while the configuration changes under them.
    world
        .artifacts
        .stall
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let first = world.serve_as("first.log");
    let ids = first.post_event_for(HOOK_TOKEN, &world.payload(), 2);
    wait_until("the download to start", || world.artifacts.hits() >= 1);
    first.kill_hard();

    // A target inserted before both, their order swapped, and `mobile` now names
    // another repository.
    world.write_config(
        2,
        &world.hooks(&[
            target_with_id(&world, "extra", &extra_slug),
            target_with_id(&world, "mobile", &tablet_slug),
            world.target_yaml(),
        ]),
    );
    world
        .artifacts
        .stall
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let second = world.serve_as("second.log");
    let details: Vec<Value> = ids
        .iter()
        .map(|id| second.wait_finished(ADMIN_TOKEN, id))
        .collect();
    let by_target = |key: &str| {
        details
            .iter()
            .find(|d| d["delivery"]["target_key"] == key)
            .unwrap_or_else(|| panic!("a delivery for {key}: {details:#?}"))
    };

    let web = by_target(&world.target_key());
    assert_eq!(web["delivery"]["state"], "delivered", "{web}");
    assert_eq!(web["delivery"]["repository"], world.slug());
    assert_eq!(
        world.repo.rev_parse(HEAD).as_deref(),
        web["delivery"]["commit"].as_str()
    );
    assert_eq!(world.prs().len(), 1);

    let moved = by_target("mobile");
    assert_eq!(moved["delivery"]["state"], "failed", "{moved}");
    let error = moved["delivery"]["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("target_changed: ")
            && error.contains(&format!("now delivers to {tablet_slug}")),
        "{error}"
    );
    // Nothing went to the inserted target, the new repository, or the old one.
    for repo in [&mobile, &extra, &tablet] {
        assert_eq!(branches(repo), ["main"], "{}", repo.path.display());
    }
    for slug in [&mobile_slug, &extra_slug, &tablet_slug] {
        assert_eq!(world.pr_count(slug), 0, "no pull request on {slug}");
    }
    world.assert_contract();
}

/// Deliveries queued before targets had ids name a position (`hooks[H].targets[T]`). After
/// the upgrade they are delivered while the target at that position still names the
/// repository they were queued for, and fail with the reason when it does not.
#[test]
fn deliveries_queued_by_position_before_ids_still_land_where_they_were_meant_to() {
    let world = Forge::start(Kind::GitHub);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let legacy = |job_id: &str, repository: &str| NewJob {
        workspace_id: "1".into(),
        job_id: job_id.into(),
        hook_id: "5".into(),
        design_system_id: "2".into(),
        status: "Success".into(),
        ignored: false,
        body: with_job_id(&world.payload(), job_id).into_bytes(),
        routing: Routing::Routed,
        names: JobNames::default(),
        deliveries: vec![NewDelivery {
            target_key: "hooks[0].targets[0]".into(),
            hook_id: "5".into(),
            repository: repository.into(),
            connection: "github".into(),
            head_branch: HEAD.into(),
        }],
    };
    let (same, moved) = runtime.block_on(async {
        let path = world.dir.path().join("data/courier.db");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let store = Store::open(&StoreConfig::Sqlite { path }).await.unwrap();
        let same = store.insert_job(legacy("6", REPO)).await.unwrap();
        let moved = store.insert_job(legacy("7", "acme/gone")).await.unwrap();
        store.close().await;
        (same.deliveries[0].clone(), moved.deliveries[0].clone())
    });

    let server = world.serve_as("serve.log");
    let detail = server.wait_finished(ADMIN_TOKEN, same.as_str());
    assert_eq!(detail["delivery"]["state"], "delivered", "{detail}");
    assert_eq!(world.prs().len(), 1);
    let detail = server.wait_finished(ADMIN_TOKEN, moved.as_str());
    assert_eq!(detail["delivery"]["state"], "failed", "{detail}");
    let error = detail["delivery"]["last_error"].as_str().unwrap();
    assert!(
        error.contains("hooks[0].targets[0] is no longer in the configuration"),
        "{error}"
    );
    // Only job 6 reached the branch; job 7 went nowhere.
    assert_eq!(world.commits_on_head(), "1");
    assert!(world.head_message().contains("Courier-Delivery: 1/6 "));
}

/// Sends `signal` (`STOP`, `CONT`) to the server's process.
fn signal(server: &Server, signal: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// The value of a metric line that starts with `name ` in a Prometheus text answer.
fn metric(server: &Server, name: &str) -> f64 {
    let (_, text) = http(server.addr, "GET", "/metrics", "", "");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in:\n{text}"))
}

fn a_delivery_whose_lease_was_taken_over_stops_before_any_further_write(kind: Kind) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(common::postgres_database_url()) else {
        return;
    };
    let world = Forge::on_store(kind, Some(database));
    let push = world.hold_first_push();
    let a = world.replica("a").start();
    let id = a.post_event(HOOK_TOKEN, &world.payload());
    push.wait_arrived();
    assert_eq!(metric(&a, "courier_deliveries_running"), 1.0);

    // Replica A freezes mid-push past its lease; replica B takes the delivery over and
    // delivers it (its own push passes the hook).
    signal(&a, "STOP");
    std::thread::sleep(Duration::from_secs(4));
    let b = world.replica("b").start();
    let detail = b.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(detail["delivery"]["state"], "delivered", "{detail}");
    let delivered = detail["delivery"]["commit"].as_str().unwrap().to_owned();
    let calls_by_b = world.request_lines();

    // A wakes up, finds its lease gone and stops; then its held push goes on, and the
    // git server refuses it, since the branch is no longer where A found it.
    signal(&a, "CONT");
    wait_until("replica A to notice the lost lease", || {
        a.log().contains("lost the lease")
    });
    push.release();
    std::thread::sleep(Duration::from_secs(1));

    assert_eq!(
        world.repo.rev_parse(HEAD).as_deref(),
        Some(delivered.as_str())
    );
    assert_eq!(world.commits_on_head(), "1");
    assert_eq!(world.prs().len(), 1);
    assert_eq!(
        world.request_lines(),
        calls_by_b,
        "replica A made no pull-request call after losing its lease"
    );
    let (_, after) = b.request("GET", &format!("/api/deliveries/{id}"), ADMIN_TOKEN, "");
    assert_eq!(after["delivery"]["state"], "delivered", "{after}");
    assert_eq!(after["delivery"]["commit"], delivered.as_str(), "{after}");
    let owners: Vec<&str> = after["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["owner"].as_str().unwrap())
        .collect();
    assert!(
        owners.len() == 2 && owners[0].starts_with("a-") && owners[1].starts_with("b-"),
        "{after}"
    );
    assert_eq!(metric(&a, "courier_deliveries_running"), 0.0);
    assert_eq!(metric(&a, "courier_delivery_leases_lost_total"), 1.0);
    world.assert_contract();
    assert_no_secrets(&a);
    assert_no_secrets(&b);
}

crate::on_each_forge!(
    queued_deliveries_follow_their_target_not_its_position,
    a_delivery_whose_lease_was_taken_over_stops_before_any_further_write,
);
