//! The error type of `masteer-core`.

/// Result alias of this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Everything the pipeline can fail on, by the crate it came from.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The model (loading, running, steering).
    #[error(transparent)]
    Model(#[from] masteer_models::ModelError),
    /// An algorithm fit or selection.
    #[error(transparent)]
    Algorithm(#[from] masteer_algorithms::AlgorithmError),
    /// Anchor calibration or matching.
    #[error(transparent)]
    Anchor(#[from] masteer_anchor::AnchorError),
    /// Samples and datasets.
    #[error(transparent)]
    Data(#[from] masteer_datagen::DatagenError),
    /// Input the pipeline cannot use.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}
