//! Atomic file writes: write to a temporary file beside the target, flush it to disk,
//! then rename it over the target, so a reader sees the old file or the new one and
//! never half of one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// An I/O failure of an atomic write, with what was being done to which path.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct WriteError {
    /// What was being done.
    pub action: &'static str,
    /// The path concerned.
    pub path: String,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

fn err(action: &'static str, path: &Path, source: std::io::Error) -> WriteError {
    WriteError {
        action,
        path: path.display().to_string(),
        source,
    }
}

/// Write `path` atomically with the content produced by `fill`: the data go to a
/// temporary file in the same directory, are synced, and the file is renamed over
/// `path`. On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| err("creating directory", &dir, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".masteer-tmp-")
        .tempfile_in(&dir)
        .map_err(|e| err("creating a temporary file in", &dir, e))?;
    let (file, tmp_path) = tmp.into_parts();
    let mut w = BufWriter::new(file);
    fill(&mut w).map_err(|e| err("writing", path, e))?;
    w.flush().map_err(|e| err("writing", path, e))?;
    let file = w.into_inner().map_err(|e| err("writing", path, e.into_error()))?;
    file.sync_all().map_err(|e| err("syncing", path, e))?;
    tmp_path
        .persist(path)
        .map_err(|e| err("renaming the temporary file onto", path, e.error))?;
    Ok(())
}

/// Write bytes to `path` atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic(path, |f| f.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, |f| f.write_all(b"first")).unwrap();
        let r = write_atomic(&p, |f| {
            f.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        // no temporary file is left behind
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        write_atomic(&p, |f| f.write_all(b"second")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
    }
}
