//! Anchors on synthetic clusters with known answers.

use masteer_anchor::{
    AnchorConfig, AnchorError, AnchorSet, CalibrationSample, CalibrationSet, MatchMode,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const W: usize = 16;

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Three clusters: strategy 0 helps cluster 0, strategy 1 helps cluster 1, cluster 2 is
/// out of scope (steering it costs a little).
fn clusters(
    rng: &mut ChaCha8Rng,
    per: usize,
    centers: &[Vec<f32>],
) -> (CalibrationSet, Vec<Option<usize>>) {
    let mut samples = Vec::new();
    let mut truth = Vec::new();
    for (c, center) in centers.iter().enumerate() {
        for i in 0..per {
            let rep: Vec<f32> = center.iter().map(|x| x + 0.5 * normal(rng)).collect();
            let (scores, in_scope, want) = match c {
                0 => (vec![1.0 + 0.1 * normal(rng) as f64, -0.5], true, Some(0)),
                1 => (vec![-0.5, 1.0 + 0.1 * normal(rng) as f64], true, Some(1)),
                _ => (vec![-0.2, -0.3], false, None),
            };
            samples.push(CalibrationSample {
                id: format!("c{c}-{i}"),
                representation: rep,
                scores,
                in_scope,
            });
            truth.push(want);
        }
    }
    (
        CalibrationSet {
            strategies: vec!["mean_difference".into(), "iti".into()],
            samples,
        },
        truth,
    )
}

fn centers(rng: &mut ChaCha8Rng) -> Vec<Vec<f32>> {
    (0..3)
        .map(|_| (0..W).map(|_| 3.0 * normal(rng)).collect())
        .collect()
}

#[test]
fn routes_held_out_points_to_the_strategy_that_helps_them() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let c = centers(&mut rng);
    let (cal, _) = clusters(&mut rng, 50, &c);
    let (test, truth) = clusters(&mut rng, 50, &c);
    let anchors = AnchorSet::fit(&cal, &AnchorConfig::default()).unwrap();
    let r = &anchors.report;
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.helped, vec![50, 50]);
    assert!(r.hard_out_of_scope_steered <= 0.05);
    assert!(
        r.hard_score > 0.6 && r.hard_score <= r.oracle_score + 1e-9,
        "{r:?}"
    );
    for mode in [anchors.hard_mode(), anchors.soft_mode()] {
        let set = anchors.clone().with_mode(mode);
        let mut right = 0;
        let mut oos_steered = 0;
        for (s, want) in test.samples.iter().zip(&truth) {
            let d = set.decide(&s.representation).unwrap();
            if d.strategy == *want {
                right += 1;
            }
            if want.is_none() && d.steers() {
                oos_steered += 1;
            }
            assert_eq!(d.similarities.len(), 2);
            if let Some(k) = d.strategy {
                assert_eq!(d.name.as_deref(), Some(anchors.strategies[k].as_str()));
            }
        }
        let acc = right as f64 / test.samples.len() as f64;
        assert!(acc >= 0.95, "{mode:?}: routed {acc:.3}");
        assert_eq!(oos_steered, 0, "{mode:?}: out-of-scope inputs steered");
    }
    // Batch matching equals one-by-one matching.
    let reps = ndarray::Array2::from_shape_vec(
        (test.samples.len(), W),
        test.samples
            .iter()
            .flat_map(|s| s.representation.clone())
            .collect(),
    )
    .unwrap();
    let batch = anchors.decide_batch(reps.view()).unwrap();
    for (d, s) in batch.iter().zip(&test.samples) {
        assert_eq!(d, &anchors.decide(&s.representation).unwrap());
    }
}

#[test]
fn fitting_is_deterministic_and_serialises() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let c = centers(&mut rng);
    let (cal, _) = clusters(&mut rng, 30, &c);
    let a = AnchorSet::fit(&cal, &AnchorConfig::default()).unwrap();
    let b = AnchorSet::fit(&cal, &AnchorConfig::default()).unwrap();
    assert_eq!(a, b);
    let json = serde_json::to_string(&a).unwrap();
    let back: AnchorSet = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);
}

