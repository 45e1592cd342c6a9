//! A stateful fake of the GitHub REST API (and the one GraphQL mutation Courier sends),
//! served by axum on 127.0.0.1:0 so the real octocrab client drives it over HTTP.
//!
//! It models repositories, branches, pull requests (open / closed / merged, draft, head,
//! base, title, body), labels, requested reviewers and teams, assignees, comments, the
//! repository's "allow auto-merge" setting, personal tokens and a GitHub App (JWT checked
//! against the App's public key, installation tokens minted with an expiry). A repository
//! backed by a real bare repository ([`GitHubFake::back_with_git`]) also has the Git
//! database API (blobs, trees, commits, refs), written into that repository. Faults are
//! scripted per route (`enqueue_fault`); a request can be held mid-flight (`hold`), before or
//! after the fake applies it, so a test can crash the client at an exact step. Every request
//! is recorded for the contract check ([`GitHubFake::assert_contract`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::Response;
use serde_json::{Value, json};

use super::contract::{Contract, RecordedRequest};
pub use super::fault::Fault;
use super::front::{Endpoint, Forge, Front, Params, Reply, Request, bind, routes};
use super::git_dir::{GitDir, Person, TreeEdit};
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

/// Where the fake's pull requests live on the web.
const WEB: &str = "https://github.example";

/// Who GitHub makes the author of a commit created through the API without one: the
/// token's user (the fake's tokens all belong to this bot account).
pub const TOKEN_USER: &str = "courier-bot";
pub const TOKEN_USER_EMAIL: &str = "courier-bot@users.noreply.github.example";
/// The committer GitHub writes on the commits it creates and signs ("web-flow").
pub const WEB_FLOW: &str = "GitHub";
pub const WEB_FLOW_EMAIL: &str = "noreply@github.com";
/// What stands in the `gpgsig` header of the fake's signed commits.
pub const FAKE_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----\n\nfake signature of the GitHub fake\n-----END PGP SIGNATURE-----";

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
    /// The real repository behind it: branches and git objects live there.
    git: Option<GitDir>,
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
    hand_check_violations: Vec<String>,
    next_id: u64,
}

/// The GitHub half of the fake; the shared half is its [`Front`].
struct GitHub {
    /// `/api/v3` on GitHub Enterprise Server.
    prefix: String,
    state: Mutex<FakeState>,
}

type Respond = fn(&mut FakeState, &Request) -> Reply;

pub struct GitHubFake {
    front: Front<GitHub>,
}

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
        let state = Mutex::new(FakeState {
            next_id: 1000,
            ..FakeState::default()
        });
        let prefix = prefix.to_owned();
        let front = Front::start(|_| GitHub { prefix, state }).await;
        GitHubFake { front }
    }

    /// What to configure as the provider's API URL.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.front.origin(), self.front.forge().prefix)
    }

    fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.front.forge().state.lock().unwrap())
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

    /// Backs the repository with the bare repository at `path` (the one the test git
    /// server serves): its branches are read from there, and the Git database API
    /// (`/git/blobs`, `/git/trees`, `/git/commits`, `/git/refs`) writes into it.
    pub fn back_with_git(&self, slug: &str, path: &Path) {
        self.with(|s| repo_mut(s, slug).git = Some(GitDir::new(path)));
    }

    pub fn add_branch(&self, slug: &str, branch: &str) {
        self.with(|s| repo_mut(s, slug).branches.insert(branch.to_owned()));
    }

    pub fn has_branch(&self, slug: &str, branch: &str) -> bool {
        self.with(|s| repo_mut(s, slug).tip(branch).is_some())
    }

    /// The commit a branch points at, if it exists.
    pub fn branch_tip(&self, slug: &str, branch: &str) -> Option<String> {
        self.with(|s| repo_mut(s, slug).tip(branch))
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
                state: if state == "open" { "open" } else { "closed" }.into(),
                merged: state == "merged",
                ..new_pr(slug, number, title, body, head, base)
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

    /// The next request to `method template` (a route of [`GitHub::ROUTES`], e.g.
    /// `"POST", "/repos/{owner}/{repo}/pulls"`) gets `fault` instead of its answer.
    pub fn enqueue_fault(&self, method: &str, template: &str, fault: Fault) {
        self.front.enqueue_fault(method, template, fault);
    }

    /// Holds the next request to `method template` (a route of [`GitHub::ROUTES`]) until
    /// the returned [`Hold`] is released, before or after applying it, so a test can stop
    /// the client at that exact step (kill it, say) and see what the forge is left with.
    /// Later requests to the route pass.
    pub fn hold(&self, method: &str, template: &str, mode: HoldMode) -> Hold {
        self.front.hold(method, template, mode)
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
        self.front.requests()
    }

    /// `"METHOD /path"` of every request so far, queries left out.
    pub fn request_lines(&self) -> Vec<String> {
        self.front.request_lines()
    }

    /// Every recorded request conforms to GitHub's REST description, and the GraphQL and
    /// App requests passed the fake's hand checks.
    pub fn assert_contract(&self) {
        self.front.assert_contract();
    }
}

