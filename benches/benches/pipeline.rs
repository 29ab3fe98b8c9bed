//! End-to-end `repair` on a fixed 100-pair sample set (the first 100 CAA hallucination
//! pairs, split 2:1 into train and validation) with the embedded model: activations read
//! at three layers (no cache), every built-in algorithm fitted, a validation sweep of
//! 1 layer × 3 coefficients on 12 pairs, anchors calibrated with 12 out-of-scope
//! prompts. One iteration takes minutes on two cores: criterion's minimum of 10 samples
//! makes a run last about half an hour.
//!
//! ```text
//! cargo bench -p masteer-benches --bench pipeline
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use masteer_core::backend::Cpu;
use masteer_core::datagen::formats::caa;
use masteer_core::datagen::{corpora, SampleSet, SplitFractions};
use masteer_core::select::SweepConfig;
use masteer_core::{LoadedModel, Masteer};

fn benches(c: &mut Criterion) {
    let lm: LoadedModel<Cpu> = LoadedModel::load_default(&Default::default()).expect("model");
    let items = caa::load(&corpora::caa_generate("hallucination")).expect("CAA set");
    let set = SampleSet::new(
        "hallucination",
        caa::to_samples(&items[..100], caa::Wanted::NotMatching, "hallucination"),
    )
    .and_then(|s| {
        s.split(
            SplitFractions {
                train: 2.0,
                validation: 1.0,
                test: 0.0,
            },
            0,
        )
    })
    .expect("sample set");
    let mut g = c.benchmark_group("repair");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(60));
    g.bench_function("100_pairs_4_algorithms", |b| {
        b.iter(|| {
            Masteer::new(&lm)
                .samples(set.clone())
                .layers(vec![18, 20, 22])
                .sweep(SweepConfig {
                    top_layers: 1,
                    coefficient_multipliers: vec![1.0, 2.0, 4.0],
                    max_samples: 12,
                    batch: 8,
                })
                .out_of_scope(12)
                .cache_dir(None)
                .repair()
                .expect("repair")
        })
    });
    g.finish();
}

criterion_group!(pipeline_benches, benches);
criterion_main!(pipeline_benches);
