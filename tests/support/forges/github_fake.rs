//! A stateful fake of the GitHub REST API (and the one GraphQL mutation Courier sends),
//! served by axum on 127.0.0.1:0 so the real octocrab client drives it over HTTP.
//!
//! It models repositories, branches, pull requests (open / closed / merged, draft, head,
//! base, title, body), labels, requested reviewers and teams, assignees, comments, the
//! repository's "allow auto-merge" setting, personal tokens and a GitHub App (JWT checked
//! against the App's public key, installation tokens minted with an expiry). Faults are
//! scripted per route (`enqueue_fault`); a request can be held mid-flight (`hold`), before or
//! after the fake applies it, so a test can crash the client at an exact step. Every request
//! is recorded for the contract check ([`GitHubFake::assert_contract`]).

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::contract::{Contract, RecordedRequest, percent_decode};
pub use super::fault::Fault;
use super::hold::Holds;
pub use super::hold::{Hold, HoldMode};
use super::{answer, tip_of};

/// Operations Courier calls that GitHub's REST description (tests/contracts/github.json)
/// does not contain; the fake checks their shape by hand.
pub const OUTSIDE_REST_DESCRIPTION: &[(&str, &str)] = &[
    ("POST", "/graphql"),
    ("POST", "/api/graphql"),
    ("GET", "/repos/{owner}/{repo}/installation"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct FakePr {
    pub number: u64,
    pub node_id: String,
    /// `open` or `closed`.
    pub state: String,
    pub merged: bool,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub draft: bool,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    pub assignees: Vec<String>,
    pub comments: Vec<(u64, String)>,
    pub auto_merge: bool,
}

#[derive(Default)]
struct FakeRepo {
    branches: BTreeSet<String>,
    /// Branch tips a test set; others get one made up from the name (`tip_of`).
    tips: HashMap<String, String>,
    pulls: Vec<FakePr>,
    allow_auto_merge: bool,
    collaborators: BTreeSet<String>,
    teams: BTreeSet<String>,
    installation: Option<u64>,
}

struct FakeApp {
    app_id: u64,
    public_key_pem: String,
    token_ttl: Duration,
}

#[derive(Default)]
struct FakeState {
    repos: HashMap<String, FakeRepo>,
    tokens: HashSet<String>,
    minted: Vec<(String, SystemTime)>,
    app: Option<FakeApp>,
    faults: HashMap<(String, String), VecDeque<Fault>>,
    holds: Arc<Holds>,
    requests: Vec<RecordedRequest>,
    hand_check_violations: Vec<String>,
    next_id: u64,
}

pub struct GitHubFake {
    origin: String,
    prefix: String,
    state: Arc<Mutex<FakeState>>,
    server: tokio::task::JoinHandle<()>,
    contract_checked: std::sync::atomic::AtomicBool,
}

impl Drop for GitHubFake {
    /// A test that forgot [`GitHubFake::assert_contract`] still has its requests checked:
    /// "every request the fake receives" holds without relying on each test's last line.
    fn drop(&mut self) {
        self.server.abort();
        let unchecked = !self
            .contract_checked
            .load(std::sync::atomic::Ordering::SeqCst);
        if unchecked && !std::thread::panicking() && !self.requests().is_empty() {
            self.assert_contract();
        }
    }
}

/// The routes the fake serves, named by the description's templates.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/repos/{owner}/{repo}/pulls"),
    ("POST", "/repos/{owner}/{repo}/pulls"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    (
        "POST",
        "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers",
    ),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels"),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/assignees",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    ),
    ("GET", "/repos/{owner}/{repo}/git/ref/{ref}"),
    ("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}"),
    ("GET", "/repos/{owner}/{repo}/installation"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
];

impl GitHubFake {
    /// github.com layout: REST at the root, GraphQL at `/graphql`.
    pub async fn start() -> GitHubFake {
        GitHubFake::start_at("").await
    }

    /// GitHub Enterprise Server layout: REST under `/api/v3`, GraphQL at `/api/graphql`.
    pub async fn start_enterprise() -> GitHubFake {
        GitHubFake::start_at("/api/v3").await
    }

    async fn start_at(prefix: &str) -> GitHubFake {
        let state = Arc::new(Mutex::new(FakeState {
            next_id: 1000,
            ..FakeState::default()
        }));
        let shared = Shared {
            state: state.clone(),
            prefix: prefix.to_owned(),
        };
        let app = Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        GitHubFake {
            origin,
            prefix: prefix.to_owned(),
            state,
            server,
            contract_checked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// What to configure as the provider's API URL.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.origin, self.prefix)
    }

    fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn accept_token(&self, token: &str) {
        self.with(|s| s.tokens.insert(token.to_owned()));
    }

    /// A repository with a `main` branch.
    pub fn add_repo(&self, slug: &str) {
        self.with(|s| {
            s.repos
                .entry(slug.to_owned())
                .or_default()
                .branches
                .insert("main".into())
        });
    }

    pub fn add_branch(&self, slug: &str, branch: &str) {
        self.with(|s| repo_mut(s, slug).branches.insert(branch.to_owned()));
    }

    pub fn has_branch(&self, slug: &str, branch: &str) -> bool {
        self.with(|s| repo_mut(s, slug).branches.contains(branch))
    }

    /// The commit a branch points at, if it exists.
    pub fn branch_tip(&self, slug: &str, branch: &str) -> Option<String> {
        self.with(|s| {
            let repo = repo_mut(s, slug);
            repo.branches
                .contains(branch)
                .then(|| tip_of(&repo.tips, branch))
        })
    }

    /// Points a branch at `sha` (creating it), as a push would.
    pub fn move_branch(&self, slug: &str, branch: &str, sha: &str) {
        self.with(|s| {
            let repo = repo_mut(s, slug);
            repo.branches.insert(branch.to_owned());
            repo.tips.insert(branch.to_owned(), sha.to_owned());
        });
    }

    pub fn add_collaborator(&self, slug: &str, login: &str) {
        self.with(|s| repo_mut(s, slug).collaborators.insert(login.to_owned()));
    }

    pub fn add_team(&self, slug: &str, team: &str) {
        self.with(|s| repo_mut(s, slug).teams.insert(team.to_owned()));
    }

    pub fn set_auto_merge_allowed(&self, slug: &str, allowed: bool) {
        self.with(|s| repo_mut(s, slug).allow_auto_merge = allowed);
    }

    /// Adds a pull request as if someone had opened it earlier; `state` is `open`,
    /// `closed` or `merged`. Creates the head branch.
    pub fn seed_pr(
        &self,
        slug: &str,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
        state: &str,
    ) -> u64 {
        self.with(|s| {
            let number = next_number(s);
            let repo = repo_mut(s, slug);
            repo.branches.insert(head.to_owned());
            repo.pulls.push(FakePr {
                number,
                node_id: node_id(slug, number),
                state: if state == "open" { "open" } else { "closed" }.into(),
                merged: state == "merged",
                title: title.into(),
                body: body.into(),
                head: head.into(),
                base: base.into(),
                draft: false,
                labels: vec![],
                reviewers: vec![],
                team_reviewers: vec![],
                assignees: vec![],
                comments: vec![],
                auto_merge: false,
            });
            number
        })
    }

    pub fn pr(&self, slug: &str, number: u64) -> FakePr {
        self.with(|s| {
            repo_mut(s, slug)
                .pulls
                .iter()
                .find(|p| p.number == number)
                .cloned()
                .unwrap_or_else(|| panic!("no PR #{number} in {slug}"))
        })
    }

    pub fn prs(&self, slug: &str) -> Vec<FakePr> {
        self.with(|s| repo_mut(s, slug).pulls.clone())
    }

    /// The next request to `method template` (a route of [`ROUTES`], e.g.
    /// `"POST", "/repos/{owner}/{repo}/pulls"`) gets `fault` instead of its answer.
    pub fn enqueue_fault(&self, method: &str, template: &str, fault: Fault) {
        assert!(
            ROUTES.contains(&(method, template)) || template.ends_with("graphql"),
            "the fake has no route {method} {template}"
        );
        self.with(|s| {
            s.faults
                .entry((method.to_owned(), template.to_owned()))
                .or_default()
                .push_back(fault)
        });
    }

    /// Holds the next request to `method template` (a route of [`ROUTES`]) until the
    /// returned [`Hold`] is released, before or after applying it, so a test can stop
    /// the client at that exact step (kill it, say) and see what the forge is left with.
    /// Later requests to the route pass.
    pub fn hold(&self, method: &str, template: &str, mode: HoldMode) -> Hold {
        assert!(
            ROUTES.contains(&(method, template)) || template.ends_with("graphql"),
            "the fake has no route {method} {template}"
        );
        self.with(|s| s.holds.clone())
            .add(format!("{method} {template}"), mode)
    }

    /// Lets the App with this public key authenticate; installation tokens live `token_ttl`.
    pub fn register_app(&self, app_id: u64, public_key_pem: &str, token_ttl: Duration) {
        self.with(|s| {
            s.app = Some(FakeApp {
                app_id,
                public_key_pem: public_key_pem.to_owned(),
                token_ttl,
            })
        });
    }

    pub fn install_app(&self, slug: &str, installation_id: u64) {
        self.with(|s| repo_mut(s, slug).installation = Some(installation_id));
    }

    /// Invalidates every installation token minted so far (as a key rotation would).
    pub fn revoke_minted_tokens(&self) {
        self.with(|s| {
            for (_, expiry) in s.minted.iter_mut() {
                *expiry = UNIX_EPOCH;
            }
        });
    }

    pub fn minted_tokens(&self) -> Vec<String> {
        self.with(|s| s.minted.iter().map(|(t, _)| t.clone()).collect())
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.with(|s| s.requests.clone())
    }

    /// `"METHOD /path"` of every request so far, queries left out.
    pub fn request_lines(&self) -> Vec<String> {
        self.with(|s| {
            s.requests
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect()
        })
    }

    /// Every recorded request conforms to GitHub's REST description, and the GraphQL and
    /// App requests passed the fake's hand checks.
    pub fn assert_contract(&self) {
        self.contract_checked
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let requests = self.requests();
        assert!(!requests.is_empty(), "no requests recorded");
        let contract = Contract::github().with_prefix(&self.prefix);
        let violations = contract.check_all(&requests, OUTSIDE_REST_DESCRIPTION);
        let mut hand = self.with(|s| s.hand_check_violations.clone());
        // GitHub asks every client to send these; octocrab and Courier's client layer add
        // them, and a refactor that lost them would go unnoticed against a lenient fake.
        for request in &requests {
            let header = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            if header("accept") != Some("application/vnd.github+json") {
                hand.push(format!("{request}: accept is {:?}", header("accept")));
            }
            if header("x-github-api-version").is_none() {
                hand.push(format!("{request}: no x-github-api-version"));
            }
            let agents = request
                .headers
                .iter()
                .filter(|(n, _)| n == "user-agent")
                .count();
            if agents != 1 {
                hand.push(format!(
                    "{request}: {agents} user-agent headers, GitHub wants one"
                ));
            }
        }
        assert!(
            violations.is_empty() && hand.is_empty(),
            "contract violations:\n{}\n{}",
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            hand.join("\n")
        );
    }
}

fn repo_mut<'s>(state: &'s mut FakeState, slug: &str) -> &'s mut FakeRepo {
    state
        .repos
        .get_mut(slug)
        .unwrap_or_else(|| panic!("the fake has no repository {slug}"))
}

fn next_number(state: &mut FakeState) -> u64 {
    // Issue and PR numbers share one sequence per repository on GitHub; one global
    // sequence is enough for the fake and keeps numbers distinct across repos.
    state.next_id += 1;
    state.next_id - 1000
}

fn node_id(slug: &str, number: u64) -> String {
    format!("PR_fake_{}_{number}", slug.replace('/', "_"))
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<FakeState>>,
    prefix: String,
}

fn message(status: u16, text: &str) -> Response {
    answer(
        status,
        json!({ "message": text, "documentation_url": "https://docs.github.com/rest" }),
    )
}

fn match_route(wanted: &str, path: &str) -> Option<(&'static str, &'static str, Vec<String>)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (method, template) in ROUTES.iter().filter(|(m, _)| *m == wanted) {
        let segments: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        let mut params = Vec::new();
        let mut ok = true;
        for (i, segment) in segments.iter().enumerate() {
            if *segment == "{ref}" {
                // Refs span segments (`heads/feature/x`).
                match parts.get(i..) {
                    Some(rest) if !rest.is_empty() => params.push(
                        rest.iter()
                            .map(|p| percent_decode(p))
                            .collect::<Vec<_>>()
                            .join("/"),
                    ),
                    _ => ok = false,
                }
                return ok.then_some((method, template, params));
            }
            match parts.get(i) {
                Some(part) if segment.starts_with('{') => params.push(percent_decode(part)),
                Some(part) if part == segment => {}
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if ok && parts.len() == segments.len() {
            return Some((method, template, params));
        }
    }
    None
}

/// The route a request is for: `(method, template, parameters)`, GraphQL included.
fn route_for(
    prefix: &str,
    method: &Method,
    path: &str,
) -> Option<(&'static str, &'static str, Vec<String>)> {
    let graphql_path = match prefix.strip_suffix("/v3") {
        Some(root) => format!("{root}/graphql"),
        None => format!("{prefix}/graphql"),
    };
    if path == graphql_path && method == Method::POST {
        Some(("POST", "/graphql", Vec::new()))
    } else {
        path.strip_prefix(prefix)
            .and_then(|p| match_route(method.as_str(), p))
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = route_for(&shared.prefix, &method, uri.path()).map(|(m, t, _)| format!("{m} {t}"));
    let holds = shared.state.lock().unwrap().holds.clone();
    holds
        .answer(route, || respond(shared, method, uri, headers, body))
        .await
}

async fn respond(
    shared: Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .unwrap_or_else(|e| Value::String(format!("<not JSON: {e}>"))),
        )
    };
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        headers: headers
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "authorization" | "cookie"))
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("<binary>").to_owned()))
            .collect(),
        body: json_body.clone(),
    };
    let route = route_for(&shared.prefix, &method, &path);
    let fault = {
        let mut state = shared.state.lock().unwrap();
        state.requests.push(recorded);
        route.as_ref().and_then(|(m, t, _)| {
            let key = (
                m.to_string(),
                if *t == "/graphql" {
                    "/graphql".to_owned()
                } else {
                    t.to_string()
                },
            );
            state.faults.get_mut(&key).and_then(VecDeque::pop_front)
        })
    };
    if let Some(fault) = fault {
        return fault
            .answer(
                |m| json!({ "message": m, "documentation_url": "https://docs.github.com/rest" }),
            )
            .await;
    }
    let Some((_, template, params)) = route else {
        return message(404, "Not Found");
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .unwrap_or("")
        .to_owned();
    let mut state = shared.state.lock().unwrap();
    let app_route =
        template == "/repos/{owner}/{repo}/installation" || template.starts_with("/app/");
    if app_route {
        if let Err(why) = verify_jwt(&state, &bearer) {
            return message(
                401,
                &format!("A JSON web token could not be decoded ({why})"),
            );
        }
    } else {
        let now = SystemTime::now();
        let valid = state.tokens.contains(&bearer)
            || state
                .minted
                .iter()
                .any(|(t, exp)| *t == bearer && *exp > now);
        if !valid {
            return message(401, "Bad credentials");
        }
    }
    let body = json_body.unwrap_or(Value::Null);
    if template == "/graphql" {
        return graphql(&mut state, &body);
    }
    if template.starts_with("/app/") {
        return mint(&mut state, &params[0], &body);
    }
    let slug = format!("{}/{}", params[0], params[1]);
    if !state.repos.contains_key(&slug) {
        return message(404, "Not Found");
    }
    let number = params.get(2).and_then(|n| n.parse::<u64>().ok());
    let origin_url = "https://github.example";
    match (method.as_str(), template) {
        ("GET", "/repos/{owner}/{repo}/installation") => match state.repos[&slug].installation {
            Some(id) => answer(
                200,
                json!({ "id": id, "app_id": state.app.as_ref().map(|a| a.app_id) }),
            ),
            None => message(404, "Not Found"),
        },
        ("GET", "/repos/{owner}/{repo}/pulls") => {
            let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let wanted_state = get("state").unwrap_or_else(|| "open".into());
            let head = get("head");
            let base = get("base");
            let ascending = get("direction").as_deref() == Some("asc");
            let mut pulls: Vec<Value> = state.repos[&slug]
                .pulls
                .iter()
                .filter(|p| wanted_state == "all" || p.state == wanted_state)
                .filter(|p| match &head {
                    Some(h) => *h == format!("{}:{}", params[0], p.head),
                    None => true,
                })
                .filter(|p| base.as_ref().is_none_or(|b| *b == p.base))
                .map(|p| pull_json(&slug, p, origin_url))
                .collect();
            if !ascending {
                pulls.reverse();
            }
            answer(200, Value::Array(pulls))
        }
        ("POST", "/repos/{owner}/{repo}/pulls") => {
            let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
            let (Some(title), Some(head), Some(base)) = (text("title"), text("head"), text("base"))
            else {
                return answer(
                    422,
                    json!({ "message": "Validation Failed", "errors": [{ "resource": "PullRequest", "code": "missing_field" }] }),
                );
            };
            let repo = repo_mut(&mut state, &slug);
            for (field, branch) in [("head", &head), ("base", &base)] {
                if !repo.branches.contains(branch) {
                    return answer(
                        422,
                        json!({ "message": "Validation Failed", "errors": [{ "resource": "PullRequest", "field": field, "code": "invalid" }] }),
                    );
                }
            }
            if repo
                .pulls
                .iter()
                .any(|p| p.state == "open" && p.head == head && p.base == base)
            {
                return answer(
                    422,
                    json!({ "message": "Validation Failed", "errors": [{ "resource": "PullRequest", "code": "custom", "message": format!("A pull request already exists for {}:{head}.", params[0]) }] }),
                );
            }
            let number = next_number(&mut state);
            let pr = FakePr {
                number,
                node_id: node_id(&slug, number),
                state: "open".into(),
                merged: false,
                title,
                body: text("body").unwrap_or_default(),
                head,
                base,
                draft: body.get("draft").and_then(Value::as_bool).unwrap_or(false),
                labels: vec![],
                reviewers: vec![],
                team_reviewers: vec![],
                assignees: vec![],
                comments: vec![],
                auto_merge: false,
            };
            let json = pull_json(&slug, &pr, origin_url);
            repo_mut(&mut state, &slug).pulls.push(pr);
            answer(201, json)
        }
        (_, t) if t.contains("{pull_number}") || t.contains("{issue_number}") => {
            let Some(number) = number else {
                return message(404, "Not Found");
            };
            let mut next_id = state.next_id;
            let repo = repo_mut(&mut state, &slug);
            let collaborators = repo.collaborators.clone();
            let teams = repo.teams.clone();
            let Some(pr) = repo.pulls.iter_mut().find(|p| p.number == number) else {
                return message(404, "Not Found");
            };
            let response = match (method.as_str(), t) {
                ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}") => {
                    answer(200, pull_json(&slug, pr, origin_url))
                }
                ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}") => {
                    if let Some(title) = body.get("title").and_then(Value::as_str) {
                        pr.title = title.into();
                    }
                    if let Some(text) = body.get("body").and_then(Value::as_str) {
                        pr.body = text.into();
                    }
                    if let Some(s) = body.get("state").and_then(Value::as_str) {
                        if pr.merged {
                            return message(
                                422,
                                "Cannot change the state of a merged pull request",
                            );
                        }
                        pr.state = s.into();
                    }
                    answer(200, pull_json(&slug, pr, origin_url))
                }
                ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers") => {
                    let list = |k: &str| -> Vec<String> {
                        body.get(k)
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    };
                    let (users, wanted_teams) = (list("reviewers"), list("team_reviewers"));
                    if users.iter().any(|u| !collaborators.contains(u))
                        || wanted_teams.iter().any(|t| !teams.contains(t))
                    {
                        return message(
                            422,
                            &format!(
                                "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the {slug} repository."
                            ),
                        );
                    }
                    for u in users {
                        if !pr.reviewers.contains(&u) {
                            pr.reviewers.push(u);
                        }
                    }
                    for t in wanted_teams {
                        if !pr.team_reviewers.contains(&t) {
                            pr.team_reviewers.push(t);
                        }
                    }
                    answer(201, pull_json(&slug, pr, origin_url))
                }
                ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels") => {
                    let names: Vec<String> = match &body {
                        Value::Object(o) => o
                            .get("labels")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default(),
                        Value::Array(a) => a.clone(),
                        _ => vec![],
                    }
                    .iter()
                    .filter_map(|l| {
                        l.as_str()
                            .map(str::to_owned)
                            .or_else(|| l.get("name").and_then(Value::as_str).map(str::to_owned))
                    })
                    .collect();
                    for name in names {
                        if !pr.labels.contains(&name) {
                            pr.labels.push(name);
                        }
                    }
                    answer(
                        200,
                        Value::Array(pr.labels.iter().map(|l| json!({ "name": l })).collect()),
                    )
                }
                ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/assignees") => {
                    // GitHub silently ignores users who cannot be assigned.
                    for a in body
                        .get("assignees")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        if collaborators.contains(a) && !pr.assignees.iter().any(|x| x == a) {
                            pr.assignees.push(a.to_owned());
                        }
                    }
                    answer(
                        201,
                        json!({ "number": pr.number, "assignees": pr.assignees.iter().map(|a| json!({ "login": a })).collect::<Vec<_>>() }),
                    )
                }
                ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments") => {
                    let get = |k: &str| {
                        query
                            .iter()
                            .find(|(n, _)| n == k)
                            .and_then(|(_, v)| v.parse::<usize>().ok())
                    };
                    let per_page = get("per_page").unwrap_or(30).min(100);
                    let page = get("page").unwrap_or(1).max(1);
                    let items: Vec<Value> = pr
                        .comments
                        .iter()
                        .skip((page - 1) * per_page)
                        .take(per_page)
                        .map(|(id, body)| json!({ "id": id, "body": body }))
                        .collect();
                    answer(200, Value::Array(items))
                }
                ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments") => {
                    let Some(text) = body.get("body").and_then(Value::as_str) else {
                        return message(422, "Validation Failed");
                    };
                    next_id += 1;
                    pr.comments.push((next_id, text.to_owned()));
                    answer(201, json!({ "id": next_id, "body": text }))
                }
                _ => message(404, "Not Found"),
            };
            state.next_id = next_id;
            response
        }
        ("GET", "/repos/{owner}/{repo}/git/ref/{ref}") => {
            let repo = repo_mut(&mut state, &slug);
            match params[2].strip_prefix("heads/") {
                Some(branch) if repo.branches.contains(branch) => {
                    let sha = tip_of(&repo.tips, branch);
                    let api = format!("{origin_url}/api/repos/{slug}/git");
                    answer(
                        200,
                        json!({
                            "ref": format!("refs/heads/{branch}"),
                            "node_id": format!("REF_fake_{branch}"),
                            "url": format!("{api}/refs/heads/{branch}"),
                            "object": { "type": "commit", "sha": sha, "url": format!("{api}/commits/{sha}") },
                        }),
                    )
                }
                _ => message(404, "Not Found"),
            }
        }
        ("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}") => {
            let Some(branch) = params[2].strip_prefix("heads/") else {
                return message(422, "Reference does not exist");
            };
            if repo_mut(&mut state, &slug).branches.remove(branch) {
                answer(204, Value::Null)
            } else {
                message(422, "Reference does not exist")
            }
        }
        _ => message(404, "Not Found"),
    }
}

