//! # masteer-anchor
//!
//! Anchor vectors and adaptive steering: per strategy, where in representation space it
//! helps; at inference, each input matched to its best strategy or to none. Pure math
//! on `ndarray`.
//!
//! (Filled by the anchors issue; this crate is a placeholder until then.)
