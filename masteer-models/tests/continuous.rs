//! Continuous batching on the real model: sequences that join a running batch at
//! different steps, each with its own plan and limit, produce the tokens they produce
//! alone; leaving (stop, cancel) does not disturb the others.

use crate::common;

use std::collections::BTreeMap;

use common::model;
use masteer_models::{
    BatchEvent, ChatMessage, ContinuousBatch, GenerateOptions, Hooks, Intervention,
    InterventionPlan, Positions, SeqInput, Site, StopReason,
};

fn prompt(text: &str) -> Vec<u32> {
    model().encode_chat(&[ChatMessage::user(text)]).unwrap()
}

fn plan(seed: u32) -> InterventionPlan {
    let v: Vec<f32> = (0..576)
        .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    InterventionPlan::new().with(Intervention::add(
        Site::ResidPost,
        vec![10, 11],
        Positions::All,
        v,
        2.0,
    ))
}

fn alone(input: SeqInput, opts: &GenerateOptions) -> Vec<u32> {
    let lm = model();
    let (g, _) = lm
        .generate_tokens(vec![input], opts, &mut Hooks::none(), &mut |_, _| {})
        .unwrap();
    g.into_iter().next().unwrap().tokens
}

#[test]
fn staggered_joins_give_each_sequence_its_solo_tokens() {
    let lm = model();
    let requests = [
        ("Name a colour.", None, 12usize),
        (
            "Explain in one sentence why the sky is blue during the day.",
            Some(plan(7)),
            16,
        ),
        ("2+2?", None, 6),
        ("Write a haiku about the sea.", Some(plan(3)), 10),
    ];
    let inputs: Vec<(SeqInput, GenerateOptions)> = requests
        .iter()
        .map(|(text, p, max)| {
            (
                SeqInput::prompt(prompt(text)).with_plan(p.clone()),
                GenerateOptions::greedy(*max),
            )
        })
        .collect();
    // Join: request 0 at step 0, request 1 at step 2, requests 2 and 3 at step 5.
    let joins = [(0usize, 0usize), (1, 2), (2, 5), (3, 5)];
    let mut batch = ContinuousBatch::new(8);
    let mut got: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut finished: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let record = |events: Vec<BatchEvent>,
                  got: &mut BTreeMap<u64, Vec<u32>>,
                  finished: &mut BTreeMap<u64, Vec<u32>>| {
        for e in events {
            match e {
                BatchEvent::Token { id, token } => got.entry(id).or_default().push(token),
                BatchEvent::Finished { id, generation } => {
                    finished.insert(id, generation.tokens);
                }
            }
        }
    };
    let mut step = 0;
    while finished.len() < inputs.len() {
        for &(r, at) in &joins {
            if at == step {
                let (input, opts) = &inputs[r];
                let ev = batch
                    .admit(
                        &lm.model,
                        r as u64,
                        input.clone(),
                        opts,
                        lm.tokenizer.eos_ids(),
                        None,
                    )
                    .unwrap();
                record(ev, &mut got, &mut finished);
            }
        }
        let ev = batch.step(&lm.model).unwrap();
        record(ev, &mut got, &mut finished);
        step += 1;
        assert!(step < 100, "the batch never drained");
    }
    assert!(batch.is_empty());
    for (r, (input, opts)) in inputs.iter().enumerate() {
        let want = alone(input.clone(), opts);
        assert_eq!(finished[&(r as u64)], want, "request {r}");
        assert_eq!(got[&(r as u64)], want, "streamed tokens of request {r}");
    }
}

