//! A stateful fake of the GitLab REST v4 API, served by axum on 127.0.0.1:0 so the real
//! `gitlab` crate endpoints, sent by the provider's client, drive it over HTTP.
//!
//! It models projects (by full path, nested groups included, and by numeric id),
//! branches, merge requests (iid, state, source/target branch, title with GitLab's draft
//! prefixes, description, head sha, labels, reviewers, assignees, "merge when pipeline
//! succeeds"), users and project members, notes (comments, and GitLab's own system notes),
//! and access tokens (`PRIVATE-TOKEN`). Bodies are accepted form-encoded (what the crate
//! sends) or as JSON, as GitLab does. Faults are scripted per route (`enqueue_fault`).
//! Every request is recorded, secrets left out, for [`GitLabFake::assert_contract`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::contract::{Contract, RecordedRequest, resolve};
pub use super::fault::Fault;
use super::front::{Endpoint, Forge, Front, Params, Reply, Request, bind, routes};
pub use super::hold::{Hold, HoldMode};
use super::{answer, tip_of};

/// Operations Courier calls that GitLab's REST description (tests/contracts/gitlab.yaml)
/// does not contain; the fake checks their shape by hand (`hand_check`).
pub const OUTSIDE_REST_DESCRIPTION: &[(&str, &str)] = &[
    ("GET", "/api/v4/users"),
    (
        "GET",
        "/api/v4/projects/{id}/merge_requests/{noteable_id}/notes",
    ),
    (
        "POST",
        "/api/v4/projects/{id}/merge_requests/{noteable_id}/notes",
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub struct FakeMr {
    pub id: u64,
    pub iid: u64,
    /// `opened`, `closed` or `merged`.
    pub state: String,
    pub title: String,
    pub description: String,
    pub source_branch: String,
    pub target_branch: String,
    /// Another project's id when the merge request comes from a fork.
    pub source_project_id: u64,
    pub sha: String,
    pub labels: Vec<String>,
    pub reviewer_ids: Vec<u64>,
    pub assignee_ids: Vec<u64>,
    pub auto_merge: bool,
    /// `(id, body, system)`.
    pub notes: Vec<(u64, String, bool)>,
}

impl FakeMr {
    /// GitLab's rule: a title starting with `Draft:`, `[Draft]` or `(Draft)`.
    pub fn draft(&self) -> bool {
        let lower = self.title.to_ascii_lowercase();
        ["draft:", "[draft]", "(draft)"]
            .iter()
            .any(|p| lower.starts_with(p))
    }
}

struct FakeProject {
    id: u64,
    branches: BTreeSet<String>,
    /// Branch tips a test set; others get one made up from the name (`tip_of`).
    tips: HashMap<String, String>,
    mrs: Vec<FakeMr>,
    /// Whether "merge when pipeline succeeds" can be set (the project has CI and allows it).
    auto_merge_allowed: bool,
    /// User ids that can be reviewers and assignees.
    members: BTreeSet<u64>,
}

#[derive(Default)]
struct FakeState {
    projects: HashMap<String, FakeProject>,
    users: Vec<(u64, String)>,
    tokens: HashSet<String>,
    hand_check_violations: Vec<String>,
    next_id: u64,
    /// The instance's root URL, where `web_url`s point.
    web_root: String,
}

/// The GitLab half of the fake; the shared half is its [`Front`].
struct GitLab {
    /// GitLab's "relative URL root".
    prefix: String,
    state: Mutex<FakeState>,
}

type Respond = fn(&mut FakeState, &Request) -> Reply;

pub struct GitLabFake {
    front: Front<GitLab>,
}

impl GitLabFake {
    /// An instance at the root (`http://127.0.0.1:PORT`).
    pub async fn start() -> GitLabFake {
        GitLabFake::start_at("").await
    }

    /// An instance served under a path (`http://127.0.0.1:PORT/gitlab`), GitLab's
    /// "relative URL root".
    pub async fn start_at(prefix: &str) -> GitLabFake {
        let front = Front::start(|origin| GitLab {
            prefix: prefix.to_owned(),
            state: Mutex::new(FakeState {
                next_id: 100,
                web_root: format!("{origin}{prefix}"),
                ..FakeState::default()
            }),
        })
        .await;
        GitLabFake { front }
    }

    /// What to configure as the provider's base URL.
    pub fn base_url(&self) -> String {
        format!("{}{}", self.front.origin(), self.front.forge().prefix)
    }

    fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.front.forge().state.lock().unwrap())
    }

    pub fn accept_token(&self, token: &str) {
        self.with(|s| s.tokens.insert(token.to_owned()));
    }

    /// A project (`group/sub/project`) with a `main` branch; returns its numeric id.
    pub fn add_project(&self, path: &str) -> u64 {
        self.with(|s| {
            s.next_id += 1;
            let id = s.next_id;
            let mut branches = BTreeSet::new();
            branches.insert("main".to_owned());
            s.projects.insert(
                path.to_owned(),
                FakeProject {
                    id,
                    branches,
                    tips: HashMap::new(),
                    mrs: Vec::new(),
                    auto_merge_allowed: true,
                    members: BTreeSet::new(),
                },
            );
            id
        })
    }

    pub fn add_branch(&self, path: &str, branch: &str) {
        self.with(|s| project_mut(s, path).branches.insert(branch.to_owned()));
    }

    pub fn has_branch(&self, path: &str, branch: &str) -> bool {
        self.with(|s| project_mut(s, path).branches.contains(branch))
    }

    /// The commit a branch points at, if it exists.
    pub fn branch_tip(&self, path: &str, branch: &str) -> Option<String> {
        self.with(|s| {
            let project = project_mut(s, path);
            project
                .branches
                .contains(branch)
                .then(|| tip_of(&project.tips, branch))
        })
    }

    /// Points a branch at `sha` (creating it), as a push would.
    pub fn move_branch(&self, path: &str, branch: &str, sha: &str) {
        self.with(|s| {
            let project = project_mut(s, path);
            project.branches.insert(branch.to_owned());
            project.tips.insert(branch.to_owned(), sha.to_owned());
        });
    }

    /// A user; `member_of` lists the projects where it can review and be assigned.
    pub fn add_user(&self, username: &str, member_of: &[&str]) -> u64 {
        self.with(|s| {
            s.next_id += 1;
            let id = s.next_id;
            s.users.push((id, username.to_owned()));
            for path in member_of {
                project_mut(s, path).members.insert(id);
            }
            id
        })
    }

    pub fn set_auto_merge_allowed(&self, path: &str, allowed: bool) {
        self.with(|s| project_mut(s, path).auto_merge_allowed = allowed);
    }

    /// A merge request as if someone had opened it earlier; `state` is `opened`, `closed`
    /// or `merged`. Creates the source branch. Returns the iid.
    pub fn seed_mr(
        &self,
        path: &str,
        source: &str,
        target: &str,
        title: &str,
        description: &str,
        state: &str,
    ) -> u64 {
        self.with(|s| {
            let project = project_mut(s, path);
            let project_id = project.id;
            insert_mr(
                s,
                path,
                source,
                target,
                title,
                description,
                state,
                project_id,
            )
        })
    }

    /// A merge request into `path` from a fork (another project) whose branch has the
    /// same name as Courier's.
    pub fn seed_fork_mr(&self, path: &str, source: &str, target: &str, title: &str) -> u64 {
        self.with(|s| {
            s.next_id += 1;
            let fork_id = s.next_id;
            insert_mr(s, path, source, target, title, "", "opened", fork_id)
        })
    }

    /// Someone's label, reviewer or assignee already on a merge request.
    pub fn decorate_by_hand(
        &self,
        path: &str,
        iid: u64,
        label: Option<&str>,
        reviewer: Option<u64>,
        assignee: Option<u64>,
    ) {
        self.with(|s| {
            let mr = mr_mut(project_mut(s, path), iid);
            mr.labels.extend(label.map(str::to_owned));
            mr.reviewer_ids.extend(reviewer);
            mr.assignee_ids.extend(assignee);
        });
    }

    /// A new commit on the merge request's source branch (its head sha changes).
    pub fn push_to(&self, path: &str, iid: u64) {
        self.with(|s| {
            s.next_id += 1;
            let sha = format!("{:040x}", s.next_id);
            mr_mut(project_mut(s, path), iid).sha = sha;
        });
    }

    pub fn add_note(&self, path: &str, iid: u64, body: &str, system: bool) {
        self.with(|s| {
            s.next_id += 1;
            let id = s.next_id;
            mr_mut(project_mut(s, path), iid)
                .notes
                .push((id, body.to_owned(), system));
        });
    }

    pub fn mr(&self, path: &str, iid: u64) -> FakeMr {
        self.with(|s| mr_mut(project_mut(s, path), iid).clone())
    }

    pub fn mrs(&self, path: &str) -> Vec<FakeMr> {
        self.with(|s| project_mut(s, path).mrs.clone())
    }

    /// The next request to `method template` (a route of [`GitLab::ROUTES`]) gets `fault`.
    pub fn enqueue_fault(&self, method: &str, template: &str, fault: Fault) {
        self.front.enqueue_fault(method, template, fault);
    }

    /// Holds the next request to `method template` (a route of [`GitLab::ROUTES`]) until
    /// the returned [`Hold`] is released, before or after applying it. Later requests pass.
    pub fn hold(&self, method: &str, template: &str, mode: HoldMode) -> Hold {
        self.front.hold(method, template, mode)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.front.requests()
    }

    /// `"METHOD /path"` of every request so far, queries left out.
    pub fn request_lines(&self) -> Vec<String> {
        self.front.request_lines()
    }

    /// Every recorded request conforms to GitLab's REST description (form bodies decoded
    /// first, see [`typed_body`]), and the requests the description lacks passed the
    /// fake's hand checks.
    pub fn assert_contract(&self) {
        self.front.assert_contract();
    }

    pub fn contract_violations(&self) -> Vec<String> {
        self.front.contract_violations()
    }
}

