//! `courier serve` end to end over real TCP: the binary as a child process, a real
//! smart-HTTP git server as the target, the artifact from a local HTTP server. Then the
//! crash cases: `kill -9` in the middle of a delivery, and SIGTERM, each followed by a
//! restart on the same data directory that must finish the work exactly once.

mod common;

use std::sync::atomic::Ordering;

use common::forge::{ADMIN_TOKEN, Forge, HEAD, HOOK_TOKEN, Kind, TOKEN};
use common::serve::{PLATFORM_TOKEN, http, wait_until, with_job_id};
use common::sshd::{Sshd, keygen};
use courier_providers::git::{EngineSettings, PACK_MAP_LIMIT, PACK_MAP_WINDOW, Timeouts};
use courier_testkit::keys;
use serde_json::Value;

/// A plain git target: the branch is pushed, no pull request.
fn git() -> Forge {
    Forge::start(Kind::Git)
}

/// The branch holds the export on top of the base, in exactly one commit.
fn assert_delivered_once(setup: &Forge, detail: &Value) {
    assert_eq!(detail["delivery"]["state"], "delivered", "{detail}");
    let head = detail["delivery"]["head_branch"].as_str().unwrap();
    let commit = detail["delivery"]["commit"].as_str().expect("a commit");
    assert_eq!(setup.repo.rev_parse(head).as_deref(), Some(commit));
    let base = setup.repo.rev_parse("main").unwrap();
    assert_eq!(
        setup.repo.parents(head),
        vec![base],
        "one commit on the base"
    );
    assert_eq!(
        setup.repo.read_file(head, "tokens/colors.css"),
        b":root { --primary: #1463ff; }\n"
    );
    assert_eq!(
        setup.repo.read_file(head, "tokens/nested/typography.css"),
        b":root { --body: 16px; }\n"
    );
    assert_eq!(setup.repo.read_file(head, "README.md"), b"# web\n");
    assert_eq!(detail["delivery"]["files"]["added"], 1, "{detail}");
    assert_eq!(detail["delivery"]["files"]["modified"], 1, "{detail}");
}

#[test]
fn a_webhook_over_tcp_is_delivered_to_the_repository() {
    let setup = git();
    let server = setup.serve_as("serve.log");
    let (status, health) = server.request("GET", "/healthz", "", "");
    assert_eq!((status, &health["status"]), (200, &Value::from("ok")));
    wait_until("readiness", || {
        server.request("GET", "/readyz", "", "").0 == 200
    });

    let id = server.post_event(HOOK_TOKEN, &setup.payload());
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_delivered_once(&setup, &detail);
    assert_eq!(setup.artifacts.hits(), 1);

    // Metrics saw the delivery.
    let (status, metrics) = http(server.addr, "GET", "/metrics", "", "");
    assert_eq!(status, 200);
    for line in [
        "courier_webhooks_total{result=\"accepted\"} 1",
        "courier_deliveries_total{outcome=\"delivered\",provider=\"git\"} 1",
        "courier_delivery_attempts_total 1",
        "courier_queue_depth 0",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    let log = server.log();
    // The binary configured libgit2 before anything else (values read back from it).
    let engine = EngineSettings {
        pack_map_window: PACK_MAP_WINDOW,
        pack_map_limit: PACK_MAP_LIMIT,
        socket_timeout: Timeouts::default().network(),
    };
    assert!(log.contains(&format!("git engine: {engine}")), "{log}");
    assert!(!log.contains(TOKEN), "the git token leaked into the log");
    assert!(
        !log.contains(HOOK_TOKEN),
        "the webhook token leaked into the log"
    );

    // The same webhook again: a duplicate, nothing new to do.
    let (status, again) =
        server.request("POST", "/webhooks/supernova", HOOK_TOKEN, &setup.payload());
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["deliveries"][0], id.as_str());
    assert_eq!(server.deliveries(ADMIN_TOKEN).len(), 1);
}

