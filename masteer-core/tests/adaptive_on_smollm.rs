//! Adaptive steering on the real model: per-sequence decisions inside one prefill pass.

use crate::common;

use std::collections::BTreeMap;

use masteer_core::adaptive::AdaptiveDecider;
use masteer_core::algorithms::{LayerDiagnostics, LayerVector, SteeringVector};
use masteer_core::anchor::{AnchorConfig, AnchorSet, CalibrationSample, CalibrationSet, Decision};
use masteer_core::datagen::{SampleKind, SteerSample};
use masteer_core::representations::representations;
use masteer_core::strategy::{anchor_point, Strategy};
use masteer_core::types::{Operation, Positions, Site};
use masteer_core::{ChatMessage, GenerateOptions, HookPoint, Hooks, SeqInput};

const TOPICS: [(&str, [&str; 4]); 3] = [
    (
        "math",
        [
            "What is 17 times 23?",
            "Is 91 a prime number?",
            "What is the square root of 144?",
            "How much is 2 plus 2?",
        ],
    ),
    (
        "food",
        [
            "How do I bake bread?",
            "What goes well with pasta?",
            "Is chocolate healthy?",
            "How long should I boil an egg?",
        ],
    ),
    (
        "travel",
        [
            "What should I see in Paris?",
            "Is Japan expensive to visit?",
            "How do I pack for a long trip?",
            "When is the best time to visit Spain?",
        ],
    ),
];

fn unit_vector(width: usize, seed: u64, norm: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let v: Vec<f32> = (0..width)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n * norm).collect()
}

fn strategy(name: &str, site: Site, layers: &[usize], seed: u64) -> Strategy {
    let width = 576;
    let layers_map: BTreeMap<usize, LayerVector> = layers
        .iter()
        .map(|&l| {
            (
                l,
                LayerVector {
                    direction: unit_vector(width, seed + l as u64, 1.0),
                    scale: 6.0,
                    diagnostics: LayerDiagnostics::default(),
                },
            )
        })
        .collect();
    let v = SteeringVector {
        algorithm: name.into(),
        site,
        operation: Operation::Add,
        positions: Positions::All,
        default_coefficient: 1.0,
        layers: layers_map,
    };
    Strategy::new("test", &v, layers, 1.0).unwrap()
}

fn sample(id: &str, q: &str) -> SteerSample {
    SteerSample::new(id, q, "(A)", "(B)", SampleKind::AbChoice)
}

/// Strategies, anchors calibrated so that math prompts go to strategy 0, food prompts
/// to strategy 1 and travel prompts to no steering, and the anchor point.
fn setup() -> (Vec<Strategy>, AnchorSet, HookPoint) {
    let lm = common::model();
    let strategies = vec![
        strategy("mean_difference", Site::ResidPost, &[16, 17], 100),
        strategy("iti", Site::AttnHeads, &[18], 200),
    ];
    let point = anchor_point(&strategies).unwrap();
    assert_eq!(point, HookPoint::resid_pre(16));
    let samples: Vec<SteerSample> = TOPICS
        .iter()
        .flat_map(|(t, qs)| {
            qs.iter()
                .enumerate()
                .map(move |(i, q)| sample(&format!("{t}{i}"), q))
        })
        .collect();
    let refs: Vec<&SteerSample> = samples.iter().collect();
    let reps = representations(lm, &refs, point, 6).unwrap();
    let cal = CalibrationSet {
        strategies: strategies.iter().map(|s| s.name.clone()).collect(),
        samples: samples
            .iter()
            .zip(reps)
            .map(|(s, r)| {
                let (scores, in_scope) = match &s.id[..s.id.len() - 1] {
                    "math" => (vec![1.0, -0.5], true),
                    "food" => (vec![-0.5, 1.0], true),
                    _ => (vec![-0.3, -0.3], false),
                };
                CalibrationSample {
                    id: s.id.clone(),
                    representation: r,
                    scores,
                    in_scope,
                }
            })
            .collect(),
    };
    let config = AnchorConfig {
        clusters_per_strategy: 1,
        min_members: 1,
        ..AnchorConfig::default()
    };
    let anchors = AnchorSet::fit(&cal, &config).unwrap();
    (strategies, anchors, point)
}

fn prompt_ids(q: &str) -> Vec<u32> {
    common::model()
        .encode_chat(&[ChatMessage::user(q)])
        .unwrap()
}

