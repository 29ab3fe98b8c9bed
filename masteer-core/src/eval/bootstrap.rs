//! Paired bootstrap intervals: how sure a difference between two conditions measured on
//! the same items is. Seeded, so a report is reproducible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A mean and its 95% percentile-bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The point estimate.
    pub mean: f64,
    /// 2.5th percentile of the resampled means.
    pub low: f64,
    /// 97.5th percentile.
    pub high: f64,
}

impl Interval {
    /// Whether the interval lies above zero.
    pub fn excludes_zero_above(&self) -> bool {
        self.low > 0.0
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:+.3} [{:+.3}, {:+.3}]", self.mean, self.low, self.high)
    }
}

/// Resamples drawn by default (enough for stable 95% percentiles).
pub const RESAMPLES: usize = 2000;

/// The 95% interval of the mean of `values`, by `resamples` bootstrap draws.
pub fn mean_interval(values: &[f64], resamples: usize, seed: u64) -> Interval {
    let n = values.len();
    if n == 0 {
        return Interval {
            mean: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    percentile_interval(mean, means)
}

/// The 95% percentile interval of resampled means around a point estimate.
fn percentile_interval(mean: f64, mut means: Vec<f64>) -> Interval {
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    Interval {
        mean,
        low: at(0.025),
        high: at(0.975),
    }
}

/// The paired 95% interval of `mean(b) − mean(a)` over the same items.
pub fn paired_difference(a: &[f64], b: &[f64], seed: u64) -> Interval {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    mean_interval(&d, RESAMPLES, seed)
}

/// The paired 95% interval of the change in a two-sided metric, the mean of a trigger
/// side's and a control side's success rates: `½(mean(b_t − a_t) + mean(b_c − a_c))`,
/// each side resampled on its own items (the sides are different inputs).
pub fn paired_sides(
    a_trigger: &[bool],
    b_trigger: &[bool],
    a_control: &[bool],
    b_control: &[bool],
    seed: u64,
) -> Interval {
    let diff = |a: &[bool], b: &[bool]| -> Vec<f64> {
        a.iter()
            .zip(b)
            .map(|(x, y)| *y as u8 as f64 - *x as u8 as f64)
            .collect()
    };
    let (dt, dc) = (diff(a_trigger, b_trigger), diff(a_control, b_control));
    let m = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mean = (m(&dt) + m(&dc)) / 2.0;
    if dt.is_empty() || dc.is_empty() {
        return Interval {
            mean,
            low: f64::NAN,
            high: f64::NAN,
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |v: &[f64]| {
        (0..v.len())
            .map(|_| v[rng.random_range(0..v.len())])
            .sum::<f64>()
            / v.len() as f64
    };
    let means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (draw(&dt) + draw(&dc)) / 2.0)
        .collect();
    percentile_interval(mean, means)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_shift_has_a_point_interval_and_noise_widens_it() {
        let a = vec![0.0; 50];
        let b = vec![1.0; 50];
        let i = paired_difference(&a, &b, 1);
        assert_eq!((i.mean, i.low, i.high), (1.0, 1.0, 1.0));
        // Half the items improve by one, half do not: mean 0.5, interval around it of
        // width about 2·1.96·sqrt(0.25/50) = 0.28.
        let b: Vec<f64> = (0..50).map(|k| (k % 2) as f64).collect();
        let i = paired_difference(&a, &b, 2);
        assert!((i.mean - 0.5).abs() < 1e-12);
        assert!(i.low > 0.3 && i.low < 0.43, "{i}");
        assert!(i.high > 0.57 && i.high < 0.7, "{i}");
        assert!(i.excludes_zero_above());
        assert_eq!(paired_difference(&a, &b, 2), i, "seeded");
    }

    #[test]
    fn two_sided_change_averages_the_sides() {
        let f = vec![false; 40];
        let t = vec![true; 40];
        // Trigger side fixed everywhere (+1), control side broken everywhere (−1): 0.
        let i = paired_sides(&f, &t, &t, &f, 3);
        assert_eq!((i.mean, i.low, i.high), (0.0, 0.0, 0.0));
        let i = paired_sides(&f, &t, &t, &t, 3);
        assert_eq!(i.mean, 0.5);
        assert!(i.excludes_zero_above());
    }
}
