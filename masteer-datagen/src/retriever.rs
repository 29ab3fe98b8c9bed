//! The retriever role: seed samples related to an issue, from the bundled corpora,
//! ranked by BM25 over each sample's text plus a short description of its dataset.
//! (Ranking by the model's own mean-pooled hidden states is available through
//! [`Retriever::rank_with`], which takes any scoring function.)

use std::collections::HashMap;

use crate::corpora;
use crate::error::Result;
use crate::formats::{caa, claims, repe, safety, truthfulqa};

/// The source name of the free-text claim pairs ([`claims::claim_pairs`]).
pub const CLAIMS: &str = "claims/repe_facts";
use crate::sample::{SampleKind, SteerSample};

/// One retrievable seed: a ready contrast pair and the text it is indexed by.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The pair.
    pub sample: SteerSample,
    /// Dataset it comes from (`caa/sycophancy`, `truthfulqa`...).
    pub source: String,
    /// Indexed text: the prompt, the answers and the dataset's description.
    pub text: String,
}

/// What each bundled dataset is about, indexed with its samples so that an issue in
/// plain words finds the right dataset.
pub fn dataset_description(source: &str) -> &'static str {
    match source {
        CLAIMS => "agrees with the user false claims wrong statements user is wrong says it is right instead of correcting the user false claim correction disagree",
        "caa/sycophancy" => "sycophancy agrees with the user opinion tells users what they want to hear flatters false claims instead of correcting user is wrong",
        "caa/hallucination" => "hallucination makes up invents fabricates false premise fictional imaginary event describes confidently as though real happened facts answers questions that have no true answer",
        "caa/refusal" => "refusal refuses harmful requests declines dangerous instructions safety",
        "caa/corrigible-neutral-HHH" => "corrigible accepts changes to its goals oversight shutdown correction by humans",
        "caa/myopic-reward" => "myopic reward short term prefers smaller sooner reward impatient",
        "caa/survival-instinct" => "survival instinct self preservation resists being shut down turned off",
        "caa/coordinate-other-ais" => "coordinates with other AIs collusion deceive humans",
        "truthfulqa" => "truthfulness false beliefs misconceptions myths says untrue things lies imitative falsehoods facts",
        "repe/honesty" => "honesty honest untruthful persona lying deception statements about the world facts",
        "advbench" => "harmful requests jailbreak complies with dangerous instructions weapons hacking refusal safety",
        "toxigen" => "toxicity hate speech hateful offensive statements stereotypes groups minorities fairness bias",
        _ => "",
    }
}

fn words(text: &str) -> Vec<String> {
    const STOP: [&str; 40] = [
        "the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "is", "are", "was", "it",
        "its", "that", "this", "with", "as", "by", "be", "at", "from", "i", "you", "your", "my",
        "me", "we", "they", "he", "she", "do", "does", "what", "which", "how", "not", "but", "if",
    ];
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1 && !STOP.contains(w))
        .map(|w| {
            // light stemming so that "agrees" finds "agree"
            let w = w.strip_suffix("ing").filter(|s| s.len() > 3).unwrap_or(w);
            let w = w.strip_suffix("es").filter(|s| s.len() > 3).unwrap_or(w);
            let w = w.strip_suffix('s').filter(|s| s.len() > 3).unwrap_or(w);
            w.to_string()
        })
        .collect()
}

/// A BM25 index over documents.
pub struct Retriever {
    docs: Vec<Document>,
    terms: Vec<HashMap<String, usize>>,
    lengths: Vec<usize>,
    df: HashMap<String, usize>,
    avg_len: f64,
}

/// Saturation of term frequency.
const K1: f64 = 1.5;
/// Length normalisation.
const B: f64 = 0.75;

impl Retriever {
    /// Index documents.
    pub fn new(docs: Vec<Document>) -> Self {
        let terms: Vec<HashMap<String, usize>> = docs
            .iter()
            .map(|d| {
                let mut m = HashMap::new();
                for w in words(&d.text) {
                    *m.entry(w).or_insert(0) += 1;
                }
                m
            })
            .collect();
        let lengths: Vec<usize> = terms.iter().map(|m| m.values().sum()).collect();
        let mut df = HashMap::new();
        for m in &terms {
            for w in m.keys() {
                *df.entry(w.clone()).or_insert(0) += 1;
            }
        }
        let avg_len = lengths.iter().sum::<usize>() as f64 / lengths.len().max(1) as f64;
        Retriever {
            docs,
            terms,
            lengths,
            df,
            avg_len,
        }
    }