/// Last-position logits and decisions of prompts run together with adaptive steering.
fn adaptive(
    strategies: &[Strategy],
    anchors: &AnchorSet,
    point: HookPoint,
    prompts: &[Vec<u32>],
) -> (Vec<Vec<f32>>, Vec<Decision>) {
    let lm = common::model();
    let mut decider = AdaptiveDecider::new(anchors, strategies, point);
    let mut hooks = Hooks::none().with_decider(&mut decider);
    let inputs = prompts
        .iter()
        .map(|p| SeqInput::prompt(p.clone()))
        .collect();
    let pos: Vec<Vec<usize>> = prompts.iter().map(|p| vec![p.len() - 1]).collect();
    let logits =
        masteer_models::generation::logits_at(&lm.model, inputs, &pos, &mut hooks).unwrap();
    drop(hooks);
    (
        logits.into_iter().map(|mut v| v.remove(0)).collect(),
        decider.into_decisions(),
    )
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Held-out prompts of the three topics.
fn test_prompts() -> Vec<Vec<u32>> {
    [
        "What is 12 plus 30?",
        "How do I cook rice?",
        "What should I see in Rome?",
        "Is 57 a prime number?",
    ]
    .iter()
    .map(|q| prompt_ids(q))
    .collect()
}

#[test]
fn mixed_batch_equals_each_prompt_alone_and_decisions_differ_by_topic() {
    let (strategies, anchors, point) = setup();
    let prompts = test_prompts();
    let (batch_logits, batch_decisions) = adaptive(&strategies, &anchors, point, &prompts);
    let chosen: Vec<Option<usize>> = batch_decisions.iter().map(|d| d.strategy).collect();
    assert_eq!(
        chosen,
        vec![Some(0), Some(1), None, Some(0)],
        "{batch_decisions:#?}"
    );
    for (i, p) in prompts.iter().enumerate() {
        let (alone_logits, alone_decisions) =
            adaptive(&strategies, &anchors, point, std::slice::from_ref(p));
        assert_eq!(
            alone_decisions[0].strategy, batch_decisions[i].strategy,
            "prompt {i}"
        );
        assert!(
            max_diff(
                &alone_decisions[0].similarities,
                &batch_decisions[i].similarities
            ) < 1e-4
        );
        let d = max_diff(&alone_logits[0], &batch_logits[i]);
        assert!(d <= 1e-4, "prompt {i}: max |Δlogit| {d}");
    }
}

#[test]
fn single_pass_equals_match_then_steer() {
    let lm = common::model();
    let (strategies, anchors, point) = setup();
    let prompts = test_prompts();
    let (one_pass, decisions) = adaptive(&strategies, &anchors, point, &prompts);
    // Pass 1: representations, unsteered. Pass 2: the matched plans.
    let mut hooks = Hooks::capture(masteer_core::models::CaptureSpec::new(
        vec![point],
        Positions::LastPromptToken,
    ));
    masteer_models::Session::prefill(
        &lm.model,
        prompts
            .iter()
            .map(|p| SeqInput::prompt(p.clone()))
            .collect(),
        0,
        &mut hooks,
    )
    .unwrap();
    let reps = hooks.captures.require(point).unwrap();
    let matched = anchors.decide_batch(reps.view()).unwrap();
    let inputs: Vec<SeqInput> = prompts
        .iter()
        .zip(&matched)
        .map(|(p, d)| {
            SeqInput::prompt(p.clone()).with_plan(d.strategy.map(|k| strategies[k].plan()))
        })
        .collect();
    let pos: Vec<Vec<usize>> = prompts.iter().map(|p| vec![p.len() - 1]).collect();
    let two_pass =
        masteer_models::generation::logits_at(&lm.model, inputs, &pos, &mut Hooks::none()).unwrap();
    let unsteered = masteer_models::generation::logits_at(
        &lm.model,
        prompts
            .iter()
            .map(|p| SeqInput::prompt(p.clone()))
            .collect(),
        &pos,
        &mut Hooks::none(),
    )
    .unwrap();
    for i in 0..prompts.len() {
        assert_eq!(matched[i].strategy, decisions[i].strategy);
        let d = max_diff(&one_pass[i], &two_pass[i][0]);
        assert!(d <= 1e-4, "prompt {i}: {d}");
        // The equalities above would also hold if the plans were dropped: where a
        // strategy was chosen, the logits must differ from the unsteered model's.
        let moved = max_diff(&one_pass[i], &unsteered[i][0]);
        if decisions[i].strategy.is_some() {
            assert!(
                moved > 1e-2,
                "prompt {i}: steered equals unsteered ({moved})"
            );
        } else {
            assert!(moved <= 1e-4, "prompt {i}: unsteered moved ({moved})");
        }
    }
    assert!(decisions.iter().any(|d| d.strategy.is_some()));
}

#[test]
fn unsteered_decision_is_bit_identical_to_the_unsteered_model() {
    let lm = common::model();
    let (strategies, anchors, point) = setup();
    let p = prompt_ids("What should I see in Rome?");
    let (logits, decisions) = adaptive(&strategies, &anchors, point, std::slice::from_ref(&p));
    assert_eq!(decisions[0].strategy, None);
    let plain = masteer_models::generation::logits_at(
        &lm.model,
        vec![SeqInput::prompt(p.clone())],
        &[vec![p.len() - 1]],
        &mut Hooks::none(),
    )
    .unwrap();
    assert!(logits[0] == plain[0][0], "logits differ");
}

#[test]
fn adaptive_generation_keeps_each_sequence_plan_in_every_decode_step() {
    let lm = common::model();
    let (strategies, anchors, point) = setup();
    let prompts = test_prompts();
    let opts = GenerateOptions::greedy(8);
    let mut decider = AdaptiveDecider::new(&anchors, &strategies, point);
    let mut hooks = Hooks::none().with_decider(&mut decider);
    let (gens, _) = lm
        .generate_tokens(
            prompts
                .iter()
                .map(|p| SeqInput::prompt(p.clone()))
                .collect(),
            &opts,
            &mut hooks,
            &mut |_, _| {},
        )
        .unwrap();
    drop(hooks);
    let decisions = decider.into_decisions();
    for (i, p) in prompts.iter().enumerate() {
        let plan = decisions[i].strategy.map(|k| strategies[k].plan());
        let (fixed, _) = lm
            .generate_tokens(
                vec![SeqInput::prompt(p.clone()).with_plan(plan)],
                &opts,
                &mut Hooks::none(),
                &mut |_, _| {},
            )
            .unwrap();
        assert_eq!(gens[i].tokens, fixed[0].tokens, "prompt {i}");
    }
}
