//! A tiny random Llama written both as a Hugging Face folder and as a GGUF file, the
//! way llama.cpp's converter writes it (Q/K rows permuted), to test the loaders.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use masteer_models::gguf::{GgmlType, GgufWriter, MetadataValue, TensorToWrite};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

pub const VOCAB: usize = 49152;
pub const HIDDEN: usize = 64;
pub const FFN: usize = 128;
pub const LAYERS: usize = 2;
pub const HEADS: usize = 4;
pub const KV_HEADS: usize = 2;
pub const HEAD_DIM: usize = 16;

/// Weights in Hugging Face naming and layout, `name -> (shape, values)`.
pub fn weights(seed: u64) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let mut s = seed;
    let mut rand = |n: usize, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5) * scale
            })
            .collect()
    };
    let mut w = BTreeMap::new();
    w.insert(
        "model.embed_tokens.weight".to_string(),
        (vec![VOCAB, HIDDEN], rand(VOCAB * HIDDEN, 1.0)),
    );
    w.insert(
        "model.norm.weight".to_string(),
        (
            vec![HIDDEN],
            rand(HIDDEN, 0.2).iter().map(|x| 1.0 + x).collect(),
        ),
    );
    for l in 0..LAYERS {
        let p = |n: &str| format!("model.layers.{l}.{n}");
        let q = HEADS * HEAD_DIM;
        let kv = KV_HEADS * HEAD_DIM;
        for (name, rows, cols) in [
            ("self_attn.q_proj.weight", q, HIDDEN),
            ("self_attn.k_proj.weight", kv, HIDDEN),
            ("self_attn.v_proj.weight", kv, HIDDEN),
            ("self_attn.o_proj.weight", HIDDEN, q),
            ("mlp.gate_proj.weight", FFN, HIDDEN),
            ("mlp.up_proj.weight", FFN, HIDDEN),
            ("mlp.down_proj.weight", HIDDEN, FFN),
        ] {
            w.insert(p(name), (vec![rows, cols], rand(rows * cols, 0.5)));
        }
        for name in ["input_layernorm.weight", "post_attention_layernorm.weight"] {
            w.insert(
                p(name),
                (
                    vec![HIDDEN],
                    rand(HIDDEN, 0.2).iter().map(|x| 1.0 + x).collect(),
                ),
            );
        }
    }
    w
}

/// The Hugging Face `config.json` of the tiny model.
pub fn config_json() -> String {
    format!(
        r#"{{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": {HIDDEN},
        "intermediate_size": {FFN}, "num_attention_heads": {HEADS}, "num_hidden_layers": {LAYERS},
        "num_key_value_heads": {KV_HEADS}, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 512, "tie_word_embeddings": true, "vocab_size": {VOCAB}}}"#
    )
}

fn to_bytes(values: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::BF16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        _ => unreachable!(),
    }
}

/// Write the weights as safetensors in `dir`, in `shards` files (with an index when > 1).
pub fn write_safetensors(
    dir: &Path,
    w: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    dtype: Dtype,
    shards: usize,
) {
    let names: Vec<&String> = w.keys().collect();
    let per = names.len().div_ceil(shards);
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in names.chunks(per).enumerate() {
        let file = if shards == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{:05}.safetensors", i + 1, shards)
        };
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = chunk
            .iter()
            .map(|n| ((*n).clone(), w[*n].0.clone(), to_bytes(&w[*n].1, dtype)))
            .collect();
        let views: Vec<(String, TensorView)> = bytes
            .iter()
            .map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap()))
            .collect();
        let data = safetensors::serialize(views, None).unwrap();
        std::fs::write(dir.join(&file), data).unwrap();
        for n in chunk {
            weight_map.insert((*n).clone(), serde_json::Value::String(file.clone()));
        }
    }
    if shards > 1 {
        let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
        std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    }
}

/// Permute Q/K rows the way llama.cpp's converter does for its rope.
fn permute(values: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let hd = rows / heads;
    let mut out = vec![0f32; values.len()];
    for h in 0..heads {
        for j in 0..2 {
            for i in 0..hd / 2 {
                let src = h * hd + j * hd / 2 + i;
                let dst = h * hd + 2 * i + j;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&values[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// The tiny model as a GGUF writer (F32 tensors, Q8_0 embeddings), without tokenizer.
pub fn gguf_writer(w: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) -> GgufWriter {
    let mut g = GgufWriter::new();
    let u32v = |v: usize| MetadataValue::U32(v as u32);
    g.metadata(
        "general.architecture",
        MetadataValue::String("llama".into()),
    )
    .metadata("llama.block_count", u32v(LAYERS))
    .metadata("llama.context_length", u32v(512))
    .metadata("llama.embedding_length", u32v(HIDDEN))
    .metadata("llama.feed_forward_length", u32v(FFN))
    .metadata("llama.attention.head_count", u32v(HEADS))
    .metadata("llama.attention.head_count_kv", u32v(KV_HEADS))
    .metadata("llama.rope.freq_base", MetadataValue::F32(10000.0))
    .metadata(
        "llama.attention.layer_norm_rms_epsilon",
        MetadataValue::F32(1e-5),
    )
    .metadata("llama.vocab_size", u32v(VOCAB));
    for (name, (shape, values)) in w {
        let gname = match name.as_str() {
            "model.embed_tokens.weight" => "token_embd.weight".to_string(),
            "model.norm.weight" => "output_norm.weight".to_string(),
            other => {
                let rest = other.strip_prefix("model.layers.").unwrap();
                let (l, part) = rest.split_once('.').unwrap();
                let g = match part {
                    "input_layernorm.weight" => "attn_norm.weight",
                    "post_attention_layernorm.weight" => "ffn_norm.weight",
                    "self_attn.q_proj.weight" => "attn_q.weight",
                    "self_attn.k_proj.weight" => "attn_k.weight",
                    "self_attn.v_proj.weight" => "attn_v.weight",
                    "self_attn.o_proj.weight" => "attn_output.weight",
                    "mlp.gate_proj.weight" => "ffn_gate.weight",
                    "mlp.up_proj.weight" => "ffn_up.weight",
                    "mlp.down_proj.weight" => "ffn_down.weight",
                    _ => unreachable!(),
                };
                format!("blk.{l}.{g}")
            }
        };
        let values = if name.ends_with("q_proj.weight") {
            permute(values, shape[0], shape[1], HEADS)
        } else if name.ends_with("k_proj.weight") {
            permute(values, shape[0], shape[1], KV_HEADS)
        } else {
            values.clone()
        };
        if gname == "token_embd.weight" {
            let q = masteer_models::gguf::dequant::quantize_q8_0(&values).unwrap();
            g.tensor(TensorToWrite {
                name: gname,
                shape: shape.clone(),
                dtype: GgmlType::Q8_0,
                data: q,
            });
        } else {
            g.tensor(TensorToWrite::f32(gname, shape.clone(), &values));
        }
    }
    g
}
