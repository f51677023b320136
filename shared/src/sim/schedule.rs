//! Random fault schedules, each fully determined by one seed, and the runner that
//! plays them and checks that the cluster stays safe and heals.
//!
//! A schedule forms a cluster of 3 to 9 nodes under one of the four downing
//! strategies, injects a few faults over about twenty simulated seconds (crashes,
//! restarts, among them of the first seed, of several seeds at once and of a node
//! that is being downed, freezes, partitions, one-way cuts, isolation, slow links,
//! loss, duplication, reordering, leaves and downs), then heals
//! everything: the network is repaired, frozen nodes resume and stopped nodes are
//! restarted as new incarnations, as a supervisor would. From then on the running
//! members must converge to one cluster, all Up, within a bound. A failure prints the
//! seed, the schedule and the trace; the same seed replays it exactly.

use super::{Sim, SimConfig, Slot};
use crate::member::MemberStatus;
use crate::node::{Command, Millis};
use crate::settings::DowningStrategy;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fmt;

/// One injected fault or operator action.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// SIGKILL: connections to the slot are refused from then on.
    Crash(Slot),
    /// The slot's host lost: its node dies and connections to it time out.
    PowerOff(Slot),
    /// Start a new incarnation (if the slot is not running).
    Restart(Slot),
    /// SIGSTOP for a while.
    Freeze(Slot, Millis),
    /// Both directions of one link.
    Cut(Slot, Slot),
    /// One direction of one link.
    CutOneWay(Slot, Slot),
    /// A node cut off from all.
    Isolate(Slot),
    /// These nodes against the rest.
    Partition(Vec<Slot>),
    /// These nodes against the rest, with links that reject: each side holds
    /// evidence that looks like the other side's death.
    RefusingPartition(Vec<Slot>),
    /// Extra delay (and as much jitter) on one direction.
    Slow(Slot, Slot, Millis),
    /// Message loss probability.
    Loss(f64),
    /// Duplication probability.
    Duplicate(f64),
    /// Extra random delay on every message (reordering).
    Reorder(Millis),
    /// Graceful leave of a node.
    Leave(Slot),
    /// An operator at `by` downs `target`.
    Down {
        /// Where the command is given.
        by: Slot,
        /// Who is downed.
        target: Slot,
    },
    /// Repair all network faults.
    HealNetwork,
}

/// A seeded schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The seed it came from.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// The split-brain resolver's strategy every node uses.
    pub downing: DowningStrategy,
    /// How many members monitor each one (Akka's `monitored-by-nr-of-members`). `None`
    /// keeps the profile's nine, which with at most nine nodes is everyone.
    pub monitors: Option<usize>,
    /// Faults with their times, counted from the moment the cluster has formed.
    pub steps: Vec<(Millis, Fault)>,
    /// When everything is healed (same origin).
    pub heal_at: Millis,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "schedule for seed {} ({} nodes, {:?}{}):",
            self.seed,
            self.nodes,
            self.downing,
            self.monitors
                .map(|m| format!(", {m} monitors each"))
                .unwrap_or_default()
        )?;
        for (at, fault) in &self.steps {
            writeln!(f, "  +{at:>6}ms {fault:?}")?;
        }
        writeln!(f, "  +{:>6}ms heal everything", self.heal_at)
    }
}

/// How long after healing the cluster must have converged, in the demo profile:
/// detection, stable-after, down-all-when-unstable, removal and rejoining, with margin.
pub const SETTLE_LIMIT_MS: Millis = 60_000;

/// One of the four strategies, with the settings a careful operator would give it.
fn random_downing(rng: &mut SmallRng, nodes: usize) -> DowningStrategy {
    match rng.random_range(0..8) {
        0..=3 => DowningStrategy::KeepMajority,
        4 | 5 => DowningStrategy::StaticQuorum {
            quorum_size: nodes / 2 + 1,
        },
        6 => DowningStrategy::KeepOldest {
            down_if_alone: rng.random_bool(0.5),
        },
        _ => DowningStrategy::DownAll,
    }
}

/// A crash of `slot` now and its restart (a supervisor's) a little later.
fn crash_and_restart(rng: &mut SmallRng, steps: &mut Vec<(Millis, Fault)>, at: Millis, slot: Slot) {
    steps.push((at, Fault::Crash(slot)));
    steps.push((at + rng.random_range(500..8_000), Fault::Restart(slot)));
}

/// The schedule `random_schedule` draws from `seed`, played with fewer monitors than
/// members (1 to `nodes - 2`, from the seed): failure detection, proofs of death and
/// the resolver's heartbeat checks then see only part of the cluster, as above ten
/// members with Akka's defaults.
pub fn random_schedule_on_a_partial_ring(seed: u64) -> Schedule {
    let mut schedule = random_schedule(seed);
    let most = schedule.nodes as u64 - 2;
    schedule.monitors = Some(1 + (seed % most) as usize);
    schedule
}

