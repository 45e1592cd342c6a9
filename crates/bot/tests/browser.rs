//! The dashboard in a real browser: headless Chromium over WebDriver against a real
//! `courier serve`, doing what a person does (sign in, filter, open a delivery, Retry,
//! sign out); axe-core checking each page's accessibility; and the screenshots in
//! `docs/screenshots/`, rewritten only with `COURIER_SCREENSHOTS=1`
//! (`scripts/screenshots.sh`).

mod common;

use std::time::{Duration, Instant};

use common::forge::{ADMIN_TOKEN, Forge, HOOK_TOKEN, Kind, VIEWER_TOKEN};
use common::serve::Server;
use common::webdriver::{Chromedriver, Session, axe_script, serious_accessibility_violations};
use serde_json::json;

/// A browser session and its driver; the session, declared first, is closed first.
struct Browser {
    session: Session,
    _driver: Chromedriver,
}

impl Browser {
    fn start() -> Browser {
        let driver = Chromedriver::start();
        let session = Session::new(driver.port, driver.profile.path());
        Browser {
            session,
            _driver: driver,
        }
    }
}

/// A world with delivery to one repository, `courier serve` and a delivered job; the
/// delivery's id.
fn delivered() -> (Forge, Server, String) {
    let forge = Forge::start(Kind::Git);
    let server = forge.serve();
    let detail = forge.deliver_job(&server, "701", "delivered");
    let id = detail["delivery"]["id"].as_str().unwrap().to_owned();
    (forge, server, id)
}

/// Types `token` into the sign-in form and sends it.
fn sign_in_with(s: &Session, token: &str) {
    s.find("#token").send_keys(token);
    s.find("main form button[type=submit]").click_to_navigate();
}

fn assert_path(s: &Session, server: &Server, path: &str) {
    assert_eq!(s.url(), format!("http://{}{path}", server.addr));
}

/// Waits up to 20 s for `done`, failing with `what` and `state()`.
fn wait_for(done: impl Fn() -> bool, what: &str, state: impl Fn() -> String) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: {}",
            state()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The attempts listed on a delivery's page.
const ATTEMPT_ROWS: &str = "section[aria-labelledby=attempts] tbody tr";

#[test]
fn sign_in_filter_open_retry_and_sign_out() {
    let (forge, server, id) = delivered();
    let browser = Browser::start();
    let s = &browser.session;
    let base = format!("http://{}", server.addr);

    // The address people are given leads to the sign-in form.
    s.goto(&format!("{base}/"));
    assert_path(s, &server, "/ui/sign-in");
    sign_in_with(s, HOOK_TOKEN);
    let refusal = s.find("p.error[role=alert]").text();
    assert!(
        refusal.contains("not an admin or viewer token"),
        "{refusal}"
    );
    sign_in_with(s, ADMIN_TOKEN);
    assert_path(s, &server, "/ui/");
    let link = format!("a[href='/ui/deliveries/{id}']");
    assert_eq!(s.find(&link).text(), "Job 701");

    // Live: a job posted now shows up in the open list without a reload; in a hidden tab
    // nothing is fetched, and it catches up once the tab is visible again.
    s.execute("window.notReloaded = true;", json!([]));
    let rows = "main a[href^='/ui/deliveries/']";
    let set_visibility = "const state = arguments[0];
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
        document.dispatchEvent(new Event('visibilitychange'));";
    s.execute(set_visibility, json!(["hidden"]));
    server.post_event(HOOK_TOKEN, &forge.job("702"));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(s.count(rows), 1, "a hidden tab does not refresh");
    s.execute(set_visibility, json!(["visible"]));
    wait_for(
        || s.count(rows) == 2,
        "the new job in the open list",
        || s.page_source(),
    );
    assert_eq!(
        s.execute("return window.notReloaded === true;", json!([])),
        json!(true)
    );

    // The page's CSP holds in a real browser: no inline script runs (WebDriver's own
    // scripts, like axe's below, are outside it).
    let inline = "const s = document.createElement('script');
        s.textContent = 'window.inlineRan = true;';
        document.head.appendChild(s);
        return window.inlineRan === true;";
    assert_eq!(s.execute(inline, json!([])), json!(false));

    // Filtering by state with the form.
    s.find("#state option[value=failed]").click();
    s.find("form.filters button").click_to_navigate();
    assert!(s.url().contains("state=failed"), "{}", s.url());
    assert!(s.find("main").text().contains("No deliveries match."));
    assert_eq!(s.count(&link), 0);
    s.find("#state option[value=delivered]").click();
    s.find("form.filters button").click_to_navigate();
    assert!(s.url().contains("state=delivered"), "{}", s.url());

    // Opening it, and Retry: a second attempt shows up (reloading until it does).
    s.find(&link).click_to_navigate();
    let page = format!("/ui/deliveries/{id}");
    assert_path(s, &server, &page);
    assert_eq!(s.count(ATTEMPT_ROWS), 1);
    s.find("form[action$='/retry'] button").click_to_navigate();
    assert_path(s, &server, &page);
    let started = Instant::now();
    while s.count(ATTEMPT_ROWS) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no second attempt after Retry: {}",
            s.page_source()
        );
        std::thread::sleep(Duration::from_millis(200));
        s.goto(&format!("{base}{page}"));
    }

    // Signing out: the dashboard is gone from this browser.
    s.find("header form button").click_to_navigate();
    assert_path(s, &server, "/ui/sign-in");
    s.goto(&format!("{base}/ui/"));
    assert_path(s, &server, "/ui/sign-in");

    // A viewer sees the same delivery, with no Retry to press.
    sign_in_with(s, VIEWER_TOKEN);
    assert_path(s, &server, "/ui/");
    s.find(&link).click_to_navigate();
    assert_path(s, &server, &page);
    assert_eq!(s.count(ATTEMPT_ROWS), 2);
    assert_eq!(
        s.count("form[action$='/retry']"),
        0,
        "a viewer has no Retry"
    );
}

