//! Checks recorded requests against a provider's official API description (the copies in
//! `tests/contracts/`, see the README there), independently of our fakes' own idea of the
//! API: method + path template, path and query parameters (declared, required, typed),
//! and the JSON body against the operation's request-body schema.
//!
//! Reads OpenAPI 3.0 (`requestBody`, `components`, `servers`) and Swagger 2.0 (`in: body`
//! parameters, `definitions`, `basePath`) from a `serde_json::Value` (YAML files: parse
//! them with serde_norway into a Value first).
//!
//! The body validator is a focused one for the JSON Schema subset these descriptions use:
//! `$ref`, `type`, `nullable`/`x-nullable`, `enum`, `properties`, `required`,
//! `additionalProperties`, `items`, `min/maxItems`, `min/maxLength`, `minimum`/`maximum`,
//! `oneOf`, `anyOf`, `allOf`. Annotations (`description`, `example(s)`, `default`,
//! `format`, `title`, `readOnly`, `x-*`...) are ignored; any other keyword met while
//! validating is itself reported as a violation, so nothing passes unchecked by accident.
//! A full JSON Schema crate would bring a regex engine and a large tree for keywords these
//! files do not use on request bodies.

#![allow(dead_code)]

use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

/// One request as a fake received it, its credentials left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The path as sent, percent-encoded.
    pub path: String,
    /// Decoded query pairs in order.
    pub query: Vec<(String, String)>,
    /// Lower-case names; credential headers (`authorization`, `private-token`, cookies...)
    /// are left out.
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body; `Some(Value::String)` holding `<not JSON: ...>` when the body
    /// was not JSON.
    pub body: Option<Value>,
}

impl fmt::Display for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if !self.query.is_empty() {
            let pairs: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, "?{}", pairs.join("&"))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub request: String,
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.request, self.problem)
    }
}

/// Path parameters bound by a match: name and decoded value.
type Bound = Vec<(String, String)>;

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    /// `multi`: the parameter may span several segments (GitHub marks `{ref}` with
    /// `x-multi-segment: true`; only allowed as the template's last segment).
    Param {
        name: String,
        multi: bool,
    },
}

#[derive(Debug, Clone)]
struct Operation {
    method: String,
    template: String,
    segments: Vec<Segment>,
    /// Resolved parameter objects (path-level and operation-level).
    params: Vec<Value>,
    body_schema: Option<Value>,
    body_required: bool,
}

pub struct Contract {
    name: String,
    doc: Value,
    /// Path prefixes stripped before matching (server URL path, basePath, `/api/v3`...).
    prefixes: Vec<String>,
    operations: Vec<Operation>,
}

const ANNOTATIONS: &[&str] = &[
    "description",
    "example",
    "examples",
    "default",
    "format",
    "title",
    "readOnly",
    "writeOnly",
    "deprecated",
    "externalDocs",
    "xml",
    "discriminator",
];

impl Contract {
    /// A JSON description file.
    pub fn load(path: &Path) -> Contract {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading contract {}: {e}", path.display()));
        // azure-git.json starts with a UTF-8 BOM upstream.
        let doc: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
            .unwrap_or_else(|e| panic!("parsing contract {}: {e}", path.display()));
        Contract::from_value(&path.display().to_string(), doc)
    }

    /// `tests/contracts/github.json`.
    pub fn github() -> Contract {
        Contract::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/github.json"))
    }

