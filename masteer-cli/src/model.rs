//! `--model` and `--device`, shared by every subcommand that loads a model.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use masteer_core::backend::{default_device, DefaultBackend};
use masteer_core::LoadedModel;

/// Which model to load and where to run it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// A GGUF file or Hugging Face folder (default: the embedded SmolLM2-135M-Instruct,
    /// fetched once into the cache, or `$MASTEER_MODEL`).
    #[arg(long, global = true)]
    pub model: Option<PathBuf>,
    /// `cpu`, `wgpu` or `cuda[:N]`. The device must belong to the backend this binary
    /// was built with (`--features wgpu` or `cuda` with `--no-default-features`).
    #[arg(long, global = true, default_value = "cpu")]
    pub device: String,
}

/// The backend compiled in as the default.
pub fn compiled_backend() -> &'static str {
    if cfg!(feature = "cpu") {
        "cpu"
    } else if cfg!(feature = "cuda") {
        "cuda"
    } else {
        "wgpu"
    }
}

impl ModelArgs {
    /// Check `--device` against the compiled backend (and the CUDA driver).
    pub fn check_device(&self) -> anyhow::Result<()> {
        let kind = self.device.split(':').next().unwrap_or("");
        if !matches!(kind, "cpu" | "wgpu" | "cuda") {
            bail!(
                "unknown device '{}': use cpu, wgpu or cuda[:N]",
                self.device
            );
        }
        if let Some(n) = self.device.split(':').nth(1) {
            if n.parse::<usize>().is_err() || kind != "cuda" {
                bail!(
                    "device '{}': only cuda takes an index (cuda:0)",
                    self.device
                );
            }
            if n != "0" {
                bail!(
                    "device '{}': this build runs on the backend's default device only (cuda:0)",
                    self.device
                );
            }
        }
        let built = compiled_backend();
        if kind != built {
            bail!(
                "device '{}' needs the {kind} backend, but this binary was built with {built}; \
                 rebuild with `cargo install --path masteer-cli --no-default-features --features {kind}`",
                self.device
            );
        }
        if kind == "cuda" && !masteer_core::models::backend::cuda_driver_present() {
            bail!(
                "device '{}': no CUDA driver (libcuda) was found on this machine",
                self.device
            );
        }
        Ok(())
    }

    /// Load the model on the chosen device, saying where it came from.
    pub fn load(&self) -> anyhow::Result<(LoadedModel<DefaultBackend>, PathBuf)> {
        self.check_device()?;
        let started = Instant::now();
        let path = masteer_core::models::embedded::resolve(self.model.as_deref())
            .context("locating the model")?;
        let lm: LoadedModel<DefaultBackend> = LoadedModel::load(&path, &default_device())
            .with_context(|| format!("loading {}", path.display()))?;
        eprintln!(
            "model: {} on {} (loaded in {:.1} s)",
            path.display(),
            self.device,
            started.elapsed().as_secs_f32()
        );
        Ok((lm, path))
    }
}