impl Forge for GitHub {
    type Respond = Respond;

    /// The routes the fake serves, named by the description's templates.
    const ROUTES: &'static [Endpoint<Respond>] = routes![
        GET "/repos/{owner}/{repo}/pulls" => list_pulls,
        POST "/repos/{owner}/{repo}/pulls" => create_pull,
        GET "/repos/{owner}/{repo}/pulls/{pull_number}" => get_pull,
        PATCH "/repos/{owner}/{repo}/pulls/{pull_number}" => update_pull,
        POST "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers" => request_reviewers,
        POST "/repos/{owner}/{repo}/issues/{issue_number}/labels" => add_labels,
        POST "/repos/{owner}/{repo}/issues/{issue_number}/assignees" => add_assignees,
        GET "/repos/{owner}/{repo}/issues/{issue_number}/comments" => list_comments,
        POST "/repos/{owner}/{repo}/issues/{issue_number}/comments" => create_comment,
        GET "/repos/{owner}/{repo}/git/ref/{ref}" => get_ref,
        POST "/repos/{owner}/{repo}/git/refs" => create_ref,
        PATCH "/repos/{owner}/{repo}/git/refs/{ref}" => update_ref,
        DELETE "/repos/{owner}/{repo}/git/refs/{ref}" => delete_ref,
        POST "/repos/{owner}/{repo}/git/blobs" => create_blob,
        POST "/repos/{owner}/{repo}/git/trees" => create_tree,
        POST "/repos/{owner}/{repo}/git/commits" => create_commit,
        GET "/repos/{owner}/{repo}/installation" => installation,
        POST "/app/installations/{installation_id}/access_tokens" => mint,
        POST "/graphql" => graphql,
    ];

    /// REST under the prefix; GraphQL beside it (`/graphql`, or `/api/graphql` on
    /// Enterprise Server).
    fn route(&self, method: &str, path: &str) -> Option<(&'static Endpoint<Respond>, Params)> {
        let graphql = match self.prefix.strip_suffix("/v3") {
            Some(root) => format!("{root}/graphql"),
            None => format!("{}/graphql", self.prefix),
        };
        if path == graphql {
            return bind(Self::ROUTES, method, "/graphql", None);
        }
        // Refs span segments (`heads/feature/x`).
        bind(
            Self::ROUTES,
            method,
            path.strip_prefix(&self.prefix)?,
            Some("ref"),
        )
        .filter(|(route, _)| route.template != "/graphql")
    }

    fn error_body(text: &str) -> Value {
        json!({ "message": text, "documentation_url": "https://docs.github.com/rest" })
    }

    fn no_route(&self, _request: &Request) -> Response {
        message(404, "Not Found")
    }

    /// App routes take the App's JWT, others a token; a repository route answers 404 for
    /// a repository the fake does not have.
    fn answer(&self, respond: Respond, request: &Request) -> Response {
        let mut state = self.state.lock().unwrap();
        let template = request.template;
        let bearer = request.bearer().unwrap_or("");
        if template == "/repos/{owner}/{repo}/installation" || template.starts_with("/app/") {
            if let Err(why) = verify_jwt(&state, bearer) {
                return message(
                    401,
                    &format!("A JSON web token could not be decoded ({why})"),
                );
            }
        } else {
            let now = SystemTime::now();
            let valid = state.tokens.contains(bearer)
                || state
                    .minted
                    .iter()
                    .any(|(t, exp)| t == bearer && *exp > now);
            if !valid {
                return message(401, "Bad credentials");
            }
        }
        if template.starts_with("/repos/") && !state.repos.contains_key(&slug(request)) {
            return message(404, "Not Found");
        }
        respond(&mut state, request).unwrap_or_else(|refusal| refusal)
    }

    fn contract_violations(&self, requests: &[RecordedRequest]) -> Vec<String> {
        let contract = Contract::github().with_prefix(&self.prefix);
        let mut violations: Vec<String> = contract
            .check_all(requests, OUTSIDE_REST_DESCRIPTION)
            .iter()
            .map(ToString::to_string)
            .collect();
        violations.extend(self.state.lock().unwrap().hand_check_violations.clone());
        // GitHub asks every client to send these; octocrab and Courier's client layer add
        // them, and a refactor that lost them would go unnoticed against a lenient fake.
        for request in requests {
            let header = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            if header("accept") != Some("application/vnd.github+json") {
                violations.push(format!("{request}: accept is {:?}", header("accept")));
            }
            if header("x-github-api-version").is_none() {
                violations.push(format!("{request}: no x-github-api-version"));
            }
            let agents = request
                .headers
                .iter()
                .filter(|(n, _)| n == "user-agent")
                .count();
            if agents != 1 {
                violations.push(format!(
                    "{request}: {agents} user-agent headers, GitHub wants one"
                ));
            }
        }
        violations
    }
}

