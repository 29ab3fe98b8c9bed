//! Quick speed check of the backbone on the embedded model: prefill of 128 and 512
//! tokens, greedy decode of 64 tokens, batched decode of 16 sequences, and steered
//! decode. The criterion benchmarks in `benches/` are the reference numbers; this
//! prints rough figures in seconds.
//!
//! ```text
//! cargo run --release -p masteer-examples --example speed
//! cargo run --release -p masteer-examples --example speed -- --model ~/.cache/masteer/SmolLM2-135M-Instruct.Q4_K_M.gguf
//! cargo run --release -p masteer-examples --example speed -- --kernels int8
//! ```

use std::time::Instant;

use clap::Parser;
use masteer_models::backend::{default_device, DefaultBackend};
use masteer_models::{
    Hooks, Intervention, InterventionPlan, LoadedModel, Positions, SeqInput, Site,
};

#[derive(Parser, Debug)]
struct Args {
    /// Repetitions of each measurement (the best is printed).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Run only the measurements whose name contains this (prefill, decode, steered, batched).
    #[arg(long, default_value = "")]
    only: String,
    /// A GGUF file or Hugging Face folder instead of the embedded model (e.g. the
    /// Q4_K_M file `benches/peer/llama_cpp_peer.py` writes, to compare side by side).
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// `exact` (the default kernels: exact dequantised products) or `int8` (decode
    /// products with 8-bit inputs, as llama.cpp; `Kernels::FusedInt8`).
    #[arg(long, default_value = "exact")]
    kernels: String,
}

fn tokens(n: usize, seed: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| 100 + (i * 7919 + seed * 104_729) % 40_000)
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let lm: LoadedModel<DefaultBackend> = match &args.model {
        Some(path) => LoadedModel::load(path, &default_device())?,
        None => LoadedModel::load_default(&default_device())?,
    };
    let kernels = match args.kernels.as_str() {
        "exact" => lm.model.kernels(),
        "int8" => masteer_models::Kernels::FusedInt8,
        other => anyhow::bail!("--kernels {other}: use exact or int8"),
    };
    let model = lm.model.clone().with_kernels(kernels);
    println!("kernels: {:?}", model.kernels());
    let m = &model;
    let best =
        |f: &mut dyn FnMut() -> f64| (0..args.reps).map(|_| f()).fold(f64::INFINITY, f64::min);
    let on = |name: &str| name.contains(args.only.as_str());
    for n in [128usize, 512].into_iter().filter(|_| on("prefill")) {
        let t = best(&mut || {
            let s = Instant::now();
            masteer_models::Session::prefill(
                m,
                vec![SeqInput::prompt(tokens(n, 1))],
                0,
                &mut Hooks::none(),
            )
            .unwrap();
            s.elapsed().as_secs_f64()
        });
        println!("prefill {n:>4}: {:7.1} tok/s", n as f64 / t);
    }
    let decode = |batch: usize, steps: usize, plan: Option<InterventionPlan>| -> f64 {
        let inputs: Vec<SeqInput> = (0..batch)
            .map(|i| SeqInput::prompt(tokens(16, i as u32)).with_plan(plan.clone()))
            .collect();
        let (mut session, _) =
            masteer_models::Session::prefill(m, inputs, steps, &mut Hooks::none()).unwrap();
        let next: Vec<u32> = (0..batch as u32).map(|i| 500 + i).collect();
        let s = Instant::now();
        for _ in 0..steps {
            let h = session.step(m, &next, &mut Hooks::none()).unwrap();
            let [b, _, w] = h.dims();
            let _ = m.logits(h.reshape([b, w])).into_data();
        }
        (batch * steps) as f64 / s.elapsed().as_secs_f64()
    };
    if on("decode") {
        let one = -best(&mut || -decode(1, 64, None));
        println!("decode 64 (batch 1): {one:7.1} tok/s");
    }
    let v = vec![0.01f32; 576];
    let plan = InterventionPlan::new().with(Intervention::add(
        Site::ResidPost,
        (5..25).collect(),
        Positions::All,
        v,
        4.0,
    ));
    if on("steered") {
        let steered = -best(&mut || -decode(1, 64, Some(plan.clone())));
        println!("steered decode 64 (20 layers): {steered:7.1} tok/s");
    }
    if on("batched") {
        let b16 = -best(&mut || -decode(16, 32, None));
        println!("batched decode (16 × 32): {b16:7.1} tok/s");
    }
    Ok(())
}
