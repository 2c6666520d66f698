//! Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.
//!
//! The bytes go to a temporary file in the same directory, which is flushed to disk (`fsync`),
//! renamed over the target (atomic on POSIX file systems), and then the directory itself is
//! synced so the rename survives a power loss. Every file the project writes goes through here.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Distinguishes temporary files of concurrent writes within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename, fsync of
/// the directory). The directory must exist.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("backprop-doc-atomic-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// backprop::io::atomic_write(dir.join("hello.txt"), b"hello\n")?;
/// assert_eq!(std::fs::read(dir.join("hello.txt"))?, b"hello\n");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn atomic_write(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |w| w.write_all(bytes))
}

/// Like [`atomic_write`], but the content is produced by `write` into a buffered writer (for
/// large outputs that should not be built in memory first).
pub fn atomic_write_with(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<()> {
    let path = path.as_ref();
    let Some(name) = path.file_name() else {
        return Err(Error::invalid("output path", format!("`{}` does not name a file", path.display())));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> io::Result<()> {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        // Report the target, not the temporary name the user never asked for.
        return Err(Error::io(path, e));
    }
    sync_dir(&dir).map_err(|e| Error::io(&dir, e))
}

/// Flushes a directory's entries (the rename) to disk. Some file systems cannot sync
/// directories; that is not an error worth failing a save for.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Serialises `value` as pretty JSON (with a final newline) and writes it atomically.
pub fn write_json(path: impl AsRef<Path>, value: &impl serde::Serialize) -> Result<()> {
    let path = path.as_ref();
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        message: format!("cannot serialise to JSON: {e}"),
    })?;
    text.push('\n');
    atomic_write(path, text.as_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A scratch directory removed on drop.
    pub(crate) struct Scratch(pub PathBuf);
    impl Scratch {
        pub(crate) fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "backprop-io-{tag}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporaries() {
        let s = Scratch::new("replace");
        let p = s.0.join("a.txt");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(entries(&s.0), ["a.txt"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_cleans_up() {
        let s = Scratch::new("fail");
        let p = s.0.join("a.txt");
        atomic_write(&p, b"old").unwrap();
        let e = atomic_write_with(&p, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("a.txt") && e.to_string().contains("disk on fire"), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(entries(&s.0), ["a.txt"]);
    }

    #[test]
    fn missing_directory_and_bad_paths_are_errors_naming_the_path() {
        let e = atomic_write("/nonexistent-dir/x.bin", b"x").unwrap_err();
        assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("/nonexistent-dir/x.bin"), "{e}");
        assert!(atomic_write("/", b"x").is_err());
        assert!(atomic_write("..", b"x").is_err());
    }

    #[test]
    fn write_json_is_pretty_with_a_final_newline() {
        let s = Scratch::new("json");
        let p = s.0.join("v.json");
        write_json(&p, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\n  \"a\": 1\n}\n");
    }
}
