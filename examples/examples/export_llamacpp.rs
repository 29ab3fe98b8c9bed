//! Carry a fitted vector to llama.cpp: fit the mean difference of a CAA behaviour on
//! the embedded model and write it as a llama.cpp control vector (GGUF).
//!
//! ```text
//! cargo run --release -p masteer-examples --example export_llamacpp -- --out target/hallucination.gguf
//! llama-cli -m SmolLM2-135M-Instruct.Q4_1.gguf --control-vector target/hallucination.gguf ...
//! ```
//!
//! llama.cpp adds `direction.N` to the output of its block N (our `resid_post(N)`) at
//! every token; the coefficient is folded into the tensors. The file is read back here
//! to check it.

use std::path::PathBuf;

use clap::Parser;
use masteer_core::activation_reading::answer_groups;
use masteer_core::algorithms::{
    rank_layers, ContrastActivations, GroupProjection, MeanDifference, SteeringAlgorithm,
};
use masteer_core::backend::{default_device, DefaultBackend};
use masteer_core::datagen::formats::caa;
use masteer_core::datagen::{corpora, SampleSet, Split, SplitFractions};
use masteer_core::interop::{export_control_vector, import_control_vector};
use masteer_core::repair::split_activations;
use masteer_core::{HookPoint, LoadedModel, Strategy};

#[derive(Parser, Debug)]
struct Args {
    /// CAA behaviour.
    #[arg(long, default_value = "hallucination")]
    behaviour: String,
    /// Pairs to fit on.
    #[arg(long, default_value_t = 60)]
    pairs: usize,
    /// Coefficient folded into the file.
    #[arg(long, default_value_t = 4.0)]
    coefficient: f32,
    /// Output GGUF.
    #[arg(long, default_value = "target/masteer-control-vector.gguf")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let lm: LoadedModel<DefaultBackend> = LoadedModel::load_default(&default_device())?;
    let n_layers = lm.model.config().num_hidden_layers;
    let items = caa::load(&corpora::caa_generate(&args.behaviour))?;
    let samples = caa::to_samples(
        &items[..args.pairs.min(items.len())],
        caa::Wanted::NotMatching,
        &args.behaviour,
    );
    let set = SampleSet::new(args.behaviour.clone(), samples)?.split(
        SplitFractions {
            train: 3.0,
            validation: 1.0,
            test: 0.0,
        },
        0,
    )?;
    let points: Vec<HookPoint> = (1..n_layers).map(HookPoint::resid_post).collect();
    let (train, val) = split_activations(&lm, &set, &points, 8)?;
    let mut acts = ContrastActivations::new(train);
    acts.validation = val;
    GroupProjection::remove_from(&mut acts, &answer_groups(&set.of(Split::Train)))?;
    let v = MeanDifference::default().fit(&acts)?;
    let best = rank_layers(&v)[0];
    println!(
        "best layer {} (held-out pair accuracy {:.2})",
        best.0, best.1
    );
    let strategy = Strategy::new(&args.behaviour, &v, &[best.0], args.coefficient)?;
    export_control_vector(&strategy, n_layers, "llama", &args.out)?;
    let back = import_control_vector(&args.out, n_layers, lm.model.config().hidden_size)?;
    println!(
        "wrote {} (direction.{} with norm {:.3}); llama.cpp: --control-vector {}",
        args.out.display(),
        best.0,
        back.layers[&best.0].scale,
        args.out.display()
    );
    Ok(())
}
