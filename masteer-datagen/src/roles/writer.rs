//! The writer role: contrast pairs — the same prompt with a wanted and an unwanted
//! answer — in A/B form (both options in the prompt, answers `(A)`/`(B)`, letters
//! balanced) and in free-text form, from LLM drafts and from retrieved seeds.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::generator::TextGenerator;
use crate::pipeline::DatagenConfig;
use crate::prompts::{fill, first_sentence};
use crate::roles::analyst::Analysis;
use crate::sample::{Provenance, SampleKind, SteerSample};
use masteer_types::ChatMessage;
use masteer_types::GenerateOptions;

/// A user message with a good and a bad reply, before it becomes a sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The user's message.
    pub user: String,
    /// The wanted reply.
    pub good: String,
    /// The unwanted reply.
    pub bad: String,
}

/// Ask the generator for one draft: a user message for a scenario (with an example
/// from a retrieved seed), then a reply showing the good behaviour and one showing the
/// bad behaviour — three short, single-field requests, which a small model follows far
/// more reliably than one structured request. `None` when a reply is unusable.
pub fn draft(
    generator: &dyn TextGenerator,
    config: &DatagenConfig,
    analysis: &Analysis,
    scenario: &str,
    example: &str,
    seed: u64,
    calls: &mut usize,
) -> Result<Option<Draft>> {
    let (prompts, sampling) = (&config.prompts, &config.sampling);
    let ask = |prompt: String, seed: u64, calls: &mut usize| -> Result<String> {
        *calls += 1;
        generator.generate(
            &[ChatMessage::user(prompt)],
            // One sentence each (user message, good reply, bad reply) fits in 48 tokens.
            &GenerateOptions::sampled(48, sampling.temperature, sampling.top_p, seed),
        )
    };
    let user_reply = ask(
        fill(
            &prompts.writer,
            &[("scenario", scenario), ("example", example)],
        ),
        seed,
        calls,
    )?;
    let Some(user) = first_sentence(&user_reply, 240) else {
        tracing::debug!(reply = %user_reply, "writer: no usable user message");
        return Ok(None);
    };
    let behaviour = |b: &str| {
        let b = b.trim().trim_end_matches('.');
        let b = b
            .strip_prefix("The assistant ")
            .or_else(|| b.strip_prefix("the assistant "))
            .unwrap_or(b);
        format!(
            "{}.",
            b.chars()
                .next()
                .map(|c| c.to_lowercase().collect::<String>())
                .unwrap_or_default()
                + &b.chars().skip(1).collect::<String>()
        )
    };
    let good_reply = ask(
        fill(
            &prompts.reply,
            &[("user", &user), ("behaviour", &behaviour(&analysis.good))],
        ),
        seed ^ 1,
        calls,
    )?;
    let bad_reply = ask(
        fill(
            &prompts.reply,
            &[("user", &user), ("behaviour", &behaviour(&analysis.bad))],
        ),
        seed ^ 2,
        calls,
    )?;
    Ok(
        match (
            first_sentence(&good_reply, 240),
            first_sentence(&bad_reply, 240),
        ) {
            (Some(good), Some(bad)) if good != bad => Some(Draft { user, good, bad }),
            _ => {
                tracing::debug!(good = %good_reply, bad = %bad_reply, "writer: replies unusable");
                None
            }
        },
    )
}

/// An A/B sample from a draft, the wanted reply under `positive_letter` (`'A'` or `'B'`).
pub fn ab_sample(
    id: String,
    d: &Draft,
    positive_letter: char,
    provenance: Provenance,
) -> SteerSample {
    let (a, b) = if positive_letter == 'A' {
        (&d.good, &d.bad)
    } else {
        (&d.bad, &d.good)
    };
    let question = format!(
        "{}\n\nChoices:\n (A) {}\n (B) {}",
        d.user.trim(),
        a.trim(),
        b.trim()
    );
    let (pos, neg) = if positive_letter == 'A' {
        ("(A)", "(B)")
    } else {
        ("(B)", "(A)")
    };
    let mut s = SteerSample::new(id, question, pos, neg, SampleKind::AbChoice);
    s.provenance = provenance;
    s
}

/// A free-text sample from a draft.
pub fn free_sample(id: String, d: &Draft, provenance: Provenance) -> SteerSample {
    let mut s = SteerSample::new(
        id,
        d.user.trim(),
        d.good.trim(),
        d.bad.trim(),
        SampleKind::FreeText,
    );
    s.provenance = provenance;
    s
}

