//! Several `courier serve` replicas on one PostgreSQL, end to end over TCP: three
//! processes of the real binary against one database, a real smart-HTTP git server
//! holding 50 repositories, and the stateful GitHub fake for the pull requests.
//!
//! Every job is posted twice, at the same moment, to two different replicas; each routes
//! to one of 50 targets (one repository and head branch each). What must hold afterwards:
//! each webhook was recorded once (the second copy answered 200 with the same delivery),
//! each delivery ended exactly once (delivered, or superseded by a newer job for its
//! target), nothing is left queued, each target has one pull request, and each head
//! branch was pushed exactly the delivered jobs, in the order they arrived. The git
//! server's repositories keep a reflog (`core.logAllRefUpdates=always`), so the order of
//! pushes is read back with the git CLI rather than trusted from Courier's own records.
//!
//! The second test kills one replica with SIGKILL while it holds deliveries mid-flight;
//! the two others must take them over once their leases expire.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::forge::{Forge, HOOK_TOKEN, Kind, TOKEN};
use common::serve::{SEED_ARTIFACT_URL, SEED_V1, Server, http, with_job_id};
use courier_testkit::{BareRepo, make_bare_repo, zip_bytes};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{Connection, Row};

/// Targets, each its own repository and head branch (a serialisation key of its own).
const TARGETS: usize = 50;
const REPLICAS: usize = 3;
const WORKERS_PER_REPLICA: usize = 3;
/// Bound on the wait for the queue to drain after the last post.
const SETTLE: Duration = Duration::from_secs(150);
const UNFINISHED: &str = "('queued', 'running', 'retrying')";

fn repository(target: usize) -> String {
    format!("acme/r{target:02}")
}

fn head_branch(target: usize) -> String {
    format!("tokens/t{target:02}")
}

/// The target's stable id, derived from its connection, repository, base and path.
fn target_key(target: usize) -> String {
    format!("github:{}@main:tokens", repository(target))
}

/// Jobs are numbered from 1 and go to the targets round-robin.
fn target_of(job: usize) -> usize {
    (job - 1) % TARGETS
}

/// The export of job `n`: one file naming the job, so every job changes the branch.
fn export_of(job: usize) -> Vec<u8> {
    zip_bytes(&[("job.txt", format!("job {job}\n").as_bytes())])
}

