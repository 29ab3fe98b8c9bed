//! `Router`: how a strategy library decides, per input, which strategy steers it —
//! calibrated anchors or a condition gate — with the hook point where it reads and
//! the strategies it routes to, named by their stable ids (strategy names).

use masteer_anchor::{AnchorSet, MatchMode};
use masteer_models::HookPoint;

use crate::adaptive::{AdaptiveDecider, GateDecider, GateRouter, LibraryDecider};
use crate::error::{CoreError, Result};
use crate::strategy::Strategy;

/// The part of a strategy library that chooses a strategy (or none) per input.
#[derive(Clone, Debug, PartialEq)]
pub enum Router {
    /// Cosine matching to anchors calibrated per strategy (the A/B pipeline).
    Anchors {
        /// Where the anchors read (the last prompt token's representation).
        point: HookPoint,
        /// The anchors; their strategy names are the routes.
        anchors: AnchorSet,
    },
    /// A condition gate opening one strategy (generation-grounded repairs).
    Gate(GateRouter),
}

impl Router {
    /// Where the router reads.
    pub fn point(&self) -> HookPoint {
        match self {
            Router::Anchors { point, .. } => *point,
            Router::Gate(g) => g.point,
        }
    }

    /// The names of the strategies it may choose.
    pub fn routes(&self) -> Vec<&str> {
        match self {
            Router::Anchors { anchors, .. } => {
                anchors.strategies.iter().map(String::as_str).collect()
            }
            Router::Gate(g) => vec![g.strategy.as_str()],
        }
    }

    /// The anchors, when the router is anchor matching.
    pub fn anchors(&self) -> Option<&AnchorSet> {
        match self {
            Router::Anchors { anchors, .. } => Some(anchors),
            Router::Gate(_) => None,
        }
    }

    /// The gate, when the router is a condition gate.
    pub fn gate(&self) -> Option<&GateRouter> {
        match self {
            Router::Gate(g) => Some(g),
            Router::Anchors { .. } => None,
        }
    }

    /// The same router with another matching rule for anchors (a gate is unchanged).
    pub fn with_mode(self, mode: MatchMode) -> Self {
        match self {
            Router::Anchors { point, anchors } => Router::Anchors {
                point,
                anchors: anchors.with_mode(mode),
            },
            gate => gate,
        }
    }

    /// Check the router against a library's strategies: every route names a strategy
    /// of the library, and the router reads strictly before every layer they steer.
    pub fn check(&self, strategies: &[Strategy]) -> Result<()> {
        let point = self.point();
        for name in self.routes() {
            let s = strategies.iter().find(|s| s.name == name).ok_or_else(|| {
                CoreError::InvalidInput(format!(
                    "the router routes to `{name}`, which is not in the library"
                ))
            })?;
            if let Some(first) = s.first_point() {
                if first.execution_index() <= point.execution_index() {
                    return Err(CoreError::InvalidInput(format!(
                        "the router reads {point} but `{name}` already steers {first}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The decider that runs this router inside the prefill pass over `strategies`
    /// (checked first): the one place adaptive steering is set up.
    pub fn decider<'a>(&'a self, strategies: &'a [Strategy]) -> Result<LibraryDecider<'a>> {
        self.check(strategies)?;
        Ok(match self {
            Router::Anchors { point, anchors } => {
                LibraryDecider::Anchors(AdaptiveDecider::new(anchors, strategies, *point))
            }
            Router::Gate(g) => LibraryDecider::Gate(GateDecider::new(g, strategies)),
        })
    }
}

/// A library's router in its artifact form: an `anchors` entry (the reading point
/// beside the anchor set's fields) or a `gate` entry. When a file holds both, the gate
/// decides (as it always has).
pub(crate) mod wire {
    use masteer_anchor::AnchorSet;
    use masteer_models::HookPoint;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Router;
    use crate::adaptive::GateRouter;

    #[derive(Serialize)]
    struct AnchorsRef<'a> {
        point: HookPoint,
        #[serde(flatten)]
        anchors: &'a AnchorSet,
    }

    #[derive(Serialize)]
    struct FieldsRef<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        anchors: Option<AnchorsRef<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        gate: Option<&'a GateRouter>,
    }

    #[derive(Deserialize)]
    struct Anchors {
        point: HookPoint,
        #[serde(flatten)]
        anchors: AnchorSet,
    }

    #[derive(Deserialize)]
    struct Fields {
        #[serde(default)]
        anchors: Option<Anchors>,
        #[serde(default)]
        gate: Option<GateRouter>,
    }

    pub fn serialize<S: Serializer>(router: &Option<Router>, s: S) -> Result<S::Ok, S::Error> {
        let fields = match router {
            Some(Router::Anchors { point, anchors }) => FieldsRef {
                anchors: Some(AnchorsRef {
                    point: *point,
                    anchors,
                }),
                gate: None,
            },
            Some(Router::Gate(g)) => FieldsRef {
                anchors: None,
                gate: Some(g),
            },
            None => FieldsRef {
                anchors: None,
                gate: None,
            },
        };
        fields.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Router>, D::Error> {
        let f = Fields::deserialize(d)?;
        Ok(f.gate
            .map(Router::Gate)
            .or(f.anchors.map(|a| Router::Anchors {
                point: a.point,
                anchors: a.anchors,
            })))
    }
}