fn message(status: u16, text: &str) -> Response {
    answer(status, GitHub::error_body(text))
}

fn not_found() -> Response {
    message(404, "Not Found")
}

/// GitHub's 422 for a pull request it cannot create, with the one error it names.
fn invalid_pull(error: Value) -> Response {
    answer(
        422,
        json!({ "message": "Validation Failed", "errors": [error] }),
    )
}

fn repo_mut<'s>(state: &'s mut FakeState, slug: &str) -> &'s mut FakeRepo {
    state
        .repos
        .get_mut(slug)
        .unwrap_or_else(|| panic!("the fake has no repository {slug}"))
}

/// `owner/repo` of a repository route.
fn slug(request: &Request) -> String {
    format!("{}/{}", request.params[0], request.params[1])
}

/// The repository a route names (`answer` made sure the fake has it).
fn repo<'s>(state: &'s mut FakeState, request: &Request) -> &'s mut FakeRepo {
    repo_mut(state, &slug(request))
}

/// The pull request a route's `{pull_number}` or `{issue_number}` names, or a 404.
fn numbered<'p>(pulls: &'p mut [FakePr], request: &Request) -> Result<&'p mut FakePr, Response> {
    let number = request.params[2].parse::<u64>().map_err(|_| not_found())?;
    pulls
        .iter_mut()
        .find(|p| p.number == number)
        .ok_or_else(not_found)
}

fn next_number(state: &mut FakeState) -> u64 {
    // Issue and PR numbers share one sequence per repository on GitHub; one global
    // sequence is enough for the fake and keeps numbers distinct across repos.
    state.next_id += 1;
    state.next_id - 1000
}

/// An open pull request as GitHub creates it, before anything is added to it.
fn new_pr(slug: &str, number: u64, title: &str, body: &str, head: &str, base: &str) -> FakePr {
    FakePr {
        number,
        node_id: format!("PR_fake_{}_{number}", slug.replace('/', "_")),
        state: "open".into(),
        merged: false,
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
    }
}