fn pull_json(slug: &str, pr: &FakePr, origin: &str) -> Value {
    let owner = slug.split('/').next().unwrap_or("");
    json!({
        "number": pr.number,
        "node_id": pr.node_id,
        "url": format!("{origin}/api/repos/{slug}/pulls/{}", pr.number),
        "html_url": format!("{origin}/{slug}/pull/{}", pr.number),
        "state": pr.state,
        "title": pr.title,
        "body": if pr.body.is_empty() { Value::Null } else { Value::String(pr.body.clone()) },
        "draft": pr.draft,
        "merged_at": if pr.merged { Value::String("2026-01-01T00:00:00Z".into()) } else { Value::Null },
        "head": { "ref": pr.head, "label": format!("{owner}:{}", pr.head), "sha": "0123456789abcdef0123456789abcdef01234567" },
        "base": { "ref": pr.base, "label": format!("{owner}:{}", pr.base) },
        "user": { "login": "courier-bot" },
        "labels": pr.labels.iter().map(|l| json!({ "name": l })).collect::<Vec<_>>(),
        "requested_reviewers": pr.reviewers.iter().map(|l| json!({ "login": l })).collect::<Vec<_>>(),
        "requested_teams": pr.team_reviewers.iter().map(|t| json!({ "slug": t })).collect::<Vec<_>>(),
        "assignees": pr.assignees.iter().map(|l| json!({ "login": l })).collect::<Vec<_>>(),
    })
}

