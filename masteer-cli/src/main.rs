//! `masteer`: repair, generate with, evaluate, export, serve and inspect steered models.

use clap::{Parser, Subcommand};
#[cfg(feature = "cpu")]
use masteer_cli::check;
use masteer_cli::{eval, generate, info, llamacpp, repair, serve};

/// MASteer-rs: repair trustworthiness issues of a Llama-family model at inference time.
#[derive(Parser, Debug)]
#[command(name = "masteer", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Repair an issue described in plain words: samples, strategies, router, report.
    Repair(repair::RepairArgs),
    /// Reply to a prompt, unsteered, with one strategy, or adaptively.
    Generate(generate::GenerateArgs),
    /// Re-measure an artifact on its held-out test items.
    Eval(eval::EvalArgs),
    /// Write a strategy as a llama.cpp control vector.
    ExportLlamacpp(llamacpp::ExportArgs),
    /// Add a llama.cpp control vector to an artifact as a strategy.
    ImportLlamacpp(llamacpp::ImportArgs),
    /// Serve an OpenAI-compatible API with per-request adaptive steering.
    Serve(serve::ServeArgs),
    /// Describe a model and an artifact.
    Info(info::InfoArgs),
    /// Check that `--device` computes what the CPU computes (logits, steering, gate, reply).
    #[cfg(feature = "cpu")]
    Check(check::CheckArgs),
}

fn main() -> std::process::ExitCode {
    masteer_cli::init_logging();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Repair(a) => repair::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Eval(a) => eval::run(a),
        Command::ExportLlamacpp(a) => llamacpp::export(a),
        Command::ImportLlamacpp(a) => llamacpp::import(a),
        Command::Serve(a) => serve::run(a),
        Command::Info(a) => info::run(a),
        #[cfg(feature = "cpu")]
        Command::Check(a) => check::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
