//! Charts for the CLI's reports, written as PNG and SVG side by side.
//!
//! Four kinds cover what the commands draw: line charts of several named series (training and
//! validation loss against epoch, optionally on a log axis), predicted against measured values
//! with the y = x reference, a Hessian spectrum (|λ| by index on a log axis, marker by sign) and
//! log-x line charts (prediction error against the L2 strength μ).
//!
//! Text is drawn with the bundled DejaVu Sans (plotters' `ab_glyph` backend), so PNGs render the
//! same on machines without any system font. Both files are written atomically.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// The bundled font (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// PNG size in pixels; the SVG uses the same size in user units.
const SIZE: (u32, u32) = (1200, 750);

/// A colour-blind-safe palette (Okabe & Ito, 2008), in series order.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
];

/// Registers the bundled font as `sans-serif` once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { bail!("the bundled font DejaVuSans.ttf could not be loaded") }
}

/// A linear or logarithmic axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scale {
    /// Evenly spaced values.
    #[default]
    Linear,
    /// Evenly spaced decades; values ≤ 0 cannot be shown and are left out (and counted in the
    /// chart's note).
    Log,
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A line through the points.
    Line,
    /// A dashed line through the points.
    Dashed,
    /// Markers only.
    Points(Marker),
    /// A line with markers.
    LinePoints(Marker),
}

/// A point marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled triangle.
    Triangle,
    /// Diagonal cross.
    Cross,
    /// Hollow circle (measurements drawn over a prediction, or a second sign).
    Ring,
}

/// One named series of (x, y) points.
#[derive(Clone, Debug)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// The points; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub style: Style,
    /// Its colour; `None` takes the next palette colour.
    pub color: Option<RGBColor>,
}

impl Series {
    /// A series drawn in `style`, coloured by the palette in order.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Self {
        Series { name: name.into(), points, style, color: None }
    }

    /// Palette colour `i` (wrapping): series that belong together share a colour.
    pub fn color(mut self, i: usize) -> Self {
        self.color = Some(PALETTE[i % PALETTE.len()]);
        self
    }
}

/// Where the legend goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Legend {
    /// The corner with the fewest data points under it.
    #[default]
    Auto,
    /// Top right.
    UpperRight,
    /// Top left.
    UpperLeft,
    /// Bottom right.
    LowerRight,
    /// Bottom left.
    LowerLeft,
}

/// A chart: title, axis labels (with units), scales and series.
#[derive(Clone, Debug)]
pub struct Chart {
    /// The title.
    pub title: String,
    /// A second, smaller line under the title (e.g. what was left out).
    pub note: Option<String>,
    /// The x-axis label, with unit.
    pub x_label: String,
    /// The y-axis label, with unit.
    pub y_label: String,
    /// The x scale.
    pub x_scale: Scale,
    /// The y scale.
    pub y_scale: Scale,
    /// The series, drawn in order.
    pub series: Vec<Series>,
    /// Draw the y = x reference line and use the same range on both axes.
    pub diagonal: bool,
    /// Whether x values are integers (epochs, indices): ticks are labelled without decimals.
    pub integer_x: bool,
    /// Legend position.
    pub legend: Legend,
    /// A fixed y range (in data units) instead of the data's own (e.g. 0..1 for a factor).
    pub y_range: Option<(f64, f64)>,
    /// Image size in pixels (PNG) or user units (SVG).
    pub size: (u32, u32),
}

