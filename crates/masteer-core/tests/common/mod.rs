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
