//! JSON design tokens: the W3C Design Tokens Community Group format, and Style Dictionary.
//!
//! Grammar, over a parsed JSON document:
//! - the top level is an object; anything else (or an empty file) has no tokens, since
//!   exports carry unrelated JSON such as `package.json`;
//! - an object with a `$value` key is a token; one with `value` and no `$value` is a
//!   Style Dictionary token; any other object is a group; keys starting with `$`
//!   (`$type`, `$description`, `$extensions`) are never groups or tokens; members that
//!   are not objects are ignored;
//! - a token's name is its path of keys joined with `.`; the context is empty;
//! - a value is a string as is, a number, boolean or null as its JSON text, and an
//!   object or array (typography, shadow) as compact JSON with keys sorted;
//! - a string that is exactly `{a.b.c}` is an alias: it reads `{a.b.c} (resolved)` when
//!   the chain of aliases ends at a value in this file (so a changed color shows on its
//!   aliases too), and stays as written when it ends at a name not in the file; a cycle
//!   is an error. Style Dictionary's older `{a.b.c.value}` refers to `a.b.c`.
//!
//! Nesting deeper than [`MAX_DEPTH`] objects or arrays is an error (serde_json stops
//! at 128 itself, which reads as the same error).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::{FileTokens, MAX_DEPTH, ReadError, too_deep};

/// A token's value before aliases are resolved.
enum Raw {
    /// The string as written and the name it refers to.
    Alias {
        written: String,
        target: String,
    },
    Plain(String),
}

pub(super) fn read(text: &str) -> Result<FileTokens, ReadError> {
    if text.trim().is_empty() {
        return Ok(FileTokens::default());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        if e.to_string().starts_with("recursion limit exceeded") {
            too_deep()
        } else {
            ReadError(e.to_string())
        }
    })?;
    let mut raws = BTreeMap::new();
    if let Value::Object(map) = &value {
        let mut path = String::new();
        walk(map, &mut path, 1, &mut raws)?;
    }
    resolve(&raws)
}

/// Collects the tokens of a group whose path is `path` (empty at the top).
fn walk(
    group: &serde_json::Map<String, Value>,
    path: &mut String,
    depth: usize,
    raws: &mut BTreeMap<String, Raw>,
) -> Result<(), ReadError> {
    for (key, member) in group {
        let Value::Object(member) = member else {
            continue;
        };
        if key.starts_with('$') {
            continue;
        }
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        if let Some(value) = member.get("$value").or_else(|| member.get("value")) {
            // The token is one level down, its value two.
            raws.insert(path.clone(), raw(value, depth + 2)?);
        } else if depth >= MAX_DEPTH {
            return Err(too_deep());
        } else {
            walk(member, path, depth + 1, raws)?;
        }
        path.truncate(len);
    }
    Ok(())
}

/// A token's value, at `depth` in the document.
fn raw(value: &Value, depth: usize) -> Result<Raw, ReadError> {
    if let Value::String(s) = value {
        return Ok(match alias_target(s) {
            Some(target) => Raw::Alias {
                written: s.clone(),
                target: target.to_owned(),
            },
            None => Raw::Plain(s.clone()),
        });
    }
    let mut text = String::new();
    write_json(value, depth, &mut text)?;
    Ok(Raw::Plain(text))
}

/// `a.b` for `{a.b}`: braces around a name with no braces of its own.
fn alias_target(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?.trim();
    (!inner.is_empty() && !inner.contains(['{', '}'])).then_some(inner)
}

/// Compact JSON with sorted keys (sorted here, not by serde_json, whose map order depends
/// on a feature another crate could turn on).
fn write_json(value: &Value, depth: usize, out: &mut String) -> Result<(), ReadError> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, depth + 1, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_json(item, depth + 1, out)?;
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
    Ok(())
}

/// The tokens with each alias followed by the value its chain ends at; linear: each
/// name's end is found once.
fn resolve(raws: &BTreeMap<String, Raw>) -> Result<FileTokens, ReadError> {
    // The value each alias's chain ends at; `None`: at a name not in the file.
    let mut ends: HashMap<&str, Option<&str>> = HashMap::new();
    let mut tokens = FileTokens::default();
    for (name, raw) in raws {
        let value = match raw {
            Raw::Plain(value) => value.clone(),
            Raw::Alias { written, target } => match chain_end(name, raws, &mut ends)? {
                Some(end) => format!("{{{target}}} ({end})"),
                None => written.clone(),
            },
        };
        tokens.insert("", name.as_str(), value);
    }
    Ok(tokens)
}

/// The value the alias chain starting at `name` ends at.
fn chain_end<'a>(
    name: &'a str,
    raws: &'a BTreeMap<String, Raw>,
    ends: &mut HashMap<&'a str, Option<&'a str>>,
) -> Result<Option<&'a str>, ReadError> {
    // The aliases walked so far, and where each is in the walk (to name a cycle).
    let mut walked: Vec<&'a str> = Vec::new();
    let mut on_walk: HashMap<&'a str, usize> = HashMap::new();
    let mut current = name;
    let end = loop {
        if let Some(&end) = ends.get(current) {
            break end;
        }
        let (key, raw) = match lookup(raws, current) {
            Some(found) => found,
            None => break None,
        };
        match raw {
            Raw::Plain(value) => break Some(value.as_str()),
            Raw::Alias { target, .. } => {
                if let Some(&at) = on_walk.get(key) {
                    let mut cycle = walked[at..].to_vec();
                    cycle.push(key);
                    return Err(ReadError(format!("alias cycle: {}", cycle.join(" -> "))));
                }
                on_walk.insert(key, walked.len());
                walked.push(key);
                current = target;
            }
        }
    };
    for alias in walked {
        ends.insert(alias, end);
    }
    Ok(end)
}

