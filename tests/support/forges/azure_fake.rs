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

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use axum::response::Response;
use serde_json::{Value, json};

use super::answer;
use super::contract::{Contract, RecordedRequest};
pub use super::fault::Fault;
use super::front::{Endpoint, Forge, Front, Params, Reply, Request, bind, routes};
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
    /// Requests that arrived without an Authorization header.
    unauthenticated: Vec<String>,
    hand_check_violations: Vec<String>,
    next_pr: u64,
    next_thread: u64,
    next_object: u64,
}

/// The Azure DevOps half of the fake; the shared half is its [`Front`].
struct Azure {
    /// `/tfs`, say, on Azure DevOps Server.
    prefix: String,
    organization: String,
    /// `{origin}{prefix}/{organization}`, where the answers' URLs point.
    collection: String,
    state: Mutex<FakeState>,
}

/// What a request is for, and how the fake answers it.
type Respond = (Route, fn(&mut FakeState, &Call<'_>) -> Reply);

/// A request the fake let in.
struct Call<'r> {
    request: &'r Request,
    /// Whose PAT the request carries.
    identity: String,
    collection: &'r str,
}

/// The repository a route names, as answers describe it.
struct Repo {
    /// (project, repository)
    key: (String, String),
    id: String,
    url: String,
}

impl Repo {
    fn holds(&self, pr: &FakePr) -> bool {
        pr.project == self.key.0 && pr.repository == self.key.1
    }
}

impl Call<'_> {
    /// The repository of the route's `{project}` and `{repositoryId}`, or Azure DevOps'
    /// 404.
    fn repo(&self, state: &FakeState) -> Result<Repo, Response> {
        let params = &self.request.params;
        let key = (params[0].clone(), params[1].clone());
        let Some(repo) = state.repos.get(&key) else {
            return Err(refuse(
                404,
                &format!(
                    "TF401019: The Git repository with name or identifier {} does not exist or you do not have permissions for the operation you are attempting.",
                    key.1
                ),
                "GitRepositoryNotFoundException",
            ));
        };
        let url = format!(
            "{}/{}/_apis/git/repositories/{}",
            self.collection, key.0, repo.id
        );
        Ok(Repo {
            id: repo.id.clone(),
            key,
            url,
        })
    }
}

pub struct AzureFake {
    front: Front<Azure>,
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
        let front = Front::start(|origin| Azure {
            collection: format!("{origin}{prefix}/{organization}"),
            prefix: prefix.to_owned(),
            organization: organization.to_owned(),
            state: Mutex::new(FakeState {
                next_pr: 1,
                next_thread: 1,
                next_object: 1,
                ..FakeState::default()
            }),
        })
        .await;
        AzureFake { front }
    }

    /// What to configure as the provider's base URL (the server root).
    pub fn base_url(&self) -> String {
        format!("{}{}", self.front.origin(), self.front.forge().prefix)
    }

    /// The collection URL an Azure DevOps Server user would copy from the browser.
    pub fn collection_url(&self) -> String {
        self.front.forge().collection.clone()
    }

    pub fn organization(&self) -> &str {
        &self.front.forge().organization
    }

    fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.front.forge().state.lock().unwrap())
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

    /// Points a branch at `sha` (creating it), as a push to the repository would.
    pub fn move_branch(&self, slug: &str, branch: &str, sha: &str) {
        self.with(|s| {
            repo_mut(s, slug)
                .branches
                .insert(branch.to_owned(), sha.to_owned())
        });
    }

    /// The object id a branch points at, if it exists.
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
        let endpoint = endpoint(route);
        self.front.hold(endpoint.method, endpoint.template, mode)
    }

    /// The next request to `route` gets `fault` instead of its answer.
    pub fn enqueue_fault(&self, route: Route, fault: Fault) {
        let endpoint = endpoint(route);
        self.front
            .enqueue_fault(endpoint.method, endpoint.template, fault);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.front.requests()
    }

    /// `"METHOD /path"` of every request so far, queries left out.
    pub fn request_lines(&self) -> Vec<String> {
        self.front.request_lines()
    }

    /// Every recorded request conforms to the Git 7.1 description (or, for
    /// `connectionData`, to the fake's hand checks), carries `api-version=7.1` and an
    /// Authorization header. The description declares OAuth2; a PAT goes as Basic, so the
    /// header's presence is checked, not its scheme.
    pub fn assert_contract(&self) {
        self.front.assert_contract();
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

fn typed_error(message: &str, type_key: &str) -> Value {
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
    answer(status, typed_error(message, type_key))
}

fn list(values: Vec<Value>) -> Value {
    json!({ "count": values.len(), "value": values })
}

/// The route a test names by [`Route`].
fn endpoint(route: Route) -> &'static Endpoint<Respond> {
    Azure::ROUTES
        .iter()
        .find(|e| e.respond.0 == route)
        .unwrap_or_else(|| panic!("the fake has no route {route:?}"))
}

