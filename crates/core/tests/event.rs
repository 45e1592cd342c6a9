//! The platform's documented payloads (tests/fixtures/payloads) parse into the expected
//! normalised events, and signed URLs never show outside `SecretUrl::expose`.

use std::path::PathBuf;

use courier_core::event::{
    ArtifactSource, Event, JobEvent, JobStatus, LogLine, Logs, Named, ParsedEvent, PayloadVersion,
    SecretUrl, VersionRef, parse_event,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/payloads")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn job_event(parsed: ParsedEvent) -> JobEvent {
    match parsed.event {
        Event::JobUpdated(event) => *event,
        other => panic!("expected job:updated, got {other:?}"),
    }
}

fn named(id: &str, name: &str) -> Named {
    Named {
        id: id.into(),
        name: name.into(),
    }
}

fn assert_seed_header(event: &JobEvent) {
    assert_eq!(event.workspace, named("1", "Example workspace"));
    assert_eq!(event.design_system, named("2", "Example Design System"));
    assert_eq!(
        event.version,
        VersionRef {
            id: "3".into(),
            name: "A version name".into(),
            version: "v0.1".into()
        }
    );
    assert_eq!(event.exporter, named("4", "Example exporter"));
    assert_eq!(event.hook, named("5", "Example hook"));
    assert_eq!(event.job.id, "6");
    assert_eq!(event.job.status, JobStatus::Success);
    assert!(event.is_deliverable());
}

#[test]
fn v1_seed_parses_with_its_trailing_comma_repaired() {
    let body = fixture("v1-seed.json");
    // The fixture really is invalid JSON as published.
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());

    let parsed = parse_event(&body).expect("the documented v1 payload parses");
    assert!(
        parsed.repaired,
        "the trailing comma is reported as a repair"
    );
    let event = job_event(parsed);
    assert_eq!(event.payload_version, PayloadVersion::V1);
    assert_seed_header(&event);
    assert_eq!(
        event.job.logs,
        Logs::Inline {
            lines: vec![LogLine {
                time: Some("2021-03-25T16:13:28.804Z".into()),
                level: "info".into(),
                message: "Finished exporting source colors.pr".into(),
            }],
            omitted: 0,
        }
    );
    let ArtifactSource::SignedUrl { url } = &event.job.artifact else {
        panic!("expected a signed URL, got {:?}", event.job.artifact);
    };
    assert_eq!(
        url.expose().as_str(),
        "https://example.supernova.io/codegen/job-results/2/example-01234567-89ab-cdef/result.zip"
    );
}

#[test]
fn v1_seed_without_the_comma_is_not_a_repair() {
    let body = String::from_utf8(fixture("v1-seed.json")).unwrap();
    let fixed = body.replacen("},\n    ],", "}\n    ],", 1);
    assert_ne!(body, fixed, "the fixture still has its trailing comma");
    let parsed = parse_event(fixed.as_bytes()).unwrap();
    assert!(!parsed.repaired);
    assert_seed_header(&job_event(parsed));
}

#[test]
fn v2_seed_with_empty_urls_falls_back_to_the_result_endpoint() {
    let parsed = parse_event(&fixture("v2-seed.json")).unwrap();
    assert!(!parsed.repaired);
    let event = job_event(parsed);
    assert_eq!(event.payload_version, PayloadVersion::V2);
    assert_seed_header(&event);
    assert_eq!(event.job.logs, Logs::None, "logsUrl \"\" means no log URL");
    assert_eq!(event.job.artifact, ArtifactSource::ResultEndpoint);
}

#[test]
fn v2_with_s3_url_keeps_the_url_but_never_shows_its_signature() {
    let event = job_event(parse_event(&fixture("v2-s3-url.json")).unwrap());
    assert_eq!(event.payload_version, PayloadVersion::V2);
    assert_seed_header(&event);
    let ArtifactSource::PlatformUrl { url } = &event.job.artifact else {
        panic!("expected a platform URL, got {:?}", event.job.artifact);
    };
    assert!(
        url.expose()
            .as_str()
            .contains("X-Amz-Signature=0123456789abcdef")
    );
    assert_eq!(url.host_str(), Some("exports.supernova.io"));
    let Logs::Url { url: logs_url } = &event.job.logs else {
        panic!("expected a log URL, got {:?}", event.job.logs);
    };
    assert_eq!(
        logs_url.expose().as_str(),
        "https://api.supernova.io/api/v2/codegen/workspaces/1/jobs/6/logs"
    );

    let shown = [
        format!("{event:?}"),
        format!("{event:#?}"),
        serde_json::to_string(&event).unwrap(),
        url.to_string(),
    ];
    for text in shown {
        assert!(!text.contains("Signature"), "signature leaked: {text}");
        assert!(!text.contains("AKIAEXAMPLE"), "credential leaked: {text}");
    }
    assert_eq!(
        url.to_string(),
        "https://exports.supernova.io/job-results/2/example-01234567-89ab-cdef/result.zip?<redacted>"
    );
}

#[test]
fn v2_with_integer_ids_normalises_them_to_strings() {
    let event = job_event(parse_event(&fixture("v2-empty-url.json")).unwrap());
    assert_eq!(event.workspace.id, "1");
    assert_eq!(event.job.id, "6");
    assert_eq!(event.payload_version, PayloadVersion::V2);
    assert_eq!(event.job.artifact, ArtifactSource::ResultEndpoint);
    assert_eq!(event.job.logs, Logs::None);
}

fn with_status(status: &str) -> JobEvent {
    let body = String::from_utf8(fixture("v2-s3-url.json")).unwrap();
    let body = body.replace(
        "\"status\": \"Success\"",
        &format!("\"status\": \"{status}\""),
    );
    job_event(parse_event(body.as_bytes()).unwrap())
}