fn verify_jwt(state: &FakeState, token: &str) -> Result<(), String> {
    let app = state.app.as_ref().ok_or("no App registered")?;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // `iss` is the App id as a number, which jsonwebtoken's own issuer check (strings)
    // does not read; it is compared below.
    validation.set_required_spec_claims(&["exp"]);
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?;
    let claims = data.claims;
    let iss_ok = claims.get("iss").and_then(|i| {
        i.as_u64()
            .or_else(|| i.as_str().and_then(|s| s.parse().ok()))
    }) == Some(app.app_id);
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    );
    // GitHub refuses JWTs valid for more than ten minutes.
    if !iss_ok || exp <= iat || exp - iat > 600 + 60 {
        return Err(format!("bad claims {claims}"));
    }
    Ok(())
}

fn mint(state: &mut FakeState, installation: &str, body: &Value) -> Response {
    let Ok(installation) = installation.parse::<u64>() else {
        return message(404, "Not Found");
    };
    if !state
        .repos
        .values()
        .any(|r| r.installation == Some(installation))
    {
        return message(404, "Not Found");
    }
    if !(body.is_null() || body.is_object()) {
        state
            .hand_check_violations
            .push(format!("access_tokens body must be an object, got {body}"));
    }
    let ttl = state
        .app
        .as_ref()
        .map(|a| a.token_ttl)
        .unwrap_or(Duration::from_secs(3600));
    let expires = SystemTime::now() + ttl;
    let token = format!("ghs_fake_{installation}_{}", state.minted.len() + 1);
    state.minted.push((token.clone(), expires));
    answer(
        201,
        json!({ "token": token, "expires_at": format_timestamp(expires), "permissions": { "pull_requests": "write", "contents": "write" } }),
    )
}

