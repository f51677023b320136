//! The side-by-side harness: our nodes, foca agents and chitchat agents as OS
//! processes on 127.0.0.1, the same scenarios for each, tables, CSV, SVG plots.
//!
//! `cargo run --release --manifest-path peers/Cargo.toml --bin compare -- [--quick]`
//! Flags: `--quick` (sizes 3,10; 1 repetition; 20 s soak; 10 s byte window),
//! `--reps N`, `--sizes 3,10,25`, `--systems ours,foca,chitchat`,
//! `--profiles defaults,common`, `--soak-secs S` (0: no soak), `--soak-size N`,
//! `--soak-conditions saturated,starved,lossy` (default all three; `--sizes ""` runs
//! only the soaks),
//! `--bytes-secs S`, `--node PATH`, `--out DIR`, `--replot samples.csv` (plots only).

mod cluster;
mod plot;
mod report;
mod soak;

use cluster::{Cluster, Env, Kind, Profile, System};
use peers::now_ms;
use report::Sample;
use soak::Soak;
use std::path::PathBuf;
use std::time::Duration;

pub struct Options {
    pub quick: bool,
    pub reps: usize,
    pub sizes: Vec<usize>,
    pub systems: Vec<System>,
    pub profiles: Vec<Profile>,
    pub soak_secs: u64,
    pub soak_size: usize,
    pub soak_conditions: Vec<soak::Condition>,
    pub bytes_secs: u64,
    pub out: PathBuf,
    pub node: PathBuf,
    pub command: String,
    pub replot: Option<PathBuf>,
}

/// Each of `names`, looked up among `all` by `name`; `what` names the kind in the error.
fn named<'a, T: Copy>(
    names: impl Iterator<Item = &'a str>,
    all: &[T],
    name: fn(T) -> &'static str,
    what: &str,
) -> Result<Vec<T>, String> {
    names
        .map(|s| {
            all.iter()
                .copied()
                .find(|x| name(*x) == s)
                .ok_or(format!("unknown {what} {s}"))
        })
        .collect()
}

