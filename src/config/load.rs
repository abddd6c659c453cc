//! Reading a config: parse, deserialize past every error, attach where each part was written,
//! check across fields; and [`Source`], the written locations kept for later errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::yaml::{self, Kind, Location, Node};
use super::{de, legacy, validate, Config, ConfigError, ConfigErrors, ModuleOptions};

/// Checks the runtime adds: module options, module names. Run on whatever part of the
/// config could be read, so that their problems are reported with the others.
pub type ModuleCheck<'a> = &'a dyn Fn(&Config) -> ConfigErrors;

/// Reads and parses a configuration file; errors name the file as given.
pub fn load(path: &Path, modules: ModuleCheck<'_>) -> Result<Config, ConfigErrors> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_checked(&text, &origin, modules),
        Err(e) => Err(ConfigError::unlocated(origin, format!("cannot read the file: {e}")).into()),
    }
}

/// Parses a configuration; `origin` is the file name used in messages. Returns every problem
/// found (syntax, unknown keys, bad values, missing fields, and the checks across fields),
/// ordered by position.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    parse_checked(text, origin, &|_| ConfigErrors::new())
}

/// [`parse`], plus the `modules` checks.
pub fn parse_checked(
    text: &str,
    origin: &str,
    modules: ModuleCheck<'_>,
) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let config = parse_into(text, origin, &mut errors);
    if let Some(config) = &config {
        errors.extend(modules(config));
    }
    let mut errors = ConfigErrors(errors);
    errors.sort();
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(errors),
    }
}

fn parse_into(text: &str, origin: &str, errors: &mut Vec<ConfigError>) -> Option<Config> {
    let mut root = match yaml::parse(text, origin, errors) {
        Ok(root) => root,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    let warnings = legacy::move_monitor_options(&mut root, origin, errors);
    let (config, pruned) = de::deserialize_all::<Config>(&root, origin, errors);
    let mut config = config?;
    let source = Source::new(Arc::from(origin), &root, warnings);
    attach_sources(&mut config, &root, &pruned, &source);
    validate::check(&config, &root, &pruned, origin, errors);
    config.source = source;
    Some(config)
}

/// Gives each service its source, and services, filters and monitors their options as located
/// YAML (serde only saw the values).
fn attach_sources(config: &mut Config, root: &Node, pruned: &de::Pruned, source: &Source) {
    let items = validate::live_items(root.get("filters"), pruned);
    if items.len() == config.filters.len() {
        for (filter, item) in config.filters.iter_mut().zip(items) {
            let mut node = item.clone();
            if let Kind::Map(entries) = &mut node.kind {
                entries.retain(|e| !matches!(e.key.as_str(), Some("name" | "module")));
            }
            filter.options = ModuleOptions::new(source.origin.clone(), node);
        }
    }
    let items = validate::live_items(root.get("monitors"), pruned);
    if items.len() == config.monitors.len() {
        for (monitor, item) in config.monitors.iter_mut().zip(items) {
            monitor.options = ModuleOptions::new(source.origin.clone(), options_node(item, pruned));
        }
    }
    let items = validate::live_items(root.get("services"), pruned);
    if items.len() != config.services.len() {
        return;
    }
    for (service, item) in config.services.iter_mut().zip(items) {
        service.source = source.clone();
        service.path = item.path.clone();
        service.options = ModuleOptions::new(source.origin.clone(), options_node(item, pruned));
    }
}

/// The `options` map of an item, or an empty one placed on the item.
fn options_node(item: &Node, pruned: &de::Pruned) -> Node {
    match item.entry("options") {
        Some(entry) if !pruned.contains(&entry.value.id) => entry.value.clone(),
        _ => Node::empty_map(0, item.loc, format!("{}.options", item.path)),
    }
}

/// Where each part of a config was written: path → location.
#[derive(Clone, Default)]
pub(super) struct Source {
    pub(super) origin: Arc<str>,
    locations: Arc<BTreeMap<String, Location>>,
    /// What was read but should be written otherwise (deprecated spellings).
    pub(super) warnings: Arc<[ConfigError]>,
}

impl Source {
    fn new(origin: Arc<str>, root: &Node, warnings: Vec<ConfigError>) -> Self {
        fn walk(node: &Node, locations: &mut BTreeMap<String, Location>) {
            locations.insert(node.path.clone(), node.loc);
            match &node.kind {
                Kind::Scalar { .. } => {}
                Kind::Seq(items) => items.iter().for_each(|item| walk(item, locations)),
                Kind::Map(entries) => entries.iter().for_each(|e| walk(&e.value, locations)),
            }
        }
        let mut locations = BTreeMap::new();
        walk(root, &mut locations);
        Source {
            origin,
            locations: Arc::new(locations),
            warnings: warnings.into(),
        }
    }

    /// An error at `path`, or at its closest written parent.
    pub(super) fn error_at(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let mut at = path;
        let loc = loop {
            if let Some(loc) = self.locations.get(at) {
                break *loc;
            }
            match at.rfind(['.', '[']) {
                Some(cut) => at = &at[..cut],
                None => break self.locations.get("").copied().unwrap_or_default(),
            }
        };
        ConfigError::new(&*self.origin, loc.line, loc.column, path, message)
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Source {
    /// Where a config was written is not part of its value.
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}
