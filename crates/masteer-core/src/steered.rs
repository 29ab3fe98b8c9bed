//! `SteeredModel`: generation and scoring with a strategy library's adaptive steering,
//! each sequence's decision returned with its output.

use burn::tensor::backend::Backend;
use masteer_anchor::{Decision, MatchMode};
use masteer_datagen::SteerSample;
use masteer_models::{ChatMessage, GenerateOptions, Hooks, LoadedModel, SeqInput};

use crate::adaptive::AdaptiveDecider;
use crate::error::{CoreError, Result};
use crate::eval::ab::{self, AbResult, Steering};
use crate::library::StrategyLibrary;

/// A model and a calibrated library, steering each input by its own decision.
pub struct SteeredModel<'a, B: Backend> {
    lm: &'a LoadedModel<B>,
    library: &'a StrategyLibrary,
    anchors: masteer_anchor::AnchorSet,
}

impl<'a, B: Backend> SteeredModel<'a, B> {
    /// Steer `lm` with `library` (which must have calibrated anchors), in the anchors' mode.
    pub fn new(lm: &'a LoadedModel<B>, library: &'a StrategyLibrary) -> Result<Self> {
        let anchors = library.anchors.clone().ok_or_else(|| {
            CoreError::InvalidInput("the library has no calibrated anchors".into())
        })?;
        Ok(SteeredModel {
            lm,
            library,
            anchors,
        })
    }

    /// Use another matching rule (e.g. the calibrated soft mix).
    pub fn with_mode(mut self, mode: MatchMode) -> Self {
        self.anchors = self.anchors.with_mode(mode);
        self
    }

    /// The steering this model applies, for the evaluation functions.
    pub fn steering(&self) -> Result<Steering<'_>> {
        Ok(Steering::Adaptive {
            anchors: &self.anchors,
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
        let inputs = conversations
            .iter()
            .map(|c| Ok(SeqInput::prompt(self.lm.encode_chat(c)?)))
            .collect::<Result<Vec<_>>>()?;
        let point = self
            .library
            .anchor_point
            .ok_or_else(|| CoreError::InvalidInput("no anchor point".into()))?;
        let mut decider = AdaptiveDecider::new(&self.anchors, &self.library.strategies, point);
        let mut hooks = Hooks::none().with_decider(&mut decider);
        let (gens, _) = self.lm.generate(inputs, opts, &mut hooks, &mut |_, _| {})?;
        drop(hooks);
        let decisions = decider.into_decisions();
        gens.iter()
            .zip(decisions)
            .map(|(g, d)| Ok((self.lm.decode_reply(g)?, d)))
            .collect()
    }

    /// A/B scores of samples under adaptive steering.
    pub fn score_ab(&self, samples: &[&SteerSample], batch: usize) -> Result<Vec<AbResult>> {
        ab::score(self.lm, samples, self.steering()?, batch)
    }
}