#[test]
fn every_known_status_is_recorded_and_only_success_delivered() {
    let cases = [
        ("Success", JobStatus::Success),
        ("success", JobStatus::Success),
        ("Failure", JobStatus::Failure),
        ("Failed", JobStatus::Failed),
        ("Timeout", JobStatus::Timeout),
        ("InProgress", JobStatus::InProgress),
        ("Exploded", JobStatus::Unknown("Exploded".into())),
        ("", JobStatus::Unknown(String::new())),
    ];
    for (raw, expected) in cases {
        let event = with_status(raw);
        assert_eq!(event.job.status, expected, "status {raw:?}");
        assert_eq!(event.is_deliverable(), expected == JobStatus::Success);
        if expected == JobStatus::Success {
            assert!(matches!(
                event.job.artifact,
                ArtifactSource::PlatformUrl { .. }
            ));
        } else {
            assert_eq!(event.job.artifact, ArtifactSource::None, "status {raw:?}");
        }
    }
}

#[test]
fn a_failed_v2_job_without_url_has_no_artifact() {
    let body = String::from_utf8(fixture("v2-seed.json")).unwrap();
    let body = body.replace("\"Success\"", "\"Failure\"");
    let event = job_event(parse_event(body.as_bytes()).unwrap());
    assert_eq!(event.job.artifact, ArtifactSource::None);
}

#[test]
fn other_events_are_recognised_and_ignored() {
    let parsed = parse_event(br#"{"event": "job:created", "job": 42}"#).unwrap();
    assert_eq!(
        parsed.event,
        Event::Other {
            event: "job:created".into()
        }
    );
    // An absurd event name is kept only in part.
    let long = format!(r#"{{"event": "{}"}}"#, "x".repeat(10_000));
    let Event::Other { event } = parse_event(long.as_bytes()).unwrap().event else {
        panic!("expected Other");
    };
    assert_eq!(event.len(), 128);
}

#[test]
fn unknown_fields_are_ignored_everywhere() {
    let body = String::from_utf8(fixture("v2-s3-url.json")).unwrap();
    let body = body
        .replacen('{', r#"{"extra": {"deep": [1, {"x": null}]}, "#, 1)
        .replace(
            "\"status\": \"Success\"",
            "\"status\": \"Success\", \"createdAt\": 1, \"s3x\": []",
        );
    let event = job_event(parse_event(body.as_bytes()).unwrap());
    assert_seed_header(&event);
}

#[test]
fn v1_logs_beyond_the_cap_are_counted_not_kept() {
    let line = r#"{"time": "t", "type": "info", "message": "m"}"#;
    let total = courier_core::event::MAX_LOG_LINES + 25;
    let logs = vec![line; total].join(",");
    let body = String::from_utf8(fixture("v1-seed.json")).unwrap();
    let start = body.find("\"logs\": [").unwrap() + "\"logs\": [".len();
    let end = body.find("],\n    \"urls\"").unwrap();
    let body = format!("{}{}{}", &body[..start], logs, &body[end..]);
    let parsed = parse_event(body.as_bytes()).unwrap();
    assert!(!parsed.repaired);
    let Logs::Inline { lines, omitted } = job_event(parsed).job.logs else {
        panic!("expected inline logs");
    };
    assert_eq!(lines.len(), courier_core::event::MAX_LOG_LINES);
    assert_eq!(omitted, 25);
}

#[test]
fn log_time_may_be_a_number_and_fields_may_be_missing() {
    let body = String::from_utf8(fixture("v1-seed.json")).unwrap();
    let body = body.replace(
        r#""time": "2021-03-25T16:13:28.804Z","#,
        r#""time": 1616688808804, "extra": true,"#,
    );
    let body = body.replace(r#""type": "info","#, "");
    let Logs::Inline { lines, .. } = job_event(parse_event(body.as_bytes()).unwrap()).job.logs
    else {
        panic!("expected inline logs");
    };
    assert_eq!(lines[0].time.as_deref(), Some("1616688808804"));
    assert_eq!(lines[0].level, "");
}

#[test]
fn secret_url_redacts_userinfo_query_and_fragment() {
    let url = SecretUrl::new("https://u:p@h.example:8443/a/b?sig=1#frag".parse().unwrap());
    assert_eq!(url.to_string(), "https://h.example:8443/a/b?<redacted>");
    assert_eq!(
        format!("{url:?}"),
        "SecretUrl(https://h.example:8443/a/b?<redacted>)"
    );
    let plain = SecretUrl::new("https://h.example/a".parse().unwrap());
    assert_eq!(plain.to_string(), "https://h.example/a");
}

#[test]
fn a_null_s3_still_marks_the_newer_version() {
    let body = String::from_utf8(fixture("v2-seed.json")).unwrap();
    let start = body.find("\"s3\": {").unwrap();
    let body = format!("{}\"s3\": null\n  }}\n}}\n", &body[..start]);
    let body = body.replace("\"logsUrl\": \"\",", "");
    let event = job_event(parse_event(body.as_bytes()).unwrap());
    assert_eq!(event.payload_version, PayloadVersion::V2);
    assert_eq!(event.job.artifact, ArtifactSource::ResultEndpoint);
}

#[test]
fn only_the_first_of_several_urls_is_used() {
    let body = String::from_utf8(fixture("v1-seed.json")).unwrap();
    let body = body.replace(
        "result.zip\"\n",
        "result.zip\", \"https://other.supernova.io/second.zip\", 42\n",
    );
    let event = job_event(parse_event(body.as_bytes()).unwrap());
    let ArtifactSource::SignedUrl { url } = event.job.artifact else {
        panic!("expected a signed URL");
    };
    assert_eq!(url.host_str(), Some("example.supernova.io"));
}
