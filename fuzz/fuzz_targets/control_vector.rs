//! The llama.cpp control-vector importer (GGUF `controlvector`), for SmolLM2's shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masteer_core::interop::import_control_vector;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("vector.gguf");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = import_control_vector(&path, 30, 576);
});
