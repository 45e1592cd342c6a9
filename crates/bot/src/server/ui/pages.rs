//! The dashboard's pages. maud escapes every value spliced in, and nothing here uses
//! `PreEscaped`: names, branches, errors and log lines all come from payloads or forges.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use courier_core::event::{JobEvent, Logs};
use maud::{DOCTYPE, Markup, html};

use courier_core::config::{Config, Match, MatchKeys};

use crate::delivery::Phase;
use crate::server::api::ListQuery;
use crate::store::{
    DeliveryDetail, DeliveryId, DeliveryState, DeliveryView, JobDetail, JobNames, Timestamp,
};

/// The queue and the targets at a glance, above the list.
pub struct Health {
    pub queue_depth: u64,
    pub oldest_queued: Option<Duration>,
    /// Deliveries created in the last 24 hours, by the state they are in now.
    pub last_day: BTreeMap<DeliveryState, u64>,
    /// How many targets the configuration has.
    pub targets: usize,
    /// The newest delivery of each target whose newest delivery needs a person (see
    /// [`DeliveryState::needs_attention`]).
    pub attention: Vec<DeliveryView>,
}

/// Every page's frame; a signed-in page offers to sign out.
fn layout(title: &str, signed_in: bool, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Courier" }
                link rel="stylesheet" href="/ui/assets/style.css";
                // Refreshes the `data-live` parts while the tab is visible; the pages work
                // without it.
                @if signed_in { script src="/ui/assets/live.js" defer {} }
            }
            body {
                header.top {
                    a.brand href="/ui/" { "Courier" }
                    @if signed_in {
                        nav aria-label="Dashboard" {
                            a href="/ui/" { "Deliveries" }
                            a href="/ui/routes" { "Routes" }
                        }
                        form method="post" action="/ui/sign-out" {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (main) }
            }
        }
    }
}

/// A page about one thing (a job, a delivery): the way back to the list, its title, then
/// `main`.
fn detail_page(title: &str, main: Markup) -> Markup {
    layout(
        title,
        true,
        html! {
            p { a href="/ui/" { "All deliveries" } }
            h1 { (title) }
            (main)
        },
    )
}

/// A table's header row, one `th scope="col"` a name.
fn column_heads(names: &[&str]) -> Markup {
    html! { thead { tr { @for name in names { th scope="col" { (name) } } } } }
}

/// A state as a word, with a class for its colour (the word carries the meaning).
fn state_badge(state: DeliveryState) -> Markup {
    html! { span class=(format!("state state-{state}")) { (state) } }
}

/// `3 s`, `5 min`, `2 h 10 min`, `4 d`: an age people read at a glance.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d", s / 86_400),
    }
}

/// A duration: tenths of a second under a minute (deliveries often take less than one),
/// else as [`human`].
fn took(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        human(d)
    }
}

/// A link only for web addresses: a stored URL is shown, never followed as `javascript:`.
fn web_link(url: &str) -> Markup {
    let web = url.starts_with("https://") || url.starts_with("http://");
    html! {
        @if web { a href=(url) rel="noreferrer" { (url) } } @else { (url) }
    }
}

fn delivery_href(id: &DeliveryId) -> String {
    format!("/ui/deliveries/{id}")
}

/// How long a delivery ran: from its first attempt to its end, or so far.
fn duration(d: &DeliveryView, now: Timestamp) -> String {
    match (d.started_at, d.finished_at) {
        (Some(started), Some(finished)) => took(started.age_at(finished)),
        (Some(started), None) => format!("{} so far", took(started.age_at(now))),
        _ => String::new(),
    }
}

/// `Design system (Release 3 v0.1)`; empty for a job recorded before names were kept.
fn design_system(names: Option<&JobNames>) -> String {
    match names {
        Some(n) if n.version.is_empty() => n.design_system.clone(),
        Some(n) => format!("{} ({})", n.design_system, n.version),
        None => String::new(),
    }
}

