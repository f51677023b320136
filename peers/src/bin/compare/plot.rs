//! SVG plots with `plotters` (SVG backend only: no fonts or system libraries needed).

use crate::cluster::{Profile, System};
use crate::report::{median, values, Sample};
use crate::Options;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

fn color(system: System) -> RGBColor {
    match system {
        System::Ours => RGBColor(31, 119, 180),
        System::Foca => RGBColor(214, 39, 40),
        System::Chitchat => RGBColor(44, 160, 44),
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

pub fn all(o: &Options, samples: &[Sample]) -> Result<()> {
    strips(
        o,
        samples,
        "last",
        "time until the last survivor detects the failure (s)",
        &o.out.join("detection.svg"),
    )?;
    strips(
        o,
        samples,
        "down",
        "time until declared down everywhere (s)",
        &o.out.join("down.svg"),
    )?;
    bandwidth(o, samples, &o.out.join("bandwidth.svg"))
}

/// One panel per profile; per scenario and system, every sample as a point (shape:
/// cluster size) and the median as a bar.
fn strips(
    o: &Options,
    samples: &[Sample],
    which: &str,
    title: &str,
    path: &std::path::Path,
) -> Result<()> {
    let scenarios = [("SIGKILL", "kill"), ("SIGSTOP", "stop"), ("cut off", "cut")];
    let systems = &o.systems;
    let ymax = highest(samples, which) * 1.12;
    let width = 520 * o.profiles.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let panels = root.split_evenly((1, o.profiles.len().max(1)));
    let categories = scenarios.len() * systems.len();
    for (panel, &profile) in panels.iter().zip(&o.profiles) {
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("profile: {}", profile.name()), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5f64..(categories as f64 - 0.5), 0f64..ymax)?;
        let names: Vec<&str> = systems.iter().map(|s| s.name()).collect();
        let tick = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names[i as usize % names.len()].to_string()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(categories + 1)
            .x_label_formatter(&tick)
            .y_desc("seconds")
            .x_desc("shapes: circle n=3, triangle n=10, square n=25; bar: median")
            .draw()?;
        for (si, (label, key)) in scenarios.iter().enumerate() {
            let x = (si * systems.len()) as f64 + (systems.len() as f64 - 1.0) / 2.0;
            chart.draw_series(std::iter::once(Text::new(
                label.to_string(),
                (x - 0.45, ymax * 0.98),
                ("sans-serif", 14),
            )))?;
            for (yi, &system) in systems.iter().enumerate() {
                let cx = (si * systems.len() + yi) as f64;
                let metric = format!("{key}.{which}");
                let at = Column { cx, ymax };
                draw_column(&mut chart, o, samples, (profile, system), &metric, at)?;
            }
        }
    }
    root.present()?;
    Ok(())
}

/// The largest value of the metric `which` (at least 1).
fn highest(samples: &[Sample], which: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric.ends_with(&format!(".{which}")))
        .filter_map(|s| s.value)
        .fold(1.0, f64::max)
}

/// Where one system's column of a scenario stands, and the chart's height.
struct Column {
    cx: f64,
    ymax: f64,
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One system's samples of `metric` as points (shape: cluster size) and their
/// median as a bar.
fn draw_column(
    chart: &mut Chart,
    o: &Options,
    samples: &[Sample],
    (profile, system): (Profile, System),
    metric: &str,
    Column { cx, ymax }: Column,
) -> Result<()> {
    let c = color(system);
    let mut all = Vec::new();
    for (zi, &size) in o.sizes.iter().enumerate() {
        let dx = (zi as f64 - (o.sizes.len() as f64 - 1.0) / 2.0) * 0.18;
        let vals: Vec<f64> = values(samples, system, profile, size, metric)
            .into_iter()
            .flatten()
            .collect();
        all.extend(vals.iter().copied());
        for v in vals {
            let at = (cx + dx, v);
            match zi % 3 {
                0 => chart.draw_series(std::iter::once(Circle::new(at, 4, c.filled())))?,
                1 => chart.draw_series(std::iter::once(TriangleMarker::new(at, 5, c.filled())))?,
                _ => chart.draw_series(std::iter::once(Rectangle::new(
                    [
                        (cx + dx - 0.05, v - ymax * 0.006),
                        (cx + dx + 0.05, v + ymax * 0.006),
                    ],
                    c.filled(),
                )))?,
            };
        }
    }
    if let Some(m) = median(&all) {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(cx - 0.35, m), (cx + 0.35, m)],
            c.stroke_width(3),
        )))?;
    }
    Ok(())
}

fn bandwidth(o: &Options, samples: &[Sample], path: &std::path::Path) -> Result<()> {
    let mut ymax: f64 = 1.0;
    for s in samples.iter().filter(|s| s.metric == "bytes") {
        if let Some(v) = s.value {
            ymax = ymax.max(v);
        }
    }
    let xmax = *o.sizes.iter().max().unwrap_or(&25) as f64 + 2.0;
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "membership bytes/s sent per member (steady state)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax * 1.15)?;
    chart
        .configure_mesh()
        .x_desc("cluster size (members)")
        .y_desc("bytes per second per member")
        .draw()?;
    for &profile in &o.profiles {
        for &system in &o.systems {
            let c = color(system);
            let points: Vec<(f64, f64)> = o
                .sizes
                .iter()
                .filter_map(|&size| {
                    let v: Vec<f64> = values(samples, system, profile, size, "bytes")
                        .into_iter()
                        .flatten()
                        .collect();
                    median(&v).map(|m| (size as f64, m))
                })
                .collect();
            let width = if profile == Profile::Common { 3 } else { 1 };
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(width)))?
                .label(format!("{} ({})", system.name(), profile.name()))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(width))
                });
            if profile == Profile::Common {
                chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
            } else {
                chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, c.stroke_width(1))))?;
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
