//! The numbers modules report as typed samples ([`MetricSample`]), turned into Prometheus
//! families at each scrape.

use std::collections::{HashMap, HashSet};

use prometheus::proto::MetricFamily;
use prometheus::{CounterVec, GaugeVec, Opts, Registry};
use switchyard_api::{MetricKind, MetricSample};

/// What one module instance reported, with the label that names it.
#[derive(Debug, Clone)]
pub struct ModuleSamples {
    /// The label naming the instance: `filter`.
    pub label: &'static str,
    /// The instance's name in the config.
    pub instance: String,
    pub samples: Vec<MetricSample>,
}

enum Family {
    Counter(CounterVec),
    Gauge(GaugeVec),
}

/// The module families, built afresh. A sample that does not fit its family (another kind or
/// other label names than the family's first sample), or whose family the runtime already
/// has (`taken`), is left out: a module cannot break the rest of `/metrics`.
pub(super) fn gather(modules: &[ModuleSamples], taken: &HashSet<&str>) -> Vec<MetricFamily> {
    let registry = Registry::new();
    let mut families: HashMap<&'static str, (MetricKind, Vec<&'static str>, Family)> =
        HashMap::new();
    for module in modules {
        for s in &module.samples {
            let names: Vec<&str> = std::iter::once(module.label)
                .chain(s.labels.iter().map(|(n, _)| *n))
                .collect();
            let values: Vec<&str> = std::iter::once(module.instance.as_str())
                .chain(s.labels.iter().map(|(_, v)| v.as_str()))
                .collect();
            let entry = match families.entry(s.family) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let name = format!("switchyard_{}", s.family);
                    if taken.contains(name.as_str()) {
                        continue;
                    }
                    let opts = Opts::new(name, s.help);
                    let family = match s.kind {
                        MetricKind::Counter => CounterVec::new(opts, &names).map(|c| {
                            let _ = registry.register(Box::new(c.clone()));
                            Family::Counter(c)
                        }),
                        MetricKind::Gauge => GaugeVec::new(opts, &names).map(|g| {
                            let _ = registry.register(Box::new(g.clone()));
                            Family::Gauge(g)
                        }),
                    };
                    let Ok(family) = family else { continue };
                    e.insert((s.kind, names.clone(), family))
                }
            };
            if entry.0 != s.kind || entry.1 != names {
                continue;
            }
            match &entry.2 {
                Family::Counter(c) => {
                    if let Ok(c) = c.get_metric_with_label_values(&values) {
                        c.inc_by(s.value.max(0.0));
                    }
                }
                Family::Gauge(g) => {
                    if let Ok(g) = g.get_metric_with_label_values(&values) {
                        g.set(s.value);
                    }
                }
            }
        }
    }
    registry.gather()
}
