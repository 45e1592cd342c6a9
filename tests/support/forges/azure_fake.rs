//! A stateful fake of the Azure DevOps Git REST API 7.1 (and `connectionData`), served by
//! axum on 127.0.0.1:0 so the real `azure_devops_rust_api` client drives it over HTTP.
//!
//! It models one organization (or Server collection) with projects and repositories,
//! branches with object ids, pull requests (id, active / abandoned / completed, source and
//! target refs, draft, title, description, labels, reviewers, comment threads including
//! Azure DevOps' own system threads, auto-complete and who set it), identities that can be
//! reviewers, PATs with their identity, and per-repository refusals (auto-complete, branch
//! deletion). Faults are scripted per route ([`AzureFake::enqueue_fault`]). Every request is
//! recorded, without its Authorization header, for the contract check
//! ([`AzureFake::assert_contract`]); the fake insists on `api-version=7.1` and answers 400
//! otherwise, as a wrong version is a bug worth failing on.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::answer;
use super::contract::{Contract, RecordedRequest, percent_decode};
pub use super::fault::Fault;
use super::hold::Holds;
pub use super::hold::{Hold, HoldMode};

/// Operations Courier calls that the Git description (tests/contracts/azure-git.json) does
/// not contain; the fake checks their shape by hand.
pub const OUTSIDE_GIT_DESCRIPTION: &[(&str, &str)] =
    &[("GET", "/{organization}/_apis/connectionData")];

pub const ZERO: &str = "0000000000000000000000000000000000000000";

