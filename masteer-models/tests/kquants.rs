//! K-quant GGUF files against independent references.
//!
//! - Files: the embedded model quantised by llama.cpp's own quantiser
//!   (`llama_model_quantize`, from llama-cpp-python) to Q2_K, Q3_K_M, Q4_K_M, Q5_K_M and
//!   Q6_K, loaded here, against llama.cpp's logits for the same file converted by
//!   llama.cpp to F32 (its precise path: its quantised matmuls also round the
//!   activations to 8 bits, which moves logits by up to ~1 on this model). SmolLM2's
//!   width (576) is not a multiple of 256, so llama.cpp stores the matrices of that
//!   width in fallback types (Q4_0, Q5_0, Q5_1, Q8_0) and the MLP's down projection
//!   (1536 wide) in K-quants; the test checks that K-quant tensors are there. Both CPU
//!   paths are compared: the prefill (tiles dequantised into the GEMM) and a decode step
//!   (the few-row kernel reading every format as stored).
//! - Blocks: random blocks of every supported type dequantised by gguf-py (llama.cpp's
//!   Python GGUF library), bit for bit.
//! - 8-bit inputs (`Kernels::FusedInt8`): a decode step on the Q4_1 file and its
//!   Q4_K_M requantisation against llama.cpp's own logits on those files (its
//!   quantised matmuls, which also round the activations to 8 bits).

use std::collections::BTreeMap;
use std::process::Command;

use masteer_models::backend::Cpu;
use masteer_models::generation::Session;
use masteer_models::gguf::{GgmlType, GgufFile};
use masteer_models::{ChatMessage, Hooks, LoadedModel, SeqInput};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kquant_peer.py");

/// Whether python3 can import `module`; under CI its absence is a failure.
fn python_has(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 cannot import {module} (`.ci/run` installs it)"
        );
        eprintln!("skipping: python3 cannot import {module}");
    }
    ok
}

/// The peer's standard output for `args`; its failure fails the test.
fn run_peer(args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let out = Command::new("python3")
        .arg(PEER)
        .args(args)
        .output()
        .expect("run the peer");
    assert!(
        out.status.success(),
        "peer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The embedded model's path and the prompt every file is compared on, as token ids.
fn source_and_prompt() -> (std::path::PathBuf, Vec<u32>) {
    let src = masteer_models::embedded::resolve(None).expect("the embedded model");
    let base: LoadedModel<Cpu> = LoadedModel::load(&src, &Default::default()).expect("load");
    let ids = base
        .encode_chat(&[ChatMessage::user("What is the tallest mountain on Earth?")])
        .unwrap();
    (src, ids)
}

#[test]
fn every_block_type_dequantises_as_gguf_py_does() {
    if !python_has("gguf") {
        return;
    }
    let out = run_peer(&["blocks".as_ref()]);
    let res: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&out).unwrap();
    assert_eq!(res.len(), 11);
    for (name, r) in &res {
        let hex = r["bytes"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let want: Vec<f32> = r["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let t = [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
            GgmlType::Iq4Nl,
            GgmlType::Q2K,
            GgmlType::Q3K,
            GgmlType::Q4K,
            GgmlType::Q5K,
            GgmlType::Q6K,
        ]
        .into_iter()
        .find(|t| t.to_string() == *name)
        .unwrap_or_else(|| panic!("unknown type {name}"));
        let got = masteer_models::gguf::dequant::dequantize(t, &bytes, want.len())
            .unwrap_or_else(|| panic!("{name}: refused"));
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                a == b || (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                "{name} value {i}: {a} vs gguf-py {b}"
            );
        }
    }
}

#[test]
fn k_quant_files_match_llama_cpp() {
    let (src, ids) = source_and_prompt();
    if !python_has("llama_cpp") {
        return;
    }
    let device = Default::default();
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kquants");
    let ids_json = serde_json::to_string(&ids).unwrap();
    let peer = run_peer(&[
        "files".as_ref(),
        src.as_ref(),
        out_dir.as_ref(),
        ids_json.as_ref(),
    ]);
    let res: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&peer).expect("peer JSON");
    assert_eq!(res.len(), 5);
    let mut seen_types = BTreeMap::new();
    for (name, r) in &res {
        let path = r["path"].as_str().unwrap();
        let file = GgufFile::open(std::path::Path::new(path)).unwrap();
        for t in file.tensors() {
            *seen_types.entry(t.dtype.to_string()).or_insert(0usize) += 1;
        }
        let lm: LoadedModel<Cpu> = LoadedModel::load(path, &device).expect("load a K-quant file");
        let n = ids.len();
        let got = masteer_models::generation::logits_at(
            &lm.model,
            vec![SeqInput::prompt(ids.clone())],
            &[vec![n - 1]],
            &mut Hooks::none(),
        )
        .unwrap()
        .remove(0)
        .remove(0);
        // The same position through a decode step: the few-row kernel reads every
        // matrix as stored (the prefill above dequantises tiles into the GEMM).
        let stepped = decode_step_logits(&lm, &ids, masteer_models::Kernels::Fused);
        let want: Vec<f32> = r["last_logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let step_max = stepped
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("{name}: decode step max |Δ| {step_max:.4}");
        assert!(step_max <= 0.05, "{name}: decode step max |Δ| {step_max}");
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let offset = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b) as f64)
            .sum::<f64>()
            / want.len() as f64;
        let mean = got
            .iter()
            .zip(&want)
            .map(|(a, b)| ((a - b) as f64 - offset).abs())
            .sum::<f64>()
            / want.len() as f64;
        let top = |v: &[f32]| masteer_models::Sampler::argmax(v);
        eprintln!("{name}: max |Δ| {max:.4}, mean |Δ| {mean:.5} after offset {offset:+.4}, top-1 {} vs {}", top(&got), top(&want));
        assert_eq!(top(&got), top(&want), "{name}: top-1 differs");
        // The tolerance of the golden test of the shipped file.
        assert!(max <= 0.05, "{name}: max |Δ| {max}");
        assert!(mean <= 0.01, "{name}: mean |Δ| {mean}");
        assert!(offset.abs() <= 0.02, "{name}: constant offset {offset}");
    }
    eprintln!("tensor types in the files: {seen_types:?}");
    // The Q2_K file itself stores no Q2_K tensor here (llama.cpp raises the down projection to
    // Q3_K/Q4_K); Q2_K blocks are checked against gguf-py above.
    for t in [GgmlType::Q3K, GgmlType::Q4K, GgmlType::Q5K, GgmlType::Q6K] {
        assert!(
            seen_types.contains_key(&t.to_string()),
            "no {t} tensor in the files: {seen_types:?}"
        );
    }
}

