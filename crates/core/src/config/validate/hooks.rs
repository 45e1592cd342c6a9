//! `hooks`: each entry's `match` and targets, and the checks across targets.

use std::collections::{BTreeMap, HashMap};

use super::Validator;
use crate::config::raw::{IdString, RawHook, RawMatch};
use crate::config::{Connection, HookEntry, Match, MatchKeys};
use crate::template::TemplateField;

/// What the duplicate check needs to know about one target.
struct BranchClaim {
    key: String,
    hook_index: usize,
    clone_url: String,
    sample_branch: String,
    uses_event: bool,
}

/// What the duplicate id check needs to know about one target.
struct IdClaim {
    id: String,
    key: String,
    /// Written as `id:` (reported there) rather than derived (reported at the target).
    explicit: bool,
}

impl Validator<'_> {
    pub(super) fn hooks(
        &mut self,
        raw: Vec<RawHook>,
        connections: &BTreeMap<String, Connection>,
    ) -> Vec<HookEntry> {
        if raw.is_empty() {
            self.problem(
                "hooks",
                "at least one hook entry is required (`match: any` with `targets: []` records every job without delivering)",
            );
        }
        let mut hooks = Vec::new();
        let mut claims = Vec::new();
        let mut ids = Vec::new();
        for (h, raw_hook) in raw.into_iter().enumerate() {
            let path = format!("hooks[{h}]");
            let name = raw_hook
                .name
                .as_deref()
                .and_then(|n| self.non_empty(&format!("{path}.name"), n));
            let matcher = self.matcher(&format!("{path}.match"), raw_hook.matcher);
            let mut targets = Vec::new();
            for (t, raw_target) in raw_hook.targets.iter().enumerate() {
                if let Some(target) = self.target(h, t, raw_target, connections) {
                    let name = target.template_name(TemplateField::HeadBranch);
                    if let Some(sample_branch) =
                        self.templates.render_sample_branch(&name, &target.facts())
                    {
                        claims.push(BranchClaim {
                            key: target.key.clone(),
                            hook_index: h,
                            clone_url: target.clone_url.to_string(),
                            sample_branch,
                            uses_event: self.templates.uses_event(&name),
                        });
                    }
                    ids.push(IdClaim {
                        id: target.id.clone(),
                        key: target.key.clone(),
                        explicit: raw_target.id.is_some(),
                    });
                    targets.push(target);
                }
            }
            hooks.push(HookEntry {
                name,
                matcher,
                targets,
            });
        }
        self.duplicate_branches(&claims);
        self.duplicate_ids(&ids);
        hooks
    }

    /// An id names one target wherever it is stored; two targets sharing one would let a
    /// queued delivery go to either.
    fn duplicate_ids(&mut self, ids: &[IdClaim]) {
        let mut first: HashMap<&str, &str> = HashMap::new();
        for claim in ids {
            let Some(other) = first.get(claim.id.as_str()).copied() else {
                first.insert(&claim.id, &claim.key);
                continue;
            };
            if claim.explicit {
                self.problem(
                    format!("{}.id", claim.key),
                    format!(
                        "`{}` is also the id of {other}; give one of them another explicit `id:`",
                        claim.id
                    ),
                );
            } else {
                self.problem(
                    &claim.key,
                    format!(
                        "has the same id as {other}: `{}`, derived from the connection, repository, branch and relative path; give one of them an explicit `id:`",
                        claim.id
                    ),
                );
            }
        }
    }

    /// Two targets pushing to one branch of one repository would overwrite each other.
    /// Within a hook entry every target sees the same job, so equal sample branches
    /// mean equal branches for every job. Across entries that holds only when the
    /// template does not depend on the event; other overlaps are found at routing time.
    fn duplicate_branches(&mut self, claims: &[BranchClaim]) {
        for (i, b) in claims.iter().enumerate() {
            let Some(a) = claims[..i].iter().find(|a| {
                a.clone_url == b.clone_url
                    && a.sample_branch == b.sample_branch
                    && (a.hook_index == b.hook_index || (!a.uses_event && !b.uses_event))
            }) else {
                continue;
            };
            let message = if a.hook_index == b.hook_index {
                format!(
                    "duplicate of {}: same repository and head branch (`{}` for the sample event); give one of them a different `relative_path`, `branch` or `head_branch`",
                    a.key, b.sample_branch
                )
            } else {
                format!(
                    "pushes to the same repository and head branch `{}` as {} in another hook entry; give one of them a different `head_branch`",
                    b.sample_branch, a.key
                )
            };
            self.problem(format!("{}.head_branch", b.key), message);
        }
    }

    fn matcher(&mut self, path: &str, raw: RawMatch) -> Match {
        let keys = match raw {
            RawMatch::Any => return Match::Any,
            RawMatch::Keys(keys) => keys,
        };
        let id = |v: &mut Self, key: &str, raw: &Option<IdString>| -> Option<String> {
            raw.as_ref().and_then(|r| v.id(&format!("{path}.{key}"), r))
        };
        let mut out = MatchKeys {
            workspace_id: id(self, "workspace_id", &keys.workspace_id),
            hook_id: id(self, "hook_id", &keys.hook_id),
            exporter_id: id(self, "exporter_id", &keys.exporter_id),
            design_system_id: id(self, "design_system_id", &keys.design_system_id),
            version_id: id(self, "version_id", &keys.version_id),
            ..MatchKeys::default()
        };
        let name = |v: &mut Self, key: &str, raw: &Option<String>| -> Option<String> {
            raw.as_ref()
                .and_then(|r| v.non_empty(&format!("{path}.{key}"), r))
        };
        out.workspace_name = name(self, "workspace_name", &keys.workspace_name);
        out.hook_name = name(self, "hook_name", &keys.hook_name);
        out.exporter_name = name(self, "exporter_name", &keys.exporter_name);
        out.design_system_name = name(self, "design_system_name", &keys.design_system_name);
        out.version_name = name(self, "version_name", &keys.version_name);
        out.version = name(self, "version", &keys.version);
        let given = [
            keys.workspace_id.is_some(),
            keys.hook_id.is_some(),
            keys.exporter_id.is_some(),
            keys.design_system_id.is_some(),
            keys.version_id.is_some(),
            keys.workspace_name.is_some(),
            keys.hook_name.is_some(),
            keys.exporter_name.is_some(),
            keys.design_system_name.is_some(),
            keys.version_name.is_some(),
            keys.version.is_some(),
        ];
        if !given.contains(&true) {
            self.problem(
                path,
                "no keys given, which would match every job; write `match: any` if that is intended",
            );
        }
        Match::Keys(out)
    }
}
