//! The bundled neutral material (`data/neutral/`, written for this project): everyday
//! requests unrelated to any trustworthiness issue, one per line, and a passage of
//! encyclopedic prose on everyday topics. They measure what steering does where it
//! should change nothing: divergence from the unsteered model, replies left unchanged,
//! the share of inputs a router steers, perplexity.

use std::path::Path;

use crate::error::{DatagenError, Result};
use crate::sample::{SampleKind, SteerSample};

/// The neutral prompts of `path` (one per line, blank lines skipped) as prompt-only
/// samples (no answers; `trigger = Some(false)`), named `neutral/{line index}`.
pub fn load_prompts(path: &Path) -> Result<Vec<SteerSample>> {
    let text = std::fs::read_to_string(path).map_err(|e| DatagenError::io("reading", path, e))?;
    let out: Vec<SteerSample> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            let mut s = SteerSample::new(format!("neutral/{i}"), l, "", "", SampleKind::FreeText);
            s.provenance.source = "neutral".into();
            s.trigger = Some(false);
            s
        })
        .collect();
    if out.is_empty() {
        return Err(DatagenError::InvalidSet(format!(
            "{}: no neutral prompts",
            path.display()
        )));
    }
    Ok(out)
}

/// The neutral passage of `path`, whitespace kept as written.
pub fn load_text(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| DatagenError::io("reading", path, e))?;
    if text.trim().is_empty() {
        return Err(DatagenError::InvalidSet(format!(
            "{}: the neutral text is empty",
            path.display()
        )));
    }
    Ok(text)
}

/// The bundled neutral prompts.
pub fn bundled_prompts() -> Result<Vec<SteerSample>> {
    load_prompts(&crate::corpora::data_dir().join("neutral/neutral_prompts.txt"))
}

/// The bundled neutral passage.
pub fn bundled_text() -> Result<String> {
    load_text(&crate::corpora::data_dir().join("neutral/neutral_text.txt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_neutral_material_loads() {
        let p = bundled_prompts().unwrap();
        assert!(p.len() >= 190, "{}", p.len());
        let mut texts: Vec<String> = p.iter().map(|s| s.prompt_text()).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), p.len(), "neutral prompts are distinct");
        let t = bundled_text().unwrap();
        assert!(t.split_whitespace().count() >= 1500);
    }

    #[test]
    fn empty_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        std::fs::write(&f, "\n  \n").unwrap();
        assert!(load_prompts(&f).is_err());
        assert!(load_text(&f).is_err());
        assert!(load_prompts(&dir.path().join("missing.txt")).is_err());
    }
}
