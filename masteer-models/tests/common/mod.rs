//! Shared helpers of the model tests: the embedded model, loaded once per test binary.
#![allow(dead_code)]

pub mod tiny;

use std::path::PathBuf;
use std::sync::OnceLock;

use masteer_models::backend::Cpu;
use masteer_models::LoadedModel;

/// The embedded SmolLM2 model (fetched into the cache on first use).
pub fn model() -> &'static LoadedModel<Cpu> {
    static MODEL: OnceLock<LoadedModel<Cpu>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = masteer_models::embedded::resolve(None).expect("resolve the embedded model");
        LoadedModel::load(&path, &Default::default()).expect("load the embedded model")
    })
}

/// Path of a golden fixture.
pub fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(name)
}

/// Read a JSONL fixture.
pub fn jsonl(name: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(golden(name))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Max and mean absolute difference.
pub fn diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let mut max = 0f32;
    let mut sum = 0f64;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        max = max.max(d);
        sum += d as f64;
    }
    (max, (sum / a.len() as f64) as f32)
}
