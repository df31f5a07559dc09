//! `[stages.NAME]`: the same routes deployed several times, each stage under its own base path
//! or host and with its own variables. Validation expands a config with stages into plain
//! routes, one copy per (route, stage), so the router and the pipeline know nothing of stages
//! beyond the label each route carries.
//!
//! A plugin whose config says `${stage.NAME}` is instantiated once per stage that uses it
//! (`PLUGIN@STAGE`, with the stage's values in place; its state is its own); any other plugin
//! is shared by all stages. A stage's `canary` sends a share of its requests to the route that
//! another stage deploys for the same method and path.

use super::raw::RawStage;
use super::{ConfigIssue, PluginSpec, RouteCanary, RouteSpec, StageSpec, Validator};
use crate::canonical::{authority, PathRules};
use crate::router::PathTemplate;
use std::collections::{BTreeMap, HashMap};
use toml::Spanned;

const MARK: &str = "${stage.";

/// A stage's canary as written, checked once every stage is known.
struct CanaryDraft {
    stage: String,
    basis_points: u32,
    sticky: Option<http::HeaderName>,
    target: Spanned<String>,
}

impl Validator<'_> {
    /// Validate `[stages]` and expand `routes` into one route per stage it is deployed to,
    /// adding the per-stage copies of plugins to `plugins`.
    pub(super) fn stages(
        &mut self,
        raw: BTreeMap<String, Spanned<RawStage>>,
        plugins: &mut Vec<PluginSpec>,
        routes: Vec<RouteSpec>,
        rules: PathRules,
    ) -> (Vec<StageSpec>, Vec<RouteSpec>) {
        let mut stages = Vec::new();
        let mut canaries = Vec::new();
        for (name, stage) in raw {
            if let Some((spec, canary)) = self.stage(name, stage, plugins) {
                stages.push(spec);
                canaries.extend(canary);
            }
        }
        if stages.is_empty() {
            for route in &routes {
                if let Some((_, at)) = route.stage_names.first() {
                    self.issues.push(ConfigIssue {
                        location: at.clone(),
                        key: format!("routes[{}].stages", route.index),
                        message: "no [stages] are defined".into(),
                    });
                }
            }
            for p in plugins.iter() {
                if p.config_json.contains(MARK) {
                    let msg = "uses ${stage.*} but no [stages] are defined".to_string();
                    self.issues.push(ConfigIssue {
                        location: p.config_location.clone(),
                        key: format!("plugins.{}.config", p.name),
                        message: msg,
                    });
                }
            }
            return (stages, routes);
        }
        let originals = plugins.len();
        let mut copies: HashMap<(usize, usize), usize> = HashMap::new();
        let mut expanded = Vec::new();
        for route in &routes {
            let deployed: Vec<usize> = if route.stage_names.is_empty() {
                (0..stages.len()).collect()
            } else {
                let mut out = Vec::new();
                for (name, at) in &route.stage_names {
                    match stages.iter().position(|s| &s.name == name) {
                        Some(i) => out.push(i),
                        None => self.issues.push(ConfigIssue {
                            location: at.clone(),
                            key: format!("routes[{}].stages", route.index),
                            message: format!("stage {name:?} is not defined in [stages]"),
                        }),
                    }
                }
                out
            };
            for s in deployed {
                if let Some(r) = self.deploy(route, &stages[s], s, plugins, &mut copies, rules) {
                    expanded.push(r);
                }
            }
        }
        for p in &mut plugins[..originals] {
            p.per_stage = p.config_json.contains(MARK);
        }
        for c in canaries {
            self.link_canary(&c, &mut expanded);
        }
        (stages, expanded)
    }

    fn stage(
        &mut self,
        name: String,
        raw: Spanned<RawStage>,
        plugins: &[PluginSpec],
    ) -> Option<(StageSpec, Option<CanaryDraft>)> {
        let location = self.file.locate(&raw.span());
        let raw = raw.into_inner();
        let key = format!("stages.{name}");
        let base_path = raw.base_path.and_then(|b| {
            let text = b.get_ref().trim_end_matches('/');
            let ok =
                text.starts_with('/') && PathTemplate::parse(text).is_ok() && !text.contains('{');
            if ok {
                Some(text.to_string())
            } else {
                let msg = format!(
                    "{:?} is not a base path such as \"/prod\" (absolute, no parameters)",
                    b.get_ref()
                );
                self.issue(&b.span(), format!("{key}.base_path"), msg);
                None
            }
        });
        let host = raw
            .host
            .and_then(|h| match authority::host_name(h.get_ref()) {
                Some(host) => Some(host),
                None => {
                    let msg = format!(
                        "{:?} is not a host name such as \"beta.example.com\"",
                        h.get_ref()
                    );
                    self.issue(&h.span(), format!("{key}.host"), msg);
                    None
                }
            });
        let mut filters = Vec::new();
        for (j, p) in raw.plugins.iter().enumerate() {
            match plugins.iter().position(|spec| &spec.name == p.get_ref()) {
                Some(i) => filters.push((i, self.file.locate(&p.span()))),
                None => {
                    let msg = format!("plugin {:?} is not defined in [plugins]", p.get_ref());
                    self.issue(&p.span(), format!("{key}.plugins[{j}]"), msg);
                }
            }
        }
        let variables = raw
            .variables
            .into_iter()
            .map(|(k, v)| (k, v.into_inner()))
            .collect();
        let canary = raw.canary.and_then(|c| {
            let c = c.into_inner();
            let percent = *c.percent.get_ref();
            if !(0.0..=100.0).contains(&percent) {
                let msg = format!("must be between 0 and 100, got {percent}");
                self.issue(&c.percent.span(), format!("{key}.canary.percent"), msg);
                return None;
            }
            let sticky = match &c.sticky {
                None => None,
                Some(s) => match s
                    .get_ref()
                    .strip_prefix("header:")
                    .and_then(|h| http::HeaderName::from_bytes(h.trim().as_bytes()).ok())
                {
                    Some(h) => Some(h),
                    None => {
                        let msg = format!(
                            "{:?} is not a caller key; write \"header:NAME\" (e.g. \"header:x-user\")",
                            s.get_ref()
                        );
                        self.issue(&s.span(), format!("{key}.canary.sticky"), msg);
                        return None;
                    }
                },
            };
            Some(CanaryDraft {
                stage: name.clone(),
                basis_points: (percent * 100.0).round() as u32,
                sticky,
                target: c.stage,
            })
        });
        Some((
            StageSpec {
                name,
                base_path,
                host,
                variables,
                plugins: filters,
                location,
            },
            canary,
        ))
    }

    /// The copy of `route` that `stage` (index `s`) serves.
    fn deploy(
        &mut self,
        route: &RouteSpec,
        stage: &StageSpec,
        s: usize,
        plugins: &mut Vec<PluginSpec>,
        copies: &mut HashMap<(usize, usize), usize>,
        rules: PathRules,
    ) -> Option<RouteSpec> {
        let mut copy = route.clone();
        copy.stage = Some(stage.name.clone());
        if let Some(base) = &stage.base_path {
            let joined = match route.path.as_str() {
                "/" => base.clone(),
                p => format!("{base}{p}"),
            };
            match PathTemplate::parse(&joined).and_then(|p| p.check_canonical(rules).map(|()| p)) {
                Ok(p) => copy.path = p,
                Err(e) => {
                    self.issues.push(ConfigIssue {
                        location: route.location.clone(),
                        key: format!("routes[{}].path", route.index),
                        message: format!("under stage {:?} ({joined}): {e}", stage.name),
                    });
                    return None;
                }
            }
        }
        if let Some(host) = &stage.host {
            if route.host.as_ref().is_some_and(|h| h != host) {
                self.issues.push(ConfigIssue {
                    location: route.location.clone(),
                    key: format!("routes[{}].host", route.index),
                    message: format!(
                        "the route's host differs from stage {:?}'s host {host:?}",
                        stage.name
                    ),
                });
                return None;
            }
            copy.host = Some(host.clone());
        }
        // The stage's own filters run first, unless the route lists them itself.
        let first: Vec<_> = stage
            .plugins
            .iter()
            .filter(|(i, _)| !route.plugins.iter().any(|(j, _)| j == i))
            .cloned()
            .collect();
        copy.plugins.splice(0..0, first);
        for (i, _) in copy.plugins.iter_mut() {
            *i = self.plugin_for(*i, stage, s, plugins, copies);
        }
        copy.integration.0 = self.plugin_for(copy.integration.0, stage, s, plugins, copies);
        Some(copy)
    }

    /// The plugin `stage` runs for plugin `i`: its per-stage copy when its config uses
    /// `${stage.*}`.
    fn plugin_for(
        &mut self,
        i: usize,
        stage: &StageSpec,
        s: usize,
        plugins: &mut Vec<PluginSpec>,
        copies: &mut HashMap<(usize, usize), usize>,
    ) -> usize {
        if !plugins[i].config_json.contains(MARK) {
            return i;
        }
        if let Some(&copy) = copies.get(&(i, s)) {
            return copy;
        }
        let mut spec = plugins[i].clone();
        spec.name = format!("{}@{}", spec.name, stage.name);
        let (json, missing) = substitute(&spec.config_json, &stage.variables);
        for name in missing {
            self.issues.push(ConfigIssue {
                location: spec.config_location.clone(),
                key: format!("plugins.{}.config", plugins[i].name),
                message: format!(
                    "${{stage.{name}}}: stage {:?} has no variable {name:?} (at {})",
                    stage.name, stage.location
                ),
            });
        }
        spec.config_json = json;
        plugins.push(spec);
        copies.insert((i, s), plugins.len() - 1);
        plugins.len() - 1
    }

    /// Point every route of the canary's stage at its counterpart in the target stage: the
    /// route deployed there for the same methods and path.
    fn link_canary(&mut self, c: &CanaryDraft, routes: &mut [RouteSpec]) {
        let target = c.target.get_ref();
        if !routes.iter().any(|r| r.stage.as_deref() == Some(target)) {
            let msg = format!("stage {target:?} is not defined or serves no route");
            self.issue(
                &c.target.span(),
                format!("stages.{}.canary.stage", c.stage),
                msg,
            );
            return;
        }
        for i in 0..routes.len() {
            if routes[i].stage.as_deref() != Some(c.stage.as_str()) {
                continue;
            }
            let found = routes.iter().position(|t| {
                t.stage.as_deref() == Some(target)
                    && t.methods == routes[i].methods
                    && t.relative_shape == routes[i].relative_shape
            });
            if let Some(t) = found {
                routes[i].canary = Some(RouteCanary {
                    basis_points: c.basis_points,
                    sticky: c.sticky.clone(),
                    route: t,
                });
            }
        }
    }
}

