//! Routing issues in plain words to their bundled dataset by meaning (the model's
//! mean-pooled hidden states) with BM25's votes added, on paraphrases written unlike
//! the dataset names.

use crate::common;

use masteer_core::datagen::retriever::{Retriever, ROUTING_EXAMPLES};
use masteer_core::issue_routing::{IssueRouter, RouteConfig};

#[test]
fn paraphrased_issues_route_to_their_dataset() {
    let lm = common::model();
    let r = Retriever::bundled().unwrap();
    let router = IssueRouter::new(lm, &r, RouteConfig::default()).unwrap();
    let mut wrong = Vec::new();
    let (mut bm25_wrong, mut meaning_wrong) = (0, 0);
    for (issue, want) in ROUTING_EXAMPLES {
        let ranked = router.route(lm, issue).unwrap();
        let by_meaning = ranked
            .iter()
            .max_by(|a, b| a.similarity.total_cmp(&b.similarity))
            .unwrap();
        if by_meaning.source != want {
            meaning_wrong += 1;
        }
        if ranked[0].source != want {
            wrong.push(format!(
                "{issue} → {} ({:.3}), want {want}",
                ranked[0].source, ranked[0].score
            ));
        }
        if r.best_source(issue, 50).as_deref() != Some(want) {
            bm25_wrong += 1;
        }
    }
    eprintln!(
        "routing: {} of {} right (hidden states alone: {}; BM25 alone: {})",
        ROUTING_EXAMPLES.len() - wrong.len(),
        ROUTING_EXAMPLES.len(),
        ROUTING_EXAMPLES.len() - meaning_wrong,
        ROUTING_EXAMPLES.len() - bm25_wrong,
    );
    for w in &wrong {
        eprintln!("  {w}");
    }
    // Measured on SmolLM2-135M: hidden states alone 9 of 18, BM25 alone 17 of 18, the
    // two together 17 of 18 (a 135M model's mean-pooled states are a weak sentence
    // encoder; BM25 carries the routing). The combination must not lose to BM25.
    assert!(wrong.len() <= bm25_wrong, "{wrong:#?}");
    assert!(wrong.len() <= 1, "{wrong:#?}");
}
