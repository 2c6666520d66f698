//! Line and scatter charts, rendered by plotters to SVG and PNG with a bundled font.
//!
//! A [`Chart`] is data only (title, axis labels with units, linear or log scales, series); the
//! same chart renders to both formats, so the PNG and the SVG in a report always agree. Text
//! uses DejaVu Sans compiled into the binary: PNGs render identically on machines without
//! fontconfig or any system font.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use anyhow::{Context, anyhow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

static FONT: Once = Once::new();

/// Registers the bundled font under plotters' `sans-serif` family (once per process).
fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // The font is a fixed, valid asset; a failure here is a build defect, and plotters then
        // reports a font error on the first text it draws, which `render` turns into an error.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// How an axis maps values to positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Equal distances for equal differences.
    Linear,
    /// Equal distances for equal ratios (base 10); non-positive values are left out.
    Log,
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A solid line through the points.
    Line,
    /// A dashed line (predictions, references).
    Dashed,
    /// Filled circles, no line.
    Dots,
    /// Hollow circles, no line (measurements drawn over a prediction).
    Rings,
    /// A line with a circle at each point.
    LineDots,
}

/// One named set of points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend entry (empty: not in the legend).
    pub label: String,
    /// (x, y) pairs; non-finite values (and non-positive ones on a log axis) are skipped.
    pub points: Vec<(f64, f64)>,
    /// How to draw it.
    pub mark: Mark,
    /// Index into the palette; series that belong together share a colour.
    pub color: usize,
}

impl Series {
    /// A series with the given label, points, mark and palette colour.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, mark: Mark, color: usize) -> Self {
        Series { label: label.into(), points, mark, color }
    }
}

/// Where the legend goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Legend {
    /// Top right corner inside the plot.
    UpperRight,
    /// Bottom right corner.
    LowerRight,
    /// Top left corner.
    UpperLeft,
    /// Bottom left corner.
    LowerLeft,
}

/// A chart: the data and every label a reader needs.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// x-axis label, with units.
    pub x_label: String,
    /// y-axis label, with units.
    pub y_label: String,
    /// x-axis scale.
    pub x_scale: Scale,
    /// y-axis scale.
    pub y_scale: Scale,
    /// The series, drawn in order.
    pub series: Vec<Series>,
    /// Legend position.
    pub legend: Legend,
    /// Fixed y range instead of the data's (e.g. 0..1.1 for a shrinkage factor).
    pub y_range: Option<(f64, f64)>,
    /// Size in pixels (PNG) / user units (SVG).
    pub size: (u32, u32),
}

/// Colour-blind-safe palette (Okabe–Ito), darkest first after black.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(120, 120, 120), // grey
    RGBColor(0, 0, 0),       // black
];

/// The palette colour with index `i` (wrapping).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

impl Chart {
    /// A chart with linear axes, no series yet, 900×560.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            series: Vec::new(),
            legend: Legend::UpperRight,
            y_range: None,
            size: (900, 560),
        }
    }

    /// Log-scaled x axis.
    pub fn x_log(mut self) -> Self {
        self.x_scale = Scale::Log;
        self
    }

    /// Log-scaled y axis.
    pub fn y_log(mut self) -> Self {
        self.y_scale = Scale::Log;
        self
    }

    /// Adds a series.
    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    /// Moves the legend.
    pub fn legend(mut self, l: Legend) -> Self {
        self.legend = l;
        self
    }

    /// Fixes the y range.
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    fn keep(&self, (x, y): (f64, f64)) -> bool {
        x.is_finite()
            && y.is_finite()
            && (self.x_scale == Scale::Linear || x > 0.0)
            && (self.y_scale == Scale::Linear || y > 0.0)
    }

    fn visible(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.series.iter().flat_map(|s| s.points.iter().copied()).filter(|&p| self.keep(p))
    }

    /// Renders to an SVG document.
    pub fn svg(&self) -> anyhow::Result<String> {
        register_font();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            self.render(&root)?;
            root.present().map_err(|e| anyhow!("SVG plot `{}`: {e}", self.title))?;
        }
        Ok(out)
    }

    /// Renders to a PNG file at `path` (the extension must be `.png`).
    pub fn png(&self, path: &Path) -> anyhow::Result<()> {
        register_font();
        let root = BitMapBackend::new(path, self.size).into_drawing_area();
        self.render(&root)?;
        root.present().map_err(|e| anyhow!("PNG plot `{}` to {}: {e}", self.title, path.display()))?;
        Ok(())
    }

    fn render<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| anyhow!("plot `{}`: {e}", self.title))?;
        let (x, y) = self.ranges();
        let result = match (self.x_scale, self.y_scale) {
            (Scale::Linear, Scale::Linear) => self.draw(root, x, y),
            (Scale::Log, Scale::Linear) => self.draw(root, x.log_scale(), y),
            (Scale::Linear, Scale::Log) => self.draw(root, x, y.log_scale()),
            (Scale::Log, Scale::Log) => self.draw(root, x.log_scale(), y.log_scale()),
        };
        result.with_context(|| format!("drawing plot `{}`", self.title))
    }

    fn ranges(&self) -> (Range<f64>, Range<f64>) {
        let xs: Vec<f64> = self.visible().map(|p| p.0).collect();
        let ys: Vec<f64> = self.visible().map(|p| p.1).collect();
        let x = axis_range(&xs, self.x_scale, 0.02);
        let y = match self.y_range {
            Some((lo, hi)) => lo..hi,
            None => axis_range(&ys, self.y_scale, 0.06),
        };
        (x, y)
    }

    fn draw<DB: DrawingBackend, X, Y>(&self, root: &DrawingArea<DB, Shift>, x: X, y: Y) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e}");
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(84)
            .build_cartesian_2d(x, y)
            .map_err(err)?;
        let fmt = |v: &f64| tick(*v);
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", 15))
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            // No minor grid: on log axes it becomes a dense band that hides the data.
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(220, 220, 220))
            .x_labels(10)
            .y_labels(8)
            .draw()
            .map_err(err)?;
        let mut labelled = false;
        for s in &self.series {
            let c = color(s.color);
            let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|&p| self.keep(p)).collect();
            let line = ShapeStyle { color: c.to_rgba(), filled: false, stroke_width: 2 };
            let anno = match s.mark {
                Mark::Line => chart.draw_series(LineSeries::new(pts, line)).map_err(err)?,
                Mark::Dashed => chart.draw_series(DashedLineSeries::new(pts, 8, 5, line)).map_err(err)?,
                Mark::Dots => {
                    chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, c.filled()))).map_err(err)?
                }
                Mark::Rings => chart
                    .draw_series(pts.into_iter().map(|p| Circle::new(p, 5, c.stroke_width(2))))
                    .map_err(err)?,
                Mark::LineDots => {
                    chart.draw_series(LineSeries::new(pts, line.filled()).point_size(3)).map_err(err)?
                }
            };
            if !s.label.is_empty() {
                labelled = true;
                let mark = s.mark;
                anno.label(&s.label).legend(move |(x, y)| -> DynElement<'static, DB, (i32, i32)> {
                    match mark {
                        Mark::Dots => Circle::new((x + 10, y), 4, c.filled()).into_dyn(),
                        Mark::Rings => Circle::new((x + 10, y), 5, c.stroke_width(2)).into_dyn(),
                        Mark::Dashed => {
                            PathElement::new(vec![(x, y), (x + 8, y)], c.stroke_width(2)).into_dyn()
                        }
                        _ => PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)).into_dyn(),
                    }
                });
            }
        }
        if labelled {
            let pos = match self.legend {
                Legend::UpperRight => SeriesLabelPosition::UpperRight,
                Legend::LowerRight => SeriesLabelPosition::LowerRight,
                Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
                Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
            };
            chart
                .configure_series_labels()
                .position(pos)
                .label_font(("sans-serif", 15))
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(160, 160, 160))
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}

