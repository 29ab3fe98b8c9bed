//! Write the seed corpora of the fuzz targets into `fuzz/seeds/<target>/` from real
//! formats: a micro Llama as GGUF (F32, Q8_0, Q4_0, Q4_1 tensors, tokenizer metadata),
//! tokenizer-only GGUFs (every byte-level BPE pre-tokenizer, SentencePiece)
//! and as a Hugging Face `config.json` + safetensors, an artifact saved by
//! `StrategyLibrary::save`, control vectors (ours and llama.cpp's fixture) and the heads
//! of the bundled datasets.
//!
//! ```text
//! cargo run --release --manifest-path fuzz/Cargo.toml --bin make_seeds
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use masteer_core::algorithms::{LayerDiagnostics, LayerVector, SteeringVector};
use masteer_core::types::{Operation, Positions, Site};
use masteer_core::{ModelFingerprint, Strategy, StrategyLibrary};
use masteer_models::gguf::{dequant, GgmlType, GgufWriter, MetadataValue, TensorToWrite};

const HIDDEN: usize = 32;
const FFN: usize = 32;
const HEADS: usize = 2;
const KV_HEADS: usize = 1;
const HEAD_DIM: usize = HIDDEN / HEADS;
const VOCAB: usize = 32;

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_add(17);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

fn tensor(name: &str, shape: Vec<usize>, dtype: GgmlType, seed: u64) -> TensorToWrite {
    let n: usize = shape.iter().product();
    let v = values(n, seed);
    let data = match dtype {
        GgmlType::Q8_0 => dequant::quantize_q8_0(&v).expect("row multiple of 32"),
        GgmlType::Q4_1 => dequant::quantize_q4_1(&v).expect("row multiple of 32"),
        GgmlType::Q4_0 => {
            // 18-byte blocks: f16 scale, 16 bytes of nibbles.
            v.chunks(32)
                .flat_map(|b| {
                    let mut out = half::f16::from_f32(0.05).to_le_bytes().to_vec();
                    out.extend(b.iter().take(16).map(|x| ((x + 0.5) * 255.0) as u8));
                    out
                })
                .collect()
        }
        _ => return TensorToWrite::f32(name, shape, &v),
    };
    TensorToWrite {
        name: name.into(),
        shape,
        dtype,
        data,
    }
}

