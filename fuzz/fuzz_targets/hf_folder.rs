//! The Hugging Face path: `config.json` and a `model.safetensors`, parsed, checked and
//! loaded into the Llama model (shape checks against the configuration).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use masteer_models::backend::Cpu;
use masteer_models::config::LlamaConfig;
use masteer_models::weights::SafetensorsWeights;
use masteer_models::Llama;

fuzz_target!(|data: &[u8]| {
    let (config, tensors) = common::two_parts(data);
    let Ok(text) = std::str::from_utf8(config) else {
        return;
    };
    let config = LlamaConfig::from_hf_json(text);
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("model.safetensors");
    if std::fs::write(&path, tensors).is_err() {
        return;
    }
    let Ok(weights) = SafetensorsWeights::open_files(&[path], "fuzz".into()) else {
        return;
    };
    if let Ok(config) = config {
        let _ = Llama::<Cpu>::load(config, &weights, &Default::default());
    }
});
