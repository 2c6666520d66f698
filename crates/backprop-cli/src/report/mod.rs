//! Reports: one document model rendered to a self-contained HTML page, Markdown, and a JSON
//! file with every number, plus each figure as PNG and SVG — all written atomically.
//!
//! The tour builds a [`Document`] (sections of text, tables, checks and charts) and a
//! `serde_json::Value`; [`write`] turns them into a directory a reader can open with no server:
//! `report.html` embeds its figures as `data:` URIs (and links the files), `report.md` links the
//! PNGs, `report.json` holds the numbers.

mod html;
mod markdown;

use std::path::{Path, PathBuf};

use anyhow::Context;

use backprop::io::atomic_write;

use crate::plot::Chart;

/// A whole report.
#[derive(Clone, Debug, Default)]
pub struct Document {
    /// Page title.
    pub title: String,
    /// One line under the title: what was run, when, on what.
    pub subtitle: String,
    /// Overall outcome shown at the top: `(all checks passed, one-sentence summary)`.
    pub verdict: Option<(bool, String)>,
    /// The sections, in reading order.
    pub sections: Vec<Section>,
}

/// One numbered section.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// Heading (without the number).
    pub title: String,
    /// Pass / fail / caution badge next to the heading.
    pub status: Option<Status>,
    /// Content, in order.
    pub blocks: Vec<Block>,
}

/// A section's badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every check in the section passed.
    Pass,
    /// A check failed.
    Fail,
    /// No check failed, but an assumption does not hold: read with care.
    Caution,
}

impl Status {
    /// The badge text.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Caution => "CAUTION",
        }
    }
}

/// A check with its outcome.
#[derive(Clone, Debug)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Outcome.
    pub passed: bool,
    /// The numbers behind it (measured vs required).
    pub detail: String,
}

/// A table; cells are preformatted strings.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Optional caption above the table.
    pub caption: Option<String>,
    /// Column headers.
    pub header: Vec<String>,
    /// Rows of cells, each as long as `header`.
    pub rows: Vec<Vec<String>>,
    /// Columns to right-align (numbers).
    pub numeric: Vec<bool>,
}

impl Table {
    /// A table with the given headers; every column but the first right-aligned.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        let numeric = (0..header.len()).map(|i| i > 0).collect();
        Table { caption: None, header, rows: Vec::new(), numeric }
    }

    /// Sets the caption.
    pub fn caption(mut self, c: impl Into<String>) -> Self {
        self.caption = Some(c.into());
        self
    }

    /// Adds a row.
    pub fn row<S: Into<String>>(mut self, cells: impl IntoIterator<Item = S>) -> Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a row in place.
    pub fn push<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
}

/// A chart and the file stem it is saved under (`<name>.png`, `<name>.svg`).
#[derive(Clone, Debug)]
pub struct Figure {
    /// File stem, e.g. `loss`.
    pub name: String,
    /// What the reader should see in it.
    pub caption: String,
    /// The chart.
    pub chart: Chart,
}

/// A piece of a section.
#[derive(Clone, Debug)]
pub enum Block {
    /// A paragraph; `code` in backticks is shown as code.
    Text(String),
    /// A bulleted list.
    Bullets(Vec<String>),
    /// Checks with pass/fail marks.
    Checks(Vec<Check>),
    /// A table.
    Table(Table),
    /// A figure.
    Figure(Figure),
    /// Preformatted text (console output, formulas).
    Pre(String),
}

impl Section {
    /// An empty section.
    pub fn new(title: impl Into<String>) -> Self {
        Section { title: title.into(), status: None, blocks: Vec::new() }
    }

    /// Appends a paragraph.
    pub fn text(&mut self, t: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Text(t.into()));
        self
    }

    /// Appends any block.
    pub fn block(&mut self, b: Block) -> &mut Self {
        self.blocks.push(b);
        self
    }

    /// The section's checks, in order.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.blocks.iter().flat_map(|b| match b {
            Block::Checks(c) => c.as_slice(),
            _ => &[],
        })
    }
}

