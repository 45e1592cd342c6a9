//! Malformed and hostile webhook bodies: each is refused with the JSON path and a message a
//! person can act on, never with a panic, and never quoting a value from the body.

use courier_core::event::{Event, EventError, EventErrorKind, parse_event};
use serde_json::{Value, json};

/// A valid first-version body (no trailing comma) to break one field at a time.
fn base() -> Value {
    json!({
        "event": "job:updated",
        "workspace": {"id": "1", "name": "Example workspace"},
        "designSystem": {"id": "2", "name": "Example Design System"},
        "designSystemVersion": {"id": "3", "name": "A version name", "version": "v0.1"},
        "exporter": {"id": "4", "name": "Example exporter"},
        "hook": {"id": "5", "name": "Example hook"},
        "job": {
            "id": "6",
            "status": "Success",
            "logs": [{"id": "", "time": "2021-03-25T16:13:28.804Z", "type": "info", "message": "ok"}],
            "urls": ["https://example.supernova.io/r.zip?sig=SECRET"]
        }
    })
}

fn with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = base();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[track_caller]
fn refused(body: &[u8], kind: EventErrorKind, path: &str, message: &str) -> EventError {
    let err = match parse_event(body) {
        Ok(parsed) => panic!("expected an error, parsed {parsed:?}"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), kind, "{err}");
    assert_eq!(err.path(), path, "{err}");
    assert!(err.message().contains(message), "{err:?} lacks {message:?}");
    let shown = err.to_string();
    assert!(!shown.contains("SECRET"), "value leaked into {shown}");
    if !path.is_empty() {
        assert!(shown.starts_with(&format!("{path}: ")), "{shown}");
    }
    err
}

use EventErrorKind::{Empty, Invalid, NotUtf8, Schema, Syntax};

#[test]
fn the_base_body_is_valid() {
    assert!(matches!(
        parse_event(&with(|_| {})).unwrap().event,
        Event::JobUpdated(_)
    ));
}

#[test]
fn empty_body() {
    refused(b"", Empty, "", "empty body");
    refused(b" \r\n\t ", Empty, "", "empty body");
}

#[test]
fn non_utf8_body() {
    let mut body = with(|_| {});
    body.splice(10..10, [0xff, 0xfe]);
    let err = refused(&body, NotUtf8, "", "not valid UTF-8");
    assert!(err.message().contains("offset 10"), "{err}");
}

#[test]
fn top_level_array_is_not_an_event() {
    // serde would read a struct from an array by position; a payload may not.
    refused(
        br#"["job:updated"]"#,
        Schema,
        "",
        "expected an object, found an array",
    );
}

#[test]
fn top_level_scalars_are_not_events() {
    refused(b"42", Schema, "", "expected an object, found an integer");
    refused(b"null", Schema, "", "expected an object, found null");
    refused(
        br#""job:updated""#,
        Schema,
        "",
        "expected an object, found a string",
    );
}

#[test]
fn missing_event() {
    let body = with(|v| {
        v.as_object_mut().unwrap().remove("event");
    });
    let err = refused(&body, Schema, "event", "missing");
    assert!(
        err.to_string()
            .starts_with("event: missing (line 1, column "),
        "{err}"
    );
}

#[test]
fn event_not_a_string() {
    let err = refused(&with(|v| v["event"] = json!(7)), Schema, "event", "");
    assert_eq!(err.message(), "expected a string, found an integer");
    assert!(err.line().is_some() && err.column().is_some());
}

#[test]
fn missing_job() {
    let body = with(|v| {
        v.as_object_mut().unwrap().remove("job");
    });
    refused(&body, Schema, "job", "missing");
}

#[test]
fn job_null_or_array() {
    refused(
        &with(|v| v["job"] = Value::Null),
        Schema,
        "job",
        "expected an object, found null",
    );
    refused(
        &with(|v| v["job"] = json!(["6", "Success"])),
        Schema,
        "job",
        "found an array",
    );
}

#[test]
fn workspace_given_by_position() {
    let body = with(|v| v["workspace"] = json!(["1", "Example workspace"]));
    refused(
        &body,
        Schema,
        "workspace",
        "expected an object, found an array",
    );
}

#[test]
fn job_status_number() {
    let err = refused(
        &with(|v| v["job"]["status"] = json!(1)),
        Schema,
        "job.status",
        "",
    );
    assert_eq!(err.message(), "expected a string, found an integer");
}

#[test]
fn job_status_missing() {
    let body = with(|v| {
        v["job"].as_object_mut().unwrap().remove("status");
    });
    refused(&body, Schema, "job.status", "missing");
}

#[test]
fn job_status_huge() {
    let body = with(|v| v["job"]["status"] = json!("S".repeat(1 << 20)));
    refused(&body, Invalid, "job.status", "longer than 64 characters");
}

