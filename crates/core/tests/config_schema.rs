//! The configuration's JSON Schema against the code and the shipped files: the committed
//! `deploy/courier.schema.json` is current, it lists every field the parser accepts with
//! the defaults the loader applies, every configuration under `deploy/` satisfies it and
//! loads, and `docs/configuration.md` names every key.
//!
//! Regenerate the schema with `UPDATE_SCHEMA=1 cargo test -p courier-core --test
//! config_schema` (or `courier schema > deploy/courier.schema.json`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod deploy_configs;

use courier_core::archive::ArchiveLimits;
use courier_core::config::{Config, json_schema};
use courier_core::download::DownloadLimits;
use deploy_configs::fake_env;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_json::{Map, Value, json};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema_path() -> PathBuf {
    repo_root().join("deploy/courier.schema.json")
}

/// The committed file's exact text: `courier schema` prints the same.
fn rendered_schema() -> String {
    serde_json::to_string_pretty(&json_schema()).unwrap() + "\n"
}

#[test]
fn committed_schema_is_current() {
    let fresh = rendered_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(schema_path(), &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(schema_path()).unwrap_or_default();
    assert!(
        committed == fresh,
        "deploy/courier.schema.json is stale: regenerate it with \
         `UPDATE_SCHEMA=1 cargo test -p courier-core --test config_schema` and commit it"
    );
}

/// Resolves `#/definitions/NAME` references of the draft-07 schema.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/definitions/")
                .unwrap_or_else(|| panic!("unexpected reference {reference}"));
            &root["definitions"][name]
        }
        None => schema,
    }
}

/// Every object in the schema that lists properties, with its key path (`hooks[].targets[]`).
fn objects<'a>(
    root: &'a Value,
    schema: &'a Value,
    path: String,
    out: &mut Vec<(String, &'a Value)>,
) {
    let schema = resolve(root, schema);
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        out.push((path.clone(), schema));
        for (name, property) in properties {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            objects(root, property, child, out);
        }
    }
    if let Some(items) = schema.get("items") {
        objects(root, items, format!("{path}[]"), out);
    }
    if let Some(Value::Object(_)) = schema.get("additionalProperties") {
        objects(
            root,
            &schema["additionalProperties"],
            format!("{path}.*"),
            out,
        );
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for alternative in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            objects(root, alternative, path.clone(), out);
        }
    }
}

fn object_at<'a>(root: &'a Value, path: &str) -> &'a Value {
    let mut all = Vec::new();
    objects(root, root, String::new(), &mut all);
    all.into_iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("no object at {path} in the schema"))
        .1
}