pub fn gitlab_description() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/gitlab.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc: Value = serde_norway::from_str(&text).unwrap();
    // GitLab's generated description types `branch` of "Get a single repository branch"
    // as an integer (its DELETE twin, and GitLab's route, take the name as a string);
    // checked as the string it is.
    if let Some(params) = doc
        .pointer_mut(
            "/paths/~1api~1v4~1projects~1{id}~1repository~1branches~1{branch}/get/parameters",
        )
        .and_then(Value::as_array_mut)
    {
        for param in params.iter_mut().filter(|p| p["name"] == "branch") {
            param["type"] = json!("string");
            if let Some(object) = param.as_object_mut() {
                object.remove("format");
            }
        }
    }
    doc
}

fn is_form(request: &RecordedRequest) -> bool {
    request.headers.iter().any(|(name, value)| {
        name == "content-type" && value.starts_with("application/x-www-form-urlencoded")
    })
}

/// A form body (all values text) typed the way GitLab's API layer (Grape) coerces it
/// against the parameter types the description declares: `integer` and `boolean` text is
/// converted only when it is a valid integer or `true`/`false` (anything else stays text,
/// and the checker reports it); `key[]=a&key[]=b` is an array; a plain value for an array
/// parameter is split on commas (GitLab declares `labels` and friends comma-separated).
/// Undeclared keys stay as sent.
pub fn typed_body(doc: &Value, operation: &str, body: &Value) -> Value {
    let Some((method, template)) = operation.split_once(' ') else {
        return body.clone();
    };
    let schema = doc
        .pointer(&format!(
            "/paths/{}/{}/parameters",
            template.replace('~', "~0").replace('/', "~1"),
            method.to_ascii_lowercase()
        ))
        .and_then(Value::as_array)
        .and_then(|params| {
            params
                .iter()
                .find(|p| p.get("in").and_then(Value::as_str) == Some("body"))
        })
        .and_then(|p| p.get("schema"))
        .map(|s| resolve(doc, s));
    let (Some(properties), Some(object)) = (
        schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object),
        body.as_object(),
    ) else {
        return body.clone();
    };
    let mut typed = Map::new();
    for (key, value) in object {
        let declared = properties.get(key).map(|s| resolve(doc, s));
        typed.insert(
            key.clone(),
            match declared {
                Some(schema) => coerce(doc, schema, value),
                None => value.clone(),
            },
        );
    }
    Value::Object(typed)
}

