//! The error type of `masteer-anchor`.

/// Result alias of this crate.
pub type Result<T, E = AnchorError> = std::result::Result<T, E>;

/// Everything that can go wrong while calibrating anchors or matching inputs.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum AnchorError {
    /// No calibration samples.
    #[error("empty calibration set")]
    Empty,
    /// Representations of different widths, or scores for a different number of strategies.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A NaN or infinite representation or score.
    #[error("non-finite value in {0}")]
    NonFinite(String),
    /// Clustering failed.
    #[error("k-means: {0}")]
    Clustering(String),
    /// Settings that cannot be used.
    #[error("invalid settings: {0}")]
    Settings(String),
}