#[test]
fn a_server_killed_mid_delivery_finishes_it_after_a_restart() {
    let setup = git();
    setup.artifacts.stall.store(true, Ordering::SeqCst);
    let server = setup.serve_as("first.log");
    let id = server.post_event(HOOK_TOKEN, &setup.payload());
    // The worker is downloading: the delivery is mid-flight.
    wait_until("the download to start", || setup.artifacts.hits() >= 1);
    let running = server.deliveries(ADMIN_TOKEN);
    assert_eq!(running[0]["state"], "running", "{running:?}");
    server.kill_hard();

    setup.artifacts.stall.store(false, Ordering::SeqCst);
    let server = setup.serve_as("second.log");
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_delivered_once(&setup, &detail);
    // The first attempt ended with the crash (its lease expired); the second delivered.
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{detail}");
    assert_eq!(attempts[0]["outcome"], "lease_expired", "{detail}");
    assert_eq!(attempts[1]["outcome"], "delivered", "{detail}");
    let head = detail["delivery"]["head_branch"].as_str().unwrap();
    let count = courier_testkit::git(
        setup.repo.path.as_path(),
        ["rev-list", "--count", &format!("main..{head}")],
    );
    assert_eq!(count.trim(), "1");
}

#[test]
fn sigterm_exits_cleanly_and_a_restart_finishes_leftover_work() {
    let setup = git();
    setup.artifacts.stall.store(true, Ordering::SeqCst);
    let server = setup.serve_as("first.log");
    let id = server.post_event(HOOK_TOKEN, &setup.payload());
    wait_until("the download to start", || setup.artifacts.hits() >= 1);
    let log = setup.dir.path().join("first.log");
    let status = server.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    setup.artifacts.stall.store(false, Ordering::SeqCst);
    let server = setup.serve_as("second.log");
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_delivered_once(&setup, &detail);
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn deliveries_and_replay_from_the_cli_against_a_running_server() {
    let setup = git();
    let server = setup.serve_as("serve.log");
    let id = server.post_event(HOOK_TOKEN, &setup.payload());
    let first = server.wait_finished(ADMIN_TOKEN, &id);
    assert_delivered_once(&setup, &first);
    let job = first["job"]["id"].as_str().unwrap().to_owned();

    let out = setup.courier(&["deliveries", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "delivered");
    // The dashboard's filters, from the command line too.
    for (filter, found) in [
        (&["--state", "failed"][..], false),
        (&["--connection", "git"], true),
        (&["--connection", "github"], false),
        (&["--search", "EXAMPLE design"], true),
        (&["--search", "nowhere"], false),
        (&["--job", first["job"]["job_id"].as_str().unwrap()], true),
        (&["--job", "elsewhere"], false),
    ] {
        let out = setup.courier(&[&["deliveries", "--json"][..], filter].concat());
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            listed.as_array().unwrap().len(),
            usize::from(found),
            "{filter:?}"
        );
    }
    let out = setup.courier(&["deliveries"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&id) && table.contains("delivered"),
        "{table}"
    );

    // Replaying the delivery runs it again; the branch already holds the export.
    let out = setup.courier(&["replay", &id]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{id} queued")
    );
    let again = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(again["delivery"]["state"], "up_to_date", "{again}");
    assert_eq!(again["delivery"]["commit"], first["delivery"]["commit"]);
    assert_eq!(again["attempts"].as_array().unwrap().len(), 2);

    // A job id replays every delivery of the job.
    let out = setup.courier(&["replay", &job, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let requeued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(requeued[0]["id"], id.as_str());
    assert_eq!(requeued[0]["state"], "queued");
    let third = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(third["delivery"]["state"], "up_to_date", "{third}");
    let head = third["delivery"]["head_branch"].as_str().unwrap();
    let base = setup.repo.rev_parse("main").unwrap();
    assert_eq!(setup.repo.parents(head), vec![base], "still one commit");

    let out = setup.courier(&["replay", "01M81CVA8KSC3DFWVKDX314RFZ"]);
    assert_eq!(out.status.code(), Some(2), "unknown id: {out:?}");
    let out = setup.courier(&["replay", "not-an-id"]);
    assert_eq!(out.status.code(), Some(2), "invalid id: {out:?}");
}

#[test]
fn a_transient_download_failure_is_retried_with_backoff() {
    let setup = git();
    setup.artifacts.fail_with.store(503, Ordering::SeqCst);
    let server = setup.serve_as("serve.log");
    let id = server.post_event(HOOK_TOKEN, &setup.payload());
    let mut retrying = Value::Null;
    wait_until("the delivery to be retrying", || {
        let (_, detail) = server.request("GET", &format!("/api/deliveries/{id}"), ADMIN_TOKEN, "");
        let done = detail["delivery"]["state"] == "retrying";
        retrying = detail;
        done
    });
    let delivery = &retrying["delivery"];
    let error = delivery["last_error"].as_str().unwrap();
    assert!(error.contains("503"), "{retrying}");
    assert!(delivery["next_attempt_at"].is_string(), "{retrying}");
    assert_eq!(retrying["attempts"][0]["outcome"], "retry", "{retrying}");
    assert!(delivery["lease_owner"].is_null());

    // The platform recovers: the next attempt (after the backoff, at most 5 s) delivers.
    setup.artifacts.fail_with.store(0, Ordering::SeqCst);
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_delivered_once(&setup, &detail);
    let attempts = detail["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{detail}");
    assert_eq!(attempts.last().unwrap()["outcome"], "delivered");
}

#[test]
fn a_job_the_platform_confirms_is_delivered_and_others_are_skipped() {
    let setup = Forge::builder(Kind::Git).verify_with_platform().start();
    let server = setup.serve_as("serve.log");
    let id = server.post_event(HOOK_TOKEN, &setup.payload());
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_delivered_once(&setup, &detail);
    let job = detail["job"]["job_id"].as_str().unwrap().to_owned();
    let asked = setup.artifacts.api_requests();
    assert!(
        asked
            .iter()
            .any(|(line, pat)| *pat && line.ends_with(&format!("/jobs/{job}"))),
        "the job was read back with the PAT: {asked:?}"
    );

    // The platform does not know the next job: nothing is downloaded, nothing pushed, and
    // the delivery says why.
    *setup.artifacts.job_status.lock().unwrap() = None;
    let hits = setup.artifacts.hits();
    let unknown = server.post_event(HOOK_TOKEN, &with_job_id(&setup.payload(), "424242"));
    let detail = server.wait_finished(ADMIN_TOKEN, &unknown);
    assert_eq!(detail["delivery"]["state"], "skipped", "{detail}");
    let error = detail["delivery"]["last_error"].as_str().unwrap();
    assert!(error.contains("does not know this job"), "{detail}");
    assert_eq!(setup.artifacts.hits(), hits, "nothing was downloaded");

    // The platform says the job is still running: not delivered either.
    *setup.artifacts.job_status.lock().unwrap() = Some("InProgress".to_owned());
    let running = server.post_event(HOOK_TOKEN, &with_job_id(&setup.payload(), "434343"));
    let detail = server.wait_finished(ADMIN_TOKEN, &running);
    assert_eq!(detail["delivery"]["state"], "skipped", "{detail}");
    assert!(
        detail["delivery"]["last_error"]
            .as_str()
            .unwrap()
            .contains("`InProgress`"),
        "{detail}"
    );
    assert!(!server.log().contains(PLATFORM_TOKEN), "the PAT leaked");
}

#[test]
fn an_expired_signed_url_is_re_resolved_through_the_platform_api() {
    let setup = Forge::builder(Kind::Git).verify_with_platform().start();
    // The signed URL in the payload has expired: its host answers 403.
    setup.artifacts.fail_with.store(403, Ordering::SeqCst);
    let server = setup.serve_as("serve.log");
    let id = server.post_event(HOOK_TOKEN, &setup.payload());
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_delivered_once(&setup, &detail);
    assert_eq!(setup.artifacts.hits(), 1, "the signed URL was tried once");
    let job = detail["job"]["job_id"].as_str().unwrap().to_owned();
    let asked = setup.artifacts.api_requests();
    assert!(
        asked
            .iter()
            .any(|(line, pat)| *pat && line.ends_with(&format!("/jobs/{job}/result"))),
        "the result endpoint gave the export: {asked:?}"
    );
}

#[test]
fn a_burst_of_distinct_jobs_is_each_delivered_exactly_once() {
    const JOBS: usize = 60;
    const SENDERS: usize = 12;
    let setup = Forge::builder(Kind::Git)
        .target("        head_branch: \"courier/{{ job.id }}\"\n")
        .start();
    let server = setup.serve_as("serve.log");
    let payload = setup.payload();
    let ids = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for sender in 0..SENDERS {
            let (server, payload, ids) = (&server, &payload, &ids);
            scope.spawn(move || {
                for n in (sender..JOBS).step_by(SENDERS) {
                    let body = with_job_id(payload, &format!("burst-{n}"));
                    let id = server.post_event(HOOK_TOKEN, &body);
                    ids.lock().unwrap().push(id);
                }
            });
        }
    });
    let ids = ids.into_inner().unwrap();
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), JOBS, "one new delivery per job");

    for id in &ids {
        let detail = server.wait_finished(ADMIN_TOKEN, id);
        assert_eq!(detail["delivery"]["state"], "delivered", "{detail}");
        assert_eq!(detail["attempts"].as_array().unwrap().len(), 1, "{detail}");
    }
    let base = setup.repo.rev_parse("main").unwrap();
    let parents = courier_testkit::git(
        setup.repo.path.as_path(),
        ["for-each-ref", "--format=%(parent)", "refs/heads/courier/"],
    );
    let parents: Vec<&str> = parents.lines().collect();
    assert_eq!(parents.len(), JOBS, "one branch per job");
    assert!(
        parents.iter().all(|p| *p == base),
        "each branch is one commit on the base"
    );
    let (_, metrics) = http(server.addr, "GET", "/metrics", "", "");
    for line in [
        format!("courier_webhooks_total{{result=\"accepted\"}} {JOBS}"),
        format!("courier_delivery_attempts_total {JOBS}"),
        "courier_queue_depth 0".to_owned(),
    ] {
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
}

