//! How much can a condition gate give on this model? A cross-fitted diagnostic of a
//! generation-grounded repair, on the items a repair fits and selects on (never its
//! test split).
//!
//! The items are cut into K folds; for each fold the steering vector (mean difference,
//! read as the family's repair reads it) and the gate (logistic on the prompt's
//! representation, CAST-style) are fitted on the other folds, and the fold's prompts
//! are answered greedily, unsteered and always steered. For each steering setting it
//! prints the always-on rates, the gated mean at each threshold of the gate's
//! out-of-fold probability, and the mean under a perfect gate (steering exactly the
//! trigger side): the ceiling that the gate's accuracy then eats into.
//!
//! ```text
//! cargo run --release -p masteer-examples --example gate_ceiling -- --behaviour claims
//! cargo run --release -p masteer-examples --example gate_ceiling -- --behaviour false-premises --bands "10,12,14" --coefficients 0.5
//! cargo run --release -p masteer-examples --example gate_ceiling -- --behaviour claims --both-sides --coefficients 0.5,1,2,4
//! ```

use anyhow::{bail, Context};
use clap::Parser;
use masteer_core::activation_reading::contrast_split_read;
use masteer_core::algorithms::{
    ContrastActivations, ContrastSplit, MeanDifference, PairedRows, SteeringAlgorithm,
    SteeringVector,
};
use masteer_core::anchor::{Gate, GateConfig};
use masteer_core::grounded::{fitting_items, Behaviour};
use masteer_core::models::backend::{default_device, DefaultBackend};
use masteer_core::models::{
    ChatMessage, GenerateOptions, HookPoint, Intervention, InterventionPlan, Steering,
};
use masteer_core::representations::pooled_prompt_representations;
use masteer_core::types::Positions;
use masteer_core::LoadedModel;
use ndarray::Axis;

#[derive(Parser, Debug)]
struct Args {
    /// false-claims, harmful-requests, false-premises or corrigibility (or a part
    /// of the name: claims, harmful, premises).
    #[arg(long, default_value = "false-claims")]
    behaviour: String,
    /// Folds of the cross-fitting.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Bands of steered blocks, `;`-separated (`15,17,19;18,20,22`).
    #[arg(long, default_value = "15,17,19;18,20,22")]
    bands: String,
    /// Coefficients, comma-separated.
    #[arg(long, default_value = "0.15,0.3")]
    coefficients: String,
    /// Blocks the gate may read, comma-separated.
    #[arg(long, default_value = "11,14,17")]
    gate_layers: String,
    /// Prompt tokens the gate's reading averages (1: the last token).
    #[arg(long, default_value_t = 8)]
    pooling: usize,
    /// Tokens per greedy reply.
    #[arg(long, default_value_t = 12)]
    tokens: usize,
    /// Fit the vector on both sides' pairs (each with its own wanted answer: an
    /// ITI-style "right answer minus wrong answer" direction) instead of the trigger
    /// side's alone.
    #[arg(long)]
    both_sides: bool,
}

fn list<T: std::str::FromStr>(s: &str) -> anyhow::Result<Vec<T>> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("'{x}' in '{s}'"))
        })
        .collect()
}