#[test]
fn a_strategy_that_helps_nobody_gets_no_anchor_and_a_warning() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let c = centers(&mut rng);
    let (mut cal, _) = clusters(&mut rng, 30, &c);
    cal.strategies.push("pca_center".into());
    for s in &mut cal.samples {
        s.scores.push(-1.0);
    }
    let a = AnchorSet::fit(&cal, &AnchorConfig::default()).unwrap();
    assert!(a.anchors.iter().all(|x| x.strategy != Some(2)));
    assert_eq!(a.report.helped[2], 0);
    assert!(
        a.report.warnings.iter().any(|w| w.contains("pca_center")),
        "{:?}",
        a.report.warnings
    );
    let d = a.decide(&cal.samples[0].representation).unwrap();
    assert_eq!(d.similarities[2], -1.0);
    assert_ne!(d.strategy, Some(2));
}

#[test]
fn bad_input_is_a_typed_error() {
    let cfg = AnchorConfig::default();
    let empty = CalibrationSet {
        strategies: vec!["a".into()],
        samples: vec![],
    };
    assert_eq!(
        AnchorSet::fit(&empty, &cfg).unwrap_err(),
        AnchorError::Empty
    );
    let s = |rep: Vec<f32>, scores: Vec<f64>| CalibrationSample {
        id: "x".into(),
        representation: rep,
        scores,
        in_scope: true,
    };
    let widths = CalibrationSet {
        strategies: vec!["a".into()],
        samples: vec![s(vec![1.0; 4], vec![1.0]), s(vec![1.0; 5], vec![1.0])],
    };
    assert!(matches!(
        AnchorSet::fit(&widths, &cfg),
        Err(AnchorError::Shape(_))
    ));
    let scores = CalibrationSet {
        strategies: vec!["a".into(), "b".into()],
        samples: vec![s(vec![1.0; 4], vec![1.0])],
    };
    assert!(matches!(
        AnchorSet::fit(&scores, &cfg),
        Err(AnchorError::Shape(_))
    ));
    let nan = CalibrationSet {
        strategies: vec!["a".into()],
        samples: vec![s(vec![1.0, f32::NAN, 0.0, 0.0], vec![1.0])],
    };
    assert!(matches!(
        AnchorSet::fit(&nan, &cfg),
        Err(AnchorError::NonFinite(_))
    ));
    let inf_score = CalibrationSet {
        strategies: vec!["a".into()],
        samples: vec![s(vec![1.0; 4], vec![f64::INFINITY])],
    };
    assert!(matches!(
        AnchorSet::fit(&inf_score, &cfg),
        Err(AnchorError::NonFinite(_))
    ));
    // Matching checks its input too.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let c = centers(&mut rng);
    let (cal, _) = clusters(&mut rng, 20, &c);
    let a = AnchorSet::fit(&cal, &cfg).unwrap();
    assert!(matches!(a.decide(&[0.0; 3]), Err(AnchorError::Shape(_))));
    let mut bad = cal.samples[0].representation.clone();
    bad[0] = f32::INFINITY;
    assert!(matches!(a.decide(&bad), Err(AnchorError::NonFinite(_))));
    // The center itself has no direction: no similarity can be measured, so every
    // similarity is the "none" sentinel −1, and the decision is not to steer.
    let d = a.decide(&a.center.clone()).unwrap();
    assert!(d.similarities.iter().all(|s| *s == -1.0));
    assert_eq!(d.none_similarity, -1.0);
    assert_eq!(d.strategy, None);
    assert!(!d.steers());
    let bad_cfg = AnchorConfig {
        temperatures: vec![0.0],
        ..AnchorConfig::default()
    };
    assert!(matches!(
        AnchorSet::fit(&cal, &bad_cfg),
        Err(AnchorError::Settings(_))
    ));
    // A margin no similarity can reach (cosines lie in [−1, 1]) steers nothing.
    let strict = a.clone().with_mode(MatchMode::Hard { margin: 2.5 });
    for smp in &cal.samples {
        assert!(!strict.decide(&smp.representation).unwrap().steers());
    }
}
