//! Artifacts (manifest + tensors) and llama.cpp control vectors.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use masteer_core::algorithms::{LayerDiagnostics, LayerVector, SteeringVector};
use masteer_core::anchor::{AnchorConfig, AnchorSet, CalibrationSample, CalibrationSet};
use masteer_core::interop::{export_control_vector, import_control_vector};
use masteer_core::types::{HookPoint, Operation, Positions, Site};
use masteer_core::{CoreError, IssueRecord, ModelFingerprint, Router, Strategy, StrategyLibrary};

fn fingerprint() -> ModelFingerprint {
    common::smollm_shaped_fingerprint()
}

fn pseudo(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_add(0x9e37_79b9);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect()
}

fn unit(n: usize, seed: u64) -> Vec<f32> {
    let v = pseudo(n, seed);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

fn vector(algorithm: &str, site: Site, layers: &[usize], seed: u64) -> SteeringVector {
    SteeringVector {
        algorithm: algorithm.into(),
        site,
        operation: Operation::Add,
        positions: Positions::All,
        default_coefficient: 1.0,
        layers: layers
            .iter()
            .map(|&l| {
                (
                    l,
                    LayerVector {
                        direction: unit(576, seed + l as u64),
                        scale: 3.25 + l as f32 / 7.0,
                        diagnostics: LayerDiagnostics {
                            pair_accuracy: Some(0.9),
                            margin: 1.5,
                            ..Default::default()
                        },
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

fn library() -> StrategyLibrary {
    let strategies = vec![
        Strategy::new(
            "syco",
            &vector("mean_difference", Site::ResidPost, &[12, 14], 1),
            &[12, 14],
            1.5,
        )
        .unwrap(),
        Strategy::new(
            "syco",
            &vector("iti", Site::AttnHeads, &[13], 2),
            &[13],
            15.0,
        )
        .unwrap(),
    ];
    let cal = CalibrationSet {
        strategies: strategies.iter().map(|s| s.name.clone()).collect(),
        samples: (0..30)
            .map(|i| CalibrationSample {
                id: format!("s{i}"),
                representation: pseudo(576, 100 + (i % 3) as u64)
                    .iter()
                    .map(|x| x + 0.01 * (i as f32))
                    .collect(),
                scores: match i % 3 {
                    0 => vec![1.0, -0.2],
                    1 => vec![-0.2, 1.0],
                    _ => vec![-0.1, -0.1],
                },
                in_scope: i % 3 != 2,
            })
            .collect(),
    };
    let anchors = AnchorSet::fit(&cal, &AnchorConfig::default()).unwrap();
    let mut lib = StrategyLibrary::new(fingerprint(), 7);
    lib.issues.push(IssueRecord {
        name: "syco".into(),
        description: "agrees with false claims".into(),
        sample_set_hash: "h".repeat(64),
        samples: 120,
    });
    lib.add_strategies(strategies);
    lib.router = Some(Router::Anchors {
        point: HookPoint::resid_pre(12),
        anchors,
    });
    lib
}

#[test]
fn artifact_round_trip_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repair");
    let lib = library();
    lib.save(&path).unwrap();
    let back = StrategyLibrary::load(&path).unwrap();
    assert_eq!(back, lib);
    // Decisions of the loaded anchors equal the original ones.
    let (a, b) = (lib.anchors().unwrap(), back.anchors().unwrap());
    for seed in 0..5 {
        let rep = pseudo(576, 100 + seed);
        assert_eq!(a.decide(&rep).unwrap(), b.decide(&rep).unwrap());
    }
    // Saving again over it replaces it and leaves nothing behind.
    let mut lib2 = lib.clone();
    lib2.seed = 8;
    lib2.save(&path).unwrap();
    assert_eq!(StrategyLibrary::load(&path).unwrap().seed, 8);
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
}

#[test]
fn artifacts_for_another_model_or_schema_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repair");
    library().save(&path).unwrap();
    let mut other = fingerprint();
    other.weights_hash = "x".repeat(64);
    other.layers = 32;
    match StrategyLibrary::load_for(&path, &other).unwrap_err() {
        CoreError::ModelMismatch(m) => {
            assert!(m.contains("layers") && m.contains("weights_hash"), "{m}")
        }
        e => panic!("{e}"),
    }
    assert!(StrategyLibrary::load_for(&path, &fingerprint()).is_ok());

    let manifest = path.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("\"schema_version\": 1", "\"schema_version\": 99"),
    )
    .unwrap();
    let e = StrategyLibrary::load(&path).unwrap_err().to_string();
    assert!(e.contains("unknown schema version 99"), "{e}");
    std::fs::write(
        &manifest,
        text.replace("strategy.1.layer.13", "strategy.1.layer.99"),
    )
    .unwrap();
    let e = StrategyLibrary::load(&path).unwrap_err().to_string();
    assert!(e.contains("missing tensor `strategy.1.layer.99`"), "{e}");
    std::fs::write(&manifest, "{ half").unwrap();
    assert!(StrategyLibrary::load(&path)
        .unwrap_err()
        .to_string()
        .contains("not valid JSON"));
    std::fs::remove_file(&manifest).unwrap();
    let e = StrategyLibrary::load(&path).unwrap_err().to_string();
    assert!(e.contains("no manifest.json"), "{e}");
}

#[test]
fn control_vectors_round_trip_through_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cv.gguf");
    let s = Strategy::new(
        "syco",
        &vector("mean_difference", Site::ResidPost, &[3, 12], 5),
        &[3, 12],
        2.5,
    )
    .unwrap();
    export_control_vector(&s, 30, "llama", &path).unwrap();
    let v = import_control_vector(&path, 30, 576).unwrap();
    assert_eq!(v.layers.keys().copied().collect::<Vec<_>>(), vec![3, 12]);
    for (l, lv) in &s.vector.layers {
        let want = lv.vector(2.5);
        let got = v.vector_at(*l, 1.0).unwrap();
        let err = want
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err < 1e-6, "layer {l}: {err}");
    }
    // What cannot be expressed is refused.
    let iti = Strategy::new("syco", &vector("iti", Site::AttnHeads, &[3], 5), &[3], 1.0).unwrap();
    assert!(export_control_vector(&iti, 30, "llama", &path).is_err());
    let l0 = Strategy::new("syco", &vector("m", Site::ResidPost, &[0], 5), &[0], 1.0).unwrap();
    assert!(export_control_vector(&l0, 30, "llama", &path).is_err());
    // Wrong width on import.
    assert!(import_control_vector(&path, 30, 512).is_err());
}

#[test]
fn a_control_vector_written_by_llama_cpp_imports() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/controlvector_llamacpp_mean.gguf");
    let v = import_control_vector(&path, 30, 576).unwrap();
    assert_eq!(v.layers.len(), 29);
    assert_eq!(v.layers.keys().next(), Some(&1));
    assert_eq!(v.layers.keys().last(), Some(&29));
    for lv in v.layers.values() {
        assert!(
            (lv.scale - 1.0).abs() < 1e-4,
            "llama.cpp's mean vectors are unit norm: {}",
            lv.scale
        );
    }
    // Not a control vector.
    let model = masteer_core::models::embedded::resolve(None).unwrap();
    assert!(import_control_vector(&model, 30, 576)
        .unwrap_err()
        .to_string()
        .contains("not `controlvector`"));
}

/// Version `k` of the library written by the killed writer: its seed is `k`, its
/// vectors (twelve strategies over 29 layers, ~0.8 MB of tensors, so that writing
/// dominates the writer's loop) one of three variants.
fn library_version(k: u64) -> StrategyLibrary {
    let mut lib = library();
    let variant = k % 3;
    let layers: Vec<usize> = (1..30).collect();
    lib.add_strategies(
        (0..12)
            .map(|i| {
                Strategy::new(
                    &format!("big{i}"),
                    &vector(
                        "mean_difference",
                        Site::ResidPost,
                        &layers,
                        1000 * variant + i,
                    ),
                    &layers,
                    2.0,
                )
                .unwrap()
            })
            .collect(),
    );
    lib.issues[0].samples = variant as usize;
    lib.seed = k;
    lib
}

/// Version `k` of the sample set: named `v{k}`, one of three variants of CAA items.
fn sample_set_version(k: u64) -> masteer_core::datagen::SampleSet {
    use masteer_core::datagen::formats::caa;
    let items = caa::load(&masteer_core::datagen::corpora::caa_generate("sycophancy")).unwrap();
    let n = 400 + (k % 3) as usize * 50;
    masteer_core::datagen::SampleSet::new(
        format!("v{k}"),
        caa::to_samples(&items[..n], caa::Wanted::NotMatching, "sycophancy"),
    )
    .unwrap()
}

/// The writer of `a_killed_writer_leaves_the_previous_version_loadable`, run in a child
/// process: saves versions 1, 2, 3, ... of an artifact and of a sample set over the same
/// paths as fast as it can, until it is killed.
#[test]
#[ignore = "run as a child process by a_killed_writer_leaves_the_previous_version_loadable"]
fn durability_writer_child() {
    let dir = std::path::PathBuf::from(
        std::env::var_os("MASTEER_KILL_TEST_DIR").expect("MASTEER_KILL_TEST_DIR"),
    );
    let libs: Vec<StrategyLibrary> = (0..3).map(library_version).collect();
    let sets: Vec<_> = (0..3).map(sample_set_version).collect();
    let mut k = 1u64;
    loop {
        let mut lib = libs[(k % 3) as usize].clone();
        lib.seed = k;
        lib.save(&dir.join("artifact")).unwrap();
        let mut set = sets[(k % 3) as usize].clone();
        set.name = format!("v{k}");
        set.save(&dir.join("samples.jsonl")).unwrap();
        if k == 1 {
            println!("READY");
        }
        k += 1;
    }
}

#[test]
fn a_killed_writer_leaves_the_previous_version_loadable() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().unwrap();
    let mut versions_seen = std::collections::BTreeSet::new();
    for round in 0..16u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                // The test's path in the integration binary (tests/main.rs).
                concat!(module_path!(), "::durability_writer_child")
                    .trim_start_matches("integration::"),
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MASTEER_KILL_TEST_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        assert!(
            lines.any(|l| l.map(|l| l.contains("READY")).unwrap_or(false)),
            "the writer never finished its first save"
        );
        // Kill it at a different moment of its write loop each round.
        std::thread::sleep(std::time::Duration::from_millis(2 + 7 * round));
        child.kill().unwrap(); // SIGKILL: no destructor, no cleanup
        child.wait().unwrap();

        let lib = StrategyLibrary::load(&dir.path().join("artifact"))
            .unwrap_or_else(|e| panic!("round {round}: artifact unreadable after the kill: {e}"));
        let k = lib.seed;
        assert!(k >= 1, "round {round}");
        assert_eq!(
            lib,
            library_version(k),
            "round {round}: version {k} is not intact"
        );
        let set = masteer_core::datagen::SampleSet::load(&dir.path().join("samples.jsonl"))
            .unwrap_or_else(|e| panic!("round {round}: sample set unreadable: {e}"));
        let j: u64 = set.name.trim_start_matches('v').parse().unwrap();
        assert_eq!(
            set,
            sample_set_version(j),
            "round {round}: sample set {j} is not intact"
        );
        versions_seen.insert(k);
    }
    // The kills landed at different points: more than one version survived.
    assert!(versions_seen.len() > 1, "{versions_seen:?}");
}