fn coerce(doc: &Value, schema: &Value, value: &Value) -> Value {
    let kind = schema.get("type").and_then(Value::as_str).unwrap_or("");
    match (kind, value) {
        ("integer", Value::String(text)) => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| value.clone()),
        ("boolean", Value::String(text)) if text == "true" || text == "false" => {
            Value::Bool(text == "true")
        }
        ("array", Value::String(text)) => {
            let items = schema.get("items").map(|s| resolve(doc, s));
            Value::Array(
                text.split(',')
                    .map(|part| {
                        let part = Value::String(part.to_owned());
                        items.map(|s| coerce(doc, s, &part)).unwrap_or(part)
                    })
                    .collect(),
            )
        }
        ("array", Value::Array(parts)) => {
            let items = schema.get("items").map(|s| resolve(doc, s));
            Value::Array(
                parts
                    .iter()
                    .map(|part| items.map_or_else(|| part.clone(), |s| coerce(doc, s, part)))
                    .collect(),
            )
        }
        _ => value.clone(),
    }
}

#[allow(clippy::too_many_arguments)]
fn insert_mr(
    s: &mut FakeState,
    path: &str,
    source: &str,
    target: &str,
    title: &str,
    description: &str,
    state: &str,
    source_project_id: u64,
) -> u64 {
    s.next_id += 1;
    let id = s.next_id;
    let project = project_mut(s, path);
    project.branches.insert(source.to_owned());
    let iid = project.mrs.len() as u64 + 1;
    project.mrs.push(FakeMr {
        id,
        iid,
        state: state.to_owned(),
        title: title.to_owned(),
        description: description.to_owned(),
        source_branch: source.to_owned(),
        target_branch: target.to_owned(),
        source_project_id,
        sha: format!("{id:040x}"),
        labels: Vec::new(),
        reviewer_ids: Vec::new(),
        assignee_ids: Vec::new(),
        auto_merge: false,
        notes: Vec::new(),
    });
    iid
}

