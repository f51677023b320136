//! Medians, spreads, the side-by-side tables, the CSV of every sample.

use crate::cluster::{Profile, System};
use crate::soak::{Condition, Soak};
use crate::Options;
use std::fmt::Write;

/// One measured value (seconds, bytes/s or a count); None: timed out / never happened.
pub struct Sample {
    pub system: System,
    pub profile: Profile,
    pub size: usize,
    pub rep: usize,
    pub metric: String,
    pub value: Option<f64>,
}

/// (label, metric key, unit).
pub const ROWS: &[(&str, &str, &str)] = &[
    ("cluster forms: all see all", "form", "s"),
    ("SIGKILL: first survivor detects", "kill.first", "s"),
    ("SIGKILL: last survivor detects", "kill.last", "s"),
    ("SIGKILL: declared down everywhere", "kill.down", "s"),
    ("SIGKILL: removed everywhere", "kill.removed", "s"),
    ("SIGSTOP: first survivor detects", "stop.first", "s"),
    ("SIGSTOP: last survivor detects", "stop.last", "s"),
    ("SIGSTOP: declared down everywhere", "stop.down", "s"),
    ("cut off: first survivor detects", "cut.first", "s"),
    ("cut off: last survivor detects", "cut.last", "s"),
    ("cut off: declared down everywhere", "cut.down", "s"),
    (
        "cut off: members the cut-off one declares down (others: split brain)",
        "cut.victim_downs",
        "count",
    ),
    (
        "cut off: the cut-off member stops itself (1 yes, 0 no)",
        "cut.victim_stops",
        "count",
    ),
    ("new member seen alive by all", "join", "s"),
    ("bytes/s sent per member (steady)", "bytes", "B/s"),
    (
        "healthy members suspected during scenarios",
        "spurious",
        "count",
    ),
];

/// Values of one cell.
pub fn values(
    samples: &[Sample],
    system: System,
    profile: Profile,
    size: usize,
    metric: &str,
) -> Vec<Option<f64>> {
    samples
        .iter()
        .filter(|s| s.system == system && s.profile == profile && s.size == size)
        .filter(|s| {
            if metric == "spurious" {
                s.metric.ends_with(".spurious")
            } else {
                s.metric == metric
            }
        })
        .map(|s| s.value)
        .collect()
}

pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn cell(values: &[Option<f64>], unit: &str) -> String {
    if values.is_empty() {
        return "–".into();
    }
    let ok: Vec<f64> = values.iter().flatten().copied().collect();
    let missing = values.len() - ok.len();
    let Some(m) = median(&ok) else {
        return format!("n/a ({missing}/{} none)", values.len());
    };
    let lo = ok.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ok.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let f = |x: f64| match unit {
        "s" => format!("{x:.2}"),
        _ => format!("{x:.0}"),
    };
    let mut text = if ok.len() > 1 && hi > lo {
        format!("{} ({}–{})", f(m), f(lo), f(hi))
    } else {
        f(m)
    };
    if missing > 0 {
        let _ = write!(text, " [{missing}/{} none]", values.len());
    }
    text
}

