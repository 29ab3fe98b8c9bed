//! Redraw the plots of a saved repair (`repair --out DIR`) without running the model:
//! bars of every condition from `DIR/report.json`, and the validation sweep heatmap of
//! each strategy from the artifact `DIR/artifact`. SVG and PNG, into `DIR/plots`.
//!
//! ```text
//! cargo run --release -p masteer-examples --example plots -- target/masteer-repair
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use masteer_core::eval::plot;
use masteer_core::eval::report::EvalReport;
use masteer_core::StrategyLibrary;

#[derive(Parser, Debug)]
struct Args {
    /// The `--out` directory of a `repair` run.
    #[arg(default_value = "target/masteer-repair")]
    dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let report_path = args.dir.join("report.json");
    let text = std::fs::read_to_string(&report_path)
        .with_context(|| format!("reading {}", report_path.display()))?;
    let report: EvalReport = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a report", report_path.display()))?;
    let plots = args.dir.join("plots");
    plot::bars(&plots, "conditions", &report)?;
    let library = StrategyLibrary::load(&args.dir.join("artifact"))?;
    plot::strategy_sweeps(&plots, &library)?;
    println!("plots in {}", plots.display());
    Ok(())
}