fn project_mut<'s>(state: &'s mut FakeState, path: &str) -> &'s mut FakeProject {
    state
        .projects
        .get_mut(path)
        .unwrap_or_else(|| panic!("the fake has no project {path}"))
}

fn mr_mut(project: &mut FakeProject, iid: u64) -> &mut FakeMr {
    project
        .mrs
        .iter_mut()
        .find(|m| m.iid == iid)
        .unwrap_or_else(|| panic!("no merge request !{iid}"))
}

fn message(status: u16, text: &str) -> Response {
    answer(status, GitLab::error_body(text))
}

fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Option<Value>, String> {
    if body.is_empty() {
        return Ok(None);
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        return serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| format!("body is not JSON: {e}"));
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(format!("unexpected content-type {content_type:?}"));
    }
    let mut object = Map::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.strip_suffix("[]") {
            Some(name) => {
                let entry = object
                    .entry(name.to_owned())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = entry {
                    items.push(Value::String(value.into_owned()));
                }
            }
            None => {
                object.insert(key.into_owned(), Value::String(value.into_owned()));
            }
        }
    }
    Ok(Some(Value::Object(object)))
}

fn text<'v>(body: &'v Value, key: &str) -> Option<&'v str> {
    body.get(key).and_then(Value::as_str)
}

/// Comma-separated text or an array, as GitLab takes label lists.
fn list(body: &Value, key: &str) -> Option<Vec<String>> {
    match body.get(key)? {
        Value::String(text) => Some(
            text.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or(v.as_u64().map(|n| n.to_string()))
                })
                .collect(),
        ),
        _ => None,
    }
}

fn ids(body: &Value, key: &str) -> Option<Result<Vec<u64>, String>> {
    list(body, key).map(|items| {
        items
            .iter()
            .map(|i| i.parse::<u64>().map_err(|_| format!("{key} is invalid")))
            .collect()
    })
}

