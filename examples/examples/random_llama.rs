//! Write a random-weight Llama of about 1B parameters as a K-quant GGUF file, to
//! measure how memory scales with model size (`benches/README.md`, "Memory").
//!
//! The matrices are random Q4_K super-blocks (small finite scales, any other bytes),
//! the norms ones; the tokenizer and chat template are copied from the embedded model,
//! so the file loads and generates like any downloaded Llama. The text is noise: the
//! file is for measuring, not for reading.
//!
//! ```text
//! cargo run --release -p masteer-examples --example random_llama -- --out target/tmp/random-1b.Q4_K.gguf
//! /usr/bin/time -v target/release/examples/generate --model target/tmp/random-1b.Q4_K.gguf "Hello" --max-tokens 16
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use half::f16;
use masteer_models::gguf::{GgmlType, GgufFile, GgufWriter, MetadataValue, TensorToWrite};

#[derive(Parser, Debug)]
struct Args {
    /// Where to write the file.
    #[arg(long)]
    out: PathBuf,
    /// Decoder blocks.
    #[arg(long, default_value_t = 22)]
    layers: usize,
    /// Residual width (a multiple of 256, for Q4_K rows).
    #[arg(long, default_value_t = 2048)]
    hidden: usize,
    /// MLP width (a multiple of 256).
    #[arg(long, default_value_t = 5632)]
    ffn: usize,
    /// Query heads (head width = hidden / heads).
    #[arg(long, default_value_t = 32)]
    heads: usize,
    /// Key/value heads.
    #[arg(long, default_value_t = 4)]
    kv_heads: usize,
    /// Seed of the random blocks.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Random Q4_K super-blocks for `n` values: xorshift bytes, f16 `d` and `dmin` small.
fn random_q4k(n: usize, state: &mut u64) -> Vec<u8> {
    const BYTES: usize = 144;
    let blocks = n / 256;
    let mut out = vec![0u8; blocks * BYTES];
    for chunk in out.chunks_exact_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    let d = f16::from_f32(2e-4).to_le_bytes();
    let dmin = f16::from_f32(1e-4).to_le_bytes();
    for block in out.chunks_exact_mut(BYTES) {
        block[0..2].copy_from_slice(&d);
        block[2..4].copy_from_slice(&dmin);
    }
    out
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!(
        a.hidden % 256 == 0 && a.ffn % 256 == 0,
        "widths must be multiples of 256 (Q4_K rows)"
    );
    anyhow::ensure!(
        a.heads > 0 && a.kv_heads > 0 && a.hidden % a.heads == 0 && a.heads % a.kv_heads == 0,
        "heads must divide the width and be a multiple of the key/value heads"
    );
    let embedded = masteer_models::embedded::resolve(None)?;
    let src = GgufFile::open(&embedded).context("the embedded model")?;
    let vocab = src.require_u64("llama.vocab_size").unwrap_or(49152) as usize;
    let head_dim = a.hidden / a.heads;
    let kv = a.kv_heads * head_dim;
    let u32v = |v: usize| MetadataValue::U32(v as u32);
    let mut g = GgufWriter::new();
    g.metadata(
        "general.architecture",
        MetadataValue::String("llama".into()),
    )
    .metadata("general.name", MetadataValue::String("random-llama".into()))
    .metadata("llama.block_count", u32v(a.layers))
    .metadata("llama.context_length", u32v(2048))
    .metadata("llama.embedding_length", u32v(a.hidden))
    .metadata("llama.feed_forward_length", u32v(a.ffn))
    .metadata("llama.attention.head_count", u32v(a.heads))
    .metadata("llama.attention.head_count_kv", u32v(a.kv_heads))
    .metadata("llama.rope.freq_base", MetadataValue::F32(10000.0))
    .metadata(
        "llama.attention.layer_norm_rms_epsilon",
        MetadataValue::F32(1e-5),
    )
    .metadata("llama.vocab_size", u32v(vocab));
    for (key, value) in src.metadata() {
        if key.starts_with("tokenizer.") {
            g.metadata(key.clone(), value.clone());
        }
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ a.seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut params = 0usize;
    let mut matrix = |g: &mut GgufWriter, name: String, rows: usize, cols: usize| {
        params += rows * cols;
        g.tensor(TensorToWrite {
            name,
            shape: vec![rows, cols],
            dtype: GgmlType::Q4K,
            data: random_q4k(rows * cols, &mut state),
        });
    };
    matrix(&mut g, "token_embd.weight".into(), vocab, a.hidden);
    let ones = |n: usize| vec![1f32; n];
    for l in 0..a.layers {
        let p = |s: &str| format!("blk.{l}.{s}");
        matrix(&mut g, p("attn_q.weight"), a.hidden, a.hidden);
        matrix(&mut g, p("attn_k.weight"), kv, a.hidden);
        matrix(&mut g, p("attn_v.weight"), kv, a.hidden);
        matrix(&mut g, p("attn_output.weight"), a.hidden, a.hidden);
        matrix(&mut g, p("ffn_gate.weight"), a.ffn, a.hidden);
        matrix(&mut g, p("ffn_up.weight"), a.ffn, a.hidden);
        matrix(&mut g, p("ffn_down.weight"), a.hidden, a.ffn);
        g.tensor(TensorToWrite::f32(
            p("attn_norm.weight"),
            vec![a.hidden],
            &ones(a.hidden),
        ));
        g.tensor(TensorToWrite::f32(
            p("ffn_norm.weight"),
            vec![a.hidden],
            &ones(a.hidden),
        ));
    }
    g.tensor(TensorToWrite::f32(
        "output_norm.weight",
        vec![a.hidden],
        &ones(a.hidden),
    ));
    g.write(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let size = std::fs::metadata(&a.out)?.len();
    println!(
        "wrote {} ({:.2} B parameters, {:.0} MB)",
        a.out.display(),
        params as f64 / 1e9,
        size as f64 / 1e6
    );
    Ok(())
}
