//! The false-alarm soaks: a formed cluster of live members under a stress that must
//! not make any member suspect or down another. Issue 15 asks for three conditions:
//! both cores saturated; one member starved of CPU; 20% loss on one member's links.
//! Every suspicion (ours: UnreachableMember; foca: suspect; chitchat: dead) or down
//! of a live member, by any member, during the soak and 5 s after, is counted.

use crate::cluster::{self, Cluster, Env, Profile, System};
use crate::{Options, DOWNED, FORM_LIMIT, SUSPECTED};
use peers::now_ms;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// One false-alarm soak.
pub struct Soak {
    pub system: System,
    pub profile: Profile,
    pub condition: Condition,
    pub size: usize,
    pub secs: u64,
    pub formed: bool,
    pub suspicions: usize,
    pub downs: usize,
}

/// What a soak puts the cluster through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Two busy-loop threads in the harness, one per core.
    Saturated,
    /// The last member niced to 19 and pinned, every thread, to core 1, beside two
    /// busy-loop processes pinned there at the normal priority.
    Starved,
    /// The last member drops 20% of what it sends to and receives from every peer.
    Lossy,
}

/// The loss of the `Lossy` condition.
pub const LOSS: f64 = 0.2;

impl Condition {
    pub const ALL: [Condition; 3] = [Condition::Saturated, Condition::Starved, Condition::Lossy];

    pub fn name(self) -> &'static str {
        match self {
            Condition::Saturated => "saturated",
            Condition::Starved => "starved",
            Condition::Lossy => "lossy",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Condition::Saturated => "both cores saturated (2 busy-loop threads)",
            Condition::Starved => {
                "one member starved (nice 19, pinned to core 1 beside 2 busy loops)"
            }
            Condition::Lossy => "20% loss both ways on every link of one member",
        }
    }
}

/// Every soak asked for: each condition, profile and system in turn.
pub fn every_soak(env: &Env, o: &Options) -> Vec<Soak> {
    let mut soaks = Vec::new();
    if o.soak_secs == 0 {
        return soaks;
    }
    for &condition in &o.soak_conditions {
        for &profile in &o.profiles {
            for &system in &o.systems {
                let s = soak(env, o, system, profile, condition);
                println!(
                    "  soak {} {} {}: {} suspicion(s), {} down(s)",
                    condition.name(),
                    system.name(),
                    profile.name(),
                    s.suspicions,
                    s.downs
                );
                soaks.push(s);
            }
        }
    }
    soaks
}

fn soak(env: &Env, o: &Options, system: System, profile: Profile, condition: Condition) -> Soak {
    let tag = format!(
        "{}-{}-soak-{}",
        system.name(),
        profile.name(),
        condition.name()
    );
    let mut c = Cluster::new(env, system, profile, o.soak_size, &tag);
    c.start();
    let formed = c.wait(FORM_LIMIT, |c| c.all_see_all().is_some());
    std::thread::sleep(Duration::from_secs(5));
    let t0 = now_ms();
    let stress = Stress::apply(&mut c, condition);
    std::thread::sleep(Duration::from_secs(o.soak_secs));
    stress.end(&mut c);
    // Late consequences of the stressed period still count.
    std::thread::sleep(Duration::from_secs(5));
    let t1 = now_ms();
    let obs = c.obs.lock().expect("obs");
    let window = |e: &&cluster::Event| e.t >= t0 && e.t <= t1;
    let count = |kinds: &[cluster::Kind]| {
        obs.events
            .iter()
            .filter(window)
            .filter(|e| kinds.contains(&e.kind))
            .count()
    };
    let (suspicions, downs) = (count(SUSPECTED), count(DOWNED));
    drop(obs);
    c.kill_all();
    Soak {
        system,
        profile,
        condition,
        size: o.soak_size,
        secs: o.soak_secs,
        formed,
        suspicions,
        downs,
    }
}

/// A condition in force, undone by `end`.
struct Stress {
    condition: Condition,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    hogs: Vec<Child>,
}

impl Stress {
    fn apply(c: &mut Cluster, condition: Condition) -> Stress {
        let mut stress = Stress {
            condition,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            hogs: Vec::new(),
        };
        let victim = c.members.len() - 1;
        match condition {
            Condition::Saturated => {
                stress.threads = (0..2)
                    .map(|_| busy_loop(Arc::clone(&stress.stop)))
                    .collect()
            }
            Condition::Starved => {
                if let Some(pid) = c.members[victim].pid() {
                    starve(pid);
                }
                stress.hogs = (0..2).filter_map(|_| pinned_busy_loop(1)).collect();
            }
            Condition::Lossy => c.set_loss(victim, LOSS),
        }
        stress
    }

    fn end(mut self, c: &mut Cluster) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for mut hog in self.hogs.drain(..) {
            let _ = hog.kill();
            let _ = hog.wait();
        }
        if self.condition == Condition::Lossy {
            c.set_loss(c.members.len() - 1, 0.0);
        }
    }
}

fn busy_loop(stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut x: u64 = 1;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            std::hint::black_box(x);
        }
    })
}

/// A busy-loop process pinned to `core`.
fn pinned_busy_loop(core: usize) -> Option<Child> {
    Command::new("taskset")
        .args(["-c", &core.to_string(), "sh", "-c", "while :; do :; done"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// Pins every thread of `pid` to core 1 and gives each the lowest priority, nice 19
/// (nice is per thread on Linux, so each task is reniced).
fn starve(pid: u32) {
    let quiet = |cmd: &mut Command| {
        let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
    };
    quiet(Command::new("taskset").args(["-a", "-p", "-c", "1", &pid.to_string()]));
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for tid in tasks {
        quiet(Command::new("renice").args(["-n", "19", "-p", &tid]));
    }
}