/// Hand checks for the operations the description lacks (users, notes): query parameters
/// and bodies as GitLab's API documentation gives them.
fn hand_check(
    template: &str,
    method: &str,
    query: &[(String, String)],
    body: Option<&Value>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let allowed: &[&str] = match (method, template) {
        ("GET", "/api/v4/users") => &["username", "per_page", "page"],
        ("GET", t) if t.ends_with("/notes") => &["order_by", "sort", "per_page", "page"],
        _ => &[],
    };
    for (key, value) in query {
        if !allowed.contains(&key.as_str()) {
            problems.push(format!(
                "{method} {template}: query parameter `{key}` not documented"
            ));
        }
        let ok = match key.as_str() {
            "per_page" | "page" => value.parse::<u32>().is_ok(),
            "order_by" => matches!(value.as_str(), "created_at" | "updated_at"),
            "sort" => matches!(value.as_str(), "asc" | "desc"),
            "username" => !value.is_empty(),
            _ => true,
        };
        if !ok {
            problems.push(format!("{method} {template}: `{key}={value}` is not valid"));
        }
    }
    if method == "GET" && template == "/api/v4/users" && !query.iter().any(|(k, _)| k == "username")
    {
        problems.push("GET /api/v4/users without `username` lists every user".into());
    }
    match (method, body) {
        ("GET", Some(_)) => problems.push(format!("GET {template} with a body")),
        ("POST", Some(body)) => {
            if text(body, "body").is_none_or(str::is_empty) {
                problems.push(format!("POST {template}: `body` missing or empty"));
            }
            for key in body.as_object().into_iter().flatten().map(|(k, _)| k) {
                if ![
                    "body",
                    "internal",
                    "created_at",
                    "merge_request_diff_head_sha",
                ]
                .contains(&key.as_str())
                {
                    problems.push(format!(
                        "POST {template}: body field `{key}` not documented"
                    ));
                }
            }
        }
        ("POST", None) => problems.push(format!("POST {template} without a body")),
        _ => {}
    }
    problems
}

impl Forge for GitLab {
    type Respond = Respond;

    /// The routes the fake serves, named by the description's templates.
    const ROUTES: &'static [Endpoint<Respond>] = routes![
        GET "/api/v4/projects/{id}/merge_requests" => list_mrs,
        POST "/api/v4/projects/{id}/merge_requests" => create_mr,
        GET "/api/v4/projects/{id}/merge_requests/{merge_request_iid}" => get_mr,
        PUT "/api/v4/projects/{id}/merge_requests/{merge_request_iid}" => update_mr,
        PUT "/api/v4/projects/{id}/merge_requests/{merge_request_iid}/merge" => merge_mr,
        GET "/api/v4/projects/{id}/merge_requests/{noteable_id}/notes" => list_notes,
        POST "/api/v4/projects/{id}/merge_requests/{noteable_id}/notes" => create_note,
        GET "/api/v4/projects/{id}/repository/branches/{branch}" => get_branch,
        DELETE "/api/v4/projects/{id}/repository/branches/{branch}" => delete_branch,
        GET "/api/v4/users" => list_users,
    ];

    fn route(&self, method: &str, path: &str) -> Option<(&'static Endpoint<Respond>, Params)> {
        bind(Self::ROUTES, method, path.strip_prefix(&self.prefix)?, None)
    }

    fn read_body(&self, headers: &HeaderMap, body: &[u8]) -> Result<Option<Value>, String> {
        decode_body(headers, body)
    }

    fn error_body(text: &str) -> Value {
        json!({ "message": text })
    }

    fn arrived(&self, request: &Request) {
        if OUTSIDE_REST_DESCRIPTION.contains(&(request.method.as_str(), request.template)) {
            let body = request.body.as_ref().ok().and_then(Option::as_ref);
            let problems = hand_check(request.template, &request.method, &request.query, body);
            let mut state = self.state.lock().unwrap();
            state.hand_check_violations.extend(problems);
        }
    }

    /// GitLab's answer for a path it has no route for.
    fn no_route(&self, _request: &Request) -> Response {
        answer(404, json!({ "error": "404 Not Found" }))
    }

    fn answer(&self, respond: Respond, request: &Request) -> Response {
        let mut state = self.state.lock().unwrap();
        let token = request.header("private-token");
        if !token.is_some_and(|t| state.tokens.contains(t)) {
            return message(401, "401 Unauthorized");
        }
        if let Err(e) = &request.body {
            return answer(400, json!({ "error": e }));
        }
        respond(&mut state, request).unwrap_or_else(|refusal| refusal)
    }

    /// Every recorded request conforms to GitLab's REST description (form bodies decoded
    /// first, see [`typed_body`]), and the requests the description lacks passed the
    /// fake's hand checks.
    fn contract_violations(&self, requests: &[RecordedRequest]) -> Vec<String> {
        let doc = gitlab_description();
        let contract = Contract::from_value("tests/contracts/gitlab.yaml", doc.clone())
            .with_prefix(&self.prefix);
        let typed: Vec<RecordedRequest> = requests
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if is_form(&r)
                    && let (Some(body), Some(op)) =
                        (&r.body, contract.operation_for(&r.method, &r.path))
                {
                    r.body = Some(typed_body(&doc, &op, body));
                }
                r
            })
            .collect();
        let mut violations: Vec<String> = contract
            .check_all(&typed, OUTSIDE_REST_DESCRIPTION)
            .iter()
            .map(ToString::to_string)
            .collect();
        violations.extend(self.state.lock().unwrap().hand_check_violations.clone());
        violations
    }
}

