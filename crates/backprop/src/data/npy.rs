//! NumPy files: a `.npy` matrix, or a `.npz` archive with arrays `x` and `y`.
//!
//! Any real dtype numpy writes by default is accepted (float64/32, signed and unsigned
//! integers, bool; little- or big-endian; C or Fortran order); `np.savez` and
//! `np.savez_compressed` archives both work.

use std::io::Cursor;
use std::path::Path;

use ndarray::{Array2, ArrayD, Ix2};
use ndarray_npy::{NpzReader, ReadNpyError, ReadNpyExt, ReadNpzError};

use super::Dataset;
use super::dataset::columns;
use super::labels::encode_classes;
use super::options::{LoadOptions, TargetKind, Targets};
use crate::{Error, Result, Scalar};

/// An array read from a file, widened to f64, and whether its dtype was integer or bool.
struct Raw {
    values: ArrayD<f64>,
    integer: bool,
}

fn format_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Format { path: path.to_path_buf(), message: message.into() }
}

/// Something that can read one array as element type `E` (a `.npy` payload or an `.npz` entry).
trait ArraySource {
    fn read<E: ndarray_npy::ReadableElement>(&mut self) -> std::result::Result<ArrayD<E>, ReadNpyError>;
}

/// `.npy` bytes in memory.
struct NpyBytes<'a>(&'a [u8]);

impl ArraySource for NpyBytes<'_> {
    fn read<E: ndarray_npy::ReadableElement>(&mut self) -> std::result::Result<ArrayD<E>, ReadNpyError> {
        ArrayD::<E>::read_npy(Cursor::new(self.0))
    }
}

/// One named entry of an `.npz` archive.
struct NpzEntry<'a, 'b> {
    npz: &'a mut NpzReader<Cursor<&'b [u8]>>,
    name: &'a str,
}

impl ArraySource for NpzEntry<'_, '_> {
    fn read<E: ndarray_npy::ReadableElement>(&mut self) -> std::result::Result<ArrayD<E>, ReadNpyError> {
        self.npz.by_name::<ndarray::OwnedRepr<E>, ndarray::IxDyn>(self.name).map_err(|e| match e {
            ReadNpzError::Npy(e) => e,
            ReadNpzError::Zip(z) => ReadNpyError::Io(std::io::Error::other(z.to_string())),
        })
    }
}