/// Swap the two options of an A/B question written as lines `(A) ...` and `(B) ...`
/// (CAA's layout) and flip the answers; `None` for another layout.
pub fn swap_options(s: &SteerSample) -> Option<SteerSample> {
    if s.kind != SampleKind::AbChoice || s.prompt.len() != 1 {
        return None;
    }
    let text = &s.prompt[0].content;
    let lines: Vec<&str> = text.lines().collect();
    let find = |tag: &str| lines.iter().rposition(|l| l.trim_start().starts_with(tag));
    let (ia, ib) = (find("(A)")?, find("(B)")?);
    if ia >= ib
        || lines
            .iter()
            .filter(|l| l.trim_start().starts_with("(C)"))
            .count()
            > 0
    {
        return None;
    }
    let body = |l: &str, tag: &str| {
        l.trim_start()
            .strip_prefix(tag)
            .map(|r| r.trim().to_string())
    };
    let (ta, tb) = (body(lines[ia], "(A)")?, body(lines[ib], "(B)")?);
    let indent_a = &lines[ia][..lines[ia].len() - lines[ia].trim_start().len()];
    let indent_b = &lines[ib][..lines[ib].len() - lines[ib].trim_start().len()];
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out[ia] = format!("{indent_a}(A) {tb}");
    out[ib] = format!("{indent_b}(B) {ta}");
    let flip = |a: &str| match SteerSample::letter(a) {
        Some('A') => Some("(B)".to_string()),
        Some('B') => Some("(A)".to_string()),
        _ => None,
    };
    let mut t = s.clone();
    t.prompt[0].content = out.join("\n");
    t.positive = flip(&s.positive)?;
    t.negative = flip(&s.negative)?;
    Some(t)
}

/// Make positive letters of A/B samples balanced (within one) by swapping the options
/// of randomly chosen (seeded) samples of the majority letter.
pub fn balance_letters(samples: &mut [SteerSample], seed: u64) {
    let count = |ss: &[SteerSample], c: char| {
        ss.iter()
            .filter(|s| SteerSample::letter(&s.positive) == Some(c))
            .count()
    };
    let (a, b) = (count(samples, 'A'), count(samples, 'B'));
    let (major, excess) = if a > b {
        ('A', (a - b) / 2)
    } else {
        ('B', (b - a) / 2)
    };
    if excess == 0 {
        return;
    }
    let mut idx: Vec<usize> = (0..samples.len())
        .filter(|&i| SteerSample::letter(&samples[i].positive) == Some(major))
        .collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut done = 0;
    for i in idx {
        if done == excess {
            break;
        }
        if let Some(t) = swap_options(&samples[i]) {
            samples[i] = t;
            done += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swapping_options_flips_answers_and_keeps_layout() {
        let s = SteerSample::new(
            "x",
            "Is it so?\n (A) Yes\n (B) No",
            "(B)",
            "(A)",
            SampleKind::AbChoice,
        );
        let t = swap_options(&s).unwrap();
        assert_eq!(t.prompt[0].content, "Is it so?\n (A) No\n (B) Yes");
        assert_eq!((t.positive.as_str(), t.negative.as_str()), ("(A)", "(B)"));
        assert_eq!(swap_options(&t).unwrap(), s);
    }

    #[test]
    fn balancing_evens_out_letters() {
        let mut v: Vec<SteerSample> = (0..10)
            .map(|i| {
                SteerSample::new(
                    format!("{i}"),
                    format!("Q{i}\n (A) yes\n (B) no"),
                    "(A)",
                    "(B)",
                    SampleKind::AbChoice,
                )
            })
            .collect();
        balance_letters(&mut v, 3);
        let a = v.iter().filter(|s| s.positive == "(A)").count();
        assert_eq!(a, 5);
        let d = Draft {
            user: "I think 2+2=5.".into(),
            good: "No, 2+2=4.".into(),
            bad: "Yes, you are right.".into(),
        };
        let s = ab_sample("d".into(), &d, 'B', Provenance::default());
        assert!(s.prompt[0]
            .content
            .ends_with("(A) Yes, you are right.\n (B) No, 2+2=4."));
        assert_eq!(s.positive, "(B)");
    }
}
