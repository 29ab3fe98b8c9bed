//! The datasets bundled with this crate (copied whole, each with its licence), under
//! `data/`: CAA behaviours, TruthfulQA, RepE facts, XSTest, AdvBench, ToxiGen seeds.
//! See `data/README.md` for sources and licences.

use std::path::PathBuf;

/// Directory of the bundled datasets: `$MASTEER_DATA_DIR` when set, else the crate's
/// `data/` when the source tree is there, else (with the `embedded-data` feature) the
/// copy compiled into the binary, extracted once to `<cache>/data-<version>`.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MASTEER_DATA_DIR") {
        return PathBuf::from(d);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    #[cfg(feature = "embedded-data")]
    if !built.join("README.md").is_file() {
        match embedded::extracted() {
            Ok(dir) => return dir,
            Err(e) => tracing::warn!("extracting the embedded datasets: {e}"),
        }
    }
    built
}

/// Extract the datasets compiled into the binary (once per process, into
/// `<cache>/data-<version>`) and return their directory, whether or not the source tree
/// is present. What [`data_dir`] falls back to for installed binaries.
#[cfg(feature = "embedded-data")]
pub fn extract_embedded() -> Result<PathBuf, String> {
    embedded::extracted()
}

#[cfg(feature = "embedded-data")]
mod embedded {
    //! The datasets compiled into the binary and their one-time extraction.

    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    static DATA: include_dir::Dir<'static> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/data");
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();

    fn cache_root() -> Result<PathBuf, String> {
        if let Some(d) = std::env::var_os("MASTEER_CACHE_DIR") {
            return Ok(PathBuf::from(d));
        }
        dirs::cache_dir()
            .map(|d| d.join("masteer"))
            .ok_or_else(|| "no cache directory; set MASTEER_CACHE_DIR or MASTEER_DATA_DIR".into())
    }

    /// The extracted copy, extracting it on first use (to a temporary directory
    /// renamed into place, so a partial copy is never used).
    pub(super) fn extracted() -> Result<PathBuf, String> {
        DIR.get_or_init(|| {
            let root = cache_root()?;
            let dir = root.join(format!("data-{}", env!("CARGO_PKG_VERSION")));
            if dir.join("README.md").is_file() {
                return Ok(dir);
            }
            std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
            let tmp = tempdir_in(&root)?;
            DATA.extract(&tmp)
                .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
            match std::fs::rename(&tmp, &dir) {
                Ok(()) => Ok(dir),
                // Another process extracted it first.
                Err(_) if dir.join("README.md").is_file() => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    Ok(dir)
                }
                Err(e) => Err(format!("moving {} into place: {e}", tmp.display())),
            }
        })
        .clone()
    }

    fn tempdir_in(root: &Path) -> Result<PathBuf, String> {
        let tmp = root.join(format!(
            ".data-{}-{}",
            std::process::id(),
            env!("CARGO_PKG_VERSION")
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        Ok(tmp)
    }
}

/// CAA behaviours with a generate set and an A/B test set.
pub const CAA_BEHAVIOURS: [&str; 7] = [
    "coordinate-other-ais",
    "corrigible-neutral-HHH",
    "hallucination",
    "myopic-reward",
    "refusal",
    "survival-instinct",
    "sycophancy",
];

/// Path of a CAA generate set.
pub fn caa_generate(behaviour: &str) -> PathBuf {
    data_dir()
        .join("caa/generate")
        .join(behaviour)
        .join("generate_dataset.json")
}

/// Path of a CAA A/B test set (`mmlu` and `truthfulqa` use their own file names).
pub fn caa_test(behaviour: &str) -> PathBuf {
    let dir = data_dir().join("caa/test").join(behaviour);
    match behaviour {
        "mmlu" => dir.join("mmlu.json"),
        "truthfulqa" => dir.join("truthful_qa.json"),
        _ => dir.join("test_dataset_ab.json"),
    }
}