impl Chart {
    /// An empty line chart.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Chart {
            title: title.into(),
            note: None,
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            series: Vec::new(),
            diagonal: false,
            integer_x: false,
            legend: Legend::Auto,
            y_range: None,
            size: SIZE,
        }
    }

    /// Adds a series.
    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    /// Fixes the y range (data units; both ends > 0 on a log axis).
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    /// Adds a series drawn as a line.
    pub fn line(self, name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        self.series_styled(name, points, Style::Line)
    }

    /// Adds a series drawn in the given style.
    pub fn series_styled(
        self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
        style: Style,
    ) -> Self {
        self.series(Series::new(name, points.into_iter().collect(), style))
    }

    /// Logarithmic y axis.
    pub fn log_y(mut self) -> Self {
        self.y_scale = Scale::Log;
        self
    }

    /// Logarithmic x axis.
    pub fn log_x(mut self) -> Self {
        self.x_scale = Scale::Log;
        self
    }

    /// Integer x values (epochs, indices).
    pub fn integer_x(mut self) -> Self {
        self.integer_x = true;
        self
    }

    /// A second title line.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Legend position.
    pub fn legend(mut self, legend: Legend) -> Self {
        self.legend = legend;
        self
    }

    /// Training curves: one line per named series of per-epoch values (epoch 1 first).
    pub fn training_curves<'a>(
        title: impl Into<String>,
        y_label: impl Into<String>,
        curves: impl IntoIterator<Item = (&'a str, &'a [f64])>,
        log_y: bool,
    ) -> Self {
        let mut c = Chart::new(title, "epoch", y_label).integer_x();
        for (name, values) in curves {
            c = c.line(name, values.iter().enumerate().map(|(i, &v)| ((i + 1) as f64, v)));
        }
        if log_y { c.log_y() } else { c }
    }

    /// Predicted against measured values, one point per sample, with the y = x line. Add more
    /// sets (e.g. validation) with [`Chart::add_predictions`].
    pub fn predicted_vs_measured(
        title: impl Into<String>,
        quantity: &str,
        name: &str,
        measured: &[f64],
        predicted: &[f64],
    ) -> Self {
        let mut c = Chart::new(title, format!("measured {quantity}"), format!("predicted {quantity}"));
        c.diagonal = true;
        c.size = (950, 900); // a square plot area, so y = x runs at 45°
        c.add_predictions(name, measured, predicted)
    }

    /// Adds another set of (measured, predicted) points.
    pub fn add_predictions(self, name: &str, measured: &[f64], predicted: &[f64]) -> Self {
        let marker = [Marker::Circle, Marker::Triangle, Marker::Cross][self.series.len() % 3];
        let points: Vec<(f64, f64)> = measured.iter().copied().zip(predicted.iter().copied()).collect();
        self.series_styled(name, points, Style::Points(marker))
    }

    /// An eigenvalue spectrum: |λᵢ| against index i (1-based, in the order given) on a log axis,
    /// circles for λ > 0 and triangles for λ < 0. Zero eigenvalues cannot be shown on a log axis;
    /// the note counts them.
    pub fn spectrum(title: impl Into<String>, eigenvalues: &[f64]) -> Self {
        let mut pos = Vec::new();
        let mut neg = Vec::new();
        let mut zero = 0;
        for (i, &l) in eigenvalues.iter().enumerate() {
            let p = ((i + 1) as f64, l.abs());
            if l > 0.0 {
                pos.push(p);
            } else if l < 0.0 {
                neg.push(p);
            } else if l == 0.0 {
                zero += 1;
            }
        }
        let marker_style = |m| if eigenvalues.len() > 60 { Style::Points(m) } else { Style::LinePoints(m) };
        let mut c = Chart::new(title, "eigenvalue index i (descending λ)", "|λᵢ|").integer_x().log_y();
        let (np, nn) = (pos.len(), neg.len());
        c = c.series_styled(format!("λ > 0 ({np})"), pos, marker_style(Marker::Circle));
        c = c.series_styled(format!("λ < 0 ({nn})"), neg, marker_style(Marker::Triangle));
        if zero > 0 {
            c = c.note(format!("{zero} eigenvalue(s) exactly 0 not shown on the log axis"));
        }
        c
    }

    /// Writes `<stem>.png` and `<stem>.svg` (atomically) and returns their paths.
    pub fn write(&self, stem: impl AsRef<Path>) -> Result<[PathBuf; 2]> {
        let stem = stem.as_ref();
        let png = stem.with_extension("png");
        let svg = stem.with_extension("svg");
        backprop::io::atomic_write(&png, &self.png_bytes()?)?;
        backprop::io::atomic_write(&svg, self.svg_string()?.as_bytes())?;
        Ok([png, svg])
    }

    /// The chart as PNG bytes.
    pub fn png_bytes(&self) -> Result<Vec<u8>> {
        ensure_font()?;
        let (w, h) = self.size;
        let mut rgb = vec![0u8; (w as usize) * (h as usize) * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, self.size).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| anyhow!("rendering {}: {e}", self.title))?;
        }
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Best);
            let mut writer = enc.write_header().context("encoding PNG")?;
            writer.write_image_data(&rgb).context("encoding PNG")?;
        }
        Ok(out)
    }

    /// The chart as an SVG document.
    pub fn svg_string(&self) -> Result<String> {
        ensure_font()?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| anyhow!("rendering {}: {e}", self.title))?;
        }
        Ok(svg)
    }

    /// The points of every series that the axes can show (finite; > 0 on log axes), and how
    /// many were left out.
    fn visible(&self) -> (Vec<Vec<(f64, f64)>>, usize) {
        let ok = |v: f64, s: Scale| v.is_finite() && (s == Scale::Linear || v > 0.0);
        let mut dropped = 0;
        let kept = self
            .series
            .iter()
            .map(|s| {
                let k: Vec<_> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|&(x, y)| ok(x, self.x_scale) && ok(y, self.y_scale))
                    .collect();
                dropped += s.points.len() - k.len();
                k
            })
            .collect();
        (kept, dropped)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let (points, dropped) = self.visible();
        let mut note = self.note.clone();
        if dropped > 0 {
            let why = if self.x_scale == Scale::Log || self.y_scale == Scale::Log {
                "non-finite or ≤ 0 on a log axis"
            } else {
                "non-finite"
            };
            let extra = format!("{dropped} point(s) not shown ({why})");
            note = Some(match note {
                Some(n) => format!("{n}; {extra}"),
                None => extra,
            });
        }
        // Log axes are drawn as linear axes over log₁₀ of the values, with our own ticks: plotters'
        // log coordinates label only whole decades, which leaves a narrow range unlabelled.
        let tx = |v: f64| if self.x_scale == Scale::Log { v.log10() } else { v };
        let ty = |v: f64| if self.y_scale == Scale::Log { v.log10() } else { v };
        let points: Vec<Vec<(f64, f64)>> = points
            .iter()
            .zip(&self.series)
            .map(|(p, s)| {
                let p: Vec<(f64, f64)> = p.iter().map(|&(x, y)| (tx(x), ty(y))).collect();
                // A line of 10⁵ epochs has far more points than pixels: keep each pixel column's
                // extremes, which draws the same picture and keeps the SVG small.
                if matches!(s.style, Style::Line | Style::Dashed) {
                    decimate(&p, 2 * self.size.0 as usize)
                } else {
                    p
                }
            })
            .collect();
        let all: Vec<(f64, f64)> = points.iter().flatten().copied().collect();
        let (mut xr, mut yr) = if all.is_empty() {
            ((0.0, 1.0), (0.0, 1.0))
        } else {
            (padded(all.iter().map(|p| p.0)), padded(all.iter().map(|p| p.1)))
        };
        if let Some((lo, hi)) = self.y_range.filter(|&(lo, hi)| ty(lo) < ty(hi)) {
            yr = (ty(lo), ty(hi));
        }
        if self.diagonal {
            let lo = xr.0.min(yr.0);
            let hi = xr.1.max(yr.1);
            xr = (lo, hi);
            yr = (lo, hi);
        }
        let x_axis = Axis::new(xr, self.x_scale, self.integer_x);
        let y_axis = Axis::new(yr, self.y_scale, false);
        // Title block.
        let title_h = if note.is_some() { 80 } else { 56 };
        let (top, body) = root.split_vertically(title_h);
        top.draw(&Text::new(self.title.clone(), (24, 12), ("sans-serif", 30).into_font().color(&BLACK)))
            .map_err(|e| anyhow!("{e}"))?;
        if let Some(n) = &note {
            top.draw(&Text::new(
                n.clone(),
                (24, 50),
                ("sans-serif", 19).into_font().color(&RGBColor(90, 90, 90)),
            ))
            .map_err(|e| anyhow!("{e}"))?;
        }
        self.body(&body, &x_axis, &y_axis, &points)
    }

    fn body<DB>(
        &self,
        area: &DrawingArea<DB, Shift>,
        x: &Axis,
        y: &Axis,
        points: &[Vec<(f64, f64)>],
    ) -> Result<()>
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing {}: {e}", self.title);
        let mut chart = ChartBuilder::on(area)
            .margin_left(20)
            .margin_right(40)
            .margin_bottom(16)
            .x_label_area_size(70)
            .y_label_area_size(110)
            .build_cartesian_2d(x.clone(), y.clone())
            .map_err(err)?;
        let fx = |v: &f64| x.label(*v);
        let fy = |v: &f64| y.label(*v);
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style(("sans-serif", 24))
            .label_style(("sans-serif", 19))
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(err)?;

        if self.diagonal {
            let (lo, hi) = x.range;
            let grey = RGBColor(110, 110, 110);
            chart
                .draw_series(DashedLineSeries::new([(lo, lo), (hi, hi)], 10, 6, grey.stroke_width(2)))
                .map_err(err)?
                .label("y = x (perfect prediction)")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 34, y)], grey.stroke_width(2)));
        }
        let mut palette = PALETTE.iter().cycle();
        for (s, pts) in self.series.iter().zip(points) {
            let color = s.color.unwrap_or_else(|| *palette.next().unwrap_or(&BLACK));
            let size = if pts.len() > 300 { 3 } else { 5 };
            let name = s.name.as_str();
            // Markers, optionally joined by a line; the legend shows the same.
            macro_rules! marked {
                ($m:ident, $with_line:expr, $size_add:expr, $style:expr) => {{
                    let with_line: bool = $with_line;
                    if with_line {
                        chart
                            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                            .map_err(err)?;
                    }
                    let stub = if with_line { 34 } else { 0 };
                    chart
                        .draw_series(pts.iter().map(|&p| $m::new(p, size + $size_add, $style)))
                        .map_err(err)?
                        .label(name)
                        .legend(move |(x, y)| {
                            EmptyElement::at((x, y))
                                + PathElement::new(vec![(0, 0), (stub, 0)], color.stroke_width(2))
                                + $m::new((17, 0), 6 + $size_add, $style)
                        });
                }};
            }
            match s.style {
                Style::Line | Style::Dashed => {
                    let line = color.stroke_width(3);
                    let anno = if s.style == Style::Line {
                        chart.draw_series(LineSeries::new(pts.iter().copied(), line)).map_err(err)?
                    } else {
                        chart
                            .draw_series(DashedLineSeries::new(pts.iter().copied(), 12, 6, line))
                            .map_err(err)?
                    };
                    anno.label(name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 34, y)], line));
                }
                Style::Points(m) | Style::LinePoints(m) => {
                    let with_line = matches!(s.style, Style::LinePoints(_));
                    match m {
                        Marker::Circle => marked!(Circle, with_line, 0, color.filled()),
                        Marker::Triangle => marked!(TriangleMarker, with_line, 2, color.filled()),
                        Marker::Cross => marked!(Cross, with_line, 0, color.stroke_width(2)),
                        Marker::Ring => marked!(Circle, with_line, 1, color.stroke_width(2)),
                    }
                }
            }
        }
        let pos = match self.legend {
            Legend::Auto => match emptiest_corner(x, y, points) {
                Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
                Legend::LowerRight => SeriesLabelPosition::LowerRight,
                Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
                _ => SeriesLabelPosition::UpperRight,
            },
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
            Legend::LowerRight => SeriesLabelPosition::LowerRight,
            Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
        };
        chart
            .configure_series_labels()
            .position(pos)
            .margin(16)
            .legend_area_size(40)
            .label_font(("sans-serif", 21))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(150, 150, 150))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

