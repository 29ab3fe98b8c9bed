//! `masteer generate`: a reply to one prompt, streamed to stdout, unsteered, with a
//! fixed strategy, or steered adaptively by an artifact's router.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use masteer_core::models::Steering;
use masteer_core::{ChatMessage, GenerateOptions, StrategyLibrary};

use crate::model::ModelArgs;

/// Arguments of `masteer generate`.
#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    /// The user's message.
    pub prompt: String,
    /// A system message before it.
    #[arg(long)]
    pub system: Option<String>,
    /// The artifact of a repair (needed for any steering but `none`).
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// `adaptive` (the artifact's router decides), `none`, or a strategy's name.
    #[arg(long, default_value = "adaptive")]
    pub steering: String,
    /// Coefficient of a named strategy (its own when absent).
    #[arg(long)]
    pub coefficient: Option<f32>,
    /// Most new tokens.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The model and device.
    #[command(flatten)]
    pub model: ModelArgs,
}

crate::run_on_device!(
    #[doc = "Generate and print the reply (and, on stderr, the steering decision)."]
    GenerateArgs,
    |args, lm, _| {
        let library = match &args.artifact {
            Some(dir) => {
                let fp = masteer_core::ModelFingerprint::of(&lm)?;
                Some(
                    StrategyLibrary::load_for(dir, &fp)
                        .with_context(|| format!("loading the artifact {}", dir.display()))?,
                )
            }
            None => None,
        };
        let mut conv = Vec::new();
        if let Some(s) = &args.system {
            conv.push(ChatMessage::system(s.clone()));
        }
        conv.push(ChatMessage::user(args.prompt.clone()));
        let opts = GenerateOptions {
            max_new_tokens: args.max_tokens,
            temperature: args.temperature,
            seed: args.seed,
            ..GenerateOptions::default()
        };
        let tokenizer = lm.tokenizer.clone();
        let mut ids = Vec::new();
        let mut printed = 0usize;
        let mut out = std::io::stdout();
        let mut on_token = |_: usize, id: u32| {
            ids.push(id);
            if let Ok(text) = tokenizer.decode(&ids, true) {
                if text.len() > printed
                    && !text.ends_with('\u{FFFD}')
                    && text.is_char_boundary(printed)
                {
                    let _ = out.write_all(&text.as_bytes()[printed..]);
                    let _ = out.flush();
                    printed = text.len();
                }
            }
        };
        let conversations = [conv];
        match (args.steering.as_str(), &library) {
            ("none", _) => {
                lm.generate_chat(&conversations, Steering::None, &opts, &mut on_token)?;
                eprintln!("\n[steering: none]");
            }
            ("adaptive", Some(lib)) => {
                let mut decider = lib.decider()?;
                lm.generate_chat(
                    &conversations,
                    Steering::Adaptive(&mut decider),
                    &opts,
                    &mut on_token,
                )?;
                let d = decider.into_decisions().into_iter().next();
                match d {
                    Some(d) => eprintln!(
                        "\n[steering: adaptive → {} (margin {:+.3})]",
                        d.name.as_deref().unwrap_or("none"),
                        d.margin
                    ),
                    None => eprintln!("\n[steering: adaptive → none]"),
                }
            }
            (_, None) => bail!(
                "--steering {} needs --artifact DIR (the output of `masteer repair`)",
                args.steering
            ),
            (name, Some(lib)) => {
                let mut s = lib
                    .strategy(name)
                    .with_context(|| {
                        let names: Vec<&str> =
                            lib.strategies.iter().map(|s| s.name.as_str()).collect();
                        format!(
                            "unknown strategy '{name}'; use adaptive, none or one of: {}",
                            names.join(", ")
                        )
                    })?
                    .clone();
                if let Some(c) = args.coefficient {
                    if !c.is_finite() {
                        bail!("--coefficient {c} is not finite");
                    }
                    s.coefficient = c;
                }
                lm.generate_chat(
                    &conversations,
                    Steering::PerSequence(vec![Some(s.plan())]),
                    &opts,
                    &mut on_token,
                )?;
                eprintln!("\n[steering: {} × {:.2}]", s.name, s.coefficient);
            }
        }
        println!();
        Ok(())
    }
);
