//! Implementing your own steering algorithm and fitting it beside the built-ins.
//!
//! ```text
//! cargo run --release -p masteer-examples --example custom_algorithm
//! ```
//!
//! The algorithm here, "median difference", takes per coordinate the median of the
//! positive activations minus the median of the negative ones: a mean difference that
//! ignores outlying pairs. It fits synthetic activations (a planted direction plus
//! noise and a few wild pairs); with the embedded model you would pass the activations
//! `masteer_core::activation_reading::contrast_split` reads.

use masteer_core::algorithms::{
    fit_per_layer, AlgorithmError, AlgorithmLibrary, ContrastActivations, ContrastSplit, HookPoint,
    LayerDiagnostics, LayerVector, PairedRows, Positions, Site, SteeringAlgorithm, SteeringVector,
};
use ndarray::Array2;

/// The algorithm is a value holding its settings (here: only the site it steers).
struct MedianDifference {
    site: Site,
}

impl SteeringAlgorithm for MedianDifference {
    /// A unique name: it identifies the strategy in artifacts and reports.
    fn name(&self) -> &str {
        "median_difference"
    }

    /// The site it reads and writes (the default is `resid_post`).
    fn site(&self) -> Site {
        self.site
    }

    /// Fit every layer; `fit_per_layer` validates the input, runs layers in parallel
    /// and skips degenerate layers.
    fn fit(&self, acts: &ContrastActivations) -> masteer_core::algorithms::Result<SteeringVector> {
        let layers = fit_per_layer(acts, self.site, self.name(), |point, rows| {
            let median = |a: &Array2<f32>, j: usize| {
                let mut c = a.column(j).to_vec();
                c.sort_by(f32::total_cmp);
                c[c.len() / 2]
            };
            let v: Vec<f32> = (0..rows.width())
                .map(|j| median(&rows.positive, j) - median(&rows.negative, j))
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm == 0.0 {
                // A typed error: the library reports it instead of panicking.
                return Err(AlgorithmError::Degenerate {
                    point,
                    message: "the medians of both sides agree".into(),
                });
            }
            Ok(LayerVector {
                direction: v.iter().map(|x| x / norm).collect(), // unit norm
                scale: norm,                                     // coefficient 1 = the median shift
                diagnostics: LayerDiagnostics {
                    raw_norm: norm,
                    ..Default::default()
                },
            })
        })?;
        Ok(SteeringVector::additive(
            self.name(),
            self.site,
            Positions::All,
            layers,
        ))
    }
}

/// Synthetic pairs: a planted direction plus noise, with every tenth pair wild.
fn synthetic(n: usize, width: usize) -> (ContrastActivations, Vec<f32>) {
    let mut s: u64 = 42;
    let mut noise = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let planted: Vec<f32> = (0..width)
        .map(|j| if j % 3 == 0 { 1.0 } else { 0.0 })
        .collect();
    let norm = planted.iter().map(|x| x * x).sum::<f32>().sqrt();
    let planted: Vec<f32> = planted.iter().map(|x| x / norm).collect();
    let mut pos = Array2::<f32>::zeros((n, width));
    let mut neg = Array2::<f32>::zeros((n, width));
    for i in 0..n {
        let wild = if i % 10 == 0 { 50.0 } else { 0.0 };
        for j in 0..width {
            let base = noise();
            pos[[i, j]] = base + planted[j] + 0.2 * noise() + wild * noise();
            neg[[i, j]] = base - planted[j] + 0.2 * noise();
        }
    }
    let split = ContrastSplit::new((0..n).map(|i| format!("pair{i}")).collect())
        .with(HookPoint::resid_post(0), PairedRows::new(pos, neg));
    (ContrastActivations::new(split), planted)
}

fn main() -> anyhow::Result<()> {
    let mut library = AlgorithmLibrary::default(); // the built-ins
    library.register(MedianDifference {
        site: Site::ResidPost,
    })?;
    println!("algorithms: {:?}", library.names());

    let (acts, planted) = synthetic(200, 48);
    for outcome in library.fit_all(&acts) {
        match outcome.result {
            Ok(v) => {
                let d = &v.layers[&0].direction;
                let cos: f32 = d.iter().zip(&planted).map(|(a, b)| a * b).sum();
                println!(
                    "{:>18}: cosine with the planted direction {cos:.3}",
                    outcome.name
                );
            }
            Err(e) => println!("{:>18}: not fitted ({e})", outcome.name),
        }
    }
    Ok(())
}
