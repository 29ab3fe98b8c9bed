//! Generate steering samples from an issue described in plain words and save them as
//! JSONL, with the embedded model as writer, or an OpenAI-compatible server.
//!
//! ```text
//! cargo run --release -p masteer-examples --example datagen -- "The model makes up facts." --count 30
//! MASTEER_LLM_BASE_URL=http://127.0.0.1:8080 cargo run --release -p masteer-examples --example datagen -- --http "..."
//! ```

use std::path::PathBuf;

use clap::Parser;
use masteer_core::backend::{default_device, DefaultBackend};
use masteer_core::datagen::{
    generate_samples, DatagenConfig, HttpConfig, HttpGenerator, IssueSpec, Split, TextGenerator,
};
use masteer_core::local_generator::LocalGenerator;
use masteer_core::LoadedModel;

#[derive(Parser, Debug)]
struct Args {
    /// The issue, in plain words.
    #[arg(
        default_value = "The assistant agrees with the user's false claims instead of correcting them."
    )]
    issue: String,
    /// Accepted samples wanted.
    #[arg(long, default_value_t = 40)]
    count: usize,
    /// Most calls to the generator.
    #[arg(long, default_value_t = 30)]
    calls: usize,
    /// Share taken from the bundled datasets.
    #[arg(long, default_value_t = 0.5)]
    retrieved: f64,
    /// Use the server of $MASTEER_LLM_BASE_URL instead of the local model.
    #[arg(long)]
    http: bool,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output JSONL.
    #[arg(long, default_value = "target/masteer-samples.jsonl")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let lm: LoadedModel<DefaultBackend>;
    let local;
    let http;
    let generator: &dyn TextGenerator = if args.http {
        http = HttpGenerator::new(HttpConfig::from_env()?);
        &http
    } else {
        lm = LoadedModel::load_default(&default_device())?;
        local = LocalGenerator::new(lm.clone(), "smollm2-135m-instruct (local)");
        &local
    };
    let spec = IssueSpec::from_text(&args.issue, args.count, args.seed);
    let cfg = DatagenConfig {
        retrieved_share: args.retrieved,
        max_generator_calls: args.calls,
        progress: true,
        ..DatagenConfig::default()
    };
    let (set, report) = generate_samples(&spec, Some(generator), &cfg)?;
    set.save(&args.out)?;
    if let Some(a) = &report.analysis {
        println!(
            "analysis ({}): good: {} | bad: {}",
            if a.from_llm { "LLM" } else { "template" },
            a.good,
            a.bad
        );
    }
    println!(
        "{} samples ({} written, {} retrieved from {}), {} generator calls, {} unparsed drafts, acceptance {:.2}, rejections {:?}",
        set.len(),
        report.written_accepted,
        report.retrieved_accepted,
        report.source.as_deref().unwrap_or("-"),
        report.generator_calls,
        report.unparsed_drafts,
        report.review.acceptance_rate(),
        report.review.rejected
    );
    println!(
        "splits: {} train, {} validation, {} test → {}",
        set.of(Split::Train).len(),
        set.of(Split::Validation).len(),
        set.of(Split::Test).len(),
        args.out.display()
    );
    for s in set
        .samples()
        .iter()
        .filter(|s| s.provenance.source == "writer")
        .take(3)
    {
        println!(
            "\nwritten example:\n{}\n  wanted {} / unwanted {}",
            s.prompt[0].content, s.positive, s.negative
        );
    }
    Ok(())
}
