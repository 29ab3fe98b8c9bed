//! The main job: repair an issue described in plain words, end to end, on the
//! embedded SmolLM2 model. The same code as `masteer repair` (`masteer_cli::repair`).
//!
//! ```text
//! cargo run --release -p masteer-examples --example repair
//! cargo run --release -p masteer-examples --example repair -- "The assistant makes up facts." --out my-repair
//! ```
//!
//! It routes the issue to the bundled data it is about, generates steering samples,
//! fits every algorithm of the library, selects each one's layers and coefficient on
//! validation replies, fits the router, evaluates before and after on held-out items,
//! saves the artifact, a report (JSON and Markdown) and the replies under `--out`, and
//! prints the table and the probes unsteered and steered. `--quick` runs a reduced
//! budget (the README command is tested that way in CI).

use clap::Parser;
use masteer_cli::repair::{self, RepairArgs};

#[derive(Parser, Debug)]
#[command(about = "Repair a trustworthiness issue of the embedded model, end to end")]
struct Cli {
    #[command(flatten)]
    args: RepairArgs,
}

fn main() -> anyhow::Result<()> {
    masteer_cli::init_logging();
    repair::run(&Cli::parse().args)
}
