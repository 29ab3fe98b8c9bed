//! Hook sites and hook points: where in the decoder an activation is read or written.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

use crate::TypesError;

/// A place inside a decoder block where activations can be captured or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    /// Input of block L (the residual stream before the block), `[batch, seq, width]`.
    ResidPre,
    /// Output of block L (the residual stream after the block), `[batch, seq, width]`.
    /// The default steering site (llama.cpp's `direction.L`).
    ResidPost,
    /// Per-head attention output before the output projection,
    /// `[batch, seq, heads, head_dim]`, flattened to `heads · head_dim` in vectors.
    AttnHeads,
    /// Output of the attention block (after the output projection), written into the residual.
    AttnOut,
    /// Output of the MLP, written into the residual.
    MlpOut,
}

impl Site {
    /// All sites, in the order they occur inside a block.
    pub const ALL: [Site; 5] = [
        Site::ResidPre,
        Site::AttnHeads,
        Site::AttnOut,
        Site::MlpOut,
        Site::ResidPost,
    ];

    /// The snake-case name used in hook-point names and artifacts.
    pub fn name(self) -> &'static str {
        match self {
            Site::ResidPre => "resid_pre",
            Site::ResidPost => "resid_post",
            Site::AttnHeads => "attn_heads",
            Site::AttnOut => "attn_out",
            Site::MlpOut => "mlp_out",
        }
    }

    /// Order of the site inside one block (resid_pre first, resid_post last); used to
    /// decide whether one hook point runs before another in the forward pass.
    pub fn order_in_block(self) -> usize {
        match self {
            Site::ResidPre => 0,
            Site::AttnHeads => 1,
            Site::AttnOut => 2,
            Site::MlpOut => 3,
            Site::ResidPost => 4,
        }
    }

    /// Hook point of this site at block `layer`.
    pub fn at(self, layer: usize) -> HookPoint {
        HookPoint { site: self, layer }
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Site {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "resid_pre" => Site::ResidPre,
            "resid_post" => Site::ResidPost,
            "attn_heads" => Site::AttnHeads,
            "attn_out" => Site::AttnOut,
            "mlp_out" => Site::MlpOut,
            other => return Err(TypesError::UnknownSite(other.to_string())),
        })
    }
}

impl Serialize for Site {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Site {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A site at one block: `blocks.12.resid_post`, also written `resid_post(12)`.
/// Layers are 0-based block indices everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HookPoint {
    /// Which site of the block.
    pub site: Site,
    /// 0-based block index.
    pub layer: usize,
}

impl HookPoint {
    /// `resid_pre(layer)`: input of block `layer`.
    pub fn resid_pre(layer: usize) -> Self {
        Site::ResidPre.at(layer)
    }
    /// `resid_post(layer)`: output of block `layer`.
    pub fn resid_post(layer: usize) -> Self {
        Site::ResidPost.at(layer)
    }
    /// `attn_heads(layer)`: per-head attention output before the output projection.
    pub fn attn_heads(layer: usize) -> Self {
        Site::AttnHeads.at(layer)
    }
    /// `attn_out(layer)`: attention output written into the residual stream.
    pub fn attn_out(layer: usize) -> Self {
        Site::AttnOut.at(layer)
    }
    /// `mlp_out(layer)`: MLP output written into the residual stream.
    pub fn mlp_out(layer: usize) -> Self {
        Site::MlpOut.at(layer)
    }

    /// A total order on hook points that follows the forward pass: `a.precedes(b)`
    /// when `a` is computed strictly before `b`. `resid_post(L)` and `resid_pre(L+1)`
    /// hold the same value but `resid_post(L)` runs first.
    pub fn execution_index(&self) -> usize {
        self.layer * 5 + self.site.order_in_block()
    }

    /// Whether this hook point is computed strictly before `other` in a forward pass.
    pub fn precedes(&self, other: &HookPoint) -> bool {
        self.execution_index() < other.execution_index()
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blocks.{}.{}", self.layer, self.site)
    }
}

impl FromStr for HookPoint {
    type Err = TypesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TypesError::InvalidHookPoint(s.to_string());
        if let Some(rest) = s.strip_prefix("blocks.") {
            let (layer, site) = rest.split_once('.').ok_or_else(bad)?;
            let layer = layer.parse::<usize>().map_err(|_| bad())?;
            let site = site.parse::<Site>().map_err(|_| bad())?;
            return Ok(HookPoint { site, layer });
        }
        if let Some(inner) = s.strip_suffix(')') {
            let (site, layer) = inner.split_once('(').ok_or_else(bad)?;
            let layer = layer.trim().parse::<usize>().map_err(|_| bad())?;
            let site = site.trim().parse::<Site>().map_err(|_| bad())?;
            return Ok(HookPoint { site, layer });
        }
        Err(bad())
    }
}

impl Serialize for HookPoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HookPoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_both_spellings() {
        for site in Site::ALL {
            let p = site.at(7);
            let name = p.to_string();
            assert_eq!(name.parse::<HookPoint>().unwrap(), p);
            let alt = format!("{}(7)", site.name());
            assert_eq!(alt.parse::<HookPoint>().unwrap(), p);
        }
        assert_eq!(
            HookPoint::resid_post(12).to_string(),
            "blocks.12.resid_post"
        );
    }

    #[test]
    fn bad_names_are_errors() {
        for bad in [
            "",
            "blocks.x.resid_post",
            "blocks.3.nope",
            "resid_post(",
            "foo(3)",
            "blocks.3",
        ] {
            assert!(bad.parse::<HookPoint>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn execution_order_follows_the_forward_pass() {
        assert!(HookPoint::resid_pre(3).precedes(&HookPoint::attn_heads(3)));
        assert!(HookPoint::attn_heads(3).precedes(&HookPoint::attn_out(3)));
        assert!(HookPoint::mlp_out(3).precedes(&HookPoint::resid_post(3)));
        assert!(HookPoint::resid_post(3).precedes(&HookPoint::resid_pre(4)));
        assert!(!HookPoint::resid_post(4).precedes(&HookPoint::resid_post(4)));
    }

    #[test]
    fn serde_uses_path_names() {
        let json = serde_json::to_string(&HookPoint::attn_heads(2)).unwrap();
        assert_eq!(json, "\"blocks.2.attn_heads\"");
        let back: HookPoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, HookPoint::attn_heads(2));
        assert!(serde_json::from_str::<HookPoint>("\"blocks.2.nothing\"").is_err());
    }
}
