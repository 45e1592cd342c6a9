//! The templates a target renders: head branch, commit message, pull request title and
//! description.
//!
//! Templates are minijinja with strict undefined behaviour, so a typo such as
//! `{{ design_sytem.name }}` is a load-time error instead of an empty string in a
//! commit message. Every template is compiled and checked when the configuration is
//! loaded ([`Templates::add`]); rendering afterwards can only fail on what the event
//! brings (e.g. a hook name that makes an invalid branch name).
//!
//! The context a template sees:
//!
//! | variable | fields |
//! | --- | --- |
//! | `workspace`, `design_system`, `exporter`, `hook` | `id`, `name` |
//! | `version` | `id`, `name`, `version` |
//! | `job` | `id`, `status` (`success`, `failure`, ...) |
//! | `target` | `connection`, `repository`, `branch`, `relative_path` (none at the root) |
//! | `export` (not in `head_branch`) | `files`, `bytes`, `added`, `modified`, `deleted`, `directories`, `notes`, `tokens` |
//! | `export.tokens` | `summary`, `changed`, `added`, `removed`, `renamed`, `files`, `groups`, `unreadable`, `skipped`, `table` |

use std::collections::BTreeMap;
use std::fmt;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::config::Target;
use crate::event::{JobEvent, JobStatus};
use crate::tokens::{self, TokenDiff};

/// Which of a target's templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateField {
    HeadBranch,
    CommitMessage,
    PullRequestTitle,
    PullRequestDescription,
}

impl TemplateField {
    pub const ALL: [TemplateField; 4] = [
        TemplateField::HeadBranch,
        TemplateField::CommitMessage,
        TemplateField::PullRequestTitle,
        TemplateField::PullRequestDescription,
    ];

    /// The configuration key of this template.
    pub fn key(self) -> &'static str {
        match self {
            TemplateField::HeadBranch => "head_branch",
            TemplateField::CommitMessage => "commit_message",
            TemplateField::PullRequestTitle => "pull_request_title",
            TemplateField::PullRequestDescription => "pull_request_description",
        }
    }

    /// The branch is chosen when a job is routed, before anything is downloaded, so
    /// its template cannot see `export`.
    fn sees_export(self) -> bool {
        !matches!(self, TemplateField::HeadBranch)
    }
}

impl fmt::Display for TemplateField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// What a template may say about the export. `added`/`modified`/`deleted` are known
/// only once the new tree has been compared with the base; before that they are none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Files in the export.
    pub files: u64,
    /// Uncompressed bytes over all files.
    pub bytes: u64,
    pub added: Option<u64>,
    pub modified: Option<u64>,
    pub deleted: Option<u64>,
    /// The changes grouped by directory (relative to the repository root), sorted by
    /// name; empty until the new tree has been compared with the base.
    pub directories: Vec<DirectoryChanges>,
    /// The export's warnings and errors from the job log, as `level: message` lines.
    pub notes: Vec<String>,
    /// What changed in the design tokens; empty until the new tree has been compared
    /// with the base.
    pub tokens: TokenFacts,
}

/// What a template may say about the token changes (`export.tokens`): the diff's own
/// fields (`changed`, `added`, `removed`, `renamed`, `files`, `groups`, `unreadable`,
/// `skipped`) with a summary line and the fitted tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TokenFacts {
    /// "12 tokens changed, 3 added, 1 removed in 4 files"; empty when no token file
    /// changed.
    pub summary: String,
    /// The changes as Markdown tables with notes on files not read, cut at a row to fit
    /// the forge's description limit (filled in when the description is rendered).
    pub table: String,
    #[serde(flatten)]
    diff: TokenDiff,
}

impl TokenFacts {
    pub fn new(diff: TokenDiff) -> TokenFacts {
        TokenFacts {
            summary: tokens::render::summary(&diff),
            table: String::new(),
            diff,
        }
    }
}

/// Files added, modified and deleted directly in one directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DirectoryChanges {
    /// `.` for the repository root.
    pub name: String,
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
}

/// The static facts about a target a template may use (`target.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetFacts {
    pub connection: String,
    pub repository: String,
    pub branch: String,
    pub relative_path: Option<String>,
}