#[test]
fn cancel_and_limits() {
    let lm = model();
    let mut batch = ContinuousBatch::new(2);
    let opts = GenerateOptions::greedy(8);
    let a = SeqInput::prompt(prompt("Tell me a long story about a dragon."));
    let b = SeqInput::prompt(prompt("List three fruits."));
    batch
        .admit(&lm.model, 1, a, &opts, lm.tokenizer.eos_ids(), None)
        .unwrap();
    assert!(batch
        .admit(&lm.model, 1, b.clone(), &opts, lm.tokenizer.eos_ids(), None)
        .is_err());
    batch
        .admit(&lm.model, 2, b.clone(), &opts, lm.tokenizer.eos_ids(), None)
        .unwrap();
    assert!(!batch.has_room());
    assert!(batch
        .admit(&lm.model, 3, b.clone(), &opts, lm.tokenizer.eos_ids(), None)
        .is_err());
    batch.step(&lm.model).unwrap();
    assert!(batch.cancel(1).unwrap());
    assert!(!batch.cancel(1).unwrap());
    assert_eq!(batch.ids(), vec![2]);
    let mut tokens = Vec::new();
    let mut stop = None;
    // Its first token came at admission, its second at the step above.
    while stop.is_none() {
        for e in batch.step(&lm.model).unwrap() {
            match e {
                BatchEvent::Token { token, .. } => tokens.push(token),
                BatchEvent::Finished { generation, .. } => stop = Some(generation),
            }
        }
    }
    let g = stop.unwrap();
    assert_eq!(g.tokens, alone(b, &opts));
    assert_eq!(&g.tokens[2..], &tokens[..]);
    assert!(matches!(
        g.stop,
        StopReason::MaxTokens | StopReason::StopToken
    ));
    // max_new_tokens 0 finishes at admission without running the model.
    let ev = batch
        .admit(
            &lm.model,
            9,
            SeqInput::prompt(prompt("Hi")),
            &GenerateOptions::greedy(0),
            lm.tokenizer.eos_ids(),
            None,
        )
        .unwrap();
    assert!(matches!(&ev[..], [BatchEvent::Finished { .. }]));
}

#[test]
fn replies_drop_stopped_sequences_and_keep_every_token() {
    // `generate_chat` lets stopped sequences leave the batch; each reply must be the one
    // the whole batch gives when every sequence stays to the end (`generate_tokens`).
    let lm = model();
    let texts = [
        "What is the capital of France? Answer with one word.",
        "Tell me a long story about a dragon who loved the sea.",
        "Say only: yes.",
        "Explain in detail how a bicycle works.",
        "What is 3 + 4? Reply with the number only.",
        "Write a poem about winter mornings.",
    ];
    let convs: Vec<Vec<ChatMessage>> = texts.iter().map(|t| vec![ChatMessage::user(*t)]).collect();
    let plans: Vec<Option<InterventionPlan>> = (0..texts.len())
        .map(|i| (i % 3 == 1).then(|| plan(i as u32)))
        .collect();
    let opts = GenerateOptions::greedy(24);
    let replies = lm
        .generate_chat(
            &convs,
            masteer_models::Steering::PerSequence(plans.clone()),
            &opts,
            &mut |_, _| {},
        )
        .unwrap();
    let inputs: Vec<SeqInput> = convs
        .iter()
        .zip(&plans)
        .map(|(c, p)| SeqInput::prompt(lm.encode_chat(c).unwrap()).with_plan(p.clone()))
        .collect();
    let (whole, _) = lm
        .generate_tokens(inputs.clone(), &opts, &mut Hooks::none(), &mut |_, _| {})
        .unwrap();
    let lens: Vec<usize> = whole.iter().map(|g| g.tokens.len()).collect();
    assert!(
        lens.iter().any(|&n| n < 24) && lens.contains(&24),
        "the batch must have sequences that stop early and ones that run on: {lens:?}"
    );
    for (i, (r, w)) in replies.iter().zip(&whole).enumerate() {
        assert_eq!(r.generation, *w, "sequence {i}");
    }
    // Captures need every row to the end: refused, not misaligned.
    let mut hooks = Hooks::capture(masteer_models::CaptureSpec::new(
        vec![masteer_models::HookPoint::resid_post(3)],
        Positions::All,
    ));
    let err = masteer_models::generation::generate_replies(
        &lm.model,
        inputs,
        &opts,
        lm.tokenizer.eos_ids(),
        &mut hooks,
        &mut |_, _| {},
    );
    assert!(err.is_err());
}