/// GitHub's GraphQL endpoint for the one mutation Courier sends; the request shape is
/// checked here because the REST description has no GraphQL.
fn graphql(state: &mut FakeState, body: &Value) -> Response {
    let query = body.get("query").and_then(Value::as_str).unwrap_or("");
    let id = body
        .pointer("/variables/pullRequestId")
        .and_then(Value::as_str);
    let extra: Vec<&String> = body
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !matches!(k.as_str(), "query" | "variables" | "operationName"))
                .collect()
        })
        .unwrap_or_default();
    let shape_ok = query.trim_start().starts_with("mutation")
        && query.contains("enablePullRequestAutoMerge(input: {pullRequestId: $pullRequestId")
        && query.contains("$pullRequestId: ID!")
        && id.is_some()
        && extra.is_empty();
    if !shape_ok {
        state.hand_check_violations.push(format!(
            "GraphQL request not the expected enablePullRequestAutoMerge mutation: {body}"
        ));
        return answer(200, json!({ "errors": [{ "message": "Parse error" }] }));
    }
    let id = id.unwrap_or_default();
    for repo in state.repos.values_mut() {
        let allowed = repo.allow_auto_merge;
        if let Some(pr) = repo.pulls.iter_mut().find(|p| p.node_id == id) {
            if !allowed {
                return answer(
                    200,
                    json!({
                        "data": { "enablePullRequestAutoMerge": null },
                        "errors": [{ "type": "UNPROCESSABLE", "path": ["enablePullRequestAutoMerge"], "locations": [{ "line": 1, "column": 37 }], "message": "Pull request Auto merge is not allowed for this repository" }]
                    }),
                );
            }
            pr.auto_merge = true;
            return answer(
                200,
                json!({ "data": { "enablePullRequestAutoMerge": { "pullRequest": { "number": pr.number } } } }),
            );
        }
    }
    answer(
        200,
        json!({ "data": null, "errors": [{ "type": "NOT_FOUND", "message": format!("Could not resolve to a node with the global id of '{id}'") }] }),
    )
}

pub fn format_timestamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