/// Why a template could not be compiled or rendered. `template` is the key path of the
/// template in the configuration, e.g. `hooks[0].targets[1].commit_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{template}: {message}")]
    Invalid { template: String, message: String },
    #[error("{template}: rendering failed: {message}")]
    Render { template: String, message: String },
    #[error("{template}: rendered branch name {branch:?} is not a valid git branch: {rule}")]
    InvalidBranch {
        template: String,
        branch: String,
        rule: BranchNameError,
    },
    #[error("no template registered under {0}")]
    Unknown(String),
}

/// Why a string is not usable as a git branch name (the rules of
/// `git check-ref-format --branch`, applied to the name under `refs/heads/`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BranchNameError {
    #[error("empty")]
    Empty,
    #[error("contains whitespace or a control character")]
    Whitespace,
    #[error("contains one of ~ ^ : ? * [ \\")]
    ForbiddenCharacter,
    #[error("contains `..`")]
    DoubleDot,
    #[error("contains `@{{`")]
    AtBrace,
    #[error("is `@`")]
    LoneAt,
    #[error("starts with `-`")]
    LeadingDash,
    #[error("starts or ends with `/`, or contains `//`")]
    Slash,
    #[error("ends with `.`")]
    TrailingDot,
    #[error("a component starts with `.`")]
    DotComponent,
    #[error("a component ends with `.lock`")]
    LockSuffix,
    #[error("longer than 255 bytes")]
    TooLong,
}

/// Checks `name` against git's ref-name rules for a branch (without `refs/heads/`).
pub fn check_branch_name(name: &str) -> Result<(), BranchNameError> {
    if name.is_empty() {
        return Err(BranchNameError::Empty);
    }
    // Provider APIs and some filesystems choke well before git does.
    if name.len() > 255 {
        return Err(BranchNameError::TooLong);
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(BranchNameError::Whitespace);
    }
    if name.contains(['~', '^', ':', '?', '*', '[', '\\']) {
        return Err(BranchNameError::ForbiddenCharacter);
    }
    if name.contains("..") {
        return Err(BranchNameError::DoubleDot);
    }
    if name.contains("@{") {
        return Err(BranchNameError::AtBrace);
    }
    if name == "@" {
        return Err(BranchNameError::LoneAt);
    }
    if name.starts_with('-') {
        return Err(BranchNameError::LeadingDash);
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(BranchNameError::Slash);
    }
    if name.ends_with('.') {
        return Err(BranchNameError::TrailingDot);
    }
    for component in name.split('/') {
        if component.starts_with('.') {
            return Err(BranchNameError::DotComponent);
        }
        if component.ends_with(".lock") {
            return Err(BranchNameError::LockSuffix);
        }
    }
    Ok(())
}

/// Top-level variables and, for each, its fields. Names outside this table (other
/// than minijinja's builtin functions) are load-time errors.
const CONTEXT_FIELDS: &[(&str, &[&str])] = &[
    ("workspace", &["id", "name"]),
    ("design_system", &["id", "name"]),
    ("version", &["id", "name", "version"]),
    ("exporter", &["id", "name"]),
    ("hook", &["id", "name"]),
    ("job", &["id", "status"]),
    (
        "target",
        &["connection", "repository", "branch", "relative_path"],
    ),
    (
        "export",
        &[
            "files",
            "bytes",
            "added",
            "modified",
            "deleted",
            "directories",
            "notes",
            "tokens",
        ],
    ),
];