/// Draws a schedule from `seed`.
pub fn random_schedule(seed: u64) -> Schedule {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_5eed_5eed_5eed);
    let nodes = rng.random_range(3..=9);
    let downing = random_downing(&mut rng, nodes);
    let seed_nodes = nodes.min(3);
    let count = rng.random_range(1..=6);
    let mut steps = Vec::new();
    let mut left = false;
    for _ in 0..count {
        let at = rng.random_range(0..20_000);
        let a = rng.random_range(0..nodes);
        let mut b = rng.random_range(0..nodes - 1);
        if b >= a {
            b += 1;
        }
        let fault = match rng.random_range(0..17) {
            0 if rng.random_bool(0.5) => Fault::Crash(a),
            0 => Fault::PowerOff(a),
            1 => {
                crash_and_restart(&mut rng, &mut steps, at, a);
                continue;
            }
            14 => {
                // The first seed: the one that may form a cluster on its own.
                crash_and_restart(&mut rng, &mut steps, at, 0);
                continue;
            }
            15 => {
                // Several seeds at once (every node is a seed in these runs).
                let chosen: Vec<Slot> = (0..nodes).filter(|_| rng.random_bool(0.4)).collect();
                for slot in chosen {
                    crash_and_restart(&mut rng, &mut steps, at, slot);
                }
                continue;
            }
            16 => {
                // A node restarted while it is being downed.
                steps.push((at, Fault::Down { by: b, target: a }));
                let crash_at = at + rng.random_range(0..500);
                crash_and_restart(&mut rng, &mut steps, crash_at, a);
                continue;
            }
            2 | 3 => Fault::Freeze(a, rng.random_range(100..6_000)),
            4 => Fault::Cut(a, b),
            5 => Fault::CutOneWay(a, b),
            6 if rng.random_bool(0.5) => Fault::Isolate(a),
            6 => Fault::RefusingPartition(vec![a]),
            7 => {
                let mut side: Vec<Slot> = (0..nodes).filter(|_| rng.random_bool(0.5)).collect();
                if side.is_empty() || side.len() == nodes {
                    side = vec![a];
                }
                if rng.random_bool(0.5) {
                    Fault::Partition(side)
                } else {
                    Fault::RefusingPartition(side)
                }
            }
            8 => Fault::Slow(a, b, rng.random_range(50..1_500)),
            9 => Fault::Loss(rng.random_range(0.01..0.3)),
            10 => Fault::Duplicate(rng.random_range(0.01..0.3)),
            11 => Fault::Reorder(rng.random_range(5..200)),
            12 if !left && nodes > seed_nodes && a >= seed_nodes => {
                left = true;
                Fault::Leave(a)
            }
            12 => Fault::HealNetwork,
            _ => Fault::Down { by: a, target: b },
        };
        steps.push((at, fault));
    }
    steps.sort_by_key(|(at, _)| *at);
    Schedule {
        seed,
        nodes,
        downing,
        monitors: None,
        steps,
        heal_at: 25_000,
    }
}

/// What a successful run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Time from healing to one converged cluster.
    pub settle_ms: Millis,
    /// Simulated time in all.
    pub simulated_ms: Millis,
}

/// Why a run failed, with everything needed to replay and understand it.
#[derive(Debug)]
pub struct Failure {
    /// The schedule.
    pub schedule: Schedule,
    /// What went wrong.
    pub reason: String,
    /// The simulator's trace of steps.
    pub trace: Vec<String>,
    /// Every view at the end.
    pub views: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} FAILED: {}", self.schedule.seed, self.reason)?;
        writeln!(f, "replay with: SIM_SEED={} cargo test --release -p shared --test simulation replay_one_seed -- --ignored --nocapture", self.schedule.seed)?;
        write!(f, "{}", self.schedule)?;
        writeln!(f, "trace:")?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "views at the end:\n{}", self.views)
    }
}

