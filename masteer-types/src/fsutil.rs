//! Atomic file writes: write to a temporary file beside the target, flush it to disk,
//! then rename it over the target, so a reader sees the old file or the new one and
//! never half of one. Directories (artifacts) are swapped in the same spirit.

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
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    let dir = parent_of(path);
    std::fs::create_dir_all(&dir).map_err(|e| err("creating directory", &dir, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".masteer-tmp-")
        .tempfile_in(&dir)
        .map_err(|e| err("creating a temporary file in", &dir, e))?;
    let (file, tmp_path) = tmp.into_parts();
    let mut w = BufWriter::new(file);
    fill(&mut w).map_err(|e| err("writing", path, e))?;
    w.flush().map_err(|e| err("writing", path, e))?;
    let file = w
        .into_inner()
        .map_err(|e| err("writing", path, e.into_error()))?;
    file.sync_all().map_err(|e| err("syncing", path, e))?;
    tmp_path
        .persist(path)
        .map_err(|e| err("renaming the temporary file onto", path, e.error))?;
    sync_dir(&dir)
}

/// Write bytes to `path` atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic(path, |f| f.write_all(bytes))
}

/// Put the fully written directory `new` in place of `dir`, so that `dir` always holds a
/// complete version, the previous one or the new one, whenever the process is killed.
///
/// When `dir` does not exist this is one rename. When it does, on Linux the two are
/// exchanged in one step (`renameat2(RENAME_EXCHANGE)`) and the old version, now at
/// `new`, is removed; elsewhere, or where the file system cannot exchange, the old
/// version is moved aside for the instant of the swap (a kill inside that instant
/// leaves it at `.masteer-old-<name>-<pid>` beside `dir`). On error `dir` is left as it
/// was and `new` is removed.
pub fn replace_dir(new: &Path, dir: &Path) -> Result<(), WriteError> {
    let result = replace_dir_inner(new, dir).and_then(|()| sync_dir(&parent_of(dir)));
    if result.is_err() && new.exists() {
        let _ = std::fs::remove_dir_all(new);
    }
    result
}

fn replace_dir_inner(new: &Path, dir: &Path) -> Result<(), WriteError> {
    if !dir.exists() {
        return std::fs::rename(new, dir).map_err(|e| err("renaming into place", dir, e));
    }
    #[cfg(target_os = "linux")]
    if exchange(new, dir).is_ok() {
        // `new` now holds the previous version.
        let _ = std::fs::remove_dir_all(new);
        return Ok(());
    }
    let parent = parent_of(dir);
    let aside = parent.join(format!(
        ".masteer-old-{}-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::rename(dir, &aside).map_err(|e| err("moving the previous version aside:", dir, e))?;
    if let Err(e) = std::fs::rename(new, dir) {
        let _ = std::fs::rename(&aside, dir);
        return Err(err("renaming into place", dir, e));
    }
    let _ = std::fs::remove_dir_all(&aside);
    Ok(())
}

/// Exchange two existing paths atomically (Linux `renameat2` with `RENAME_EXCHANGE`,
/// through rustix's safe wrapper).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

/// Make a rename inside `dir` durable: sync the directory itself (on Unix a rename is
/// only on disk once its directory entry is). Best effort where directories cannot be
/// opened (elsewhere than Unix).
fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| err("opening directory", dir, e))?;
        d.sync_all().map_err(|e| err("syncing directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The directory holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
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

    #[test]
    fn replace_dir_swaps_whole_directories_and_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("artifact");
        for (version, files) in [("one", 2), ("two", 1), ("three", 3)] {
            let new = root.path().join(format!(".tmp-{version}"));
            std::fs::create_dir(&new).unwrap();
            for i in 0..files {
                std::fs::write(new.join(format!("f{i}")), version).unwrap();
            }
            replace_dir(&new, &dir).unwrap();
            assert!(!new.exists());
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names.len(), files);
            for n in names {
                assert_eq!(std::fs::read_to_string(dir.join(n)).unwrap(), version);
            }
        }
        // only the artifact is left in the parent
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
        // a missing source is an error and the artifact is untouched
        assert!(replace_dir(&root.path().join("missing"), &dir).is_err());
        assert_eq!(std::fs::read_to_string(dir.join("f0")).unwrap(), "three");
    }
}