/// `text` (a plugin's config as JSON) with `${stage.NAME}` replaced inside its strings by the
/// variables' values; and the names that have no value.
fn substitute(text: &str, variables: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let mut missing = Vec::new();
    let mut value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return (text.to_string(), missing),
    };
    fn walk(v: &mut serde_json::Value, vars: &BTreeMap<String, String>, missing: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) if s.contains(MARK) => *s = fill(s, vars, missing),
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|i| walk(i, vars, missing))
            }
            serde_json::Value::Object(map) => map.values_mut().for_each(|i| walk(i, vars, missing)),
            _ => {}
        }
    }
    walk(&mut value, variables, &mut missing);
    (value.to_string(), missing)
}

fn fill(s: &str, vars: &BTreeMap<String, String>, missing: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARK.len()..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => missing.push(name.to_string()),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_stage_variables_inside_strings_only() {
        let vars = BTreeMap::from([("up".to_string(), "http://a:1".to_string())]);
        let (json, missing) = substitute(
            r#"{"url":"${stage.up}/x/{rest+}","n":1,"list":["${stage.nope}"]}"#,
            &vars,
        );
        assert_eq!(json, r#"{"list":[""],"n":1,"url":"http://a:1/x/{rest+}"}"#);
        assert_eq!(missing, vec!["nope".to_string()]);
    }
}