/// The micro Llama as GGUF, with a byte-level BPE tokenizer over 32 tokens.
fn micro_gguf() -> Vec<u8> {
    let mut g = GgufWriter::new();
    let u32v = |v: usize| MetadataValue::U32(v as u32);
    let s = |v: &str| MetadataValue::String(v.into());
    g.metadata("general.architecture", s("llama"))
        .metadata("llama.block_count", u32v(1))
        .metadata("llama.context_length", u32v(64))
        .metadata("llama.embedding_length", u32v(HIDDEN))
        .metadata("llama.feed_forward_length", u32v(FFN))
        .metadata("llama.attention.head_count", u32v(HEADS))
        .metadata("llama.attention.head_count_kv", u32v(KV_HEADS))
        .metadata("llama.rope.freq_base", MetadataValue::F32(10000.0))
        .metadata(
            "llama.attention.layer_norm_rms_epsilon",
            MetadataValue::F32(1e-5),
        )
        .metadata("llama.vocab_size", u32v(VOCAB))
        .metadata("tokenizer.ggml.model", s("gpt2"))
        .metadata("tokenizer.ggml.pre", s("smollm"));
    let mut tokens: Vec<String> = vec![
        "<|endoftext|>".into(),
        "<|im_start|>".into(),
        "<|im_end|>".into(),
    ];
    tokens.extend("abcdehlo Ġ".chars().map(|c| c.to_string()));
    tokens.extend(["he", "ll", "lo", "hel", "hello"].map(String::from));
    while tokens.len() < VOCAB {
        tokens.push(format!("t{}", tokens.len()));
    }
    let types: Vec<MetadataValue> = (0..VOCAB)
        .map(|i| MetadataValue::I32(if i < 3 { 3 } else { 1 }))
        .collect();
    g.metadata(
        "tokenizer.ggml.tokens",
        MetadataValue::Array(tokens.iter().map(|t| s(t)).collect()),
    )
    .metadata(
        "tokenizer.ggml.merges",
        MetadataValue::Array(["h e", "l l", "l o", "he l", "hel lo"].iter().map(|m| s(m)).collect()),
    )
    .metadata("tokenizer.ggml.token_type", MetadataValue::Array(types))
    .metadata("tokenizer.ggml.bos_token_id", u32v(1))
    .metadata("tokenizer.ggml.eos_token_id", u32v(2))
    .metadata(
        "tokenizer.chat_template",
        s("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"),
    );
    let q = HEADS * HEAD_DIM;
    let kv = KV_HEADS * HEAD_DIM;
    g.tensor(tensor(
        "token_embd.weight",
        vec![VOCAB, HIDDEN],
        GgmlType::Q8_0,
        1,
    ))
    .tensor(tensor("output_norm.weight", vec![HIDDEN], GgmlType::F32, 2))
    .tensor(tensor(
        "blk.0.attn_norm.weight",
        vec![HIDDEN],
        GgmlType::F32,
        3,
    ))
    .tensor(tensor(
        "blk.0.ffn_norm.weight",
        vec![HIDDEN],
        GgmlType::F32,
        4,
    ))
    .tensor(tensor(
        "blk.0.attn_q.weight",
        vec![q, HIDDEN],
        GgmlType::Q4_1,
        5,
    ))
    .tensor(tensor(
        "blk.0.attn_k.weight",
        vec![kv, HIDDEN],
        GgmlType::Q4_0,
        6,
    ))
    .tensor(tensor(
        "blk.0.attn_v.weight",
        vec![kv, HIDDEN],
        GgmlType::Q8_0,
        7,
    ))
    .tensor(tensor(
        "blk.0.attn_output.weight",
        vec![HIDDEN, q],
        GgmlType::F32,
        8,
    ))
    .tensor(tensor(
        "blk.0.ffn_gate.weight",
        vec![FFN, HIDDEN],
        GgmlType::F16,
        9,
    ))
    .tensor(tensor(
        "blk.0.ffn_up.weight",
        vec![FFN, HIDDEN],
        GgmlType::F32,
        10,
    ))
    .tensor(tensor(
        "blk.0.ffn_down.weight",
        vec![HIDDEN, FFN],
        GgmlType::F32,
        11,
    ));
    g.to_bytes().expect("encode the micro GGUF")
}

