//! `SteeredModel`: generation and scoring with a strategy library's adaptive steering,
//! each sequence's decision returned with its output.

use burn::tensor::backend::Backend;
use masteer_anchor::{Decision, MatchMode};
use masteer_datagen::SteerSample;
use masteer_models::{ChatMessage, GenerateOptions, LoadedModel, Steering as ModelSteering};

use crate::error::{CoreError, Result};
use crate::eval::ab::{self, AbResult, Steering};
use crate::library::StrategyLibrary;

/// A model and a calibrated library, steering each input by its own decision.
pub struct SteeredModel<'a, B: Backend> {
    lm: &'a LoadedModel<B>,
    library: &'a StrategyLibrary,
    anchors: Option<masteer_anchor::AnchorSet>,
}

impl<'a, B: Backend> SteeredModel<'a, B> {
    /// Steer `lm` with `library`, which must have a router: a condition gate (used
    /// first) or calibrated anchors (in their mode).
    pub fn new(lm: &'a LoadedModel<B>, library: &'a StrategyLibrary) -> Result<Self> {
        if let Some(g) = &library.gate {
            g.check(&library.strategies)?;
        } else if library.anchors.is_none() {
            return Err(CoreError::InvalidInput(
                "the library has neither a gate nor calibrated anchors".into(),
            ));
        }
        let anchors = library.anchors.clone();
        Ok(SteeredModel {
            lm,
            library,
            anchors,
        })
    }

    /// Use another matching rule (e.g. the calibrated soft mix).
    pub fn with_mode(mut self, mode: MatchMode) -> Self {
        self.anchors = self.anchors.map(|a| a.with_mode(mode));
        self
    }

    fn anchors(&self) -> Result<&masteer_anchor::AnchorSet> {
        self.anchors
            .as_ref()
            .ok_or_else(|| CoreError::InvalidInput("the library has no calibrated anchors".into()))
    }

    /// The steering this model applies, for the evaluation functions.
    pub fn steering(&self) -> Result<Steering<'_>> {
        if let Some(router) = &self.library.gate {
            return Ok(Steering::Gated {
                router,
                strategies: &self.library.strategies,
            });
        }
        Ok(Steering::Adaptive {
            anchors: self.anchors()?,
            strategies: &self.library.strategies,
            point: self
                .library
                .anchor_point
                .ok_or_else(|| CoreError::InvalidInput("the library has no anchor point".into()))?,
        })
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
        let mut decider = self
            .steering()?
            .decider()
            .ok_or_else(|| CoreError::InvalidInput("the library has no router".into()))?;
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
        ab::score(self.lm, samples, self.steering()?, batch)
    }
}