/// The router names strategies by id: the library's strategy order does not change
/// which plan a decision gives, and a route to a strategy the library lacks is an
/// error (of the check, the decider and loading), not a silent other strategy.
#[test]
fn router_routes_by_name_not_position() {
    use masteer_core::models::Decider;
    use masteer_core::types::HookPoint;
    let lib = library();
    let mut reversed = lib.clone();
    reversed.strategies.reverse();
    let reps: Vec<f32> = (0..3)
        .flat_map(|k| pseudo(576, 100 + k).into_iter().map(|x| x + 0.05))
        .collect();
    let reps = masteer_core::algorithms::ndarray::Array2::from_shape_vec((3, 576), reps).unwrap();
    let plans = |l: &StrategyLibrary| l.decider().unwrap().decide(reps.view()).unwrap();
    let (a, b) = (plans(&lib), plans(&reversed));
    assert_eq!(a, b);
    assert!(
        a.iter().any(|p| p.is_some()),
        "some input is steered: {a:?}"
    );

    let mut missing = lib.clone();
    missing.strategies.retain(|s| !s.name.ends_with("iti"));
    let e = missing
        .decider()
        .err()
        .expect("a route without its strategy");
    assert!(e.to_string().contains("not in the library"), "{e}");
    let router = missing.router.clone().unwrap();
    assert!(router.check(&missing.strategies).is_err());
    assert_eq!(router.point(), HookPoint::resid_pre(12));

    // Saved, then loaded: the same check refuses the artifact.
    let dir = tempfile::tempdir().unwrap();
    missing.save(&dir.path().join("a")).unwrap();
    let e = StrategyLibrary::load(&dir.path().join("a")).unwrap_err();
    assert!(e.to_string().contains("not in the library"), "{e}");
}