/// Tokenizer metadata alone (no tensors), one file per kind of vocabulary the GGUF
/// tokenizer builds: byte-level BPE under each pre-tokenizer name (`pre`), or a
/// SentencePiece vocabulary (`model = "llama"`: scores, byte tokens, unknown id).
/// Without them the fuzzer, started from the micro Llama alone, never left the
/// `smollm` pre-tokenizer (measured: none of a 1M-execution corpus named another).
fn tokenizer_gguf(model: &str, pre: &str) -> Vec<u8> {
    let mut g = GgufWriter::new();
    let u32v = |v: usize| MetadataValue::U32(v as u32);
    let s = |v: &str| MetadataValue::String(v.into());
    g.metadata("general.architecture", s("llama"))
        .metadata("tokenizer.ggml.model", s(model));
    if model == "llama" {
        // <unk>, <s>, </s>, the 256 byte tokens, then pieces with their scores.
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        let mut types = vec![2, 3, 3];
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        types.extend([6; 256]);
        let pieces = [
            "\u{2581}",
            "h",
            "e",
            "l",
            "o",
            "w",
            "r",
            "d",
            "\u{2581}h",
            "ll",
            "lo",
            "\u{2581}w",
            "or",
            "ld",
            "\u{2581}he",
            "llo",
            "\u{2581}hello",
            "\u{2581}world",
        ];
        tokens.extend(pieces.iter().map(|p| p.to_string()));
        types.extend(std::iter::repeat_n(1, pieces.len()));
        let scores: Vec<MetadataValue> = (0..tokens.len())
            .map(|i| MetadataValue::F32(if i < 259 { 0.0 } else { -((i - 259) as f32) }))
            .collect();
        g.metadata(
            "tokenizer.ggml.tokens",
            MetadataValue::Array(tokens.iter().map(|t| s(t)).collect()),
        )
        .metadata("tokenizer.ggml.scores", MetadataValue::Array(scores))
        .metadata(
            "tokenizer.ggml.token_type",
            MetadataValue::Array(types.into_iter().map(MetadataValue::I32).collect()),
        )
        .metadata("tokenizer.ggml.unknown_token_id", u32v(0))
        .metadata("tokenizer.ggml.bos_token_id", u32v(1))
        .metadata("tokenizer.ggml.eos_token_id", u32v(2))
        .metadata("tokenizer.ggml.add_bos_token", MetadataValue::Bool(true))
        .metadata("tokenizer.ggml.add_space_prefix", MetadataValue::Bool(true));
    } else {
        let mut tokens: Vec<String> = vec!["<|endoftext|>".into(), "<|im_start|>".into()];
        tokens.extend("abcdehlorw0123456789 ,!+=Ġ'".chars().map(|c| c.to_string()));
        tokens.extend(
            [
                "he", "ll", "lo", "hel", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld",
            ]
            .map(String::from),
        );
        let merges = [
            "h e", "l l", "l o", "he l", "hel lo", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld",
        ];
        let types: Vec<MetadataValue> = (0..tokens.len())
            .map(|i| MetadataValue::I32(if i < 2 { 3 } else { 1 }))
            .collect();
        g.metadata("tokenizer.ggml.pre", s(pre))
            .metadata(
                "tokenizer.ggml.tokens",
                MetadataValue::Array(tokens.iter().map(|t| s(t)).collect()),
            )
            .metadata(
                "tokenizer.ggml.merges",
                MetadataValue::Array(merges.iter().map(|m| s(m)).collect()),
            )
            .metadata("tokenizer.ggml.token_type", MetadataValue::Array(types))
            .metadata("tokenizer.ggml.bos_token_id", u32v(1))
            .metadata("tokenizer.ggml.eos_token_id", u32v(0));
    }
    g.to_bytes().expect("encode a tokenizer GGUF")
}

/// The micro Llama as `config.json` and one safetensors file (F32, one BF16 tensor).
fn micro_hf() -> (String, Vec<u8>) {
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": 1,
        "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "vocab_size": VOCAB, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 64, "tie_word_embeddings": true,
    })
    .to_string();
    let q = HEADS * HEAD_DIM;
    let kv = KV_HEADS * HEAD_DIM;
    let shapes: Vec<(&str, Vec<usize>)> = vec![
        ("model.embed_tokens.weight", vec![VOCAB, HIDDEN]),
        ("model.norm.weight", vec![HIDDEN]),
        ("model.layers.0.input_layernorm.weight", vec![HIDDEN]),
        (
            "model.layers.0.post_attention_layernorm.weight",
            vec![HIDDEN],
        ),
        ("model.layers.0.self_attn.q_proj.weight", vec![q, HIDDEN]),
        ("model.layers.0.self_attn.k_proj.weight", vec![kv, HIDDEN]),
        ("model.layers.0.self_attn.v_proj.weight", vec![kv, HIDDEN]),
        ("model.layers.0.self_attn.o_proj.weight", vec![HIDDEN, q]),
        ("model.layers.0.mlp.gate_proj.weight", vec![FFN, HIDDEN]),
        ("model.layers.0.mlp.up_proj.weight", vec![FFN, HIDDEN]),
        ("model.layers.0.mlp.down_proj.weight", vec![HIDDEN, FFN]),
    ];
    let bytes: Vec<(String, Vec<usize>, safetensors::Dtype, Vec<u8>)> = shapes
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let v = values(shape.iter().product(), 100 + i as u64);
            if i == 1 {
                let b = v
                    .iter()
                    .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                    .collect();
                (name.to_string(), shape, safetensors::Dtype::BF16, b)
            } else {
                let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (name.to_string(), shape, safetensors::Dtype::F32, b)
            }
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, d, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).expect("view"),
            )
        })
        .collect();
    (
        config,
        safetensors::serialize(views, None).expect("serialise"),
    )
}

/// Two files as one fuzz input: a little-endian u16 length, the first, the second.
fn two_parts(a: &[u8], b: &[u8]) -> Vec<u8> {
    let n = a.len().min(u16::MAX as usize);
    let mut out = (n as u16).to_le_bytes().to_vec();
    out.extend_from_slice(&a[..n]);
    out.extend_from_slice(b);
    out
}

