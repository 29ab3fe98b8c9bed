//! # masteer-algorithms
//!
//! The steering algorithm library of MASteer-rs: the `SteeringAlgorithm` trait and the
//! built-in strategies (mean difference / CAA, PCA / RepE, linear probe, ITI), each
//! fitting contrast activations into a steering vector with per-layer diagnostics.
//! Pure math on `ndarray`; no burn, no model.
//!
//! (Filled by the algorithm-library issue; this crate is a placeholder until then.)
