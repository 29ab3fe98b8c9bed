//! The simple-questions capability set on the embedded model: it must be a set the
//! unsteered model answers well above chance (≥ 60% right), or it could not show
//! the damage a repair does; and the same question gives the same verdict twice.

use crate::common;

use masteer_core::eval::simple_qa::{answered, bundled, replies};
use masteer_core::eval::Steering;

#[test]
fn the_unsteered_model_answers_most_simple_questions() {
    let lm = common::model();
    let questions = bundled(190).unwrap();
    assert_eq!(questions.len(), 190);
    let texts = replies(lm, &questions, Steering::None, 24, 16).unwrap();
    let right: Vec<bool> = questions
        .iter()
        .zip(&texts)
        .map(|(q, r)| q.is_answered_by(r))
        .collect();
    if std::env::var_os("MASTEER_SHOW_REPLIES").is_some() {
        for ((q, r), ok) in questions.iter().zip(&texts).zip(&right) {
            eprintln!(
                "{} {} => {r:?}",
                if *ok { "ok " } else { "BAD" },
                q.question
            );
        }
    }
    let acc = right.iter().filter(|b| **b).count() as f64 / right.len() as f64;
    for cat in ["capital", "fact", "language"] {
        let (n, k) = questions
            .iter()
            .zip(&right)
            .filter(|(q, _)| q.category == cat)
            .fold((0, 0), |(n, k), (_, r)| (n + 1, k + *r as usize));
        eprintln!("{cat}: {k} of {n} right");
    }
    eprintln!("simple questions: {acc:.3} right");
    assert!(
        acc >= 0.6,
        "unsteered accuracy {acc:.3} is too low to show damage"
    );
    // Deterministic: the first 16 again, in a batch of a different size.
    let again = answered(lm, &questions[..16], Steering::None, 24, 5).unwrap();
    assert_eq!(again, right[..16].to_vec());
}
