//! Fit time of the built-in steering algorithms on activations already in memory:
//! 500 pairs × 30 layers × width 576 (`resid_post`) and 30 layers × 9 heads × 64
//! (`attn_heads`, ITI), plus scaling with the number of pairs and the width.
//!
//! ```text
//! cargo bench -p masteer-benches --bench algorithms
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use masteer_algorithms::{
    AlgorithmLibrary, ContrastActivations, ContrastSplit, HookPoint, Iti, LinearProbe,
    MeanDifference, PairedRows, Pca, PcaVariant, SteeringAlgorithm,
};
use ndarray::Array2;

/// Pseudo-random activations with a planted direction at every layer.
fn synthetic(pairs: usize, layers: usize, width: usize, heads: bool) -> ContrastActivations {
    let mut s: u64 = 7;
    let mut rnd = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let mut split = ContrastSplit::new((0..pairs).map(|i| format!("p{i}")).collect());
    for l in 0..layers {
        let mut pos = Array2::<f32>::zeros((pairs, width));
        let mut neg = Array2::<f32>::zeros((pairs, width));
        for i in 0..pairs {
            for j in 0..width {
                let base = rnd();
                let shift = if j % 7 == l % 7 { 0.3 } else { 0.0 };
                pos[[i, j]] = base + shift + 0.2 * rnd();
                neg[[i, j]] = base - shift + 0.2 * rnd();
            }
        }
        let point = if heads {
            HookPoint::attn_heads(l)
        } else {
            HookPoint::resid_post(l)
        };
        split = split.with(point, PairedRows::new(pos, neg));
    }
    ContrastActivations::new(split).with_heads(9)
}

fn benches(c: &mut Criterion) {
    let resid = synthetic(500, 30, 576, false);
    let mut both = resid.clone();
    let heads = synthetic(500, 30, 576, true);
    both.train.points.extend(heads.train.points.clone());

    let mut g = c.benchmark_group("fit_500_pairs_30_layers");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    let algos: Vec<Box<dyn SteeringAlgorithm>> = vec![
        Box::new(MeanDifference::default()),
        Box::new(Pca::new(PcaVariant::Center)),
        Box::new(LinearProbe::default()),
    ];
    for a in &algos {
        g.bench_function(a.name(), |b| b.iter(|| a.fit(&resid).unwrap()));
    }
    g.bench_function("iti_9_heads_x_64", |b| {
        b.iter(|| Iti::default().fit(&heads).unwrap())
    });
    let lib = AlgorithmLibrary::default();
    g.bench_function("all_four_builtins", |b| b.iter(|| lib.fit_all(&both)));
    g.finish();

    let mut g = c.benchmark_group("scaling");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for pairs in [125usize, 250, 500, 1000] {
        let acts = synthetic(pairs, 4, 576, false);
        g.bench_with_input(
            BenchmarkId::new("pairs_mean_pca_probe_4_layers", pairs),
            &acts,
            |b, acts| {
                b.iter(|| {
                    for a in &algos {
                        a.fit(acts).unwrap();
                    }
                })
            },
        );
    }
    for width in [144usize, 288, 576, 1152] {
        let acts = synthetic(500, 4, width, false);
        g.bench_with_input(
            BenchmarkId::new("width_mean_pca_probe_4_layers", width),
            &acts,
            |b, acts| {
                b.iter(|| {
                    for a in &algos {
                        a.fit(acts).unwrap();
                    }
                })
            },
        );
    }
    g.finish();
}

criterion_group!(algorithms, benches);
criterion_main!(algorithms);