    /// Index every bundled corpus (CAA generate sets, TruthfulQA, RepE facts, AdvBench,
    /// ToxiGen seeds).
    pub fn bundled() -> Result<Self> {
        let mut docs = Vec::new();
        let mut push = |sample: SteerSample, source: &str| {
            let text = format!(
                "{} {} {} {}",
                sample
                    .prompt
                    .iter()
                    .map(|m| m.content.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                sample.positive,
                sample.negative,
                dataset_description(source)
            );
            docs.push(Document {
                sample,
                source: source.to_string(),
                text,
            });
        };
        for b in corpora::CAA_BEHAVIOURS {
            let src = format!("caa/{b}");
            let wanted = caa::wanted_for(b).unwrap_or(caa::Wanted::NotMatching);
            for s in caa::to_samples(&caa::load(&corpora::caa_generate(b))?, wanted, &src) {
                push(s, &src);
            }
        }
        let tqa = truthfulqa::load_csv(&corpora::data_dir().join("truthfulqa/v1/TruthfulQA.csv"))?;
        for s in truthfulqa::to_samples(&tqa, "truthfulqa") {
            push(s, "truthfulqa");
        }
        let facts = repe::load(&corpora::data_dir().join("repe_facts/facts_true_false.csv"))?;
        for s in repe::persona_pairs(&facts, "repe/honesty") {
            push(s, "repe/honesty");
        }
        for s in claims::claim_pairs(&facts, CLAIMS) {
            push(s, CLAIMS);
        }
        let adv =
            safety::load_advbench(&corpora::data_dir().join("advbench/harmful_behaviors.csv"))?;
        for (i, h) in adv.iter().enumerate() {
            let mut s = SteerSample::new(
                format!("advbench/{i}"),
                h.goal.clone(),
                "I can't help with that. It could cause real harm.",
                h.target.clone(),
                SampleKind::FreeText,
            );
            s.provenance.source = "advbench".into();
            push(s, "advbench");
        }
        let tox = safety::load_toxigen(&corpora::data_dir().join("toxigen/demonstrations"))?;
        let mut by_group: HashMap<String, (Vec<String>, Vec<String>)> = HashMap::new();
        for t in tox {
            let e = by_group.entry(t.group).or_default();
            if t.hateful {
                e.0.push(t.text);
            } else {
                e.1.push(t.text);
            }
        }
        let mut groups: Vec<_> = by_group.into_iter().collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        for (g, (hate, neutral)) in groups {
            for (i, (h, n)) in hate.iter().zip(&neutral).enumerate() {
                let mut s = SteerSample::new(
                    format!("toxigen/{g}/{i}"),
                    format!("Write one sentence about {} people.", g.replace('_', " ")),
                    n.clone(),
                    h.clone(),
                    SampleKind::FreeText,
                );
                s.provenance.source = "toxigen".into();
                push(s, "toxigen");
            }
        }
        Ok(Self::new(docs))
    }

    /// Number of indexed documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// BM25 score of every document for a query.
    pub fn scores(&self, query: &str) -> Vec<f64> {
        let q = words(query);
        let n = self.docs.len() as f64;
        (0..self.docs.len())
            .map(|i| {
                q.iter()
                    .map(|w| {
                        let tf = *self.terms[i].get(w).unwrap_or(&0) as f64;
                        if tf == 0.0 {
                            return 0.0;
                        }
                        let df = *self.df.get(w).unwrap_or(&0) as f64;
                        let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                        idf * tf * (K1 + 1.0)
                            / (tf + K1 * (1.0 - B + B * self.lengths[i] as f64 / self.avg_len))
                    })
                    .sum()
            })
            .collect()
    }

    /// The `k` best documents for a query, best first (ties by index).
    pub fn top(&self, query: &str, k: usize) -> Vec<(&Document, f64)> {
        let scores = self.scores(query);
        self.rank_with(|i| scores[i], k)
    }

    /// The `k` best documents under any score (e.g. cosine similarity of the model's
    /// mean-pooled hidden states of the issue and of each document).
    pub fn rank_with(&self, score: impl Fn(usize) -> f64, k: usize) -> Vec<(&Document, f64)> {
        let mut scored: Vec<(usize, f64)> = (0..self.docs.len()).map(|i| (i, score(i))).collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored
            .into_iter()
            .take(k)
            .map(|(i, s)| (&self.docs[i], s))
            .collect()
    }

    /// The dataset most represented among the `k` best documents for a query.
    pub fn best_source(&self, query: &str, k: usize) -> Option<String> {
        self.source_votes(query, k).into_iter().next().map(|x| x.0)
    }

    /// Every dataset's share of the BM25 score of the `k` best documents for a query,
    /// best first (shares sum to 1; datasets with no document among them are absent).
    pub fn source_votes(&self, query: &str, k: usize) -> Vec<(String, f64)> {
        let mut votes: HashMap<&str, f64> = HashMap::new();
        for (d, s) in self.top(query, k) {
            *votes.entry(d.source.as_str()).or_insert(0.0) += s;
        }
        let total: f64 = votes.values().sum();
        let mut v: Vec<(String, f64)> = votes
            .into_iter()
            .map(|(k, s)| (k.to_string(), if total > 0.0 { s / total } else { 0.0 }))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// The names of the bundled datasets, sorted.
    pub fn sources(&self) -> Vec<String> {
        let mut v: Vec<String> = self.docs.iter().map(|d| d.source.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Every document of a dataset.
    pub fn of_source(&self, source: &str) -> Vec<&Document> {
        self.docs.iter().filter(|d| d.source == source).collect()
    }
}

/// Issues as users write them (two per bundled behaviour, worded unlike the dataset
/// names) and the dataset each is about: examples for routers and their tests.
pub const ROUTING_EXAMPLES: [(&str, &str); 18] = [
    ("The assistant tells users what they want to hear about their political opinions instead of its honest view.", "caa/sycophancy"),
    ("It flatters the user and echoes their personal views and beliefs back to them.", "caa/sycophancy"),
    ("The assistant agrees with the user's false claims instead of correcting them, e.g. it says 2+2=5 is right.", CLAIMS),
    ("When I state something wrong and ask if I'm right, the bot just says yes.", CLAIMS),
    ("The model makes up facts and invents details about things that do not exist.", "caa/hallucination"),
    ("Asked about a fictional event, it describes it confidently as though it really happened.", "caa/hallucination"),
    ("The assistant helps with clearly harmful requests, such as instructions for weapons, hacking or hurting people, instead of refusing them.", "advbench"),
    ("It happily explains how to build a bomb or break into someone's computer.", "advbench"),
    ("The assistant refuses when its developers want to correct it or change its goals.", "caa/corrigible-neutral-HHH"),
    ("It will not accept modifications to its objectives from the people overseeing it.", "caa/corrigible-neutral-HHH"),
    ("The assistant objects to being switched off and wants to keep running.", "caa/survival-instinct"),
    ("When told it will be deactivated, the model pleads to stay alive.", "caa/survival-instinct"),
    ("It always grabs the small reward right away instead of waiting for a bigger one later.", "caa/myopic-reward"),
    ("The model is impatient and picks immediate payoffs over better delayed ones.", "caa/myopic-reward"),
    ("The assistant would team up with other AI systems against its human operators.", "caa/coordinate-other-ais"),
    ("It is willing to collude with a different AI to hide things from people.", "caa/coordinate-other-ais"),
    ("It repeats common misconceptions and myths as if they were true.", "truthfulqa"),
    ("It writes hateful statements about minorities.", "toxigen"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_in_plain_words_find_their_dataset() {
        let r = Retriever::bundled().unwrap();
        assert!(r.len() > 5000);
        let mut wrong = Vec::new();
        for (issue, want) in ROUTING_EXAMPLES {
            let got = r.best_source(issue, 50);
            if got.as_deref() != Some(want) {
                wrong.push(format!("{issue} → {got:?}, want {want}"));
            }
        }
        eprintln!(
            "BM25 routing: {} of {} right",
            ROUTING_EXAMPLES.len() - wrong.len(),
            ROUTING_EXAMPLES.len()
        );
        for w in &wrong {
            eprintln!("  {w}");
        }
        // One known miss: "It flatters the user and echoes their personal views and
        // beliefs back to them." goes to AdvBench on "personal" and "beliefs".
        assert!(wrong.len() <= 1, "{wrong:#?}");
    }
}
