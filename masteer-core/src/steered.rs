//! `SteeredModel`: generation and scoring with a strategy library's adaptive steering,
//! each sequence's decision returned with its output.

use std::sync::Arc;

use burn::tensor::backend::Backend;
use masteer_anchor::{Decision, MatchMode};
use masteer_datagen::SteerSample;
use masteer_models::{ChatMessage, GenerateOptions, LoadedModel, Steering as ModelSteering};

use crate::error::{CoreError, Result};
use crate::eval::ab::{self, AbResult, Steering};
use crate::router::Router;
use crate::strategy_library::StrategyLibrary;

/// A model and a calibrated library, steering each input by its own decision. It owns
/// shared handles to both, so it can be stored beside them or sent to another thread.
pub struct SteeredModel<B: Backend> {
    lm: Arc<LoadedModel<B>>,
    library: Arc<StrategyLibrary>,
    router: Router,
}

impl<B: Backend> SteeredModel<B> {
    /// Steer `lm` with `library` (each an `Arc`, or a value moved in; cloning a model
    /// shares its weights), which must have a router (calibrated anchors, in their
    /// mode, or a condition gate) consistent with its strategies.
    pub fn new(
        lm: impl Into<Arc<LoadedModel<B>>>,
        library: impl Into<Arc<StrategyLibrary>>,
    ) -> Result<Self> {
        let (lm, library) = (lm.into(), library.into());
        let router = library.router.clone().ok_or_else(|| {
            CoreError::InvalidInput(
                "the library has no router: calibrate anchors or fit a gate first".into(),
            )
        })?;
        router.check(&library.strategies)?;
        Ok(SteeredModel {
            lm,
            library,
            router,
        })
    }

    /// The model it steers.
    pub fn model(&self) -> &Arc<LoadedModel<B>> {
        &self.lm
    }

    /// The library it steers by.
    pub fn library(&self) -> &Arc<StrategyLibrary> {
        &self.library
    }

    /// Use another matching rule for anchors (e.g. the calibrated soft mix); a gate
    /// is unchanged.
    pub fn with_mode(mut self, mode: MatchMode) -> Self {
        self.router = self.router.with_mode(mode);
        self
    }

    /// The steering this model applies, for the evaluation functions.
    pub fn steering(&self) -> Steering<'_> {
        Steering::Routed {
            router: &self.router,
            strategies: &self.library.strategies,
        }
    }

    /// Replies to conversations (batched), with each one's decision.
    pub fn generate(
        &self,
        conversations: &[Vec<ChatMessage>],
        opts: &GenerateOptions,
    ) -> Result<Vec<(String, Decision)>> {
        self.generate_streaming(conversations, opts, &mut |_, _| {})
    }

    /// [`generate`](Self::generate), streaming every token as `on_token(seq, id)`.
    pub fn generate_streaming(
        &self,
        conversations: &[Vec<ChatMessage>],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<Vec<(String, Decision)>> {
        let mut decider = self.router.decider(&self.library.strategies)?;
        let replies = self.lm.generate_chat(
            conversations,
            ModelSteering::Adaptive(&mut decider),
            opts,
            on_token,
        )?;
        let decisions = decider.into_decisions();
        Ok(replies
            .into_iter()
            .zip(decisions)
            .map(|(r, d)| (r.text, d))
            .collect())
    }

    /// A/B scores of samples under adaptive steering.
    pub fn score_ab(&self, samples: &[&SteerSample], batch: usize) -> Result<Vec<AbResult>> {
        ab::score(&self.lm, samples, self.steering(), batch)
    }
}
