//! Options of `querylog`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use switchyard_api::AddressPattern;

/// Options of a `querylog` filter. Every option may be left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryLogConfig {
    /// The Kafka brokers to bootstrap from, `host:port` separated by commas. Default:
    /// `127.0.0.1:9092`.
    #[serde(default = "default_brokers")]
    pub brokers: String,

    /// The topic the records go to; it must exist (the filter does not create it). Default:
    /// `mysql-audit`.
    #[serde(default = "default_topic")]
    pub topic: String,

    /// librdkafka producer properties, applied after the filter's own defaults so that they
    /// override them, like `{ "linger.ms": 20, "acks": "all" }`. Numbers and booleans are
    /// accepted and passed on as text.
    #[serde(default, deserialize_with = "kafka_properties")]
    pub kafka: BTreeMap<String, String>,

    /// The proxy instance name written in every record (`proxy.instance`). Default: the host
    /// name.
    #[serde(default)]
    pub instance: Option<String>,

    /// Record only the sessions of these users. Default: every user.
    #[serde(default)]
    pub users: Vec<String>,

    /// Record nothing of the sessions of these users.
    #[serde(default)]
    pub exclude_users: Vec<String>,

    /// Record only the sessions from these client addresses: IP addresses or CIDR prefixes
    /// like `10.0.0.0/8` or `fd00::/8`. Default: every client.
    #[serde(default)]
    pub clients: Vec<AddressPattern>,

    /// Record nothing of the sessions from these client addresses (IP addresses or CIDR
    /// prefixes).
    #[serde(default)]
    pub exclude_clients: Vec<AddressPattern>,

    /// Record only the statements whose text this regular expression matches; commands that
    /// have no text (`COM_PING`, ...) are then not recorded. Logins, connects and disconnects
    /// are always recorded.
    #[serde(default, rename = "match")]
    pub match_: Option<String>,

    /// Do not record the statements whose text this regular expression matches.
    #[serde(default)]
    pub exclude: Option<String>,

    /// Write the digest text (literals replaced by `?`) as `query.text` instead of the text
    /// the client sent. Default: false.
    #[serde(default)]
    pub canonical_only: bool,

    /// The most bytes of statement text (and of digest text) a record carries; longer texts
    /// are cut on a character boundary and marked `truncated`. Default: 4096.
    #[serde(default = "default_max_text_bytes")]
    pub max_text_bytes: usize,

    /// How many records may wait between the sessions and the Kafka producer; when it is full,
    /// new records are dropped (and counted) rather than slowing the sessions. Default: 65536.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,

    /// How many bytes of records may wait between the sessions and the Kafka producer; past
    /// it, new records are dropped (and counted) as when `queue_size` is reached. It bounds the
    /// queue's memory whatever the size of the records. Default: 67108864 (64 MiB).
    #[serde(default = "default_queue_bytes")]
    pub queue_bytes: usize,

    /// A directory for the spill file `<filter name>.spill`: records Kafka cannot take now
    /// (its queue is full, or delivery failed) are kept there and sent again later, in order.
    /// Default: none (records that fail delivery are lost and counted `failed`).
    #[serde(default)]
    pub spill: Option<PathBuf>,

    /// The largest the spill file may grow, in bytes; records that do not fit are dropped.
    /// Default: 1073741824 (1 GiB).
    #[serde(default = "default_spill_max_size")]
    pub spill_max_size: u64,

    /// How often the feed's counters are logged (only when they changed). Default: `10s`.
    #[serde(
        default = "default_stats_interval",
        deserialize_with = "switchyard_api::duration::deserialize"
    )]
    pub stats_interval: Duration,
}

impl Default for QueryLogConfig {
    fn default() -> Self {
        QueryLogConfig {
            brokers: default_brokers(),
            topic: default_topic(),
            kafka: BTreeMap::new(),
            instance: None,
            users: Vec::new(),
            exclude_users: Vec::new(),
            clients: Vec::new(),
            exclude_clients: Vec::new(),
            match_: None,
            exclude: None,
            canonical_only: false,
            max_text_bytes: default_max_text_bytes(),
            queue_size: default_queue_size(),
            queue_bytes: default_queue_bytes(),
            spill: None,
            spill_max_size: default_spill_max_size(),
            stats_interval: default_stats_interval(),
        }
    }
}