pub fn render(o: &Options, samples: &[Sample], soaks: &[Soak], minutes: f64, load: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Membership side by side: ours, foca, chitchat\n");
    let _ = writeln!(out, "- command: `{}`", o.command);
    let _ = writeln!(
        out,
        "- finished: {} (UTC), {:.0} minutes; {} repetition(s) per cell, sizes {:?}; machine: {} cores, loopback only",
        utc_now(),
        minutes,
        o.reps,
        o.sizes,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let _ = writeln!(out, "- {load}");
    let _ = writeln!(
        out,
        "- cells: median (min–max) over repetitions, in seconds unless marked; `[k/n none]`: in k of n repetitions it did not happen within the limit (90 s for failures, 60 s for joins); `n/a`: never happens in that system (see README)\n"
    );
    metric_tables(&mut out, o, samples);
    bandwidth_table(&mut out, o, samples);
    soak_table(&mut out, soaks);
    let _ = writeln!(
        out,
        "Plots: `detection.svg` (time until the last survivor detects, every sample), `down.svg` (time until declared down everywhere), `bandwidth.svg` (bytes/s per member against size). Raw samples: `samples.csv`."
    );
    out
}

/// One table per profile and size: every metric, one column per system.
fn metric_tables(out: &mut String, o: &Options, samples: &[Sample]) {
    let systems = &o.systems;
    for &profile in &o.profiles {
        for &size in &o.sizes {
            let _ = writeln!(*out, "## profile `{}`, {} members\n", profile.name(), size);
            let _ = write!(*out, "| |");
            for s in systems {
                let _ = write!(*out, " {} |", s.name());
            }
            let _ = write!(*out, "\n|---|");
            for _ in systems {
                let _ = write!(*out, "---|");
            }
            let _ = writeln!(*out);
            for (label, metric, unit) in ROWS {
                let unit_note = if *unit == "s" {
                    String::new()
                } else {
                    format!(" ({unit})")
                };
                let _ = write!(*out, "| {label}{unit_note} |");
                for &s in systems {
                    let text = if metric.ends_with(".removed") && s != System::Ours {
                        "n/a (kept 24 h)".to_string()
                    } else {
                        cell(&values(samples, s, profile, size, metric), unit)
                    };
                    let _ = write!(*out, " {text} |");
                }
                let _ = writeln!(*out);
            }
            let _ = writeln!(*out);
        }
    }
}

/// Bytes per second per member, against cluster size.
fn bandwidth_table(out: &mut String, o: &Options, samples: &[Sample]) {
    let systems = &o.systems;
    let _ = writeln!(
        *out,
        "## bytes/s sent per member against cluster size (median)\n"
    );
    let _ = write!(*out, "| profile | system |");
    for size in &o.sizes {
        let _ = write!(*out, " n={size} |");
    }
    let _ = write!(*out, "\n|---|---|");
    for _ in &o.sizes {
        let _ = write!(*out, "---|");
    }
    let _ = writeln!(*out);
    for &profile in &o.profiles {
        for &s in systems {
            let _ = write!(*out, "| {} | {} |", profile.name(), s.name());
            for &size in &o.sizes {
                let v: Vec<f64> = values(samples, s, profile, size, "bytes")
                    .into_iter()
                    .flatten()
                    .collect();
                let _ = write!(
                    *out,
                    " {} |",
                    median(&v).map_or("–".into(), |m| format!("{m:.0}"))
                );
            }
            let _ = writeln!(*out);
        }
    }
    let _ = writeln!(*out);
}

/// False alarms under each soak condition.
fn soak_table(out: &mut String, soaks: &[Soak]) {
    if soaks.is_empty() {
        return;
    }
    let _ = writeln!(
        *out,
        "## false alarms in the soaks\n\nEvery suspicion (ours: UnreachableMember; foca: suspect; chitchat: dead) or down of a live member, by any member, during the soak and 5 s after. Conditions: saturated = {}; starved = {}; lossy = {}.\n",
        Condition::Saturated.describe(),
        Condition::Starved.describe(),
        Condition::Lossy.describe()
    );
    let _ = writeln!(
        *out,
        "| condition | profile | system | members | seconds | suspicions | downs |"
    );
    let _ = writeln!(*out, "|---|---|---|---|---|---|---|");
    for s in soaks {
        let formed = if s.formed {
            ""
        } else {
            " (cluster did not form)"
        };
        let _ = writeln!(
            *out,
            "| {} | {} | {} | {} | {} | {}{formed} | {} |",
            s.condition.name(),
            s.profile.name(),
            s.system.name(),
            s.size,
            s.secs,
            s.suspicions,
            s.downs
        );
    }
    let _ = writeln!(*out);
}

pub fn csv(samples: &[Sample], soaks: &[Soak]) -> String {
    let mut out = String::from("system,profile,size,rep,metric,value\n");
    for s in samples {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            s.system.name(),
            s.profile.name(),
            s.size,
            s.rep,
            s.metric,
            s.value.map_or(String::new(), |v| format!("{v:.3}"))
        );
    }
    for s in soaks {
        let _ = writeln!(
            out,
            "{},{},{},0,soak.{}.suspicions,{}",
            s.system.name(),
            s.profile.name(),
            s.size,
            s.condition.name(),
            s.suspicions
        );
        let _ = writeln!(
            out,
            "{},{},{},0,soak.{}.downs,{}",
            s.system.name(),
            s.profile.name(),
            s.size,
            s.condition.name(),
            s.downs
        );
    }
    out
}

/// Samples back from `csv` output (soak rows are skipped).
pub fn parse_csv(text: &str) -> Vec<Sample> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 6 || f[4].starts_with("soak.") {
                return None;
            }
            Some(Sample {
                system: System::ALL.into_iter().find(|s| s.name() == f[0])?,
                profile: Profile::ALL.into_iter().find(|p| p.name() == f[1])?,
                size: f[2].parse().ok()?,
                rep: f[3].parse().ok()?,
                metric: f[4].to_string(),
                value: f[5].parse().ok(),
            })
        })
        .collect()
}

/// `YYYY-MM-DD HH:MM` in UTC, from the system clock (no date crate needed).
pub fn utc_now() -> String {
    let secs = peers::now_ms() / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}