pub fn sign_in(refused: Option<&str>) -> Markup {
    layout(
        "Sign in",
        false,
        html! {
            h1 { "Sign in" }
            @if let Some(refused) = refused {
                p.error role="alert" { (refused) }
            }
            form.sign-in method="post" action="/ui/sign-in" {
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub fn problem(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    layout(
        title,
        true,
        html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            p { a href="/ui/" { "Back to the deliveries" } }
        },
    )
}

fn health(health: &Health) -> Markup {
    html! {
        section.health aria-labelledby="health" {
            h2 #health { "At a glance" }
            dl.facts {
                dt { "Waiting" } dd { (health.queue_depth) }
                dt { "Oldest waiting" }
                dd { @match health.oldest_queued { Some(age) => (human(age)), None => "none" } }
                dt { "Targets" }
                dd {
                    (health.targets) " configured, "
                    (health.attention.len()) " needing attention "
                    a href="/ui/routes" { "(all targets)" }
                }
            }
            table.counts {
                caption { "Deliveries of the last 24 hours, by state" }
                (column_heads(&["State", "Deliveries"]))
                tbody {
                    @for (state, n) in &health.last_day {
                        tr { th scope="row" { (state_badge(*state)) } td { (n) } }
                    }
                    @if health.last_day.is_empty() {
                        tr { td colspan="2" { "None." } }
                    }
                }
            }
            @if !health.attention.is_empty() {
                (deliveries_table(&health.attention, "Targets whose newest delivery needs attention"))
            }
        }
    }
}

fn filters(query: &ListQuery, connections: &[&str]) -> Markup {
    let chosen = query.state.as_deref().unwrap_or("");
    let connection = query.connection.as_deref().unwrap_or("");
    html! {
        form.filters method="get" action="/ui/" {
            // Each label with its field, so that wrapping on a phone keeps them together.
            span.field {
                label for="state" { "State" }
                select #state name="state" {
                    option value="" selected[chosen.is_empty()] { "any" }
                    @for state in DeliveryState::ALL {
                        option value=(state) selected[chosen == state.as_str()] { (state) }
                    }
                }
            }
            span.field {
                label for="hook" { "Hook" }
                input #hook name="hook" value=(query.hook.as_deref().unwrap_or(""));
            }
            span.field {
                label for="repository" { "Repository" }
                input #repository name="repository" value=(query.repository.as_deref().unwrap_or(""));
            }
            span.field {
                label for="connection" { "Connection" }
                select #connection name="connection" {
                    option value="" selected[connection.is_empty()] { "any" }
                    @for name in connections {
                        option value=(name) selected[connection == *name] { (name) }
                    }
                }
            }
            span.field {
                label for="job" { "Job id" }
                input #job name="job" value=(query.job.as_deref().unwrap_or(""));
            }
            span.field {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(query.q.as_deref().unwrap_or(""));
            }
            button type="submit" { "Filter" }
        }
    }
}

/// The link to the page after this one, keeping the filters.
fn next_href(query: &ListQuery, after: &DeliveryId) -> String {
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("state", &query.state),
        ("hook", &query.hook),
        ("repository", &query.repository),
        ("connection", &query.connection),
        ("job", &query.job),
        ("q", &query.q),
    ] {
        if let Some(value) = value {
            params.append_pair(key, value);
        }
    }
    if let Some(limit) = query.limit {
        params.append_pair("limit", &limit.to_string());
    }
    params.append_pair("after", after.as_str());
    format!("/ui/?{}", params.finish())
}

pub fn deliveries(
    query: &ListQuery,
    connections: &[&str],
    list: &[DeliveryView],
    next: Option<&DeliveryId>,
    state: &Health,
) -> Markup {
    layout(
        "Deliveries",
        true,
        html! {
            h1 { "Deliveries" }
            div #live-health data-live { (health(state)) }
            (filters(query, connections))
            div #live-list data-live {
            @if list.is_empty() {
                p { "No deliveries match." }
            } @else {
                (deliveries_table(list, "Newest first"))
            }
            @if let Some(after) = next {
                nav aria-label="Pages" { a href=(next_href(query, after)) { "Older deliveries" } }
            }
            }
        },
    )
}

/// A job's fan-out: every target it was routed to, side by side.
pub fn job(detail: &JobDetail, event: Option<&JobEvent>) -> Markup {
    let j = &detail.job;
    let title = format!("Job {} in workspace {}", j.job_id, j.workspace_id);
    detail_page(
        &title,
        html! {
            dl.facts {
                dt { "Status" } dd { (j.status) }
                @match event {
                    Some(event) => (event_facts(event)),
                    None => { dt { "Hook" } dd { (j.hook_id) } },
                }
                dt { "Received" } dd { (j.received_at) }
            }
            div #live-job data-live {
                @if detail.deliveries.is_empty() {
                    p { "Routed to no target." }
                } @else {
                    (deliveries_table(&detail.deliveries, "Its deliveries, one per target"))
                }
            }
        },
    )
}