#[test]
fn workspace_id_missing() {
    let body = with(|v| {
        v["workspace"].as_object_mut().unwrap().remove("id");
    });
    refused(&body, Schema, "workspace.id", "missing");
}

#[test]
fn workspace_id_empty() {
    refused(
        &with(|v| v["workspace"]["id"] = json!("")),
        Invalid,
        "workspace.id",
        "must not be empty",
    );
}

#[test]
fn id_float_or_bool() {
    let err = refused(
        &with(|v| v["hook"]["id"] = json!(5.5)),
        Schema,
        "hook.id",
        "",
    );
    assert_eq!(
        err.message(),
        "expected a string or an integer, found a number"
    );
    refused(
        &with(|v| v["exporter"]["id"] = json!(true)),
        Schema,
        "exporter.id",
        "found a boolean",
    );
}

#[test]
fn id_huge() {
    let body = with(|v| v["job"]["id"] = json!("6".repeat(1 << 20)));
    refused(&body, Invalid, "job.id", "longer than 256 characters");
}

#[test]
fn id_with_control_character() {
    let body = with(|v| v["designSystem"]["id"] = json!("2\u{0}\n"));
    refused(&body, Invalid, "designSystem.id", "control character");
}

#[test]
fn name_huge() {
    let body = with(|v| v["designSystemVersion"]["name"] = json!("n".repeat(1025)));
    refused(
        &body,
        Invalid,
        "designSystemVersion.name",
        "longer than 1024 characters",
    );
}

#[test]
fn urls_not_an_array() {
    // The mistyped value is a signed URL: the message must not quote it.
    let body = with(|v| v["job"]["urls"] = json!("https://example.supernova.io/r.zip?sig=SECRET"));
    let err = refused(&body, Schema, "job.urls", "");
    assert_eq!(
        err.to_string().split(" (line").next().unwrap(),
        "job.urls: expected an array, found a string"
    );
}

#[test]
fn urls_first_not_a_string() {
    refused(
        &with(|v| v["job"]["urls"] = json!([1])),
        Schema,
        "job.urls[0]",
        "expected a string, found an integer",
    );
}

#[test]
fn urls_first_not_a_url() {
    let body = with(|v| v["job"]["urls"] = json!(["result.zip?sig=SECRET"]));
    refused(
        &body,
        Invalid,
        "job.urls[0]",
        "not a valid URL: relative URL without a base",
    );
    let body = with(|v| v["job"]["urls"] = json!(["https://exa mple.supernova.io/?sig=SECRET"]));
    refused(&body, Invalid, "job.urls[0]", "not a valid URL");
}

#[test]
fn urls_first_javascript_scheme() {
    let body = with(|v| v["job"]["urls"] = json!(["javascript:alert(1)//SECRET"]));
    refused(
        &body,
        Invalid,
        "job.urls[0]",
        "URL scheme `javascript` is not allowed",
    );
}

#[test]
fn urls_first_file_scheme() {
    let body = with(|v| v["job"]["urls"] = json!(["file:///etc/passwd"]));
    refused(
        &body,
        Invalid,
        "job.urls[0]",
        "URL scheme `file` is not allowed",
    );
}

#[test]
fn urls_first_with_credentials() {
    let body =
        with(|v| v["job"]["urls"] = json!(["https://user:SECRET@example.supernova.io/r.zip"]));
    refused(
        &body,
        Invalid,
        "job.urls[0]",
        "must not contain credentials",
    );
}

#[test]
fn s3_not_an_object() {
    let body = with(|v| {
        let job = v["job"].as_object_mut().unwrap();
        job.remove("urls");
        job.insert(
            "s3".into(),
            json!("https://bucket.s3.amazonaws.com/r.zip?sig=SECRET"),
        );
    });
    refused(
        &body,
        Schema,
        "job.s3",
        "expected an object, found a string",
    );
}

#[test]
fn s3_url_number_or_ftp() {
    refused(
        &with(|v| v["job"]["s3"] = json!({"url": 3})),
        Schema,
        "job.s3.url",
        "expected a string",
    );
    let body = with(|v| v["job"]["s3"] = json!({"url": "ftp://example.supernova.io/r.zip"}));
    refused(
        &body,
        Invalid,
        "job.s3.url",
        "URL scheme `ftp` is not allowed",
    );
}

#[test]
fn logs_url_data_scheme() {
    let body = with(|v| v["job"]["logsUrl"] = json!("data:text/plain,SECRET"));
    refused(
        &body,
        Invalid,
        "job.logsUrl",
        "URL scheme `data` is not allowed",
    );
}

