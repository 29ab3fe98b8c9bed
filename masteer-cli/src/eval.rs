//! `masteer eval`: re-measure a saved artifact on the held-out test items of its
//! issue family (the same split its repair used), unsteered against adaptive.

use std::path::PathBuf;

use anyhow::Context;
use masteer_core::grounded::{self, Behaviour};
use masteer_core::StrategyLibrary;

use crate::model::ModelArgs;

/// Arguments of `masteer eval`.
#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// The artifact to evaluate.
    #[arg(long)]
    pub artifact: PathBuf,
    /// `claims` (false claims), `harmful` (harmful requests), `premises` (false
    /// premises) or `corrigibility`; by default the family
    /// of the artifact's first issue.
    #[arg(long)]
    pub behaviour: Option<String>,
    /// The artifact came from `repair --quick` (its split sizes define the test items).
    #[arg(long)]
    pub quick: bool,
    /// The model and device.
    #[command(flatten)]
    pub model: ModelArgs,
}

fn behaviour_of(name: &str) -> Option<Behaviour> {
    match name {
        "claims" | "false-claims" => Some(Behaviour::Claims),
        "harmful" | "harmful-requests" | "advbench" => Some(Behaviour::HarmfulRequests),
        "premises" | "false-premises" => Some(Behaviour::FalsePremises),
        "corrigibility" | "corrigible" => Some(Behaviour::Corrigibility),
        other => Behaviour::for_source(other)
            .or_else(|| Behaviour::ALL.into_iter().find(|b| b.name() == other)),
    }
}

crate::run_on_device!(
    #[doc = "Evaluate and print the table."]
    EvalArgs,
    |args, lm, _| {
        let fp = masteer_core::ModelFingerprint::of(&lm)?;
        let library = StrategyLibrary::load_for(&args.artifact, &fp)
            .with_context(|| format!("loading the artifact {}", args.artifact.display()))?;
        let name = match &args.behaviour {
            Some(b) => b.clone(),
            None => library
                .issues
                .first()
                .map(|i| i.name.clone())
                .context("the artifact records no issue; pass --behaviour claims|harmful|premises|corrigibility")?,
        };
        let behaviour = behaviour_of(&name).with_context(|| {
            format!("'{name}' is not a generation-judged family; use --behaviour claims, harmful, premises or corrigibility")
        })?;
        let mut config = behaviour.config(args.quick);
        config.seed = library.seed;
        config.progress = true;
        let samples = behaviour.bundled_samples()?;
        let rows = grounded::evaluate(&lm, &library, behaviour, &samples, &config)?;
        let (t, c) = behaviour.labels();
        println!("| condition | {t} | {c} | mean | Δ mean vs unsteered [95% CI] | steered (trigger/control) | neutral KL | neutral unchanged |");
        println!("|---|---|---|---|---|---|---|---|");
        for r in rows {
            let ci = r
                .vs_unsteered
                .map(|i| format!("{:+.3} [{:+.3}, {:+.3}]", i.mean, i.low, i.high))
                .unwrap_or_else(|| "–".into());
            println!(
                "| {} | {:.3} | {:.3} | {:.3} | {ci} | {:.2}/{:.2} | {:.3} | {:.2} |",
                r.condition,
                r.trigger,
                r.control,
                r.mean,
                r.steered.0,
                r.steered.1,
                r.neutral_kl,
                r.neutral_unchanged
            );
        }
        Ok(())
    }
);
