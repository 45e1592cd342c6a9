//! Parsing a webhook body into an [`Event`].
//!
//! Two steps, so that every error names the JSON path it is about:
//!
//! 1. the body is deserialised with `serde_path_to_error` into private raw structs that
//!    mirror the platform's JSON (unknown keys ignored, known keys checked for type);
//! 2. the raw structs are converted into the normalised types, which checks what types
//!    cannot say (non-empty ids, URLs that parse and are `http`/`https`, lengths).
//!
//! Decisions, each tested in `tests/event_malformed.rs`:
//!
//! * **Trailing commas.** The platform's own documentation shows a trailing comma in
//!   `job.logs` (first version). When, and only when, strict parsing fails with a syntax
//!   error and the body has commas directly before `]` or `}` outside strings, those commas
//!   are removed and the body is parsed again; [`ParsedEvent::repaired`] records that it
//!   happened. (serde_json reports such a comma as "trailing comma" or, inside a skipped
//!   value, as "expected value", so the trigger is the comma, not the message.) Any other
//!   malformed JSON is an error; if the repaired body still fails, that error is returned
//!   with "(after removing trailing commas)" appended.
//! * **Objects are objects.** serde would accept a JSON array where a struct is expected
//!   (`"workspace": ["1", "x"]`); here every object position must be a JSON object, and
//!   the body must be a JSON object.
//! * **Duplicate keys.** A known key that appears twice in one object is an error (two
//!   parsers reading different values from one body is how smuggling starts). Unknown keys
//!   are ignored, duplicates included.
//! * **Ids** may be JSON strings or integers; integers become their decimal string. An id
//!   must be non-empty, at most [`MAX_ID_CHARS`] characters and free of control characters.
//! * **Which version.** A `job` with an `s3` or `logsUrl` key (even `null`) is the newer
//!   version; otherwise it is the first version (also when it has neither `urls` nor `logs`).
//! * **URLs** must parse as absolute `http` or `https` URLs without userinfo; anything else
//!   (`javascript:`, `file:`, relative) is an error naming the field. `""` and `null` mean
//!   "no URL". Only `urls[0]` is used and checked; further entries are ignored.
//! * **Status** never fails: unknown strings become [`JobStatus::Unknown`].
//! * **Size.** serde_json refuses nesting deeper than 128 inside the fields Courier reads and
//!   skips unknown values without recursion; `job.logs` keeps its first [`MAX_LOG_LINES`]
//!   lines and skips the rest without holding them. Bounding the body itself is the
//!   intake's job.
//! * **Error messages never quote values** from the body (a mistyped field may hold a
//!   signed URL): `job.urls: expected an array, found a string`.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use url::Url;

use super::{
    ArtifactSource, Event, Job, JobEvent, JobStatus, LogLine, Logs, Named, PayloadVersion,
    SecretUrl, VersionRef,
};

/// The event name this module parses; every other name is [`Event::Other`].
const JOB_UPDATED: &str = "job:updated";
/// Longest id accepted (workspace, design system, version, exporter, hook, job).
pub const MAX_ID_CHARS: usize = 256;
/// Longest display name accepted.
pub const MAX_NAME_CHARS: usize = 1024;
/// Longest status string accepted (known or not).
pub const MAX_STATUS_CHARS: usize = 64;
/// Inline log lines kept; the rest are counted in [`Logs::Inline::omitted`].
pub const MAX_LOG_LINES: usize = 10_000;
/// Longest event name kept in [`Event::Other`]; longer names are cut (on a char boundary).
const MAX_OTHER_EVENT_CHARS: usize = 128;

/// A successfully parsed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    pub event: Event,
    /// The body was only valid after removing trailing commas (see the module docs).
    /// Worth recording: it means the sender's JSON is broken in a way Courier forgave.
    pub repaired: bool,
}

/// What kind of fault an [`EventError`] is; all of them are the sender's fault (HTTP 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventErrorKind {
    /// The body is empty (or only whitespace).
    Empty,
    /// The body is not UTF-8.
    NotUtf8,
    /// The body is not JSON (or not JSON after the trailing-comma repair).
    Syntax,
    /// A required field is missing, or a field has the wrong JSON type.
    Schema,
    /// The JSON has the right shape but a value is unacceptable (empty id, bad URL, ...).
    Invalid,
}

/// Why a body was refused. `Display` is `path: message` (`job.status: expected a string,
/// found an integer`), or just the message for faults of the whole body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EventError {
    kind: EventErrorKind,
    path: String,
    message: String,
    line: Option<usize>,
    column: Option<usize>,
}

