//! What the Kafka tests and the throughput bench share: the local broker, and topics of
//! their own, created on it and deleted when dropped.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

pub const BROKER: &str = "127.0.0.1:9092";

/// The broker's address; fails (does not skip) when the broker is not there.
pub fn broker() -> &'static str {
    let addr: SocketAddr = BROKER.parse().unwrap();
    if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        panic!(
            "Kafka is not reachable on {BROKER} ({e}). Start it with `bash scripts/kafka.sh up` \
             from the repository root (the project's test command does this)."
        );
    }
    BROKER
}

/// Runs an admin request to completion on this thread (librdkafka completes it from its own).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
        .block_on(fut)
}

/// A topic with one partition, deleted when dropped (also when a test fails).
pub struct Topic {
    admin: AdminClient<DefaultClientContext>,
    pub name: String,
}

impl Topic {
    /// A unique topic name, not created yet.
    pub fn named(tag: &str) -> Topic {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", broker())
            .create()
            .expect("admin client");
        let name = format!("querylog-test-{tag}-{}", uuid::Uuid::now_v7().simple());
        Topic { admin, name }
    }

    /// A unique topic, created.
    pub fn create(tag: &str) -> Topic {
        let t = Topic::named(tag);
        t.make();
        t
    }

    /// Creates the topic on the broker.
    pub fn make(&self) {
        self.make_with(&[]);
    }

    /// Creates the topic on the broker with these topic settings (`max.message.bytes`...).
    pub fn make_with(&self, settings: &[(&str, &str)]) {
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let mut new = NewTopic::new(&self.name, 1, TopicReplication::Fixed(1));
        for (k, v) in settings {
            new = new.set(k, v);
        }
        let res = block_on(self.admin.create_topics([&new], &opts))
            .unwrap_or_else(|e| panic!("cannot create topic {}: {e}", self.name));
        for r in res {
            r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
        }
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let _ = block_on(self.admin.delete_topics(&[&self.name], &opts));
    }
}