    pub fn from_value(name: &str, doc: Value) -> Contract {
        let mut prefixes = Vec::new();
        if let Some(servers) = doc.get("servers").and_then(Value::as_array) {
            for server in servers {
                if let Some(url) = server.get("url").and_then(Value::as_str)
                    && let Ok(parsed) = url::Url::parse(url)
                {
                    let path = parsed.path().trim_end_matches('/');
                    if !path.is_empty() {
                        prefixes.push(path.to_owned());
                    }
                }
            }
        }
        if let Some(base) = doc.get("basePath").and_then(Value::as_str) {
            let base = base.trim_end_matches('/');
            if !base.is_empty() {
                prefixes.push(base.to_owned());
            }
        }
        let mut contract = Contract {
            name: name.to_owned(),
            doc: Value::Null,
            prefixes,
            operations: Vec::new(),
        };
        let mut operations = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            for (template, item) in paths {
                let shared: Vec<Value> = item
                    .get("parameters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for (method, op) in item.as_object().into_iter().flatten() {
                    if !matches!(
                        method.as_str(),
                        "get" | "put" | "post" | "delete" | "patch" | "head" | "options"
                    ) {
                        continue;
                    }
                    let mut params: Vec<Value> = Vec::new();
                    let own: Vec<Value> = op
                        .get("parameters")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for raw in shared.iter().chain(own.iter()) {
                        let param = resolve(&doc, raw).clone();
                        // Operation-level parameters override path-level ones.
                        params.retain(|p: &Value| {
                            !(p.get("name") == param.get("name") && p.get("in") == param.get("in"))
                        });
                        params.push(param);
                    }
                    let (mut body_schema, mut body_required) = (None, false);
                    if let Some(request_body) = op.get("requestBody") {
                        let request_body = resolve(&doc, request_body);
                        body_required = request_body
                            .get("required")
                            .and_then(Value::as_bool)
                            .unwrap_or(false);
                        body_schema = request_body
                            .pointer("/content/application~1json/schema")
                            .cloned();
                    }
                    if let Some(body) = params
                        .iter()
                        .find(|p| p.get("in").and_then(Value::as_str) == Some("body"))
                    {
                        body_required = body
                            .get("required")
                            .and_then(Value::as_bool)
                            .unwrap_or(false);
                        body_schema = body.get("schema").cloned();
                    }
                    let segments = parse_template(template, &params);
                    operations.push(Operation {
                        method: method.to_ascii_uppercase(),
                        template: template.clone(),
                        segments,
                        params,
                        body_schema,
                        body_required,
                    });
                }
            }
        }
        contract.doc = doc;
        contract.operations = operations;
        contract
    }

    /// Also strips `prefix` (a GitHub Enterprise `/api/v3`) before matching.
    pub fn with_prefix(mut self, prefix: &str) -> Contract {
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            self.prefixes.push(prefix.to_owned());
        }
        self
    }

    pub fn operation_count(&self) -> usize {
        self.operations.len()
    }

    /// The described operation a request matches (`"POST /repos/{owner}/{repo}/pulls"`),
    /// preferring the template with the most literal segments.
    pub fn operation_for(&self, method: &str, path: &str) -> Option<String> {
        self.find(method, path)
            .map(|(op, _)| format!("{} {}", op.method, op.template))
    }

    fn candidate_paths<'p>(&self, path: &'p str) -> Vec<&'p str> {
        let mut candidates = vec![path];
        for prefix in &self.prefixes {
            if let Some(rest) = path.strip_prefix(prefix.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                candidates.push(rest);
            }
        }
        candidates
    }

    fn find(&self, method: &str, path: &str) -> Option<(&Operation, Vec<(String, String)>)> {
        let mut best: Option<(&Operation, Bound, usize)> = None;
        for candidate in self.candidate_paths(path) {
            let parts: Vec<&str> = candidate.trim_start_matches('/').split('/').collect();
            for op in self.operations.iter().filter(|o| o.method == method) {
                if let Some(bound) = match_segments(&op.segments, &parts) {
                    let literals = op
                        .segments
                        .iter()
                        .filter(|s| matches!(s, Segment::Literal(_)))
                        .count();
                    if best.as_ref().is_none_or(|(_, _, n)| literals > *n) {
                        best = Some((op, bound, literals));
                    }
                }
            }
        }
        best.map(|(op, bound, _)| (op, bound))
    }

    /// Every way `request` departs from the description.
    pub fn check(&self, request: &RecordedRequest) -> Vec<Violation> {
        let mut problems = Vec::new();
        match self.find(&request.method, &request.path) {
            None => problems.push(format!(
                "no operation {} {} in {}",
                request.method, request.path, self.name
            )),
            Some((op, bound)) => self.check_operation(op, &bound, request, &mut problems),
        }
        problems
            .into_iter()
            .map(|problem| Violation {
                request: request.to_string(),
                problem,
            })
            .collect()
    }

    fn check_operation(
        &self,
        op: &Operation,
        bound: &[(String, String)],
        request: &RecordedRequest,
        problems: &mut Vec<String>,
    ) {
        for param in &op.params {
            let name = param.get("name").and_then(Value::as_str).unwrap_or("");
            let location = param.get("in").and_then(Value::as_str).unwrap_or("");
            let required = param
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(location == "path");
            let value = match location {
                "path" => bound
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone()),
                "query" => request
                    .query
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone()),
                _ => continue,
            };
            match value {
                None if required => {
                    problems.push(format!("required {location} parameter `{name}` missing"))
                }
                None => {}
                Some(value) => {
                    if let Some(problem) = self.check_scalar(param, &value) {
                        problems.push(format!("{location} parameter `{name}`: {problem}"));
                    }
                }
            }
        }
        for (name, _) in &request.query {
            let declared = op.params.iter().any(|p| {
                p.get("in").and_then(Value::as_str) == Some("query")
                    && p.get("name").and_then(Value::as_str) == Some(name.as_str())
            });
            if !declared {
                problems.push(format!(
                    "query parameter `{name}` is not in the description"
                ));
            }
        }
        match (&op.body_schema, &request.body) {
            (Some(schema), Some(body)) => {
                self.validate(schema, body, "body", problems);
            }
            (Some(_), None) if op.body_required => {
                problems.push("the operation requires a JSON body; none was sent".into())
            }
            (None, Some(body)) => problems.push(format!(
                "the operation takes no body, yet one was sent: {body}"
            )),
            _ => {}
        }
    }

    /// A path or query value against its parameter's (OpenAPI `schema` or Swagger inline)
    /// type and enum.
    fn check_scalar(&self, param: &Value, value: &str) -> Option<String> {
        let schema = param
            .get("schema")
            .map(|s| resolve(&self.doc, s))
            .unwrap_or(param);
        let kind = schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string");
        let ok = match kind {
            "integer" => value.parse::<i64>().is_ok(),
            "number" => value.parse::<f64>().is_ok(),
            "boolean" => value == "true" || value == "false",
            _ => true,
        };
        if !ok {
            return Some(format!("`{value}` is not a valid {kind}"));
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.iter().any(|a| {
                a.as_str() == Some(value) || (a.is_i64() && value.parse::<i64>().ok() == a.as_i64())
            })
        {
            return Some(format!(
                "`{value}` is not one of {}",
                Value::from(allowed.clone())
            ));
        }
        None
    }

    fn validate(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = resolve(&self.doc, schema);
        let Some(map) = schema.as_object() else {
            return;
        };
        if value.is_null()
            && (map.get("nullable") == Some(&Value::Bool(true))
                || map.get("x-nullable") == Some(&Value::Bool(true)))
        {
            return;
        }
        for (keyword, rule) in map {
            match keyword.as_str() {
                "$ref" | "nullable" | "x-nullable" => {}
                k if ANNOTATIONS.contains(&k) || k.starts_with("x-") => {}
                "type" => {
                    let kind = rule.as_str().unwrap_or("");
                    let ok = match kind {
                        "object" => value.is_object(),
                        "array" => value.is_array(),
                        "string" => value.is_string(),
                        "integer" => value.is_i64() || value.is_u64(),
                        "number" => value.is_number(),
                        "boolean" => value.is_boolean(),
                        "null" => value.is_null(),
                        "file" => true,
                        _ => {
                            problems.push(format!("{at}: checker does not know type {rule}"));
                            true
                        }
                    };
                    if !ok {
                        problems.push(format!("{at}: expected {kind}, got {value}"));
                    }
                }
                "enum" => {
                    if !rule.as_array().is_some_and(|a| a.contains(value)) {
                        problems.push(format!("{at}: {value} is not one of {rule}"));
                    }
                }
                "properties" => {
                    if let (Some(props), Some(object)) = (rule.as_object(), value.as_object()) {
                        for (name, sub) in props {
                            if let Some(v) = object.get(name) {
                                self.validate(sub, v, &format!("{at}.{name}"), problems);
                            }
                        }
                    }
                }
                "required" => {
                    if let Some(object) = value.as_object() {
                        for name in rule.as_array().into_iter().flatten() {
                            if let Some(name) = name.as_str()
                                && !object.contains_key(name)
                            {
                                problems.push(format!("{at}: required property `{name}` missing"));
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    if let Some(object) = value.as_object() {
                        let declared = map.get("properties").and_then(Value::as_object);
                        for (name, v) in object {
                            if declared.is_some_and(|d| d.contains_key(name)) {
                                continue;
                            }
                            match rule {
                                Value::Bool(false) => {
                                    problems.push(format!("{at}: property `{name}` is not allowed"))
                                }
                                Value::Object(_) => {
                                    self.validate(rule, v, &format!("{at}.{name}"), problems)
                                }
                                _ => {}
                            }
                        }
                    }
                }
                "items" => {
                    if let Some(items) = value.as_array() {
                        for (i, item) in items.iter().enumerate() {
                            self.validate(rule, item, &format!("{at}[{i}]"), problems);
                        }
                    }
                }
                "minItems" | "maxItems" => {
                    if let (Some(items), Some(bound)) = (value.as_array(), rule.as_u64()) {
                        let n = items.len() as u64;
                        if (keyword == "minItems" && n < bound)
                            || (keyword == "maxItems" && n > bound)
                        {
                            problems.push(format!("{at}: {n} items breaks {keyword} {bound}"));
                        }
                    }
                }
                "minLength" | "maxLength" => {
                    if let (Some(text), Some(bound)) = (value.as_str(), rule.as_u64()) {
                        let n = text.chars().count() as u64;
                        if (keyword == "minLength" && n < bound)
                            || (keyword == "maxLength" && n > bound)
                        {
                            problems.push(format!("{at}: length {n} breaks {keyword} {bound}"));
                        }
                    }
                }
                "minimum" | "maximum" => {
                    if let (Some(n), Some(bound)) = (value.as_f64(), rule.as_f64())
                        && ((keyword == "minimum" && n < bound)
                            || (keyword == "maximum" && n > bound))
                    {
                        problems.push(format!("{at}: {n} breaks {keyword} {bound}"));
                    }
                }
                "allOf" | "anyOf" | "oneOf" => {
                    let branches = rule.as_array().cloned().unwrap_or_default();
                    let results: Vec<Vec<String>> = branches
                        .iter()
                        .map(|branch| {
                            let mut inner = Vec::new();
                            self.validate(branch, value, at, &mut inner);
                            inner
                        })
                        .collect();
                    let passing = results.iter().filter(|r| r.is_empty()).count();
                    match keyword.as_str() {
                        "allOf" => problems.extend(results.into_iter().flatten()),
                        "anyOf" if passing == 0 => problems.push(format!(
                            "{at}: matches none of anyOf ({})",
                            results.concat().join("; ")
                        )),
                        "oneOf" if passing != 1 => problems.push(format!(
                            "{at}: matches {passing} of oneOf, needs exactly 1 ({})",
                            results.concat().join("; ")
                        )),
                        _ => {}
                    }
                }
                other => problems.push(format!(
                    "{at}: schema keyword `{other}` is not supported by the checker"
                )),
            }
        }
    }

    /// Checks every request; `outside` lists operations (`"POST /graphql"`) Courier uses
    /// that the description lacks, which the fake checks by hand (docs/providers.md).
    pub fn check_all(
        &self,
        requests: &[RecordedRequest],
        outside: &[(&str, &str)],
    ) -> Vec<Violation> {
        let outside: Vec<(String, Vec<Segment>)> = outside
            .iter()
            .map(|(m, t)| (m.to_string(), parse_template(t, &[])))
            .collect();
        requests
            .iter()
            .filter(|request| {
                !outside.iter().any(|(method, segments)| {
                    *method == request.method
                        && self.candidate_paths(&request.path).iter().any(|p| {
                            let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
                            match_segments(segments, &parts).is_some()
                        })
                })
            })
            .flat_map(|request| self.check(request))
            .collect()
    }
}

/// Follows `$ref`s (local JSON pointers only) to the schema or parameter they name.
pub(super) fn resolve<'d>(doc: &'d Value, mut node: &'d Value) -> &'d Value {
    for _ in 0..32 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').unwrap_or(reference);
                match doc.pointer(pointer) {
                    Some(target) => node = target,
                    None => panic!("unresolvable $ref {reference}"),
                }
            }
            None => return node,
        }
    }
    panic!("$ref chain too long");
}