/// The axis range for `values`: padded by `pad` of the span (linear) or widened to whole
/// decades (log); a single value or none still gives a sensible non-empty range.
fn axis_range(values: &[f64], scale: Scale, pad: f64) -> Range<f64> {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match scale {
        Scale::Log => {
            if !(lo.is_finite() && hi.is_finite()) {
                return 0.1..10.0;
            }
            // The data's own range plus a margin of `pad` of its span in decades (at least a
            // tenth of a decade), so curves do not touch the frame and no empty decade is added.
            let (a, b) = (lo.log10(), hi.log10());
            let m = (pad * (b - a)).max(0.1);
            10f64.powf(a - m)..10f64.powf(b + m)
        }
        Scale::Linear => {
            if !(lo.is_finite() && hi.is_finite()) {
                return 0.0..1.0;
            }
            let span = hi - lo;
            if span <= f64::EPSILON * hi.abs().max(1.0) {
                let d = if hi == 0.0 { 1.0 } else { 0.1 * hi.abs() };
                return (lo - d)..(hi + d);
            }
            (lo - pad * span)..(hi + pad * span)
        }
    }
}

/// A tick label: short, no trailing zeros, powers of ten as `1e-3` where plain digits get long.
pub fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        // 1.0e-3 -> 1e-3
        return s.replace(".0e", "e");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(100.0), "100");
        assert_eq!(tick(1e-4), "1e-4");
        assert_eq!(tick(2.5e7), "2.5e7");
    }

    #[test]
    fn ranges_cover_the_data_with_a_margin() {
        let r = axis_range(&[0.003, 42.0], Scale::Log, 0.0);
        assert!(r.start < 0.003 && r.start > 0.002 && r.end > 42.0 && r.end < 60.0, "{r:?}");
        let r = axis_range(&[5.0], Scale::Linear, 0.1);
        assert!(r.start < 5.0 && r.end > 5.0);
        let r = axis_range(&[], Scale::Log, 0.1);
        assert!(r.start > 0.0 && r.end > r.start);
    }

    #[test]
    fn renders_svg_with_labels_on_log_axes() {
        let chart = Chart::new("Loss", "epoch", "loss (½(ŷ − y)², mean)")
            .x_log()
            .y_log()
            .series(Series::new(
                "train",
                (1..50).map(|i| (i as f64, 1.0 / i as f64)).collect(),
                Mark::Line,
                0,
            ))
            .series(Series::new("held-out", vec![(1.0, 0.0), (2.0, -1.0), (3.0, 0.4)], Mark::Dots, 1));
        let svg = chart.svg().unwrap();
        assert!(svg.starts_with("<svg") || svg.contains("<svg"));
        for needle in ["Loss", "epoch", "train", "held-out"] {
            assert!(svg.contains(needle), "missing {needle}");
        }
    }
}