/// Deliveries as rows: state, job, design system and version, exporter, hook, repository,
/// branch, pull request, attempts, age and duration. The list, the health summary and a
/// job's page show the same table.
fn deliveries_table(list: &[DeliveryView], caption: &str) -> Markup {
    let now = Timestamp::now();
    html! {
        // Eleven columns may not fit a narrow desktop window: the table scrolls on its
        // own (a phone stacks the rows instead).
        div.scroll tabindex="0" role="region" aria-label=(caption) {
        table.deliveries {
            caption { (caption) }
            (column_heads(&[
                "State", "Job", "Design system", "Exporter", "Hook", "Repository", "Branch",
                "Pull request", "Attempts", "Age", "Duration",
            ]))
            tbody {
                @for d in list {
                    tr {
                        // `data-label`: the column's name on a phone, where
                        // the rows are stacked and the header hidden.
                        td { (state_badge(d.state)) }
                        th scope="row" {
                            a href=(delivery_href(&d.id)) { "Job " (d.job_id) }
                        }
                        td data-label="Design system" { (design_system(d.names.as_ref())) }
                        td data-label="Exporter" { @if let Some(n) = &d.names { (n.exporter) } }
                        td data-label="Hook" { (d.hook_id) }
                        td data-label="Repository" { (d.repository) }
                        td data-label="Branch" { code { (d.head_branch) } }
                        td data-label="Pull request" { @if let Some(pr) = &d.pr_url { (web_link(pr)) } }
                        td data-label="Attempts" { (d.attempts) }
                        td data-label="Age" { (human(d.created_at.age_at(now))) }
                        td data-label="Duration" { (duration(d, now)) }
                    }
                }
            }
        }
        }
    }
}

fn opt_time(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "—".to_owned(), |t| t.to_string())
}

/// Log levels worth showing on a delivery: what went wrong or may have.
fn notable(level: &str) -> bool {
    ["warning", "warn", "error", "fatal"]
        .iter()
        .any(|l| level.eq_ignore_ascii_case(l))
}

fn event_facts(event: &JobEvent) -> Markup {
    html! {
        dt { "Design system" } dd { (event.design_system.name) " (" (event.design_system.id) ")" }
        dt { "Version" } dd { (event.version.name) " " (event.version.version) }
        dt { "Exporter" } dd { (event.exporter.name) " (" (event.exporter.id) ")" }
        dt { "Hook" } dd { (event.hook.name) " (" (event.hook.id) ")" }
    }
}

fn job_log(event: &JobEvent) -> Markup {
    let Logs::Inline { lines, .. } = &event.job.logs else {
        return html! {};
    };
    let shown: Vec<_> = lines.iter().filter(|l| notable(&l.level)).collect();
    html! {
        @if !shown.is_empty() {
            section aria-labelledby="log" {
                h2 #log { "Exporter's warnings and errors" }
                ul.log {
                    @for line in shown {
                        li { span.level { (line.level) } " " (line.message) }
                    }
                }
            }
        }
    }
}

/// How long each phase of the last run took, in the order they run (the total last).
fn phase_timings(timings: &BTreeMap<String, u64>) -> Markup {
    let order = |phase: &str| Phase::ALL.iter().position(|p| p.word() == phase);
    let mut phases: Vec<_> = timings
        .iter()
        .filter(|(phase, _)| *phase != "total")
        .collect();
    phases.sort_by_key(|(phase, _)| order(phase).unwrap_or(usize::MAX));
    html! {
        section aria-labelledby="timings" {
            h2 #timings { "Where the last run's time went" }
            table.counts {
                (column_heads(&["Phase", "Milliseconds"]))
                tbody {
                    @for (phase, ms) in phases { tr { th scope="row" { (phase) } td { (ms) } } }
                    @if let Some(total) = timings.get("total") {
                        tr { th scope="row" { "total" } td { (total) } }
                    }
                }
            }
        }
    }
}