impl QueryLogConfig {
    /// Checks what serde cannot (regexes compile, brokers non-empty, sizes > 0, librdkafka
    /// properties are known...). Err((option_key, message)) so the runtime can locate it.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.brokers.split(',').all(|b| b.trim().is_empty()) {
            return Err(("brokers", "must name at least one broker".into()));
        }
        if self.topic.trim().is_empty() {
            return Err(("topic", "must not be empty".into()));
        }
        if self
            .instance
            .as_deref()
            .is_some_and(|i| i.trim().is_empty())
        {
            return Err(("instance", "must not be empty".into()));
        }
        for (key, re) in [("match", &self.match_), ("exclude", &self.exclude)] {
            if let Some(re) = re {
                regex::Regex::new(re).map_err(|e| (key, e.to_string()))?;
            }
        }
        if self.max_text_bytes == 0 {
            return Err(("max_text_bytes", "must be at least 1".into()));
        }
        if self.queue_size == 0 {
            return Err(("queue_size", "must be at least 1".into()));
        }
        if self.queue_bytes < MIN_QUEUE_BYTES {
            return Err((
                "queue_bytes",
                format!("must be at least {MIN_QUEUE_BYTES} (one record of the largest size)"),
            ));
        }
        if self.spill_max_size == 0 {
            return Err(("spill_max_size", "must be at least 1".into()));
        }
        if self
            .spill
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return Err(("spill", "must name a directory".into()));
        }
        if self.stats_interval.is_zero() {
            return Err(("stats_interval", "must be longer than 0".into()));
        }
        crate::producer::client_config(self)
            .create_native_config()
            .map_err(|e| ("kafka", e.to_string()))?;
        for key in ["linger.ms", "queue.buffering.max.ms"] {
            // librdkafka has read the value (above); what it accepts is a number of ms.
            let ms = self
                .kafka
                .get(key)
                .and_then(|v| v.trim().parse::<f64>().ok());
            if ms.is_some_and(|ms| ms > MAX_LINGER_MS) {
                return Err((
                    "kafka",
                    format!(
                        "{key} may be at most {MAX_LINGER_MS}: records wait that long before \
                         they are sent, and must reach Kafka within the proxy's 10 s shutdown"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The configured instance name, else the host name, else `switchyard`.
    pub(crate) fn instance_name(&self) -> String {
        if let Some(i) = &self.instance {
            return i.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "switchyard".to_string())
    }
}

fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}

fn default_topic() -> String {
    "mysql-audit".into()
}

fn default_max_text_bytes() -> usize {
    4096
}

fn default_queue_size() -> usize {
    65536
}

fn default_queue_bytes() -> usize {
    64 << 20
}

/// The longest `linger.ms` (alias `queue.buffering.max.ms`): a record waits that long in
/// librdkafka, which sends it early only while a flush call blocks in it, and the proxy gives
/// filters 10 s to finish at shutdown.
const MAX_LINGER_MS: f64 = 5000.0;

/// The least `queue_bytes`: a queue that cannot hold one record would drop every record.
const MIN_QUEUE_BYTES: usize = 64 << 10;

fn default_spill_max_size() -> u64 {
    1 << 30
}

fn default_stats_interval() -> Duration {
    Duration::from_secs(10)
}

/// A map of librdkafka properties whose values may be written as YAML scalars of any type.
fn kafka_properties<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct MapVisitor;

    impl<'de> Visitor<'de> for MapVisitor {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of librdkafka properties")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, Scalar(v))) = map.next_entry::<String, Scalar>()? {
                out.insert(k, v);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_any(MapVisitor)
}

/// A property value: text, or a number or boolean turned into text.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<QueryLogConfig, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = parse(json!({})).unwrap();
        assert_eq!(c.brokers, "127.0.0.1:9092");
        assert_eq!(c.topic, "mysql-audit");
        assert_eq!(c.max_text_bytes, 4096);
        assert_eq!(c.queue_size, 65536);
        assert_eq!(c.queue_bytes, 64 << 20);
        assert_eq!(c.spill_max_size, 1 << 30);
        assert_eq!(c.stats_interval, Duration::from_secs(10));
        assert!(!c.canonical_only);
        assert!(c.spill.is_none() && c.match_.is_none() && c.kafka.is_empty());
        assert_eq!(c.check(), Ok(()));
    }

    #[test]
    fn every_option() {
        let c = parse(json!({
            "brokers": "k1:9092,k2:9092", "topic": "audit", "instance": "proxy-a",
            "kafka": {"linger.ms": 20.5, "enable.idempotence": true, "acks": "all",
                      "batch.num.messages": 5000u64, "retries": -1},
            "users": ["app"], "exclude_users": ["monitor"],
            "clients": ["10.0.0.0/8", "::1"], "exclude_clients": ["10.9.9.9"],
            "match": "(?i)^select", "exclude": "(?i)^select 1$",
            "canonical_only": true, "max_text_bytes": 100, "queue_size": 10, "queue_bytes": 1_000_000,
            "spill": "/var/spool/switchyard", "spill_max_size": 1000,
            "stats_interval": "1m"
        }))
        .unwrap();
        assert_eq!(c.kafka["linger.ms"], "20.5");
        assert_eq!(c.kafka["enable.idempotence"], "true");
        assert_eq!(c.kafka["acks"], "all");
        assert_eq!(c.kafka["batch.num.messages"], "5000");
        assert_eq!(c.kafka["retries"], "-1");
        assert_eq!(c.match_.as_deref(), Some("(?i)^select"));
        assert_eq!(c.stats_interval, Duration::from_secs(60));
        assert_eq!(c.instance_name(), "proxy-a");
        assert_eq!(c.spill_max_size, 1000);
        assert_eq!(c.queue_bytes, 1_000_000);
        assert!(c.canonical_only);
        // `retries` must be at least 0: librdkafka itself says so.
        assert_eq!(c.check().unwrap_err().0, "kafka");
    }

    #[test]
    fn unknown_and_mistyped_options_are_refused() {
        assert!(parse(json!({"topik": "x"}))
            .unwrap_err()
            .contains("unknown field"));
        assert!(parse(json!({"kafka": {"a": [1]}})).is_err());
        assert!(parse(json!({"stats_interval": "soon"}))
            .unwrap_err()
            .contains("invalid duration"));
        assert!(parse(json!({"spill_max_size": "1G"})).is_err());
        assert!(parse(json!({"kafka": null})).unwrap().kafka.is_empty());
    }

    #[test]
    fn check_names_the_option() {
        let bad = |v: serde_json::Value| parse(v).unwrap().check().unwrap_err();
        assert_eq!(bad(json!({"brokers": " , "})).0, "brokers");
        assert_eq!(bad(json!({"topic": ""})).0, "topic");
        assert_eq!(bad(json!({"instance": " "})).0, "instance");
        assert_eq!(bad(json!({"match": "("})).0, "match");
        assert_eq!(bad(json!({"exclude": "[a"})).0, "exclude");
        assert!(parse(json!({"clients": ["10.0.0.0/33"]})).is_err());
        assert!(parse(json!({"exclude_clients": ["host.example"]})).is_err());
        assert_eq!(bad(json!({"max_text_bytes": 0})).0, "max_text_bytes");
        assert_eq!(bad(json!({"queue_size": 0})).0, "queue_size");
        assert_eq!(bad(json!({"queue_bytes": 1000})).0, "queue_bytes");
        assert!(parse(json!({"queue_bytes": -1})).is_err());
        assert_eq!(bad(json!({"spill_max_size": 0})).0, "spill_max_size");
        assert_eq!(bad(json!({"spill": ""})).0, "spill");
        assert_eq!(bad(json!({"stats_interval": "0s"})).0, "stats_interval");
        let (key, msg) = bad(json!({"kafka": {"no.such.property": "1"}}));
        assert_eq!(key, "kafka");
        assert!(msg.contains("no.such.property"), "{msg}");
        let (key, _) = bad(json!({"kafka": {"linger.ms": "soon"}}));
        assert_eq!(key, "kafka");
        for key in ["linger.ms", "queue.buffering.max.ms"] {
            assert!(parse(json!({"kafka": {key: 5000}}))
                .unwrap()
                .check()
                .is_ok());
            let (at, msg) = bad(json!({"kafka": {key: 60000}}));
            assert_eq!(at, "kafka");
            assert!(msg.contains(key) && msg.contains("at most 5000"), "{msg}");
        }
    }

    #[test]
    fn instance_defaults_to_the_host_name() {
        let name = parse(json!({})).unwrap().instance_name();
        assert!(!name.is_empty());
    }
}