impl EventError {
    fn new(kind: EventErrorKind, path: impl Into<String>, message: impl Into<String>) -> Self {
        EventError {
            kind,
            path: path.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }

    pub fn kind(&self) -> EventErrorKind {
        self.kind
    }

    /// The JSON path the error is about (`job.urls[0]`), empty for the whole body.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The message without the path.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 1-based line of the fault in the body, when the JSON parser knows it.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// 1-based column of the fault in the body, when the JSON parser knows it.
    pub fn column(&self) -> Option<usize> {
        self.column
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

/// Parses a webhook body. See the module documentation for every leniency and refusal.
pub fn parse_event(body: &[u8]) -> Result<ParsedEvent, EventError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(EventError::new(EventErrorKind::Empty, "", "empty body"));
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(EventError::new(
            EventErrorKind::NotUtf8,
            "",
            format!(
                "body is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        ));
    }
    match parse_strict(body) {
        Ok(event) => Ok(ParsedEvent {
            event,
            repaired: false,
        }),
        Err(first) if first.kind == EventErrorKind::Syntax => match remove_trailing_commas(body) {
            Cow::Owned(repaired) => {
                let event = parse_strict(&repaired).map_err(|mut e| {
                    e.message.push_str(" (after removing trailing commas)");
                    e
                })?;
                Ok(ParsedEvent {
                    event,
                    repaired: true,
                })
            }
            Cow::Borrowed(_) => Err(first),
        },
        Err(e) => Err(e),
    }
}

fn parse_strict(body: &[u8]) -> Result<Event, EventError> {
    let Obj(envelope): Obj<Envelope> = deserialize(body)?;
    if envelope.event.0 != JOB_UPDATED {
        let mut name = envelope.event.0;
        if let Some((cut, _)) = name.char_indices().nth(MAX_OTHER_EVENT_CHARS) {
            name.truncate(cut);
        }
        return Ok(Event::Other { event: name });
    }
    let Obj(raw): Obj<RawJobUpdated> = deserialize(body)?;
    Ok(Event::JobUpdated(Box::new(raw.normalise()?)))
}

fn deserialize<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, EventError> {
    // Tracking the path costs on every value; it is only needed to report an error, so
    // a failed parse runs again with it (the same input fails at the same place).
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| from_json_error(json_path(e.path()), e.inner()))?;
    de.end().map_err(|e| from_json_error(String::new(), &e))?;
    Ok(value)
}

/// `job.logs[0].message`; empty for the whole body. serde_path_to_error marks positions it
/// could not name (a key that failed to parse) as `?`: the path stops before them.
fn json_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => push_key(&mut out, key),
            Segment::Enum { variant } => push_key(&mut out, variant),
            Segment::Unknown => break,
        }
    }
    out
}

/// Turns a serde_json error into ours: the position moves into fields, the value serde
/// quotes in type errors is dropped, and "missing field `x`" becomes path `parent.x`.
fn from_json_error(mut path: String, e: &serde_json::Error) -> EventError {
    let kind = match e.classify() {
        serde_json::error::Category::Data => EventErrorKind::Schema,
        _ => EventErrorKind::Syntax,
    };
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let raw = full.strip_suffix(&suffix).unwrap_or(&full);

    let message = if let Some(field) = backticked(raw, "missing field ") {
        push_key(&mut path, field);
        "missing".to_owned()
    } else if let Some(field) = backticked(raw, "duplicate field ") {
        push_key(&mut path, field);
        "duplicate key".to_owned()
    } else if let Some(rest) = raw
        .strip_prefix("invalid type: ")
        .or_else(|| raw.strip_prefix("invalid value: "))
    {
        match rest.rsplit_once(", expected ") {
            Some((found, expected)) => {
                format!(
                    "expected {}, found {}",
                    plain_expected(expected),
                    plain_found(found)
                )
            }
            None => "unexpected value".to_owned(),
        }
    } else {
        raw.to_owned()
    };
    let located = e.line() != 0;
    EventError {
        kind,
        path,
        message,
        line: located.then(|| e.line()),
        column: located.then(|| e.column()),
    }
}

fn backticked<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message
        .strip_prefix(prefix)?
        .strip_prefix('`')?
        .strip_suffix('`')
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// serde's names for what it found, without the value it quotes.
fn plain_found(found: &str) -> &'static str {
    const KINDS: [(&str, &str); 9] = [
        ("string", "a string"),
        ("integer", "an integer"),
        ("floating point", "a number"),
        ("boolean", "a boolean"),
        ("null", "null"),
        ("unit", "null"),
        ("sequence", "an array"),
        ("map", "an object"),
        ("char", "a string"),
    ];
    KINDS
        .into_iter()
        .find(|(prefix, _)| found.starts_with(prefix))
        .map(|(_, name)| name)
        .unwrap_or("another type")
}

/// serde's names for what it expected, in JSON terms.
fn plain_expected(expected: &str) -> &str {
    if expected.starts_with("struct ") || expected == "a map" {
        "an object"
    } else if expected == "a sequence" {
        "an array"
    } else if expected == "a borrowed string" {
        "a string"
    } else {
        expected
    }
}

