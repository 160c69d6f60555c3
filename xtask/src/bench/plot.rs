//! The report's two SVG plots, drawn with plotters: time per round over N (log-log,
//! one line per approach, min-p90 as error bars) and the cost of a first write over
//! the number of writer threads.

use super::report::{Bench, Environment};
use anyhow::{anyhow, Result};
use plotters::prelude::*;

const SIZE: (u32, u32) = (900, 600);

/// A line's points: (x, median, min, p90).
type Points = Vec<(f64, f64, f64, f64)>;

/// One colour per approach, in the program's order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
];

fn env_tag(env: Environment) -> &'static str {
    match env {
        Environment::Host => "host",
        Environment::Kvm => "KVM guest",
        Environment::Tcg => "TCG, emulated: only ratios mean anything",
    }
}

/// A log axis range around `values` (a factor 2 of margin; a single value still
/// gets a range).
fn log_range(values: impl Iterator<Item = f64>) -> Option<std::ops::Range<f64>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (hi > 0.0).then(|| lo / 2.0..hi * 2.0)
}

/// A legend label. plotters sizes the legend box with an estimate of the text width
/// (no font is loaded for SVG) that falls short for capitals; the padding, which SVG
/// renderers collapse, keeps long labels inside the box.
fn legend(label: &str) -> String {
    format!("{label}{}", " ".repeat(label.len() / 5))
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plotting: {e}")
}

/// The lines of a plot (one per approach: the medians joined, a dot of `dot` px on
/// each, min-p90 bars `bar` px wide) and their legend; the same for both plots, whose
/// x axes differ (log N, linear thread count).
fn draw_lines<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, LogCoord<f64>>>,
    series: &[(String, Points)],
    dot: i32,
    bar: u32,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
{
    for (i, (label, pts)) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|&(x, m, _, _)| (x, m)),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(legend(label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(
                pts.iter()
                    .map(|&(x, m, _, _)| Circle::new((x, m), dot, c.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(
                pts.iter()
                    .map(|&(x, m, lo, hi)| ErrorBar::new_vertical(x, lo, m, hi, c, bar)),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Microseconds per round over N pages, for `w_of_n`; log-log.
pub fn round_svg(b: &Bench, w_of_n: &str, env: Environment) -> Result<String> {
    let sizes = b.sizes();
    let present: Vec<_> = b.approaches.iter().filter(|a| a.absent.is_none()).collect();
    let series: Vec<(String, Points)> = present
        .iter()
        .map(|a| {
            let pts = sizes
                .iter()
                .filter_map(|&n| {
                    b.round(&a.id, n, w_of_n).map(|s| {
                        (
                            n as f64,
                            s.median_ns / 1000.0,
                            s.min_ns / 1000.0,
                            s.p90_ns / 1000.0,
                        )
                    })
                })
                .collect();
            (a.label.clone(), pts)
        })
        .collect();
    let y = log_range(
        series
            .iter()
            .flat_map(|(_, p)| p.iter().flat_map(|&(_, m, lo, hi)| [m, lo, hi])),
    )
    .unwrap_or(0.1..10.0);
    let x = log_range(sizes.iter().map(|&n| n as f64)).unwrap_or(0.5..2.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let title = format!(
            "One round (find written, reset), W = {w_of_n} - {} {}",
            b.meta.kernel,
            env_tag(env)
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x.log_scale(), y.log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("pages watched (N)")
            .y_desc("microseconds per round (median; bars min-p90)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v}"))
            .draw()
            .map_err(err)?;
        draw_lines(&mut chart, &series, 3, 6)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Nanoseconds per first write over the number of writer threads; log y.
pub fn fault_svg(b: &Bench, env: Environment) -> Result<String> {
    let threads = b.thread_counts();
    let present: Vec<_> = b.approaches.iter().filter(|a| a.absent.is_none()).collect();
    let series: Vec<(String, Points)> = present
        .iter()
        .map(|a| {
            let pts = threads
                .iter()
                .filter_map(|&t| {
                    b.fault(&a.id, t)
                        .map(|s| (t as f64, s.median_ns, s.min_ns, s.p90_ns))
                })
                .collect();
            (a.label.clone(), pts)
        })
        .collect();
    let y = log_range(
        series
            .iter()
            .flat_map(|(_, p)| p.iter().flat_map(|&(_, m, lo, hi)| [m, lo, hi])),
    )
    .unwrap_or(10.0..1000.0);
    let tmax = threads.iter().copied().max().unwrap_or(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let title = format!(
            "First write to a watched page - {} {}",
            b.meta.kernel,
            env_tag(env)
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0.5..tmax + 0.5, y.log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("writer threads")
            .y_desc("nanoseconds per first write (median; bars min-p90)")
            .x_labels(threads.len().max(2) * 2)
            .x_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-9 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| format!("{v}"))
            .draw()
            .map_err(err)?;
        draw_lines(&mut chart, &series, 4, 8)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::super::report::{parse, tests::SAMPLE};
    use super::*;

    #[test]
    fn plots_are_svg_with_one_line_per_present_approach() {
        let b = parse(SAMPLE).unwrap();
        let svg = round_svg(&b, "n/10", Environment::Tcg).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("PAGEMAP_SCAN WP_MATCHING over uffd WP-async"));
        assert!(svg.contains("mprotect + SIGSEGV"));
        assert!(
            !svg.contains("pagemap read"),
            "absent approaches are not drawn"
        );
        assert!(svg.contains("only ratios mean anything"));
        assert!(svg.matches("<polyline").count() >= 2);
        let f = fault_svg(&b, Environment::Host).unwrap();
        assert!(f.starts_with("<svg") && f.contains("writer threads"));
    }

    #[test]
    fn log_range_has_margin() {
        assert_eq!(log_range([1.0, 100.0].into_iter()), Some(0.5..200.0));
        assert_eq!(log_range([f64::NAN, 0.0].into_iter()), None);
    }
}