fn property_names(object: &Value) -> BTreeSet<String> {
    object["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// The field names a serde-derived struct accepts, read from the `deserialize_struct` call
/// its derived impl makes (the struct needs no Serialize or schema derive for this).
fn serde_fields<'de, T: Deserialize<'de>>() -> BTreeSet<String> {
    struct Capture(BTreeSet<String>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Capture {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend(fields.iter().map(|f| (*f).to_owned()));
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut capture = Capture(BTreeSet::new());
    let _ = T::deserialize(&mut capture);
    assert!(
        !capture.0.is_empty(),
        "{} is not a struct",
        std::any::type_name::<T>()
    );
    capture.0
}

#[test]
fn limits_in_the_schema_are_the_fields_serde_accepts() {
    let schema = json_schema();
    assert_eq!(
        property_names(object_at(&schema, "limits.archive")),
        serde_fields::<ArchiveLimits>()
    );
    assert_eq!(
        property_names(object_at(&schema, "limits.download")),
        serde_fields::<DownloadLimits>()
    );
}

#[test]
fn unknown_keys_are_refused_everywhere() {
    // deny_unknown_fields on every raw struct must show as additionalProperties: false,
    // or an editor would accept a typo the parser refuses.
    let schema = json_schema();
    let mut all = Vec::new();
    objects(&schema, &schema, String::new(), &mut all);
    assert!(all.len() >= 10, "{all:?}");
    for (path, object) in all {
        assert_eq!(object["additionalProperties"], json!(false), "at `{path}`");
    }
}

/// The defaults the schema announces are the ones the loader applies.
#[test]
fn schema_defaults_are_the_loaders() {
    let schema = json_schema();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("courier.yaml");
    std::fs::write(
        &path,
        "hooks:\n  - match: any\n    targets:\n      - { connection: local, repository: ./r.git }\n\
         connections:\n  local: { kind: git }\n",
    )
    .unwrap();
    let config = Config::load_with_env(&path, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let default =
        |object: &str, key: &str| object_at(&schema, object)["properties"][key]["default"].clone();

    assert_eq!(default("", "listen"), json!(config.listen.to_string()));
    assert_eq!(default("", "workers"), json!(config.workers));
    let data_dir = default("", "data_dir");
    assert_eq!(dir.path().join(data_dir.as_str().unwrap()), config.data_dir);
    assert_eq!(
        default("platform", "api_url"),
        json!(config.platform.api_url.as_str())
    );
    let hosts: Vec<&str> = config
        .platform
        .download_hosts
        .iter()
        .map(|h| h.as_str())
        .collect();
    assert_eq!(default("platform", "download_hosts"), json!(hosts));

    let a = &config.limits.archive;
    for (key, value) in [
        ("max_entries", a.max_entries),
        ("max_total_bytes", a.max_total_bytes),
        ("max_entry_bytes", a.max_entry_bytes),
        ("max_compression_ratio", a.max_compression_ratio),
        ("ratio_exempt_bytes", a.ratio_exempt_bytes),
        ("max_path_bytes", a.max_path_bytes),
    ] {
        assert_eq!(default("limits.archive", key), json!(value), "{key}");
    }
    let d = &config.limits.download;
    for (key, value) in [
        ("max_bytes", d.max_bytes),
        ("max_log_bytes", d.max_log_bytes),
        ("connect_timeout_secs", d.connect_timeout_secs),
        ("read_timeout_secs", d.read_timeout_secs),
        ("total_timeout_secs", d.total_timeout_secs),
        ("retries", u64::from(d.retries)),
        ("retry_backoff_ms", d.retry_backoff_ms),
        ("retry_backoff_max_ms", d.retry_backoff_max_ms),
        ("max_redirects", u64::from(d.max_redirects)),
    ] {
        assert_eq!(default("limits.download", key), json!(value), "{key}");
    }

    let t = &config.hooks[0].targets[0];
    let target = "hooks[].targets[]";
    // No default in the schema: without `branch`, the base is the repository's own default
    // branch, read when delivering.
    assert_eq!(default(target, "branch"), json!(null));
    assert!(t.branch_from_remote);
    assert_eq!(
        default(target, "commit_author_name"),
        json!(t.commit_author_name)
    );
    assert_eq!(
        default(target, "commit_author_email"),
        json!(t.commit_author_email)
    );
    for (key, value) in [
        ("purge_directory", t.purge_directory),
        ("allow_purge_root", t.allow_purge_root),
        ("draft", t.draft),
        ("update_description", t.update_description),
        ("delete_branch_on_converge", t.delete_branch_on_converge),
        ("auto_merge", t.auto_merge),
        ("allow_empty_export", t.allow_empty_export),
        ("allow_protected_paths", t.allow_protected_paths),
        ("overwrite_diverged", t.overwrite_diverged),
    ] {
        assert_eq!(default(target, key), json!(value), "{key}");
    }
}

/// A validator for exactly the keywords this schema uses; any other keyword fails the
/// test, so a schema change cannot make validation silently weaker. (The `jsonschema`
/// crate would pull in a regex engine and more for a handful of keywords.)
fn validate(root: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = resolve(root, schema);
    let Some(keywords) = schema.as_object() else {
        if schema == &json!(false) {
            errors.push(format!("{path}: not allowed"));
        }
        return;
    };
    for (keyword, argument) in keywords {
        match keyword.as_str() {
            "$schema" | "$ref" | "title" | "description" | "default" | "definitions" => {}
            "type" => {
                let types: Vec<&str> = match argument {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
                    other => panic!("type {other}"),
                };
                let matches = |t: &str| match t {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "boolean" => value.is_boolean(),
                    "null" => value.is_null(),
                    "integer" => value.is_i64() || value.is_u64(),
                    "number" => value.is_number(),
                    other => panic!("type {other}"),
                };
                if !types.iter().any(|t| matches(t)) {
                    errors.push(format!("{path}: {value} is not {types:?}"));
                }
            }
            "format" => {} // uint32 and the like: annotations only in draft-07
            "enum" => {
                if !argument.as_array().unwrap().contains(value) {
                    errors.push(format!("{path}: {value} is not one of {argument}"));
                }
            }
            "const" => {
                if argument != value {
                    errors.push(format!("{path}: {value} is not {argument}"));
                }
            }
            "minimum" | "maximum" => {
                if let Some(n) = value.as_f64() {
                    let bound = argument.as_f64().unwrap();
                    if (keyword == "minimum" && n < bound) || (keyword == "maximum" && n > bound) {
                        errors.push(format!("{path}: {n} is out of range ({keyword} {bound})"));
                    }
                }
            }
            "minItems" => {
                if let Some(items) = value.as_array()
                    && (items.len() as u64) < argument.as_u64().unwrap()
                {
                    errors.push(format!("{path}: fewer than {argument} items"));
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    validate(root, argument, item, &format!("{path}[{i}]"), errors);
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for key in argument.as_array().unwrap() {
                        if !object.contains_key(key.as_str().unwrap()) {
                            errors.push(format!("{path}: missing `{}`", key.as_str().unwrap()));
                        }
                    }
                }
            }
            "properties" | "additionalProperties" => {
                let Some(object) = value.as_object() else {
                    continue;
                };
                let properties = keywords.get("properties").and_then(Value::as_object);
                for (key, item) in object {
                    let declared = properties.and_then(|p| p.get(key));
                    let child = format!("{path}.{key}");
                    match (keyword.as_str(), declared) {
                        ("properties", Some(sub)) => validate(root, sub, item, &child, errors),
                        ("additionalProperties", None) => {
                            validate(root, argument, item, &child, errors)
                        }
                        _ => {}
                    }
                }
            }
            "if" => {
                let mut failed = Vec::new();
                validate(root, argument, value, path, &mut failed);
                if failed.is_empty()
                    && let Some(then) = keywords.get("then")
                {
                    validate(root, then, value, path, errors);
                }
            }
            "then" => {} // applied by "if"
            "allOf" => {
                for part in argument.as_array().unwrap() {
                    validate(root, part, value, path, errors);
                }
            }
            "anyOf" | "oneOf" => {
                let passing = argument
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|alternative| {
                        let mut sub = Vec::new();
                        validate(root, alternative, value, path, &mut sub);
                        sub.is_empty()
                    })
                    .count();
                let fits = if keyword == "oneOf" {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !fits {
                    errors.push(format!("{path}: {passing} alternatives of {keyword} match"));
                }
            }
            other => panic!("the test validator does not know the keyword `{other}` at {path}"),
        }
    }
}

fn schema_errors(document: &Value) -> Vec<String> {
    let schema = json_schema();
    let mut errors = Vec::new();
    validate(&schema, &schema, document, "", &mut errors);
    errors
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every configuration Courier is meant to read under `deploy/`: the examples, the
/// compose file's, and the one inside the Kubernetes ConfigMap (written out to a file).
fn deploy_configs(scratch: &Path) -> Vec<PathBuf> {
    let deploy = repo_root().join("deploy");
    let mut configs: Vec<PathBuf> = std::fs::read_dir(deploy.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    configs.push(deploy.join("compose/courier.yaml"));
    let configmap = yaml_file(&deploy.join("kubernetes/configmap.yaml"));
    let embedded = configmap["data"]["courier.yaml"]
        .as_str()
        .expect("data.courier.yaml");
    let path = scratch.join("kubernetes-configmap.yaml");
    std::fs::write(&path, embedded).unwrap();
    configs.push(path);
    configs.sort();
    configs
}

#[test]
fn every_deploy_config_satisfies_the_schema_and_loads() {
    let scratch = tempfile::tempdir().unwrap();
    let configs = deploy_configs(scratch.path());
    assert_eq!(configs.len(), 11, "{configs:?}");
    for path in &configs {
        let errors = schema_errors(&yaml_file(path));
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        Config::load_with_env(&deploy_configs::loadable(path).path, &fake_env)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn examples_point_editors_at_the_schema() {
    let deploy = repo_root().join("deploy");
    for entry in std::fs::read_dir(deploy.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let first = std::fs::read_to_string(&path).unwrap();
            let first = first.lines().next().unwrap_or_default().to_owned();
            assert_eq!(
                first,
                "# yaml-language-server: $schema=../courier.schema.json",
                "{}",
                path.display()
            );
        }
    }
    let compose = std::fs::read_to_string(deploy.join("compose/courier.yaml")).unwrap();
    assert!(compose.starts_with("# yaml-language-server: $schema=../courier.schema.json\n"));
}

#[test]
fn the_schema_refuses_what_the_parser_refuses() {
    // The validator above must find real mistakes, or the test before it proves nothing.
    let valid = json!({
        "connections": { "gh": { "kind": "github", "token": "x" } },
        "hooks": [{ "match": { "hook_id": 5 }, "targets": [{ "connection": "gh", "repository": "a/b" }] }],
    });
    assert_eq!(schema_errors(&valid), Vec::<String>::new());

    let mut typo = valid.clone();
    typo["hooks"][0]["targets"][0]["relative_dir"] = json!("tokens");
    assert_eq!(schema_errors(&typo).len(), 1, "{:?}", schema_errors(&typo));

    let mut kind = valid.clone();
    kind["connections"]["gh"]["kind"] = json!("bitbucket");
    assert!(!schema_errors(&kind).is_empty());

    let mut matcher = valid.clone();
    matcher["hooks"][0]["match"] = json!("all");
    assert!(!schema_errors(&matcher).is_empty());

    let mut limits = valid.clone();
    limits["limits"] = json!({ "archive": { "max_entries": 0 } });
    assert!(!schema_errors(&limits).is_empty());

    let mut workers = valid;
    workers["workers"] = json!("four");
    assert!(!schema_errors(&workers).is_empty());
}

/// Each `## ` section of docs/configuration.md, by heading.
fn doc_sections() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(repo_root().join("docs/configuration.md")).unwrap();
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in doc.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            sections.push((heading.to_owned(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections
}

#[test]
fn configuration_md_names_every_key() {
    let schema = json_schema();
    let sections = doc_sections();
    let mut all = Vec::new();
    objects(&schema, &schema, String::new(), &mut all);
    let mut missing = Vec::new();
    for (path, object) in &all {
        // Keys are documented in the section of their top-level key.
        let heading = match path.split(['.', '[']).next().unwrap() {
            "" => "Top level".to_owned(),
            top => format!("`{top}`"),
        };
        let body = &sections
            .iter()
            .find(|(h, _)| *h == heading)
            .unwrap_or_else(|| panic!("docs/configuration.md has no section `## {heading}`"))
            .1;
        // The first cell of each table row: where a key is documented.
        let first_cells: Vec<&str> = body
            .lines()
            .filter_map(|line| line.strip_prefix("| "))
            .filter_map(|row| row.split(" |").next())
            .collect();
        for name in property_names(object) {
            // `name`, or a dotted path ending in it (`limits.archive.name`, `app.name`).
            let documented = first_cells.iter().any(|cell| {
                cell.contains(&format!("`{name}`")) || cell.contains(&format!(".{name}`"))
            });
            if !documented {
                let full = if path.is_empty() {
                    name
                } else {
                    format!("{path}.{name}")
                };
                missing.push(full);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document: {missing:#?}"
    );
}

#[test]
fn schema_objects_have_descriptions() {
    // Editors show these on hover; a key without one is a key nobody explained.
    let schema = json_schema();
    let mut all = Vec::new();
    objects(&schema, &schema, String::new(), &mut all);
    let mut bare = Vec::new();
    for (path, object) in &all {
        let properties: &Map<String, Value> = object["properties"].as_object().unwrap();
        for (name, property) in properties {
            let property = resolve(&schema, property);
            let has = property.get("description").is_some()
                || object["properties"][name].get("description").is_some();
            if !has {
                bare.push(format!("{path}.{name}"));
            }
        }
    }
    assert!(
        bare.is_empty(),
        "properties without a description: {bare:#?}"
    );
}

#[test]
fn configuration_md_limit_defaults_are_the_codes() {
    let schema = json_schema();
    let (_, body) = doc_sections()
        .into_iter()
        .find(|(h, _)| h == "`limits`")
        .unwrap();
    let mut checked = 0;
    for row in body.lines().filter_map(|l| l.strip_prefix("| `limits.")) {
        let mut cells = row.split(" | ");
        let path = cells.next().unwrap().trim_end_matches('`');
        let Some((section, key)) = path.split_once('.') else {
            continue;
        };
        let written = cells.next().unwrap().split('`').nth(1).unwrap();
        let default =
            &object_at(&schema, &format!("limits.{section}"))["properties"][key]["default"];
        assert_eq!(written, default.to_string(), "limits.{section}.{key}");
        checked += 1;
    }
    assert_eq!(checked, 15);
}

/// The schema's per-kind rules against the loader's: every kind with every optional key.
#[test]
fn connection_kind_rules_match_the_loader() {
    let keys: [(&str, &str); 6] = [
        ("app", "{ app_id: 1, private_key_path: ./app.pem }"),
        ("api_url", "https://api.example.com"),
        ("git_url", "https://git.example.com"),
        ("url", "https://forge.example.com"),
        ("organization", "acme"),
        ("username", "courier"),
    ];
    let bases = [
        ("github", "kind: github, token: t"),
        ("gitlab", "kind: gitlab, token: t"),
        ("azure", "kind: azure, token: t, organization: o"),
        ("git", "kind: git"),
    ];
    let mut compared = 0;
    for (kind, base) in bases {
        for (key, value) in keys {
            if base.contains(&format!("{key}:")) || (kind == "github" && key == "app") {
                // Already in the base, or refused for another reason (`token` and `app`).
                continue;
            }
            let yaml = format!(
                "connections:\n  c: {{ {base}, {key}: {value} }}\n\
                 hooks:\n  - match: any\n    targets:\n      - {{ connection: c, repository: acme/web }}\n"
            );
            let document: Value = serde_norway::from_str(&yaml).unwrap();
            let schema_ok = schema_errors(&document).is_empty();
            let loaded = Config::from_yaml_str_in(&yaml, "c.yaml", Path::new("/tmp"), &|_| None);
            let applicability_refused = match &loaded {
                Ok(_) => false,
                Err(e) => e.to_string().contains("does not apply"),
            };
            assert_eq!(
                schema_ok, !applicability_refused,
                "`{key}` on a `{kind}` connection: schema says {schema_ok}, loader says {loaded:?}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 22);

    // Required per kind: a gitlab connection without a token, an azure one without an
    // organization.
    for (connection, key) in [
        ("{ kind: gitlab }", "token"),
        ("{ kind: azure, token: t }", "organization"),
    ] {
        let yaml = format!("connections:\n  c: {connection}\nhooks: []\n");
        let errors = schema_errors(&serde_norway::from_str(&yaml).unwrap());
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("missing `{key}`"))),
            "{errors:?}"
        );
    }
}