/// Where the Git routes stand.
macro_rules! git {
    ($tail:literal) => {
        concat!(
            "/{organization}/{project}/_apis/git/repositories/{repositoryId}",
            $tail
        )
    };
}

impl Forge for Azure {
    type Respond = Respond;

    /// The routes the fake serves, named by the description's templates.
    const ROUTES: &'static [Endpoint<Respond>] = routes![
        GET git!("/pullrequests") => (Route::ListPullRequests, list_pulls),
        POST git!("/pullrequests") => (Route::CreatePullRequest, create_pull),
        GET git!("/pullrequests/{pullRequestId}") => (Route::GetPullRequest, get_pull),
        PATCH git!("/pullrequests/{pullRequestId}") => (Route::UpdatePullRequest, update_pull),
        POST git!("/pullRequests/{pullRequestId}/labels") => (Route::CreateLabel, create_label),
        PUT git!("/pullRequests/{pullRequestId}/reviewers/{reviewerId}") => (Route::PutReviewer, put_reviewer),
        GET git!("/pullRequests/{pullRequestId}/threads") => (Route::ListThreads, list_threads),
        POST git!("/pullRequests/{pullRequestId}/threads") => (Route::CreateThread, create_thread),
        GET git!("/refs") => (Route::ListRefs, list_refs),
        POST git!("/refs") => (Route::UpdateRefs, update_refs),
        GET "/{organization}/_apis/connectionData" => (Route::ConnectionData, connection_data),
    ];

    /// Routes under `{prefix}/{organization}`; their parameters start after it.
    fn route(&self, method: &str, path: &str) -> Option<(&'static Endpoint<Respond>, Params)> {
        let (endpoint, mut params) =
            bind(Self::ROUTES, method, path.strip_prefix(&self.prefix)?, None)?;
        (params.remove(0) == self.organization).then_some((endpoint, params))
    }

    fn error_body(message: &str) -> Value {
        typed_error(message, "FakeScriptedException")
    }

    fn arrived(&self, request: &Request) {
        if !request.headers.contains_key("authorization") {
            let mut state = self.state.lock().unwrap();
            state.unauthenticated.push(request.line.clone());
        }
    }

    fn no_route(&self, request: &Request) -> Response {
        refuse(
            404,
            &format!("no such API: {}", request.line),
            "RouteNotFound",
        )
    }

    /// Insists on `api-version=7.1` (a wrong version is a bug worth failing on) and on a
    /// PAT the fake accepts.
    fn answer(&self, (_, respond): Respond, request: &Request) -> Response {
        let version = request.query("api-version");
        if version != Some("7.1") {
            return refuse(
                400,
                &format!("The requested REST API version of {version:?} is not 7.1"),
                "VssVersionNotSupportedException",
            );
        }
        let mut state = self.state.lock().unwrap();
        let Some(identity) = request
            .basic_password()
            .and_then(|pat| state.tokens.get(&pat).cloned())
        else {
            return refuse(
                401,
                "TF400813: The user is not authorized to access this resource.",
                "UnauthorizedRequestException",
            );
        };
        let call = Call {
            request,
            identity,
            collection: &self.collection,
        };
        respond(&mut state, &call).unwrap_or_else(|refusal| refusal)
    }

    fn contract_violations(&self, requests: &[RecordedRequest]) -> Vec<String> {
        let contract =
            Contract::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/azure-git.json"))
                .with_prefix(&self.prefix);
        let mut violations: Vec<String> = contract
            .check_all(requests, OUTSIDE_GIT_DESCRIPTION)
            .iter()
            .map(ToString::to_string)
            .collect();
        let state = self.state.lock().unwrap();
        violations.extend(state.hand_check_violations.iter().cloned());
        violations.extend(
            state
                .unauthenticated
                .iter()
                .map(|r| format!("{r}: no Authorization header")),
        );
        for request in requests {
            let versions: Vec<&str> = request
                .query
                .iter()
                .filter(|(k, _)| k == "api-version")
                .map(|(_, v)| v.as_str())
                .collect();
            if versions != ["7.1"] {
                violations.push(format!(
                    "{request}: api-version {versions:?}, want [\"7.1\"]"
                ));
            }
        }
        violations
    }
}

