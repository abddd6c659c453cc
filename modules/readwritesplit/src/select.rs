//! Replica selection: which of the replicas that qualify takes a read. Allocation-free: each
//! policy walks the server list a few times rather than collecting the candidates.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rand::RngExt;
use switchyard_api::{Server, ServerSet};

use crate::config::ReplicaSelection;

/// One of the servers for which `qualifies` holds, chosen by `policy`. `is_open` tells which
/// servers the session already has a connection to (a tie-breaker: no new connection).
pub(crate) fn pick<'s>(
    policy: ReplicaSelection,
    round_robin: &AtomicUsize,
    servers: &'s ServerSet,
    qualifies: impl Fn(&Server) -> bool,
    is_open: impl Fn(&Server) -> bool,
) -> Option<&'s Arc<Server>> {
    let candidates = || servers.servers.iter().filter(|s| qualifies(s));
    match policy {
        ReplicaSelection::LeastCurrentOperations => candidates().min_by(|a, b| {
            a.stats
                .current_operations()
                .cmp(&b.stats.current_operations())
                .then_with(|| is_open(b).cmp(&is_open(a)))
                .then_with(|| a.stats.connections().cmp(&b.stats.connections()))
        }),
        ReplicaSelection::RoundRobin => {
            let count = candidates().count();
            if count == 0 {
                return None;
            }
            let turn = round_robin.fetch_add(1, Ordering::Relaxed);
            candidates().nth(turn % count)
        }
        ReplicaSelection::Adaptive => adaptive(candidates, &mut rand::rng()),
    }
}

/// Weighted random choice, weight 1/t² for an average response time t. Servers without a
/// measurement get the best weight seen, so that they are tried and measured.
fn adaptive<'s, I: Iterator<Item = &'s Arc<Server>>>(
    candidates: impl Fn() -> I,
    rng: &mut impl RngExt,
) -> Option<&'s Arc<Server>> {
    let weight = |s: &Server| match s.stats.response_time_us() {
        0 => None,
        t => Some(1.0 / (t as f64 * t as f64)),
    };
    let mut best = 0.0f64;
    let mut total = 0.0;
    let mut unmeasured = 0u32;
    let mut count = 0usize;
    for s in candidates() {
        count += 1;
        match weight(s) {
            Some(w) => {
                best = best.max(w);
                total += w;
            }
            None => unmeasured += 1,
        }
    }
    if count == 0 {
        return None;
    }
    if best == 0.0 {
        best = 1.0;
    }
    total += f64::from(unmeasured) * best;
    let mut point = rng.random::<f64>() * total;
    let mut last = None;
    for s in candidates() {
        point -= weight(s).unwrap_or(best);
        if point < 0.0 {
            return Some(s);
        }
        last = Some(s);
    }
    // Rounding left a sliver at the end.
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use switchyard_api::{ServerRole, ServerStats};

    fn set(times: &[u64]) -> ServerSet {
        ServerSet {
            servers: times
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    let stats = Arc::new(ServerStats::default());
                    if t > 0 {
                        stats.record_response(t);
                    }
                    Arc::new(Server::new(
                        &format!("db{i}"),
                        "127.0.0.1:1",
                        ServerRole::Replica,
                        stats,
                    ))
                })
                .collect(),
        }
    }

    fn shares(servers: &ServerSet, draws: usize) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0; servers.servers.len()];
        for _ in 0..draws {
            let s = adaptive(|| servers.servers.iter(), &mut rng).unwrap();
            let i = servers.servers.iter().position(|x| Arc::ptr_eq(x, s));
            counts[i.unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn adaptive_weighs_by_inverse_square_time() {
        // 100 µs against 200 µs: four times the reads.
        let counts = shares(&set(&[100, 200]), 10_000);
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((3.4..4.7).contains(&ratio), "{counts:?}");
    }

    #[test]
    fn adaptive_tries_unmeasured_servers_as_the_best() {
        let counts = shares(&set(&[100, 0, 1000]), 10_000);
        assert!(counts[1] > 4000 && counts[0] > 4000, "{counts:?}");
        assert!(counts[2] < 200, "{counts:?}");
        let counts = shares(&set(&[0, 0]), 1000);
        assert!(counts[0] > 400 && counts[1] > 400, "{counts:?}");
        assert!(adaptive(|| [].iter(), &mut StdRng::seed_from_u64(1)).is_none());
    }
}
