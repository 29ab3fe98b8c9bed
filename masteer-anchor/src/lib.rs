//! # masteer-anchor
//!
//! Anchor vectors and adaptive steering: no single steering strategy suits every
//! input. From held-out calibration samples — their unsteered representation and the
//! repair score of every strategy — each strategy gets anchors (k-means centroids of
//! the samples it helps most) and "no steering" gets its own (samples nothing helps,
//! and out-of-scope prompts). At inference an input is matched to its most similar
//! anchor by cosine similarity: a hard choice with a calibrated margin, or a softmax
//! mix with a calibrated temperature. Pure math on `ndarray`; no burn, no model.

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