fn user_json(state: &FakeState, id: u64) -> Value {
    let name = state
        .users
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    json!({ "id": id, "username": name, "name": name, "state": "active" })
}

fn find_project<'s>(state: &'s mut FakeState, id: &str) -> Option<(String, &'s mut FakeProject)> {
    let key = match id.parse::<u64>() {
        Ok(number) => state
            .projects
            .iter()
            .find(|(_, p)| p.id == number)
            .map(|(k, _)| k.clone())?,
        Err(_) => id.to_owned(),
    };
    let project = state.projects.get_mut(&key)?;
    Some((key, project))
}

/// The path and id of the project a route's `{id}` names (a path or a number), or a 404.
fn project(state: &mut FakeState, request: &Request) -> Result<(String, u64), Response> {
    let (path, project) = find_project(state, &request.params[0])
        .ok_or_else(|| message(404, "404 Project Not Found"))?;
    let id = project.id;
    Ok((path, id))
}

/// The iid of the merge request a route names, if the project has it; else a 404.
fn existing_mr(state: &mut FakeState, path: &str, request: &Request) -> Result<u64, Response> {
    request.params[1]
        .parse::<u64>()
        .ok()
        .filter(|iid| project_mut(state, path).mrs.iter().any(|m| m.iid == *iid))
        .ok_or_else(|| message(404, "404 Not found"))
}

fn mr_json(state: &FakeState, path: &str, project_id: u64, mr: &FakeMr) -> Value {
    json!({
        "id": mr.id,
        "iid": mr.iid,
        "project_id": project_id,
        "title": mr.title,
        "description": mr.description,
        "state": mr.state,
        "source_branch": mr.source_branch,
        "target_branch": mr.target_branch,
        "source_project_id": mr.source_project_id,
        "target_project_id": project_id,
        "draft": mr.draft(),
        "work_in_progress": mr.draft(),
        "sha": mr.sha,
        "labels": mr.labels,
        "reviewers": mr.reviewer_ids.iter().map(|id| user_json(state, *id)).collect::<Vec<_>>(),
        "assignees": mr.assignee_ids.iter().map(|id| user_json(state, *id)).collect::<Vec<_>>(),
        "merge_when_pipeline_succeeds": mr.auto_merge,
        "web_url": format!("{}/{path}/-/merge_requests/{}", state.web_root, mr.iid),
    })
}

fn mr_answer(
    state: &mut FakeState,
    status: u16,
    (path, project_id): &(String, u64),
    iid: u64,
) -> Reply {
    let mr = mr_mut(project_mut(state, path), iid).clone();
    Ok(answer(status, mr_json(state, path, *project_id, &mr)))
}

fn list_users(state: &mut FakeState, request: &Request) -> Reply {
    let users: Vec<Value> = state
        .users
        .iter()
        .filter(|(_, name)| {
            request
                .query("username")
                .is_none_or(|u| u.eq_ignore_ascii_case(name))
        })
        .map(|(id, _)| user_json(state, *id))
        .collect();
    Ok(answer(200, Value::Array(users)))
}

