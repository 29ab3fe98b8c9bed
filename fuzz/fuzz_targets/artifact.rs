//! The strategy-library artifact loader: `manifest.json` and `tensors.safetensors`.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use masteer_core::StrategyLibrary;

fuzz_target!(|data: &[u8]| {
    let (manifest, tensors) = common::two_parts(data);
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let art = dir.path().join("artifact");
    if std::fs::create_dir(&art).is_err()
        || std::fs::write(art.join("manifest.json"), manifest).is_err()
        || std::fs::write(art.join("tensors.safetensors"), tensors).is_err()
    {
        return;
    }
    let _ = StrategyLibrary::load(&art);
});
