//! The dashboard (`/ui/`) of a real `courier serve` over TCP: signing in and out, the
//! session cookie, security headers, the deliveries list and a delivery's page, Retry with
//! and without its CSRF token, and payload text shown as text.

mod common;

use std::time::{Duration, Instant};

use common::forge::{ADMIN_TOKEN, Forge, HOOK_TOKEN, Kind, VIEWER_TOKEN};
use common::serve::{Answer, Server, exchange, http, wait_until};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// A GET with the session cookie `session` (none when empty).
fn get(server: &Server, path: &str, session: &str) -> Answer {
    let cookie = format!("courier_session={session}");
    let headers: &[(&str, &str)] = if session.is_empty() {
        &[]
    } else {
        &[("Cookie", &cookie)]
    };
    exchange(server.addr, "GET", path, headers, "")
}

/// A form POST with the session cookie `session`.
fn post_form(server: &Server, path: &str, session: &str, body: &str) -> Answer {
    let cookie = format!("courier_session={session}");
    exchange(
        server.addr,
        "POST",
        path,
        &[FORM, ("Cookie", &cookie)],
        body,
    )
}

fn assert_redirects_to(answer: &Answer, to: &str, what: &str) {
    assert_eq!(answer.status, 303, "{what}: {}", answer.body);
    assert_eq!(answer.header("location"), Some(to), "{what}");
}

fn assert_security_headers(answer: &Answer, what: &str) {
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(answer.header(name), Some(value), "{what}: {name}");
    }
}

/// The sign-in form posted with `token`.
fn post_token(server: &Server, token: &str) -> Answer {
    exchange(
        server.addr,
        "POST",
        "/ui/sign-in",
        &[FORM],
        &format!("token={token}"),
    )
}

/// Signs in with the admin token; the session cookie's value.
fn sign_in(server: &Server) -> String {
    sign_in_with(server, ADMIN_TOKEN)
}

/// Signs in with `token`; the session cookie's value.
fn sign_in_with(server: &Server, token: &str) -> String {
    let answer = post_token(server, token);
    assert_redirects_to(&answer, "/ui/", "signing in");
    let cookie = answer.header("set-cookie").expect("a session cookie");
    let value = cookie
        .strip_prefix("courier_session=")
        .and_then(|rest| rest.split(';').next())
        .expect("the session cookie");
    assert!(!value.is_empty());
    value.to_owned()
}