fn strings(body: &Value, key: &str) -> Vec<String> {
    body.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn installation(state: &mut FakeState, request: &Request) -> Reply {
    let id = repo(state, request).installation.ok_or_else(not_found)?;
    Ok(answer(
        200,
        json!({ "id": id, "app_id": state.app.as_ref().map(|a| a.app_id) }),
    ))
}

fn list_pulls(state: &mut FakeState, request: &Request) -> Reply {
    let slug = slug(request);
    let wanted_state = request.query("state").unwrap_or("open");
    let head = request.query("head");
    let base = request.query("base");
    let mut pulls: Vec<Value> = repo_mut(state, &slug)
        .pulls
        .iter()
        .filter(|p| wanted_state == "all" || p.state == wanted_state)
        .filter(|p| head.is_none_or(|h| *h == format!("{}:{}", request.params[0], p.head)))
        .filter(|p| base.is_none_or(|b| b == p.base))
        .map(|p| pull_json(&slug, p))
        .collect();
    if request.query("direction") != Some("asc") {
        pulls.reverse();
    }
    Ok(answer(200, Value::Array(pulls)))
}

fn create_pull(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let (Some(title), Some(head), Some(base)) = (text("title"), text("head"), text("base")) else {
        return Err(invalid_pull(
            json!({ "resource": "PullRequest", "code": "missing_field" }),
        ));
    };
    let slug = slug(request);
    let repo = repo_mut(state, &slug);
    for (field, branch) in [("head", head), ("base", base)] {
        if !repo.branches.contains(branch) {
            return Err(invalid_pull(
                json!({ "resource": "PullRequest", "field": field, "code": "invalid" }),
            ));
        }
    }
    if repo
        .pulls
        .iter()
        .any(|p| p.state == "open" && p.head == head && p.base == base)
    {
        return Err(invalid_pull(
            json!({ "resource": "PullRequest", "code": "custom", "message": format!("A pull request already exists for {}:{head}.", request.params[0]) }),
        ));
    }
    let number = next_number(state);
    let pr = FakePr {
        draft: body.get("draft").and_then(Value::as_bool).unwrap_or(false),
        ..new_pr(
            &slug,
            number,
            title,
            text("body").unwrap_or_default(),
            head,
            base,
        )
    };
    let json = pull_json(&slug, &pr);
    repo_mut(state, &slug).pulls.push(pr);
    Ok(answer(201, json))
}

fn get_pull(state: &mut FakeState, request: &Request) -> Reply {
    let pr = numbered(&mut repo(state, request).pulls, request)?;
    Ok(answer(200, pull_json(&slug(request), pr)))
}

fn update_pull(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let pr = numbered(&mut repo(state, request).pulls, request)?;
    if let Some(title) = body.get("title").and_then(Value::as_str) {
        pr.title = title.into();
    }
    if let Some(text) = body.get("body").and_then(Value::as_str) {
        pr.body = text.into();
    }
    if let Some(s) = body.get("state").and_then(Value::as_str) {
        if pr.merged {
            return Err(message(
                422,
                "Cannot change the state of a merged pull request",
            ));
        }
        pr.state = s.into();
    }
    Ok(answer(200, pull_json(&slug(request), pr)))
}

fn request_reviewers(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let slug = slug(request);
    let FakeRepo {
        pulls,
        collaborators,
        teams,
        ..
    } = repo_mut(state, &slug);
    let pr = numbered(pulls, request)?;
    let (users, wanted_teams) = (
        strings(&body, "reviewers"),
        strings(&body, "team_reviewers"),
    );
    if users.iter().any(|u| !collaborators.contains(u))
        || wanted_teams.iter().any(|t| !teams.contains(t))
    {
        return Err(message(
            422,
            &format!(
                "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the {slug} repository."
            ),
        ));
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
    Ok(answer(201, pull_json(&slug, pr)))
}

fn add_labels(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let pr = numbered(&mut repo(state, request).pulls, request)?;
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
    Ok(answer(
        200,
        Value::Array(pr.labels.iter().map(|l| json!({ "name": l })).collect()),
    ))
}

fn add_assignees(state: &mut FakeState, request: &Request) -> Reply {
    let FakeRepo {
        pulls,
        collaborators,
        ..
    } = repo(state, request);
    let pr = numbered(pulls, request)?;
    // GitHub silently ignores users who cannot be assigned.
    for a in strings(&request.json(), "assignees") {
        if collaborators.contains(&a) && !pr.assignees.contains(&a) {
            pr.assignees.push(a);
        }
    }
    Ok(answer(
        201,
        json!({ "number": pr.number, "assignees": pr.assignees.iter().map(|a| json!({ "login": a })).collect::<Vec<_>>() }),
    ))
}

fn list_comments(state: &mut FakeState, request: &Request) -> Reply {
    let pr = numbered(&mut repo(state, request).pulls, request)?;
    let get = |k: &str| request.query(k).and_then(|v| v.parse::<usize>().ok());
    let per_page = get("per_page").unwrap_or(30).min(100);
    let page = get("page").unwrap_or(1).max(1);
    let items: Vec<Value> = pr
        .comments
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(id, body)| json!({ "id": id, "body": body }))
        .collect();
    Ok(answer(200, Value::Array(items)))
}

fn create_comment(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let id = state.next_id + 1;
    let pr = numbered(&mut repo(state, request).pulls, request)?;
    let text = body
        .get("body")
        .and_then(Value::as_str)
        .ok_or_else(|| message(422, "Validation Failed"))?;
    pr.comments.push((id, text.to_owned()));
    state.next_id = id;
    Ok(answer(201, json!({ "id": id, "body": text })))
}

impl FakeRepo {
    /// Where a branch points: in the backing repository, if there is one.
    fn tip(&self, branch: &str) -> Option<String> {
        match &self.git {
            Some(git) => git.tip(branch),
            None => self
                .branches
                .contains(branch)
                .then(|| tip_of(&self.tips, branch)),
        }
    }

    /// The backing repository of a Git database route.
    fn git(&self) -> Result<&GitDir, Response> {
        self.git.as_ref().ok_or_else(|| {
            message(
                409,
                "the fake has no git repository behind this one (GitHubFake::back_with_git)",
            )
        })
    }

    /// Records a branch the Git database API moved, as the pull request routes see them.
    fn moved(&mut self, branch: &str, sha: &str) {
        self.branches.insert(branch.to_owned());
        self.tips.insert(branch.to_owned(), sha.to_owned());
    }
}

fn ref_json(slug: &str, branch: &str, sha: &str) -> Value {
    let api = format!("{WEB}/api/repos/{slug}/git");
    json!({
        "ref": format!("refs/heads/{branch}"),
        "node_id": format!("REF_fake_{branch}"),
        "url": format!("{api}/refs/heads/{branch}"),
        "object": { "type": "commit", "sha": sha, "url": format!("{api}/commits/{sha}") },
    })
}

fn get_ref(state: &mut FakeState, request: &Request) -> Reply {
    let slug = slug(request);
    let repo = repo_mut(state, &slug);
    let branch = request.params[2]
        .strip_prefix("heads/")
        .ok_or_else(not_found)?;
    let sha = repo.tip(branch).ok_or_else(not_found)?;
    Ok(answer(200, ref_json(&slug, branch, &sha)))
}

fn delete_ref(state: &mut FakeState, request: &Request) -> Reply {
    let repo = repo(state, request);
    let Some(branch) = request.params[2].strip_prefix("heads/") else {
        return Err(message(422, "Reference does not exist"));
    };
    if let Some(git) = &repo.git {
        if git.tip(branch).is_none() {
            return Err(message(422, "Reference does not exist"));
        }
        git.delete_branch(branch).map_err(|e| message(500, &e))?;
        repo.branches.remove(branch);
        return Ok(answer(204, Value::Null));
    }
    match repo.branches.remove(branch) {
        true => Ok(answer(204, Value::Null)),
        false => Err(message(422, "Reference does not exist")),
    }
}

/// `POST /git/refs`: a new branch (only `refs/heads/…` in the fake).
fn create_ref(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let slug = slug(request);
    let repo = repo_mut(state, &slug);
    let git = repo.git()?;
    let (Some(name), Some(sha)) = (
        body.get("ref").and_then(Value::as_str),
        body.get("sha").and_then(Value::as_str),
    ) else {
        return Err(message(422, "Invalid request."));
    };
    let Some(branch) = name.strip_prefix("refs/heads/").filter(|b| !b.is_empty()) else {
        return Err(message(422, "Reference name is not valid"));
    };
    if !git.has(sha, "commit") {
        return Err(message(422, "Object does not exist"));
    }
    if git.tip(branch).is_some() {
        return Err(message(422, "Reference already exists"));
    }
    git.set_branch(branch, sha, None)
        .map_err(|e| message(422, &e))?;
    let branch = branch.to_owned();
    repo.moved(&branch, sha);
    Ok(answer(201, ref_json(&slug, &branch, sha)))
}

/// `PATCH /git/refs/{ref}`: moves an existing branch; a non-fast-forward needs `force`.
fn update_ref(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let slug = slug(request);
    let repo = repo_mut(state, &slug);
    let git = repo.git()?;
    let Some(sha) = body.get("sha").and_then(Value::as_str) else {
        return Err(message(422, "Invalid request."));
    };
    let force = body.get("force").and_then(Value::as_bool).unwrap_or(false);
    let branch = request.params[2]
        .strip_prefix("heads/")
        .ok_or_else(|| message(422, "Reference does not exist"))?
        .to_owned();
    let old = git
        .tip(&branch)
        .ok_or_else(|| message(422, "Reference does not exist"))?;
    if !git.has(sha, "commit") {
        return Err(message(422, "Object does not exist"));
    }
    if !force && !git.is_ancestor(&old, sha) {
        return Err(message(422, "Update is not a fast forward"));
    }
    git.set_branch(&branch, sha, Some(&old))
        .map_err(|e| message(422, &e))?;
    repo.moved(&branch, sha);
    Ok(answer(200, ref_json(&slug, &branch, sha)))
}

fn create_blob(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let git = repo(state, request).git()?;
    let content = body
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| message(422, "Invalid request."))?;
    let bytes = match body
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("utf-8")
    {
        "utf-8" => content.as_bytes().to_vec(),
        "base64" => crate::server::base64_decode(content)
            .ok_or_else(|| message(422, "Invalid base64 content"))?,
        other => {
            return Err(message(
                422,
                &format!("encoding {other:?} is not supported"),
            ));
        }
    };
    let sha = git.write_blob(&bytes).map_err(|e| message(500, &e))?;
    let url = format!("{WEB}/api/repos/{}/git/blobs/{sha}", slug(request));
    Ok(answer(201, json!({ "sha": sha, "url": url })))
}