/// The index of the pull request a route's `{pullRequestId}` names in `repo`, or a 404.
fn pull(state: &FakeState, repo: &Repo, call: &Call<'_>) -> Result<usize, Response> {
    let id = &call.request.params[2];
    id.parse::<u64>()
        .ok()
        .and_then(|id| state.prs.iter().position(|p| p.id == id && repo.holds(p)))
        .ok_or_else(|| {
            refuse(
                404,
                &format!("TF401180: The requested pull request {id} was not found."),
                "GitPullRequestNotFoundException",
            )
        })
}

fn too_long() -> Response {
    refuse(
        400,
        "TF401181: The pull request description is too long (max 4000 characters).",
        "InvalidArgumentValueException",
    )
}

fn connection_data(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let request = call.request;
    if !matches!(request.body, Ok(None)) {
        state
            .hand_check_violations
            .push(format!("{}: connectionData takes no body", request.line));
    }
    let identity = &call.identity;
    Ok(answer(
        200,
        json!({
            "authenticatedUser": { "id": identity, "descriptor": format!("Microsoft.IdentityModel.Claims.ClaimsIdentity;{identity}"), "providerDisplayName": "Courier Bot", "isActive": true },
            "authorizedUser": { "id": identity, "providerDisplayName": "Courier Bot" },
            "instanceId": "00000000-0000-4000-8000-00000000c011",
            "deploymentType": "hosted"
        }),
    ))
}

fn list_pulls(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let repo = call.repo(state)?;
    let q = |name: &str| call.request.query(name);
    let (source, target) = (
        q("searchCriteria.sourceRefName"),
        q("searchCriteria.targetRefName"),
    );
    let status = q("searchCriteria.status").unwrap_or("active");
    let mut found: Vec<&FakePr> = state
        .prs
        .iter()
        .filter(|p| repo.holds(p))
        .filter(|p| source.is_none_or(|s| s == p.source))
        .filter(|p| target.is_none_or(|t| t == p.target))
        .filter(|p| status == "all" || p.status == status)
        .collect();
    // Newest first, as Azure DevOps lists them.
    found.sort_by_key(|p| std::cmp::Reverse(p.id));
    let found = found.into_iter().map(|p| pr_json(call, &repo, p)).collect();
    Ok(answer(200, list(found)))
}