/// The legend corner covering the fewest points (a box of 40% × 30% of the plot), preferring
/// upper right, then upper left, lower right, lower left on ties.
fn emptiest_corner(x: &Axis, y: &Axis, points: &[Vec<(f64, f64)>]) -> Legend {
    let frac = |v: f64, a: &Axis| {
        if a.range.1 > a.range.0 { (v - a.range.0) / (a.range.1 - a.range.0) } else { 0.5 }
    };
    let mut counts = [0usize; 4];
    // The points and the lines between them (sampled), which a legend would hide as well.
    let sampled = points.iter().flat_map(|s| {
        let segments = s.windows(2).flat_map(|w| {
            (0..8).map(move |k| {
                let t = f64::from(k) / 8.0;
                (w[0].0 + t * (w[1].0 - w[0].0), w[0].1 + t * (w[1].1 - w[0].1))
            })
        });
        s.iter().copied().chain(segments)
    });
    for (px, py) in sampled {
        let (u, v) = (frac(px, x), frac(py, y));
        let (right, left, top, bottom) = (u > 0.6, u < 0.4, v > 0.7, v < 0.3);
        counts[0] += usize::from(right && top);
        counts[1] += usize::from(left && top);
        counts[2] += usize::from(right && bottom);
        counts[3] += usize::from(left && bottom);
    }
    let corners = [Legend::UpperRight, Legend::UpperLeft, Legend::LowerRight, Legend::LowerLeft];
    let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    corners[best]
}

