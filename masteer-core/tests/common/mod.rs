//! Shared helpers of the core tests: the embedded model, loaded once per test binary.
#![allow(dead_code)]

use std::sync::OnceLock;

use masteer_core::backend::Cpu;
use masteer_core::LoadedModel;

/// The embedded SmolLM2 model (fetched into the cache on first use).
pub fn model() -> &'static LoadedModel<Cpu> {
    static MODEL: OnceLock<LoadedModel<Cpu>> = OnceLock::new();
    MODEL.get_or_init(|| {
        LoadedModel::load_default(&Default::default()).expect("load the embedded model")
    })
}

/// The first `n` CAA hallucination generate pairs (the non-hallucinating answer
/// wanted; `source` names them in sample ids), split 2:1 into train and validation
/// with `seed`.
pub fn hallucination_set(n: usize, source: &str, seed: u64) -> masteer_core::datagen::SampleSet {
    use masteer_core::datagen::formats::caa;
    use masteer_core::datagen::{corpora, SampleSet, SplitFractions};
    let items = caa::load(&corpora::caa_generate("hallucination")).expect("CAA hallucination");
    let samples = caa::to_samples(&items[..n], caa::Wanted::NotMatching, source);
    SampleSet::new("hallucination", samples)
        .and_then(|s| {
            s.split(
                SplitFractions {
                    train: 2.0,
                    validation: 1.0,
                    test: 0.0,
                },
                seed,
            )
        })
        .expect("hallucination sample set")
}

/// A fingerprint of SmolLM2's shape with placeholder hashes, for artifacts that need
/// no model.
pub fn smollm_shaped_fingerprint() -> masteer_core::ModelFingerprint {
    masteer_core::ModelFingerprint {
        architecture: "llama".into(),
        layers: 30,
        width: 576,
        heads: 9,
        head_dim: 64,
        vocab: 49152,
        tokenizer_hash: "t".repeat(64),
        weights_hash: "w".repeat(64),
    }
}
