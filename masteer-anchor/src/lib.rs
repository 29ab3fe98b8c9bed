//! # masteer-anchor
//!
//! Anchor vectors and adaptive steering: no single steering strategy suits every
//! input. From held-out calibration samples — their unsteered representation and the
//! repair score of every strategy — each strategy gets anchors (k-means centroids of
//! the samples it helps most) and "no steering" gets its own (samples nothing helps,
//! and out-of-scope prompts). At inference an input is matched to its most similar
//! anchor by cosine similarity: a hard choice with a calibrated margin, or a softmax
//! mix with a calibrated temperature. Pure math on `ndarray`; no burn, no model.
//!
//! ```
//! use masteer_anchor::{AnchorConfig, AnchorSet, CalibrationSample, CalibrationSet};
//!
//! // Strategy "a" helps inputs near (1, 0); nothing helps those near (0, 1).
//! let sample = |i: usize, rep: Vec<f32>, score: f64| CalibrationSample {
//!     id: format!("s{i}"),
//!     representation: rep,
//!     scores: vec![score],
//!     in_scope: true,
//! };
//! let mut samples = Vec::new();
//! for i in 0..8 {
//!     let e = 0.05 * i as f32;
//!     samples.push(sample(i, vec![1.0, e], 1.0));
//!     samples.push(sample(i + 8, vec![e, 1.0], -1.0));
//! }
//! let set = CalibrationSet { strategies: vec!["a".into()], samples };
//! let anchors = AnchorSet::fit(&set, &AnchorConfig::default())?;
//! assert_eq!(anchors.decide(&[0.9, 0.1])?.name.as_deref(), Some("a"));
//! assert_eq!(anchors.decide(&[0.1, 0.9])?.name, None); // no steering
//! # Ok::<(), masteer_anchor::AnchorError>(())
//! ```

#![warn(missing_docs)]

mod anchors;
mod calibration;
mod error;
mod gate;
mod matching;

pub use anchors::{Anchor, AnchorConfig, AnchorSet, CalibrationReport};
pub use calibration::{CalibrationSample, CalibrationSet};
pub use error::{AnchorError, Result};
pub use gate::{Gate, GateConfig};
pub use matching::{Decision, MatchMode};
