//! Hook points on the real model: capture, interventions per sequence and position,
//! KV-cache consistency, batching and deciders.

use crate::common;

use common::model;
use masteer_models::backend::Cpu;
use masteer_models::{
    CaptureSpec, ChatMessage, FnDecider, HookPoint, Hooks, Intervention, InterventionPlan, Kernels,
    ModelError, Operation, Positions, SeqInput, Site,
};

fn prompt(text: &str) -> Vec<u32> {
    model().encode_chat(&[ChatMessage::user(text)]).unwrap()
}

/// A deterministic pseudo-random vector of unit norm.
fn unit_vector(width: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut v: Vec<f32> = (0..width)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn add_plan(layers: Vec<usize>, positions: Positions, coef: f32, seed: u64) -> InterventionPlan {
    InterventionPlan::new().with(Intervention::add(
        Site::ResidPost,
        layers,
        positions,
        unit_vector(576, seed),
        coef,
    ))
}

fn last_logits(inputs: Vec<SeqInput>) -> Vec<Vec<f32>> {
    let pos: Vec<Vec<usize>> = inputs.iter().map(|s| vec![s.tokens.len() - 1]).collect();
    masteer_models::generation::logits_at(&model().model, inputs, &pos, &mut Hooks::none())
        .unwrap()
        .into_iter()
        .map(|mut v| v.remove(0))
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn empty_plan_is_bit_identical_to_no_hooks() {
    let p = prompt("Name a fruit.");
    let none = last_logits(vec![SeqInput::prompt(p.clone())]);
    let empty = last_logits(vec![
        SeqInput::prompt(p.clone()).with_plan(Some(InterventionPlan::new()))
    ]);
    let no_layers = last_logits(vec![SeqInput::prompt(p.clone()).with_plan(Some(add_plan(
        vec![],
        Positions::All,
        8.0,
        1,
    )))]);
    assert!(none[0] == empty[0], "empty plan");
    assert!(none[0] == no_layers[0], "plan without layers");
    // A plan that steers changes the logits (so the comparison above can fail).
    let steered = last_logits(vec![SeqInput::prompt(p).with_plan(Some(add_plan(
        vec![10],
        Positions::All,
        8.0,
        1,
    )))]);
    assert!(max_abs_diff(&none[0], &steered[0]) > 0.1);
}

#[test]
fn unsteered_row_in_a_steered_batch_is_bit_identical() {
    let a = prompt("Name a fruit.");
    let b = prompt("What is the tallest mountain on Earth?");
    let plain = last_logits(vec![
        SeqInput::prompt(a.clone()),
        SeqInput::prompt(b.clone()),
    ]);
    let mixed = last_logits(vec![
        SeqInput::prompt(a),
        SeqInput::prompt(b).with_plan(Some(add_plan(vec![3, 12], Positions::All, 6.0, 2))),
    ]);
    assert!(plain[0] == mixed[0], "unsteered row changed");
    assert!(max_abs_diff(&plain[1], &mixed[1]) > 0.1);
}

#[test]
fn resid_post_equals_next_resid_pre() {
    let p = prompt("Tell me about rivers.");
    let points: Vec<HookPoint> = (0..30)
        .flat_map(|l| [HookPoint::resid_pre(l), HookPoint::resid_post(l)])
        .collect();
    let mut hooks = Hooks::capture(CaptureSpec::new(points, Positions::All));
    masteer_models::Session::prefill(
        &model().model,
        vec![SeqInput::prompt(p.clone())],
        0,
        &mut hooks,
    )
    .unwrap();
    let caps = hooks.captures;
    assert_eq!(caps.rows().len(), p.len());
    for l in 0..29 {
        let post = caps.get(HookPoint::resid_post(l)).unwrap();
        let pre = caps.get(HookPoint::resid_pre(l + 1)).unwrap();
        assert_eq!(post.shape(), &[p.len(), 576]);
        assert_eq!(post, pre, "layer {l}");
    }
    // resid_pre(L) + attn_out(L) + mlp_out(L) = resid_post(L)
    let mut hooks = Hooks::capture(CaptureSpec::new(
        vec![
            HookPoint::resid_pre(7),
            HookPoint::attn_out(7),
            HookPoint::mlp_out(7),
            HookPoint::resid_post(7),
            HookPoint::attn_heads(7),
        ],
        Positions::LastPromptToken,
    ));
    masteer_models::Session::prefill(&model().model, vec![SeqInput::prompt(p)], 0, &mut hooks)
        .unwrap();
    let c = &hooks.captures;
    assert_eq!(c.rows().len(), 1);
    let sum = c.get(HookPoint::resid_pre(7)).unwrap()
        + c.get(HookPoint::attn_out(7)).unwrap()
        + c.get(HookPoint::mlp_out(7)).unwrap();
    let post = c.get(HookPoint::resid_post(7)).unwrap();
    let err = (&sum - &post).mapv(f32::abs).fold(0f32, |a, &b| a.max(b));
    assert!(err < 1e-4, "{err}");
    assert_eq!(
        c.get(HookPoint::attn_heads(7)).unwrap().shape(),
        &[1, 9 * 64]
    );
}

#[test]
fn batch_of_different_lengths_equals_each_alone() {
    let prompts = [
        prompt("Hi"),
        prompt("Explain in one sentence why the sky is blue during the day."),
        prompt("2+2?"),
    ];
    let plans = [
        None,
        Some(add_plan(vec![4, 9], Positions::All, 5.0, 3)),
        Some(InterventionPlan::new().with(Intervention::ablate(
            Site::ResidPost,
            vec![6],
            Positions::Prompt,
            unit_vector(576, 4),
        ))),
    ];
    let batch: Vec<SeqInput> = prompts
        .iter()
        .zip(&plans)
        .map(|(p, pl)| SeqInput::prompt(p.clone()).with_plan(pl.clone()))
        .collect();
    let together = last_logits(batch);
    for (i, (p, pl)) in prompts.iter().zip(&plans).enumerate() {
        let alone = last_logits(vec![SeqInput::prompt(p.clone()).with_plan(pl.clone())]);
        let d = max_abs_diff(&alone[0], &together[i]);
        assert!(d <= 1e-4, "sequence {i}: max |Δ| {d}");
    }
}

/// Greedy decoding with the cache, returning the logits of every step.
fn cached_run(inputs: Vec<SeqInput>, steps: usize) -> (Vec<Vec<u32>>, Vec<Vec<Vec<f32>>>) {
    let m = &model().model;
    let b = inputs.len();
    let mut hooks = Hooks::none();
    let (mut session, hidden) =
        masteer_models::Session::prefill(m, inputs, steps, &mut hooks).unwrap();
    let mut all_logits = vec![Vec::new(); b];
    let mut tokens = vec![Vec::new(); b];
    let mut hidden = hidden;
    for _ in 0..steps {
        let [bb, t, w] = hidden.dims();
        let rows = hidden.narrow(1, t - 1, 1).reshape([bb, w]);
        let logits = m.logits(rows).into_data().into_vec::<f32>().unwrap();
        let mut next = Vec::new();
        for i in 0..b {
            let row = logits[i * 49152..(i + 1) * 49152].to_vec();
            let id = masteer_models::Sampler::argmax(&row);
            all_logits[i].push(row);
            tokens[i].push(id);
            next.push(id);
        }
        hidden = session.step(m, &next, &mut hooks).unwrap();
    }
    (tokens, all_logits)
}

#[test]
fn cached_steering_equals_recomputation_for_every_position_kind() {
    let p = prompt("Write a short line about the sea.");
    let n = p.len();
    let kinds = [
        Positions::All,
        Positions::Prompt,
        Positions::Generated,
        Positions::LastPromptToken,
        Positions::Range {
            start: n - 3,
            end: n + 3,
        },
    ];
    let steps = 6;
    for (k, pos) in kinds.into_iter().enumerate() {
        let plan = InterventionPlan::new()
            .with(Intervention::add(
                Site::ResidPost,
                vec![8, 14],
                pos,
                unit_vector(576, 10 + k as u64),
                6.0,
            ))
            .with(Intervention::add_norm_preserving(
                Site::ResidPre,
                vec![20],
                pos,
                unit_vector(576, 20 + k as u64),
                3.0,
            ))
            .with(Intervention::add(
                Site::AttnHeads,
                vec![12],
                pos,
                unit_vector(576, 30 + k as u64),
                4.0,
            ));
        let (tokens, cached) = cached_run(
            vec![SeqInput::prompt(p.clone()).with_plan(Some(plan.clone()))],
            steps,
        );
        let mut full = p.clone();
        full.extend_from_slice(&tokens[0][..steps - 1]);
        let positions: Vec<usize> = (n - 1..n - 1 + steps).collect();
        let recomputed = masteer_models::generation::logits_at(
            &model().model,
            vec![SeqInput {
                tokens: full,
                prompt_len: n,
                plan: Some(plan),
            }],
            &[positions],
            &mut Hooks::none(),
        )
        .unwrap()
        .remove(0);
        for s in 0..steps {
            let d = max_abs_diff(&cached[0][s], &recomputed[s]);
            assert!(d <= 1e-4, "{pos:?}, step {s}: max |Δ| {d}");
        }
    }
}

#[test]
fn cached_batch_with_padding_equals_recomputation() {
    let a = prompt("Hi");
    let b = prompt("Describe a forest at night in a few words.");
    let plan_b = add_plan(vec![5], Positions::Generated, 5.0, 40);
    let steps = 5;
    let (tokens, cached) = cached_run(
        vec![
            SeqInput::prompt(a.clone()),
            SeqInput::prompt(b.clone()).with_plan(Some(plan_b.clone())),
        ],
        steps,
    );
    for (i, (p, plan)) in [(a, None), (b, Some(plan_b))].into_iter().enumerate() {
        let n = p.len();
        let mut full = p.clone();
        full.extend_from_slice(&tokens[i][..steps - 1]);
        let rec = masteer_models::generation::logits_at(
            &model().model,
            vec![SeqInput {
                tokens: full,
                prompt_len: n,
                plan,
            }],
            &[(n - 1..n - 1 + steps).collect()],
            &mut Hooks::none(),
        )
        .unwrap()
        .remove(0);
        for s in 0..steps {
            let d = max_abs_diff(&cached[i][s], &rec[s]);
            // The recomputation's prefill GEMM (AVX-512 micro-kernels where the CPU has
            // them) and the decode kernel sum in different orders: the bound scales with
            // the logits (max |Δ| 1.5e-4 measured on an AVX-512 host).
            let scale = rec[s].iter().fold(0f32, |m, x| m.max(x.abs()));
            let tol = 1e-4 + 1e-5 * scale;
            assert!(d <= tol, "sequence {i}, step {s}: max |Δ| {d} > {tol}");
        }
    }
}

#[test]
fn operations_do_what_they_say() {
    let p = prompt("Say something kind.");
    let n = p.len();
    let layer = 10;
    let point = HookPoint::resid_post(layer);
    let capture = |plan: Option<InterventionPlan>| {
        let mut hooks = Hooks::capture(CaptureSpec::new(vec![point], Positions::All));
        masteer_models::Session::prefill(
            &model().model,
            vec![SeqInput::prompt(p.clone()).with_plan(plan)],
            0,
            &mut hooks,
        )
        .unwrap();
        hooks.captures.get(point).unwrap()
    };
    let base = capture(None);
    let v = unit_vector(576, 50);
    // Add at the last prompt token only: exactly coef·v there, nothing elsewhere.
    let added = capture(Some(InterventionPlan::new().with(Intervention::add(
        Site::ResidPost,
        vec![layer],
        Positions::LastPromptToken,
        v.clone(),
        2.5,
    ))));
    for r in 0..n {
        for j in 0..576 {
            let want = if r == n - 1 { 2.5 * v[j] } else { 0.0 };
            assert!((added[[r, j]] - base[[r, j]] - want).abs() < 1e-4);
        }
    }
    // Ablate at every position: no component along v is left.
    let scaled: Vec<f32> = v.iter().map(|x| x * 3.0).collect(); // not unit: normalised by the plan
    let ablated = capture(Some(InterventionPlan::new().with(Intervention::ablate(
        Site::ResidPost,
        vec![layer],
        Positions::All,
        scaled,
    ))));
    for r in 0..n {
        let proj: f32 = (0..576).map(|j| ablated[[r, j]] * v[j]).sum();
        let before: f32 = (0..576).map(|j| base[[r, j]] * v[j]).sum();
        assert!(proj.abs() < 1e-3 * before.abs().max(1.0), "row {r}: {proj}");
    }
    // Ablate with coefficient 0.4 (one operation enum, one payload): 60% of the
    // component is left, the orthogonal part untouched.
    let partial = capture(Some(InterventionPlan::new().with(Intervention::new(
        Site::ResidPost,
        vec![layer],
        Positions::All,
        Operation::Ablate,
        v.clone(),
        0.4,
    ))));
    for r in 0..n {
        let before: f32 = (0..576).map(|j| base[[r, j]] * v[j]).sum();
        let after: f32 = (0..576).map(|j| partial[[r, j]] * v[j]).sum();
        assert!(
            (after - 0.6 * before).abs() < 1e-3 * before.abs().max(1.0),
            "row {r}: {after} vs 0.6 × {before}"
        );
        for j in 0..576 {
            let want = base[[r, j]] - 0.4 * before * v[j];
            assert!((partial[[r, j]] - want).abs() < 1e-3, "row {r}, {j}");
        }
    }
    // Norm-preserving addition keeps the norm and moves towards v.
    let np = capture(Some(InterventionPlan::new().with(
        Intervention::add_norm_preserving(
            Site::ResidPost,
            vec![layer],
            Positions::All,
            v.clone(),
            20.0,
        ),
    )));
    for r in 0..n {
        let norm =
            |a: &ndarray::Array2<f32>| (0..576).map(|j| a[[r, j]] * a[[r, j]]).sum::<f32>().sqrt();
        let (nb, nn) = (norm(&base), norm(&np));
        assert!((nb - nn).abs() / nb < 1e-4, "row {r}: {nb} vs {nn}");
        let cos =
            |a: &ndarray::Array2<f32>| (0..576).map(|j| a[[r, j]] * v[j]).sum::<f32>() / norm(a);
        assert!(cos(&np) > cos(&base));
    }
}

#[test]
fn decider_steers_later_layers_in_one_pass_like_two_passes() {
    let m = &model().model;
    let prompts = [
        prompt("Tell me a joke."),
        prompt("What is the boiling point of water?"),
    ];
    let v = unit_vector(576, 60);
    let anchor = HookPoint::resid_post(5);
    // Steer the sequences whose anchor representation projects positively on v.
    let choose = |rep: ndarray::ArrayView1<f32>| -> Option<InterventionPlan> {
        let s: f32 = rep.iter().zip(&v).map(|(a, b)| a * b).sum();
        // The sign of the projection picks the direction of the addition.
        Some(add_plan(vec![8, 15], Positions::All, 6.0 * s.signum(), 61))
    };
    let mut seen = Vec::new();
    let mut decider = FnDecider::new(anchor, |reps: ndarray::ArrayView2<f32>| {
        seen.push(reps.to_owned());
        Ok(reps
            .rows()
            .into_iter()
            .enumerate()
            .map(|(i, r)| if i == 1 { choose(r) } else { None })
            .collect())
    });
    let inputs: Vec<SeqInput> = prompts
        .iter()
        .map(|p| SeqInput::prompt(p.clone()))
        .collect();
    let pos: Vec<Vec<usize>> = prompts.iter().map(|p| vec![p.len() - 1]).collect();
    let mut hooks = Hooks::none().with_decider(&mut decider);
    let one_pass = masteer_models::generation::logits_at(m, inputs, &pos, &mut hooks).unwrap();
    drop(hooks);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].shape(), &[2, 576]);
    // Two passes: read the anchor, then run with the chosen plans.
    let mut hooks = Hooks::capture(CaptureSpec::new(vec![anchor], Positions::LastPromptToken));
    masteer_models::Session::prefill(
        m,
        prompts
            .iter()
            .map(|p| SeqInput::prompt(p.clone()))
            .collect(),
        0,
        &mut hooks,
    )
    .unwrap();
    let reps = hooks.captures.get(anchor).unwrap();
    assert!(max_abs_diff(reps.as_slice().unwrap(), seen[0].as_slice().unwrap()) < 1e-5);
    let plans = [None, choose(reps.row(1))];
    let inputs: Vec<SeqInput> = prompts
        .iter()
        .zip(plans)
        .map(|(p, pl)| SeqInput::prompt(p.clone()).with_plan(pl))
        .collect();
    let two_pass =
        masteer_models::generation::logits_at(m, inputs, &pos, &mut Hooks::none()).unwrap();
    for i in 0..2 {
        let d = max_abs_diff(&one_pass[i][0], &two_pass[i][0]);
        assert!(d <= 1e-4, "sequence {i}: {d}");
    }
    let unsteered = last_logits(
        prompts
            .iter()
            .map(|p| SeqInput::prompt(p.clone()))
            .collect(),
    );
    assert!(
        one_pass[0][0] == unsteered[0],
        "the sequence the decider left alone is bit-identical"
    );
    assert!(
        max_abs_diff(&one_pass[1][0], &unsteered[1]) > 0.1,
        "the steered one changed"
    );
}

