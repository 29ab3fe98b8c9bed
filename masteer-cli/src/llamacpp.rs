//! `masteer export-llamacpp` / `import-llamacpp`: a strategy of an artifact as a
//! llama.cpp control vector (`--control-vector` in llama-cli and llama-server), and
//! back.

use std::path::PathBuf;

use anyhow::{bail, Context};
use masteer_core::interop::{export_control_vector, import_control_vector};
use masteer_core::{ModelFingerprint, Strategy, StrategyLibrary};

use crate::model::{ModelArgs, OnDevice};

/// Reads a model's fingerprint (for a new artifact).
struct Fingerprint;

impl OnDevice for Fingerprint {
    type Output = ModelFingerprint;

    fn run<B: burn::tensor::backend::Backend>(
        self,
        lm: masteer_core::LoadedModel<B>,
        _: &std::path::Path,
    ) -> anyhow::Result<ModelFingerprint>
    where
        masteer_core::LoadedModel<B>: Send + 'static,
    {
        Ok(ModelFingerprint::of(&lm)?)
    }
}

/// Arguments of `masteer export-llamacpp`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// The artifact holding the strategy.
    #[arg(long)]
    pub artifact: PathBuf,
    /// The strategy to export (the one the router opens, else the first, by default).
    #[arg(long)]
    pub strategy: Option<String>,
    /// The control-vector GGUF to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `masteer import-llamacpp`.
#[derive(clap::Args, Debug, Clone)]
pub struct ImportArgs {
    /// The control-vector GGUF to read.
    pub file: PathBuf,
    /// The artifact to add it to (created for `--model` when it does not exist).
    #[arg(long)]
    pub artifact: PathBuf,
    /// Issue name of the new strategy.
    #[arg(long, default_value = "imported")]
    pub name: String,
    /// Coefficient (1 reproduces the file's vectors).
    #[arg(long, default_value_t = 1.0)]
    pub coefficient: f32,
    /// The model and device (only read when the artifact is new).
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Export one strategy.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let lib = StrategyLibrary::load(&args.artifact)
        .with_context(|| format!("loading the artifact {}", args.artifact.display()))?;
    let name = match &args.strategy {
        Some(n) => n.clone(),
        None => lib
            .gate()
            .map(|g| g.strategy.clone())
            .or_else(|| lib.strategies.first().map(|s| s.name.clone()))
            .context("the artifact has no strategy")?,
    };
    let s = lib.strategy(&name).with_context(|| {
        let names: Vec<&str> = lib.strategies.iter().map(|s| s.name.as_str()).collect();
        format!(
            "unknown strategy '{name}'; the artifact has: {}",
            names.join(", ")
        )
    })?;
    export_control_vector(
        s,
        lib.fingerprint.layers,
        &lib.fingerprint.architecture,
        &args.out,
    )
    .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} ({} × {:.2}); use it with llama.cpp: --control-vector {}",
        args.out.display(),
        s.name,
        s.coefficient,
        args.out.display()
    );
    Ok(())
}

/// Import a control vector as a strategy.
pub fn import(args: &ImportArgs) -> anyhow::Result<()> {
    if !args.coefficient.is_finite() {
        bail!("--coefficient {} is not finite", args.coefficient);
    }
    let mut lib = if args.artifact.join("manifest.json").is_file() {
        StrategyLibrary::load(&args.artifact)
            .with_context(|| format!("loading the artifact {}", args.artifact.display()))?
    } else {
        StrategyLibrary::new(args.model.with_model(Fingerprint)?, 0)
    };
    let fp = &lib.fingerprint;
    let v = import_control_vector(&args.file, fp.layers, fp.width)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let layers: Vec<usize> = v.layers.keys().copied().collect();
    let s = Strategy::new(&args.name, &v, &layers, args.coefficient)?;
    let name = s.name.clone();
    lib.add_strategies(vec![s]);
    lib.save(&args.artifact)
        .with_context(|| format!("saving {}", args.artifact.display()))?;
    println!(
        "added strategy {name} (layers {layers:?}) to {}; use it with --steering {name}",
        args.artifact.display()
    );
    Ok(())
}