/// Widths a page is checked and shown at: desktop, and a phone's.
const SIZES: [(&str, u32, u32); 2] = [("desktop", 1280, 800), ("phone", 390, 844)];

#[test]
fn every_page_is_accessible_at_desktop_and_phone_width() {
    let (forge, server, id) = delivered();
    // A second row, in another state, for the list and its counts.
    forge.deliver_job(&server, "702", "up_to_date");
    let browser = Browser::start();
    let s = &browser.session;
    let base = format!("http://{}", server.addr);
    let axe = axe_script();
    let screenshots = std::env::var_os("COURIER_SCREENSHOTS").is_some_and(|v| v == "1");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/screenshots");

    let job = server.wait_finished(ADMIN_TOKEN, &id)["delivery"]["job"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut problems = Vec::new();
    let pages = [
        ("sign-in", "/ui/sign-in".to_owned()),
        ("deliveries", "/ui/".to_owned()),
        ("delivery", format!("/ui/deliveries/{id}")),
        ("job", format!("/ui/jobs/{job}")),
        ("routes", "/ui/routes".to_owned()),
    ];
    for (name, path) in pages {
        s.goto(&format!("{base}{path}"));
        if name == "sign-in" {
            sign_in_with(s, HOOK_TOKEN);
            // The refusal too, as it is what a mistyped token shows.
            s.find("p.error[role=alert]");
        }
        for (size, width, height) in SIZES {
            s.set_window_size(width, height);
            for found in serious_accessibility_violations(s, &axe) {
                problems.push(format!("{name} at {size} width: {found}"));
            }
            // Usable on a phone: the page itself never scrolls sideways.
            let wide = "return document.documentElement.scrollWidth";
            let content = s.execute(wide, json!([])).as_u64().unwrap();
            if content > u64::from(width) {
                problems.push(format!("{name} at {size} width: {content} px wide"));
            }
            if screenshots {
                std::fs::create_dir_all(dir).unwrap();
                let file = format!("{dir}/{name}-{size}.png");
                std::fs::write(&file, s.screenshot_png()).unwrap();
            }
        }
        if name == "sign-in" {
            sign_in_with(s, ADMIN_TOKEN);
        }
    }
    assert!(
        problems.is_empty(),
        "accessibility and layout problems:\n{}",
        problems.join("\n")
    );
}