/// Every template of every target, compiled once when the configuration is loaded.
#[derive(Clone)]
pub struct Templates {
    env: Environment<'static>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.env.templates().map(|(name, _)| name).collect();
        f.debug_struct("Templates")
            .field("templates", &names)
            .finish()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new()
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Commit messages and PR bodies are plain text / markdown, never HTML: escaping
        // would turn `&` in a design system name into `&amp;`.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        Templates { env }
    }

    /// Compiles `source` under `name` (the template's key path) and checks it: syntax,
    /// that every variable it uses exists in the context `field` sees, and that it
    /// renders against a sample event. A head branch template must also render to a
    /// valid branch name for the sample event.
    pub fn add(
        &mut self,
        name: &str,
        field: TemplateField,
        source: &str,
    ) -> Result<(), TemplateError> {
        let invalid = |message: String| TemplateError::Invalid {
            template: name.to_owned(),
            message,
        };
        self.env
            .add_template_owned(name.to_owned(), source.to_owned())
            .map_err(|e| invalid(describe(&e)))?;
        let result = self.check(name, field);
        if result.is_err() {
            self.env.remove_template(name);
        }
        result
    }

    fn check(&self, name: &str, field: TemplateField) -> Result<(), TemplateError> {
        let invalid = |message: String| TemplateError::Invalid {
            template: name.to_owned(),
            message,
        };
        let template = self
            .env
            .get_template(name)
            .map_err(|e| invalid(describe(&e)))?;
        let mut unknown: Vec<String> = template
            .undeclared_variables(true)
            .into_iter()
            .filter(|path| !self.is_known_variable(path, field))
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            let list = unknown
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut message = format!("unknown variable {list}");
            if !field.sees_export() && unknown.iter().any(|v| v.starts_with("export")) {
                message.push_str(" (`export` is not known yet when the branch is chosen)");
            }
            return Err(invalid(message));
        }
        let export = field.sees_export().then(ExportSummary::default);
        let rendered = template
            .render(context(&sample_event(), &sample_target(), export.as_ref()))
            .map_err(|e| invalid(describe(&e)))?;
        if field == TemplateField::HeadBranch {
            check_branch_name(&rendered).map_err(|rule| TemplateError::InvalidBranch {
                template: name.to_owned(),
                branch: rendered,
                rule,
            })?;
        }
        Ok(())
    }

    fn is_known_variable(&self, path: &str, field: TemplateField) -> bool {
        let mut parts = path.split('.');
        let top = parts.next().unwrap_or_default();
        if top == "export" && !field.sees_export() {
            return false;
        }
        match CONTEXT_FIELDS.iter().find(|(name, _)| *name == top) {
            // Anything after a known field is a method or attribute of a string or
            // number, which the sample render checks.
            Some((_, fields)) => parts.next().is_none_or(|f| fields.contains(&f)),
            // Builtin functions such as `range` or `namespace`.
            None => self.env.globals().any(|(name, _)| name == top),
        }
    }

    /// The branch a head-branch template renders for the load-time sample event, used
    /// to find targets that would push to the same branch.
    pub(crate) fn render_sample_branch(&self, name: &str, target: &TargetFacts) -> Option<String> {
        self.render_branch_named(name, &sample_event(), target).ok()
    }

    /// Whether a template's output can depend on the event (it uses a variable other
    /// than `target`). One that cannot renders the same for every job.
    pub(crate) fn uses_event(&self, name: &str) -> bool {
        let Ok(template) = self.env.get_template(name) else {
            return true;
        };
        template
            .undeclared_variables(false)
            .iter()
            .any(|v| v != "target" && !self.env.globals().any(|(global, _)| global == v))
    }

    /// Renders the template registered under `name` for `event`.
    pub fn render(
        &self,
        name: &str,
        event: &JobEvent,
        target: &TargetFacts,
        export: Option<&ExportSummary>,
    ) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|_| TemplateError::Unknown(name.to_owned()))?;
        template
            .render(context(event, target, export))
            .map_err(|e| TemplateError::Render {
                template: name.to_owned(),
                message: describe(&e),
            })
    }

    /// Renders a head-branch template and checks the result is a valid branch name.
    pub fn render_branch_named(
        &self,
        name: &str,
        event: &JobEvent,
        target: &TargetFacts,
    ) -> Result<String, TemplateError> {
        let branch = self.render(name, event, target, None)?;
        check_branch_name(&branch).map_err(|rule| TemplateError::InvalidBranch {
            template: name.to_owned(),
            branch: branch.clone(),
            rule,
        })?;
        Ok(branch)
    }
}