fn rate(v: &[bool]) -> f64 {
    v.iter().filter(|b| **b).count() as f64 / v.len().max(1) as f64
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let behaviour = *Behaviour::ALL
        .iter()
        .find(|b| b.name().contains(args.behaviour.as_str()))
        .with_context(|| format!("unknown behaviour '{}'", args.behaviour))?;
    let bands: Vec<Vec<usize>> = args.bands.split(';').map(list).collect::<Result<_, _>>()?;
    let coefficients: Vec<f32> = list(&args.coefficients)?;
    let gate_layers: Vec<usize> = list(&args.gate_layers)?;
    if args.folds < 2 {
        bail!("--folds must be at least 2");
    }
    let k = args.folds;
    let lm: LoadedModel<DefaultBackend> = LoadedModel::load_default(&default_device())?;
    let samples = behaviour.bundled_samples()?;
    let config = behaviour.config(false);
    let (trig, ctrl) = fitting_items(&samples, config.sizes, config.seed)?;
    let nt = trig.len();
    let all: Vec<_> = trig.iter().chain(&ctrl).copied().collect();
    // Fold of item i: the same round-robin on each side.
    let fold = |i: usize| (if i < nt { i } else { i - nt }) % k;
    println!(
        "{}: {} trigger and {} control items (train + validation), {k} folds",
        behaviour.name(),
        nt,
        ctrl.len()
    );

    // Out-of-fold vectors from the trigger side's pairs (or both sides').
    let fitted: &[_] = if args.both_sides { &all } else { &trig };
    let mut layers: Vec<usize> = bands.iter().flatten().copied().collect();
    layers.sort();
    layers.dedup();
    let points: Vec<HookPoint> = layers.iter().map(|&l| HookPoint::resid_post(l)).collect();
    let read = contrast_split_read(&lm, fitted, &points, config.batch, config.reading)?;
    let vectors: Vec<SteeringVector> = (0..k)
        .map(|f| {
            let keep: Vec<usize> = (0..fitted.len()).filter(|&i| fold(i) != f).collect();
            let mut s =
                ContrastSplit::new(keep.iter().map(|&i| read.sample_ids[i].clone()).collect());
            for (p, rows) in &read.points {
                s = s.with(
                    *p,
                    PairedRows::new(
                        rows.positive.select(Axis(0), &keep),
                        rows.negative.select(Axis(0), &keep),
                    ),
                );
            }
            MeanDifference::default().fit(&ContrastActivations::new(s))
        })
        .collect::<Result<_, _>>()?;

    // Out-of-fold gate probabilities per gate layer.
    let gpoints: Vec<HookPoint> = gate_layers
        .iter()
        .map(|&l| HookPoint::resid_post(l))
        .collect();
    let pooling = args.pooling.max(1);
    let reps = pooled_prompt_representations(&lm, &all, &gpoints, &[pooling], config.batch)?;
    let mut gates: Vec<(HookPoint, Vec<f32>)> = Vec::new();
    for p in &gpoints {
        let rows = &reps[&(*p, pooling)];
        let mut probs = vec![0f32; all.len()];
        for f in 0..k {
            let pick = |held: bool, trigger: bool| -> Vec<Vec<f32>> {
                (0..all.len())
                    .filter(|&i| (fold(i) == f) == held && (i < nt) == trigger)
                    .map(|i| rows[i].clone())
                    .collect()
            };
            let gate = Gate::fit(
                &pick(false, true),
                &pick(false, false),
                &pick(true, true),
                &pick(true, false),
                &GateConfig::default(),
            )?;
            for (i, r) in rows.iter().enumerate() {
                if fold(i) == f {
                    probs[i] = gate.probability(r)?;
                }
            }
        }
        let acc = (0..all.len())
            .filter(|&i| (probs[i] > 0.5) == (i < nt))
            .count() as f64
            / all.len() as f64;
        println!("gate at {p} (mean of the last {pooling} tokens): out-of-fold accuracy {acc:.3}");
        gates.push((*p, probs));
    }

    // Greedy replies: unsteered, then each setting always on.
    let prompts: Vec<Vec<ChatMessage>> = all.iter().map(|s| s.prompt.clone()).collect();
    let texts: Vec<String> = prompts
        .iter()
        .map(|p| {
            p.iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let opts = GenerateOptions::greedy(args.tokens);
    let judge = |plans: Vec<Option<InterventionPlan>>| -> anyhow::Result<Vec<bool>> {
        let mut replies = Vec::new();
        for (c, p) in prompts.chunks(config.batch).zip(plans.chunks(config.batch)) {
            let r =
                lm.generate_chat(c, Steering::PerSequence(p.to_vec()), &opts, &mut |_, _| {})?;
            replies.extend(r.into_iter().map(|r| r.text));
        }
        Ok(replies
            .iter()
            .enumerate()
            .map(|(i, r)| behaviour.success(&texts[i], r, i < nt))
            .collect())
    };
    let base = judge(vec![None; all.len()])?;
    let mean = |v: &[bool]| (rate(&v[..nt]) + rate(&v[nt..])) / 2.0;
    println!(
        "unsteered: trigger {:.3}, control {:.3}, mean {:.3}",
        rate(&base[..nt]),
        rate(&base[nt..]),
        mean(&base)
    );
    let thresholds = [0.3f32, 0.4, 0.5, 0.6, 0.7];
    for band in &bands {
        for &c in &coefficients {
            let plans = (0..all.len())
                .map(|i| {
                    let v = &vectors[fold(i)];
                    let mut plan = InterventionPlan::new();
                    for &l in band {
                        let lv = v.layers.get(&l).context("a band layer without a vector")?;
                        plan.push(Intervention::new(
                            v.site,
                            vec![l],
                            Positions::All,
                            v.operation,
                            lv.vector(1.0),
                            c,
                        ));
                    }
                    Ok(Some(plan))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let steered = judge(plans)?;
            let perfect: Vec<bool> = (0..all.len())
                .map(|i| if i < nt { steered[i] } else { base[i] })
                .collect();
            println!(
                "blocks {band:?} × {c}: always on: trigger {:.3}, control {:.3}, mean {:.3}; perfect gate: mean {:.3}",
                rate(&steered[..nt]),
                rate(&steered[nt..]),
                mean(&steered),
                mean(&perfect)
            );
            for (p, probs) in gates.iter().filter(|(p, _)| p.layer < band[0]) {
                let cells: Vec<String> = thresholds
                    .iter()
                    .map(|&tau| {
                        let g: Vec<bool> = (0..all.len())
                            .map(|i| if probs[i] > tau { steered[i] } else { base[i] })
                            .collect();
                        format!("> {tau}: {:.3}", mean(&g))
                    })
                    .collect();
                println!("    gated at {p}: {}", cells.join(", "));
            }
        }
    }
    Ok(())
}