fn parse_template(template: &str, params: &[Value]) -> Vec<Segment> {
    template
        .trim_start_matches('/')
        .split('/')
        .map(
            |part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    let multi = params.iter().any(|p| {
                        p.get("name").and_then(Value::as_str) == Some(name)
                            && p.get("x-multi-segment") == Some(&Value::Bool(true))
                    });
                    Segment::Param {
                        name: name.to_owned(),
                        multi,
                    }
                }
                None => Segment::Literal(part.to_owned()),
            },
        )
        .collect()
}

/// The decoded parameters, in order, of `path` (a leading `/` aside) if it matches
/// `template` the way the checker matches; `spanning` names a last parameter that takes
/// the rest of the path (GitHub's `ref`). The fakes route with it.
pub(super) fn bind_path(template: &str, spanning: Option<&str>, path: &str) -> Option<Vec<String>> {
    let mut segments = parse_template(template, &[]);
    if let Some(Segment::Param { name, multi }) = segments.last_mut() {
        *multi = spanning == Some(name.as_str());
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let bound = match_segments(&segments, &parts)?;
    Some(bound.into_iter().map(|(_, value)| value).collect())
}

fn match_segments(segments: &[Segment], parts: &[&str]) -> Option<Vec<(String, String)>> {
    let mut bound = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Literal(literal) => {
                if parts.get(i) != Some(&literal.as_str()) {
                    return None;
                }
            }
            Segment::Param { name, multi } if *multi && i == segments.len() - 1 => {
                let rest = parts.get(i..)?;
                if rest.is_empty() || rest.iter().any(|p| p.is_empty()) {
                    return None;
                }
                let decoded: Vec<String> = rest.iter().map(|p| percent_decode(p)).collect();
                bound.push((name.clone(), decoded.join("/")));
                return Some(bound);
            }
            Segment::Param { name, .. } => {
                let part = parts.get(i)?;
                if part.is_empty() {
                    return None;
                }
                bound.push((name.clone(), percent_decode(part)));
            }
        }
    }
    (parts.len() == segments.len()).then_some(bound)
}

/// Decodes `%XX` escapes (a path segment; `+` stays `+`). Invalid escapes stay as sent.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
