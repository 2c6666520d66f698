//! Files written by numpy 2.4 itself (`tests/fixtures/make_fixtures.py`): `np.save`,
//! `np.savez`, `np.savez_compressed`, Fortran order, big-endian, integer and bool labels.

use std::path::PathBuf;

use backprop::data::{LoadOptions, load};
use backprop::{Error, Result};
use ndarray::array;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).to_string_lossy().into_owned()
}

fn read(name: &str, opts: &LoadOptions) -> Result<backprop::data::Dataset<f64>> {
    load::<f64>(&fixture(name), opts)
}

#[test]
fn np_save_matrix_with_last_column_as_target() {
    let d = read("c_f64.npy", &LoadOptions::new()).unwrap();
    assert_eq!(d.x, array![[1., 2.], [3., 4.]]);
    assert_eq!(d.y, array![[0.], [1.]]);
}

#[test]
fn fortran_order_big_endian_reads_in_logical_order() {
    let d = read("fortran_big_endian.npy", &LoadOptions::new().no_targets()).unwrap();
    assert_eq!(d.x, array![[1., 2., 3.], [4., 5., 6.]]);
}

#[test]
fn savez_with_int64_labels_gives_classes() {
    let d = read("plain.npz", &LoadOptions::new()).unwrap();
    assert_eq!(d.x, array![[0.5, 1.5], [2.5, 3.5], [4.5, 5.5], [6.5, 7.5]]);
    assert_eq!(d.y, array![[0.], [2.], [2.], [1.]]);
    assert_eq!(d.classes.as_deref().unwrap(), ["0", "1", "2"]);
    let f32 = load::<f32>(&fixture("plain.npz"), &LoadOptions::new()).unwrap();
    assert_eq!(f32.x[[3, 1]], 7.5f32);
}

#[test]
fn savez_compressed_with_float_targets() {
    let d = read("compressed.npz", &LoadOptions::new()).unwrap();
    assert_eq!(d.x.dim(), (4, 3));
    assert_eq!(d.x[[3, 2]], 11.0);
    assert_eq!(d.y, array![[0.25], [0.5], [0.75], [1.0]]);
    assert!(d.classes.is_none());
}

#[test]
fn bool_labels_and_multi_column_targets() {
    let d = read("bool_labels.npz", &LoadOptions::new()).unwrap();
    assert_eq!(d.y, array![[1.], [0.], [1.]]);
    assert_eq!(d.classes.as_deref().unwrap(), ["0", "1"]);
    let d = read("multi_target.npz", &LoadOptions::new()).unwrap();
    assert_eq!(d.target_names, ["y0", "y1"]);
    assert_eq!(d.y, array![[1., 2.], [3., 4.]]);
}

#[test]
fn int32_npy_reads_as_numbers() {
    let d = read("int32_column.npy", &LoadOptions::new().no_targets()).unwrap();
    assert_eq!(d.x, array![[5.], [7.], [5.]]);
}

#[test]
fn bad_numpy_files_are_clear_errors() {
    let e = read("no_y.npz", &LoadOptions::new()).unwrap_err().to_string();
    assert!(e.contains("no_y.npz") && e.contains("no array named `y`") && e.contains("weights"), "{e}");
    let e = read("nan.npz", &LoadOptions::new()).unwrap_err();
    assert!(matches!(e, Error::NonFinite { .. }) && e.to_string().contains("nan.npz"), "{e}");
    let e = read("complex.npy", &LoadOptions::new()).unwrap_err().to_string();
    assert!(e.contains("complex.npy") && e.contains("unsupported dtype"), "{e}");
}