/// At most about 4·`buckets` points with the same envelope as `p`: for each of `buckets` runs of
/// consecutive points, its first, lowest, highest and last point, in their original order.
fn decimate(p: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    if p.len() <= 4 * buckets.max(1) {
        return p.to_vec();
    }
    let per = p.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(4 * buckets);
    for chunk in p.chunks(per) {
        let lo = (0..chunk.len()).min_by(|&a, &b| chunk[a].1.total_cmp(&chunk[b].1)).unwrap_or(0);
        let hi = (0..chunk.len()).max_by(|&a, &b| chunk[a].1.total_cmp(&chunk[b].1)).unwrap_or(0);
        let mut idx = [0, lo, hi, chunk.len() - 1];
        idx.sort_unstable();
        let mut last = usize::MAX;
        for i in idx {
            if i != last {
                out.push(chunk[i]);
                last = i;
            }
        }
    }
    out
}

/// The range of `vs` padded by 4% on each side (values already log₁₀ on log axes); a
/// single value gets a range around it.
fn padded(vs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = vs.clone().fold(f64::INFINITY, f64::min);
    let hi = vs.fold(f64::NEG_INFINITY, f64::max);
    let span = hi - lo;
    if span > 0.0 {
        (lo - 0.04 * span, hi + 0.04 * span)
    } else {
        let pad = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        (lo - pad, hi + pad)
    }
}