fn create_pull(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let repo = call.repo(state)?;
    let body = call.request.json();
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(source), Some(target)) = (text("sourceRefName"), text("targetRefName")) else {
        return Err(refuse(
            400,
            "sourceRefName and targetRefName are required",
            "InvalidArgumentValueException",
        ));
    };
    let branches = &state.repos[&repo.key].branches;
    for name in [&source, &target] {
        let short = name.strip_prefix("refs/heads/").unwrap_or(name);
        if !branches.contains_key(short) {
            return Err(refuse(
                404,
                &format!(
                    "TF401398: The pull request cannot be activated because the source and/or the target branch no longer exists, or the requested refs are not branches: {name}"
                ),
                "GitPullRequestCannotBeActivated",
            ));
        }
    }
    if state
        .prs
        .iter()
        .any(|p| repo.holds(p) && p.status == "active" && p.source == source && p.target == target)
    {
        return Err(refuse(
            409,
            "TF401179: An active pull request for the source and target branch already exists.",
            "GitPullRequestExistsException",
        ));
    }
    let description = text("description").unwrap_or_default();
    if description.chars().count() > 4000 {
        return Err(too_long());
    }
    let id = state.next_pr;
    state.next_pr += 1;
    let pr = FakePr {
        id,
        project: repo.key.0.clone(),
        repository: repo.key.1.clone(),
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
    let json = pr_json(call, &repo, &pr);
    state.prs.push(pr);
    Ok(answer(201, json))
}

fn get_pull(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let repo = call.repo(state)?;
    let i = pull(state, &repo, call)?;
    Ok(answer(200, pr_json(call, &repo, &state.prs[i])))
}

fn update_pull(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let repo = call.repo(state)?;
    let i = pull(state, &repo, call)?;
    let body = call.request.json();
    let refusal = state.repos[&repo.key].refuse_auto_complete.clone();
    let pr = &mut state.prs[i];
    if let Some(set_by) = body.get("autoCompleteSetBy") {
        if let Some(message) = refusal {
            return Err(refuse(400, &message, "InvalidArgumentValueException"));
        }
        if pr.draft {
            return Err(refuse(
                400,
                "TF401196: Auto-complete cannot be set on a draft pull request.",
                "InvalidArgumentValueException",
            ));
        }
        let id = set_by.get("id").and_then(Value::as_str).unwrap_or_default();
        if id != call.identity {
            return Err(refuse(
                403,
                "TF401289: Only the caller may set auto-complete on their behalf.",
                "UnauthorizedAccessException",
            ));
        }
        pr.auto_complete_set_by = Some(id.to_owned());
    }
    if let Some(title) = body.get("title").and_then(Value::as_str) {
        pr.title = title.to_owned();
    }
    if let Some(description) = body.get("description").and_then(Value::as_str) {
        if description.chars().count() > 4000 {
            return Err(too_long());
        }
        pr.description = description.to_owned();
    }
    if let Some(status) = body.get("status").and_then(Value::as_str) {
        if pr.status != "active" && status == "abandoned" {
            return Err(refuse(
                409,
                "TF401181: The pull request is not active.",
                "GitPullRequestNotActiveException",
            ));
        }
        pr.status = status.to_owned();
        if status == "abandoned" {
            pr.auto_complete_set_by = None;
        }
    }
    Ok(answer(200, pr_json(call, &repo, pr)))
}

fn create_label(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let repo = call.repo(state)?;
    let i = pull(state, &repo, call)?;
    let body = call.request.json();
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return Err(refuse(
            400,
            "name is required",
            "InvalidArgumentValueException",
        ));
    };
    if name.trim().is_empty() || name.len() > 400 {
        return Err(refuse(
            400,
            "TF401463: The tag name is invalid.",
            "InvalidTagNameException",
        ));
    }
    let labels = &mut state.prs[i].labels;
    if !labels.iter().any(|l| l == name) {
        labels.push(name.to_owned());
    }
    Ok(answer(
        200,
        json!({ "id": format!("label-{name}"), "name": name, "active": true }),
    ))
}

fn put_reviewer(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let repo = call.repo(state)?;
    let i = pull(state, &repo, call)?;
    let reviewer = &call.request.params[3];
    if !state.identities.contains(reviewer) {
        return Err(refuse(
            400,
            &format!("TF401181: The identity {reviewer} could not be found."),
            "IdentityNotFoundException",
        ));
    }
    let vote = call
        .request
        .json()
        .get("vote")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let reviewers = &mut state.prs[i].reviewers;
    if !reviewers.contains(reviewer) {
        reviewers.push(reviewer.clone());
    }
    Ok(answer(
        200,
        json!({ "id": reviewer, "vote": vote, "displayName": "Reviewer" }),
    ))
}