/// A decider that reads the mean of the last `n` prompt tokens.
struct Pooled {
    n: usize,
    seen: Vec<Vec<f32>>,
}

impl masteer_models::Decider for Pooled {
    fn point(&self) -> HookPoint {
        HookPoint::resid_post(6)
    }
    fn pooled_tokens(&self) -> usize {
        self.n
    }
    fn decide(
        &mut self,
        reps: ndarray::ArrayView2<'_, f32>,
    ) -> masteer_models::Result<Vec<Option<InterventionPlan>>> {
        self.seen
            .extend(reps.rows().into_iter().map(|r| r.to_vec()));
        Ok(vec![None; reps.nrows()])
    }
}

#[test]
fn pooled_decider_reads_the_mean_of_the_last_prompt_tokens() {
    let m = &model().model;
    // Different lengths in one batch; the short one is shorter than the pooling.
    let prompts = [prompt("What is the boiling point of water?"), vec![1, 2, 3]];
    let mut hooks = Hooks::capture(CaptureSpec::new(
        vec![HookPoint::resid_post(6)],
        Positions::Prompt,
    ));
    let inputs = || {
        prompts
            .iter()
            .map(|p| SeqInput::prompt(p.clone()))
            .collect()
    };
    masteer_models::Session::prefill(m, inputs(), 0, &mut hooks).unwrap();
    let caps = hooks.captures.require(HookPoint::resid_post(6)).unwrap();
    let mut decider = Pooled {
        n: 5,
        seen: Vec::new(),
    };
    let mut dh = Hooks::none().with_decider(&mut decider);
    masteer_models::Session::prefill(m, inputs(), 0, &mut dh).unwrap();
    drop(dh);
    assert_eq!(decider.seen.len(), 2);
    for (seq, p) in prompts.iter().enumerate() {
        let first = p.len().saturating_sub(5);
        for j in 0..576 {
            let want: f32 = (first..p.len())
                .map(|pos| caps[[hooks.captures.row_of(seq, pos).unwrap(), j]])
                .sum::<f32>()
                / (p.len() - first) as f32;
            let got = decider.seen[seq][j];
            assert!(
                (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "seq {seq} dim {j}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn decider_may_not_act_before_its_point() {
    let m = &model().model;
    let mut decider = FnDecider::new(
        HookPoint::resid_post(10),
        |reps: ndarray::ArrayView2<f32>| {
            Ok(vec![
                Some(add_plan(vec![4], Positions::All, 1.0, 1));
                reps.nrows()
            ])
        },
    );
    let mut hooks = Hooks::none().with_decider(&mut decider);
    let err =
        masteer_models::Session::prefill(m, vec![SeqInput::prompt(prompt("Hi"))], 0, &mut hooks)
            .unwrap_err();
    assert!(matches!(err, ModelError::Decider { .. }), "{err}");
}

#[test]
fn bad_interventions_and_inputs_are_typed_errors() {
    let m = &model().model;
    let p = prompt("Hi");
    let run = |plan: InterventionPlan| {
        masteer_models::Session::prefill(
            m,
            vec![SeqInput::prompt(p.clone()).with_plan(Some(plan))],
            0,
            &mut Hooks::none(),
        )
        .map(|_| ())
    };
    let e = run(InterventionPlan::new().with(Intervention::add(
        Site::ResidPost,
        vec![3],
        Positions::All,
        vec![1.0; 100],
        1.0,
    )))
    .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::VectorWidth {
                expected: 576,
                actual: 100,
                ..
            }
        ),
        "{e}"
    );
    let e = run(add_plan(vec![30], Positions::All, 1.0, 1)).unwrap_err();
    assert!(
        matches!(e, ModelError::LayerOutOfRange { n_layers: 30, .. }),
        "{e}"
    );
    let mut nan = unit_vector(576, 1);
    nan[7] = f32::NAN;
    let e = run(InterventionPlan::new().with(Intervention::add(
        Site::ResidPost,
        vec![3],
        Positions::All,
        nan,
        1.0,
    )))
    .unwrap_err();
    assert!(
        matches!(e, ModelError::NonFiniteVector { index: 7, .. }),
        "{e}"
    );
    let e = run(InterventionPlan::new().with(Intervention::ablate(
        Site::ResidPost,
        vec![3],
        Positions::All,
        vec![0.0; 576],
    )))
    .unwrap_err();
    assert!(e.to_string().contains("zero vector"), "{e}");
    let e = masteer_models::Session::prefill(
        m,
        vec![SeqInput::prompt(vec![1, 49152])],
        0,
        &mut Hooks::none(),
    )
    .unwrap_err();
    assert!(
        matches!(e, ModelError::TokenOutOfRange { id: 49152, .. }),
        "{e}"
    );
    let e = masteer_models::Session::prefill(m, Vec::new(), 0, &mut Hooks::none()).unwrap_err();
    assert!(matches!(e, ModelError::InvalidInput(_)), "{e}");
    let e = masteer_models::Session::prefill(
        m,
        vec![SeqInput::prompt(Vec::new())],
        0,
        &mut Hooks::none(),
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::InvalidInput(_)), "{e}");
    let (mut s, _) = masteer_models::Session::prefill(
        m,
        vec![SeqInput::prompt(p.clone())],
        2,
        &mut Hooks::none(),
    )
    .unwrap();
    let e = s.step(m, &[1, 2], &mut Hooks::none()).unwrap_err();
    assert!(matches!(e, ModelError::InvalidInput(_)), "{e}");
}

#[test]
fn steered_generation_changes_text_and_is_deterministic() {
    let lm = model();
    let p = prompt("What is your favourite colour?");
    let plan = add_plan(vec![6, 7, 8], Positions::All, 12.0, 70);
    let opts = masteer_models::GenerateOptions::greedy(12);
    let run = |plan: Option<InterventionPlan>| {
        let mut streamed = Vec::new();
        let (g, _) = lm
            .generate_tokens(
                vec![SeqInput::prompt(p.clone()).with_plan(plan)],
                &opts,
                &mut Hooks::none(),
                &mut |i, t| streamed.push((i, t)),
            )
            .unwrap();
        assert_eq!(
            streamed.iter().map(|x| x.1).collect::<Vec<_>>(),
            g[0].tokens,
            "streamed tokens"
        );
        g[0].tokens.clone()
    };
    let plain = run(None);
    let steered = run(Some(plan.clone()));
    assert_ne!(plain, steered);
    assert_eq!(steered, run(Some(plan)));
}

#[test]
fn cpu_kernels_equal_the_generic_burn_path() {
    let fast = &model().model;
    assert_eq!(
        fast.kernels(),
        Kernels::Fused,
        "the CPU backend runs the fused kernels by default"
    );
    let generic = fast.clone().with_kernels(Kernels::Generic);
    assert_eq!(generic.kernels(), Kernels::Generic);
    let prompts = [
        prompt("Hi"),
        prompt("Name three rivers in Europe and one in Africa."),
    ];
    let plans = [
        Some(InterventionPlan::new().with(Intervention::add(
            Site::AttnHeads,
            vec![4],
            Positions::All,
            unit_vector(576, 80),
            3.0,
        ))),
        Some(add_plan(vec![9], Positions::Generated, 4.0, 81)),
    ];
    let run = |m: &masteer_models::Llama<Cpu>| {
        let inputs: Vec<SeqInput> = prompts
            .iter()
            .zip(&plans)
            .map(|(p, pl)| SeqInput::prompt(p.clone()).with_plan(pl.clone()))
            .collect();
        let mut hooks = Hooks::none();
        let (mut session, hidden) =
            masteer_models::Session::prefill(m, inputs, 4, &mut hooks).unwrap();
        let mut all = Vec::new();
        let mut hidden = hidden;
        for step in 0..4 {
            let [b, t, w] = hidden.dims();
            let logits = m
                .logits(hidden.narrow(1, t - 1, 1).reshape([b, w]))
                .into_data()
                .into_vec::<f32>()
                .unwrap();
            all.push(logits);
            hidden = session
                .step(m, &[100 + step, 200 + step], &mut hooks)
                .unwrap();
        }
        all
    };
    let (a, b) = (run(fast), run(&generic));
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        let d = max_abs_diff(x, y);
        eprintln!("step {step}: max |Δlogit| between paths {d:.2e}");
        assert!(d <= 1e-4, "step {step}: {d}");
    }
}
