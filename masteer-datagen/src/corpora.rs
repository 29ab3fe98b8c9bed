//! The datasets bundled with this crate (copied whole, each with its licence), under
//! `data/`: CAA behaviours, TruthfulQA, RepE facts, XSTest, AdvBench, ToxiGen seeds.
//! See `data/README.md` for sources and licences.

use std::path::PathBuf;

/// Directory of the bundled datasets.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
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