#[test]
fn a_job_fanned_out_to_two_targets_is_downloaded_once() {
    let setup = git();
    // The job fans out to a second target: the same repository, another directory.
    let copy = setup
        .target_yaml()
        .replace("relative_path: tokens", "relative_path: copy");
    setup.write_config(2, &setup.hooks(&[setup.target_yaml(), copy]));
    let server = setup.serve_as("serve.log");
    let ids = server.post_event_for(HOOK_TOKEN, &setup.payload(), 2);
    let mut heads = Vec::new();
    for id in &ids {
        let detail = server.wait_finished(ADMIN_TOKEN, id);
        assert_eq!(detail["delivery"]["state"], "delivered", "{detail}");
        heads.push(
            detail["delivery"]["head_branch"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(setup.artifacts.hits(), 1, "one download for both targets");
    // ... timed once: by the delivery that downloaded it.
    let (_, metrics) = http(server.addr, "GET", "/metrics", "", "");
    for phase in ["download", "validate"] {
        let line = format!("courier_delivery_phase_seconds_count{{phase=\"{phase}\"}} 1");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    let line = "courier_delivery_phase_seconds_count{phase=\"push\"} 2";
    assert!(metrics.contains(line), "{line} in:\n{metrics}");
    assert_eq!(
        setup.repo.read_file(&heads[0], "tokens/colors.css"),
        b":root { --primary: #1463ff; }\n"
    );
    assert_eq!(
        setup.repo.read_file(&heads[1], "copy/colors.css"),
        b":root { --primary: #1463ff; }\n"
    );
}

/// The passphrase of the signing keys the tests make; never in an error or the log.
const SIGNING_PASSPHRASE: &str = "correct horse battery staple";

/// One of git's signature formats, as the signing tests drive it.
trait SignatureFormat {
    /// The `format:` of the `signing` setting.
    const NAME: &'static str;
    /// Makes a key owned by `email` at `keys/<name>` (in `setup`'s directory) with this
    /// passphrase (none when empty).
    fn keygen(&self, setup: &Forge, name: &str, email: &str, passphrase: &str);
    /// Asserts `git verify-commit` finds a good signature by `keys/courier` on `commit`.
    fn verify(&self, setup: &Forge, commit: &str);
}

/// A target with `signing` pushes commits signed in `format`, which the git CLI verifies;
/// the same key on the connection signs its targets' commits too. A wrong passphrase, or
/// a key that belongs to someone other than the commits' author, stops the configuration
/// with the key's path and never the passphrase.
fn check_signed_commits<F: SignatureFormat>(format: F) {
    let signing = format!(
        "signing: {{ format: {}, key: keys/courier, passphrase: \"${{TEST_SIGNING_PASSPHRASE}}\" }}",
        F::NAME
    );
    let setup = Forge::builder(Kind::Git)
        .target(&format!("        {signing}\n"))
        .start();
    std::fs::create_dir_all(setup.dir.path().join("keys")).unwrap();
    format.keygen(
        &setup,
        "courier",
        "courier@noreply.invalid",
        SIGNING_PASSPHRASE,
    );
    let validate = |passphrase: &str| {
        let out = setup.courier_with(&["validate"], &[("TEST_SIGNING_PASSPHRASE", passphrase)]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, text) = validate("not the passphrase");
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("signing.key")
            && text.contains("the passphrase does not unlock")
            && text.contains("keys/courier"),
        "{text}"
    );
    assert!(
        !text.contains("not the passphrase"),
        "the passphrase leaked: {text}"
    );
    let (code, text) = validate(SIGNING_PASSPHRASE);
    assert_eq!(code, Some(0), "{text}");

    let serve = || {
        setup
            .serve_command("serve.log")
            .env("TEST_SIGNING_PASSPHRASE", SIGNING_PASSPHRASE)
            .start()
    };
    let server = serve();
    let id = server.post_event(HOOK_TOKEN, &setup.payload());
    let detail = server.wait_finished(ADMIN_TOKEN, &id);
    assert_delivered_once(&setup, &detail);
    format.verify(&setup, detail["delivery"]["commit"].as_str().unwrap());
    assert!(
        !server.log().contains(SIGNING_PASSPHRASE),
        "the passphrase leaked into the log"
    );
    server.terminate_cleanly("signing");

    // The same key on the connection signs its targets' commits.
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let token = "    token: \"${TEST_FORGE_TOKEN}\"\n";
    let text = text
        .replace(&format!("        {signing}\n"), "")
        .replace(token, &format!("{token}    {signing}\n"));
    std::fs::write(&setup.config, text).unwrap();
    setup.serve_export(&[("colors.css", b":root { --primary: #0550ae; }\n")]);
    let server = serve();
    let detail = setup.deliver_job(&server, "7", "delivered");
    format.verify(&setup, detail["delivery"]["commit"].as_str().unwrap());
    drop(server);

    // Someone else's key on the target: the commits would carry a signature the forge
    // cannot match to their author.
    format.keygen(&setup, "designer", "designer@acme.example", "");
    let text = std::fs::read_to_string(&setup.config).unwrap().replace(
        "        relative_path: tokens\n",
        &format!(
            "        relative_path: tokens\n        signing: {{ format: {}, key: keys/designer }}\n",
            F::NAME
        ),
    );
    std::fs::write(&setup.config, text).unwrap();
    let (code, text) = validate(SIGNING_PASSPHRASE);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("belongs to designer@acme.example") && text.contains("commit_author_email"),
        "{text}"
    );
}

/// `git verify-commit -v` on `commit` in `setup`'s repository, with `configure` adding
/// what the format needs: its stderr when the signature is good and contains `good`.
fn verify_commit(
    setup: &Forge,
    commit: &str,
    good: &str,
    configure: impl FnOnce(&mut std::process::Command),
) {
    let mut command = std::process::Command::new("git");
    command
        .arg("-C")
        .arg(&setup.repo.path)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C");
    configure(&mut command);
    let verified = command
        .args(["verify-commit", "-v", commit])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stderr).into_owned();
    assert!(
        verified.status.success() && said.contains(good),
        "git verify-commit {commit}: {said}"
    );
}

/// git's SSH format: `ssh-keygen` keys, verified against an `allowed_signers` file that
/// trusts only `keys/courier`.
struct Ssh;

impl SignatureFormat for Ssh {
    const NAME: &'static str = "ssh";

    fn keygen(&self, setup: &Forge, name: &str, email: &str, passphrase: &str) {
        keygen(&setup.dir.path().join("keys").join(name), email, passphrase);
    }

    fn verify(&self, setup: &Forge, commit: &str) {
        let public = std::fs::read_to_string(setup.dir.path().join("keys/courier.pub")).unwrap();
        let allowed = setup.dir.path().join("allowed_signers");
        std::fs::write(
            &allowed,
            format!("courier@noreply.invalid namespaces=\"git\" {public}"),
        )
        .unwrap();
        verify_commit(
            setup,
            commit,
            "Good \"git\" signature for courier@noreply.invalid",
            |git| {
                git.arg("-c")
                    .arg(format!("gpg.ssh.allowedSignersFile={}", allowed.display()));
            },
        );
    }
}

#[test]
fn commits_are_signed_with_the_configured_ssh_key() {
    check_signed_commits(Ssh);
}

/// OpenPGP, git's default format: GnuPG makes the keys (armored secret keys exported
/// into `keys/`) and `git verify-commit` runs gpg on that keyring.
struct OpenPgp(keys::Keyring);

impl SignatureFormat for OpenPgp {
    const NAME: &'static str = "openpgp";

    fn keygen(&self, setup: &Forge, name: &str, email: &str, passphrase: &str) {
        let user_id = format!("{name} <{email}>");
        let path = setup.dir.path().join("keys").join(name);
        self.0
            .generate(&user_id, "ed25519", "sign", passphrase, &path);
    }

    fn verify(&self, setup: &Forge, commit: &str) {
        verify_commit(
            setup,
            commit,
            "Good signature from \"courier <courier@noreply.invalid>\"",
            |git| {
                git.env("GNUPGHOME", &self.0.home);
            },
        );
    }
}

#[test]
fn commits_are_signed_with_the_configured_openpgp_key() {
    let home = tempfile::tempdir().unwrap();
    check_signed_commits(OpenPgp(keys::Keyring::new(&home.path().join("gnupg"))));
}

/// A git target over SSH: a real `sshd` serves the bare repository, Courier logs in with
/// the connection's passphrase-protected deploy key and checks the server's host key
/// against the configured `known_hosts`. An unknown host key (its fingerprint in the
/// error) and a key the server refuses each fail the delivery with that reason.
#[test]
fn a_git_target_over_ssh_is_delivered_with_a_deploy_key() {
    const PASSPHRASE: &str = "deploy key passphrase";
    let setup = Forge::builder(Kind::Git)
        .connection("    ssh: { key: keys/deploy, passphrase: \"${TEST_SSH_PASSPHRASE}\", known_hosts: keys/known_hosts }\n")
        .start();
    let keys = setup.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let deploy = keygen(&keys.join("deploy"), "courier deploy key", PASSPHRASE);
    let sshd = Sshd::start(&setup.dir.path().join("sshd"), &deploy);
    let ssh_url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        setup.repo.path.display()
    );
    let http_url = setup.git.url("web");
    let target = setup.target_yaml().replace(&http_url, &ssh_url);
    assert_ne!(target, setup.target_yaml());
    setup.write_config(2, &setup.hooks(&[target]));
    let known_hosts = keys.join("known_hosts");
    // A server whose host key nobody listed.
    let stranger = keygen(&keys.join("stranger"), "another server", "");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {stranger}", sshd.port),
    )
    .unwrap();
    // A wrong passphrase stops the configuration, naming the key and not the passphrase.
    let out = setup.courier_with(&["validate"], &[("TEST_SSH_PASSPHRASE", "not it")]);
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("ssh.key")
            && said.contains("the passphrase does not unlock")
            && !said.contains("not it"),
        "{said}"
    );

    let server = setup
        .serve_command("serve.log")
        .env("TEST_SSH_PASSPHRASE", PASSPHRASE)
        .start();
    let detail = setup.deliver_job(&server, "6", "failed");
    let error = detail["delivery"]["last_error"].as_str().unwrap();
    assert!(
        error.contains("host key of [127.0.0.1]:")
            && error.contains("SHA256:")
            && error.contains("does not match"),
        "{error}"
    );
    assert_eq!(setup.repo.rev_parse(HEAD), None, "nothing was pushed");

    // The right server, but it does not know the key.
    std::fs::write(&known_hosts, sshd.known_hosts_line()).unwrap();
    std::fs::write(&sshd.authorized_keys, &stranger).unwrap();
    let detail = setup.deliver_job(&server, "7", "failed");
    let error = detail["delivery"]["last_error"].as_str().unwrap();
    assert!(error.contains("refused the key"), "{error}");

    std::fs::write(&sshd.authorized_keys, &deploy).unwrap();
    let detail = setup.deliver_job(&server, "8", "delivered");
    assert_delivered_once(&setup, &detail);
    assert!(
        sshd.log().contains("Accepted publickey"),
        "the push went over SSH: {}",
        sshd.log()
    );
    assert!(
        !server.log().contains(PASSPHRASE),
        "the passphrase leaked into the log"
    );
}