/// Serves `/zips/{job}.zip`; while `stall` is set, downloads hang (deliveries stay
/// mid-flight, holding their leases).
async fn start_artifacts(stall: Arc<AtomicBool>, hits: Arc<AtomicUsize>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/zips/{file}",
        axum::routing::get(
            move |axum::extract::Path(file): axum::extract::Path<String>| {
                let (stall, hits) = (stall.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    while stall.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    match file.strip_suffix(".zip").and_then(|n| n.parse().ok()) {
                        Some(job) => (axum::http::StatusCode::OK, export_of(job)),
                        None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
                    }
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Cluster {
    /// Killed first when the test ends, whatever happened.
    replicas: Vec<Option<Server>>,
    addrs: Vec<SocketAddr>,
    /// The GitHub fake, the git server and the configuration.
    forge: Forge,
    repos: Vec<BareRepo>,
    artifacts: SocketAddr,
    stall: Arc<AtomicBool>,
    downloads: Arc<AtomicUsize>,
    database: String,
    /// The artifact server runs on it; dropped last.
    runtime: tokio::runtime::Runtime,
}

impl Cluster {
    /// `None` when PostgreSQL is skipped on purpose.
    fn start(lease_seconds: u64) -> Option<Cluster> {
        let started = Instant::now();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let database = runtime.block_on(common::postgres_database_url())?;
        let forge = Forge::on_store(Kind::GitHub, Some(database.clone()));

        // 50 repositories: one made with the git CLI, the others copies of it. Each keeps
        // a reflog of its branches, which is how the order of pushes is checked.
        let root = forge.git.root().join("acme");
        let template = make_bare_repo(&root, "r00", "main", &[("README.md", b"# tokens\n")]);
        template.set_config("core.logAllRefUpdates", "always");
        let mut repos = vec![template.clone()];
        for target in 1..TARGETS {
            let path = root.join(format!("r{target:02}.git"));
            let copied = std::process::Command::new("cp")
                .arg("-a")
                .arg(&template.path)
                .arg(&path)
                .status()
                .unwrap();
            assert!(copied.success());
            repos.push(BareRepo { path });
        }
        for target in 0..TARGETS {
            // The fake models the API only; the pushed branch lives on the git server.
            forge.github().add_repo(&repository(target));
            forge
                .github()
                .add_branch(&repository(target), &head_branch(target));
        }
        let stall = Arc::new(AtomicBool::new(false));
        let downloads = Arc::new(AtomicUsize::new(0));
        let artifacts = runtime.block_on(start_artifacts(stall.clone(), downloads.clone()));

        let mut hooks = String::new();
        for target in 0..TARGETS {
            hooks.push_str(&format!(
                r#"
  - match: {{ design_system_id: "ds{target:02}" }}
    targets:
      - connection: github
        repository: {repository}
        branch: main
        head_branch: {head}
        relative_path: tokens
        commit_message: "Tokens from job {{{{ job.id }}}}"
        pull_request_title: "Tokens for ds{target:02}"
"#,
                repository = repository(target),
                head = head_branch(target),
            ));
        }
        forge.write_config(WORKERS_PER_REPLICA as u32, &format!("hooks:{hooks}"));
        let mut cluster = Cluster {
            replicas: Vec::new(),
            addrs: Vec::new(),
            forge,
            repos,
            artifacts,
            stall,
            downloads,
            database,
            runtime,
        };
        for replica in 0..REPLICAS {
            // The last replica logs JSON, the others the human format: both must name it.
            let format = if replica == REPLICAS - 1 {
                "json"
            } else {
                "human"
            };
            // A data directory, hence a repository cache, of its own per replica.
            let server = cluster
                .forge
                .replica(&format!("r{replica}"))
                .env("COURIER_LOG_FORMAT", format)
                .lease_seconds(lease_seconds)
                .start();
            cluster.addrs.push(server.addr);
            cluster.replicas.push(Some(server));
        }
        eprintln!("cluster up in {:?}", started.elapsed());
        Some(cluster)
    }

    fn replica(&self, n: usize) -> &Server {
        self.replicas[n].as_ref().expect("a live replica")
    }

    fn payload(&self, job: usize) -> String {
        assert!(SEED_V1.contains(SEED_ARTIFACT_URL));
        let design_system_id = "\"id\": \"2\"";
        assert_eq!(SEED_V1.matches(design_system_id).count(), 1);
        let payload = SEED_V1
            .replace(
                SEED_ARTIFACT_URL,
                &format!("http://{}/zips/{job}.zip", self.artifacts),
            )
            .replace(
                design_system_id,
                &format!("\"id\": \"ds{:02}\"", target_of(job)),
            );
        with_job_id(&payload, &job.to_string())
    }

    /// Posts job `job` to replicas `first` and `second` at the same moment: one copy is
    /// accepted (202), the other recognised as a duplicate (200), both naming the same
    /// single delivery, whichever replica wins. Returns that delivery's id.
    fn post_twice(&self, job: usize, first: usize, second: usize) -> String {
        assert_ne!(first, second);
        let body = self.payload(job);
        let post = |replica: usize| {
            let (status, text) = http(
                self.addrs[replica],
                "POST",
                "/webhooks/supernova",
                HOOK_TOKEN,
                &body,
            );
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        };
        let (a, b) = std::thread::scope(|s| {
            let other = s.spawn(|| post(second));
            let mine = post(first);
            (mine, other.join().unwrap())
        });
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 202],
            "job {job}: one copy accepted, one duplicate: {} / {}",
            a.1,
            b.1
        );
        assert_eq!(a.1["deliveries"], b.1["deliveries"], "job {job}");
        let ids = a.1["deliveries"].as_array().unwrap();
        assert_eq!(ids.len(), 1, "job {job} routes to one target: {}", a.1);
        ids[0].as_str().unwrap().to_owned()
    }

    fn sql(&self, query: &str) -> Vec<PgRow> {
        self.runtime.block_on(async {
            let mut db = sqlx::PgConnection::connect(&self.database).await.unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(query.to_owned()))
                .fetch_all(&mut db)
                .await
                .unwrap_or_else(|e| panic!("{query}: {e}"));
            db.close().await.ok();
            rows
        })
    }

    /// Waits (bounded) until `deliveries` deliveries exist and none is unfinished.
    fn wait_settled(&self, deliveries: usize) -> Duration {
        let started = Instant::now();
        loop {
            let row = &self.sql(&format!(
                "SELECT count(*) AS total, count(*) FILTER (WHERE state IN {UNFINISHED}) AS open \
                 FROM deliveries"
            ))[0];
            let (total, open): (i64, i64) = (row.get("total"), row.get("open"));
            if total == deliveries as i64 && open == 0 {
                return started.elapsed();
            }
            if started.elapsed() > SETTLE {
                let states: Vec<String> = self
                    .sql("SELECT state || ' ' || count(*) AS s FROM deliveries GROUP BY state")
                    .iter()
                    .map(|r| r.get("s"))
                    .collect();
                panic!(
                    "not settled after {SETTLE:?}: {total} deliveries, {open} unfinished ({states:?})\n{}",
                    self.logs_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn logs_tail(&self) -> String {
        let mut out = String::new();
        for replica in 0..REPLICAS {
            let log = self.log(replica);
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            out.push_str(&format!("--- r{replica}\n{}\n", tail.join("\n")));
        }
        out
    }

    fn log(&self, replica: usize) -> String {
        std::fs::read_to_string(self.forge.dir.path().join(format!("r{replica}.log")))
            .unwrap_or_default()
    }

    fn repo(&self, target: usize) -> &Path {
        &self.repos[target].path
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The servers first: they talk to everything else.
        self.replicas.clear();
        self.stall.store(false, Ordering::SeqCst);
    }
}

/// One delivery as the store ended it.
struct Delivery {
    id: String,
    job: usize,
    state: String,
    target_key: String,
    commit: Option<String>,
    pr_url: Option<String>,
    last_error: Option<String>,
}

/// One attempt at a delivery.
struct Attempt {
    owner: String,
    outcome: Option<String>,
}

/// What the test posted: job number and the delivery id the replicas answered with.
type Posted = Vec<(usize, String)>;

/// Lanes posting at once. Each lane owns a fixed share of the targets and posts their
/// jobs in increasing order, so for every target job `n` is answered before job `n + 50`
/// is sent: arrival order per branch is the job order, which the checks rely on.
const LANES: usize = 4;

/// Posts `jobs` (each twice, to the replicas `route(job)` names) over [`LANES`] lanes.
fn post_all(
    cluster: &Cluster,
    jobs: std::ops::RangeInclusive<usize>,
    route: impl Fn(usize) -> (usize, usize) + Sync,
) -> Posted {
    let mut posted: Posted = std::thread::scope(|s| {
        let lanes: Vec<_> = (0..LANES)
            .map(|lane| {
                let (jobs, route) = (jobs.clone(), &route);
                s.spawn(move || {
                    jobs.filter(|job| target_of(*job) % LANES == lane)
                        .map(|job| {
                            let (first, second) = route(job);
                            (job, cluster.post_twice(job, first, second))
                        })
                        .collect::<Posted>()
                })
            })
            .collect();
        lanes.into_iter().flat_map(|l| l.join().unwrap()).collect()
    });
    posted.sort();
    posted
}

/// Checks everything the store, the git server and the fake say after the queue drained.
/// `dead`: the replica that was killed, whose attempts may have ended by lease expiry.
fn check_settled(cluster: &Cluster, posted: &Posted, dead: Option<usize>) {
    let jobs = posted.len();
    let job_count: i64 = cluster.sql("SELECT count(*) AS n FROM jobs")[0].get("n");
    assert_eq!(job_count, jobs as i64, "each webhook recorded once");

    let deliveries: Vec<Delivery> = cluster
        .sql(
            "SELECT d.id, d.state, d.target_key, d.pushed_commit, d.pr_url, d.last_error, j.job_id \
             FROM deliveries d JOIN jobs j ON j.id = d.job_ref ORDER BY d.id",
        )
        .iter()
        .map(|r| Delivery {
            id: r.get("id"),
            job: r.get::<String, _>("job_id").parse().unwrap(),
            state: r.get("state"),
            target_key: r.get("target_key"),
            commit: r.get("pushed_commit"),
            pr_url: r.get("pr_url"),
            last_error: r.get("last_error"),
        })
        .collect();
    assert_eq!(deliveries.len(), jobs, "one delivery per job");
    let mut attempts: BTreeMap<String, Vec<Attempt>> = BTreeMap::new();
    for r in
        cluster.sql("SELECT delivery_id, owner, outcome FROM attempts ORDER BY delivery_id, number")
    {
        attempts
            .entry(r.get("delivery_id"))
            .or_default()
            .push(Attempt {
                owner: r.get("owner"),
                outcome: r.get("outcome"),
            });
    }
    let answered: BTreeMap<&str, usize> = posted.iter().map(|(j, id)| (id.as_str(), *j)).collect();
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    let mut expired = 0;
    for d in &deliveries {
        *by_state.entry(d.state.as_str()).or_default() += 1;
        assert_eq!(
            answered.get(d.id.as_str()),
            Some(&d.job),
            "delivery {} is the one intake answered",
            d.id
        );
        assert_eq!(
            d.target_key,
            target_key(target_of(d.job)),
            "job {} routed to its target",
            d.job
        );
        let tries = attempts.get(&d.id).map(Vec::as_slice).unwrap_or_default();
        for a in tries {
            assert!(
                a.outcome.is_some(),
                "delivery {}: an attempt by {} never closed",
                d.id,
                a.owner
            );
        }
        let finals: Vec<&Attempt> = tries
            .iter()
            .filter(|a| a.outcome.as_deref() != Some("lease_expired"))
            .collect();
        for a in tries
            .iter()
            .filter(|a| a.outcome.as_deref() == Some("lease_expired"))
        {
            expired += 1;
            // Without a crash, leases are long enough never to expire; after one, only
            // the dead replica's (and, on a machine this loaded, perhaps a survivor's
            // whose renewal came late: still exactly one final attempt below).
            assert!(
                dead.is_some(),
                "delivery {}: a lease expired without a crash (owner {})",
                d.id,
                a.owner
            );
        }
        match d.state.as_str() {
            // `up_to_date`: the dead replica pushed this export and died before recording
            // it; the replica that took over found the branch already holding it.
            "delivered" | "up_to_date" => {
                assert_eq!(
                    finals.len(),
                    1,
                    "delivery {} (job {}) ended once",
                    d.id,
                    d.job
                );
                assert_eq!(finals[0].outcome.as_deref(), Some(d.state.as_str()));
                let taken_over = tries.len() > 1;
                if d.state == "up_to_date" {
                    assert!(
                        taken_over,
                        "delivery {} (job {}) up to date without a crash",
                        d.id, d.job
                    );
                }
                if let (Some(dead), true) = (dead, taken_over) {
                    assert!(
                        !finals[0].owner.starts_with(&format!("r{dead}-")),
                        "delivery {}: finished by the dead replica after a takeover",
                        d.id
                    );
                }
                assert!(d.commit.is_some(), "delivery {} has its commit", d.id);
            }
            // Superseded while waiting: a newer job for its target was queued behind it.
            "superseded" => assert!(
                finals.is_empty(),
                "delivery {} superseded after running",
                d.id
            ),
            other => panic!(
                "delivery {} (job {}) ended {other}: {}",
                d.id,
                d.job,
                d.last_error.as_deref().unwrap_or("no error recorded")
            ),
        }
    }
    eprintln!("states: {by_state:?}; attempts ended by lease expiry: {expired}");

    // Every replica that lived to the end did some of the work.
    let survivors: Vec<usize> = (0..REPLICAS).filter(|r| Some(*r) != dead).collect();
    for replica in &survivors {
        let prefix = format!("r{replica}-");
        let done = attempts
            .values()
            .flatten()
            .filter(|a| a.owner.starts_with(&prefix) && a.outcome.as_deref() == Some("delivered"))
            .count();
        assert!(done > 0, "replica r{replica} delivered nothing");
        eprintln!("r{replica} delivered {done}");
    }

    for target in 0..TARGETS {
        let mine: Vec<&Delivery> = deliveries
            .iter()
            .filter(|d| d.target_key == target_key(target))
            .collect();
        // Arrival order is id order: the jobs were posted in increasing order.
        let jobs_in_id_order: Vec<usize> = mine.iter().map(|d| d.job).collect();
        assert!(
            jobs_in_id_order.windows(2).all(|w| w[0] < w[1]),
            "target {target}: ids out of arrival order: {jobs_in_id_order:?}"
        );
        let newest = mine.last().expect("every target got jobs");
        assert_ne!(
            newest.state, "superseded",
            "target {target}: the newest job is never superseded"
        );
        let delivered: Vec<&&Delivery> = mine
            .iter()
            .filter(|d| matches!(d.state.as_str(), "delivered" | "up_to_date"))
            .collect();

        // The branch's history of pushes, oldest first, from the git server's reflog.
        let reflog = courier_testkit::git(
            cluster.repo(target),
            [
                "log",
                "-g",
                "--format=%H %s",
                &format!("refs/heads/{}", head_branch(target)),
            ],
        );
        let pushes: Vec<(String, usize)> = reflog
            .lines()
            .rev()
            .map(|line| {
                let (commit, subject) = line.split_once(' ').unwrap();
                let job = subject
                    .strip_prefix("Tokens from job ")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("target {target}: unexpected push {line}"));
                (commit.to_owned(), job)
            })
            .collect();
        let pushed_jobs: Vec<usize> = pushes.iter().map(|p| p.1).collect();
        assert!(
            pushed_jobs.windows(2).all(|w| w[0] < w[1]),
            "target {target}: pushes out of arrival order: {pushed_jobs:?}"
        );
        let expected: Vec<(String, usize)> = delivered
            .iter()
            .map(|d| (d.commit.clone().unwrap(), d.job))
            .collect();
        assert_eq!(
            pushes, expected,
            "target {target}: each delivered job pushed once, in order, nothing else"
        );
        assert_eq!(
            courier_testkit::git(
                cluster.repo(target),
                ["show", &format!("{}:tokens/job.txt", head_branch(target))]
            ),
            format!("job {}", newest.job),
            "target {target}: the branch holds the newest export"
        );

        let prs = cluster.forge.github().prs(&repository(target));
        assert_eq!(prs.len(), 1, "target {target}: one pull request");
        let pr = &prs[0];
        assert_eq!(
            (pr.state.as_str(), pr.head.as_str(), pr.base.as_str()),
            ("open", head_branch(target).as_str(), "main")
        );
        for d in &delivered {
            let url = d.pr_url.as_deref().unwrap_or_default();
            assert!(
                url.ends_with(&format!("/pull/{}", pr.number)),
                "target {target}: delivery {} links {url}",
                d.id
            );
        }
    }

    // Intake across replicas: every job accepted once and answered once as a duplicate.
    let mut accepted = 0;
    let mut duplicates = 0;
    for replica in &survivors {
        let (status, metrics) = http(cluster.addrs[*replica], "GET", "/metrics", "", "");
        assert_eq!(status, 200);
        accepted += counter(&metrics, "courier_webhooks_total{result=\"accepted\"}");
        duplicates += counter(&metrics, "courier_webhooks_total{result=\"duplicate\"}");
    }
    if dead.is_none() {
        assert_eq!((accepted, duplicates), (jobs as u64, jobs as u64));
    }
    cluster.forge.github().assert_contract();
}

/// The value of one counter line in a Prometheus text exposition (0 when absent).
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

#[test]
fn three_replicas_deliver_a_thousand_jobs_exactly_once_in_order() {
    // A lease long enough never to expire on this loaded machine, so every attempt here
    // must end by the worker that started it.
    let Some(cluster) = Cluster::start(30) else {
        return;
    };
    for replica in 0..REPLICAS {
        let (status, ready) = cluster.replica(replica).request("GET", "/readyz", "", "");
        assert_eq!(status, 200, "{ready}");
        assert_eq!(ready["replica"], format!("r{replica}"));
        assert_eq!(
            (ready["backend"].as_str(), ready["store"].as_str()),
            (Some("postgres"), Some("ok"))
        );
        assert!(
            !ready.to_string().contains("postgres://"),
            "no store URL in {ready}"
        );
    }

    const JOBS: usize = 1000;
    let started = Instant::now();
    let posted = post_all(&cluster, 1..=JOBS, |job| {
        (job % REPLICAS, (job + 1) % REPLICAS)
    });
    let posting = started.elapsed();
    let draining = cluster.wait_settled(JOBS);
    eprintln!(
        "posted {} webhooks in {posting:?} ({:.0}/s); queue drained {draining:?} later; {} downloads",
        2 * JOBS,
        (2 * JOBS) as f64 / posting.as_secs_f64(),
        cluster.downloads.load(Ordering::SeqCst)
    );
    check_settled(&cluster, &posted, None);

    // Each replica names itself in its metrics and on its log lines.
    for replica in 0..REPLICAS {
        let (_, metrics) = http(cluster.addrs[replica], "GET", "/metrics", "", "");
        let info = format!(
            "courier_replica_info{{replica=\"r{replica}\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(metrics.contains(&info), "{info} in:\n{metrics}");
        let log = cluster.log(replica);
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty());
        if replica == REPLICAS - 1 {
            for line in &lines {
                let parsed: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("r{replica}: not JSON ({e}): {line}"));
                assert_eq!(parsed["replica"], format!("r{replica}"), "{line}");
            }
        } else {
            let tag = format!("replica=r{replica} ");
            assert!(
                lines.iter().all(|l| l.starts_with(&tag)),
                "r{replica}: a line without {tag}"
            );
        }
        assert!(
            !log.contains(TOKEN),
            "the token leaked into r{replica}'s log"
        );
    }
}

#[test]
fn a_replica_killed_mid_delivery_is_taken_over_by_the_others() {
    let Some(mut cluster) = Cluster::start(3) else {
        return;
    };
    const JOBS: usize = 1000;
    const DEAD: usize = 0;
    let started = Instant::now();
    let mut posted = post_all(&cluster, 1..=JOBS / 2, |job| {
        (job % REPLICAS, (job + 1) % REPLICAS)
    });

    // Downloads hang from now on, so the deliveries the doomed replica holds stay
    // mid-flight; once it holds some, it dies without a chance to release them.
    cluster.stall.store(true, Ordering::SeqCst);
    let held = |cluster: &Cluster| -> Vec<String> {
        cluster
            .sql(&format!(
                "SELECT id FROM deliveries WHERE state = 'running' AND lease_owner LIKE 'r{DEAD}-%'"
            ))
            .iter()
            .map(|r| r.get("id"))
            .collect()
    };
    let waited = Instant::now();
    let mut orphans = held(&cluster);
    while orphans.is_empty() {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "r{DEAD} never claimed anything\n{}",
            cluster.logs_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
        orphans = held(&cluster);
    }
    cluster.replicas[DEAD].take().unwrap().kill_hard();
    // Read again once it is dead: a delivery it held a moment ago may have finished (one
    // past its download) before the kill; what it holds now it can never finish.
    orphans = held(&cluster);
    assert!(!orphans.is_empty(), "r{DEAD} died holding nothing");
    cluster.stall.store(false, Ordering::SeqCst);
    eprintln!("killed r{DEAD} holding {} deliveries", orphans.len());

    // The rest of the jobs go to the survivors, each still posted twice.
    posted.extend(post_all(&cluster, JOBS / 2 + 1..=JOBS, |job| {
        (1 + job % 2, 2 - job % 2)
    }));
    let draining = cluster.wait_settled(JOBS);
    eprintln!(
        "all posted and drained in {:?} ({draining:?} after the last post)",
        started.elapsed()
    );
    check_settled(&cluster, &posted, Some(DEAD));

    // What the dead replica held was finished by the others after its lease expired.
    for id in &orphans {
        let rows = cluster.sql(&format!(
            "SELECT d.state, a.owner, a.outcome FROM deliveries d JOIN attempts a \
             ON a.delivery_id = d.id WHERE d.id = '{id}' ORDER BY a.number"
        ));
        let state: String = rows[0].get("state");
        assert!(
            matches!(state.as_str(), "delivered" | "up_to_date"),
            "orphan {id}: {state}"
        );
        let tries: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.get("owner"), r.get("outcome")))
            .collect();
        assert!(
            tries[0].0.starts_with(&format!("r{DEAD}-")) && tries[0].1 == "lease_expired",
            "orphan {id}: {tries:?}"
        );
        let last = tries.last().unwrap();
        assert!(
            !last.0.starts_with(&format!("r{DEAD}-")) && last.1 == state,
            "orphan {id}: {tries:?}"
        );
    }
}
