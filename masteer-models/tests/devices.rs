//! A GPU backend computes what the CPU backend computes: last-position logits of a few
//! prompts (also against llama.cpp's golden logits), a capture, and a steering plan
//! applied per sequence. Compiled with the `cuda` or `wgpu` feature (beside the default
//! `cpu`); each test runs on its backend's default device. The CUDA test fails when there
//! is none (run by `tools/gpu_check.sh` on a CUDA machine); the wgpu test runs in CI on
//! Mesa's software Vulkan driver (lavapipe) and skips elsewhere when wgpu finds no adapter.
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

/// An input-conditioned decision as adaptive steering makes it: inside the prefill pass,
/// the last prompt token at `blocks.8.resid_post` is projected on the plan's vector and
/// the sequence is steered (at blocks 10 and 11) when the projection exceeds `threshold`.
struct Gate {
    threshold: f32,
    scores: Vec<f32>,
}

impl masteer_models::Decider for Gate {
    fn point(&self) -> HookPoint {
        HookPoint::resid_post(8)
    }
    fn decide(
        &mut self,
        reps: ndarray::ArrayView2<'_, f32>,
    ) -> masteer_models::Result<Vec<Option<InterventionPlan>>> {
        let plan = plan();
        let dir = &plan.interventions[0].vector;
        Ok(reps
            .rows()
            .into_iter()
            .map(|r| {
                let s: f32 = r.iter().zip(dir.iter()).map(|(a, b)| a * b).sum();
                self.scores.push(s);
                (s > self.threshold).then(|| plan.clone())
            })
            .collect())
    }
}

/// The gate's scores and the last-position logits of both prompts under it.
fn gated<B: Backend>(lm: &LoadedModel<B>, threshold: f32) -> (Vec<f32>, Vec<Vec<f32>>) {
    let inputs: Vec<SeqInput> = prompts()
        .iter()
        .map(|p| SeqInput::prompt(lm.encode_chat(p).unwrap()))
        .collect();
    let pos: Vec<Vec<usize>> = inputs.iter().map(|s| vec![s.tokens.len() - 1]).collect();
    let mut gate = Gate {
        threshold,
        scores: Vec::new(),
    };
    let mut hooks = Hooks::none().with_decider(&mut gate);
    let logits = masteer_models::generation::logits_at(&lm.model, inputs, &pos, &mut hooks)
        .unwrap()
        .into_iter()
        .map(|mut v| v.remove(0))
        .collect();
    drop(hooks);
    (gate.scores, logits)
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

    // Adaptive decisions: a gate whose threshold lies halfway between the two prompts'
    // scores (read on the CPU) steers the same one sequence on both backends.
    let (scores, _) = gated(cpu, f32::INFINITY);
    let threshold = (scores[0] + scores[1]) / 2.0;
    let (cpu_scores, cpu_logits) = gated(cpu, threshold);
    let (gpu_scores, gpu_logits) = gated(&gpu, threshold);
    eprintln!(
        "gate scores: cpu {cpu_scores:?}, other backend {gpu_scores:?}, threshold {threshold}"
    );
    let decisions = |s: &[f32]| s.iter().map(|x| *x > threshold).collect::<Vec<_>>();
    assert_eq!(decisions(&cpu_scores).iter().filter(|d| **d).count(), 1);
    assert_eq!(
        decisions(&cpu_scores),
        decisions(&gpu_scores),
        "gate decisions differ"
    );
    for (i, (x, y)) in cpu_logits.iter().zip(&gpu_logits).enumerate() {
        let (max, _) = common::diff(x, y);
        eprintln!("gated sequence {i}: max |Δ| {max:.5}");
        assert!(max <= TOLERANCE, "gated sequence {i}: max |Δ| {max}");
    }
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
    // CI installs Mesa's lavapipe (a software Vulkan driver), so there it must run; a
    // developer's machine without any driver skips with a message instead.
    if !masteer_models::backend::wgpu_adapter_present() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but wgpu finds no adapter (is mesa-vulkan-drivers installed?)"
        );
        eprintln!("skipped: wgpu finds no adapter on this machine");
        return;
    }
    eprintln!(
        "wgpu adapters: {:?}",
        masteer_models::backend::wgpu_adapters()
    );
    agrees_with_cpu::<masteer_models::backend::Wgpu>(&Default::default());
}
