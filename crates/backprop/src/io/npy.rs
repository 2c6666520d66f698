//! Writing arrays as numpy `.npy` files (Hessians, eigenvectors, predictions), atomically.

use std::path::Path;

use ndarray::{ArrayBase, Data, Dimension};
use ndarray_npy::WriteNpyExt;

use super::atomic::atomic_write;
use crate::{DType, Error, Result, Scalar};

/// Writes an array of any dimension as `.npy` in its own precision (`<f4` or `<f8`, C order),
/// readable by `numpy.load`.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("backprop-doc-npy-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let h = ndarray::array![[2.0, 1.0], [1.0, 3.0]];
/// backprop::io::write_npy(dir.join("hessian.npy"), &h)?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_npy<T, S, D>(path: impl AsRef<Path>, array: &ArrayBase<S, D>) -> Result<()>
where
    T: Scalar,
    S: Data<Elem = T>,
    D: Dimension,
{
    let path = path.as_ref();
    let mut bytes = Vec::new();
    let result = match T::DTYPE {
        DType::F64 => array.mapv(|v| v.f64()).as_standard_layout().write_npy(&mut bytes),
        DType::F32 => array.mapv(|v| v.f64() as f32).as_standard_layout().write_npy(&mut bytes),
    };
    result.map_err(|e| Error::Format {
        path: path.to_path_buf(),
        message: format!("cannot encode .npy: {e}"),
    })?;
    atomic_write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::atomic::tests::Scratch;
    use ndarray::{Array1, Array2, array};
    use ndarray_npy::ReadNpyExt;

    #[test]
    fn matrices_and_vectors_round_trip_in_their_precision() {
        let s = Scratch::new("npy");
        let m = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        write_npy(s.0.join("m.npy"), &m.t()).unwrap(); // a transposed view is written in C order
        let back = Array2::<f64>::read_npy(std::fs::File::open(s.0.join("m.npy")).unwrap()).unwrap();
        assert_eq!(back, m.t());
        let v = array![0.5f32, -1.0];
        write_npy(s.0.join("v.npy"), &v).unwrap();
        let bytes = std::fs::read(s.0.join("v.npy")).unwrap();
        assert!(String::from_utf8_lossy(&bytes[..64]).contains("'<f4'"));
        assert_eq!(Array1::<f32>::read_npy(&bytes[..]).unwrap(), v);
    }
}