/// The CSRF token in a page's forms.
fn csrf(page: &str) -> String {
    let (_, rest) = page
        .split_once("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    rest.split('"').next().unwrap().to_owned()
}

fn sign_in_failures(server: &Server) -> String {
    let (_, metrics) = http(server.addr, "GET", "/metrics", "", "");
    metrics
        .lines()
        .find(|line| line.starts_with("courier_ui_sign_in_failures_total "))
        .expect("the sign-in failure counter")
        .to_owned()
}

#[test]
fn nothing_without_a_session_and_a_session_only_for_the_admin_token() {
    let forge = Forge::start(Kind::Git);
    let server = forge.serve();

    // Every page leads to the sign-in form, which is itself a page with the headers.
    for path in [
        "/ui/",
        "/ui/deliveries/01JABCDEFGHJKMNPQRSTVWXYZ0",
        "/ui/?state=failed",
    ] {
        let answer = get(&server, path, "");
        assert_redirects_to(&answer, "/ui/sign-in", path);
        assert_security_headers(&answer, path);
    }
    assert_redirects_to(&get(&server, "/", ""), "/ui/", "/");
    let form = get(&server, "/ui/sign-in", "");
    assert_eq!(form.status, 200);
    assert_security_headers(&form, "the sign-in form");
    assert!(form.body.contains("<label for=\"token\""), "{}", form.body);
    assert!(form.body.contains("name=\"viewport\""));
    assert!(!form.body.contains("<script"), "no script at all");
    let css = get(&server, "/ui/assets/style.css", "");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));

    // A forged or tampered cookie is no session.
    assert_redirects_to(&get(&server, "/ui/", "forged"), "/ui/sign-in", "forged");

    // A wrong token (here the webhook's) is refused, slowly, and counted.
    assert_eq!(
        sign_in_failures(&server),
        "courier_ui_sign_in_failures_total 0"
    );
    let started = Instant::now();
    let refused = post_token(&server, HOOK_TOKEN);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "slowed down"
    );
    assert!(refused.header("set-cookie").is_none());
    assert!(
        refused.body.contains("not an admin or viewer token"),
        "{}",
        refused.body
    );
    assert!(
        !refused.body.contains(HOOK_TOKEN),
        "the token is not echoed"
    );
    assert_security_headers(&refused, "the refusal");
    assert_eq!(
        sign_in_failures(&server),
        "courier_ui_sign_in_failures_total 1"
    );

    // The admin token: a session cookie for the dashboard alone, not `Secure` on loopback.
    let answer = post_token(&server, ADMIN_TOKEN);
    assert_redirects_to(&answer, "/ui/", "signing in");
    let cookie = answer.header("set-cookie").unwrap();
    let attributes: Vec<&str> = cookie.split("; ").skip(1).collect();
    assert_eq!(
        attributes,
        ["Path=/ui", "Max-Age=28800", "HttpOnly", "SameSite=Strict"],
        "{cookie}"
    );
    // A page on another site posting the sign-in form (login CSRF) is refused, whether
    // the browser says so with Sec-Fetch-Site or only with Origin; the same site is not.
    let origin = format!("http://{}", server.addr);
    for (name, value) in [
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "https://attacker.example"),
    ] {
        let answer = exchange(
            server.addr,
            "POST",
            "/ui/sign-in",
            &[FORM, (name, value)],
            &format!("token={ADMIN_TOKEN}"),
        );
        assert_eq!(answer.status, 403, "{name}: {value}: {}", answer.body);
        assert!(answer.header("set-cookie").is_none(), "{name}: {value}");
    }
    let same_site = exchange(
        server.addr,
        "POST",
        "/ui/sign-in",
        &[FORM, ("Sec-Fetch-Site", "same-origin"), ("Origin", &origin)],
        &format!("token={ADMIN_TOKEN}"),
    );
    assert_redirects_to(&same_site, "/ui/", "a sign-in from the dashboard itself");
    let session = sign_in(&server);
    let page = get(&server, "/ui/", &session);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_security_headers(&page, "the deliveries page");
    assert!(page.body.contains("<h1>Deliveries</h1>"), "{}", page.body);
    assert!(!page.body.contains(ADMIN_TOKEN));
    // One changed character of its signature, and it is no session.
    let mut tampered = session.clone().into_bytes();
    tampered[50] = if tampered[50] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_redirects_to(&get(&server, "/ui/", &tampered), "/ui/sign-in", "tampered");

    // The key is kept in the data directory: a restart signs nobody out.
    common::forge::assert_no_secrets(&server);
    server.terminate_cleanly("the first server");
    let server = forge.serve_as("again.log");
    assert_eq!(
        get(&server, "/ui/", &session).status,
        200,
        "after a restart"
    );

    // Signing out clears the cookie; without it, the pages are gone again.
    let out = post_form(&server, "/ui/sign-out", &session, "");
    assert_redirects_to(&out, "/ui/sign-in", "signing out");
    let cleared = out.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with("courier_session=; Path=/ui; Max-Age=0;"),
        "{cleared}"
    );
    assert_redirects_to(&get(&server, "/ui/", ""), "/ui/sign-in", "signed out");
    common::forge::assert_no_secrets(&server);
}

