//! Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.
//!
//! Bytes go through the library's [`backprop::io::atomic_write`]; [`write_atomic_with`] covers
//! writers that need a *path* (the PNG encoder picks its format from the file extension), with
//! the same temp-file, fsync, rename protocol.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// A hidden temporary name beside `path` that keeps its extension (image encoders pick the
/// format from it): `dir/.name.tmp-<pid>-<n>.ext`.
fn temp_path(path: &Path) -> anyhow::Result<PathBuf> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        bail!("{}: not a file path", path.display());
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!(".{name}.tmp-{}-{n}.{ext}", std::process::id()),
        None => format!(".{name}.tmp-{}-{n}", std::process::id()),
    };
    Ok(path.with_file_name(tmp))
}

fn sync_dir(path: &Path) {
    // Persist the rename itself. Directories cannot be opened for sync on every platform;
    // there the rename is still atomic, only its durability is up to the OS.
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(if dir.as_os_str().is_empty() { Path::new(".") } else { dir })
    {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `path` atomically: the library's one implementation
/// ([`backprop::io::atomic_write`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(backprop::io::atomic_write(path, bytes)?)
}

/// Lets `produce` write a temporary file (same directory and extension as `path`), then syncs
/// it and renames it over `path`. On any error the temporary file is removed.
pub fn write_atomic_with(
    path: &Path,
    produce: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = temp_path(path)?;
    let result = produce(&tmp).and_then(|()| {
        File::open(&tmp).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_dir(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("backprop-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.json");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        let failed = write_atomic_with(&p, |tmp| {
            use std::io::Write as _;
            let _ = File::create(tmp).and_then(|mut f| f.write_all(b"x"));
            std::fs::write(tmp, b"partial")?;
            bail!("interrupted")
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"new", "a failed write keeps the old file");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_name_keeps_the_extension() {
        let t = temp_path(Path::new("out/loss.png")).unwrap();
        assert_eq!(t.extension().unwrap(), "png");
        assert!(t.file_name().unwrap().to_str().unwrap().starts_with(".loss.png.tmp-"));
    }
}
