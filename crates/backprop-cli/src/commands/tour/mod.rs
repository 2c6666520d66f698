//! `backprop tour`: the main job. One command walks the whole notebook — its two checks, the
//! backward pass, training on real data, the Hessian and the L2-shrinkage analysis — and writes
//! a self-contained report directory.
//!
//! Each step lives in its own module and returns a [`Step`]: a report section (text, tables,
//! checks, figures), its numbers as JSON, and a one-line summary for the console. This module
//! only sequences them, prints progress, and writes the files.

mod backward;
mod checks;
mod curvature;
mod format;
mod training;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::report::{self, Document, Section, Status};

/// Options of `backprop tour`.
#[derive(clap::Args)]
#[command(
    about = "The main job: walk the whole notebook on real data and write a report",
    long_about = "The main job: walk the whole notebook on real data and write a report.\n\n\
Steps:\n  \
1. the notebook's two checks (forward value, gradient table), values next to the expected ones;\n  \
2. the backward pass of the notebook network: every δ term, and the gradients checked against \
the autodiff engine and central finite differences;\n  \
3. training the notebook's 4-5-1 sigmoid network with the squared error by full-batch gradient \
descent on iris, versicolor vs virginica (standardised features, seeded train/held-out split);\n  \
4. the exact Hessian at the trained weights, its spectrum, and the L2-shrinkage analysis for \
several μ: predicted Q(Λ+μI)⁻¹ΛQᵀw* vs the measured regularised optimum, per eigendirection, \
with the notebook's assumptions checked at that w*;\n  \
5. the report: report.html (opens offline), report.md, report.json (every number), and the \
plots as PNG and SVG;\n  \
6. a short summary.\n\n\
Needs no network and no files. Exit status: 0 if every check passes, 1 if any fails, 2 on an \
error (e.g. the output directory cannot be written).",
    after_help = "Examples:\n  cargo run --release -- tour\n  backprop tour --out /tmp/report --quiet\n  \
backprop tour --json | jq .passed"
)]
pub struct Args {
    /// Directory for the report files (created if missing; existing report files are replaced).
    #[arg(long, value_name = "DIR", default_value = "backprop-report")]
    pub out: PathBuf,
    /// No progress output on stderr; only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the report's numbers (the content of report.json) to stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// What one step contributes.
pub struct Step {
    /// Its report section (status set from its checks).
    pub section: Section,
    /// Its numbers.
    pub json: serde_json::Value,
    /// One line for the console.
    pub summary: String,
}

impl Step {
    /// Builds a step; the section's badge is FAIL if any check failed, CAUTION if `caution`,
    /// else PASS.
    pub fn new(mut section: Section, json: serde_json::Value, summary: String, caution: bool) -> Self {
        let failed = section.checks().any(|c| !c.passed);
        section.status = Some(if failed {
            Status::Fail
        } else if caution {
            Status::Caution
        } else {
            Status::Pass
        });
        Step { section, json, summary }
    }
}

/// Progress lines on stderr, unless quiet.
struct Console {
    quiet: bool,
    total: usize,
}

impl Console {
    fn step(&self, i: usize, name: &str, step: &Step) {
        if self.quiet {
            return;
        }
        let status = step.section.status.map_or("", Status::label);
        eprintln!("[{i}/{}] {name:<28} {status:<8} {}", self.total, step.summary);
    }
}

/// Runs the tour; exit status 0 only if every check passes.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    // Fail before half a minute of work, not after, when the report cannot be written.
    std::fs::create_dir_all(&args.out)
        .map_err(|e| backprop::Error::io(&args.out, e))
        .map_err(|e| anyhow::anyhow!("cannot create the report directory: {e}"))?;
    let console = Console { quiet: args.quiet || args.json, total: 6 };
    let mut doc = Document {
        title: "backprop tour: the notebook, solved and tested on real data".into(),
        subtitle: format!(
            "backprop {} · f64 · {} · no network, no input files",
            env!("CARGO_PKG_VERSION"),
            format::utc_now()
        ),
        ..Document::default()
    };
    let mut json = serde_json::Map::new();
    json.insert("version".into(), env!("CARGO_PKG_VERSION").into());

    let mut record = |i: usize, key: &str, name: &str, step: Step| {
        console.step(i, name, &step);
        json.insert(key.into(), step.json);
        doc.sections.push(step.section);
    };
    record(1, "notebook", "notebook checks", checks::run()?);
    record(2, "backward", "backward pass", backward::run()?);
    let (step, trained) = training::run(training::Config::default(), !console.quiet)?;
    record(3, "training", "training on iris", step);
    record(4, "curvature", "Hessian and L2 shrinkage", curvature::run(&trained)?);

    let checks: Vec<serde_json::Value> = doc
        .checks()
        .map(|c| serde_json::json!({"name": c.name, "passed": c.passed, "detail": c.detail}))
        .collect();
    let failed: Vec<String> = doc.checks().filter(|c| !c.passed).map(|c| c.name.clone()).collect();
    let passed = failed.is_empty();
    let n_checks = checks.len();
    doc.verdict = Some((
        passed,
        if passed {
            format!("All {n_checks} checks pass.")
        } else {
            format!("{} of {n_checks} checks fail: {}.", failed.len(), failed.join("; "))
        },
    ));
    json.insert("checks".into(), checks.into());
    json.insert("passed".into(), passed.into());
    json.insert("report_dir".into(), args.out.display().to_string().into());
    json.insert("elapsed_seconds".into(), start.elapsed().as_secs_f64().into());

    let json = serde_json::Value::Object(json);
    let written = report::write(&args.out, &doc, &json)?;
    if !console.quiet {
        eprintln!(
            "[5/6] {:<28} {:<8} {} figures (PNG + SVG), report.html, report.md, report.json",
            "report",
            "",
            written.figures.len() / 2
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        let shown = std::fs::canonicalize(&written.html).unwrap_or(written.html.clone());
        println!(
            "{} {n_checks} checks, {} failed, in {:.1} s",
            if passed { "PASS" } else { "FAIL" },
            failed.len(),
            start.elapsed().as_secs_f64()
        );
        for f in &failed {
            println!("  failed: {f}");
        }
        println!("report: {}", shown.display());
    }
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