#[test]
fn the_list_filters_the_page_shows_and_retry_needs_the_csrf_token() {
    let forge = Forge::start(Kind::Git);
    let server = forge.serve();
    let detail = forge.deliver_job(&server, "601", "delivered");
    let id = detail["delivery"]["id"].as_str().unwrap().to_owned();
    let session = sign_in(&server);

    let list = get(&server, "/ui/", &session).body;
    assert!(
        list.contains(&format!("href=\"/ui/deliveries/{id}\"")),
        "{list}"
    );
    assert!(
        list.contains("<span class=\"state state-delivered\">delivered</span>"),
        "{list}"
    );
    let repository = detail["delivery"]["repository"].as_str().unwrap();
    assert!(
        list.contains(&format!("<td data-label=\"Repository\">{repository}</td>")),
        "the repository: {list}"
    );
    assert!(list.contains("Job 601"), "{list}");
    // The filter form sends empty fields for "any".
    let encoded: String = url::form_urlencoded::byte_serialize(repository.as_bytes()).collect();
    let any = get(
        &server,
        &format!("/ui/?state=&hook=&repository={encoded}"),
        &session,
    )
    .body;
    assert!(any.contains(&id), "{any}");
    let delivered = get(&server, "/ui/?state=delivered&hook=5", &session).body;
    assert!(delivered.contains(&id), "{delivered}");
    assert!(delivered.contains("<option value=\"delivered\" selected>"));
    let failed = get(&server, "/ui/?state=failed", &session).body;
    assert!(!failed.contains(&id), "{failed}");
    assert!(failed.contains("No deliveries match."), "{failed}");
    let elsewhere = get(&server, "/ui/?repository=elsewhere", &session).body;
    assert!(!elsewhere.contains(&id), "{elsewhere}");
    // Connection, job id and free text (any case, `%` and `_` taken literally).
    for (query, found) in [
        ("connection=git", true),
        ("connection=github", false),
        ("job=601", true),
        ("job=60", false),
        ("q=example+DESIGN", true),
        ("q=EXPORTER", true),
        ("q=tokens-e0db", true),
        ("q=601", true),
        ("q=%25", false),
        ("q=example_design", false),
        ("q=nowhere", false),
    ] {
        let page = get(&server, &format!("/ui/?{query}"), &session).body;
        assert_eq!(page.contains(&id), found, "{query}: {page}");
        // The API takes the same filters.
        let (status, api) =
            server.request("GET", &format!("/api/deliveries?{query}"), ADMIN_TOKEN, "");
        assert_eq!(status, 200, "{query}: {api}");
        let listed = api["deliveries"].as_array().unwrap();
        assert_eq!(
            listed.iter().any(|d| d["id"] == id.as_str()),
            found,
            "{query}: {api}"
        );
    }
    // Each row names the design system with its version, the exporter and a duration.
    for shown in [
        "<td data-label=\"Design system\">Example Design System (",
        "<td data-label=\"Exporter\">Example exporter</td>",
    ] {
        assert!(list.contains(shown), "{shown}: {list}");
    }
    let duration = list
        .split_once("<td data-label=\"Duration\">")
        .and_then(|(_, rest)| rest.split_once(" s</td>"))
        .map(|(seconds, _)| seconds.parse::<f64>());
    assert!(
        matches!(duration, Some(Ok(s)) if s < 60.0),
        "a duration in seconds: {list}"
    );
    // At a glance: the queue, the last day by state, the targets.
    for shown in [
        "<dt>Waiting</dt><dd>0</dd>",
        "Deliveries of the last 24 hours, by state",
        "1 configured, 0 needing attention",
    ] {
        assert!(list.contains(shown), "{shown}: {list}");
    }
    let bad = get(&server, "/ui/?state=%3Cb%3E", &session);
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("unknown delivery state `&lt;b&gt;`"),
        "{}",
        bad.body
    );

    let page = get(&server, &format!("/ui/deliveries/{id}"), &session);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_security_headers(&page, "a delivery's page");
    let commit = detail["delivery"]["commit"].as_str().unwrap();
    for shown in [
        "Example Design System",
        "Example exporter",
        commit,
        common::forge::HEAD,
        "<th scope=\"row\">1</th>",
        "<dt>Connection</dt><dd>git</dd>",
        // Where the time went, and what changed where.
        "Where the last run's time went",
        "<th scope=\"row\">push</th>",
        "<th scope=\"row\"><code>tokens</code></th><td>0</td><td>1</td><td>0</td>",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    let took = page.header("server-timing").expect("Server-Timing");
    assert!(took.starts_with("app;dur="), "{took}");
    let token = csrf(&page.body);

    // Without the CSRF token, or with another session's, nothing is retried.
    let retry = format!("/ui/deliveries/{id}/retry");
    let other = csrf(&get(&server, &format!("/ui/deliveries/{id}"), &sign_in(&server)).body);
    assert_ne!(other, token);
    for body in [String::new(), "csrf=".to_owned(), format!("csrf={other}")] {
        let refused = post_form(&server, &retry, &session, &body);
        assert_eq!(refused.status, 403, "{body}: {}", refused.body);
        let (_, now) = server.request("GET", &format!("/api/deliveries/{id}"), ADMIN_TOKEN, "");
        assert_eq!(now["delivery"]["state"], "delivered", "{body}: {now}");
        assert_eq!(
            now["attempts"].as_array().unwrap().len(),
            1,
            "{body}: {now}"
        );
    }
    // Without a session, the form leads to sign-in.
    let unsigned = exchange(
        server.addr,
        "POST",
        &retry,
        &[FORM],
        &format!("csrf={token}"),
    );
    assert_redirects_to(&unsigned, "/ui/sign-in", "retry without a session");

    // With it: back to the delivery, which runs again.
    let retried = post_form(&server, &retry, &session, &format!("csrf={token}"));
    assert_redirects_to(&retried, &format!("/ui/deliveries/{id}"), "retry");
    let again = server.wait_finished(ADMIN_TOKEN, &id);
    assert_eq!(Server::attempt_outcomes(&again).len(), 2, "{again}");
    let page = get(&server, &format!("/ui/deliveries/{id}"), &session).body;
    assert!(page.contains("<th scope=\"row\">2</th>"), "{page}");

    // Pages of one, newest first: the link to the older page keeps the filters.
    let newer = forge.deliver_job(&server, "603", "up_to_date");
    let newer = newer["delivery"]["id"].as_str().unwrap();
    let first = get(&server, "/ui/?limit=1&hook=5", &session).body;
    assert!(first.contains(newer) && !first.contains(&id), "{first}");
    let older = format!("/ui/?hook=5&amp;limit=1&amp;after={newer}");
    assert!(first.contains(&format!("href=\"{older}\"")), "{first}");
    let second = get(&server, &older.replace("&amp;", "&"), &session).body;
    assert!(second.contains(&id) && !second.contains(newer), "{second}");
}

