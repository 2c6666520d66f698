//! CSV files with a header row: features and targets by column name.
//!
//! Every problem is reported with the file, the 1-based line and the 1-based field (column)
//! number, and the column's name: missing fields, ragged rows, text where a number belongs,
//! NaN and infinities, values that overflow f32.

use std::path::Path;

use ndarray::Array2;

use super::Dataset;
use super::labels::{encode_classes, parse_number};
use super::options::{LoadOptions, TargetKind, Targets};
use crate::{Error, Result, Scalar};

fn parse_err(path: &Path, line: usize, column: usize, message: impl Into<String>) -> Error {
    Error::Parse { path: path.to_path_buf(), line, column, message: message.into() }
}

/// The field separator, from the header line: a comma, or else a tab or a semicolon when the
/// header has those and no comma (TSV files, spreadsheets saved in locales with decimal commas).
fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    if header.contains(',') {
        b','
    } else if header.contains('\t') {
        b'\t'
    } else if header.contains(';') {
        b';'
    } else {
        b','
    }
}

/// Reads a CSV file; see [`read_csv_str`].
pub fn read_csv<T: Scalar>(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Dataset<T>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        parse_err(path, line, 1, "not valid UTF-8 text; is this really a CSV file?")
    })?;
    read_csv_str(&text, path, opts)
}

/// Where to cut `body` for two threads: just after the line break nearest past its middle; `None`
/// when it is shorter than `split_from` or holds a quote (a quoted field may span lines).
fn split_point(body: &str, split_from: usize) -> Option<usize> {
    let bytes = body.as_bytes();
    if bytes.len() < split_from.max(2) || bytes.contains(&b'"') {
        return None;
    }
    let at = bytes.len() / 2 + bytes[bytes.len() / 2..].iter().position(|&c| c == b'\n')? + 1;
    (at < bytes.len()).then_some(at)
}

/// The header's verdict on each column, for [`parse_rows`].
struct Columns<'a> {
    names: &'a [String],
    features: &'a [usize],
    targets: &'a [usize],
    origin: &'a Path,
}

/// The parsed rows: features row-major, each target column's raw fields, each row's line.
struct Rows {
    x: Vec<f64>,
    raw_targets: Vec<Vec<String>>,
    lines: Vec<usize>,
}

impl Rows {
    /// Appends the rows that follow.
    fn append(&mut self, mut next: Rows) {
        self.x.append(&mut next.x);
        self.raw_targets.iter_mut().zip(&mut next.raw_targets).for_each(|(a, b)| a.append(b));
        self.lines.append(&mut next.lines);
    }
}

/// Parses the data rows in `chunk`, whose first line is line `first_line` of the file (for
/// errors): features as numbers, targets as trimmed text (numbers or labels are decided later,
/// from the whole column).
fn parse_rows<T: Scalar>(chunk: &str, delimiter: u8, first_line: usize, cols: &Columns<'_>) -> Result<Rows> {
    let Columns { names, features, targets, origin } = *cols;
    let line_of = |p: Option<&csv::Position>| p.map_or(0, |p| p.line() as usize + first_line - 1);
    let mut rows = Rows { x: Vec::new(), raw_targets: vec![Vec::new(); targets.len()], lines: Vec::new() };
    let mut reader = reader(chunk, delimiter);
    for record in reader.records() {
        let record = record.map_err(|e| parse_err(origin, line_of(e.position()), 1, e.to_string()))?;
        let line = line_of(record.position());
        if record.len() == 1 && record[0].trim().is_empty() {
            continue; // a blank line (e.g. whitespace only)
        }
        if record.len() != names.len() {
            return Err(parse_err(
                origin,
                line,
                record.len().min(names.len()) + 1,
                format!("row has {} fields but the header has {} columns", record.len(), names.len()),
            ));
        }
        for &c in features {
            let v = parse_number(&record[c])
                .map_err(|m| parse_err(origin, line, c + 1, format!("{m} (column `{}`)", names[c])))?;
            if !T::of(v).is_finite() {
                return Err(parse_err(
                    origin,
                    line,
                    c + 1,
                    format!("{v} overflows {} (column `{}`)", T::DTYPE, names[c]),
                ));
            }
            rows.x.push(v);
        }
        for (t, &c) in targets.iter().enumerate() {
            rows.raw_targets[t].push(record[c].trim().to_string());
        }
        rows.lines.push(line);
    }
    Ok(rows)
}

