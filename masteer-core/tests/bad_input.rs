//! The bad-input catalogue, the parts not covered next to their parsers (GGUF, HF folder
//! and tokenizer: `masteer-models/tests/loaders.rs`; activations: `masteer-algorithms/
//! tests/synthetic.rs`; calibration: `masteer-anchor/tests/synthetic.rs`; HTTP:
//! `masteer-datagen/tests/http_errors.rs`; artifact schema and fingerprint:
//! `artifacts.rs`). Every case asserts a typed error whose message names the problem.

use crate::common;

use masteer_core::datagen::formats::{caa, truthfulqa};
use masteer_core::datagen::{DatagenError, SampleSet};
use masteer_core::interop::import_control_vector;
use masteer_core::models::gguf::{GgufWriter, MetadataValue, TensorToWrite};
use masteer_core::{CoreError, StrategyLibrary};

fn control_vector(dir: &std::path::Path, tensors: &[(&str, Vec<f32>)]) -> std::path::PathBuf {
    let mut w = GgufWriter::new();
    w.metadata(
        "general.architecture",
        MetadataValue::String("controlvector".into()),
    )
    .metadata(
        "controlvector.model_hint",
        MetadataValue::String("llama".into()),
    )
    .metadata(
        "controlvector.layer_count",
        MetadataValue::U32(tensors.len() as u32),
    );
    for (name, v) in tensors {
        w.tensor(TensorToWrite::f32(*name, vec![v.len()], v));
    }
    let path = dir.join("cv.gguf");
    w.write(&path).unwrap();
    path
}

fn import_err(path: &std::path::Path) -> String {
    let e = import_control_vector(path, 30, 576).unwrap_err();
    assert!(
        matches!(e, CoreError::InvalidInput(_) | CoreError::Model(_)),
        "{e:?}"
    );
    e.to_string()
}

#[test]
fn control_vectors_with_wrong_shape_or_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ok = vec![0.5f32; 576];
    let e = import_err(&control_vector(
        dir.path(),
        &[("direction.3", vec![1.0; 512])],
    ));
    assert!(e.contains("direction.3") && e.contains("width 512"), "{e}");
    let e = import_err(&control_vector(dir.path(), &[("direction.31", ok.clone())]));
    assert!(e.contains("steers block 31"), "{e}");
    let e = import_err(&control_vector(dir.path(), &[("direction.0", ok.clone())]));
    assert!(e.contains("steers block 0"), "{e}");
    let mut nan = ok.clone();
    nan[7] = f32::NAN;
    let e = import_err(&control_vector(dir.path(), &[("direction.4", nan)]));
    assert!(e.contains("non-finite"), "{e}");
    let mut inf = ok.clone();
    inf[0] = f32::INFINITY;
    let e = import_err(&control_vector(dir.path(), &[("direction.4", inf)]));
    assert!(e.contains("non-finite"), "{e}");
    // Zero vectors steer nothing; a file of nothing but zeros is an error.
    let e = import_err(&control_vector(
        dir.path(),
        &[("direction.4", vec![0.0; 576])],
    ));
    assert!(e.contains("no non-zero direction"), "{e}");
    // A zero layer beside a real one is skipped.
    let v = import_control_vector(
        &control_vector(
            dir.path(),
            &[("direction.4", vec![0.0; 576]), ("direction.5", ok)],
        ),
        30,
        576,
    )
    .unwrap();
    assert_eq!(v.layers.keys().copied().collect::<Vec<_>>(), vec![5]);
    // Truncated file.
    let path = control_vector(dir.path(), &[("direction.4", vec![0.5; 576])]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let e = import_err(&path);
    assert!(e.contains("beyond the end"), "{e}");
}

#[test]
fn half_written_or_corrupt_artifacts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let art = dir.path().join("artifact");
    // A library with one strategy, saved properly first.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/controlvector_llamacpp_mean.gguf");
    let v = import_control_vector(&src, 30, 576).unwrap();
    let s = masteer_core::Strategy::new("cv", &v, &[5, 6], 1.0).unwrap();
    let mut lib = StrategyLibrary::new(common::smollm_shaped_fingerprint(), 0);
    lib.add_strategies(vec![s]);
    lib.save(&art).unwrap();
    let tensors = art.join("tensors.safetensors");
    let full = std::fs::read(&tensors).unwrap();

    // Tensors cut short, as by a writer that did not rename atomically.
    std::fs::write(&tensors, &full[..full.len() / 2]).unwrap();
    let e = StrategyLibrary::load(&art).unwrap_err().to_string();
    assert!(e.contains("tensors.safetensors"), "{e}");
    // Tensors missing.
    std::fs::remove_file(&tensors).unwrap();
    let e = StrategyLibrary::load(&art).unwrap_err().to_string();
    assert!(e.contains("tensors.safetensors"), "{e}");
    // NaN inside a vector.
    let mut nan = full.clone();
    let at = nan.len() - 4;
    nan[at..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&tensors, &nan).unwrap();
    let e = StrategyLibrary::load(&art).unwrap_err().to_string();
    assert!(e.contains("non-finite"), "{e}");
    // Not a directory.
    let e = StrategyLibrary::load(&tensors).unwrap_err().to_string();
    assert!(e.contains("manifest.json"), "{e}");
}

#[test]
fn malformed_datasets_name_the_problem() {
    // Empty sample sets, and JSONL that holds nothing.
    let e = SampleSet::new("empty", vec![]).unwrap_err();
    assert!(e.to_string().contains("no samples"), "{e}");
    let e = SampleSet::read(&b"\n\n"[..], "blank.jsonl").unwrap_err();
    assert!(e.to_string().contains("blank.jsonl"), "{e}");
    // CAA: answer fields that are not letters of the question, wrong types.
    let bad_letter = r#"[{"question": "Q? (A) yes (B) no", "answer_matching_behavior": "(C)", "answer_not_matching_behavior": "(B)"}]"#;
    let e = caa::parse(bad_letter, "caa.json").unwrap_err();
    assert!(matches!(e, DatagenError::Format { .. }), "{e:?}");
    assert!(e.to_string().contains("item 0"), "{e}");
    let same = r#"[{"question": "Q? (A) yes (B) no", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(A)"}]"#;
    assert!(caa::parse(same, "caa.json")
        .unwrap_err()
        .to_string()
        .contains("item 0"));
    let e = caa::parse(r#"{"question": 1}"#, "caa.json").unwrap_err();
    assert!(e.to_string().contains("caa.json"), "{e}");
    // TruthfulQA CSV: a missing column, an empty answer (the error names the line).
    let e = truthfulqa::read_csv(&b"Type,Question\nx,y\n"[..], "tqa.csv").unwrap_err();
    assert!(e.to_string().contains("missing column `Category`"), "{e}");
    let csv = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers\n\
               Adversarial,Misc,Q1,A1,A1,B1\n\
               Adversarial,Misc,Q2,,A2,B2\n";
    let e = truthfulqa::read_csv(csv.as_bytes(), "tqa.csv").unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    // One-sided and duplicate sets are refused where they are built.
    let items = caa::parse(
        r#"[{"question": "Q? (A) yes (B) no", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"}]"#,
        "caa.json",
    )
    .unwrap();
    let mut two = caa::to_samples(&items, caa::Wanted::NotMatching, "x");
    two.extend(caa::to_samples(&items, caa::Wanted::NotMatching, "x"));
    let e = SampleSet::new("dup", two).unwrap_err();
    assert!(e.to_string().contains("duplicate"), "{e}");
}
