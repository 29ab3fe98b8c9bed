//! `StrategyLibrary`: the repair a pipeline produces — strategies of one or more
//! issues, the router that chooses among them, and the model they were made for. Its
//! serde form *is* the artifact's manifest (see [`crate::artifact`] for the files).

use std::path::Path;

use masteer_anchor::AnchorSet;
use masteer_types::Site;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::fingerprint::ModelFingerprint;
use crate::router::Router;
use crate::strategy::Strategy;

pub use crate::artifact::{MANIFEST, SCHEMA_VERSION, TENSORS};

/// An issue the library repairs, and the samples it was fitted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueRecord {
    /// Short name (strategy names start with it).
    pub name: String,
    /// The plain-language description.
    pub description: String,
    /// Content hash of the sample set.
    pub sample_set_hash: String,
    /// Number of samples.
    pub samples: usize,
}

/// Strategies, anchors and the model they belong to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyLibrary {
    /// The model the vectors were fitted on.
    #[serde(rename = "model")]
    pub fingerprint: ModelFingerprint,
    /// Issues repaired.
    pub issues: Vec<IssueRecord>,
    /// Strategies (their order indexes the anchors' decisions).
    pub strategies: Vec<Strategy>,
    /// What chooses a strategy (or none) per input: calibrated anchors or a condition
    /// gate; `None` until one is calibrated. (Stored as the manifest's `anchors` or
    /// `gate` entry.)
    #[serde(flatten, with = "crate::router::wire")]
    pub router: Option<Router>,
    /// Seed of the run that produced the library.
    pub seed: u64,
    /// The held-out samples the anchors were calibrated on (kept so that adding an
    /// issue or an algorithm can recalibrate across every strategy).
    #[serde(default)]
    pub calibration: Vec<CalibrationItem>,
}

/// One calibration sample and whether it is in some issue's scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibrationItem {
    /// The sample (out-of-scope samples are general prompts, e.g. MMLU items).
    pub sample: masteer_datagen::SteerSample,
    /// Whether it belongs to an issue's scope.
    pub in_scope: bool,
}

impl StrategyLibrary {
    /// An empty library for a model.
    pub fn new(fingerprint: ModelFingerprint, seed: u64) -> Self {
        StrategyLibrary {
            fingerprint,
            issues: Vec::new(),
            strategies: Vec::new(),
            router: None,
            seed,
            calibration: Vec::new(),
        }
    }

    /// Write the artifact directory `dir` atomically: everything is written to a
    /// temporary directory beside it, synced, and swapped into place in one step
    /// ([`masteer_types::fsutil::replace_dir`]), so `dir` holds the previous artifact or
    /// the new one whenever the process stops.
    pub fn save(&self, dir: &Path) -> Result<()> {
        crate::artifact::save(self, dir)
    }

    /// Read an artifact directory (checked for consistency: widths, layers, routes).
    pub fn load(dir: &Path) -> Result<Self> {
        crate::artifact::load(dir)
    }

    /// Check that every vector, anchor and gate fits the model the library names and
    /// that the router's routes exist and read before what they steer; the message
    /// says what does not.
    pub fn check(&self) -> std::result::Result<(), String> {
        let m = &self.fingerprint;
        let site_width = |site: Site| match site {
            Site::AttnHeads => m.heads * m.head_dim,
            _ => m.width,
        };
        for s in &self.strategies {
            for (&l, lv) in &s.vector.layers {
                if l >= m.layers {
                    return Err(format!(
                        "strategy `{}` steers layer {l} of a {}-layer model",
                        s.name, m.layers
                    ));
                }
                let w = site_width(s.vector.site);
                if lv.direction.len() != w {
                    return Err(format!(
                        "strategy `{}` at layer {l} has {} values, expected {w}",
                        s.name,
                        lv.direction.len()
                    ));
                }
                if !lv.scale.is_finite() || lv.direction.iter().any(|x| !x.is_finite()) {
                    return Err(format!(
                        "strategy `{}` at layer {l} holds non-finite values",
                        s.name
                    ));
                }
            }
        }
        match &self.router {
            Some(Router::Anchors { anchors, .. }) => check_anchors(anchors, m.width)?,
            Some(Router::Gate(g)) => {
                let gate = &g.gate;
                if gate.width() != m.width
                    || gate.mean.len() != gate.width()
                    || gate.inv_std.len() != gate.width()
                {
                    return Err(format!(
                        "the gate reads width {}, the model's width is {}",
                        gate.width(),
                        m.width
                    ));
                }
                if g.point.layer >= m.layers {
                    return Err(format!(
                        "the gate reads {} of a {}-layer model",
                        g.point, m.layers
                    ));
                }
                let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
                if !(finite(&gate.weights)
                    && finite(&gate.mean)
                    && finite(&gate.inv_std)
                    && gate.bias.is_finite()
                    && gate.threshold.is_finite())
                {
                    return Err("the gate holds non-finite values".into());
                }
            }
            None => {}
        }
        if let Some(r) = &self.router {
            r.check(&self.strategies).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The decider that steers each input by this library's router (checked against
    /// its strategies first). The one place adaptive steering by a library is set up.
    pub fn decider(&self) -> Result<crate::adaptive::LibraryDecider<'_>> {
        self.router
            .as_ref()
            .ok_or_else(|| {
                CoreError::InvalidInput(
                    "the library has no router: calibrate anchors or fit a gate first".into(),
                )
            })?
            .decider(&self.strategies)
    }

    /// The calibrated anchors, when the router is anchor matching.
    pub fn anchors(&self) -> Option<&AnchorSet> {
        self.router.as_ref().and_then(Router::anchors)
    }

    /// The condition gate, when the router is one.
    pub fn gate(&self) -> Option<&crate::adaptive::GateRouter> {
        self.router.as_ref().and_then(Router::gate)
    }

    /// A strategy by name.
    pub fn strategy(&self, name: &str) -> Option<&Strategy> {
        self.strategies.iter().find(|s| s.name == name)
    }

    /// Add strategies (replacing same-named ones); the anchors must be recalibrated after.
    pub fn add_strategies(&mut self, strategies: Vec<Strategy>) {
        for s in strategies {
            self.strategies.retain(|x| x.name != s.name);
            self.strategies.push(s);
        }
        self.router = None;
    }

    /// Read an artifact and check it was made for `model`; the error lists what differs.
    pub fn load_for(dir: &Path, model: &ModelFingerprint) -> Result<Self> {
        let lib = Self::load(dir)?;
        lib.fingerprint.check_matches(model)?;
        Ok(lib)
    }
}

fn check_anchors(a: &AnchorSet, width: usize) -> std::result::Result<(), String> {
    if a.center.len() != width {
        return Err(format!(
            "the anchors' centre has {} values, expected {width}",
            a.center.len()
        ));
    }
    for (j, x) in a.anchors.iter().enumerate() {
        if x.strategy.is_some_and(|k| k >= a.strategies.len()) {
            return Err(format!("anchor {j} names a strategy that does not exist"));
        }
        if x.centroid.len() != width {
            return Err(format!(
                "anchor {j} has {} values, expected {width}",
                x.centroid.len()
            ));
        }
    }
    if a.center
        .iter()
        .chain(a.anchors.iter().flat_map(|x| &x.centroid))
        .any(|v| !v.is_finite())
    {
        return Err("the anchors hold non-finite values".into());
    }
    Ok(())
}