/// Reads an array of any supported real dtype, widened to f64: each dtype is tried in turn
/// until the file's type descriptor matches.
fn read_any(src: &mut impl ArraySource) -> std::result::Result<Raw, String> {
    macro_rules! attempt {
        ($t:ty, $integer:expr, $conv:expr) => {
            match src.read::<$t>() {
                Ok(a) => return Ok(Raw { values: a.mapv($conv), integer: $integer }),
                Err(ReadNpyError::WrongDescriptor(_)) => {}
                Err(ReadNpyError::MissingData) => {
                    return Err("truncated: the data ends before the shape in the header is filled".into());
                }
                Err(e) => return Err(e.to_string()),
            }
        };
    }
    attempt!(f64, false, |v| v);
    attempt!(f32, false, f64::from);
    attempt!(i64, true, |v| v as f64);
    attempt!(i32, true, f64::from);
    attempt!(i16, true, f64::from);
    attempt!(i8, true, f64::from);
    attempt!(u64, true, |v| v as f64);
    attempt!(u32, true, f64::from);
    attempt!(u16, true, f64::from);
    attempt!(u8, true, f64::from);
    match src.read::<bool>() {
        Ok(a) => Ok(Raw { values: a.mapv(|v| if v { 1.0 } else { 0.0 }), integer: true }),
        Err(ReadNpyError::WrongDescriptor(d)) => Err(format!(
            "unsupported dtype {d}: use a real number type (float64, float32, an integer type or bool)"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// A 1-D array becomes one column; 2-D stays; anything else is an error.
fn as_matrix(path: &Path, name: &str, a: ArrayD<f64>) -> Result<Array2<f64>> {
    match a.ndim() {
        1 => {
            let n = a.len();
            a.into_shape_with_order((n, 1)).map_err(|e| format_err(path, format!("array `{name}`: {e}")))
        }
        2 => a.into_dimensionality::<Ix2>().map_err(|e| format_err(path, format!("array `{name}`: {e}"))),
        d => Err(format_err(
            path,
            format!("array `{name}` has {d} dimensions, shape {:?}; expected 1 or 2", a.shape()),
        )),
    }
}

fn check_finite(path: &Path, name: &str, m: &Array2<f64>) -> Result<()> {
    if let Some(((r, c), v)) = crate::tensor::first_non_finite_2d(&m.view()) {
        return Err(Error::non_finite(
            format!("{} array `{name}`", path.display()),
            format!("row {r}, column {c} (0-based) is {v}"),
        ));
    }
    Ok(())
}

/// The columns `cols` of the file's array `m` as `T`, row-major; a value that overflows `T` is
/// an error naming its row and column in the file.
fn to_t<T: Scalar>(path: &Path, name: &str, m: &Array2<f64>, cols: &[usize]) -> Result<Array2<T>> {
    let out = columns(m.view(), cols, T::of)?;
    if let Some(i) = out.iter().position(|v| !v.is_finite()) {
        let (r, c) = (i / cols.len(), cols[i % cols.len()]);
        return Err(Error::non_finite(
            format!("{} array `{name}`", path.display()),
            format!("row {r}, column {c} (0-based) = {} overflows {}", m[[r, c]], T::DTYPE),
        ));
    }
    Ok(out)
}

/// Every column index of `m`.
fn all(m: &Array2<f64>) -> Vec<usize> {
    (0..m.ncols()).collect()
}

/// Targets from the `y` values: numbers, or class labels (integer dtypes in auto mode).
fn encode_targets(
    path: &Path,
    y: Array2<f64>,
    integer: bool,
    opts: &LoadOptions,
) -> Result<(Array2<f64>, Option<Vec<String>>)> {
    let kind = opts.effective_kind();
    let as_classes = match kind {
        TargetKind::Classes => true,
        TargetKind::Values => false,
        TargetKind::Auto => integer && y.ncols() == 1,
    };
    if !as_classes {
        return Ok((y, None));
    }
    if y.ncols() != 1 {
        return Err(format_err(path, format!("class labels need `y` with one column, it has {}", y.ncols())));
    }
    let labels: Vec<String> = y.column(0).iter().map(|v| format!("{v}")).collect();
    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let (idx, classes) = encode_classes(&refs, opts.class_order.as_deref())
        .map_err(|(r, m)| format_err(path, format!("array `y`, row {r} (0-based): {m}")))?;
    Ok((
        Array2::from_shape_vec((idx.len(), 1), idx).map_err(|e| Error::shape("read_npz", e.to_string()))?,
        Some(classes),
    ))
}

/// Reads a 2-D (or 1-D: one column) `.npy` array. Its columns are named `0`, `1`, …; the
/// targets are chosen from them as for a CSV file (default: the last column; `--target 3`
/// names column 3; [`Targets::None`] keeps every column as a feature).
pub fn read_npy<T: Scalar>(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Dataset<T>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let raw = read_any(&mut NpyBytes(&bytes)).map_err(|m| format_err(path, m))?;
    let integer = raw.integer;
    let m = as_matrix(path, "array", raw.values)?;
    check_finite(path, "array", &m)?;
    let names: Vec<String> = (0..m.ncols()).map(|c| c.to_string()).collect();
    let target_cols: Vec<usize> = match &opts.targets {
        Targets::None => vec![],
        Targets::Last => vec![m.ncols().saturating_sub(1)],
        Targets::Named(wanted) => {
            let mut cols = Vec::new();
            for (i, w) in wanted.iter().enumerate() {
                let Some(c) = names.iter().position(|n| n == w) else {
                    return Err(Error::invalid(
                        "target",
                        format!(
                            "{} has columns 0..{} (named by index); there is no column `{w}`",
                            path.display(),
                            m.ncols()
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
    let feature_cols: Vec<usize> = (0..m.ncols()).filter(|c| !target_cols.contains(c)).collect();
    if feature_cols.is_empty() {
        return Err(Error::invalid(
            "target",
            format!("every column of {} is a target; nothing is left as input", path.display()),
        ));
    }
    if m.nrows() == 0 {
        return Err(format_err(path, "the array has no rows"));
    }
    let x = to_t(path, "array", &m, &feature_cols)?;
    let y = m.select(ndarray::Axis(1), &target_cols);
    drop(m);
    let (y, classes) =
        if target_cols.is_empty() { (y, None) } else { encode_targets(path, y, integer, opts)? };
    Dataset::new(
        x,
        to_t(path, "array", &y, &all(&y))?,
        feature_cols.iter().map(|&c| names[c].clone()).collect(),
        target_cols.iter().map(|&c| names[c].clone()).collect(),
        classes,
    )
}

/// Reads a `.npz` archive (`np.savez` or `np.savez_compressed`) holding `x` (n×d or n) and `y`
/// (n×t or n). Features are named `x0`, `x1`, …; targets `y` (one column) or `y0`, `y1`, ….
/// An integer `y` is read as class labels unless [`TargetKind::Values`] is asked for.
pub fn read_npz<T: Scalar>(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Dataset<T>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut npz = NpzReader::new(Cursor::new(&bytes[..]))
        .map_err(|e| format_err(path, format!("not a readable .npz (zip) archive: {e}")))?;
    let names = npz.names().map_err(|e| format_err(path, format!("cannot list the archive: {e}")))?;
    let stem = |n: &str| n.strip_suffix(".npy").unwrap_or(n).to_string();
    let available: Vec<String> = names.iter().map(|n| stem(n)).collect();
    let mut read = |want: &str| -> Result<Option<Raw>> {
        let Some(i) = available.iter().position(|a| a == want) else { return Ok(None) };
        let mut entry = NpzEntry { npz: &mut npz, name: &names[i] };
        read_any(&mut entry).map(Some).map_err(|m| format_err(path, format!("array `{want}`: {m}")))
    };
    let Some(xr) = read("x")? else {
        return Err(format_err(
            path,
            format!("no array named `x`; the archive holds: {}", available.join(", ")),
        ));
    };
    let yr = match opts.targets {
        Targets::None => None,
        Targets::Last => match read("y")? {
            Some(y) => Some(y),
            None => {
                return Err(format_err(
                    path,
                    format!("no array named `y`; the archive holds: {}", available.join(", ")),
                ));
            }
        },
        Targets::Named(_) => {
            return Err(Error::invalid(
                "target",
                format!(
                    "{} keeps its targets in the array `y`; --target applies to CSV and .npy files only",
                    path.display()
                ),
            ));
        }
    };
    let x = as_matrix(path, "x", xr.values)?;
    check_finite(path, "x", &x)?;
    if x.nrows() == 0 {
        return Err(format_err(path, "array `x` has no rows"));
    }
    let (y, target_names, classes) = match yr {
        None => (Array2::zeros((x.nrows(), 0)), vec![], None),
        Some(yr) => {
            let y = as_matrix(path, "y", yr.values)?;
            check_finite(path, "y", &y)?;
            if y.nrows() != x.nrows() {
                return Err(format_err(
                    path,
                    format!("`x` has {} rows but `y` has {}", x.nrows(), y.nrows()),
                ));
            }
            let t = y.ncols();
            let names =
                if t == 1 { vec!["y".to_string()] } else { (0..t).map(|c| format!("y{c}")).collect() };
            let (y, classes) = encode_targets(path, y, yr.integer, opts)?;
            (y, names, classes)
        }
    };
    Dataset::new(
        to_t(path, "x", &x, &all(&x))?,
        to_t(path, "y", &y, &all(&y))?,
        (0..x.ncols()).map(|c| format!("x{c}")).collect(),
        target_names,
        classes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, array};
    use ndarray_npy::{NpzWriter, WriteNpyExt};
    use std::path::PathBuf;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("backprop-npy-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    fn npy<A: WriteNpyExt>(a: &A) -> Vec<u8> {
        let mut v = Vec::new();
        a.write_npy(&mut v).unwrap();
        v
    }

    /// A hand-made `.npy` file (version 1.0) with any descriptor and raw data.
    fn raw_npy(descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    fn npz(entries: &[(&str, Vec<u8>)], compressed: bool) -> Vec<u8> {
        // Build through ndarray-npy's writer for real arrays, so the zip layout is numpy's.
        let mut cursor = Cursor::new(Vec::new());
        {
            let mut w =
                if compressed { NpzWriter::new_compressed(&mut cursor) } else { NpzWriter::new(&mut cursor) };
            for (name, bytes) in entries {
                let raw = read_any(&mut NpyBytes(bytes)).unwrap();
                if raw.integer {
                    w.add_array(*name, &raw.values.mapv(|v| v as i64)).unwrap();
                } else {
                    w.add_array(*name, &raw.values).unwrap();
                }
            }
            w.finish().unwrap();
        }
        cursor.into_inner()
    }

    #[test]
    fn npy_matrix_last_column_is_the_target() {
        let t = TempDir::new("matrix");
        let p = t.file("m.npy", &npy(&array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]));
        let d = read_npy::<f64>(&p, &LoadOptions::new()).unwrap();
        assert_eq!(d.x, array![[1., 2.], [4., 5.]]);
        assert_eq!(d.y, array![[3.], [6.]]);
        assert_eq!(d.feature_names, ["0", "1"]);
        let d = read_npy::<f64>(&p, &LoadOptions::new().target("0")).unwrap();
        assert_eq!(d.y, array![[1.], [4.]]);
        assert_eq!(d.x, array![[2., 3.], [5., 6.]]);
        // Row-major, so that minibatches are gathered from contiguous rows.
        assert!(d.x.is_standard_layout() && d.y.is_standard_layout());
        let d = read_npy::<f32>(&p, &LoadOptions::new().no_targets()).unwrap();
        assert_eq!(d.x.dim(), (2, 3));
        assert!(read_npy::<f64>(&p, &LoadOptions::new().target("7")).is_err());
    }

    #[test]
    fn npy_accepts_f32_ints_big_endian_and_fortran_order() {
        let t = TempDir::new("dtypes");
        let p = t.file("f.npy", &npy(&array![[1.5f32, 0.0], [2.5, 1.0]]));
        assert_eq!(read_npy::<f64>(&p, &LoadOptions::new()).unwrap().x, array![[1.5], [2.5]]);
        let p = t.file("i.npy", &npy(&array![[1i64, 7], [2, 9]]));
        let d = read_npy::<f64>(&p, &LoadOptions::new()).unwrap();
        assert_eq!(
            (d.y.clone(), d.classes.unwrap()),
            (array![[7.], [9.]], (0..10).map(|c| c.to_string()).collect::<Vec<_>>())
        );
        let be: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let p = t.file("be.npy", &raw_npy(">f8", "(2, 2)", false, &be));
        assert_eq!(
            read_npy::<f64>(&p, &LoadOptions::new().no_targets()).unwrap().x,
            array![[1., 2.], [3., 4.]]
        );
        let le: Vec<u8> = [1.0f64, 3.0, 2.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let p = t.file("f.npy", &raw_npy("<f8", "(2, 2)", true, &le));
        let x = read_npy::<f64>(&p, &LoadOptions::new().no_targets()).unwrap().x;
        assert_eq!(x, array![[1., 2.], [3., 4.]]);
        assert!(x.is_standard_layout());
    }

    #[test]
    fn npy_errors_are_clear() {
        let t = TempDir::new("errors");
        let good = npy(&array![[1.0, 2.0], [3.0, 4.0]]);
        let p = t.file("trunc.npy", &good[..good.len() - 3]);
        let e = read_npy::<f64>(&p, &LoadOptions::new()).unwrap_err().to_string();
        assert!(e.contains("trunc.npy") && e.contains("truncated"), "{e}");
        let p = t.file("garbage.npy", b"hello world");
        let e = read_npy::<f64>(&p, &LoadOptions::new()).unwrap_err().to_string();
        assert!(e.contains("garbage.npy"), "{e}");
        let p = t.file("c.npy", &raw_npy("<c16", "(1,)", false, &[0; 16]));
        let e = read_npy::<f64>(&p, &LoadOptions::new()).unwrap_err().to_string();
        assert!(e.contains("unsupported dtype"), "{e}");
        let p = t.file("nan.npy", &npy(&array![[1.0, f64::NAN]]));
        let e = read_npy::<f64>(&p, &LoadOptions::new()).unwrap_err().to_string();
        assert!(e.contains("nan.npy") && e.contains("row 0, column 1"), "{e}");
        let p = t.file("3d.npy", &npy(&ndarray::Array3::<f64>::zeros((2, 2, 2))));
        assert!(read_npy::<f64>(&p, &LoadOptions::new()).unwrap_err().to_string().contains("3 dimensions"));
        let p = t.file("one.npy", &npy(&Array1::<f64>::zeros(3)));
        assert!(read_npy::<f64>(&p, &LoadOptions::new()).is_err()); // one column: nothing left as input
        let p = t.file("big.npy", &npy(&array![[1e300, 1.0]]));
        assert!(read_npy::<f32>(&p, &LoadOptions::new()).unwrap_err().to_string().contains("overflows f32"));
    }

    #[test]
    fn npz_reads_x_and_y_plain_and_compressed() {
        let t = TempDir::new("npz");
        for compressed in [false, true] {
            let bytes = npz(
                &[("x", npy(&array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])), ("y", npy(&array![2i64, 0, 2]))],
                compressed,
            );
            let p = t.file("d.npz", &bytes);
            let d = read_npz::<f64>(&p, &LoadOptions::new()).unwrap();
            assert_eq!(d.x, array![[1., 2.], [3., 4.], [5., 6.]]);
            assert_eq!(d.y, array![[2.], [0.], [2.]]);
            assert_eq!(d.classes.as_deref().unwrap(), ["0", "1", "2"]);
            assert_eq!(d.feature_names, ["x0", "x1"]);
            let d = read_npz::<f64>(&p, &LoadOptions::new().values()).unwrap();
            assert_eq!(d.y, array![[2.], [0.], [2.]]);
            let d = read_npz::<f64>(&p, &LoadOptions::new().class_order(["0", "1", "2"])).unwrap();
            assert_eq!(d.y, array![[2.], [0.], [2.]]);
        }
    }

    #[test]
    fn npz_errors_are_clear() {
        let t = TempDir::new("npzerr");
        let p = t.file("nox.npz", &npz(&[("a", npy(&array![[1.0]]))], false));
        let e = read_npz::<f64>(&p, &LoadOptions::new()).unwrap_err().to_string();
        assert!(e.contains("no array named `x`") && e.contains(": a"), "{e}");
        let p = t.file("noy.npz", &npz(&[("x", npy(&array![[1.0]]))], false));
        assert!(read_npz::<f64>(&p, &LoadOptions::new()).unwrap_err().to_string().contains("`y`"));
        assert_eq!(read_npz::<f64>(&p, &LoadOptions::new().no_targets()).unwrap().y.dim(), (1, 0));
        let p =
            t.file("rows.npz", &npz(&[("x", npy(&array![[1.0], [2.0]])), ("y", npy(&array![1.0]))], false));
        assert!(read_npz::<f64>(&p, &LoadOptions::new()).unwrap_err().to_string().contains("2 rows"));
        let good = npz(&[("x", npy(&array![[1.0]])), ("y", npy(&array![1.0]))], false);
        let p = t.file("trunc.npz", &good[..good.len() / 2]);
        assert!(read_npz::<f64>(&p, &LoadOptions::new()).unwrap_err().to_string().contains("trunc.npz"));
        let p = t.file("good.npz", &good);
        assert!(read_npz::<f64>(&p, &LoadOptions::new().target("y")).is_err());
        let p = t.file("frac.npz", &npz(&[("x", npy(&array![[1.0]])), ("y", npy(&array![0.5]))], false));
        assert!(
            read_npz::<f64>(&p, &LoadOptions::new().classes())
                .unwrap_err()
                .to_string()
                .contains("whole number")
        );
    }
}