impl Document {
    /// Every check in the report.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.sections.iter().flat_map(|s| s.checks())
    }

    fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.sections.iter().flat_map(|s| &s.blocks).filter_map(|b| match b {
            Block::Figure(f) => Some(f),
            _ => None,
        })
    }
}

/// The files [`write`] produced.
#[derive(Clone, Debug)]
pub struct Written {
    /// The report directory.
    pub dir: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.json`.
    pub json: PathBuf,
    /// Every figure file (PNG and SVG).
    pub figures: Vec<PathBuf>,
}

/// Writes `report.html`, `report.md`, `report.json` and every figure as PNG and SVG into
/// `dir` (created if missing). Each file is written atomically: a reader never sees half a
/// file, and an interrupted run leaves the previous report intact file by file.
pub fn write(dir: &Path, doc: &Document, json: &serde_json::Value) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating report directory {}", dir.display()))?;
    let mut figures = Vec::new();
    let mut svgs = Vec::new();
    for fig in doc.figures() {
        let svg = fig.chart.svg_string()?;
        let svg_path = dir.join(format!("{}.svg", fig.name));
        atomic_write(&svg_path, svg.as_bytes())?;
        let png_path = dir.join(format!("{}.png", fig.name));
        atomic_write(&png_path, &fig.chart.png_bytes()?)?;
        figures.push(png_path);
        figures.push(svg_path);
        svgs.push((fig.name.clone(), svg));
    }
    let html_path = dir.join("report.html");
    atomic_write(&html_path, html::render(doc, &svgs).as_bytes())?;
    let md_path = dir.join("report.md");
    atomic_write(&md_path, markdown::render(doc).as_bytes())?;
    let json_path = dir.join("report.json");
    let mut text = serde_json::to_string_pretty(json)?;
    text.push('\n');
    atomic_write(&json_path, text.as_bytes())?;
    Ok(Written { dir: dir.to_path_buf(), html: html_path, markdown: md_path, json: json_path, figures })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::{Series, Style};

    fn sample() -> Document {
        let mut s = Section::new("Checks & <tables>");
        s.status = Some(Status::Pass);
        s.text("The value of `y_hat` is < 1.");
        s.block(Block::Checks(vec![Check { name: "forward".into(), passed: true, detail: "err 0".into() }]));
        s.block(Block::Table(Table::new(["name", "value"]).caption("numbers").row(["a|b", "1.5"])));
        s.block(Block::Figure(Figure {
            name: "curve".into(),
            caption: "a curve".into(),
            chart: Chart::new("A curve", "x (1)", "y (1)").series(
                Series::new("y = x²", (0..10).map(|i| (i as f64, (i * i) as f64)).collect(), Style::Line)
                    .color(0),
            ),
        }));
        Document {
            title: "Test report".into(),
            subtitle: "unit test".into(),
            verdict: Some((true, "all good".into())),
            sections: vec![s],
        }
    }

    #[test]
    fn writes_every_file_and_embeds_figures() {
        let dir = std::env::temp_dir().join(format!("backprop-report-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = write(&dir, &sample(), &serde_json::json!({"x": 1.5})).unwrap();
        let html = std::fs::read_to_string(&out.html).unwrap();
        assert!(html.contains("data:image/svg+xml;base64,"));
        assert!(html.contains("Checks &amp; &lt;tables&gt;"), "HTML is escaped");
        assert!(html.contains("<code>y_hat</code>"));
        let md = std::fs::read_to_string(&out.markdown).unwrap();
        assert!(md.contains("![a curve](curve.png)"));
        assert!(md.contains("a\\|b"), "pipes escaped in Markdown tables");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out.json).unwrap()).unwrap();
        assert_eq!(json["x"], 1.5);
        for f in &out.figures {
            assert!(std::fs::metadata(f).unwrap().len() > 1000, "{}", f.display());
        }
        let png = std::fs::read(dir.join("curve.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // No temporary files left behind.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
