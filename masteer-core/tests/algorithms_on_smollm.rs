//! The algorithm library on real SmolLM2 activations of a CAA generate set, read at
//! the A/B answer. Prints per-layer held-out pair-ordering accuracy of every algorithm
//! and checks the best layer of each is well above chance.
//!
//! The behaviour is CAA's `hallucination`: on SmolLM2-135M, CAA `sycophancy` is not
//! linearly separable at the answer (held-out accuracy 0.55–0.68 for every algorithm
//! at its best layer, with 100 to 300 training pairs, at the letter or after it,
//! measured while writing this test), so it cannot show whether an algorithm works.

use crate::common;

use masteer_core::activation_reading::{answer_groups, contrast_split};
use masteer_core::algorithms::{
    rank_layers, AlgorithmLibrary, ContrastActivations, GroupProjection,
};
use masteer_core::datagen::Split;
use masteer_core::HookPoint;

#[test]
fn every_builtin_separates_hallucination_pairs_on_held_out_data() {
    let lm = common::model();
    let set = common::hallucination_set(120, "caa/hallucination", 1);
    let points: Vec<HookPoint> = (0..30)
        .flat_map(|l| [HookPoint::resid_post(l), HookPoint::attn_heads(l)])
        .collect();
    let started = std::time::Instant::now();
    let train = contrast_split(lm, &set.of(Split::Train), &points, 8).unwrap();
    let val = contrast_split(lm, &set.of(Split::Validation), &points, 8).unwrap();
    eprintln!(
        "activations of {} pairs in {:.1} s",
        set.len(),
        started.elapsed().as_secs_f32()
    );
    let mut acts = ContrastActivations::new(train)
        .with_validation(val)
        .with_heads(9);
    // The letters themselves (A vs B) are a nuisance axis: remove it (estimated on train).
    GroupProjection::remove_from(&mut acts, &answer_groups(&set.of(Split::Train))).unwrap();
    let started = std::time::Instant::now();
    let outcomes = AlgorithmLibrary::default().fit_all(&acts);
    eprintln!(
        "fitted {} algorithms in {:.2} s",
        outcomes.len(),
        started.elapsed().as_secs_f32()
    );
    for o in outcomes {
        let v = o.result.unwrap_or_else(|e| panic!("{}: {e}", o.name));
        let per_layer: Vec<String> = v
            .layers
            .iter()
            .map(|(l, lv)| {
                format!(
                    "{l}:{:.2}",
                    lv.diagnostics.pair_accuracy.unwrap_or(f32::NAN)
                )
            })
            .collect();
        eprintln!(
            "{:>16} held-out pair accuracy by layer: {}",
            o.name,
            per_layer.join(" ")
        );
        let best = rank_layers(&v)[0];
        eprintln!(
            "{:>16} best layer {} (accuracy {:.2}, separation {:.2})",
            o.name, best.0, best.1, best.2
        );
        assert!(
            best.1 >= 0.75,
            "{}: best held-out pair accuracy {:.2}",
            o.name,
            best.1
        );
    }
}

/// Reading free-text answers as the mean over their tokens gives, for each side, the
/// average of that answer's own activations (checked against a capture of every
/// position of the sequence run alone).
#[test]
fn mean_reading_averages_the_answer_tokens() {
    use masteer_core::activation_reading::{contrast_split_read, AnswerReading};
    use masteer_core::datagen::{SampleKind, SteerSample};
    use masteer_core::models::CaptureSpec;
    use masteer_core::{Hooks, Positions, SeqInput};
    let lm = common::model();
    let s = SteerSample::new(
        "premise/0",
        "Assuming that the Great Lakes are soup, what is in them?",
        "That assumption is incorrect: the Great Lakes are lakes of fresh water.",
        "They are full of carrots.",
        SampleKind::FreeText,
    );
    let point = HookPoint::resid_post(12);
    let split = contrast_split_read(lm, &[&s], &[point], 4, AnswerReading::Mean).unwrap();
    let rows = &split.points[&point];
    for (answer, got) in [
        (&s.positive, rows.positive.row(0)),
        (&s.negative, rows.negative.row(0)),
    ] {
        let prompt = lm.encode_chat(&s.prompt).unwrap();
        let mut tokens = prompt.clone();
        tokens.extend(lm.tokenizer.encode(answer).unwrap());
        let mut hooks = Hooks::capture(CaptureSpec::new(vec![point], Positions::All));
        masteer_core::models::Session::prefill(
            &lm.model,
            vec![SeqInput::prompt(tokens.clone())],
            0,
            &mut hooks,
        )
        .unwrap();
        let all = hooks.captures.require(point).unwrap();
        let n = (tokens.len() - prompt.len()) as f32;
        for j in 0..all.ncols() {
            let want: f32 = (prompt.len()..tokens.len())
                .map(|r| all[[r, j]])
                .sum::<f32>()
                / n;
            assert!(
                (got[j] - want).abs() <= 1e-3 * (1.0 + want.abs()),
                "dim {j}: {} vs {want}",
                got[j]
            );
        }
    }
    // The two readings differ (the last token is not the mean).
    let last = contrast_split_read(lm, &[&s], &[point], 4, AnswerReading::LastToken).unwrap();
    assert_ne!(last.points[&point].positive, rows.positive);
}
