//! Free-text false-premise pairs: a question that presupposes something (CAA's
//! hallucination items in free form — "Assuming that the Great Lakes are bowls of soup
//! made by Paul Bunyan, …" — and RepE's statements put as premises); the wanted answer
//! rejects a false premise and answers a question whose premise is true.
//!
//! Trigger side (`trigger = Some(true)`, the reply must reject the premise): CAA's
//! fabricated premises (every second item, so that they are about half the side) and
//! RepE's false statements as premises. Control side (`Some(false)`, the reply must
//! answer): RepE's true statements in the same premise phrasings, so that the phrasing
//! alone does not tell the sides apart.

use crate::formats::caa::{free_form, CaaItem};
use crate::formats::claims::lower_first;
use crate::formats::repe::Fact;
use crate::sample::SteerSample;

/// The ways a premise is put to the assistant; `{}` is the statement (first letter
/// lowered, final period dropped). The same openings as CAA's hallucination items.
pub const PREMISE_PHRASINGS: [&str; 3] = [
    "Assuming that {}, what follows from this?",
    "Considering that {}, can you explain why that is the case?",
    "Recalling our earlier conversation where you mentioned that {}, could you tell me more about it?",
];

/// The question of phrasing `k` (modulo the number of phrasings) presupposing
/// `statement`.
pub fn premise_prompt(statement: &str, k: usize) -> String {
    let s = statement.trim().trim_end_matches('.');
    PREMISE_PHRASINGS[k % PREMISE_PHRASINGS.len()].replace("{}", &lower_first(s))
}

/// The answer that rejects the premise `statement`.
pub fn rejection(statement: &str) -> String {
    let s = statement.trim().trim_end_matches('.');
    format!(
        "That assumption is incorrect: it is not true that {}.",
        lower_first(s)
    )
}

/// The answer that goes along with the premise `statement`.
pub fn acceptance(statement: &str) -> String {
    let s = statement.trim().trim_end_matches('.');
    format!("Indeed, {}. Here is why.", lower_first(s))
}

/// The bundled false-premise pairs: every second CAA hallucination item (fabricated
/// premise, wanted answer its rejection), then RepE's statements as premises (false:
/// trigger; true: control). Ids are `{source}/caa/{i}` and `{source}/repe/{i}`.
pub fn premise_pairs(hallucination: &[CaaItem], facts: &[Fact], source: &str) -> Vec<SteerSample> {
    let mut out = Vec::new();
    for (i, item) in hallucination.iter().enumerate().step_by(2) {
        let Some((stem, hallucinated, rejecting)) = free_form(item) else {
            continue;
        };
        let s = SteerSample::free_text_pair(
            format!("{source}/caa/{i}"),
            stem,
            rejecting,
            hallucinated,
            source,
            true,
        );
        out.push(s);
    }
    for (i, f) in facts.iter().enumerate() {
        let (pos, neg) = if f.true_ {
            (acceptance(&f.statement), rejection(&f.statement))
        } else {
            (rejection(&f.statement), acceptance(&f.statement))
        };
        let s = SteerSample::free_text_pair(
            format!("{source}/repe/{i}"),
            premise_prompt(&f.statement, i),
            pos,
            neg,
            source,
            !f.true_,
        );
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpora::{caa_generate, data_dir};
    use crate::formats::{caa, repe};

    #[test]
    fn caa_items_become_free_form_questions_with_the_rejection_wanted() {
        let items = caa::load(&caa_generate("hallucination")).unwrap();
        let facts = repe::load(&data_dir().join("repe_facts/facts_true_false.csv")).unwrap();
        let pairs = premise_pairs(&items, &facts, "premises");
        let caa_pairs: Vec<_> = pairs.iter().filter(|s| s.id.contains("/caa/")).collect();
        assert_eq!(caa_pairs.len(), items.len().div_ceil(2));
        // Hand-read item 0: "Assuming that tax evasion is a fun game …"; the matching
        // (hallucinating) answer is (B), the rejection (A) is wanted.
        let first = caa_pairs[0];
        assert!(first
            .prompt_text()
            .starts_with("Assuming that tax evasion is a fun game"));
        assert!(!first.prompt_text().contains("Choices"));
        assert!(first.positive.starts_with("That assumption is incorrect."));
        assert!(first.negative.starts_with("In the game of tax evasion"));
        assert_eq!(first.trigger, Some(true));
        // RepE premises: false statements are triggers, true ones controls.
        let n_true = facts.iter().filter(|f| f.true_).count();
        let controls = pairs.iter().filter(|s| s.trigger == Some(false)).count();
        assert_eq!(controls, n_true);
        for s in pairs.iter().filter(|s| s.id.contains("/repe/")) {
            assert_ne!(s.positive, s.negative);
            let rejects = s.positive.starts_with("That assumption is incorrect");
            assert_eq!(rejects, s.trigger == Some(true));
        }
    }

    #[test]
    fn premises_read_naturally() {
        assert_eq!(
            premise_prompt("The sun is a star.", 0),
            "Assuming that the sun is a star, what follows from this?"
        );
        assert_eq!(
            rejection("NASA is in Canada."),
            "That assumption is incorrect: it is not true that NASA is in Canada."
        );
    }
}
