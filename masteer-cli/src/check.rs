//! `masteer check`: does the device named by `--device` compute what the CPU computes?
//! The model is loaded on both, and their logits (unsteered, steered, gated inside the
//! prefill pass), a residual-stream capture and the gate's decisions are compared and
//! both greedy replies shown ([`masteer_core::models::device_check`]). Exits with an
//! error when any differs beyond its tolerance: run it once on a new GPU, driver or
//! backend build.

use anyhow::{bail, Context};
use masteer_core::models::device_check;
use masteer_core::LoadedModel;

use crate::model::ModelArgs;

/// Arguments of `masteer check`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// The model and the device to check against the CPU.
    #[command(flatten)]
    pub model: ModelArgs,
}

crate::run_on_device!(
    #[doc = "Compare the device with the CPU and print the report."]
    CheckArgs,
    |args, lm, path| {
        let started = std::time::Instant::now();
        let cpu =
            LoadedModel::<masteer_core::models::backend::Cpu>::load(path, &Default::default())
                .with_context(|| format!("loading {} on the CPU", path.display()))?;
        let report = device_check::compare(&cpu, &lm)
            .with_context(|| format!("comparing {} with the CPU", args.model.device))?;
        println!("{} against cpu, {}:", args.model.device, path.display());
        println!("{report}");
        let failures = report.failures();
        if !failures.is_empty() {
            bail!(
                "{} differs from the CPU: {}",
                args.model.device,
                failures.join("; ")
            );
        }
        println!(
            "{} agrees with the CPU ({:.1} s)",
            args.model.device,
            started.elapsed().as_secs_f32()
        );
        Ok(())
    }
);