#[test]
fn text_from_a_payload_is_shown_as_text() {
    let forge = Forge::start(Kind::Git);
    let server = forge.serve();
    let script = "<script>alert(1)</script>";
    let breakout = "\"><img src=x onerror=alert(1)>";
    let json = |s: &str| serde_json::to_string(s).unwrap();
    let mut payload = forge.job("602");
    for (seed, hostile) in [
        ("\"Example Design System\"", json(&format!("DS {script}"))),
        ("\"A version name\"", json(&format!("V {breakout}"))),
        (
            "\"Example exporter\"",
            json(&format!("X {script}{breakout}")),
        ),
        ("\"type\": \"info\"", "\"type\": \"warning\"".to_owned()),
        (
            "\"Finished exporting source colors.pr\"",
            json(&format!("log {script}")),
        ),
    ] {
        assert!(payload.contains(seed), "{seed}");
        payload = payload.replace(seed, &hostile);
    }
    let id = server.post_event(HOOK_TOKEN, &payload);
    let session = sign_in(&server);
    wait_until("the delivery to be listed", || {
        get(&server, "/ui/", &session).body.contains(&id)
    });
    let page = get(&server, &format!("/ui/deliveries/{id}"), &session);
    assert_eq!(page.status, 200, "{}", page.body);
    let escaped_script = "&lt;script&gt;alert(1)&lt;/script&gt;";
    let escaped_breakout = "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";
    for shown in [
        format!("DS {escaped_script}"),
        format!("V {escaped_breakout}"),
        format!("X {escaped_script}{escaped_breakout}"),
        format!("log {escaped_script}"),
    ] {
        assert!(page.body.contains(&shown), "{shown}: {}", page.body);
    }
    // The list's rows and the job's page show the names too. Each page's one script is
    // the dashboard's own, from its own address.
    let list = get(&server, "/ui/", &session).body;
    assert!(
        list.contains(&format!("DS {escaped_script} (V {escaped_breakout}")),
        "{list}"
    );
    let job = format!(
        "/ui/jobs/{}",
        server.wait_finished(ADMIN_TOKEN, &id)["delivery"]["job"]
            .as_str()
            .unwrap()
    );
    let own = "<script src=\"/ui/assets/live.js\" defer></script>";
    for body in [page.body, list, get(&server, &job, &session).body] {
        assert_eq!(body.matches("<script").count(), 1, "{body}");
        let rest = body.replacen(own, "", 1);
        for raw in ["<script", "<img", "alert(1)</"] {
            assert!(!rest.contains(raw), "{raw} unescaped: {body}");
        }
    }
}