/// The token `name` refers to, also as Style Dictionary's `name.value`.
fn lookup<'a>(raws: &'a BTreeMap<String, Raw>, name: &str) -> Option<(&'a str, &'a Raw)> {
    let found = raws.get_key_value(name).or_else(|| {
        let base = name
            .strip_suffix(".value")
            .or_else(|| name.strip_suffix(".$value"))?;
        raws.get_key_value(base)
    });
    found.map(|(k, v)| (k.as_str(), v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::read::testing::{pairs, plain};

    fn tokens(text: &str) -> Vec<(String, String)> {
        plain(read(text))
    }

    #[test]
    fn groups_join_names_and_dollar_keys_are_not_groups() {
        let text = r##"{
            "color": {
                "$type": "color",
                "$description": "brand",
                "blue": { "500": { "$value": "#0969DA", "$type": "color" } },
                "$extensions": { "x": { "$value": "ignored" } }
            },
            "space": { "sm": { "$value": 4 }, "on": { "$value": true } },
            "name": "not a token"
        }"##;
        assert_eq!(
            tokens(text),
            pairs(&[
                ("color.blue.500", "#0969DA"),
                ("space.on", "true"),
                ("space.sm", "4")
            ])
        );
    }

    #[test]
    fn style_dictionary_value_is_a_token_unless_there_is_a_dollar_value() {
        let text = r#"{"size": {"base": {"value": "16px", "comment": "x"}},
                       "both": {"$value": "a", "value": "b"}}"#;
        assert_eq!(tokens(text), pairs(&[("both", "a"), ("size.base", "16px")]));
    }

    #[test]
    fn composite_values_are_compact_json_with_sorted_keys() {
        let text = r#"{"type": {"body": {"$value": {"fontWeight": 400, "fontFamily": "Inter",
                       "lineHeight": 1.5}}}, "shadow": {"$value": [{"y": 1, "x": 0}]},
                       "none": {"$value": null}}"#;
        assert_eq!(
            tokens(text),
            pairs(&[
                ("none", "null"),
                ("shadow", r#"[{"x":0,"y":1}]"#),
                (
                    "type.body",
                    r#"{"fontFamily":"Inter","fontWeight":400,"lineHeight":1.5}"#
                ),
            ])
        );
    }

    #[test]
    fn aliases_show_what_their_chain_ends_at() {
        let text = r##"{
            "blue": {"$value": "#0969DA"},
            "accent": {"$value": "{blue}"},
            "link": {"$value": "{accent}"},
            "old": {"value": "{blue.value}"},
            "gone": {"$value": "{missing.name}"},
            "via_gone": {"$value": "{gone}"},
            "text": {"$value": "{not an alias"}
        }"##;
        assert_eq!(
            tokens(text),
            pairs(&[
                ("accent", "{blue} (#0969DA)"),
                ("blue", "#0969DA"),
                ("gone", "{missing.name}"),
                ("link", "{accent} (#0969DA)"),
                ("old", "{blue.value} (#0969DA)"),
                ("text", "{not an alias"),
                ("via_gone", "{gone}"),
            ])
        );
    }

    #[test]
    fn an_alias_cycle_is_named() {
        let text = r#"{"a": {"$value": "{b}"}, "b": {"$value": "{c}"}, "c": {"$value": "{b}"}}"#;
        assert_eq!(
            read(text),
            Err(ReadError("alias cycle: b -> c -> b".to_owned()))
        );
        let text = r#"{"a": {"$value": "{a}"}}"#;
        assert_eq!(read(text), Err(ReadError("alias cycle: a -> a".to_owned())));
    }

    #[test]
    fn other_json_has_no_tokens_and_bad_json_says_where() {
        for text in [
            "",
            "  \n",
            "[1, 2]",
            "\"x\"",
            r#"{"name": "pkg", "version": "1.0.0"}"#,
        ] {
            assert!(read(text).unwrap().is_empty(), "{text}");
        }
        assert_eq!(
            read("{\n  \"a\": }"),
            Err(ReadError("expected value at line 2 column 8".to_owned()))
        );
    }

    #[test]
    fn nesting_is_bounded() {
        // `n` objects, each the only member of the one around it.
        let nested = |n: usize| format!("{}{{}}{}", "{\"a\":".repeat(n - 1), "}".repeat(n - 1));
        // 64 groups, the last one empty: fine.
        assert!(read(&nested(MAX_DEPTH)).unwrap().is_empty());
        assert_eq!(read(&nested(MAX_DEPTH + 1)), Err(too_deep()));
        assert_eq!(read(&nested(10_000)), Err(too_deep()));
        let deep_value = format!(
            "{{\"t\": {{\"$value\": {}1{}}}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(read(&deep_value), Err(too_deep()));
    }
}
