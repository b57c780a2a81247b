//! Drawing [`RunCurves`] with `plotters`: the same picture as SVG and as
//! PNG. The title names the runs; the first panel holds the losses (train
//! as a line, eval with a marker at each evaluation), the others one eval
//! metric each, two to a row. One run: a colour per series; several: a
//! colour per run, named in every legend.
//!
//! Text is set in a font embedded in the binary (Ubuntu Light, from
//! `epaint_default_fonts`), so no system font library is needed or read.

use super::curves::{is_loss, Panel, RunCurves, Scale};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// The picture's width in pixels.
pub const WIDTH: u32 = 1000;
const TITLE_HEIGHT: u32 = 40;
const LOSS_HEIGHT: u32 = 420;
const METRIC_HEIGHT: u32 = 300;
const FONT: &str = "sans-serif";

/// Matplotlib's `tab10`, the colours HF users know from their plots.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the embedded font under plotters' `sans-serif`, once.
fn fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is a constant of the binary: it parses, or the build is broken.
        if register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT).is_err() {
            crate::ui::warn("the embedded font does not parse: curves are drawn without text");
        }
    });
}

/// The picture's size for these panels: the title, the loss panel, then
/// the metric panels two to a row (one row of one, for a single metric).
pub fn size(panels: &[Panel]) -> (u32, u32) {
    let metrics = panels.iter().filter(|p| p.title != "loss").count() as u32;
    let loss = if metrics < panels.len() as u32 {
        LOSS_HEIGHT
    } else {
        0
    };
    let cols = if metrics <= 1 { 1 } else { 2 };
    (
        WIDTH,
        TITLE_HEIGHT + loss + metrics.div_ceil(cols) * METRIC_HEIGHT,
    )
}

/// The picture as an SVG document.
pub fn svg(runs: &[RunCurves], panels: &[Panel]) -> Result<String, String> {
    fonts();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size(panels)).into_drawing_area();
        draw(&root, runs, panels)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(text)
}

/// The picture as RGB pixels, row by row, with its size.
pub fn rgb(runs: &[RunCurves], panels: &[Panel]) -> Result<(Vec<u8>, (u32, u32)), String> {
    fonts();
    let (w, h) = size(panels);
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        draw(&root, runs, panels)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok((pixels, (w, h)))
}

/// The caption over every panel.
fn title(runs: &[RunCurves]) -> String {
    let names: Vec<&str> = runs.iter().map(|r| r.run.as_str()).collect();
    format!("learning curves: {}", names.join(", "))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    runs: &[RunCurves],
    panels: &[Panel],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (head, body) = root.split_vertically(TITLE_HEIGHT);
    head.titled(&title(runs), (FONT, 24)).map_err(e)?;
    let x_max = runs
        .iter()
        .flat_map(|r| &r.series)
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (loss, metrics): (Vec<&Panel>, Vec<&Panel>) =
        panels.iter().partition(|p| p.title == "loss");
    let rest = match loss.first() {
        Some(panel) => {
            let (top, rest) = body.split_vertically(LOSS_HEIGHT);
            draw_panel(&top, panel, runs, x_max)?;
            rest
        }
        None => body,
    };
    if metrics.is_empty() {
        return Ok(());
    }
    let cols = if metrics.len() == 1 { 1 } else { 2 };
    let rows = metrics.len().div_ceil(cols);
    let areas = rest.split_evenly((rows, cols));
    for (panel, area) in metrics.iter().zip(&areas) {
        draw_panel(area, panel, runs, x_max)?;
    }
    Ok(())
}

/// One panel, on its scale.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    runs: &[RunCurves],
    x_max: f64,
) -> Result<(), String> {
    let x = 0.0..x_max;
    match panel.scale {
        Scale::Linear { lo, hi } => {
            let y: RangedCoordf64 = (lo..hi).into();
            chart(area, panel, runs, x, y)
        }
        Scale::Log { lo, hi } => chart(area, panel, runs, x, (lo..hi).log_scale()),
    }
}

