//! The datasets compiled into the `masteer` binary: extracted once into the cache, the
//! same files as the source tree's `masteer-datagen/data`, found without the source.

use std::collections::BTreeMap;
use std::path::Path;

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

#[test]
fn embedded_datasets_extract_to_the_cache_whole() {
    let cache = tempfile::tempdir().unwrap();
    // This test binary runs alone in its process; nothing else reads the variable.
    std::env::set_var("MASTEER_CACHE_DIR", cache.path());
    let dir = masteer_core::datagen::corpora::extract_embedded().expect("extract");
    assert!(dir.starts_with(cache.path()), "{}", dir.display());
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../masteer-datagen/data");
    let (got, want) = (files(&dir), files(&source));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert!(got == want, "extracted bytes differ from the source tree");
    // Every licence travels with its data.
    for licence in [
        "caa/LICENSE",
        "advbench/LICENSE",
        "xstest/LICENSE",
        "truthfulqa/LICENSE",
    ] {
        assert!(got.contains_key(licence), "{licence} missing");
    }
    // A second call reuses the extracted copy; no temporary directory is left behind.
    assert_eq!(
        masteer_core::datagen::corpora::extract_embedded().unwrap(),
        dir
    );
    let leftovers: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".data-"))
        .collect();
    assert!(leftovers.is_empty());
}