/// Rendering a target's templates. Names are the target's key path plus the field,
/// e.g. `hooks[0].targets[1].commit_message`, as registered at load time.
impl Templates {
    /// The target's head branch for `event`, checked as a git branch name.
    pub fn render_branch(
        &self,
        target: &Target,
        event: &JobEvent,
    ) -> Result<String, TemplateError> {
        self.render_branch_named(
            &target.template_name(TemplateField::HeadBranch),
            event,
            &target.facts(),
        )
    }

    /// The commit message; surrounding whitespace is trimmed and it must not be empty.
    pub fn render_commit_message(
        &self,
        target: &Target,
        event: &JobEvent,
        export: Option<&ExportSummary>,
    ) -> Result<String, TemplateError> {
        let name = target.template_name(TemplateField::CommitMessage);
        let text = self.render(&name, event, &target.facts(), export)?;
        non_empty(name, text.trim().to_owned())
    }

    /// The pull request title, on one line (runs of whitespace become one space).
    pub fn render_pull_request_title(
        &self,
        target: &Target,
        event: &JobEvent,
        export: Option<&ExportSummary>,
    ) -> Result<String, TemplateError> {
        let name = target.template_name(TemplateField::PullRequestTitle);
        let text = self.render(&name, event, &target.facts(), export)?;
        non_empty(name, text.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// The pull request description (may be empty), at most `limit` characters when
    /// its own text allows: the token tables (`export.tokens.table`) get what the rest
    /// leaves, cut at a row with "and N more", so the forge never cuts a table in half.
    pub fn render_pull_request_description(
        &self,
        target: &Target,
        event: &JobEvent,
        export: Option<&ExportSummary>,
        limit: usize,
    ) -> Result<String, TemplateError> {
        let name = target.template_name(TemplateField::PullRequestDescription);
        let facts = target.facts();
        let render = |export: Option<&ExportSummary>| {
            Ok::<_, TemplateError>(self.render(&name, event, &facts, export)?.trim().to_owned())
        };
        let Some(export) = export.filter(|e| !e.tokens.diff.is_empty()) else {
            return render(export);
        };
        // First without the tables, to learn what the rest of the text takes.
        let mut export = export.clone();
        export.tokens.table.clear();
        let rest = render(Some(&export))?.chars().count();
        let budget = limit.saturating_sub(rest);
        export.tokens.table = tokens::render::markdown(&export.tokens.diff, budget);
        render(Some(&export))
    }
}

fn non_empty(template: String, text: String) -> Result<String, TemplateError> {
    if text.is_empty() {
        return Err(TemplateError::Render {
            template,
            message: "rendered to an empty text".to_owned(),
        });
    }
    Ok(text)
}

/// minijinja's own `Display` appends `(in NAME:LINE)`, and our names are long key
/// paths that the caller already prints; say the line only.
fn describe(error: &minijinja::Error) -> String {
    let mut message = match error.detail() {
        Some(detail) => format!("{}: {}", error.kind(), detail),
        None => error.kind().to_string(),
    };
    if let Some(line) = error.line() {
        message.push_str(&format!(" (template line {line})"));
    }
    message
}

fn status_name(status: &JobStatus) -> &str {
    match status {
        JobStatus::Success => "success",
        JobStatus::Failure => "failure",
        JobStatus::Failed => "failed",
        JobStatus::Timeout => "timeout",
        JobStatus::InProgress => "in_progress",
        JobStatus::Unknown(other) => other,
    }
}

fn context(event: &JobEvent, target: &TargetFacts, export: Option<&ExportSummary>) -> Value {
    let mut ctx: BTreeMap<&str, Value> = BTreeMap::new();
    ctx.insert("workspace", Value::from(Serde(&event.workspace)));
    ctx.insert("design_system", Value::from(Serde(&event.design_system)));
    ctx.insert("version", Value::from(Serde(&event.version)));
    ctx.insert("exporter", Value::from(Serde(&event.exporter)));
    ctx.insert("hook", Value::from(Serde(&event.hook)));
    let mut job: BTreeMap<&str, Value> = BTreeMap::new();
    job.insert("id", Value::from(event.job.id.as_str()));
    job.insert("status", Value::from(status_name(&event.job.status)));
    ctx.insert("job", Value::from(job));
    ctx.insert("target", Value::from(Serde(target)));
    if let Some(export) = export {
        ctx.insert("export", Value::from(Serde(export)));
    }
    Value::from(ctx)
}

/// The event templates are checked against at load time. Its values are ordinary
/// (ids that are digits, names with spaces) so a branch template that only works for
/// unusual events is still caught.
fn sample_event() -> JobEvent {
    use crate::event::{ArtifactSource, Job, Logs, Named, PayloadVersion, VersionRef};
    let named = |id: &str, name: &str| Named {
        id: id.to_owned(),
        name: name.to_owned(),
    };
    JobEvent {
        payload_version: PayloadVersion::V2,
        workspace: named("1", "Example workspace"),
        design_system: named("2", "Example Design System"),
        version: VersionRef {
            id: "3".to_owned(),
            name: "A version name".to_owned(),
            version: "v0.1".to_owned(),
        },
        exporter: named("4", "Example exporter"),
        hook: named("5", "Example hook"),
        job: Job {
            id: "6".to_owned(),
            status: JobStatus::Success,
            logs: Logs::None,
            artifact: ArtifactSource::ResultEndpoint,
        },
    }
}

fn sample_target() -> TargetFacts {
    TargetFacts {
        connection: "example".to_owned(),
        repository: "acme/web".to_owned(),
        branch: "main".to_owned(),
        relative_path: Some("src/tokens".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_rules() {
        for ok in [
            "main",
            "courier/5",
            "feature/a-b_c.d",
            "v1.2",
            "a@b",
            "ünïcode",
        ] {
            assert_eq!(check_branch_name(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", BranchNameError::Empty),
            ("a b", BranchNameError::Whitespace),
            ("a\tb", BranchNameError::Whitespace),
            ("a~1", BranchNameError::ForbiddenCharacter),
            ("a^", BranchNameError::ForbiddenCharacter),
            ("a:b", BranchNameError::ForbiddenCharacter),
            ("a?", BranchNameError::ForbiddenCharacter),
            ("a*", BranchNameError::ForbiddenCharacter),
            ("a[b", BranchNameError::ForbiddenCharacter),
            ("a\\b", BranchNameError::ForbiddenCharacter),
            ("a..b", BranchNameError::DoubleDot),
            ("a@{1}", BranchNameError::AtBrace),
            ("@", BranchNameError::LoneAt),
            ("-x", BranchNameError::LeadingDash),
            ("a/", BranchNameError::Slash),
            ("/a", BranchNameError::Slash),
            ("a//b", BranchNameError::Slash),
            ("a.", BranchNameError::TrailingDot),
            ("a/.b", BranchNameError::DotComponent),
            (".a", BranchNameError::DotComponent),
            ("a.lock", BranchNameError::LockSuffix),
            ("a.lock/b", BranchNameError::LockSuffix),
        ];
        for (name, rule) in cases {
            assert_eq!(check_branch_name(name), Err(rule), "{name:?}");
        }
        assert_eq!(
            check_branch_name(&"a".repeat(256)),
            Err(BranchNameError::TooLong)
        );
    }

    #[test]
    fn renders_every_context_variable() {
        let mut t = Templates::new();
        let source = "{{ workspace.id }} {{ workspace.name }}|{{ design_system.name }}|\
            {{ version.id }} {{ version.name }} {{ version.version }}|{{ exporter.id }}|\
            {{ hook.id }} {{ hook.name }}|{{ job.id }} {{ job.status }}|\
            {{ target.repository }} {{ target.relative_path }}|{{ export.files }} {{ export.bytes }} {{ export.added }}";
        t.add("x", TemplateField::CommitMessage, source).unwrap();
        let export = ExportSummary {
            files: 7,
            bytes: 1024,
            added: Some(2),
            ..ExportSummary::default()
        };
        let out = t
            .render("x", &sample_event(), &sample_target(), Some(&export))
            .unwrap();
        assert_eq!(
            out,
            "1 Example workspace|Example Design System|3 A version name v0.1|4|\
             5 Example hook|6 success|acme/web src/tokens|7 1024 2"
        );
    }

    #[test]
    fn html_is_not_escaped() {
        let mut t = Templates::new();
        t.add("x", TemplateField::PullRequestTitle, "{{ hook.name }}")
            .unwrap();
        let mut event = sample_event();
        event.hook.name = "Tokens & <icons>".to_owned();
        let out = t.render("x", &event, &sample_target(), None).unwrap();
        assert_eq!(out, "Tokens & <icons>");
    }

    #[test]
    fn unknown_variables_and_fields_are_load_errors() {
        let mut t = Templates::new();
        let err = t
            .add(
                "t",
                TemplateField::CommitMessage,
                "{{ desing_system.name }}",
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "t: unknown variable `desing_system.name`");
        let err = t
            .add("t", TemplateField::CommitMessage, "{{ hook.nmae }}")
            .unwrap_err();
        assert_eq!(err.to_string(), "t: unknown variable `hook.nmae`");
        // Used only in a branch the sample event does not take: still caught.
        let err = t
            .add(
                "t",
                TemplateField::CommitMessage,
                "{% if job.status == 'x' %}{{ jbo.id }}{% endif %}",
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "t: unknown variable `jbo.id`");
        // A failed add leaves nothing behind to render.
        assert_eq!(
            t.render("t", &sample_event(), &sample_target(), None),
            Err(TemplateError::Unknown("t".to_owned()))
        );
    }

    #[test]
    fn builtins_and_string_methods_are_allowed() {
        let mut t = Templates::new();
        t.add(
            "t",
            TemplateField::CommitMessage,
            "{% for i in range(2) %}{{ i }}{% endfor %}{{ hook.name | upper }}{{ hook.name | lower }}",
        )
        .unwrap();
        let out = t
            .render("t", &sample_event(), &sample_target(), None)
            .unwrap();
        assert_eq!(out, "01EXAMPLE HOOKexample hook");
    }

    #[test]
    fn export_is_not_visible_to_the_branch() {
        let mut t = Templates::new();
        let err = t
            .add("b", TemplateField::HeadBranch, "courier/{{ export.files }}")
            .unwrap_err();
        assert!(
            err.to_string().contains("not known yet when the branch"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_name_the_template() {
        let mut t = Templates::new();
        let err = t
            .add(
                "hooks[0].targets[0].commit_message",
                TemplateField::CommitMessage,
                "{{ hook.id ",
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("hooks[0].targets[0].commit_message: syntax error"),
            "{text}"
        );
    }

    #[test]
    fn strict_undefined_fails_render_without_export() {
        let mut t = Templates::new();
        t.add(
            "m",
            TemplateField::CommitMessage,
            "{{ export.files }} files",
        )
        .unwrap();
        let err = t
            .render("m", &sample_event(), &sample_target(), None)
            .unwrap_err();
        assert!(matches!(err, TemplateError::Render { .. }), "{err}");
        // `is defined` is how a template copes with a missing export.
        t.add(
            "n",
            TemplateField::CommitMessage,
            "{% if export is defined %}{{ export.files }}{% else %}none{% endif %}",
        )
        .unwrap();
        assert_eq!(
            t.render("n", &sample_event(), &sample_target(), None)
                .unwrap(),
            "none"
        );
    }

    #[test]
    fn branch_checked_at_load_and_at_render() {
        let mut t = Templates::new();
        // The sample hook name has a space.
        let err = t
            .add("b", TemplateField::HeadBranch, "courier/{{ hook.name }}")
            .unwrap_err();
        assert!(
            matches!(&err, TemplateError::InvalidBranch { branch, rule: BranchNameError::Whitespace, .. } if branch == "courier/Example hook"),
            "{err}"
        );
        t.add("b", TemplateField::HeadBranch, "courier/{{ hook.id }}")
            .unwrap();
        let mut event = sample_event();
        event.hook.id = "a..b".to_owned();
        let err = t
            .render_branch_named("b", &event, &sample_target())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "b: rendered branch name \"courier/a..b\" is not a valid git branch: contains `..`"
        );
    }
}