/// A viewer token (`admin.viewer_tokens`) reads the dashboard and the API but cannot
/// retry: no Retry form, a 403 for the dashboard's retry even with an admin's CSRF token,
/// and a 403 from the API's; the delivery keeps its one attempt.
#[test]
fn a_viewer_reads_but_cannot_retry() {
    let forge = Forge::start(Kind::Git);
    let server = forge.serve();
    let detail = forge.deliver_job(&server, "611", "delivered");
    let id = detail["delivery"]["id"].as_str().unwrap().to_owned();
    let page_path = format!("/ui/deliveries/{id}");

    let viewer = sign_in_with(&server, VIEWER_TOKEN);
    assert!(get(&server, "/ui/", &viewer).body.contains(&id));
    let page = get(&server, &page_path, &viewer);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        !page.body.contains("Retry") && !page.body.contains("name=\"csrf\""),
        "a viewer gets no Retry form: {}",
        page.body
    );
    // Even with a CSRF token taken from an admin's page.
    let admin_csrf = csrf(&get(&server, &page_path, &sign_in(&server)).body);
    let refused = post_form(
        &server,
        &format!("{page_path}/retry"),
        &viewer,
        &format!("csrf={admin_csrf}"),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);

    let api = format!("/api/deliveries/{id}");
    let (status, body) = http(server.addr, "GET", &api, VIEWER_TOKEN, "");
    assert_eq!(status, 200, "a viewer reads the API: {body}");
    let (status, body) = http(
        server.addr,
        "POST",
        &format!("{api}/retry"),
        VIEWER_TOKEN,
        "",
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("admin token"), "{body}");
    let (_, body) = http(server.addr, "GET", &api, ADMIN_TOKEN, "");
    let now: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(now["delivery"]["attempts"], 1, "nothing was retried: {now}");
    assert_eq!(now["delivery"]["state"], "delivered");
}

/// A job's page shows its fan-out: one delivery per target, side by side, each linking to
/// its own page; a delivery's page links back to its job.
#[test]
fn a_jobs_page_shows_every_target_it_went_to() {
    let forge = Forge::start(Kind::Git);
    let first = forge.target_yaml();
    let second = first.replace("relative_path: tokens\n", "relative_path: tokens-copy\n");
    assert_ne!(first, second);
    forge.write_config(2, &forge.hooks(&[first, second]));
    let server = forge.serve();
    let ids = server.post_event_for(HOOK_TOKEN, &forge.job("621"), 2);
    let details: Vec<_> = ids
        .iter()
        .map(|id| server.wait_finished(ADMIN_TOKEN, id))
        .collect();
    let session = sign_in(&server);

    let delivery = get(&server, &format!("/ui/deliveries/{}", ids[0]), &session).body;
    let job = details[0]["delivery"]["job"].as_str().unwrap();
    let job_path = format!("/ui/jobs/{job}");
    assert!(
        delivery.contains(&format!("href=\"{job_path}\"")),
        "the delivery links to its job: {delivery}"
    );
    let page = get(&server, &job_path, &session);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Job 621 in workspace 1"),
        "{}",
        page.body
    );
    for (id, detail) in ids.iter().zip(&details) {
        assert!(
            page.body.contains(&format!("href=\"/ui/deliveries/{id}\"")),
            "{id}: {}",
            page.body
        );
        assert_eq!(detail["delivery"]["state"], "delivered", "{detail}");
    }
    assert_eq!(
        page.body.matches("state state-delivered").count(),
        2,
        "{}",
        page.body
    );
    for missing in [
        "/ui/jobs/01ZZZZZZZZZZZZZZZZZZZZZZZZ",
        "/ui/jobs/not-an-id",
        "/ui/deliveries/01ZZZZZZZZZZZZZZZZZZZZZZZZ",
        "/ui/deliveries/not-an-id",
    ] {
        let page = get(&server, missing, &session);
        assert_eq!(page.status, 404, "{missing}");
        assert!(page.body.contains("no such "), "{missing}: {}", page.body);
    }
    assert_redirects_to(&get(&server, &job_path, ""), "/ui/sign-in", "no session");
}

