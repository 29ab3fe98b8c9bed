//! Sweep layers × coefficients of every algorithm on a CAA behaviour and write one
//! heatmap per algorithm (SVG and PNG) of the validation A/B score.
//!
//! ```text
//! cargo run --release -p masteer-examples --example layer_sweep -- --behaviour hallucination --out target/sweep
//! ```
//!
//! Activations of the CAA generate set are read at every layer, each algorithm is
//! fitted, then every (layer, coefficient) of the grid steers the model on the
//! validation pairs; the score is the mean share of the wanted answer.

use std::path::PathBuf;

use clap::Parser;
use masteer_core::activation_reading::answer_groups;
use masteer_core::algorithms::{sweep, AlgorithmLibrary, ContrastActivations, GroupProjection};
use masteer_core::backend::{default_device, DefaultBackend};
use masteer_core::datagen::formats::caa;
use masteer_core::datagen::{corpora, SampleSet, Split, SplitFractions};
use masteer_core::eval::ab::{self, Steering};
use masteer_core::eval::plot;
use masteer_core::repair::split_activations;
use masteer_core::{HookPoint, LoadedModel, Site, Strategy};

#[derive(Parser, Debug)]
struct Args {
    /// CAA behaviour (sycophancy, hallucination, refusal, ...).
    #[arg(long, default_value = "hallucination")]
    behaviour: String,
    /// Pairs used (two thirds train, one third validation).
    #[arg(long, default_value_t = 90)]
    pairs: usize,
    /// Layers of the grid.
    #[arg(long, value_delimiter = ',', default_values_t = vec![6usize, 10, 14, 18, 22, 26])]
    layers: Vec<usize>,
    /// Coefficient multipliers of the grid (times each algorithm's default coefficient).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1.0f32, 2.0, 4.0, 8.0])]
    coefficients: Vec<f32>,
    /// Validation pairs scored per setting.
    #[arg(long, default_value_t = 12)]
    score_pairs: usize,
    /// Output directory of the plots.
    #[arg(long, default_value = "target/masteer-sweep")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let lm: LoadedModel<DefaultBackend> = LoadedModel::load_default(&default_device())?;
    let items = caa::load(&corpora::caa_generate(&args.behaviour))?;
    let n = args.pairs.min(items.len());
    let samples = caa::to_samples(&items[..n], caa::Wanted::NotMatching, &args.behaviour);
    let set = SampleSet::new(args.behaviour.clone(), samples)?.split(
        SplitFractions {
            train: 2.0,
            validation: 1.0,
            test: 0.0,
        },
        0,
    )?;
    let points: Vec<HookPoint> = args
        .layers
        .iter()
        .flat_map(|&l| [Site::ResidPost.at(l), Site::AttnHeads.at(l)])
        .collect();
    let (train, val) = split_activations(&lm, &set, &points, 8)?;
    let mut acts =
        ContrastActivations::new(train).with_heads(lm.model.config().num_attention_heads);
    acts.validation = val;
    GroupProjection::remove_from(&mut acts, &answer_groups(&set.of(Split::Train)))?;
    let validation = set.of(Split::Validation);
    let scored: Vec<_> = validation.iter().take(args.score_pairs).copied().collect();
    let base = ab::mean_positive_share(&ab::score(&lm, &scored, Steering::None, 8)?);
    println!("unsteered validation score {base:.3}");
    for outcome in AlgorithmLibrary::default().fit_all(&acts) {
        let v = match outcome.result {
            Ok(v) => v,
            Err(e) => {
                println!("{}: not fitted ({e})", outcome.name);
                continue;
            }
        };
        let layers: Vec<usize> = args
            .layers
            .iter()
            .copied()
            .filter(|l| v.layers.contains_key(l))
            .collect();
        let coefs: Vec<f32> = args
            .coefficients
            .iter()
            .map(|c| c * v.default_coefficient)
            .collect();
        let selection = sweep(&layers, &coefs, |layer, c| -> masteer_core::Result<f64> {
            let plan = Strategy::new(&args.behaviour, &v, &[layer], c)?.plan();
            Ok(ab::mean_positive_share(&ab::score(
                &lm,
                &scored,
                Steering::Fixed(&plan),
                8,
            )?))
        })?;
        println!(
            "{:>16}: best layer {} coefficient {} score {:.3} (unsteered {base:.3})",
            outcome.name, selection.best.layer, selection.best.coefficient, selection.best.score
        );
        plot::heatmap(
            &args.out,
            &format!("sweep_{}", outcome.name),
            &format!("{} — {}", args.behaviour, outcome.name),
            &selection,
        )?;
    }
    println!("plots in {}", args.out.display());
    Ok(())
}