fn apply(sim: &mut Sim, fault: &Fault) {
    match fault {
        Fault::Crash(a) => sim.crash(*a),
        Fault::PowerOff(a) => sim.power_off(*a),
        Fault::Restart(a) => {
            if !sim.is_running(*a) {
                sim.start(*a);
            }
        }
        Fault::Freeze(a, d) => sim.freeze(*a, *d),
        Fault::Cut(a, b) => sim.cut(*a, *b),
        Fault::CutOneWay(a, b) => sim.cut_one_way(*a, *b),
        Fault::Isolate(a) => sim.isolate(*a),
        Fault::Partition(side) => sim.partition(side),
        Fault::RefusingPartition(side) => sim.refusing_partition(side),
        Fault::Slow(a, b, d) => sim.slow_link(*a, *b, *d, *d),
        Fault::Loss(p) => sim.set_loss(*p),
        Fault::Duplicate(p) => sim.set_duplicate(*p),
        Fault::Reorder(j) => sim.set_reorder(*j),
        Fault::Leave(a) => {
            let _ = sim.leave(*a);
        }
        Fault::Down { by, target } => {
            let address = sim.address(*target).clone();
            let _ = sim.command(*by, Command::Down(address));
        }
        Fault::HealNetwork => sim.heal_network(),
    }
}

/// Whether every slot that has not left runs, is Up in one converged cluster.
fn healed(sim: &Sim) -> bool {
    let expected: Vec<Slot> = (0..sim.len()).filter(|s| !sim.has_left(*s)).collect();
    sim.converged_as_one()
        && expected.iter().all(|s| {
            sim.node(*s)
                .is_some_and(|n| n.is_member() && n.status() == Some(MemberStatus::Up))
        })
        && sim
            .view(expected[0])
            .is_some_and(|g| g.members.len() == expected.len())
}

/// Plays `schedule` and checks safety throughout and liveness after healing.
pub fn run_schedule(schedule: &Schedule) -> Result<Outcome, Box<Failure>> {
    // Every node is a seed, as with DNS discovery of all pods: with a partial seed list
    // a side whose seeds were all downed and restarted forms a second cluster beside
    // the survivors (Akka behaves the same; ALGORITHM.md explains it).
    let mut config = SimConfig::demo(schedule.nodes, schedule.seed);
    config.seed_nodes = schedule.nodes;
    config.settings.downing.strategy = schedule.downing.clone();
    if let Some(monitors) = schedule.monitors {
        config.settings.monitored_by_nr_of_members = monitors;
    }
    let mut sim = Sim::new(config);
    let fail = |sim: &Sim, reason: String| {
        Box::new(Failure {
            schedule: schedule.clone(),
            reason,
            trace: sim.trace().to_vec(),
            views: sim.describe(),
        })
    };
    sim.start_all();
    let all: Vec<Slot> = (0..schedule.nodes).collect();
    if sim.run_until(20_000, |s| s.all_up(&all)).is_none() {
        return Err(fail(&sim, "the cluster did not form within 20 s".into()));
    }
    play_faults(&mut sim, schedule).map_err(|v| fail(&sim, v))?;
    match settle_after_healing(&mut sim).map_err(|v| fail(&sim, v))? {
        Some(settle_ms) => Ok(Outcome {
            settle_ms,
            simulated_ms: sim.now,
        }),
        None => Err(fail(
            &sim,
            format!(
                "no single converged cluster {} s after healing",
                SETTLE_LIMIT_MS / 1000
            ),
        )),
    }
}

/// Applies the schedule's faults at their times (counted from now, the cluster just
/// formed) and runs on to its healing time; the first broken invariant, if any.
fn play_faults(sim: &mut Sim, schedule: &Schedule) -> Result<(), String> {
    let origin = sim.now;
    for (at, fault) in &schedule.steps {
        let at = origin + at;
        if at > sim.now {
            sim.run_for(at - sim.now);
        }
        apply(sim, fault);
        check(sim)?;
    }
    let heal_at = origin + schedule.heal_at;
    if heal_at > sim.now {
        sim.run_for(heal_at - sim.now);
    }
    check(sim)
}

/// Heals the network, resumes frozen nodes and restarts stopped ones (except nodes
/// that left on purpose), repeatedly, as a supervisor would: a node may be downed
/// again while the cluster heals. How long one converged cluster took to form, or
/// None past the limit; or the first broken invariant.
fn settle_after_healing(sim: &mut Sim) -> Result<Option<u64>, String> {
    sim.heal_network();
    for slot in 0..sim.len() {
        if sim.is_frozen(slot) {
            sim.unfreeze(slot);
        }
    }
    let healed_at = sim.now;
    loop {
        for slot in 0..sim.len() {
            if !sim.is_running(slot) && !sim.has_left(slot) {
                sim.start(slot);
            }
        }
        if let Some(t) = sim.run_until(1_000, healed) {
            if t == 0 || healed(sim) {
                check(sim)?;
                return Ok(Some(sim.now - healed_at));
            }
        }
        check(sim)?;
        if sim.now - healed_at > SETTLE_LIMIT_MS {
            return Ok(None);
        }
    }
}

/// The simulator's first broken invariant, as text.
fn check(sim: &Sim) -> Result<(), String> {
    sim.violation().map_or(Ok(()), |v| Err(v.to_string()))
}
