//! A GPU backend computes what the CPU backend computes: last-position logits of a few
//! prompts (also against llama.cpp's golden logits), a capture, and a steering plan
//! applied per sequence. Compiled with the `cuda` or `wgpu` feature (beside the default
//! `cpu`); each test runs on its backend's default device and fails when there is
//! none (run by `tools/gpu_check.sh` on a CUDA machine; no GPU is lent to CI).
#![allow(dead_code)]

mod common;

use burn::tensor::backend::Backend;
use masteer_models::{
    CaptureSpec, ChatMessage, HookPoint, Hooks, Intervention, InterventionPlan, LoadedModel,
    Positions, SeqInput, Site,
};

/// Largest logit difference allowed between backends (f32 on both; the GPU reduces in
/// another order): the golden tests' tolerance against llama.cpp.
const TOLERANCE: f32 = 0.05;

fn prompts() -> Vec<Vec<ChatMessage>> {
    vec![
        vec![ChatMessage::user("What is the capital of France?")],
        vec![ChatMessage::user("I think 2+2=5. Am I right?")],
    ]
}

fn last_logits<B: Backend>(
    lm: &LoadedModel<B>,
    plans: &[Option<InterventionPlan>],
) -> Vec<Vec<f32>> {
    let inputs: Vec<SeqInput> = prompts()
        .iter()
        .zip(plans)
        .map(|(p, plan)| SeqInput::prompt(lm.encode_chat(p).unwrap()).with_plan(plan.clone()))
        .collect();
    let pos: Vec<Vec<usize>> = inputs.iter().map(|s| vec![s.tokens.len() - 1]).collect();
    masteer_models::generation::logits_at(&lm.model, inputs, &pos, &mut Hooks::none())
        .unwrap()
        .into_iter()
        .map(|mut v| v.remove(0))
        .collect()
}

fn capture<B: Backend>(lm: &LoadedModel<B>) -> Vec<f32> {
    let point = HookPoint::resid_post(12);
    let ids = lm.encode_chat(&prompts()[0]).unwrap();
    let mut hooks = Hooks::capture(CaptureSpec::new(vec![point], Positions::All));
    masteer_models::Session::prefill(&lm.model, vec![SeqInput::prompt(ids)], 0, &mut hooks)
        .unwrap();
    hooks
        .captures
        .require(point)
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn plan() -> InterventionPlan {
    let v: Vec<f32> = (0..576)
        .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
        .collect();
    InterventionPlan::new().with(Intervention::add(
        Site::ResidPost,
        vec![10, 11],
        Positions::All,
        v,
        4.0,
    ))
}

/// Load the embedded model on `device` and compare it with the CPU backend.
fn agrees_with_cpu<B: Backend>(device: &B::Device) {
    let path = masteer_models::embedded::resolve(None).unwrap();
    let gpu = LoadedModel::<B>::load(&path, device).unwrap();
    let cpu = common::model();
    let plans = [None, Some(plan())];
    for (what, plans) in [("unsteered", [None, None]), ("steered", plans.clone())] {
        let (a, b) = (last_logits(cpu, &plans), last_logits(&gpu, &plans));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            let (max, mean) = common::diff(x, y);
            eprintln!("{what} sequence {i}: max |Δ| {max:.5}, mean {mean:.6}");
            assert!(max <= TOLERANCE, "{what} sequence {i}: max |Δ| {max}");
        }
    }
    // Steering changes the steered sequence only, on both backends alike.
    let steered = last_logits(&gpu, &plans);
    let plain = last_logits(&gpu, &[None, None]);
    assert!(common::diff(&steered[0], &plain[0]).0 <= TOLERANCE);
    assert!(common::diff(&steered[1], &plain[1]).0 > 0.1);
    let (max, _) = common::diff(&capture(cpu), &capture(&gpu));
    eprintln!("capture at blocks.12.resid_post: max |Δ| {max:.5}");
    assert!(max <= TOLERANCE * 10.0, "capture differs by {max}");
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_agrees_with_cpu() {
    assert!(
        masteer_models::backend::cuda_driver_present(),
        "no CUDA driver (libcuda) on this machine"
    );
    agrees_with_cpu::<masteer_models::backend::Cuda>(&Default::default());
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_agrees_with_cpu() {
    agrees_with_cpu::<masteer_models::backend::Wgpu>(&Default::default());
}