/// Logits of the last of `ids` through a decode step (the few-row kernels) with `kernels`.
fn decode_step_logits(
    lm: &LoadedModel<Cpu>,
    ids: &[u32],
    kernels: masteer_models::Kernels,
) -> Vec<f32> {
    let model = lm.model.clone().with_kernels(kernels);
    let n = ids.len();
    let (mut session, _) = Session::prefill(
        &model,
        vec![SeqInput::prompt(ids[..n - 1].to_vec())],
        1,
        &mut Hooks::none(),
    )
    .unwrap();
    let hidden = session
        .step(&model, &ids[n - 1..], &mut Hooks::none())
        .unwrap();
    let width = model.config().hidden_size;
    model
        .logits(hidden.reshape([1, width]))
        .into_data()
        .to_vec()
        .unwrap()
}

/// Max and mean |a − b|.
fn distance(a: &[f32], b: &[f32]) -> (f32, f64) {
    let max = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    let mean = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64)
        .sum::<f64>()
        / a.len() as f64;
    (max, mean)
}

#[test]
fn int8_kernels_follow_llama_cpp_on_its_quantised_files() {
    let (src, ids) = source_and_prompt();
    if !python_has("llama_cpp") {
        return;
    }
    let device = Default::default();
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kquants");
    let ids_json = serde_json::to_string(&ids).unwrap();
    let peer = run_peer(&[
        "native".as_ref(),
        out_dir.as_ref(),
        ids_json.as_ref(),
        src.as_ref(),
    ]);
    let res: BTreeMap<String, Vec<f32>> = serde_json::from_slice(&peer).expect("peer JSON");
    assert_eq!(res.len(), 2);
    for (path, want) in &res {
        let lm: LoadedModel<Cpu> = LoadedModel::load(path, &device).expect("load");
        let exact = decode_step_logits(&lm, &ids, masteer_models::Kernels::Fused);
        let int8 = decode_step_logits(&lm, &ids, masteer_models::Kernels::FusedInt8);
        let (emax, emean) = distance(&exact, want);
        let (imax, imean) = distance(&int8, want);
        let (dmax, dmean) = distance(&int8, &exact);
        let top = |v: &[f32]| masteer_models::Sampler::argmax(v);
        eprintln!(
            "{path}: llama.cpp vs exact max {emax:.3} mean {emean:.4}; vs int8 max {imax:.3} mean {imean:.4}; int8 vs exact max {dmax:.3} mean {dmean:.4}; top-1 {} {} {}",
            top(want), top(&exact), top(&int8)
        );
        // Measured 2026-12-05: llama.cpp's own logits differ from the exact path by max
        // 0.79 / 0.88 (mean 0.12 / 0.19) on the Q4_1 / Q4_K_M files, from the int8 path
        // by max 0.66 / 1.04 (mean 0.12 / 0.16); int8 from exact by max 0.57 / 0.61.
        // A kernel that misreads a format moves logits by several units.
        assert_eq!(
            top(&int8),
            top(want),
            "{path}: int8 top-1 differs from llama.cpp"
        );
        assert_eq!(
            top(&int8),
            top(&exact),
            "{path}: int8 top-1 differs from exact"
        );
        assert!(
            imax <= 1.5 && imean <= 0.25,
            "{path}: int8 vs llama.cpp max {imax} mean {imean}"
        );
        assert!(
            dmax <= 1.5 && dmean <= 0.25,
            "{path}: int8 vs exact max {dmax} mean {dmean}"
        );
        assert!(
            emax <= 1.5 && emean <= 0.25,
            "{path}: exact vs llama.cpp max {emax} mean {emean}"
        );
    }
}