fn list_threads(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let repo = call.repo(state)?;
    let i = pull(state, &repo, call)?;
    let threads = state.prs[i].threads.iter().map(thread_json).collect();
    Ok(answer(200, list(threads)))
}

fn create_thread(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let repo = call.repo(state)?;
    let i = pull(state, &repo, call)?;
    let text = |c: &Value, key: &str, default: &str| {
        c.get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let comments: Vec<(u64, String, String)> = call
        .request
        .json()
        .get("comments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(n, c)| {
            (
                n as u64 + 1,
                text(c, "content", ""),
                text(c, "commentType", "text"),
            )
        })
        .collect();
    if comments.is_empty() || comments.iter().any(|(_, c, _)| c.is_empty()) {
        return Err(refuse(
            400,
            "A thread needs at least one comment with content.",
            "InvalidArgumentValueException",
        ));
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
    Ok(answer(200, json))
}

fn list_refs(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let repo = call.repo(state)?;
    let filter = call.request.query("filter").unwrap_or_default();
    let refs: Vec<Value> = state.repos[&repo.key]
        .branches
        .iter()
        .map(|(name, object)| (format!("refs/heads/{name}"), object))
        .filter(|(name, _)| name["refs/".len()..].starts_with(filter))
        .map(|(name, object)| json!({ "name": name, "objectId": object, "url": format!("{}/refs", repo.url) }))
        .collect();
    Ok(answer(200, list(refs)))
}

fn update_refs(state: &mut FakeState, call: &Call<'_>) -> Reply {
    let repo = call.repo(state)?;
    let Some(updates) = call.request.json().as_array().cloned() else {
        return Err(refuse(
            400,
            "a list of ref updates is required",
            "InvalidArgumentValueException",
        ));
    };
    let fake_repo = state.repos.get_mut(&repo.key).unwrap();
    let mut results = Vec::new();
    for update in updates {
        let field = |key: &str| update.get(key).and_then(Value::as_str).unwrap_or("");
        let (name, old, new) = (field("name"), field("oldObjectId"), field("newObjectId"));
        let short = name.strip_prefix("refs/heads/").unwrap_or(name).to_owned();
        let (success, status, message) = if fake_repo.protected.contains(&short) {
            (
                false,
                "writePermissionRequired",
                Some(format!("TF402455: Pushes to {short} are not permitted.")),
            )
        } else if fake_repo.branches.get(&short).map(String::as_str) != Some(old) {
            (false, "staleOldObjectId", None)
        } else if new == ZERO {
            fake_repo.branches.remove(&short);
            (true, "succeeded", None)
        } else {
            fake_repo.branches.insert(short.clone(), new.to_owned());
            (true, "succeeded", None)
        };
        results.push(json!({
            "name": name, "oldObjectId": old, "newObjectId": new,
            "success": success, "updateStatus": status, "customMessage": message,
            "repositoryId": fake_repo.id, "isLocked": false
        }));
    }
    Ok(answer(200, list(results)))
}

fn pr_json(call: &Call<'_>, repo: &Repo, pr: &FakePr) -> Value {
    let mut value = json!({
        "pullRequestId": pr.id,
        "codeReviewId": pr.id,
        "status": pr.status,
        "createdBy": { "id": call.identity, "displayName": "Courier Bot", "uniqueName": "courier@example.com" },
        "creationDate": format!("2026-11-22T09:{:02}:{:02}.000Z", (pr.id / 60) % 60, pr.id % 60),
        "title": pr.title,
        "description": pr.description,
        "sourceRefName": pr.source,
        "targetRefName": pr.target,
        "isDraft": pr.draft,
        "mergeStatus": "succeeded",
        "supportsIterations": true,
        "url": format!("{}/pullRequests/{}", repo.url, pr.id),
        "repository": {
            "id": repo.id,
            "name": repo.key.1,
            "url": repo.url,
            "project": { "id": "00000000-0000-4000-8000-0000000000aa", "name": repo.key.0, "state": "wellFormed", "visibility": "private" }
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