/// The routes the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    ListPullRequests,
    CreatePullRequest,
    GetPullRequest,
    UpdatePullRequest,
    CreateLabel,
    PutReviewer,
    ListThreads,
    CreateThread,
    ListRefs,
    UpdateRefs,
    ConnectionData,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakeThread {
    pub id: u64,
    /// (comment id, content, commentType)
    pub comments: Vec<(u64, String, String)>,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakePr {
    pub id: u64,
    pub project: String,
    pub repository: String,
    /// `active`, `abandoned` or `completed`.
    pub status: String,
    pub title: String,
    pub description: String,
    /// Full ref names (`refs/heads/x`).
    pub source: String,
    pub target: String,
    pub draft: bool,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub threads: Vec<FakeThread>,
    pub auto_complete_set_by: Option<String>,
}

#[derive(Debug, Default)]
struct FakeRepo {
    id: String,
    /// branch name (no `refs/heads/`) → object id
    branches: BTreeMap<String, String>,
    refuse_auto_complete: Option<String>,
    /// Branches whose deletion is refused with `writePermissionRequired`.
    protected: Vec<String>,
}

#[derive(Default)]
struct FakeState {
    /// (project, repository) → repository
    repos: HashMap<(String, String), FakeRepo>,
    prs: Vec<FakePr>,
    /// PAT → identity id
    tokens: HashMap<String, String>,
    identities: Vec<String>,
    faults: HashMap<Route, VecDeque<Fault>>,
    requests: Vec<RecordedRequest>,
    /// Requests that arrived without an Authorization header.
    unauthenticated: Vec<String>,
    hand_check_violations: Vec<String>,
    next_pr: u64,
    next_thread: u64,
    next_object: u64,
    holds: Arc<Holds>,
}

pub struct AzureFake {
    origin: String,
    prefix: String,
    organization: String,
    state: Arc<Mutex<FakeState>>,
    server: tokio::task::JoinHandle<()>,
    /// Set once `assert_contract` ran; a fake dropped unchecked checks itself.
    checked: std::sync::atomic::AtomicBool,
}

impl Drop for AzureFake {
    fn drop(&mut self) {
        self.server.abort();
        let checked = self.checked.load(std::sync::atomic::Ordering::SeqCst);
        let received = self.with(|s| !s.requests.is_empty());
        if !checked && received && !std::thread::panicking() {
            self.assert_contract();
        }
    }
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<FakeState>>,
    prefix: String,
    organization: String,
    origin: String,
}

impl AzureFake {
    /// Azure DevOps Services layout: `{origin}/{organization}/...`.
    pub async fn start(organization: &str) -> AzureFake {
        AzureFake::start_at("", organization).await
    }

    /// Azure DevOps Server layout: `{origin}{prefix}/{collection}/...` (e.g. `/tfs`).
    pub async fn start_server(prefix: &str, collection: &str) -> AzureFake {
        AzureFake::start_at(prefix, collection).await
    }

    async fn start_at(prefix: &str, organization: &str) -> AzureFake {
        let state = Arc::new(Mutex::new(FakeState {
            next_pr: 1,
            next_thread: 1,
            next_object: 1,
            ..FakeState::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let shared = Shared {
            state: state.clone(),
            prefix: prefix.to_owned(),
            organization: organization.to_owned(),
            origin: origin.clone(),
        };
        let app = Router::new().fallback(handle).with_state(shared);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        AzureFake {
            origin,
            prefix: prefix.to_owned(),
            organization: organization.to_owned(),
            state,
            server,
            checked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// What to configure as the provider's base URL (the server root).
    pub fn base_url(&self) -> String {
        format!("{}{}", self.origin, self.prefix)
    }

    /// The collection URL an Azure DevOps Server user would copy from the browser.
    pub fn collection_url(&self) -> String {
        format!("{}{}/{}", self.origin, self.prefix, self.organization)
    }

    pub fn organization(&self) -> &str {
        &self.organization
    }

    fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// Accepts `token` as a PAT belonging to identity `identity_id`.
    pub fn accept_token(&self, token: &str, identity_id: &str) {
        self.with(|s| {
            s.tokens.insert(token.to_owned(), identity_id.to_owned());
            s.identities.push(identity_id.to_owned());
        });
    }

    /// An identity that can be added as a reviewer.
    pub fn add_identity(&self, id: &str) {
        self.with(|s| s.identities.push(id.to_owned()));
    }

    /// `project/repository` with a `main` branch.
    pub fn add_repo(&self, slug: &str) {
        let (project, repository) = split(slug);
        self.with(|s| {
            let object = next_object(s);
            let number = s.repos.len() + 1;
            let repo = s.repos.entry((project, repository)).or_default();
            repo.id = format!("00000000-0000-4000-8000-{number:012x}");
            repo.branches.insert("main".into(), object);
        });
    }

    pub fn add_branch(&self, slug: &str, branch: &str) {
        self.with(|s| {
            let object = next_object(s);
            repo_mut(s, slug).branches.insert(branch.to_owned(), object);
        });
    }

    /// Moves a branch to a new commit, as a push would.
    pub fn push_to(&self, slug: &str, branch: &str) {
        self.add_branch(slug, branch);
    }

    pub fn has_branch(&self, slug: &str, branch: &str) -> bool {
        self.with(|s| repo_mut(s, slug).branches.contains_key(branch))
    }

    /// The object id a branch points at, if it exists.
    /// Points a branch at `sha` (creating it), as a push to the repository would.
    pub fn move_branch(&self, slug: &str, branch: &str, sha: &str) {
        self.with(|s| {
            repo_mut(s, slug)
                .branches
                .insert(branch.to_owned(), sha.to_owned())
        });
    }

    pub fn branch_tip(&self, slug: &str, branch: &str) -> Option<String> {
        self.with(|s| repo_mut(s, slug).branches.get(branch).cloned())
    }

    pub fn refuse_auto_complete(&self, slug: &str, message: &str) {
        self.with(|s| repo_mut(s, slug).refuse_auto_complete = Some(message.to_owned()));
    }

    pub fn protect_branch(&self, slug: &str, branch: &str) {
        self.with(|s| repo_mut(s, slug).protected.push(branch.to_owned()));
    }

    /// A pull request someone opened earlier; `status` is `active`, `abandoned` or
    /// `completed`. Creates the source branch.
    pub fn seed_pr(
        &self,
        slug: &str,
        head: &str,
        base: &str,
        title: &str,
        description: &str,
        status: &str,
    ) -> u64 {
        self.add_branch(slug, head);
        let (project, repository) = split(slug);
        self.with(|s| {
            let id = s.next_pr;
            s.next_pr += 1;
            s.prs.push(FakePr {
                id,
                project,
                repository,
                status: status.to_owned(),
                title: title.to_owned(),
                description: description.to_owned(),
                source: format!("refs/heads/{head}"),
                target: format!("refs/heads/{base}"),
                draft: false,
                labels: vec![],
                reviewers: vec![],
                threads: vec![],
                auto_complete_set_by: None,
            });
            id
        })
    }

    /// A thread Azure DevOps itself writes (a push, a vote).
    pub fn add_system_thread(&self, id: u64, text: &str) {
        self.with(|s| {
            let thread = s.next_thread;
            s.next_thread += 1;
            pr_mut(s, id).threads.push(FakeThread {
                id: thread,
                comments: vec![(1, text.to_owned(), "system".to_owned())],
                deleted: false,
            });
        });
    }

    pub fn pr(&self, id: u64) -> FakePr {
        self.with(|s| pr_mut(s, id).clone())
    }

    pub fn prs(&self) -> Vec<FakePr> {
        self.with(|s| s.prs.clone())
    }

    /// Holds the next request to `route` until the returned [`Hold`] is released, before
    /// or after applying it. Later requests pass.
    pub fn hold(&self, route: Route, mode: HoldMode) -> Hold {
        self.with(|s| s.holds.clone())
            .add(format!("{route:?}"), mode)
    }

    /// The next request to `route` gets `fault` instead of its answer.
    pub fn enqueue_fault(&self, route: Route, fault: Fault) {
        self.with(|s| s.faults.entry(route).or_default().push_back(fault));
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

    /// Every recorded request conforms to the Git 7.1 description (or, for
    /// `connectionData`, to the fake's hand checks), carries `api-version=7.1` and an
    /// Authorization header. The description declares OAuth2; a PAT goes as Basic, so the
    /// header's presence is checked, not its scheme.
    pub fn assert_contract(&self) {
        self.checked
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let requests = self.requests();
        assert!(!requests.is_empty(), "no requests recorded");
        let contract = Contract::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/azure-git.json"),
        )
        .with_prefix(&self.prefix);
        let violations = contract.check_all(&requests, OUTSIDE_GIT_DESCRIPTION);
        let mut hand = self.with(|s| s.hand_check_violations.clone());
        hand.extend(
            self.with(|s| s.unauthenticated.clone())
                .into_iter()
                .map(|r| format!("{r}: no Authorization header")),
        );
        for request in &requests {
            let versions: Vec<&str> = request
                .query
                .iter()
                .filter(|(k, _)| k == "api-version")
                .map(|(_, v)| v.as_str())
                .collect();
            if versions != ["7.1"] {
                hand.push(format!(
                    "{request}: api-version {versions:?}, want [\"7.1\"]"
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

fn split(slug: &str) -> (String, String) {
    let (project, repository) = slug.split_once('/').expect("slug is project/repository");
    (project.to_owned(), repository.to_owned())
}

fn repo_mut<'s>(state: &'s mut FakeState, slug: &str) -> &'s mut FakeRepo {
    state
        .repos
        .get_mut(&split(slug))
        .unwrap_or_else(|| panic!("the fake has no repository {slug}"))
}

fn pr_mut(state: &mut FakeState, id: u64) -> &mut FakePr {
    state
        .prs
        .iter_mut()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("the fake has no pull request {id}"))
}

fn next_object(state: &mut FakeState) -> String {
    state.next_object += 1;
    format!("{:040x}", state.next_object * 0x1_0001)
}

fn error_body(message: &str, type_key: &str) -> Value {
    json!({
        "$id": "1",
        "innerException": null,
        "message": message,
        "typeName": format!("Microsoft.TeamFoundation.Git.Server.{type_key}, Microsoft.TeamFoundation.Git.Server"),
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000
    })
}

fn refuse(status: u16, message: &str, type_key: &str) -> Response {
    answer(status, error_body(message, type_key))
}

fn list(values: Vec<Value>) -> Value {
    json!({ "count": values.len(), "value": values })
}

/// Decodes `Authorization: Basic base64(user:pat)` and returns the PAT.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = decode_base64(encoded)?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, pat)| pat.to_owned())
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|&b| b == byte)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// Splits `{prefix}/{org}/...` into the route and its parameters.
fn route(
    prefix: &str,
    organization: &str,
    method: &Method,
    path: &str,
) -> Option<(Route, Vec<String>)> {
    let rest = path.strip_prefix(prefix)?;
    let parts: Vec<String> = rest
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    if parts.first().map(String::as_str) != Some(organization) {
        return None;
    }
    let parts: Vec<&str> = parts.iter().skip(1).map(String::as_str).collect();
    let m = method.as_str();
    match (m, parts.as_slice()) {
        ("GET", ["_apis", "connectionData"]) => Some((Route::ConnectionData, vec![])),
        (_, [project, "_apis", "git", "repositories", repo, tail @ ..]) => {
            let mut params = vec![project.to_string(), repo.to_string()];
            let route = match (m, tail) {
                ("GET", ["pullrequests"]) => Route::ListPullRequests,
                ("POST", ["pullrequests"]) => Route::CreatePullRequest,
                ("GET", ["pullrequests", id]) => {
                    params.push(id.to_string());
                    Route::GetPullRequest
                }
                ("PATCH", ["pullrequests", id]) => {
                    params.push(id.to_string());
                    Route::UpdatePullRequest
                }
                ("POST", ["pullRequests", id, "labels"]) => {
                    params.push(id.to_string());
                    Route::CreateLabel
                }
                ("PUT", ["pullRequests", id, "reviewers", reviewer]) => {
                    params.push(id.to_string());
                    params.push(reviewer.to_string());
                    Route::PutReviewer
                }
                ("GET", ["pullRequests", id, "threads"]) => {
                    params.push(id.to_string());
                    Route::ListThreads
                }
                ("POST", ["pullRequests", id, "threads"]) => {
                    params.push(id.to_string());
                    Route::CreateThread
                }
                ("GET", ["refs"]) => Route::ListRefs,
                ("POST", ["refs"]) => Route::UpdateRefs,
                _ => return None,
            };
            Some((route, params))
        }
        _ => None,
    }
}

/// Answers a request, holding it first if a test asked for that (see `hold`).
async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = route(&shared.prefix, &shared.organization, &method, uri.path())
        .map(|(r, _)| format!("{r:?}"));
    let holds = shared.state.lock().unwrap().holds.clone();
    holds
        .answer(route, || respond(State(shared), method, uri, headers, body))
        .await
}

async fn respond(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let parsed_body = if body.is_empty() {
        None
    } else {
        Some(serde_json::from_slice::<Value>(&body).unwrap_or_else(|_| {
            Value::String(format!("<not JSON: {}>", String::from_utf8_lossy(&body)))
        }))
    };
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.clone(),
        headers: headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "authorization" | "cookie"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: parsed_body.clone(),
    };
    let line = recorded.to_string();
    let fault = {
        let mut state = shared.state.lock().unwrap();
        state.requests.push(recorded);
        if !headers.contains_key("authorization") {
            state.unauthenticated.push(line.clone());
        }
        route(&shared.prefix, &shared.organization, &method, uri.path())
            .and_then(|(r, _)| state.faults.get_mut(&r).and_then(VecDeque::pop_front))
    };
    if let Some(fault) = fault {
        return fault
            .answer(|m| error_body(m, "FakeScriptedException"))
            .await;
    }
    let Some((route, params)) = route(&shared.prefix, &shared.organization, &method, uri.path())
    else {
        return refuse(404, &format!("no such API: {line}"), "RouteNotFound");
    };
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if get("api-version").as_deref() != Some("7.1") {
        return refuse(
            400,
            &format!(
                "The requested REST API version of {:?} is not 7.1",
                get("api-version")
            ),
            "VssVersionNotSupportedException",
        );
    }
    let mut state = shared.state.lock().unwrap();
    let Some(identity) = basic_password(&headers).and_then(|pat| state.tokens.get(&pat).cloned())
    else {
        return refuse(
            401,
            "TF400813: The user is not authorized to access this resource.",
            "UnauthorizedRequestException",
        );
    };
    if route == Route::ConnectionData {
        if parsed_body.is_some() {
            state
                .hand_check_violations
                .push(format!("{line}: connectionData takes no body"));
        }
        return answer(
            200,
            json!({
                "authenticatedUser": { "id": identity, "descriptor": format!("Microsoft.IdentityModel.Claims.ClaimsIdentity;{identity}"), "providerDisplayName": "Courier Bot", "isActive": true },
                "authorizedUser": { "id": identity, "providerDisplayName": "Courier Bot" },
                "instanceId": "00000000-0000-4000-8000-00000000c011",
                "deploymentType": "hosted"
            }),
        );
    }
    let key = (params[0].clone(), params[1].clone());
    let Some(repo) = state.repos.get(&key) else {
        return refuse(
            404,
            &format!(
                "TF401019: The Git repository with name or identifier {} does not exist or you do not have permissions for the operation you are attempting.",
                key.1
            ),
            "GitRepositoryNotFoundException",
        );
    };
    let repo_id = repo.id.clone();
    let ctx = Ctx {
        origin: &shared.origin,
        prefix: &shared.prefix,
        organization: &shared.organization,
        project: &key.0,
        repository: &key.1,
        repo_id: &repo_id,
        identity: &identity,
    };
    let pr_index = |state: &FakeState, id: &str| -> Option<usize> {
        let id: u64 = id.parse().ok()?;
        state
            .prs
            .iter()
            .position(|p| p.id == id && p.project == key.0 && p.repository == key.1)
    };
    let body = parsed_body.unwrap_or(Value::Null);
    match route {
        Route::ListPullRequests => {
            let source = get("searchCriteria.sourceRefName");
            let target = get("searchCriteria.targetRefName");
            let status = get("searchCriteria.status").unwrap_or_else(|| "active".into());
            let mut found: Vec<&FakePr> = state
                .prs
                .iter()
                .filter(|p| p.project == key.0 && p.repository == key.1)
                .filter(|p| source.as_ref().is_none_or(|s| *s == p.source))
                .filter(|p| target.as_ref().is_none_or(|t| *t == p.target))
                .filter(|p| status == "all" || p.status == status)
                .collect();
            // Newest first, as Azure DevOps lists them.
            found.sort_by_key(|p| std::cmp::Reverse(p.id));
            answer(
                200,
                list(found.into_iter().map(|p| pr_json(&ctx, p)).collect()),
            )
        }
        Route::CreatePullRequest => {
            let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
            let (Some(source), Some(target)) = (text("sourceRefName"), text("targetRefName"))
            else {
                return refuse(
                    400,
                    "sourceRefName and targetRefName are required",
                    "InvalidArgumentValueException",
                );
            };
            let branches = &state.repos[&key].branches;
            for name in [&source, &target] {
                let short = name.strip_prefix("refs/heads/").unwrap_or(name);
                if !branches.contains_key(short) {
                    return refuse(
                        404,
                        &format!(
                            "TF401398: The pull request cannot be activated because the source and/or the target branch no longer exists, or the requested refs are not branches: {name}"
                        ),
                        "GitPullRequestCannotBeActivated",
                    );
                }
            }
            if state.prs.iter().any(|p| {
                p.project == key.0
                    && p.repository == key.1
                    && p.status == "active"
                    && p.source == source
                    && p.target == target
            }) {
                return refuse(
                    409,
                    "TF401179: An active pull request for the source and target branch already exists.",
                    "GitPullRequestExistsException",
                );
            }
            let description = text("description").unwrap_or_default();
            if description.chars().count() > 4000 {
                return refuse(
                    400,
                    "TF401181: The pull request description is too long (max 4000 characters).",
                    "InvalidArgumentValueException",
                );
            }
            let id = state.next_pr;
            state.next_pr += 1;
            let pr = FakePr {
                id,
                project: key.0.clone(),
                repository: key.1.clone(),
                status: "active".into(),
                title: text("title").unwrap_or_default(),
                description,
                source,
                target,
                draft: body
                    .get("isDraft")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                labels: vec![],
                reviewers: vec![],
                threads: vec![],
                auto_complete_set_by: None,
            };
            let json = pr_json(&ctx, &pr);
            state.prs.push(pr);
            answer(201, json)
        }
        Route::GetPullRequest => match pr_index(&state, &params[2]) {
            Some(i) => answer(200, pr_json(&ctx, &state.prs[i])),
            None => not_found_pr(&params[2]),
        },
        Route::UpdatePullRequest => {
            let Some(i) = pr_index(&state, &params[2]) else {
                return not_found_pr(&params[2]);
            };
            let refusal = state.repos[&key].refuse_auto_complete.clone();
            let pr = &mut state.prs[i];
            if let Some(set_by) = body.get("autoCompleteSetBy") {
                if let Some(message) = refusal {
                    return refuse(400, &message, "InvalidArgumentValueException");
                }
                if pr.draft {
                    return refuse(
                        400,
                        "TF401196: Auto-complete cannot be set on a draft pull request.",
                        "InvalidArgumentValueException",
                    );
                }
                let id = set_by.get("id").and_then(Value::as_str).unwrap_or_default();
                if id != identity {
                    return refuse(
                        403,
                        "TF401289: Only the caller may set auto-complete on their behalf.",
                        "UnauthorizedAccessException",
                    );
                }
                pr.auto_complete_set_by = Some(id.to_owned());
            }
            if let Some(title) = body.get("title").and_then(Value::as_str) {
                pr.title = title.to_owned();
            }
            if let Some(description) = body.get("description").and_then(Value::as_str) {
                if description.chars().count() > 4000 {
                    return refuse(
                        400,
                        "TF401181: The pull request description is too long (max 4000 characters).",
                        "InvalidArgumentValueException",
                    );
                }
                pr.description = description.to_owned();
            }
            if let Some(status) = body.get("status").and_then(Value::as_str) {
                if pr.status != "active" && status == "abandoned" {
                    return refuse(
                        409,
                        "TF401181: The pull request is not active.",
                        "GitPullRequestNotActiveException",
                    );
                }
                pr.status = status.to_owned();
                if status == "abandoned" {
                    pr.auto_complete_set_by = None;
                }
            }
            answer(200, pr_json(&ctx, &state.prs[i]))
        }
        Route::CreateLabel => {
            let Some(i) = pr_index(&state, &params[2]) else {
                return not_found_pr(&params[2]);
            };
            let Some(name) = body.get("name").and_then(Value::as_str).map(str::to_owned) else {
                return refuse(400, "name is required", "InvalidArgumentValueException");
            };
            if name.trim().is_empty() || name.len() > 400 {
                return refuse(
                    400,
                    "TF401463: The tag name is invalid.",
                    "InvalidTagNameException",
                );
            }
            let pr = &mut state.prs[i];
            if !pr.labels.contains(&name) {
                pr.labels.push(name.clone());
            }
            answer(
                200,
                json!({ "id": format!("label-{name}"), "name": name, "active": true }),
            )
        }
        Route::PutReviewer => {
            let Some(i) = pr_index(&state, &params[2]) else {
                return not_found_pr(&params[2]);
            };
            let reviewer = params[3].clone();
            if !state.identities.contains(&reviewer) {
                return refuse(
                    400,
                    &format!("TF401181: The identity {reviewer} could not be found."),
                    "IdentityNotFoundException",
                );
            }
            let vote = body.get("vote").and_then(Value::as_i64).unwrap_or(0);
            let pr = &mut state.prs[i];
            if !pr.reviewers.contains(&reviewer) {
                pr.reviewers.push(reviewer.clone());
            }
            answer(
                200,
                json!({ "id": reviewer, "vote": vote, "displayName": "Reviewer" }),
            )
        }
        Route::ListThreads => {
            let Some(i) = pr_index(&state, &params[2]) else {
                return not_found_pr(&params[2]);
            };
            let threads = state.prs[i].threads.iter().map(thread_json).collect();
            answer(200, list(threads))
        }
        Route::CreateThread => {
            let Some(i) = pr_index(&state, &params[2]) else {
                return not_found_pr(&params[2]);
            };
            let comments: Vec<(u64, String, String)> = body
                .get("comments")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(n, c)| {
                    (
                        n as u64 + 1,
                        c.get("content")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        c.get("commentType")
                            .and_then(Value::as_str)
                            .unwrap_or("text")
                            .to_owned(),
                    )
                })
                .collect();
            if comments.is_empty() || comments.iter().any(|(_, c, _)| c.is_empty()) {
                return refuse(
                    400,
                    "A thread needs at least one comment with content.",
                    "InvalidArgumentValueException",
                );
            }
            let id = state.next_thread;
            state.next_thread += 1;
            let thread = FakeThread {
                id,
                comments,
                deleted: false,
            };
            let json = thread_json(&thread);
            state.prs[i].threads.push(thread);
            answer(200, json)
        }
        Route::ListRefs => {
            let filter = get("filter").unwrap_or_default();
            let refs: Vec<Value> = state.repos[&key]
                .branches
                .iter()
                .map(|(name, object)| (format!("refs/heads/{name}"), object))
                .filter(|(name, _)| name["refs/".len()..].starts_with(&filter))
                .map(|(name, object)| json!({ "name": name, "objectId": object, "url": format!("{}/refs", ctx.repo_url()) }))
                .collect();
            answer(200, list(refs))
        }
        Route::UpdateRefs => {
            let Some(updates) = body.as_array().cloned() else {
                return refuse(
                    400,
                    "a list of ref updates is required",
                    "InvalidArgumentValueException",
                );
            };
            let repo = state.repos.get_mut(&key).unwrap();
            let mut results = Vec::new();
            for update in updates {
                let name = update
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let old = update
                    .get("oldObjectId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let new = update
                    .get("newObjectId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let short = name.strip_prefix("refs/heads/").unwrap_or(&name).to_owned();
                let (success, status, message) = if repo.protected.contains(&short) {
                    (
                        false,
                        "writePermissionRequired",
                        Some(format!("TF402455: Pushes to {short} are not permitted.")),
                    )
                } else if repo.branches.get(&short) != Some(&old) {
                    (false, "staleOldObjectId", None)
                } else if new == ZERO {
                    repo.branches.remove(&short);
                    (true, "succeeded", None)
                } else {
                    repo.branches.insert(short.clone(), new.clone());
                    (true, "succeeded", None)
                };
                results.push(json!({
                    "name": name, "oldObjectId": old, "newObjectId": new,
                    "success": success, "updateStatus": status, "customMessage": message,
                    "repositoryId": repo.id, "isLocked": false
                }));
            }
            answer(200, list(results))
        }
        Route::ConnectionData => unreachable!("answered above"),
    }
}

fn not_found_pr(id: &str) -> Response {
    refuse(
        404,
        &format!("TF401180: The requested pull request {id} was not found."),
        "GitPullRequestNotFoundException",
    )
}

struct Ctx<'a> {
    origin: &'a str,
    prefix: &'a str,
    organization: &'a str,
    project: &'a str,
    repository: &'a str,
    repo_id: &'a str,
    identity: &'a str,
}

impl Ctx<'_> {
    fn repo_url(&self) -> String {
        format!(
            "{}{}/{}/{}/_apis/git/repositories/{}",
            self.origin, self.prefix, self.organization, self.project, self.repo_id
        )
    }
}

fn pr_json(ctx: &Ctx<'_>, pr: &FakePr) -> Value {
    let mut value = json!({
        "pullRequestId": pr.id,
        "codeReviewId": pr.id,
        "status": pr.status,
        "createdBy": { "id": ctx.identity, "displayName": "Courier Bot", "uniqueName": "courier@example.com" },
        "creationDate": format!("2026-11-22T09:{:02}:{:02}.000Z", (pr.id / 60) % 60, pr.id % 60),
        "title": pr.title,
        "description": pr.description,
        "sourceRefName": pr.source,
        "targetRefName": pr.target,
        "isDraft": pr.draft,
        "mergeStatus": "succeeded",
        "supportsIterations": true,
        "url": format!("{}/pullRequests/{}", ctx.repo_url(), pr.id),
        "repository": {
            "id": ctx.repo_id,
            "name": ctx.repository,
            "url": ctx.repo_url(),
            "project": { "id": "00000000-0000-4000-8000-0000000000aa", "name": ctx.project, "state": "wellFormed", "visibility": "private" }
        },
        "labels": pr.labels.iter().map(|l| json!({ "id": format!("label-{l}"), "name": l, "active": true })).collect::<Vec<_>>(),
        "reviewers": pr.reviewers.iter().map(|r| json!({ "id": r, "vote": 0 })).collect::<Vec<_>>(),
    });
    if let Some(set_by) = &pr.auto_complete_set_by {
        value["autoCompleteSetBy"] = json!({ "id": set_by, "displayName": "Courier Bot" });
    }
    value
}

fn thread_json(thread: &FakeThread) -> Value {
    json!({
        "id": thread.id,
        "status": "active",
        "isDeleted": thread.deleted,
        "publishedDate": "2026-11-22T09:00:00.000Z",
        "lastUpdatedDate": "2026-11-22T09:00:00.000Z",
        "comments": thread.comments.iter().map(|(id, content, kind)| json!({
            "id": id,
            "parentCommentId": 0,
            "content": content,
            "commentType": kind,
            "publishedDate": "2026-11-22T09:00:00.000Z",
            "author": { "id": "00000000-0000-4000-8000-0000000000b0", "displayName": "someone" }
        })).collect::<Vec<_>>(),
    })
}