fn parse_options() -> Result<Options, String> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = Options {
        quick,
        reps: if quick { 1 } else { 3 },
        sizes: if quick { vec![3, 10] } else { vec![3, 10, 25] },
        systems: System::ALL.to_vec(),
        profiles: Profile::ALL.to_vec(),
        soak_secs: if quick { 20 } else { 120 },
        soak_size: 10,
        soak_conditions: soak::Condition::ALL.to_vec(),
        bytes_secs: if quick { 10 } else { 20 },
        out: manifest.join("results"),
        node: manifest.join("../target/release/node"),
        command: format!(
            "cargo run --release --manifest-path peers/Cargo.toml --bin compare --{}",
            args.iter().map(|a| format!(" {a}")).collect::<String>()
        ),
        replot: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--quick" {
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let list = || value.split(',').filter(|s| !s.is_empty());
        match flag.as_str() {
            "--reps" => o.reps = value.parse().map_err(|e| format!("--reps: {e}"))?,
            "--sizes" => {
                o.sizes = list()
                    .map(|s| s.parse::<usize>().map_err(|e| format!("--sizes: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--systems" => o.systems = named(list(), &System::ALL, System::name, "system")?,
            "--profiles" => o.profiles = named(list(), &Profile::ALL, Profile::name, "profile")?,
            "--soak-secs" => {
                o.soak_secs = value.parse().map_err(|e| format!("--soak-secs: {e}"))?
            }
            "--soak-conditions" => {
                o.soak_conditions = named(
                    list(),
                    &soak::Condition::ALL,
                    soak::Condition::name,
                    "soak condition",
                )?
            }
            "--soak-size" => {
                o.soak_size = value.parse().map_err(|e| format!("--soak-size: {e}"))?
            }
            "--bytes-secs" => {
                o.bytes_secs = value.parse().map_err(|e| format!("--bytes-secs: {e}"))?
            }
            "--out" => o.out = PathBuf::from(value),
            "--node" => o.node = PathBuf::from(value),
            "--replot" => o.replot = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if o.sizes.iter().any(|s| *s < 3) {
        return Err("sizes must be at least 3".into());
    }
    Ok(o)
}

const FORM_LIMIT: Duration = Duration::from_secs(90);
/// How long a cut-off member that declared everyone down has to exit before it counts
/// as carrying on alone.
const EXIT_GRACE_MS: u64 = 3_000;
const FAILURE_LIMIT: Duration = Duration::from_secs(90);
const JOIN_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Failure {
    Kill,
    Stop,
    Cut,
}

impl Failure {
    fn name(self) -> &'static str {
        match self {
            Failure::Kill => "kill",
            Failure::Stop => "stop",
            Failure::Cut => "cut",
        }
    }
}

const SUSPECTED: &[Kind] = &[Kind::Suspect, Kind::Down, Kind::Removed];
const DOWNED: &[Kind] = &[Kind::Down, Kind::Removed];

struct Run<'a> {
    samples: &'a mut Vec<Sample>,
    system: System,
    profile: Profile,
    size: usize,
    rep: usize,
}

impl Run<'_> {
    fn push(&mut self, metric: &str, value: Option<f64>) {
        self.samples.push(Sample {
            system: self.system,
            profile: self.profile,
            size: self.size,
            rep: self.rep,
            metric: metric.to_string(),
            value,
        });
    }
}

fn secs(from: u64, to: Option<u64>) -> Option<f64> {
    to.map(|t| t.saturating_sub(from) as f64 / 1000.0)
}

/// The victim: the oldest running member that is not a seed (the first seed is never
/// picked), so each scenario hits a member that has been in the cluster a while.
fn pick_victim(c: &Cluster) -> usize {
    let running = c.running();
    running
        .iter()
        .copied()
        .find(|i| !c.seeds.contains(&c.members[*i].addr))
        .or_else(|| running.iter().copied().find(|i| *i > 0))
        .expect("a victim")
}

/// Mean bytes/s sent per running member over `window`.
fn bandwidth(c: &Cluster, window: Duration) -> Option<f64> {
    let live = c.running();
    let before: Vec<Option<(u64, u64)>> = live.iter().map(|i| c.bytes_sent(*i)).collect();
    std::thread::sleep(window);
    let after: Vec<Option<(u64, u64)>> = live.iter().map(|i| c.bytes_sent(*i)).collect();
    let rates: Vec<f64> = before
        .iter()
        .zip(&after)
        .filter_map(|(b, a)| {
            let ((t1, b1), (t2, b2)) = ((*b)?, (*a)?);
            (t2 > t1).then(|| (b2.saturating_sub(b1)) as f64 * 1000.0 / (t2 - t1) as f64)
        })
        .collect();
    (rates.len() == live.len() && !rates.is_empty())
        .then(|| rates.iter().sum::<f64>() / rates.len() as f64)
}

/// What the cut-off member concluded on its own side of the cut, once it has either
/// stopped or declared every other member down (or the failure limit passed): how many
/// of the others it declared down (carrying on alone after that is a split brain) and
/// whether it stopped itself.
fn cut_off_view(c: &mut Cluster, run: &mut Run, victim: usize, survivors: &[String], t0: u64) {
    let v = c.members[victim].addr.clone();
    let downed_by_victim = |c: &Cluster| -> usize {
        let obs = c.obs.lock().expect("obs");
        survivors
            .iter()
            .filter(|s| obs.first(&v, s, DOWNED, t0).is_some())
            .count()
    };
    let deadline = t0 + FAILURE_LIMIT.as_millis() as u64;
    let mut all_downed_at = None;
    let stopped = loop {
        if c.members[victim].has_exited() {
            break true;
        }
        // Declaring everyone down is a split brain only if it then carries on: a
        // down-all decision downs the decider too, which exits a moment later.
        if downed_by_victim(c) == survivors.len() {
            let since = *all_downed_at.get_or_insert(now_ms());
            if now_ms() > since + EXIT_GRACE_MS {
                break false;
            }
        }
        if now_ms() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    run.push("cut.victim_downs", Some(downed_by_victim(c) as f64));
    run.push("cut.victim_stops", Some(if stopped { 1.0 } else { 0.0 }));
}

fn failure(c: &mut Cluster, run: &mut Run, failure: Failure) {
    let victim = pick_victim(c);
    let v = c.members[victim].addr.clone();
    let survivors: Vec<String> = c
        .running()
        .into_iter()
        .filter(|i| *i != victim)
        .map(|i| c.members[i].addr.clone())
        .collect();
    let t0 = now_ms();
    match failure {
        Failure::Kill => c.members[victim].signal("KILL"),
        Failure::Stop => c.members[victim].signal("STOP"),
        Failure::Cut => c.cut_off(victim),
    }
    let ours = c.system == System::Ours;
    let done = |c: &Cluster| {
        let obs = c.obs.lock().expect("obs");
        survivors.iter().all(|s| {
            obs.first(s, &v, DOWNED, t0).is_some()
                && (!ours || obs.first(s, &v, &[Kind::Removed], t0).is_some())
        })
    };
    c.wait(FAILURE_LIMIT, done);
    if failure == Failure::Cut {
        cut_off_view(c, run, victim, &survivors, t0);
    }
    let end = now_ms();
    {
        let obs = c.obs.lock().expect("obs");
        let per = |kinds: &[Kind]| -> Vec<Option<u64>> {
            survivors
                .iter()
                .map(|s| obs.first(s, &v, kinds, t0))
                .collect()
        };
        let detected = per(SUSPECTED);
        let downed = per(DOWNED);
        let removed = per(&[Kind::Removed]);
        let all = |xs: &[Option<u64>]| -> Option<u64> {
            xs.iter()
                .copied()
                .collect::<Option<Vec<u64>>>()?
                .into_iter()
                .max()
        };
        let first = detected.iter().flatten().min().copied();
        let spurious = obs
            .events
            .iter()
            .filter(|e| e.t >= t0 && e.t <= end && SUSPECTED.contains(&e.kind))
            .filter(|e| survivors.contains(&e.observer) && survivors.contains(&e.peer))
            .count();
        let name = failure.name();
        run.push(&format!("{name}.first"), secs(t0, first));
        run.push(&format!("{name}.last"), secs(t0, all(&detected)));
        run.push(&format!("{name}.down"), secs(t0, all(&downed)));
        run.push(&format!("{name}.removed"), secs(t0, all(&removed)));
        run.push(&format!("{name}.spurious"), Some(spurious as f64));
    }
    if failure == Failure::Stop {
        c.members[victim].signal("CONT");
        std::thread::sleep(Duration::from_millis(500));
    }
    c.members[victim].kill();
}

fn join(c: &mut Cluster, run: &mut Run) {
    let survivors: Vec<String> = c
        .running()
        .iter()
        .map(|i| c.members[*i].addr.clone())
        .collect();
    let t0 = now_ms();
    let j = c.join();
    let new = c.members[j].addr.clone();
    let done = |c: &Cluster| {
        let obs = c.obs.lock().expect("obs");
        survivors
            .iter()
            .all(|s| matches!(obs.view(s, &new), Some((Kind::Alive, _))))
    };
    c.wait(JOIN_LIMIT, done);
    let obs = c.obs.lock().expect("obs");
    let seen: Option<Vec<u64>> = survivors
        .iter()
        .map(|s| obs.first(s, &new, &[Kind::Alive], t0))
        .collect();
    drop(obs);
    run.push("join", secs(t0, seen.and_then(|v| v.into_iter().max())));
    // Let the new member see everyone too before the next scenario.
    c.wait(JOIN_LIMIT, |c| c.all_see_all().is_some());
    std::thread::sleep(Duration::from_secs(2));
}

fn one_run(env: &Env, o: &Options, run: &mut Run) {
    let tag = format!(
        "{}-{}-{}-r{}",
        run.system.name(),
        run.profile.name(),
        run.size,
        run.rep
    );
    let mut c = Cluster::new(env, run.system, run.profile, run.size, &tag);
    let t0 = c.start();
    let formed = c.wait(FORM_LIMIT, |c| c.all_see_all().is_some());
    let formed_at = if formed { c.all_see_all() } else { None };
    run.push("form", secs(t0, formed_at));
    if !formed {
        eprintln!("  {tag}: the cluster did not form within {FORM_LIMIT:?}");
        c.kill_all();
        return;
    }
    std::thread::sleep(Duration::from_secs(2));
    run.push("bytes", bandwidth(&c, Duration::from_secs(o.bytes_secs)));
    for f in [Failure::Kill, Failure::Stop, Failure::Cut] {
        failure(&mut c, run, f);
        join(&mut c, run);
    }
    c.kill_all();
}

/// `/proc/loadavg`'s first three fields: how busy the machine was besides the harness.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let o = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("compare: {e}");
            std::process::exit(2);
        }
    };
    if let Some(csv) = &o.replot {
        replot(&o, csv);
        return;
    }
    let env = environment(&o);
    let started = now_ms();
    let load_before = loadavg();
    println!(
        "compare: systems {:?}, profiles {:?}, sizes {:?}, {} repetition(s), soak {} s at {} members; logs in {}",
        o.systems.iter().map(|s| s.name()).collect::<Vec<_>>(),
        o.profiles.iter().map(|p| p.name()).collect::<Vec<_>>(),
        o.sizes,
        o.reps,
        o.soak_secs,
        o.soak_size,
        env.work.display()
    );
    let samples = every_run(&env, &o);
    let soaks = soak::every_soak(&env, &o);
    let minutes = (now_ms() - started) as f64 / 60_000.0;
    let load = format!(
        "load average (1, 5, 15 min) at start: {load_before}; at end: {}",
        loadavg()
    );
    write_results(
        &o,
        &samples,
        &soaks,
        &report::render(&o, &samples, &soaks, minutes, &load),
    );
    let _ = std::fs::remove_dir_all(&env.work);
}

