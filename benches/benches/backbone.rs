//! Speed of the backbone on the embedded model (CPU backend): prefill of 128 and 512
//! tokens, greedy decode of 64 tokens, batched decode of 16 sequences, capture of every
//! residual layer, and steered against unsteered decode.
//!
//! ```text
//! cargo bench -p masteer-benches --bench backbone
//! ```
//!
//! Throughput is reported in tokens (elements) per second; results and the llama.cpp
//! peer's figures are in `benches/README.md`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use masteer_models::backend::{default_device, Cpu};
use masteer_models::{
    CaptureSpec, HookPoint, Hooks, Intervention, InterventionPlan, LoadedModel, Positions,
    SeqInput, Site,
};

fn tokens(n: usize, seed: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| 100 + (i * 7919 + seed * 104_729) % 40_000)
        .collect()
}

fn load() -> LoadedModel<Cpu> {
    LoadedModel::load_default(&default_device()).expect("load the embedded model")
}

/// Time `steps` decode steps of `batch` sequences after a 16-token prompt each.
fn decode_time(
    lm: &LoadedModel<Cpu>,
    batch: usize,
    steps: usize,
    plan: Option<InterventionPlan>,
) -> Duration {
    let m = &lm.model;
    let inputs = (0..batch)
        .map(|i| SeqInput::prompt(tokens(16, i as u32)).with_plan(plan.clone()))
        .collect();
    let (mut session, _) =
        masteer_models::Session::prefill(m, inputs, steps, &mut Hooks::none()).unwrap();
    let next: Vec<u32> = (0..batch as u32).map(|i| 500 + i).collect();
    let start = Instant::now();
    for _ in 0..steps {
        let h = session.step(m, &next, &mut Hooks::none()).unwrap();
        let [b, _, w] = h.dims();
        let _ = m.logits(h.reshape([b, w])).into_data();
    }
    start.elapsed()
}

fn steering_plan() -> InterventionPlan {
    let v: Vec<f32> = (0..576).map(|i| ((i % 7) as f32 - 3.0) / 100.0).collect();
    InterventionPlan::new().with(Intervention::add(
        Site::ResidPost,
        (5..25).collect(),
        Positions::All,
        v,
        4.0,
    ))
}

fn benches(c: &mut Criterion) {
    let lm = load();
    let m = &lm.model;

    let mut g = c.benchmark_group("prefill");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for n in [128usize, 512] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let t = tokens(n, 1);
            b.iter(|| {
                masteer_models::Session::prefill(
                    m,
                    vec![SeqInput::prompt(t.clone())],
                    0,
                    &mut Hooks::none(),
                )
                .unwrap()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("decode");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(64));
    g.bench_function("64_tokens_unsteered", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| decode_time(&lm, 1, 64, None)).sum())
    });
    g.bench_function("64_tokens_steered_20_layers", |b| {
        let plan = steering_plan();
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| decode_time(&lm, 1, 64, Some(plan.clone())))
                .sum()
        })
    });
    g.throughput(Throughput::Elements(16 * 16));
    g.bench_function("batch_16_x_16_tokens", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| decode_time(&lm, 16, 16, None)).sum())
    });
    // The same with 8-bit inputs (`Kernels::FusedInt8`, llama.cpp's arithmetic).
    let int8 = LoadedModel {
        model: lm
            .model
            .clone()
            .with_kernels(masteer_models::Kernels::FusedInt8),
        ..lm.clone()
    };
    g.throughput(Throughput::Elements(64));
    g.bench_function("64_tokens_unsteered_int8", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| decode_time(&int8, 1, 64, None)).sum())
    });
    g.throughput(Throughput::Elements(16 * 16));
    g.bench_function("batch_16_x_16_tokens_int8", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| decode_time(&int8, 16, 16, None)).sum())
    });
    g.finish();

    let mut g = c.benchmark_group("capture");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(128));
    let t = tokens(128, 2);
    g.bench_function("prefill_128_no_capture", |b| {
        b.iter(|| {
            masteer_models::Session::prefill(
                m,
                vec![SeqInput::prompt(t.clone())],
                0,
                &mut Hooks::none(),
            )
            .unwrap()
        })
    });
    g.bench_function("prefill_128_capture_all_resid_post", |b| {
        let points: Vec<HookPoint> = (0..30).map(HookPoint::resid_post).collect();
        b.iter(|| {
            let mut hooks = Hooks::capture(CaptureSpec::new(points.clone(), Positions::All));
            masteer_models::Session::prefill(m, vec![SeqInput::prompt(t.clone())], 0, &mut hooks)
                .unwrap();
            hooks.captures
        })
    });
    g.finish();
}

criterion_group!(backbone, benches);
criterion_main!(backbone);
