//! `masteer info`: what a model and an artifact hold (configuration, tokenizer,
//! template; issues, strategies, router) and whether they fit together.

use std::path::PathBuf;

use anyhow::Context;
use masteer_core::{ModelFingerprint, Router, StrategyLibrary};

use crate::model::ModelArgs;

/// Arguments of `masteer info`.
#[derive(clap::Args, Debug, Clone)]
pub struct InfoArgs {
    /// An artifact to describe.
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// The model and device.
    #[command(flatten)]
    pub model: ModelArgs,
}

crate::run_on_device!(
    #[doc = "Print the description."]
    InfoArgs,
    |args, lm, path| {
        let c = lm.model.config();
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!("model      {}", path.display());
        if size > 0 {
            println!("file size  {:.1} MB", size as f64 / 1e6);
        }
        println!(
            "shape      {} blocks, width {}, {} heads ({} KV) of {}, MLP {}, vocab {}, context {}",
            c.num_hidden_layers,
            c.hidden_size,
            c.num_attention_heads,
            c.num_key_value_heads,
            c.head_dim,
            c.intermediate_size,
            c.vocab_size,
            c.max_position_embeddings
        );
        println!(
            "tokenizer  {} ids, end-of-turn ids {:?}; chat template: {}",
            lm.tokenizer.vocab_size(),
            lm.tokenizer.eos_ids(),
            if lm.chat_template.is_some() {
                "yes"
            } else {
                "no"
            }
        );
        let fp = ModelFingerprint::of(&lm)?;
        println!("weights    sha256 {}", fp.weights_hash);
        let Some(dir) = &args.artifact else {
            return Ok(());
        };
        let lib = StrategyLibrary::load(dir)
            .with_context(|| format!("loading the artifact {}", dir.display()))?;
        println!("\nartifact   {}", dir.display());
        match lib.fingerprint.check_matches(&fp) {
            Ok(()) => println!("fits       this model"),
            Err(e) => println!("fits       NO: {e}"),
        }
        println!("seed       {}", lib.seed);
        for i in &lib.issues {
            println!(
                "issue      {} ({} samples): {}",
                i.name, i.samples, i.description
            );
        }
        for s in &lib.strategies {
            println!(
                "strategy   {:<40} {} {} at layers {:?} × {:.2}",
                s.name,
                s.vector.operation,
                s.vector.site,
                s.vector.layers.keys().collect::<Vec<_>>(),
                s.coefficient
            );
        }
        match &lib.router {
            Some(Router::Gate(g)) => println!(
                "router     gate at {} opening {} above {:.2} (held-out accuracy {:.2})",
                g.point, g.strategy, g.gate.threshold, g.gate.held_out_accuracy
            ),
            Some(Router::Anchors { point, anchors: a }) => println!(
                "router     anchors at {} ({} strategies, hard margin {:.2})",
                point,
                lib.strategies.len(),
                a.report.hard_margin
            ),
            None => println!("router     none (fixed strategies only)"),
        }
        Ok(())
    }
);