fn steering_vector(layers: &[usize], width: usize) -> SteeringVector {
    SteeringVector {
        algorithm: "mean_difference".into(),
        site: Site::ResidPost,
        operation: Operation::Add,
        positions: Positions::All,
        default_coefficient: 1.0,
        layers: layers
            .iter()
            .map(|&l| {
                let v = values(width, l as u64);
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                (
                    l,
                    LayerVector {
                        direction: v.iter().map(|x| x / n).collect(),
                        scale: 2.0,
                        diagnostics: LayerDiagnostics::default(),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus directory");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn head_lines(path: &Path, n: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("dataset");
    text.lines()
        .take(n)
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

/// The micro GGUF must load whole (configuration, tokenizer, weights, one forward
/// pass), so the fuzzer starts from inputs that reach every stage.
fn check_loads(gguf: &[u8]) {
    use masteer_models::backend::Cpu;
    use masteer_models::{Hooks, Llama, LlamaConfig, SeqInput, Tokenizer};
    let file =
        masteer_models::gguf::GgufFile::from_bytes(gguf.to_vec()).expect("micro GGUF parses");
    let tok = Tokenizer::from_gguf(&file).expect("micro tokenizer");
    let ids = tok.encode("hello").expect("encode");
    let config = LlamaConfig::from_gguf(&file).expect("micro config");
    let weights = masteer_models::weights::GgufWeights::new(
        file,
        config.num_attention_heads,
        config.num_key_value_heads,
    );
    let model =
        Llama::<Cpu>::load(config, &weights, &Default::default()).expect("micro model loads");
    let n = ids.len();
    let logits = masteer_models::generation::logits_at(
        &model,
        vec![SeqInput::prompt(ids.clone())],
        &[vec![n - 1]],
        &mut Hooks::none(),
    )
    .expect("forward pass");
    assert!(logits[0][0].iter().all(|x| x.is_finite()));
    println!("micro GGUF: tokens {ids:?}, {} logits", logits[0][0].len());
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = root.parent().expect("repository root").to_path_buf();
    let corpus = root.join("seeds");

    let gguf = micro_gguf();
    check_loads(&gguf);
    write(&corpus.join("gguf"), "micro_llama.gguf", &gguf);
    write(&corpus.join("gguf_tokenizer"), "micro_llama.gguf", &gguf);
    // Every vocabulary kind the GGUF tokenizer builds, each checked to build and encode.
    for (model, pre) in [
        ("gpt2", "smollm"),
        ("gpt2", "gpt2"),
        ("gpt2", "gpt-2"),
        ("gpt2", "default"),
        ("gpt2", "llama-bpe"),
        ("gpt2", "llama3"),
        ("gpt2", "deepseek-llm"),
        ("gpt2", "deepseek-coder"),
        ("llama", "spm"),
    ] {
        let bytes = tokenizer_gguf(model, pre);
        let file = masteer_models::gguf::GgufFile::from_bytes(bytes.clone())
            .expect("tokenizer GGUF parses");
        let tok = masteer_models::Tokenizer::from_gguf(&file)
            .unwrap_or_else(|e| panic!("{model}/{pre} tokenizer builds: {e}"));
        let ids = tok.encode("hello world").expect("encode");
        println!("tokenizer {model}/{pre}: \"hello world\" -> {ids:?}");
        write(
            &corpus.join("gguf_tokenizer"),
            &format!("{model}_{pre}.gguf"),
            &bytes,
        );
    }
    write(
        &corpus.join("gguf"),
        "micro_llama_truncated.gguf",
        &gguf[..gguf.len() / 2],
    );

    let (config, st) = micro_hf();
    write(
        &corpus.join("hf_folder"),
        "micro_llama",
        &two_parts(config.as_bytes(), &st),
    );

    // An artifact as `StrategyLibrary::save` writes it, at the micro width.
    let fp = ModelFingerprint {
        architecture: "llama".into(),
        layers: 4,
        width: 8,
        heads: 2,
        head_dim: 4,
        vocab: 32,
        tokenizer_hash: "t".repeat(64),
        weights_hash: "w".repeat(64),
    };
    let mut lib = StrategyLibrary::new(fp, 3);
    lib.add_strategies(vec![Strategy::new(
        "issue",
        &steering_vector(&[1, 2], 8),
        &[1, 2],
        1.5,
    )
    .expect("strategy")]);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let art = tmp.path().join("artifact");
    lib.save(&art).expect("save the artifact");
    let manifest = std::fs::read(art.join("manifest.json")).expect("manifest");
    let tensors = std::fs::read(art.join("tensors.safetensors")).expect("tensors");
    write(
        &corpus.join("artifact"),
        "library",
        &two_parts(&manifest, &tensors),
    );

    // Control vectors: ours (SmolLM2 width) and llama.cpp's own.
    let cv = tmp.path().join("cv.gguf");
    let s = Strategy::new("issue", &steering_vector(&[3], 576), &[3], 2.0).expect("strategy");
    masteer_core::interop::export_control_vector(&s, 30, "llama", &cv).expect("export");
    write(
        &corpus.join("control_vector"),
        "ours.gguf",
        &std::fs::read(&cv).expect("read"),
    );
    let llama_cpp = repo.join("masteer-core/tests/fixtures/controlvector_llamacpp_mean.gguf");
    let bytes = std::fs::read(&llama_cpp).expect("llama.cpp fixture");
    write(
        &corpus.join("control_vector"),
        "llamacpp_head.gguf",
        &bytes[..bytes.len().min(16 * 1024)],
    );

    // Datasets: the first byte picks the format (see fuzz_targets/datasets.rs).
    let data = repo.join("masteer-datagen/data");
    let caa_full = std::fs::read_to_string(data.join("caa/test/sycophancy/test_dataset_ab.json"))
        .expect("CAA");
    let items: Vec<serde_json::Value> = serde_json::from_str(&caa_full).expect("CAA JSON");
    let caa = serde_json::to_vec(&items[..3]).expect("encode");
    let set = masteer_datagen::SampleSet::new(
        "seed",
        masteer_datagen::formats::caa::to_samples(
            &masteer_datagen::formats::caa::parse(&String::from_utf8_lossy(&caa), "seed")
                .expect("parse"),
            masteer_datagen::formats::caa::Wanted::NotMatching,
            "seed",
        ),
    )
    .expect("sample set");
    let jsonl = set.to_jsonl().expect("jsonl");
    let tqa = head_lines(&data.join("truthfulqa/TruthfulQA.csv"), 6);
    let mc_full = std::fs::read_to_string(data.join("truthfulqa/mc_task.json")).expect("MC");
    let mc: Vec<serde_json::Value> = serde_json::from_str(&mc_full).expect("MC JSON");
    let mc = serde_json::to_vec(&mc[..2]).expect("encode");
    for (i, (tag, bytes)) in [(0u8, jsonl.into_bytes()), (1, caa), (2, tqa), (3, mc)]
        .into_iter()
        .enumerate()
    {
        let mut seed = vec![tag];
        seed.extend(bytes);
        write(&corpus.join("datasets"), &format!("seed{i}"), &seed);
    }
    // Server request bodies: chat (0) and completions (1), valid and near-valid.
    let bodies: [(u8, &str); 5] = [
        (
            0,
            r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":16,"temperature":0.7,"top_p":0.9,"seed":3,"stream":true,"stop":["\n"],"steering":{"mode":"fixed","strategy":"a/b","coefficient":1.5}}"#,
        ),
        (
            0,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_completion_tokens":8,"n":1,"steering":{"mode":"adaptive"}}"#,
        ),
        (
            0,
            r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":"many"}"#,
        ),
        (
            1,
            r#"{"model":"m","prompt":"The capital of France is","max_tokens":8,"stop":"."}"#,
        ),
        (1, r#"{"prompt":["a","b"],"steering":{"mode":"none"}}"#),
    ];
    for (i, (tag, body)) in bodies.iter().enumerate() {
        let mut seed = vec![*tag];
        seed.extend(body.as_bytes());
        write(&corpus.join("request_body"), &format!("seed{i}"), &seed);
    }
    println!("seed corpora written to {}", corpus.display());
}
