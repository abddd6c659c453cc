//! Numbers a module exposes in `/metrics`, as typed samples rather than keys of its
//! diagnostics JSON.

/// One sample of a module's metric family. The runtime names the family
/// `switchyard_<family>`, puts the module instance's label first (`filter="audit"`), and builds
/// the families afresh at each scrape, so a module reports its current totals each time.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// The family name without the `switchyard_` prefix, like `audit_records_total`.
    pub family: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    /// The sample's other labels; every sample of a family has the same label names.
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// A counter only goes up (totals since the module started); a gauge is a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

impl MetricSample {
    /// A counter sample.
    pub fn counter(family: &'static str, help: &'static str, value: u64) -> Self {
        MetricSample {
            family,
            help,
            kind: MetricKind::Counter,
            labels: Vec::new(),
            value: value as f64,
        }
    }

    /// A gauge sample.
    pub fn gauge(family: &'static str, help: &'static str, value: f64) -> Self {
        MetricSample {
            kind: MetricKind::Gauge,
            value,
            ..MetricSample::counter(family, help, 0)
        }
    }

    /// The same sample with one more label.
    pub fn label(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.labels.push((name, value.into()));
        self
    }
}