/// An artifact written by the first schema-1 code (the mirror-type writer, before the
/// manifest became the library's own serde form): a gated harmful-requests repair.
#[test]
fn an_artifact_written_by_the_first_schema_1_writer_loads() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/artifact_v1_gate");
    let lib = StrategyLibrary::load(&src).unwrap();
    assert_eq!(lib.strategies.len(), 4);
    let gate = lib.gate().expect("a gate router");
    assert_eq!(gate.strategy, "harmful-requests/pca_center/gated");
    assert!(lib.strategy(&gate.strategy).is_some());
    // Written before gates could pool the prompt's last tokens: the last token alone.
    assert_eq!(gate.pooled_tokens, 1);
    for s in &lib.strategies {
        assert_eq!(
            s.vector.layers.keys().copied().collect::<Vec<_>>(),
            [12, 14, 16]
        );
        for lv in s.vector.layers.values() {
            let n: f32 = lv.direction.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert_eq!(lv.direction.len(), 576);
            assert!((n - 1.0).abs() < 1e-3, "{} norm {n}", s.name);
        }
    }
    // Written again by this build: the same library, and the same tensor names.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("again");
    lib.save(&out).unwrap();
    assert_eq!(StrategyLibrary::load(&out).unwrap(), lib);
    let names = |p: &Path| {
        let bytes = std::fs::read(p.join("tensors.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut n: Vec<String> = st.names().into_iter().map(String::from).collect();
        n.sort();
        n
    };
    assert_eq!(names(&src), names(&out));
}

/// The schema-1 layout of strategies and anchors, written out field by field as the
/// first writer laid it out (flat strategy fields, `layers` as a list with `tensor`
/// names, `anchors` with `center_tensor`), loads into the domain types.
#[test]
fn the_schema_1_anchor_layout_loads_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let art = dir.path().join("v1");
    std::fs::create_dir_all(&art).unwrap();
    let fp = fingerprint();
    let manifest = serde_json::json!({
        "schema_version": 1,
        "crate_version": "0.1.0",
        "model": fp,
        "seed": 7,
        "issues": [{"name": "i", "description": "d", "sample_set_hash": "h", "samples": 2}],
        "strategies": [{
            "name": "i/mean_difference", "issue": "i", "algorithm": "mean_difference",
            "site": "resid_post", "operation": "add", "positions": {"kind": "all"},
            "coefficient": 0.5, "default_coefficient": 1.0,
            "layers": [{"layer": 13, "scale": 2.0, "tensor": "strategy.0.layer.13",
                "diagnostics": {"train_pair_accuracy": 1.0, "pair_accuracy": null,
                    "margin": 1.0, "separation": 2.0, "raw_norm": 2.0,
                    "explained_variance": null, "probe_accuracy": null, "heads": []}}]
        }],
        "anchors": {
            "point": "blocks.12.resid_pre", "strategies": ["i/mean_difference"],
            "mode": {"kind": "hard", "margin": 0.1}, "center_tensor": "anchors.center",
            "anchors": [{"strategy": 0, "members": 3, "tensor": "anchors.0"},
                        {"strategy": null, "members": 2, "tensor": "anchors.1"}],
            "report": {"hard_margin": 0.1, "hard_score": 0.5, "hard_out_of_scope_steered": 0.0,
                "soft_temperature": 0.1, "soft_margin": 0.0, "soft_score": 0.4,
                "soft_out_of_scope_steered": 0.0, "oracle_score": 0.6,
                "single_scores": [0.3], "helped": [3], "warnings": []}
        },
        "calibration": []
    });
    std::fs::write(
        art.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let (dir0, c, a0, a1) = (unit(576, 1), pseudo(576, 2), unit(576, 3), unit(576, 4));
    let bytes: Vec<(&str, Vec<u8>)> = [
        ("strategy.0.layer.13", &dir0),
        ("anchors.center", &c),
        ("anchors.0", &a0),
        ("anchors.1", &a1),
    ]
    .into_iter()
    .map(|(n, v)| (n, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
    .collect();
    let views: Vec<(&str, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, b)| {
            (
                *n,
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![576], b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(
        art.join("tensors.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    let lib = StrategyLibrary::load(&art).unwrap();
    let s = &lib.strategies[0];
    assert_eq!((s.name.as_str(), s.coefficient), ("i/mean_difference", 0.5));
    assert_eq!(s.vector.layers[&13].direction, dir0);
    assert_eq!(s.vector.layers[&13].scale, 2.0);
    let anchors = lib.anchors().expect("anchors");
    assert_eq!(anchors.center, c);
    assert_eq!(anchors.anchors[0].centroid, a0);
    assert_eq!(anchors.anchors[1].strategy, None);
    assert_eq!(
        lib.router.as_ref().unwrap().point(),
        HookPoint::resid_pre(12)
    );
    // Re-saved by this build, the manifest keeps the schema-1 field names.
    lib.save(&art).unwrap();
    let text = std::fs::read_to_string(art.join("manifest.json")).unwrap();
    for key in [
        "\"center_tensor\": \"anchors.center\"",
        "\"tensor\": \"strategy.0.layer.13\"",
        "\"default_coefficient\"",
    ] {
        assert!(text.contains(key), "{key} missing");
    }
    assert_eq!(StrategyLibrary::load(&art).unwrap(), lib);
}