fn list_mrs(state: &mut FakeState, request: &Request) -> Reply {
    let (path, project_id) = project(state, request)?;
    let q = |key: &str| request.query(key);
    let mut found: Vec<FakeMr> = project_mut(state, &path)
        .mrs
        .iter()
        .filter(|m| q("state").is_none_or(|s| s == "all" || s == m.state))
        .filter(|m| q("source_branch").is_none_or(|b| b == m.source_branch))
        .filter(|m| q("target_branch").is_none_or(|b| b == m.target_branch))
        .cloned()
        .collect();
    found.sort_by_key(|m| m.id);
    if q("sort") != Some("asc") {
        found.reverse();
    }
    let per_page = q("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20usize);
    found.truncate(per_page);
    let list = found
        .iter()
        .map(|m| mr_json(state, &path, project_id, m))
        .collect();
    Ok(answer(200, Value::Array(list)))
}

fn create_mr(state: &mut FakeState, request: &Request) -> Reply {
    let project = project(state, request)?;
    let (path, project_id) = (&project.0, project.1);
    let body = &request.json();
    let (Some(title), Some(source), Some(target)) = (
        text(body, "title"),
        text(body, "source_branch"),
        text(body, "target_branch"),
    ) else {
        return Err(answer(
            400,
            json!({ "error": "title, source_branch, target_branch are missing, at least one parameter must be provided" }),
        ));
    };
    let fake_project = project_mut(state, path);
    if !fake_project.branches.contains(source) || !fake_project.branches.contains(target) {
        return Err(answer(
            400,
            json!({ "message": { "source_branch": ["is invalid"] } }),
        ));
    }
    if let Some(existing) = fake_project.mrs.iter().find(|m| {
        m.state == "opened"
            && m.source_branch == source
            && m.target_branch == target
            && m.source_project_id == project_id
    }) {
        return Err(answer(
            409,
            json!({ "message": [format!(
                "Another open merge request already exists for this source branch: !{}",
                existing.iid
            )] }),
        ));
    }
    let description = text(body, "description").unwrap_or("");
    let iid = insert_mr(
        state,
        path,
        source,
        target,
        title,
        description,
        "opened",
        project_id,
    );
    if let Some(labels) = list(body, "labels") {
        mr_mut(project_mut(state, path), iid).labels = labels;
    }
    mr_answer(state, 201, &project, iid)
}

fn get_mr(state: &mut FakeState, request: &Request) -> Reply {
    let project = project(state, request)?;
    let iid = existing_mr(state, &project.0, request)?;
    mr_answer(state, 200, &project, iid)
}

fn update_mr(state: &mut FakeState, request: &Request) -> Reply {
    let project = project(state, request)?;
    let path = &project.0;
    let iid = existing_mr(state, path, request)?;
    let body = &request.json();
    let fake_project = project_mut(state, path);
    let members = fake_project.members.clone();
    let bad = |e: String| answer(400, json!({ "error": e }));
    let reviewers = ids(body, "reviewer_ids").transpose().map_err(bad)?;
    let assignees = ids(body, "assignee_ids").transpose().map_err(bad)?;
    let mr = mr_mut(fake_project, iid);
    if body.as_object().is_none_or(Map::is_empty) {
        return Err(answer(
            400,
            json!({ "error": "assignee_id, assignee_ids, description, labels, add_labels, remove_labels, milestone_id, remove_source_branch, allow_collaboration, allow_maintainer_to_push, squash, target_branch, title, state_event, discussion_locked are missing, at least one parameter must be provided" }),
        ));
    }
    if let Some(title) = text(body, "title") {
        mr.title = title.to_owned();
    }
    if let Some(description) = text(body, "description") {
        mr.description = description.to_owned();
    }
    if let Some(labels) = list(body, "labels") {
        mr.labels = labels;
    }
    for label in list(body, "add_labels").unwrap_or_default() {
        if !mr.labels.contains(&label) {
            mr.labels.push(label);
        }
    }
    let mut system = Vec::new();
    // GitLab drops users who cannot access the project, without an error.
    if let Some(ids) = reviewers {
        mr.reviewer_ids = ids.into_iter().filter(|id| members.contains(id)).collect();
        system.push("requested review".to_owned());
    }
    if let Some(ids) = assignees {
        mr.assignee_ids = ids.into_iter().filter(|id| members.contains(id)).collect();
        system.push("assigned".to_owned());
    }
    match text(body, "state_event") {
        Some("close") if mr.state == "opened" => {
            mr.state = "closed".into();
            mr.auto_merge = false;
            system.push("closed".into());
        }
        Some("reopen") if mr.state == "closed" => mr.state = "opened".into(),
        Some("close" | "reopen") | None => {}
        Some(other) => {
            return Err(answer(
                400,
                json!({ "error": format!("state_event does not have a valid value: {other}") }),
            ));
        }
    }
    for note in system {
        state.next_id += 1;
        let id = state.next_id;
        mr_mut(project_mut(state, path), iid)
            .notes
            .push((id, note, true));
    }
    mr_answer(state, 200, &project, iid)
}

fn merge_mr(state: &mut FakeState, request: &Request) -> Reply {
    let project = project(state, request)?;
    let iid = existing_mr(state, &project.0, request)?;
    let body = &request.json();
    let fake_project = project_mut(state, &project.0);
    let allowed = fake_project.auto_merge_allowed;
    let mr = mr_mut(fake_project, iid);
    if mr.state != "opened" || !allowed {
        return Err(message(405, "405 Method Not Allowed"));
    }
    if let Some(sha) = text(body, "sha")
        && sha != mr.sha
    {
        return Err(message(409, "SHA does not match HEAD of source branch"));
    }
    let wanted =
        |key: &str| text(body, key) == Some("true") || body.get(key) == Some(&Value::Bool(true));
    if wanted("merge_when_pipeline_succeeds") || wanted("auto_merge") {
        mr.auto_merge = true;
    } else {
        mr.state = "merged".into();
    }
    mr_answer(state, 200, &project, iid)
}

fn list_notes(state: &mut FakeState, request: &Request) -> Reply {
    let (path, _) = project(state, request)?;
    let iid = existing_mr(state, &path, request)?;
    let mut notes = mr_mut(project_mut(state, &path), iid).notes.clone();
    let q = |key: &str| request.query(key);
    if q("sort") != Some("asc") {
        notes.reverse();
    }
    let per_page = q("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20usize);
    let page = q("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let list: Vec<Value> = notes
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(id, body, system)| json!({ "id": id, "body": body, "system": system, "noteable_type": "MergeRequest" }))
        .collect();
    Ok(answer(200, Value::Array(list)))
}

fn create_note(state: &mut FakeState, request: &Request) -> Reply {
    let (path, _) = project(state, request)?;
    let iid = existing_mr(state, &path, request)?;
    let body = &request.json();
    let text = text(body, "body")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| answer(400, json!({ "error": "body is missing" })))?;
    state.next_id += 1;
    let id = state.next_id;
    mr_mut(project_mut(state, &path), iid)
        .notes
        .push((id, text.to_owned(), false));
    Ok(answer(
        201,
        json!({ "id": id, "body": text, "system": false, "noteable_type": "MergeRequest" }),
    ))
}

fn get_branch(state: &mut FakeState, request: &Request) -> Reply {
    let (path, _) = project(state, request)?;
    let branch = &request.params[1];
    let project = project_mut(state, &path);
    if !project.branches.contains(branch) {
        return Err(message(404, "404 Branch Not Found"));
    }
    let sha = tip_of(&project.tips, branch);
    Ok(answer(
        200,
        json!({
            "name": branch,
            "commit": { "id": sha, "short_id": &sha[..8], "title": "A commit" },
            "merged": false,
            "protected": false,
            "default": branch == "main",
            "developers_can_push": false,
            "developers_can_merge": false,
            "can_push": true,
        }),
    ))
}

fn delete_branch(state: &mut FakeState, request: &Request) -> Reply {
    let (path, _) = project(state, request)?;
    if project_mut(state, &path)
        .branches
        .remove(&request.params[1])
    {
        Ok(answer(204, Value::Null))
    } else {
        Err(message(404, "404 Branch Not Found"))
    }
}