/// The last run's forge calls, one row per call name in the order first called.
fn forge_calls(detail: &DeliveryDetail) -> Markup {
    html! {
        section aria-labelledby="forge-calls" {
            h2 #forge-calls { "Forge calls of the last run" }
            div.scroll tabindex="0" role="region" aria-label="Forge calls of the last run" {
                table.counts {
                    (column_heads(&["Call", "Times", "Milliseconds", "Retries", "Failed"]))
                    tbody {
                        @for call in &detail.forge_calls {
                            tr {
                                th scope="row" { (call.call) }
                                td { (call.count) } td { (call.ms) }
                                td { (call.retries) } td { (call.failed) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The export's changes by directory.
fn directories(detail: &DeliveryDetail) -> Markup {
    html! {
        section aria-labelledby="directories" {
            h2 #directories { "Changes by directory" }
            div.scroll tabindex="0" role="region" aria-label="Changes by directory" {
                table {
                    (column_heads(&["Directory", "Added", "Changed", "Deleted"]))
                    tbody {
                        @for dir in &detail.directories {
                            tr {
                                th scope="row" { code { (dir.name) } }
                                td { (dir.added) } td { (dir.modified) } td { (dir.deleted) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The routes: each entry of `hooks` with what it matches and where it delivers, and each
/// target's newest delivery. Only names, repositories and paths: a connection's
/// credentials are not part of what is shown.
pub fn routes(config: &Config, last: &BTreeMap<String, DeliveryView>) -> Markup {
    let now = Timestamp::now();
    layout(
        "Routes",
        true,
        html! {
            h1 { "Routes" }
            p {
                "Each entry of " code { "hooks" } ", in file order. A job goes to the targets "
                "of every entry whose match fits it."
            }
            @if config.hooks.is_empty() { p { "No hook entries: every job is recorded as unrouted." } }
            @for (h, entry) in config.hooks.iter().enumerate() {
                section aria-labelledby=(format!("hook-{h}")) {
                    h2 id=(format!("hook-{h}")) {
                        @match &entry.name { Some(name) => (name), None => { "Entry " (h + 1) } }
                    }
                    p { "Matches " (describe_match(&entry.matcher)) "." }
                    @if entry.targets.is_empty() {
                        p { "No targets: matching jobs are recorded, nothing is delivered." }
                    } @else {
                        div.scroll tabindex="0" role="region" aria-label=(format!("Targets of entry {}", h + 1)) {
                        table {
                            (column_heads(&[
                                "Target", "Connection", "Repository", "Base branch", "Path",
                                "Newest delivery",
                            ]))
                            tbody {
                                @for t in &entry.targets {
                                    tr {
                                        th scope="row" { code { (t.id) } }
                                        td {
                                            (t.connection) " ("
                                            (config.connection(t).kind.name()) ")"
                                        }
                                        td { (t.repository) }
                                        td {
                                            @if t.branch_from_remote { "the default branch" }
                                            @else { code { (t.branch) } }
                                        }
                                        td {
                                            @match &t.relative_path {
                                                Some(path) => code { (path) },
                                                None => "(root)",
                                            }
                                        }
                                        td {
                                            @match last.get(&t.id) {
                                                Some(d) => {
                                                    (state_badge(d.state)) " "
                                                    a href=(delivery_href(&d.id)) {
                                                        (human(d.created_at.age_at(now))) " ago"
                                                    }
                                                },
                                                None => "none yet",
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        }
                    }
                }
            }
        },
    )
}

/// `every job`, or `jobs whose hook id is 5 and exporter name is Tokens`.
fn describe_match(matcher: &Match) -> String {
    let Match::Keys(keys) = matcher else {
        return "every job".to_owned();
    };
    let MatchKeys {
        workspace_id,
        workspace_name,
        hook_id,
        hook_name,
        exporter_id,
        exporter_name,
        design_system_id,
        design_system_name,
        version_id,
        version_name,
        version,
    } = keys;
    let parts: Vec<String> = [
        ("workspace id", workspace_id),
        ("workspace name", workspace_name),
        ("hook id", hook_id),
        ("hook name", hook_name),
        ("exporter id", exporter_id),
        ("exporter name", exporter_name),
        ("design system id", design_system_id),
        ("design system name", design_system_name),
        ("version id", version_id),
        ("version name", version_name),
        ("version", version),
    ]
    .into_iter()
    .filter_map(|(what, value)| {
        value
            .as_ref()
            .map(|v| format!("{what} is \u{201c}{v}\u{201d}"))
    })
    .collect();
    format!("jobs whose {}", parts.join(" and "))
}

/// A delivery's page; `csrf` is the admin's form token, `None` for a viewer (no Retry).
pub fn delivery(csrf: Option<&str>, detail: &DeliveryDetail, event: Option<&JobEvent>) -> Markup {
    let d = &detail.delivery;
    let title = format!("Delivery {}", d.id);
    detail_page(
        &title,
        html! {
            div #live-facts data-live {
            dl.facts {
                dt { "State" } dd { (state_badge(d.state)) }
                dt { "Job" } dd { a href=(format!("/ui/jobs/{}", d.job)) { (d.job_id) " in workspace " (d.workspace_id) } }
                @match event {
                    Some(event) => (event_facts(event)),
                    None => {
                        @if let Some(names) = &d.names {
                            dt { "Design system" } dd { (design_system(Some(names))) }
                            dt { "Exporter" } dd { (names.exporter) }
                        }
                        dt { "Hook" } dd { (d.hook_id) }
                    },
                }
                dt { "Target" } dd { code { (d.target_key) } }
                @if let Some(connection) = &d.connection { dt { "Connection" } dd { (connection) } }
                dt { "Repository" } dd { (d.repository) }
                dt { "Branch" } dd { code { (d.head_branch) } }
                dt { "Pull request" } dd { @match &d.pr_url { Some(pr) => (web_link(pr)), None => "none" } }
                dt { "Commit" } dd { @match &d.commit { Some(c) => code { (c) }, None => "none" } }
                @if let Some(files) = &d.files {
                    dt { "Files" }
                    dd { (files.added) " added, " (files.modified) " changed, " (files.deleted) " deleted" }
                }
                dt { "Attempts" } dd { (d.attempts) }
                dt { "Created" } dd { (d.created_at) }
                dt { "Started" } dd { (opt_time(d.started_at)) }
                dt { "Finished" } dd { (opt_time(d.finished_at)) }
                dt { "Duration" } dd { (duration(d, Timestamp::now())) }
                @if let Some(next) = d.next_attempt_at { dt { "Next attempt" } dd { (next) } }
                @if let Some(newer) = &d.superseded_by {
                    dt { "Superseded by" } dd { a href=(delivery_href(newer)) { "delivery " (newer) } }
                } @else if let Some(error) = &d.last_error {
                    dt { "Last error" } dd.error { (error) }
                }
            }
            }
            @if let Some(csrf) = csrf {
                form method="post" action=(format!("{}/retry", delivery_href(&d.id))) {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Retry" }
                }
            }
            div #live-attempts data-live {
            section aria-labelledby="attempts" {
                h2 #attempts { "Attempts" }
                @if detail.attempts.is_empty() {
                    p { "None yet." }
                } @else {
                    // Scrolls sideways on its own on a phone, not the page; focusable, so
                    // a keyboard can scroll it too.
                    div.scroll tabindex="0" role="region" aria-label="Attempts table" {
                        table {
                            (column_heads(&["#", "Started", "Finished", "Outcome", "Error", "Worker"]))
                            tbody {
                                @for a in &detail.attempts {
                                    tr {
                                        th scope="row" { (a.number) }
                                        td { (a.started_at) }
                                        td { (opt_time(a.finished_at)) }
                                        td { (a.outcome.as_deref().unwrap_or("running")) }
                                        td.error { (a.error.as_deref().unwrap_or("")) }
                                        td { (a.owner) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            }
            @if let Some(timings) = &d.timings { (phase_timings(timings)) }
            @if !detail.forge_calls.is_empty() { (forge_calls(detail)) }
            @if !detail.directories.is_empty() { (directories(detail)) }
            @if !d.warnings.is_empty() {
                section aria-labelledby="warnings" {
                    h2 #warnings { "Warnings" }
                    ul { @for w in &d.warnings { li { (w) } } }
                }
            }
            @if let Some(event) = event { (job_log(event)) }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(human(Duration::from_secs(5)), "5 s");
        assert_eq!(human(Duration::from_secs(125)), "2 min");
        assert_eq!(human(Duration::from_secs(3 * 3600 + 600)), "3 h 10 min");
        assert_eq!(human(Duration::from_secs(3 * 86_400)), "3 d");
        assert_eq!(took(Duration::from_millis(185)), "0.2 s");
        assert_eq!(took(Duration::from_secs(61)), "1 min");
    }

    #[test]
    fn only_web_addresses_are_links() {
        assert!(
            web_link("https://forge/pr/1")
                .into_string()
                .contains("href")
        );
        let hostile = web_link("javascript:alert(1)").into_string();
        assert!(!hostile.contains("href"), "{hostile}");
    }
}