#[test]
fn the_routes_page_shows_where_jobs_go_and_which_targets_need_attention() {
    let forge = Forge::start(Kind::Git);
    let hooks = format!(
        "{}  - name: \"Only built\"\n    match: {{ exporter_name: \"Example exporter\", version: \"v9\" }}\n    targets: []\n",
        forge.hooks(&[forge.target_yaml()])
    );
    forge.write_config(2, &hooks);
    let server = forge.serve();
    let session = sign_in(&server);

    let page = get(&server, "/ui/routes", &session);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_security_headers(&page, "the routes page");
    for shown in [
        "jobs whose hook id is \u{201c}5\u{201d}",
        "<th scope=\"row\"><code>git:",
        "@main:tokens</code></th>",
        "<td>git (git)</td>",
        "<code>tokens</code>",
        "none yet",
        "<h2 id=\"hook-1\">Only built</h2>",
        "jobs whose exporter name is \u{201c}Example exporter\u{201d} and version is \u{201c}v9\u{201d}",
        "No targets: matching jobs are recorded, nothing is delivered.",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(!page.body.contains(common::forge::TOKEN), "no credential");

    // A delivery, then a refused export: the target's newest delivery failed.
    let delivered = forge.deliver_job(&server, "631", "delivered");
    let delivered = delivered["delivery"]["id"].as_str().unwrap().to_owned();
    let routes = get(&server, "/ui/routes", &session).body;
    assert!(routes.contains("state state-delivered"), "{routes}");
    assert!(routes.contains(&format!("href=\"/ui/deliveries/{delivered}\"")));
    forge.serve_export(&[("../outside.css", b"x")]);
    let failed = forge.deliver_job(&server, "632", "failed");
    let failed = failed["delivery"]["id"].as_str().unwrap().to_owned();
    let routes = get(&server, "/ui/routes", &session).body;
    assert!(
        routes.contains("state state-failed")
            && routes.contains(&format!("href=\"/ui/deliveries/{failed}\"")),
        "{routes}"
    );
    let home = get(&server, "/ui/", &session).body;
    assert!(home.contains("1 configured, 1 needing attention"), "{home}");
    let attention = home
        .split_once("Targets whose newest delivery needs attention")
        .expect("the attention table")
        .1;
    let attention = attention.split_once("</table>").unwrap().0;
    assert!(attention.contains(&failed), "{attention}");
    assert!(!attention.contains(&delivered), "{attention}");

    assert_redirects_to(&get(&server, "/ui/routes", ""), "/ui/sign-in", "no session");
}

/// A delivery to a forge lists its forge calls on its page: each call's name, how often,
/// how long and how many retries, so a slow pull-request step says which call was slow.
#[test]
fn a_deliverys_page_shows_its_forge_calls() {
    let forge = Forge::start(Kind::GitHub);
    let server = forge.serve();
    let detail = forge.deliver_job(&server, "6", "delivered");
    let id = detail["delivery"]["id"].as_str().unwrap();
    let session = sign_in(&server);
    let page = get(&server, &format!("/ui/deliveries/{id}"), &session);
    assert_eq!(page.status, 200, "{}", page.body);
    let section = page
        .body
        .split_once("Forge calls of the last run</h2>")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("a forge calls section: {}", page.body));
    let calls = detail["forge_calls"].as_array().unwrap();
    assert!(!calls.is_empty(), "{detail}");
    for call in calls {
        let row = format!(
            "<th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            call["call"].as_str().unwrap(),
            call["count"],
            call["ms"],
            call["retries"],
            call["failed"]
        );
        assert!(section.contains(&row), "{row}: {section}");
    }
}
