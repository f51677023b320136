//! Membership at scale on the deterministic simulator, with Akka's default settings
//! (1 s gossip and heartbeat, 20 s stable-after): how many gossip rounds until a
//! joining node is Up in every view, how long until a crashed node is unreachable in
//! every view and removed from every view, and gossip bytes per node per second when
//! converged and during the join.
//!
//! Run: `cargo bench -p shared --bench membership` (N = 10, 100 and 1000); sizes given
//! after `--` replace those, e.g. `-- 10 100` or `-- 10 100 1000 10000`.
//! Every message is encoded with the real wire format, so byte counts are real.

use shared::sim::{Sim, SimConfig, Slot};
use shared::{Gossip, Member, MemberStatus, Settings, UniqueAddress};
use std::time::Instant;

struct Figures {
    nodes: usize,
    join_rounds: f64,
    unreachable_s: f64,
    removed_s: f64,
    converged_gossip_bps: f64,
    converged_heartbeat_bps: f64,
    churn_gossip_bps: f64,
    full_gossip_bytes: f64,
    wall_s: f64,
}

/// A converged cluster of `n - 1` Up members; slot `n - 1` is left free for the joiner.
fn formed_cluster(n: usize, seed: u64) -> Sim {
    let mut config = SimConfig::demo(n, seed);
    config.settings = Settings::akka_defaults("bench");
    config.seed_nodes = 1;
    config.check_invariants = false;
    let mut sim = Sim::new(config);
    let members: Vec<UniqueAddress> = (0..n - 1)
        .map(|slot| UniqueAddress::new(sim.address(slot).clone(), 1_000 + slot as u64))
        .collect();
    let mut gossip = Gossip::default();
    for (i, node) in members.iter().enumerate() {
        let mut member = Member::joining(node.clone(), Default::default());
        member.status = MemberStatus::Up;
        member.up_number = i as u32 + 1;
        gossip.members.insert(node.clone(), member);
    }
    gossip.bump(&members[0]);
    gossip.seen = members.iter().cloned().collect();
    for (slot, node) in members.iter().enumerate() {
        sim.start_with_state(slot, node.clone(), gossip.clone());
    }
    sim
}

/// Runs in 100 ms steps until `done` holds for the running slots; returns seconds.
fn time_until(sim: &mut Sim, limit_s: u64, mut done: impl FnMut(&Sim) -> bool) -> Option<f64> {
    let start = sim.now;
    while sim.now - start < limit_s * 1000 {
        sim.run_for(100);
        if done(sim) {
            return Some((sim.now - start) as f64 / 1000.0);
        }
    }
    None
}

fn every_view(sim: &Sim, skip: Option<Slot>, check: impl Fn(&Gossip) -> bool) -> bool {
    (0..sim.len())
        .filter(|s| Some(*s) != skip && sim.is_running(*s))
        .all(|s| sim.view(s).is_some_and(&check))
}

fn measure(n: usize) -> Figures {
    let began = Instant::now();
    let mut sim = formed_cluster(n, 42);
    let members = n - 1;
    sim.run_for(5_000);
    // Converged traffic.
    let (g0, h0) = (sim.traffic.gossip_bytes(), sim.traffic.heartbeat_bytes());
    sim.run_for(10_000);
    let converged_gossip_bps = (sim.traffic.gossip_bytes() - g0) as f64 / members as f64 / 10.0;
    let converged_heartbeat_bps =
        (sim.traffic.heartbeat_bytes() - h0) as f64 / members as f64 / 10.0;
    // Join.
    let joiner_slot = n - 1;
    let g1 = sim.traffic.gossip_bytes();
    let full0 = sim
        .traffic
        .by_kind
        .get("gossip")
        .copied()
        .unwrap_or_default();
    sim.start(joiner_slot);
    let joiner = sim.unique(joiner_slot).expect("started");
    let join_s = time_until(&mut sim, 120, |s| {
        every_view(s, None, |g| {
            g.member(&joiner)
                .is_some_and(|m| m.status == MemberStatus::Up)
        })
    })
    .unwrap_or(f64::NAN);
    let churn_gossip_bps = (sim.traffic.gossip_bytes() - g1) as f64 / n as f64 / join_s;
    let full1 = sim
        .traffic
        .by_kind
        .get("gossip")
        .copied()
        .unwrap_or_default();
    let full_gossip_bytes = (full1.1 - full0.1) as f64 / (full1.0 - full0.0).max(1) as f64;
    sim.run_for(5_000);
    // Crash.
    let victim_slot = n / 2;
    let victim = sim.unique(victim_slot).expect("running");
    sim.crash(victim_slot);
    let unreachable_s = time_until(&mut sim, 120, |s| {
        every_view(s, Some(victim_slot), |g| {
            !g.reachability.is_reachable(&victim) || !g.has_member(&victim)
        })
    })
    .unwrap_or(f64::NAN);
    let removed_s = unreachable_s
        + time_until(&mut sim, 180, |s| {
            every_view(s, Some(victim_slot), |g| !g.has_member(&victim))
        })
        .unwrap_or(f64::NAN);
    Figures {
        nodes: n,
        join_rounds: join_s / (Settings::akka_defaults("x").gossip_interval_ms as f64 / 1000.0),
        unreachable_s,
        removed_s,
        converged_gossip_bps,
        converged_heartbeat_bps,
        churn_gossip_bps,
        full_gossip_bytes,
        wall_s: began.elapsed().as_secs_f64(),
    }
}

fn main() {
    let asked: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let sizes = if asked.is_empty() {
        vec![10, 100, 1000]
    } else {
        asked
    };
    println!(
        "Membership on the simulator, Akka defaults (gossip 1 s, heartbeat 1 s, stable-after 20 s)"
    );
    println!(
        "{:>6} | {:>11} {:>12} | {:>13} {:>11} | {:>15} {:>15} {:>14} {:>11} | {:>6}",
        "N",
        "join rounds",
        "goal 2log2N",
        "unreachable s",
        "removed s",
        "gossip B/s/node",
        "heartbt B/s/node",
        "churn B/s/node",
        "full gossip",
        "wall s"
    );
    for n in sizes {
        let f = measure(n);
        println!(
            "{:>6} | {:>11.1} {:>12.1} | {:>13.1} {:>11.1} | {:>15.0} {:>15.0} {:>14.0} {:>10.0}B | {:>6.1}",
            f.nodes,
            f.join_rounds,
            2.0 * (f.nodes as f64).log2(),
            f.unreachable_s,
            f.removed_s,
            f.converged_gossip_bps,
            f.converged_heartbeat_bps,
            f.churn_gossip_bps,
            f.full_gossip_bytes,
            f.wall_s
        );
    }
    println!("join rounds: gossip intervals from the joiner's start until it is Up in every view.");
    println!(
        "unreachable/removed: seconds from SIGKILL-like crash until every other view shows it."
    );
}