fn create_tree(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let git = repo(state, request).git()?;
    let base = body.get("base_tree").and_then(Value::as_str);
    if base.is_some_and(|b| !git.has(b, "tree")) {
        return Err(message(422, "base_tree is not a valid tree oid"));
    }
    let mut edits = Vec::new();
    for entry in body
        .get("tree")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(path), Some(mode)) = (text("path"), text("mode")) else {
            return Err(message(422, "Invalid tree entry"));
        };
        if entry.get("content").is_some() || mode == "040000" {
            // Courier sends blob ids only; the fake does not model the rest.
            return Err(message(
                422,
                "the fake takes blob and submodule entries by sha only",
            ));
        }
        edits.push(TreeEdit {
            path,
            mode,
            sha: text("sha"),
        });
    }
    let sha = git
        .build_tree(base, &edits)
        .map_err(|e| message(422, &format!("GitRPC::BadObjectState: {e}")))?;
    let url = format!("{WEB}/api/repos/{}/git/trees/{sha}", slug(request));
    Ok(answer(
        201,
        json!({ "sha": sha, "url": url, "tree": [], "truncated": false }),
    ))
}

/// `POST /git/commits`. Without `author`, `committer` and `signature`, GitHub writes the
/// token's user as author, itself as committer, and signs the commit ("Verified").
fn create_commit(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let git = repo(state, request).git()?;
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let (Some(message_text), Some(tree)) = (text("message"), text("tree")) else {
        return Err(message(422, "Invalid request."));
    };
    if !git.has(tree, "tree") {
        return Err(message(422, "Tree SHA does not exist"));
    }
    let parents = strings(&body, "parents");
    if parents.iter().any(|p| !git.has(p, "commit")) {
        return Err(message(
            422,
            "Parent SHA does not exist or is not a commit object",
        ));
    }
    let person = |key: &str| {
        body.get(key).map(|p| {
            (
                p.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                p.get("email")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
    };
    let (author, committer) = (person("author"), person("committer"));
    let github_signs = author.is_none() && committer.is_none() && body.get("signature").is_none();
    let author = author.unwrap_or_else(|| (TOKEN_USER.into(), TOKEN_USER_EMAIL.into()));
    let committer = match (committer, github_signs) {
        (Some(c), _) => c,
        (None, true) => (WEB_FLOW.into(), WEB_FLOW_EMAIL.into()),
        (None, false) => author.clone(),
    };
    let sha = git
        .write_commit(
            tree,
            &parents,
            message_text,
            &Person {
                name: &author.0,
                email: &author.1,
            },
            &Person {
                name: &committer.0,
                email: &committer.1,
            },
            github_signs.then_some(FAKE_SIGNATURE),
        )
        .map_err(|e| message(500, &e))?;
    let url = format!("{WEB}/api/repos/{}/git/commits/{sha}", slug(request));
    Ok(answer(
        201,
        json!({
            "sha": sha,
            "url": url,
            "message": message_text,
            "tree": { "sha": tree },
            "parents": parents.iter().map(|p| json!({ "sha": p })).collect::<Vec<_>>(),
            "author": { "name": author.0, "email": author.1 },
            "committer": { "name": committer.0, "email": committer.1 },
            "verification": {
                "verified": github_signs,
                "reason": if github_signs { "valid" } else { "unsigned" },
                "signature": github_signs.then_some(FAKE_SIGNATURE),
                "payload": Value::Null,
                "verified_at": Value::Null,
            },
        }),
    ))
}

fn pull_json(slug: &str, pr: &FakePr) -> Value {
    let owner = slug.split('/').next().unwrap_or("");
    json!({
        "number": pr.number,
        "node_id": pr.node_id,
        "url": format!("{WEB}/api/repos/{slug}/pulls/{}", pr.number),
        "html_url": format!("{WEB}/{slug}/pull/{}", pr.number),
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

fn mint(state: &mut FakeState, request: &Request) -> Reply {
    let body = request.json();
    let installation = request.params[0]
        .parse::<u64>()
        .ok()
        .filter(|id| state.repos.values().any(|r| r.installation == Some(*id)))
        .ok_or_else(not_found)?;
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
    Ok(answer(
        201,
        json!({ "token": token, "expires_at": format_timestamp(expires), "permissions": { "pull_requests": "write", "contents": "write" } }),
    ))
}

/// GitHub's GraphQL endpoint for the one mutation Courier sends; the request shape is
/// checked here because the REST description has no GraphQL.
fn graphql(state: &mut FakeState, request: &Request) -> Reply {
    let body = &request.json();
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
        return Ok(answer(
            200,
            json!({ "errors": [{ "message": "Parse error" }] }),
        ));
    }
    let id = id.unwrap_or_default();
    for repo in state.repos.values_mut() {
        let allowed = repo.allow_auto_merge;
        if let Some(pr) = repo.pulls.iter_mut().find(|p| p.node_id == id) {
            if !allowed {
                return Ok(answer(
                    200,
                    json!({
                        "data": { "enablePullRequestAutoMerge": null },
                        "errors": [{ "type": "UNPROCESSABLE", "path": ["enablePullRequestAutoMerge"], "locations": [{ "line": 1, "column": 37 }], "message": "Pull request Auto merge is not allowed for this repository" }]
                    }),
                ));
            }
            pr.auto_merge = true;
            return Ok(answer(
                200,
                json!({ "data": { "enablePullRequestAutoMerge": { "pullRequest": { "number": pr.number } } } }),
            ));
        }
    }
    Ok(answer(
        200,
        json!({ "data": null, "errors": [{ "type": "NOT_FOUND", "message": format!("Could not resolve to a node with the global id of '{id}'") }] }),
    ))
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