/// Parses CSV text; `origin` names it in errors (a path, or e.g. `builtin:iris`).
///
/// The first row must name the columns. Targets are chosen by [`LoadOptions::targets`]; every
/// other column is a feature and must be numeric.
pub fn read_csv_str<T: Scalar>(text: &str, origin: &Path, opts: &LoadOptions) -> Result<Dataset<T>> {
    parse_csv(text, origin, opts, SPLIT_FROM)
}

/// Rows of this many bytes or more are parsed in two halves side by side (when the text has no
/// quote character: then no field spans lines, and a line break splits the rows cleanly). One
/// thread parses ~130 MB/s here.
const SPLIT_FROM: usize = 1 << 22;

/// A CSV reader for `text` as this module reads every file: no header handling, ragged rows
/// allowed (reported with their line), fields untrimmed (trimmed where read).
fn reader(text: &str, delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
}

/// [`read_csv_str`], splitting rows of `split_from` bytes or more between two threads.
fn parse_csv<T: Scalar>(
    text: &str,
    origin: &Path,
    opts: &LoadOptions,
    split_from: usize,
) -> Result<Dataset<T>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text); // Excel's byte-order mark
    let delimiter = sniff_delimiter(text);
    let mut reader = reader(text, delimiter);
    let mut records = reader.records();
    let csv_err = |e: csv::Error| {
        let (line, column) = e.position().map_or((0, 0), |p| (p.line() as usize, 1));
        parse_err(origin, line, column, e.to_string())
    };

    // Header.
    let header = match records.next() {
        None => {
            return Err(Error::Format {
                path: origin.into(),
                message: "empty file: expected a header row naming the columns".into(),
            });
        }
        Some(r) => r.map_err(csv_err)?,
    };
    let header_line = header.position().map_or(1, |p| p.line() as usize);
    // Fields are trimmed where they are read (the reader's own trimming copies every record).
    let names: Vec<String> = header.iter().map(|f| f.trim().to_string()).collect();
    for (c, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(parse_err(origin, header_line, c + 1, "empty column name in the header row"));
        }
        if names[..c].contains(name) {
            return Err(parse_err(
                origin,
                header_line,
                c + 1,
                format!("column name `{name}` appears twice in the header"),
            ));
        }
    }
    if names.iter().all(|n| parse_number(n).is_ok()) {
        return Err(parse_err(
            origin,
            header_line,
            1,
            "the first row holds numbers, not column names: add a header row naming the columns",
        ));
    }

    // Which columns are targets.
    let target_cols: Vec<usize> = match &opts.targets {
        Targets::Last => vec![names.len() - 1],
        Targets::None => vec![],
        Targets::Named(wanted) => {
            if wanted.is_empty() {
                return Err(Error::invalid("target", "no target column named"));
            }
            let mut cols = Vec::with_capacity(wanted.len());
            for (i, w) in wanted.iter().enumerate() {
                let Some(c) = names.iter().position(|n| n == w) else {
                    return Err(Error::invalid(
                        "target",
                        format!(
                            "no column `{w}` in {}; the columns are: {}",
                            origin.display(),
                            names.join(", ")
                        ),
                    ));
                };
                if wanted[..i].contains(w) {
                    return Err(Error::invalid("target", format!("column `{w}` is named twice")));
                }
                cols.push(c);
            }
            cols
        }
    };
    let feature_cols: Vec<usize> = (0..names.len()).filter(|c| !target_cols.contains(c)).collect();
    if feature_cols.is_empty() {
        return Err(Error::invalid(
            "target",
            format!("every column of {} is a target; nothing is left as input", origin.display()),
        ));
    }
    let kind = opts.effective_kind();
    if kind == TargetKind::Classes && target_cols.len() != 1 {
        return Err(Error::invalid(
            "target",
            format!("class labels need exactly one target column, got {}", target_cols.len()),
        ));
    }

    // Rows.
    let next = records.reader().position().clone();
    let body = &text[next.byte() as usize..];
    let columns = Columns { names: &names, features: &feature_cols, targets: &target_cols, origin };
    let parse = |chunk: &str, first_line: usize| parse_rows::<T>(chunk, delimiter, first_line, &columns);
    let Rows { x, raw_targets, lines } = match split_point(body, split_from) {
        Some(at) if rayon::current_num_threads() > 1 => {
            let (a, b) = body.split_at(at);
            let b_line = next.line() as usize + a.bytes().filter(|&c| c == b'\n').count();
            let (a, b) = rayon::join(|| parse(a, next.line() as usize), || parse(b, b_line));
            let mut rows = a?;
            rows.append(b?);
            rows
        }
        _ => parse(body, next.line() as usize)?,
    };
    let n = lines.len();
    if n == 0 {
        return Err(Error::Format { path: origin.into(), message: "no data rows after the header".into() });
    }

    // Targets: numbers, or class labels.
    let numeric_col = |t: usize| -> Result<Vec<f64>> {
        let c = target_cols[t];
        raw_targets[t]
            .iter()
            .enumerate()
            .map(|(r, f)| {
                let v = parse_number(f).map_err(|m| {
                    parse_err(origin, lines[r], c + 1, format!("{m} (target column `{}`)", names[c]))
                })?;
                if !T::of(v).is_finite() {
                    return Err(parse_err(
                        origin,
                        lines[r],
                        c + 1,
                        format!("{v} overflows {} (column `{}`)", T::DTYPE, names[c]),
                    ));
                }
                Ok(v)
            })
            .collect()
    };
    let as_classes = match kind {
        TargetKind::Classes => true,
        TargetKind::Values => false,
        TargetKind::Auto => {
            // Non-numeric labels in a single target column are class names.
            target_cols.len() == 1
                && raw_targets[0].iter().any(|f| parse_number(f).is_err() && !f.trim().is_empty())
        }
    };
    let (y, classes) = if as_classes {
        let c = target_cols[0];
        let labels: Vec<&str> = raw_targets[0].iter().map(String::as_str).collect();
        let (idx, classes) = encode_classes(&labels, opts.class_order.as_deref()).map_err(|(r, m)| {
            parse_err(origin, lines[r], c + 1, format!("{m} (target column `{}`)", names[c]))
        })?;
        (
            Array2::from_shape_vec((n, 1), idx).map_err(|e| Error::shape("read_csv", e.to_string()))?,
            Some(classes),
        )
    } else {
        let mut y = Array2::<f64>::zeros((n, target_cols.len()));
        for t in 0..target_cols.len() {
            y.column_mut(t).assign(&ndarray::Array1::from(numeric_col(t)?));
        }
        (y, None)
    };
    let x = Array2::from_shape_vec((n, feature_cols.len()), x)
        .map_err(|e| Error::shape("read_csv", e.to_string()))?;
    Dataset::new(
        x.mapv(T::of),
        y.mapv(T::of),
        feature_cols.iter().map(|&c| names[c].clone()).collect(),
        target_cols.iter().map(|&c| names[c].clone()).collect(),
        classes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn read(text: &str, opts: &LoadOptions) -> Result<Dataset<f64>> {
        read_csv_str(text, Path::new("t.csv"), opts)
    }

    fn parse_position(e: Error) -> (usize, usize, String) {
        match e {
            Error::Parse { line, column, message, path } => {
                assert_eq!(path, Path::new("t.csv"));
                (line, column, message)
            }
            other => panic!("expected a parse error, got {other}"),
        }
    }

    /// Rows split between two threads (a threshold of 0 splits every quote-free text) give what
    /// one pass gives: the same data, or the same error at the same line and column.
    #[test]
    fn rows_parsed_in_two_halves_match_one_pass() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let mut rows: Vec<String> =
            (0..41).map(|i| format!("{}, {} ,{}", i, i as f64 * 0.5, ["p", "q", "r"][i % 3])).collect();
        rows[7] = String::new(); // a blank line
        let good = format!("a,b,y\r\n{}\r\n", rows.join("\r\n"));
        let mut bad_late = rows.clone();
        bad_late[35] = "35,x,p".into();
        let mut bad_early = rows.clone();
        bad_early[3] = "3,4".into();
        bad_early[30] = "30,y,q".into();
        let texts =
            [good, format!("a,b,y\n{}\n", bad_late.join("\n")), format!("a,b,y\n{}", bad_early.join("\n"))];
        pool.install(|| {
            for text in &texts {
                assert!(split_point(text.split_once('\n').unwrap().1, 0).is_some());
                let one = parse_csv::<f64>(text, Path::new("t.csv"), &LoadOptions::new(), usize::MAX);
                let two = parse_csv::<f64>(text, Path::new("t.csv"), &LoadOptions::new(), 0);
                match (one, two) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b),
                    (Err(a), Err(b)) => assert_eq!(parse_position(a), parse_position(b)),
                    (a, b) => panic!("one pass {a:?}, two halves {b:?}"),
                }
            }
        });
        let e = parse_position(
            parse_csv::<f64>(&texts[1], Path::new("t.csv"), &LoadOptions::new(), 0).unwrap_err(),
        );
        assert_eq!((e.0, e.1), (37, 2), "{e:?}"); // row 35 is line 37, field 2
        assert_eq!(split_point("a,\"b\nc\"\n1,2\n", 0), None); // a quote: never split
    }

    #[test]
    fn last_column_is_the_default_target() {
        let d = read("a,b,y\n1,2,3\n4,5,6\n", &LoadOptions::new()).unwrap();
        assert_eq!(d.x, array![[1., 2.], [4., 5.]]);
        assert_eq!(d.y, array![[3.], [6.]]);
        assert_eq!(d.feature_names, ["a", "b"]);
        assert_eq!(d.target_names, ["y"]);
        assert!(d.classes.is_none());
    }

    #[test]
    fn named_targets_in_the_given_order() {
        let d = read("a,b,c\n1,2,3\n", &LoadOptions::new().target_list("c, a")).unwrap();
        assert_eq!(d.x, array![[2.]]);
        assert_eq!(d.y, array![[3., 1.]]);
        assert_eq!(d.target_names, ["c", "a"]);
    }

    #[test]
    fn string_labels_become_sorted_class_indices() {
        let d = read("a,kind\n1,dog\n2,cat\n3,dog\n", &LoadOptions::new()).unwrap();
        assert_eq!(d.y, array![[1.], [0.], [1.]]);
        assert_eq!(d.classes.unwrap(), ["cat", "dog"]);
    }

    #[test]
    fn integer_labels_become_classes_only_when_asked() {
        let text = "a,label\n1,3\n2,1\n3,3\n";
        assert!(read(text, &LoadOptions::new()).unwrap().classes.is_none());
        // Non-negative integers are class indices already: 3 stays class 3.
        let d = read(text, &LoadOptions::new().classes()).unwrap();
        assert_eq!(d.y, array![[3.], [1.], [3.]]);
        assert_eq!(d.classes.unwrap(), ["0", "1", "2", "3"]);
        let d = read(text, &LoadOptions::new().class_order(["3", "2", "1"])).unwrap();
        assert_eq!(d.y, array![[0.], [2.], [0.]]);
    }

    #[test]
    fn no_targets_makes_every_column_a_feature() {
        let d = read("a,b\n1,2\n", &LoadOptions::new().no_targets()).unwrap();
        assert_eq!(d.x, array![[1., 2.]]);
        assert_eq!(d.y.dim(), (1, 0));
    }

    #[test]
    fn quotes_blanks_bom_and_crlf_are_handled() {
        let d = read("\u{feff}\"a\", b ,y\r\n\"1\", 2 ,3\r\n\r\n", &LoadOptions::new()).unwrap();
        assert_eq!(d.feature_names, ["a", "b"]);
        assert_eq!(d.x, array![[1., 2.]]);
        let d = read("a,y\n1, setosa \n2,\" virginica\"\n   \n3,setosa\n", &LoadOptions::new()).unwrap();
        assert_eq!(d.classes.as_deref().unwrap(), ["setosa", "virginica"]);
        assert_eq!(d.y, array![[0.], [1.], [0.]]);
    }

    #[test]
    fn tab_and_semicolon_separated_files_are_recognised() {
        for text in ["a\tb\ty\n1\t2\t3\n", "a;b;y\n1;2;3\n"] {
            let d = read(text, &LoadOptions::new()).unwrap();
            assert_eq!((d.x.clone(), d.y.clone()), (array![[1., 2.]], array![[3.]]), "{text:?}");
        }
        // A decimal comma in a semicolon file is an error naming the field, not a silent split.
        let (l, c, m) = parse_position(read("a;y\n1,5;2\n", &LoadOptions::new()).unwrap_err());
        assert_eq!((l, c), (2, 1));
        assert!(m.contains("`1,5` is not a number"), "{m}");
    }

    #[test]
    fn missing_field_names_line_column_and_name() {
        let (l, c, m) = parse_position(read("a,b,y\n1,2,3\n4,,6\n", &LoadOptions::new()).unwrap_err());
        assert_eq!((l, c), (3, 2));
        assert!(m.contains("missing") && m.contains("`b`"), "{m}");
        let (l, c, _) = parse_position(read("a,y\n1,\n", &LoadOptions::new()).unwrap_err());
        assert_eq!((l, c), (2, 2));
    }

    #[test]
    fn ragged_rows_are_errors() {
        let (l, _, m) = parse_position(read("a,b,y\n1,2,3\n4,5\n", &LoadOptions::new()).unwrap_err());
        assert_eq!(l, 3);
        assert!(m.contains("2 fields") && m.contains("3 columns"), "{m}");
        let (l, c, _) = parse_position(read("a,b,y\n1,2,3,4\n", &LoadOptions::new()).unwrap_err());
        assert_eq!((l, c), (2, 4));
    }

    #[test]
    fn non_numeric_features_are_errors() {
        let (l, c, m) = parse_position(read("a,b,y\n1,x2,3\n", &LoadOptions::new()).unwrap_err());
        assert_eq!((l, c), (2, 2));
        assert!(m.contains("`x2` is not a number"), "{m}");
    }

    #[test]
    fn nan_and_infinity_are_rejected_with_position() {
        for bad in ["nan", "NaN", "inf", "-Infinity", "1e999"] {
            let text = format!("a,y\n1,2\n{bad},3\n");
            let (l, c, m) = parse_position(read(&text, &LoadOptions::new()).unwrap_err());
            assert_eq!((l, c), (3, 1), "{bad}");
            assert!(m.contains("finite"), "{m}");
        }
        let (l, c, _) = parse_position(read("a,y\n1,nan\n", &LoadOptions::new().values()).unwrap_err());
        assert_eq!((l, c), (2, 2));
    }

    #[test]
    fn f32_overflow_is_rejected() {
        let e = read_csv_str::<f32>("a,y\n1e300,1\n", Path::new("t.csv"), &LoadOptions::new()).unwrap_err();
        assert!(e.to_string().contains("overflows f32"), "{e}");
    }

    #[test]
    fn values_mode_rejects_text_targets() {
        let (l, c, m) = parse_position(read("a,y\n1,2\n2,dog\n", &LoadOptions::new().values()).unwrap_err());
        assert_eq!((l, c), (3, 2));
        assert!(m.contains("target column `y`"), "{m}");
    }

    #[test]
    fn unknown_class_with_a_given_order_is_an_error() {
        let (l, _, m) = parse_position(
            read("a,y\n1,cat\n2,cow\n", &LoadOptions::new().class_order(["cat", "dog"])).unwrap_err(),
        );
        assert_eq!(l, 3);
        assert!(m.contains("cow"), "{m}");
    }

    #[test]
    fn missing_target_column_lists_the_columns() {
        let e = read("a,b\n1,2\n", &LoadOptions::new().target("z")).unwrap_err().to_string();
        assert!(e.contains("no column `z`") && e.contains("a, b"), "{e}");
        assert!(read("a,b\n1,2\n", &LoadOptions::new().targets(["a", "a"])).is_err());
        assert!(read("a,b\n1,2\n", &LoadOptions::new().targets(["a", "b"])).is_err());
        assert!(read("a,b,c\n1,2,3\n", &LoadOptions::new().targets(["a", "b"]).classes()).is_err());
        assert!(read("a,b\n1,2\n", &LoadOptions::new().targets(Vec::<String>::new())).is_err());
    }

    #[test]
    fn header_problems_are_errors() {
        assert!(matches!(read("", &LoadOptions::new()), Err(Error::Format { .. })));
        let (l, c, m) = parse_position(read("1,2\n3,4\n", &LoadOptions::new()).unwrap_err());
        assert_eq!((l, c), (1, 1));
        assert!(m.contains("header"), "{m}");
        let (_, c, _) = parse_position(read("a,,y\n1,2,3\n", &LoadOptions::new()).unwrap_err());
        assert_eq!(c, 2);
        let (_, c, m) = parse_position(read("a,b,a\n1,2,3\n", &LoadOptions::new()).unwrap_err());
        assert_eq!(c, 3);
        assert!(m.contains("twice"), "{m}");
        assert!(matches!(read("a,y\n", &LoadOptions::new()), Err(Error::Format { .. })));
    }

    #[test]
    fn unreadable_and_non_utf8_files_are_errors() {
        let e = read_csv::<f64>("/nonexistent/x.csv", &LoadOptions::new()).unwrap_err();
        assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("/nonexistent/x.csv"));
        let dir = std::env::temp_dir().join(format!("backprop-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.csv");
        std::fs::write(&p, b"a,y\n1,2\n\xff\xfe,3\n").unwrap();
        match read_csv::<f64>(&p, &LoadOptions::new()).unwrap_err() {
            Error::Parse { line, .. } => assert_eq!(line, 3),
            other => panic!("{other}"),
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
