//! Which targets a job goes to.
//!
//! A hook entry matches a job when every key of its `match` equals the event's value
//! (ids and names compared exactly, case included); `match: any` matches every job.
//! An empty `match` mapping is refused when the configuration is loaded, so that
//! "match everything" is always written on purpose. A job is routed to every entry it
//! matches, in file order, and so may fan out to several targets. An entry with no
//! targets ("only build") makes the job routed with nothing to deliver.

use std::fmt;

use crate::config::{Config, HookEntry, Match, MatchKeys, Target};
use crate::event::JobEvent;
use crate::template::TemplateError;

/// The outcome of routing one job.
#[derive(Debug)]
pub enum Routing<'c> {
    /// At least one hook entry matched.
    Routed(Route<'c>),
    /// No hook entry matched; `reason` says what the job had.
    Unrouted { reason: String },
}

/// The matched entries and what to deliver.
#[derive(Debug)]
pub struct Route<'c> {
    /// Indices into `Config::hooks` of every matching entry, in file order.
    pub hook_indices: Vec<usize>,
    /// Targets to deliver to, in file order.
    pub targets: Vec<RoutedTarget<'c>>,
    /// Targets that matched but cannot be delivered to; each is a failed delivery to
    /// record, not a reason to drop the others.
    pub failures: Vec<RouteFailure<'c>>,
}

impl Route<'_> {
    /// Every matching entry has `targets: []`: record the job, deliver nothing.
    pub fn is_build_only(&self) -> bool {
        self.targets.is_empty() && self.failures.is_empty()
    }
}

#[derive(Debug)]
pub struct RoutedTarget<'c> {
    pub hook_index: usize,
    pub target_index: usize,
    pub target: &'c Target,
    /// The rendered, validated head branch.
    pub head_branch: String,
}

#[derive(Debug)]
pub struct RouteFailure<'c> {
    pub hook_index: usize,
    pub target_index: usize,
    pub target: &'c Target,
    pub error: RouteError,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The head branch template failed for this event (e.g. it made an invalid name).
    #[error(transparent)]
    HeadBranch(#[from] TemplateError),
    /// An earlier routed target (from another hook entry) already pushes to this
    /// repository and branch for this job; delivering both would overwrite each other.
    #[error(
        "{target}: head branch `{head_branch}` of {repository} is already used by {other} for this job; give one of them a different `head_branch`"
    )]
    BranchTaken {
        target: String,
        other: String,
        repository: String,
        head_branch: String,
    },
}

/// Routes `event` through `config.hooks`.
pub fn route<'c>(config: &'c Config, event: &JobEvent) -> Routing<'c> {
    let hook_indices: Vec<usize> = config
        .hooks
        .iter()
        .enumerate()
        .filter(|(_, hook)| matches(hook, event))
        .map(|(i, _)| i)
        .collect();
    if hook_indices.is_empty() {
        return Routing::Unrouted {
            reason: unrouted_reason(config, event),
        };
    }
    let mut targets: Vec<RoutedTarget<'c>> = Vec::new();
    let mut failures = Vec::new();
    for &hook_index in &hook_indices {
        for (target_index, target) in config.hooks[hook_index].targets.iter().enumerate() {
            let failure = |error| RouteFailure {
                hook_index,
                target_index,
                target,
                error,
            };
            let head_branch = match config.templates.render_branch(target, event) {
                Ok(branch) => branch,
                Err(e) => {
                    failures.push(failure(RouteError::HeadBranch(e)));
                    continue;
                }
            };
            let taken = targets.iter().find(|other| {
                other.target.clone_url == target.clone_url && other.head_branch == head_branch
            });
            if let Some(other) = taken {
                failures.push(failure(RouteError::BranchTaken {
                    target: target.key.clone(),
                    other: other.target.key.clone(),
                    repository: target.repository.clone(),
                    head_branch,
                }));
                continue;
            }
            targets.push(RoutedTarget {
                hook_index,
                target_index,
                target,
                head_branch,
            });
        }
    }
    Routing::Routed(Route {
        hook_indices,
        targets,
        failures,
    })
}

/// Whether `hook`'s `match` accepts `event`.
pub fn matches(hook: &HookEntry, event: &JobEvent) -> bool {
    match &hook.matcher {
        Match::Any => true,
        Match::Keys(keys) => keys_match(keys, event),
    }
}

fn keys_match(keys: &MatchKeys, event: &JobEvent) -> bool {
    let pairs: [(&Option<String>, &str); 11] = [
        (&keys.workspace_id, &event.workspace.id),
        (&keys.workspace_name, &event.workspace.name),
        (&keys.hook_id, &event.hook.id),
        (&keys.hook_name, &event.hook.name),
        (&keys.exporter_id, &event.exporter.id),
        (&keys.exporter_name, &event.exporter.name),
        (&keys.design_system_id, &event.design_system.id),
        (&keys.design_system_name, &event.design_system.name),
        (&keys.version_id, &event.version.id),
        (&keys.version_name, &event.version.name),
        (&keys.version, &event.version.version),
    ];
    pairs
        .iter()
        .all(|(want, have)| want.as_deref().is_none_or(|w| w == *have))
}

/// Names and ids are from the platform and may be long; cap what goes in a reason.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 80;
        match self.0.char_indices().nth(MAX) {
            Some((cut, _)) => write!(f, "{:?}…", &self.0[..cut]),
            None => write!(f, "{:?}", self.0),
        }
    }
}

fn unrouted_reason(config: &Config, event: &JobEvent) -> String {
    let count = config.hooks.len();
    format!(
        "no hook entry matched (checked {count} entr{}): the job had hook {} {}, exporter {} {}, design system {} {}, version {} {} {}, workspace {} {}",
        if count == 1 { "y" } else { "ies" },
        Quoted(&event.hook.id),
        Quoted(&event.hook.name),
        Quoted(&event.exporter.id),
        Quoted(&event.exporter.name),
        Quoted(&event.design_system.id),
        Quoted(&event.design_system.name),
        Quoted(&event.version.id),
        Quoted(&event.version.name),
        Quoted(&event.version.version),
        Quoted(&event.workspace.id),
        Quoted(&event.workspace.name),
    )
}