#[test]
fn logs_not_an_array() {
    refused(
        &with(|v| v["job"]["logs"] = json!({})),
        Schema,
        "job.logs",
        "expected an array, found an object",
    );
}

#[test]
fn log_message_mistyped() {
    let body = with(|v| v["job"]["logs"][0]["message"] = json!({"text": "x"}));
    refused(
        &body,
        Schema,
        "job.logs[0].message",
        "expected a string, found an object",
    );
}

#[test]
fn duplicate_known_key_in_job() {
    let body = br#"{"event":"job:updated","workspace":{"id":"1"},"designSystem":{"id":"2"},
        "designSystemVersion":{"id":"3"},"exporter":{"id":"4"},"hook":{"id":"5"},
        "job":{"id":"6","status":"Failure","status":"Success"}}"#;
    refused(body, Schema, "job.status", "duplicate key");
}

#[test]
fn duplicate_event_key() {
    let body = br#"{"event":"job:created","event":"job:updated"}"#;
    refused(body, Schema, "event", "duplicate key");
}

#[test]
fn duplicate_unknown_keys_are_ignored() {
    let body = String::from_utf8(with(|_| {}))
        .unwrap()
        .replacen('{', r#"{"x":1,"x":2,"#, 1);
    assert!(parse_event(body.as_bytes()).is_ok());
}

#[test]
fn deeply_nested_unbalanced_junk_fails_without_crashing() {
    let body = format!(
        r#"{{"event":"job:updated","junk":{}"#,
        "[".repeat(1_000_000)
    );
    refused(body.as_bytes(), Syntax, "junk", "EOF while parsing");
}

#[test]
fn deeply_nested_junk_in_an_unknown_field_is_skipped() {
    // serde_json skips unknown values iteratively, so depth costs memory, not stack.
    let depth = 200_000;
    let junk = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let body =
        String::from_utf8(with(|_| {}))
            .unwrap()
            .replacen('{', &format!(r#"{{"junk":{junk},"#), 1);
    assert!(parse_event(body.as_bytes()).is_ok());
}

#[test]
fn deep_nesting_where_a_string_is_expected() {
    let body = String::from_utf8(with(|v| v["workspace"]["name"] = json!("PLACEHOLDER"))).unwrap();
    let body = body.replace(
        r#""PLACEHOLDER""#,
        &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    );
    refused(
        body.as_bytes(),
        Schema,
        "workspace.name",
        "expected a string, found an array",
    );
}

#[test]
fn huge_log_message_is_accepted() {
    // Bounding the body is the intake's job; a big but well-formed field is not an error.
    let body = with(|v| v["job"]["logs"][0]["message"] = json!("m".repeat(4 << 20)));
    assert!(parse_event(&body).is_ok());
}

#[test]
fn trailing_characters_after_the_object() {
    let mut body = with(|_| {});
    body.extend_from_slice(b" {}");
    refused(&body, Syntax, "", "trailing characters");
}

#[test]
fn truncated_body_as_in_the_v2_seed() {
    let body = br#"{"event": "job:updated", "workspace": {"id": "1", "name": "Example workspace"
        "designSystem": {"id": "2""#;
    let err = refused(body, Syntax, "workspace", "expected `,` or `}`");
    assert_eq!(err.line(), Some(2));
}

#[test]
fn not_json_at_all() {
    refused(b"event=job:updated&job=6", Syntax, "", "expected value");
    refused(
        b"{'event': 'job:updated'}",
        Syntax,
        "",
        "key must be a string",
    );
    refused(br#"{"event": NaN}"#, Syntax, "event", "expected value");
}

#[test]
fn trailing_comma_with_another_fault_reports_the_other_fault() {
    let body = br#"{"event": "job:updated", "workspace": {"id": "1",}, "x": [1,] "#;
    let err = refused(body, Syntax, "", "after removing trailing commas");
    assert!(
        err.message().starts_with("EOF while parsing an object"),
        "{err}"
    );
}

#[test]
fn comma_alone_is_not_repaired_into_something_else() {
    refused(br#"{"event": "job:updated",,}"#, Syntax, "", "");
    // `[,]` becomes `[]` after the repair, which is still not an event.
    refused(b"[,]", Schema, "", "expected an object, found an array");
}

#[test]
fn lone_surrogate_escape() {
    let body = String::from_utf8(with(|v| v["job"]["id"] = json!("X")))
        .unwrap()
        .replace(r#""X""#, r#""\ud800""#);
    refused(body.as_bytes(), Syntax, "job.id", "escape");
}

#[test]
fn escaped_control_character_in_an_id() {
    let body = String::from_utf8(with(|v| v["job"]["id"] = json!("X")))
        .unwrap()
        .replace(r#""X""#, r#""6\u0007""#);
    refused(body.as_bytes(), Invalid, "job.id", "control character");
}
