//! `StrategyLibrary`: the repair a pipeline produces — strategies of one or more
//! issues, the anchors that choose among them, and the model they were made for — and
//! its artifact on disk: `manifest.json` plus `tensors.safetensors`, written atomically.

use std::collections::HashMap;
use std::path::Path;

use masteer_algorithms::{LayerDiagnostics, LayerVector, Selection, SteeringVector};
use masteer_anchor::{Anchor, AnchorSet, CalibrationReport, MatchMode};
use masteer_types::{HookPoint, Operation, Positions, Site};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::fingerprint::ModelFingerprint;
use crate::router::Router;
use crate::strategy::Strategy;

/// Version of the artifact layout this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// Manifest file name inside an artifact directory.
pub const MANIFEST: &str = "manifest.json";
/// Tensor file name inside an artifact directory.
pub const TENSORS: &str = "tensors.safetensors";

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
#[derive(Clone, Debug, PartialEq)]
pub struct StrategyLibrary {
    /// The model the vectors were fitted on.
    pub fingerprint: ModelFingerprint,
    /// Issues repaired.
    pub issues: Vec<IssueRecord>,
    /// Strategies (their order indexes the anchors' decisions).
    pub strategies: Vec<Strategy>,
    /// What chooses a strategy (or none) per input: calibrated anchors or a condition
    /// gate; `None` until one is calibrated.
    pub router: Option<Router>,
    /// Seed of the run that produced the library.
    pub seed: u64,
    /// The held-out samples the anchors were calibrated on (kept so that adding an
    /// issue or an algorithm can recalibrate across every strategy).
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

#[derive(Serialize, Deserialize)]
struct LayerEntry {
    layer: usize,
    scale: f32,
    tensor: String,
    diagnostics: LayerDiagnostics,
}

#[derive(Serialize, Deserialize)]
struct StrategyEntry {
    name: String,
    issue: String,
    algorithm: String,
    site: Site,
    operation: Operation,
    positions: Positions,
    coefficient: f32,
    default_coefficient: f32,
    layers: Vec<LayerEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    selection: Option<Selection>,
}

#[derive(Serialize, Deserialize)]
struct AnchorEntry {
    strategy: Option<usize>,
    members: usize,
    tensor: String,
}

#[derive(Serialize, Deserialize)]
struct AnchorsEntry {
    point: HookPoint,
    strategies: Vec<String>,
    mode: MatchMode,
    center_tensor: String,
    anchors: Vec<AnchorEntry>,
    report: CalibrationReport,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    schema_version: u32,
    crate_version: String,
    model: ModelFingerprint,
    seed: u64,
    issues: Vec<IssueRecord>,
    strategies: Vec<StrategyEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anchors: Option<AnchorsEntry>,
    #[serde(default)]
    calibration: Vec<CalibrationItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gate: Option<crate::adaptive::GateRouter>,
}

fn artifact_err(path: &Path, message: impl Into<String>) -> CoreError {
    CoreError::Artifact {
        path: path.display().to_string(),
        message: message.into(),
    }
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

    fn to_manifest(&self) -> (Manifest, Vec<(String, Vec<f32>)>) {
        let mut tensors = Vec::new();
        let strategies = self
            .strategies
            .iter()
            .enumerate()
            .map(|(i, s)| StrategyEntry {
                name: s.name.clone(),
                issue: s.issue.clone(),
                algorithm: s.vector.algorithm.clone(),
                site: s.vector.site,
                operation: s.vector.operation,
                positions: s.vector.positions,
                coefficient: s.coefficient,
                default_coefficient: s.vector.default_coefficient,
                layers: s
                    .vector
                    .layers
                    .iter()
                    .map(|(&l, lv)| {
                        let name = format!("strategy.{i}.layer.{l}");
                        tensors.push((name.clone(), lv.direction.clone()));
                        LayerEntry {
                            layer: l,
                            scale: lv.scale,
                            tensor: name,
                            diagnostics: lv.diagnostics.clone(),
                        }
                    })
                    .collect(),
                selection: s.selection.clone(),
            })
            .collect();
        let anchors = match &self.router {
            Some(Router::Anchors { point, anchors: a }) => {
                let point = *point;
                tensors.push(("anchors.center".into(), a.center.clone()));
                Some(AnchorsEntry {
                    point,
                    strategies: a.strategies.clone(),
                    mode: a.mode,
                    center_tensor: "anchors.center".into(),
                    anchors: a
                        .anchors
                        .iter()
                        .enumerate()
                        .map(|(j, x)| {
                            let name = format!("anchors.{j}");
                            tensors.push((name.clone(), x.centroid.clone()));
                            AnchorEntry {
                                strategy: x.strategy,
                                members: x.members,
                                tensor: name,
                            }
                        })
                        .collect(),
                    report: a.report.clone(),
                })
            }
            _ => None,
        };
        (
            Manifest {
                schema_version: SCHEMA_VERSION,
                crate_version: env!("CARGO_PKG_VERSION").to_string(),
                model: self.fingerprint.clone(),
                seed: self.seed,
                issues: self.issues.clone(),
                strategies,
                anchors,
                calibration: self.calibration.clone(),
                gate: self.gate().cloned(),
            },
            tensors,
        )
    }

    /// Write the artifact directory `dir` atomically: everything is written to a
    /// temporary directory beside it, synced, and swapped into place in one step
    /// ([`masteer_types::fsutil::replace_dir`]), so `dir` holds the previous artifact or
    /// the new one whenever the process stops.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let (manifest, tensors) = self.to_manifest();
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| CoreError::io("creating", &parent, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".masteer-tmp-")
            .tempdir_in(&parent)
            .map_err(|e| CoreError::io("creating a temporary directory in", &parent, e))?;
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| artifact_err(dir, format!("cannot encode the manifest: {e}")))?;
        let bytes: Vec<(String, Vec<u8>, usize)> = tensors
            .iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    v.len(),
                )
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(n, b, len)| {
                TensorView::new(Dtype::F32, vec![*len], b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| artifact_err(dir, e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let st =
            safetensors::serialize(views, None).map_err(|e| artifact_err(dir, e.to_string()))?;
        masteer_types::fsutil::write_bytes_atomic(&tmp.path().join(TENSORS), &st)?;
        masteer_types::fsutil::write_bytes_atomic(&tmp.path().join(MANIFEST), &json)?;
        let tmp_path = tmp.keep();
        masteer_types::fsutil::replace_dir(&tmp_path, dir)?;
        Ok(())
    }

    /// Read an artifact directory.
    pub fn load(dir: &Path) -> Result<Self> {
        let mpath = dir.join(MANIFEST);
        let text = std::fs::read(&mpath).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => artifact_err(
                dir,
                format!(
                    "no {MANIFEST}: not an artifact directory, or one whose write did not finish"
                ),
            ),
            _ => CoreError::io("reading", &mpath, e),
        })?;
        let probe: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| artifact_err(dir, format!("{MANIFEST} is not valid JSON: {e}")))?;
        match probe.get("schema_version").and_then(|v| v.as_u64()) {
            Some(v) if v == SCHEMA_VERSION as u64 => {}
            Some(v) => {
                return Err(artifact_err(
                    dir,
                    format!("unknown schema version {v}: this build of masteer-core reads version {SCHEMA_VERSION}"),
                ))
            }
            None => return Err(artifact_err(dir, "manifest has no schema_version")),
        }
        let m: Manifest = serde_json::from_value(probe)
            .map_err(|e| artifact_err(dir, format!("malformed manifest: {e}")))?;
        let tpath = dir.join(TENSORS);
        let bytes = std::fs::read(&tpath).map_err(|e| CoreError::io("reading", &tpath, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| artifact_err(dir, format!("{TENSORS}: {e}")))?;
        let mut cache: HashMap<String, Vec<f32>> = HashMap::new();
        let mut tensor = |name: &str, width: Option<usize>| -> Result<Vec<f32>> {
            if let Some(v) = cache.get(name) {
                return Ok(v.clone());
            }
            let view = st
                .tensor(name)
                .map_err(|_| artifact_err(dir, format!("missing tensor `{name}`")))?;
            if view.dtype() != Dtype::F32 || view.shape().len() != 1 {
                return Err(artifact_err(
                    dir,
                    format!("tensor `{name}` is not a 1-D F32 tensor"),
                ));
            }
            let v: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if let Some(w) = width {
                if v.len() != w {
                    return Err(artifact_err(
                        dir,
                        format!("tensor `{name}` has {} values, expected {w}", v.len()),
                    ));
                }
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(artifact_err(
                    dir,
                    format!("tensor `{name}` holds non-finite values"),
                ));
            }
            cache.insert(name.to_string(), v.clone());
            Ok(v)
        };
        let site_width = |site: Site| match site {
            Site::AttnHeads => m.model.heads * m.model.head_dim,
            _ => m.model.width,
        };
        let mut strategies = Vec::with_capacity(m.strategies.len());
        for e in &m.strategies {
            let mut layers = std::collections::BTreeMap::new();
            for l in &e.layers {
                if l.layer >= m.model.layers {
                    return Err(artifact_err(
                        dir,
                        format!(
                            "strategy `{}` steers layer {} of a {}-layer model",
                            e.name, l.layer, m.model.layers
                        ),
                    ));
                }
                layers.insert(
                    l.layer,
                    LayerVector {
                        direction: tensor(&l.tensor, Some(site_width(e.site)))?,
                        scale: l.scale,
                        diagnostics: l.diagnostics.clone(),
                    },
                );
            }
            strategies.push(Strategy {
                name: e.name.clone(),
                issue: e.issue.clone(),
                vector: SteeringVector {
                    algorithm: e.algorithm.clone(),
                    site: e.site,
                    operation: e.operation,
                    positions: e.positions,
                    default_coefficient: e.default_coefficient,
                    layers,
                },
                coefficient: e.coefficient,
                selection: e.selection.clone(),
            });
        }
        let anchors = match &m.anchors {
            Some(a) => {
                let center = tensor(&a.center_tensor, Some(m.model.width))?;
                let mut list = Vec::with_capacity(a.anchors.len());
                for x in &a.anchors {
                    if x.strategy.is_some_and(|k| k >= a.strategies.len()) {
                        return Err(artifact_err(
                            dir,
                            format!("anchor `{}` names a strategy that does not exist", x.tensor),
                        ));
                    }
                    list.push(Anchor {
                        strategy: x.strategy,
                        centroid: tensor(&x.tensor, Some(center.len()))?,
                        members: x.members,
                    });
                }
                Some(Router::Anchors {
                    point: a.point,
                    anchors: AnchorSet {
                        strategies: a.strategies.clone(),
                        center,
                        anchors: list,
                        mode: a.mode,
                        report: a.report.clone(),
                    },
                })
            }
            None => None,
        };
        if let Some(g) = &m.gate {
            if g.gate.width() != m.model.width
                || g.gate.mean.len() != g.gate.width()
                || g.gate.inv_std.len() != g.gate.width()
            {
                return Err(artifact_err(
                    dir,
                    format!(
                        "the gate reads width {}, the model's width is {}",
                        g.gate.width(),
                        m.model.width
                    ),
                ));
            }
            if !strategies.iter().any(|s| s.name == g.strategy) {
                return Err(artifact_err(
                    dir,
                    format!(
                        "the gate routes to `{}`, which is not in the library",
                        g.strategy
                    ),
                ));
            }
            if g.point.layer >= m.model.layers {
                return Err(artifact_err(
                    dir,
                    format!(
                        "the gate reads {} of a {}-layer model",
                        g.point, m.model.layers
                    ),
                ));
            }
            let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
            if !(finite(&g.gate.weights)
                && finite(&g.gate.mean)
                && finite(&g.gate.inv_std)
                && g.gate.bias.is_finite()
                && g.gate.threshold.is_finite())
            {
                return Err(artifact_err(dir, "the gate holds non-finite values"));
            }
        }
        // A gate decides instead of anchors when an artifact holds both.
        let router = m.gate.map(Router::Gate).or(anchors);
        if let Some(r) = &router {
            r.check(&strategies)
                .map_err(|e| artifact_err(dir, e.to_string()))?;
        }
        Ok(StrategyLibrary {
            fingerprint: m.model,
            issues: m.issues,
            strategies,
            router,
            seed: m.seed,
            calibration: m.calibration,
        })
    }

    /// Read an artifact and check it was made for `model`; the error lists what differs.
    pub fn load_for(dir: &Path, model: &ModelFingerprint) -> Result<Self> {
        let lib = Self::load(dir)?;
        lib.fingerprint.check_matches(model)?;
        Ok(lib)
    }
}