/// Plots again from a samples.csv (sizes, systems and profiles from the flags).
fn replot(o: &Options, csv: &std::path::Path) {
    let text = std::fs::read_to_string(csv).expect("samples.csv");
    let samples = report::parse_csv(&text);
    std::fs::create_dir_all(&o.out).expect("results folder");
    if let Err(e) = plot::all(o, &samples) {
        eprintln!("compare: plots failed: {e}");
    }
}

/// The three binaries (ours from the flags, the agents beside this one) and a work
/// folder; exits if a binary is missing.
fn environment(o: &Options) -> Env {
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|p| p.to_path_buf()))
        .expect("binary folder");
    let work = std::env::temp_dir().join(format!("peers-compare-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work folder");
    let env = Env {
        node: o.node.clone(),
        foca: bin_dir.join("foca-agent"),
        chitchat: bin_dir.join("chitchat-agent"),
        work,
    };
    for (what, path) in [
        ("node", &env.node),
        ("foca-agent", &env.foca),
        ("chitchat-agent", &env.chitchat),
    ] {
        if !path.exists() {
            eprintln!("compare: {what} not found at {}", path.display());
            std::process::exit(2);
        }
    }
    env
}

/// Every repetition of every size, profile and system.
fn every_run(env: &Env, o: &Options) -> Vec<Sample> {
    let mut samples = Vec::new();
    for rep in 0..o.reps {
        for &size in &o.sizes {
            for &profile in &o.profiles {
                for &system in &o.systems {
                    let t = std::time::Instant::now();
                    let mut run = Run {
                        samples: &mut samples,
                        system,
                        profile,
                        size,
                        rep,
                    };
                    one_run(env, o, &mut run);
                    println!(
                        "  done {} {} n={} rep {} in {:.0} s",
                        system.name(),
                        profile.name(),
                        size,
                        rep,
                        t.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
    samples
}

/// The summary (printed too), the raw samples and the plots, in the results folder.
fn write_results(o: &Options, samples: &[Sample], soaks: &[Soak], text: &str) {
    println!("{text}");
    std::fs::create_dir_all(&o.out).expect("results folder");
    std::fs::write(o.out.join("summary.md"), text).expect("summary.md");
    std::fs::write(o.out.join("samples.csv"), report::csv(samples, soaks)).expect("samples.csv");
    if let Err(e) = plot::all(o, samples) {
        eprintln!("compare: plots failed: {e}");
    }
    println!("wrote {}", o.out.display());
}
