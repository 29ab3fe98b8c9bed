//! # masteer-algorithms
//!
//! The steering algorithm library of MASteer-rs. An algorithm is a value holding its
//! settings that fits [`ContrastActivations`] (paired positive/negative activations per
//! hook point) into a [`SteeringVector`] (per layer a unit direction, a scale and
//! diagnostics). Built in: [`MeanDifference`] (CAA), [`Pca`] (RepE, three centring
//! variants), [`LinearProbe`] and [`Iti`]. Implement [`SteeringAlgorithm`] and
//! [`AlgorithmLibrary::register`] it to add your own; nothing else changes.
//!
//! Pure math on `ndarray`: no burn, no model. Hook-point vocabulary comes from
//! `masteer-types`, shared with `masteer-models`.
//!
//! ```
//! use masteer_algorithms::ndarray::array;
//! use masteer_algorithms::{
//!     ContrastActivations, ContrastSplit, HookPoint, MeanDifference, PairedRows,
//!     SteeringAlgorithm,
//! };
//!
//! // Two pairs at block 3's output: positives sit +2 along the first axis.
//! let rows = PairedRows::new(array![[3.0, 1.0], [2.0, -1.0]], array![[1.0, 1.0], [0.0, -1.0]]);
//! let split = ContrastSplit::new(vec!["a".into(), "b".into()])
//!     .with(HookPoint::resid_post(3), rows);
//! let v = MeanDifference::default().fit(&ContrastActivations::new(split))?;
//! let layer = &v.layers[&3];
//! assert!((layer.direction[0] - 1.0).abs() < 1e-6 && layer.direction[1].abs() < 1e-6);
//! assert!((layer.scale - 2.0).abs() < 1e-6); // the mean shift, once
//! # Ok::<(), masteer_algorithms::AlgorithmError>(())
//! ```

#![warn(missing_docs)]

mod activations;
mod algorithm;
pub mod algorithms;
mod diagnostics;
mod error;
mod library;
pub mod preprocess;
pub mod selection;
mod vector;

pub use activations::{ContrastActivations, ContrastSplit, PairedRows};
pub use algorithm::{fit_per_layer, SteeringAlgorithm};
pub use algorithms::{Iti, ItiDirection, LinearProbe, MeanDifference, Pca, PcaVariant};
pub use error::{AlgorithmError, Result};
pub use library::{AlgorithmLibrary, FitOutcome};
pub use masteer_types::{HookPoint, Operation, Positions, Site};
pub use preprocess::{GroupProjection, PairGroups};
pub use selection::{rank_layers, sweep, GridPoint, Selection};
pub use vector::{HeadDiagnostics, LayerDiagnostics, LayerVector, SteeringVector};

/// ndarray, re-exported so that a custom algorithm needs no extra dependency.
pub use ndarray;