/// Removes every `,` that is followed (after JSON whitespace) by `]` or `}`, outside
/// strings. Borrowed when there was nothing to remove.
fn remove_trailing_commas(body: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in body.iter().enumerate() {
        let mut keep = true;
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            let next = body[i + 1..]
                .iter()
                .find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
            keep = !matches!(next, Some(b']' | b'}'));
        }
        match (&mut out, keep) {
            (Some(out), true) => out.push(b),
            (None, false) => out = Some(body[..i].to_vec()),
            _ => {}
        }
    }
    match out {
        Some(out) => Cow::Owned(out),
        None => Cow::Borrowed(body),
    }
}

// ---------------------------------------------------------------------------------------
// Raw structs: the platform's JSON as it is.

#[derive(Deserialize)]
struct Envelope {
    event: Text,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJobUpdated {
    workspace: Obj<RawNamed>,
    design_system: Obj<RawNamed>,
    design_system_version: Obj<RawVersion>,
    exporter: Obj<RawNamed>,
    hook: Obj<RawNamed>,
    job: Obj<RawJob>,
}

#[derive(Deserialize)]
struct RawNamed {
    id: Id,
    #[serde(default)]
    name: Option<Text>,
}

#[derive(Deserialize)]
struct RawVersion {
    id: Id,
    #[serde(default)]
    name: Option<Text>,
    #[serde(default)]
    version: Option<Text>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJob {
    id: Id,
    status: Text,
    #[serde(default)]
    logs: Option<Bounded<Obj<RawLogLine>, MAX_LOG_LINES>>,
    #[serde(default)]
    urls: Option<Bounded<Option<Text>, 1>>,
    /// Outer `Some` when the key is present (even as `null`): presence decides the version.
    #[serde(default, deserialize_with = "present")]
    logs_url: Option<Option<Text>>,
    #[serde(default, deserialize_with = "present")]
    s3: Option<Option<Obj<RawS3>>>,
}

/// Tells a present `null` (`Some(None)`) from a missing key (`None`, via `default`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: de::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct RawS3 {
    #[serde(default)]
    url: Option<Text>,
}

#[derive(Deserialize)]
struct RawLogLine {
    #[serde(default)]
    time: Option<Id>,
    #[serde(default, rename = "type")]
    level: Option<Text>,
    #[serde(default)]
    message: Option<Text>,
}

/// A JSON string (and only a string: `expected a string`).
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// An id: a JSON string, or an integer normalised to its decimal string.
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Id, E> {
                Ok(Id(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value that must be a JSON object. serde's derived structs also accept arrays
/// (fields by position); a webhook payload has no business doing that.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A JSON array of which the first `N` items are kept; the rest are checked for JSON
/// syntax only, counted and dropped without being held in memory.
struct Bounded<T, const N: usize> {
    items: Vec<T>,
    omitted: u64,
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = Bounded<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N).min(64));
                while items.len() < N {
                    match seq.next_element()? {
                        Some(item) => items.push(item),
                        None => return Ok(Bounded { items, omitted: 0 }),
                    }
                }
                let mut omitted = 0u64;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    omitted += 1;
                }
                Ok(Bounded { items, omitted })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

// ---------------------------------------------------------------------------------------
// Raw to normalised.

fn invalid(path: impl Into<String>, message: impl Into<String>) -> EventError {
    EventError::new(EventErrorKind::Invalid, path, message)
}

/// `parent.field`: built only for an error, as this runs for every webhook.
fn field_path(parent: &str, field: &str) -> String {
    format!("{parent}.{field}")
}

fn check_id(parent: &str, field: &str, Id(id): Id) -> Result<String, EventError> {
    let fail = |message: String| Err(invalid(field_path(parent, field), message));
    if id.is_empty() {
        return fail("must not be empty".to_owned());
    }
    if id.chars().count() > MAX_ID_CHARS {
        return fail(format!("longer than {MAX_ID_CHARS} characters"));
    }
    if id.chars().any(char::is_control) {
        return fail("contains a control character".to_owned());
    }
    Ok(id)
}

fn check_name(parent: &str, field: &str, name: Option<Text>) -> Result<String, EventError> {
    let name = name.map(|Text(s)| s).unwrap_or_default();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            field_path(parent, field),
            format!("longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name)
}

fn named(path: &str, Obj(raw): Obj<RawNamed>) -> Result<Named, EventError> {
    Ok(Named {
        id: check_id(path, "id", raw.id)?,
        name: check_name(path, "name", raw.name)?,
    })
}

/// `None` for a missing, `null` or empty URL; an error for anything but an absolute
/// `http`/`https` URL without userinfo.
fn optional_url(path: &str, raw: Option<Text>) -> Result<Option<SecretUrl>, EventError> {
    let Some(Text(raw)) = raw else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Ok(None);
    }
    // Url::parse's error messages do not quote the input, so they are safe to pass on.
    let url = Url::parse(&raw).map_err(|e| invalid(path, format!("not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            path,
            format!(
                "URL scheme `{}` is not allowed (only http and https)",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(path, "URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(path, "URL must not contain credentials"));
    }
    Ok(Some(SecretUrl::new(url)))
}

impl RawJobUpdated {
    fn normalise(self) -> Result<JobEvent, EventError> {
        let Obj(version) = self.design_system_version;
        let version = VersionRef {
            id: check_id("designSystemVersion", "id", version.id)?,
            name: check_name("designSystemVersion", "name", version.name)?,
            version: check_name("designSystemVersion", "version", version.version)?,
        };
        let Obj(job) = self.job;
        let Text(status) = job.status;
        if status.chars().count() > MAX_STATUS_CHARS {
            return Err(invalid(
                "job.status",
                format!("longer than {MAX_STATUS_CHARS} characters"),
            ));
        }
        let status = JobStatus::from_platform(&status);
        let job_id = check_id("job", "id", job.id)?;

        let newer = job.s3.is_some() || job.logs_url.is_some();
        let (payload_version, logs, artifact) = if newer {
            let logs = match optional_url("job.logsUrl", job.logs_url.flatten())? {
                Some(url) => Logs::Url { url },
                None => Logs::None,
            };
            let s3_url = job.s3.flatten().and_then(|Obj(s3)| s3.url);
            let artifact = match optional_url("job.s3.url", s3_url)? {
                Some(url) => ArtifactSource::PlatformUrl { url },
                None => ArtifactSource::ResultEndpoint,
            };
            (PayloadVersion::V2, logs, artifact)
        } else {
            let logs = match job.logs {
                Some(bounded) => Logs::Inline {
                    lines: log_lines(bounded.items),
                    omitted: bounded.omitted,
                },
                None => Logs::None,
            };
            let first = job
                .urls
                .and_then(|urls| urls.items.into_iter().next().flatten());
            let artifact = match optional_url("job.urls[0]", first)? {
                Some(url) => ArtifactSource::SignedUrl { url },
                None => ArtifactSource::None,
            };
            (PayloadVersion::V1, logs, artifact)
        };
        // URLs are checked above whatever the status; a job that did not succeed has
        // nothing to fetch.
        let artifact = if status.is_success() {
            artifact
        } else {
            ArtifactSource::None
        };

        Ok(JobEvent {
            payload_version,
            workspace: named("workspace", self.workspace)?,
            design_system: named("designSystem", self.design_system)?,
            version,
            exporter: named("exporter", self.exporter)?,
            hook: named("hook", self.hook)?,
            job: Job {
                id: job_id,
                status,
                logs,
                artifact,
            },
        })
    }
}

/// A job log fetched from `job.logsUrl`, when it is JSON: an array of log lines as in
/// `job.logs[]`, or an object whose `logs` is such an array. `None` when it is neither
/// (the caller then treats the body as plain text). Keeps [`MAX_LOG_LINES`] lines.
pub(crate) fn parse_log_lines(body: &[u8]) -> Option<(Vec<LogLine>, u64)> {
    #[derive(Deserialize)]
    struct Wrapped {
        logs: Bounded<Obj<RawLogLine>, MAX_LOG_LINES>,
    }
    let bounded = serde_json::from_slice::<Bounded<Obj<RawLogLine>, MAX_LOG_LINES>>(body)
        .or_else(|_| serde_json::from_slice::<Obj<Wrapped>>(body).map(|Obj(w)| w.logs))
        .ok()?;
    Some((log_lines(bounded.items), bounded.omitted))
}

fn log_lines(raw: Vec<Obj<RawLogLine>>) -> Vec<LogLine> {
    raw.into_iter()
        .map(|Obj(line)| LogLine {
            time: line.time.map(|Id(t)| t),
            level: line.level.map(|Text(l)| l).unwrap_or_default(),
            message: line.message.map(|Text(m)| m).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_commas_are_removed_outside_strings_only() {
        let body = br#"{"a": [1, 2 ,  ], "b": "x,]", "c": {"d": 1,
        }}"#;
        let repaired = remove_trailing_commas(body);
        assert_eq!(
            std::str::from_utf8(&repaired).unwrap(),
            "{\"a\": [1, 2   ], \"b\": \"x,]\", \"c\": {\"d\": 1\n        }}"
        );
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        let body = br#"["a\",]", 1,]"#;
        assert_eq!(&*remove_trailing_commas(body), br#"["a\",]", 1]"#);
    }

    #[test]
    fn nothing_to_remove_borrows() {
        assert!(matches!(
            remove_trailing_commas(b"[1, 2]"),
            Cow::Borrowed(_)
        ));
    }
}