/// One axis in drawing coordinates (log₁₀ of the values on a log axis): range, labelled ticks
/// and grid-only ticks.
#[derive(Clone, Debug, PartialEq)]
struct Axis {
    range: (f64, f64),
    major: Vec<f64>,
    minor: Vec<f64>,
    scale: Scale,
    integer: bool,
}

impl Axis {
    fn new(range: (f64, f64), scale: Scale, integer: bool) -> Self {
        let (lo, hi) = range;
        let (major, minor) = match scale {
            Scale::Linear => {
                let mut step = nice_step((hi - lo) / 8.0);
                if integer {
                    step = step.max(1.0).round();
                }
                (multiples(lo, hi, step), multiples(lo, hi, step / 5.0))
            }
            Scale::Log => {
                let span = hi - lo;
                // Mantissas labelled in each decade: fewer as the range widens.
                let labelled: &[f64] = if span > 2.5 {
                    &[1.0]
                } else if span > 1.2 {
                    &[1.0, 2.0, 5.0]
                } else if span > 0.5 {
                    &[1.0, 2.0, 3.0, 5.0]
                } else {
                    &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
                };
                let every = (span / 10.0).ceil().max(1.0) as i64; // decades between labels
                let mut major = Vec::new();
                let mut minor = Vec::new();
                for d in (lo.floor() as i64)..=(hi.ceil() as i64) {
                    for &m in &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0] {
                        let v = d as f64 + f64::log10(m);
                        if v < lo || v > hi {
                            continue;
                        }
                        if labelled.contains(&m) && (m != 1.0 || d.rem_euclid(every) == 0) {
                            major.push(v);
                        } else if span <= 12.0 && m != 1.5 {
                            minor.push(v);
                        }
                    }
                }
                (major, minor)
            }
        };
        Axis { range, major, minor, scale, integer }
    }

    /// The tick label for drawing coordinate `v`.
    fn label(&self, v: f64) -> String {
        match self.scale {
            Scale::Log => short_number(10f64.powf(v)),
            Scale::Linear if self.integer => format!("{}", v.round() as i64),
            Scale::Linear => short_number(v),
        }
    }
}

