//! Cost of anchor matching: one sequence's decision (cosine similarity to every anchor,
//! hard choice and soft mix) and a batch of 16, at SmolLM2's width (576) with four
//! strategies; and the cost of fitting the anchors on a calibration set. Compare with
//! the prefill time of `backbone` (prefill/128) for the share of a forward pass.
//!
//! ```text
//! cargo bench -p masteer-benches --bench anchors
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use masteer_anchor::{AnchorConfig, AnchorSet, CalibrationSample, CalibrationSet};
use ndarray::Array2;

const WIDTH: usize = 576;
const STRATEGIES: usize = 4;

/// A deterministic pseudo-random stream in [-0.5, 0.5).
fn stream(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }
}

/// Five clusters (one per strategy, one out of scope), 48 samples each; strategy `c`
/// helps cluster `c`.
fn calibration() -> CalibrationSet {
    let mut rnd = stream(11);
    let centers: Vec<Vec<f32>> = (0..=STRATEGIES)
        .map(|_| (0..WIDTH).map(|_| 4.0 * rnd()).collect())
        .collect();
    let mut samples = Vec::new();
    for (c, center) in centers.iter().enumerate() {
        for i in 0..48 {
            let representation = center.iter().map(|x| x + rnd()).collect();
            let scores = (0..STRATEGIES)
                .map(|s| if s == c { 1.0 } else { -0.3 } + 0.1 * rnd() as f64)
                .collect();
            samples.push(CalibrationSample {
                id: format!("c{c}-{i}"),
                representation,
                scores,
                in_scope: c < STRATEGIES,
            });
        }
    }
    CalibrationSet {
        strategies: (0..STRATEGIES).map(|s| format!("strategy{s}")).collect(),
        samples,
    }
}

fn benches(c: &mut Criterion) {
    let set = calibration();
    let anchors = AnchorSet::fit(&set, &AnchorConfig::default()).expect("fit anchors");
    let soft = anchors.clone().with_mode(anchors.soft_mode());
    let one = set.samples[7].representation.clone();
    let batch = Array2::from_shape_fn((16, WIDTH), |(i, j)| set.samples[i * 13].representation[j]);

    let mut g = c.benchmark_group("anchor_matching");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("one_sequence_hard", |b| {
        b.iter(|| anchors.decide(std::hint::black_box(&one)).expect("decide"))
    });
    g.bench_function("one_sequence_soft", |b| {
        b.iter(|| soft.decide(std::hint::black_box(&one)).expect("decide"))
    });
    g.bench_function("batch_16_hard", |b| {
        b.iter(|| {
            anchors
                .decide_batch(std::hint::black_box(batch.view()))
                .expect("decide")
        })
    });
    g.finish();

    let mut g = c.benchmark_group("anchor_fit");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("240_samples_4_strategies", |b| {
        b.iter(|| {
            AnchorSet::fit(std::hint::black_box(&set), &AnchorConfig::default()).expect("fit")
        })
    });
    g.finish();
}

criterion_group!(anchor_benches, benches);
criterion_main!(anchor_benches);
