//! `AlgorithmLibrary`: the registry of steering algorithms, fitted in parallel.

use std::sync::Arc;

use rayon::prelude::*;

use crate::activations::ContrastActivations;
use crate::algorithm::SteeringAlgorithm;
use crate::algorithms::{Iti, LinearProbe, MeanDifference, Pca, PcaVariant};
use crate::error::{AlgorithmError, Result};
use crate::vector::SteeringVector;

/// The result of fitting one algorithm of a library.
#[derive(Debug, Clone)]
pub struct FitOutcome {
    /// The algorithm's name.
    pub name: String,
    /// Its vector, or why it could not be fitted.
    pub result: Result<SteeringVector>,
}

/// A registry of steering algorithms by name. `AlgorithmLibrary::default()` holds the
/// built-ins (mean difference, PCA with midpoint centring, linear probe, ITI); users
/// register their own beside them.
#[derive(Clone)]
pub struct AlgorithmLibrary {
    algorithms: Vec<Arc<dyn SteeringAlgorithm>>,
}

impl std::fmt::Debug for AlgorithmLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Default for AlgorithmLibrary {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl AlgorithmLibrary {
    /// A library with no algorithm.
    pub fn empty() -> Self {
        AlgorithmLibrary {
            algorithms: Vec::new(),
        }
    }

    /// The built-ins: `mean_difference`, `pca_center`, `linear_probe`, `iti`.
    pub fn with_builtins() -> Self {
        let mut lib = Self::empty();
        let builtins: [Arc<dyn SteeringAlgorithm>; 4] = [
            Arc::new(MeanDifference::default()),
            Arc::new(Pca::new(PcaVariant::Center)),
            Arc::new(LinearProbe::default()),
            Arc::new(Iti::default()),
        ];
        for a in builtins {
            // The built-in names are distinct.
            let _ = lib.register_arc(a);
        }
        lib
    }

    /// Register an algorithm; an error if its name is taken.
    pub fn register(&mut self, algorithm: impl SteeringAlgorithm + 'static) -> Result<()> {
        self.register_arc(Arc::new(algorithm))
    }

    /// Register a shared algorithm; an error if its name is taken.
    pub fn register_arc(&mut self, algorithm: Arc<dyn SteeringAlgorithm>) -> Result<()> {
        if self.get(algorithm.name()).is_some() {
            return Err(AlgorithmError::DuplicateName(algorithm.name().to_string()));
        }
        self.algorithms.push(algorithm);
        Ok(())
    }

    /// Remove an algorithm by name; whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.algorithms.len();
        self.algorithms.retain(|a| a.name() != name);
        before != self.algorithms.len()
    }

    /// An algorithm by name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn SteeringAlgorithm>> {
        self.algorithms.iter().find(|a| a.name() == name)
    }

    /// Names in registration order.
    pub fn names(&self) -> Vec<&str> {
        self.algorithms.iter().map(|a| a.name()).collect()
    }

    /// The algorithms in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn SteeringAlgorithm>> {
        self.algorithms.iter()
    }

    /// Number of algorithms.
    pub fn len(&self) -> usize {
        self.algorithms.len()
    }

    /// Whether the library is empty.
    pub fn is_empty(&self) -> bool {
        self.algorithms.is_empty()
    }

    /// The sites the algorithms read, each once, in registration order: what the
    /// activations must hold for [`fit_all`](Self::fit_all).
    pub fn sites(&self) -> Vec<masteer_types::Site> {
        let mut out = Vec::new();
        for a in &self.algorithms {
            if !out.contains(&a.site()) {
                out.push(a.site());
            }
        }
        out
    }

    /// Fit every algorithm in parallel; outcomes in registration order.
    pub fn fit_all(&self, acts: &ContrastActivations) -> Vec<FitOutcome> {
        self.algorithms
            .par_iter()
            .map(|a| FitOutcome {
                name: a.name().to_string(),
                result: a.fit(acts),
            })
            .collect()
    }
}
