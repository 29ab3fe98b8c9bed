//! `--model` and `--device`, shared by every subcommand that loads a model, and the
//! run-time choice of backend: a command is written once, generic over the backend
//! ([`OnDevice`]), and runs on the device named on the command line among the
//! backends compiled in (cargo features `cpu`, `wgpu`, `cuda`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use burn::tensor::backend::Backend;
use masteer_core::LoadedModel;

/// Which model to load and where to run it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// A GGUF file or Hugging Face folder (default: the embedded SmolLM2-135M-Instruct,
    /// fetched once into the cache, or `$MASTEER_MODEL`).
    #[arg(long, global = true)]
    pub model: Option<PathBuf>,
    /// `cpu`, `wgpu` or `cuda[:N]`, among the backends this binary was built with
    /// (`cargo install --path masteer-cli --features wgpu,cuda` adds the GPU ones).
    #[arg(long, global = true, default_value = "cpu")]
    pub device: String,
    /// CPU products for decoding: `exact` (the dequantised weights, f32 inputs) or
    /// `int8` (inputs rounded to 8 bits and integer products, as llama.cpp computes:
    /// about 1.5× faster decoding, logits within about 1 of the exact ones).
    #[arg(long, global = true, default_value = "exact", value_parser = ["exact", "int8"])]
    pub kernels: String,
}

/// A device named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// The CPU backend.
    Cpu,
    /// The wgpu backend's default adapter.
    Wgpu,
    /// CUDA device `N`.
    Cuda(usize),
}

impl std::str::FromStr for Device {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.split_once(':') {
            None if s == "cpu" => Ok(Device::Cpu),
            None if s == "wgpu" => Ok(Device::Wgpu),
            None if s == "cuda" => Ok(Device::Cuda(0)),
            Some(("cuda", n)) => n
                .parse()
                .map(Device::Cuda)
                .with_context(|| format!("device '{s}': '{n}' is not a CUDA device index")),
            Some(("cpu" | "wgpu", _)) => {
                bail!("device '{s}': only cuda takes an index (cuda:0)")
            }
            _ => bail!("unknown device '{s}': use cpu, wgpu or cuda[:N]"),
        }
    }
}

/// The backends compiled into this binary.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "cpu") {
        v.push("cpu");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// A command body that runs on any backend.
pub trait OnDevice {
    /// What it returns.
    type Output;
    /// Run with `lm` (loaded from `path`) on backend `B`.
    fn run<B: Backend>(self, lm: LoadedModel<B>, path: &Path) -> anyhow::Result<Self::Output>
    where
        LoadedModel<B>: Send + 'static;
}

/// Define `pub fn run(args: &Args)` for a command whose body is generic over the
/// backend: the body sees `args`, the loaded model (`lm`) and its path, and runs on the
/// device `--device` names (`args.model` must be the command's [`ModelArgs`]).
#[macro_export]
macro_rules! run_on_device {
    ($(#[$doc:meta])* $args_ty:ty, |$args:ident, $lm:ident, $path:pat_param| $body:block) => {
        $(#[$doc])*
        pub fn run(args: &$args_ty) -> anyhow::Result<()> {
            struct Run<'a>(&'a $args_ty);
            impl $crate::model::OnDevice for Run<'_> {
                type Output = ();
                fn run<B: burn::tensor::backend::Backend>(
                    self,
                    $lm: masteer_core::LoadedModel<B>,
                    $path: &std::path::Path,
                ) -> anyhow::Result<()>
                where
                    masteer_core::LoadedModel<B>: Send + 'static,
                {
                    let $args = self.0;
                    $body
                }
            }
            args.model.with_model(Run(args))
        }
    };
}

fn not_compiled(kind: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "device '{kind}' needs the {kind} backend, but this binary was built with {}; \
         rebuild with `cargo install --path masteer-cli --features {kind}`",
        compiled_backends().join(", ")
    )
}

impl ModelArgs {
    /// The parsed device, checked against the backends compiled in (and, for CUDA and
    /// wgpu, the driver: burn's backends panic without one, so it is probed first).
    pub fn device(&self) -> anyhow::Result<Device> {
        let d: Device = self.device.parse()?;
        let kind = match d {
            Device::Cpu => "cpu",
            Device::Wgpu => "wgpu",
            Device::Cuda(_) => "cuda",
        };
        if !compiled_backends().contains(&kind) {
            return Err(not_compiled(kind));
        }
        if kind == "cuda" && !masteer_core::models::backend::cuda_driver_present() {
            bail!(
                "device '{}': no CUDA driver (libcuda) was found on this machine",
                self.device
            );
        }
        #[cfg(feature = "wgpu")]
        if kind == "wgpu" && !masteer_core::models::backend::wgpu_adapter_present() {
            bail!(
                "device '{}': wgpu found no adapter for its graphics API (Vulkan; Metal on macOS): install a driver (on Debian, `apt install mesa-vulkan-drivers` gives a software one)",
                self.device
            );
        }
        Ok(d)
    }

    /// Check `--device` without loading anything.
    pub fn check_device(&self) -> anyhow::Result<()> {
        self.device().map(|_| ())
    }

    /// Load the model on the chosen device and run `task` there.
    pub fn with_model<T: OnDevice>(&self, task: T) -> anyhow::Result<T::Output> {
        let device = self.device()?;
        let path = masteer_core::models::embedded::resolve(self.model.as_deref())
            .context("locating the model")?;
        match device {
            #[cfg(feature = "cpu")]
            Device::Cpu => {
                let lm = load::<masteer_core::models::backend::Cpu>(
                    &path,
                    &Default::default(),
                    &self.device,
                    &self.kernels,
                )?;
                task.run(lm, &path)
            }
            #[cfg(feature = "wgpu")]
            Device::Wgpu => {
                let lm = load::<masteer_core::models::backend::Wgpu>(
                    &path,
                    &Default::default(),
                    &self.device,
                    &self.kernels,
                )?;
                task.run(lm, &path)
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                let d = burn::backend::cuda::CudaDevice::new(n);
                let lm = load::<masteer_core::models::backend::Cuda>(
                    &path,
                    &d,
                    &self.device,
                    &self.kernels,
                )?;
                task.run(lm, &path)
            }
            #[allow(unreachable_patterns)]
            _ => Err(not_compiled(&self.device)),
        }
    }
}

fn load<B: Backend>(
    path: &Path,
    device: &B::Device,
    name: &str,
    kernels: &str,
) -> anyhow::Result<LoadedModel<B>> {
    let started = Instant::now();
    let mut lm = LoadedModel::<B>::load(path, device)
        .with_context(|| format!("loading {}", path.display()))?;
    if kernels == "int8" {
        if !masteer_core::models::Kernels::FusedInt8.fused_on::<B>() {
            bail!("--kernels int8 runs on the CPU backend only (device '{name}')");
        }
        lm.model = lm
            .model
            .with_kernels(masteer_core::models::Kernels::FusedInt8);
    }
    eprintln!(
        "model: {} on {name} (loaded in {:.1} s)",
        path.display(),
        started.elapsed().as_secs_f32()
    );
    Ok(lm)
}
