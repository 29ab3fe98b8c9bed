//! The built-in algorithms, one per file.

mod iti;
mod logistic;
mod mean_difference;
mod pca;
mod probe;

pub use iti::{Iti, ItiDirection};
pub use mean_difference::MeanDifference;
pub use pca::{Pca, PcaVariant};
pub use probe::LinearProbe;