fn chart<DB, Y>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    runs: &[RunCurves],
    x: std::ops::Range<f64>,
    y: Y,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let x_max = x.end;
    let log = matches!(panel.scale, Scale::Log { .. });
    let caption = if log {
        format!("{} (log scale)", panel.title)
    } else {
        panel.title.clone()
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(panel.title.as_str())
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .x_label_formatter(&|v| format!("{}", v.round() as i64))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(e)?;
    let several = runs.len() > 1;
    let mut drawn = 0;
    // The curves in the unit square (y up) and the legend's labels, to
    // place the legend where it hides the least.
    let mut unit: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        for metric in &panel.metrics {
            let Some(series) = run.get(metric) else {
                continue;
            };
            let colour = COLOURS[if several { r } else { drawn } % COLOURS.len()];
            drawn += 1;
            let points: Vec<(f64, f64)> =
                series.points.iter().map(|(s, v)| (*s as f64, *v)).collect();
            unit.push(
                points
                    .iter()
                    .map(|(s, v)| (s / x_max, unit_y(panel.scale, *v)))
                    .collect(),
            );
            let label = match (several, panel.metrics.len() > 1) {
                (true, true) => format!("{}: {}", run.run, name(metric)),
                (true, false) => run.run.clone(),
                (false, _) => name(metric),
            };
            // The train loss (logged often, noisy) thin; evaluations
            // thicker, with a marker at each, in the legend too.
            let marked = metric != "loss" || points.len() == 1;
            let line = colour.stroke_width(if marked { 2 } else { 1 });
            let series = chart
                .draw_series(LineSeries::new(points.clone(), line))
                .map_err(e)?
                .label(label.clone());
            labels.push(label);
            if marked {
                series.legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (24, 0)], line)
                        + Circle::new((12, 0), 3, colour.filled())
                });
                chart
                    .draw_series(points.iter().map(|p| Circle::new(*p, 3, colour.filled())))
                    .map_err(e)?;
            } else {
                series.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line));
            }
        }
    }
    // A legend where it says something: several series, or several runs.
    if drawn > 1 || several {
        let (w, h) = chart.plotting_area().dim_in_pixel();
        let chars = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let legend = (
            (44.0 + 8.0 * chars as f64) / f64::from(w.max(1)),
            (12.0 + 20.0 * labels.len() as f64) / f64::from(h.max(1)),
        );
        chart
            .configure_series_labels()
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(best_corner(&unit, legend))
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

/// A value's height in its panel, from 0 (bottom) to 1 (top).
fn unit_y(scale: Scale, v: f64) -> f64 {
    match scale {
        Scale::Linear { lo, hi } => (v - lo) / (hi - lo),
        Scale::Log { lo, hi } => (v.ln() - lo.ln()) / (hi.ln() - lo.ln()),
    }
}

/// The corner whose legend box (`size`, as fractions of the plot) covers
/// the least of the curves (points of the unit square, y up), as
/// matplotlib's `loc="best"`; ties go to the upper right.
fn best_corner(curves: &[Vec<(f64, f64)>], size: (f64, f64)) -> SeriesLabelPosition {
    let (w, h) = size;
    let corners = [
        (SeriesLabelPosition::UpperRight, 1.0 - w, 1.0 - h),
        (SeriesLabelPosition::LowerRight, 1.0 - w, 0.0),
        (SeriesLabelPosition::UpperLeft, 0.0, 1.0 - h),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
    ];
    // Each segment sampled, so that a line crossing the box counts too.
    let mut samples = Vec::new();
    for curve in curves {
        for pair in curve.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            samples.extend((0..16).map(|i| {
                let t = f64::from(i) / 16.0;
                (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
            }));
        }
        samples.extend(curve.last().copied());
    }
    corners
        .into_iter()
        .min_by_key(|(_, left, bottom)| {
            samples
                .iter()
                .filter(|(x, y)| {
                    (*left..=left + w).contains(x) && (*bottom..=bottom + h).contains(y)
                })
                .count()
        })
        .map_or(SeriesLabelPosition::UpperRight, |c| c.0)
}

/// A metric's name in legends: HF's keys, but `loss` is the train loss.
fn name(metric: &str) -> String {
    match metric {
        "loss" => "train loss".into(),
        "eval_loss" => "eval loss".into(),
        m if is_loss(m) => m.replace('_', " "),
        m => m.to_string(),
    }
}

/// A tick label: short, exact for round numbers, scientific when tiny or huge.
fn tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else {
        let text = format!("{v:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legend_goes_to_the_emptiest_corner() {
        let falling = vec![vec![(0.0, 0.95), (0.5, 0.3), (1.0, 0.05)]];
        let rising = vec![vec![(0.0, 0.05), (0.5, 0.7), (1.0, 0.95)]];
        let size = (0.25, 0.2);
        assert!(matches!(
            best_corner(&falling, size),
            SeriesLabelPosition::UpperRight
        ));
        assert!(matches!(
            best_corner(&rising, size),
            SeriesLabelPosition::LowerRight
        ));
        let both = vec![falling[0].clone(), vec![(0.0, 0.5), (1.0, 0.9)]];
        assert!(matches!(
            best_corner(&both, size),
            SeriesLabelPosition::LowerLeft | SeriesLabelPosition::UpperLeft
        ));
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(0.0125), "0.0125");
        assert_eq!(tick(0.0001), "1e-4");
        assert_eq!(tick(250000.0), "2e5");
    }
}