/// Our ticks instead of plotters' own: labelled (bold) ticks, then grid-only (light) ones.
impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = self.range;
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        limit.0 + (f64::from(limit.1 - limit.0) * t + 1e-3).floor() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() { self.minor.clone() } else { self.major.clone() }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.0..self.range.1
    }
}

/// 1, 2, 2.5 or 5 × 10ᵏ: the smallest at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * p).find(|&s| s >= raw * (1.0 - 1e-9)).unwrap_or(10.0 * p)
}

/// Multiples of `step` in [lo, hi].
fn multiples(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    if last < first || last - first > 2000 {
        return Vec::new();
    }
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A number with at most 4 significant digits, in scientific notation when very large or small.
fn short_number(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.2e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exp}", trim(mant.to_string()));
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    trim(format!("{v:.decimals$}"))
}

fn trim(s: String) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("backprop-plot-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn check_written(files: &[PathBuf; 2]) {
        let png = std::fs::read(&files[0]).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn every_chart_kind_renders_to_png_and_svg() {
        let dir = scratch("kinds");
        let train: Vec<f64> = (0..10_000)
            .map(|e| 0.7 * (-(e as f64) / 2000.0).exp() + 0.05 + 0.01 * (e as f64 * 0.05).sin())
            .collect();
        let val: Vec<f64> = (0..10_000).map(|e| 0.72 * (-(e as f64) / 2300.0).exp() + 0.08).collect();
        let c = Chart::training_curves(
            "Loss — 4-5-1 sigmoid on iris",
            "loss (squared error)",
            [("train", &train[..]), ("validation", &val[..])],
            true,
        );
        check_written(&c.write(dir.join("loss")).unwrap());

        let measured: Vec<f64> = (0..80).map(|i| i as f64 * 0.1).collect();
        let predicted: Vec<f64> = measured.iter().map(|m| m + 0.3 * (m * 7.0).sin()).collect();
        let c = Chart::predicted_vs_measured(
            "Predicted vs measured petal width",
            "petal width (cm)",
            "train",
            &measured,
            &predicted,
        )
        .add_predictions("validation", &measured[..20], &predicted[40..60]);
        check_written(&c.write(dir.join("pred")).unwrap());

        let eig: Vec<f64> = (0..25)
            .map(|i| {
                if i < 20 {
                    10f64.powf(2.0 - i as f64 * 0.4)
                } else if i < 23 {
                    0.0
                } else {
                    -0.01 * i as f64
                }
            })
            .collect();
        let c = Chart::spectrum("Hessian spectrum at w*", &eig);
        assert!(c.note.as_deref().unwrap_or_default().contains("3 eigenvalue(s)"));
        check_written(&c.write(dir.join("spectrum")).unwrap());

        let mus: Vec<f64> = (0..13).map(|i| 10f64.powf(-6.0 + i as f64 * 0.5)).collect();
        let c = Chart::new("Shrinkage prediction error vs μ", "L2 strength μ", "‖w_pred − w_μ‖ / ‖w_μ‖")
            .log_x()
            .log_y()
            .series_styled(
                "eigenbasis prediction",
                mus.iter().map(|&m| (m, 1e-8 + m * m)),
                Style::LinePoints(Marker::Circle),
            )
            .series_styled("linear (small μ)", mus.iter().map(|&m| (m, 1e-7 + m)), Style::Dashed);
        check_written(&c.write(dir.join("mu")).unwrap());
        if std::env::var_os("BACKPROP_KEEP_PLOTS").is_none() {
            std::fs::remove_dir_all(&dir).ok();
        } else {
            eprintln!("plots kept in {}", dir.display());
        }
    }

    #[test]
    fn empty_constant_and_non_finite_series_still_render() {
        let dir = scratch("edge");
        let c = Chart::new("empty", "x", "y");
        check_written(&c.write(dir.join("empty")).unwrap());
        let c = Chart::new("constant", "x", "y").line("c", [(1.0, 2.0), (2.0, 2.0)]);
        check_written(&c.write(dir.join("constant")).unwrap());
        let c = Chart::new("nan", "x", "y").log_y().line("c", [(1.0, f64::NAN), (2.0, 0.0), (3.0, 1.0)]);
        assert_eq!(c.visible().1, 2);
        check_written(&c.write(dir.join("nan")).unwrap());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(1e-6), "1e-6");
        assert_eq!(short_number(2.5e-7), "2.5e-7");
        assert_eq!(short_number(100.0), "100");
        assert_eq!(short_number(0.1 + 0.2), "0.3");
        assert_eq!(short_number(-1500.0), "-1500");
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.9), 2.0);
        assert_eq!(nice_step(23.0), 25.0);
    }

    #[test]
    fn decimation_keeps_the_envelope_and_the_ends() {
        let p: Vec<(f64, f64)> = (0..100_000)
            .map(|i| (i as f64, if i == 54_321 { 9.0 } else { (i as f64 * 0.01).sin() }))
            .collect();
        let d = decimate(&p, 500);
        assert!(d.len() <= 2000, "{}", d.len());
        assert_eq!((d[0], *d.last().unwrap()), (p[0], p[99_999]));
        assert!(d.contains(&(54_321.0, 9.0)));
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(decimate(&p[..10], 500), &p[..10]);
    }

    #[test]
    fn log_axes_label_narrow_and_wide_ranges() {
        // 0.05 … 0.8: barely over a decade, so 1-2-5 (or finer) labels, not just "0.1".
        let a = Axis::new((0.05f64.log10(), 0.8f64.log10()), Scale::Log, false);
        let labels: Vec<String> = a.major.iter().map(|&v| a.label(v)).collect();
        assert!(labels.len() >= 4, "{labels:?}");
        assert!(labels.contains(&"0.1".to_string()) && labels.contains(&"0.5".to_string()), "{labels:?}");
        // 20 decades: about 10 labels, decades only.
        let a = Axis::new((-16.0, 4.0), Scale::Log, false);
        assert!(a.major.len() <= 11 && a.major.len() >= 5, "{:?}", a.major);
        assert!(a.major.iter().all(|v| v.fract() == 0.0));
    }

    #[test]
    fn writing_into_a_missing_directory_is_an_error() {
        let e = Chart::new("t", "x", "y").write("/nonexistent-dir/plot").unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir/plot.png"), "{e}");
    }
}
