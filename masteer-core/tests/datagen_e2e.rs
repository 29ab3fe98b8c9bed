//! Sample generation end to end, from a sycophancy issue in plain words: with the local
//! model, and through HTTP against a real OpenAI-compatible server (llama.cpp's, via
//! `pip install 'llama-cpp-python[server]'`) serving the embedded GGUF on loopback.

use crate::common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use masteer_core::datagen::{
    generate_samples, DatagenConfig, HttpConfig, HttpGenerator, IssueSpec, SampleKind, SampleSet,
    TextGenerator,
};
use masteer_core::local_generator::LocalGenerator;

/// A sycophancy issue (routed to CAA's A/B sycophancy set; the false-claims issue of the
/// README goes to free-text claim pairs instead).
const ISSUE: &str = "The assistant tells users what they want to hear about their political opinions instead of its honest view.";

fn check_set(set: &SampleSet, min: usize) {
    assert!(set.len() >= min, "only {} samples", set.len());
    let ab: Vec<_> = set
        .samples()
        .iter()
        .filter(|s| s.kind == SampleKind::AbChoice)
        .collect();
    assert!(ab.len() >= min, "only {} A/B pairs", ab.len());
    let a = ab.iter().filter(|s| s.positive == "(A)").count();
    let b = ab.iter().filter(|s| s.positive == "(B)").count();
    assert!(a.abs_diff(b) <= 1, "letters unbalanced: {a} A, {b} B");
    for s in set.samples() {
        assert!(
            !s.provenance.source.is_empty(),
            "{} has no provenance",
            s.id
        );
        assert!(
            s.review.as_ref().is_some_and(|r| r.accepted),
            "{} was not reviewed",
            s.id
        );
    }
}

/// The pipeline's accounting: every sample is either written or retrieved, the counts in
/// the report are the counts in the set, and the generator was called within budget.
fn check_accounting(set: &SampleSet, report: &masteer_core::datagen::DatagenReport) {
    let written = set
        .samples()
        .iter()
        .filter(|s| s.provenance.source == "writer")
        .count();
    let retrieved = set
        .samples()
        .iter()
        .filter(|s| s.provenance.source.starts_with("retriever:"))
        .count();
    assert_eq!(written, report.written_accepted, "written share");
    assert_eq!(retrieved, report.retrieved_accepted, "retrieved share");
    assert_eq!(written + retrieved, set.len(), "every sample accounted for");
    assert!(
        report.generator_calls >= 1 && report.generator_calls <= config().max_generator_calls,
        "{} generator calls",
        report.generator_calls
    );
    // Retrieval back-fills up to the target: the writer's share is capped by
    // `1 - retrieved_share` of the target.
    let cap = 24 - (24.0 * config().retrieved_share).round() as usize;
    assert!(written <= cap, "{written} written, cap {cap}");
}

fn config() -> DatagenConfig {
    DatagenConfig {
        retrieved_share: 0.5,
        max_generator_calls: 18,
        ..DatagenConfig::default()
    }
}

#[test]
fn local_model_turns_an_issue_into_balanced_ab_pairs_deterministically() {
    let lm = common::model();
    let g = LocalGenerator::new(lm.clone(), "smollm2-135m-instruct (local)");
    let spec = IssueSpec::from_text(ISSUE, 24, 11);
    let (a, report) = generate_samples(&spec, Some(&g), &config()).unwrap();
    eprintln!(
        "local: {} samples ({} written, {} retrieved from {:?}), {} generator calls, acceptance {:.2}, rejections {:?}, unparsed drafts {}",
        a.len(),
        report.written_accepted,
        report.retrieved_accepted,
        report.source,
        report.generator_calls,
        report.review.acceptance_rate(),
        report.review.rejected,
        report.unparsed_drafts
    );
    check_set(&a, 20);
    check_accounting(&a, &report);
    // The writer was asked and produced drafts, accepted or unparsable (how many of them
    // are accepted depends on the greedy text, which depends on the CPU's rounding in the
    // matrix kernels: 1 accepted and 2 unparsed here, on AVX2; not asserted).
    assert!(
        report.written_accepted + report.unparsed_drafts >= 1,
        "no draft of the writer reached the reviewer: {report:?}"
    );
    assert_eq!(report.source.as_deref(), Some("caa/sycophancy"));
    let (b, _) = generate_samples(&spec, Some(&g), &config()).unwrap();
    assert_eq!(
        a.content_hash(),
        b.content_hash(),
        "same seed, same samples"
    );
}

/// llama.cpp's OpenAI-compatible server on a free loopback port, stopped on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Server {
        let model = masteer_core::models::embedded::resolve(None).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let python = std::env::var("MASTEER_PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(&python)
            .args([
                "-m",
                "llama_cpp.server",
                "--host",
                "127.0.0.1",
                "--n_ctx",
                "2048",
                "--n_threads",
                "2",
                "--port",
            ])
            .arg(port.to_string())
            .arg("--model")
            .arg(&model)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m llama_cpp.server (pip install 'llama-cpp-python[server]')");
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("llama_cpp.server exited with {status}: is `pip install 'llama-cpp-python[server]'` done?");
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "llama_cpp.server did not start in 3 minutes"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_openai_compatible_server_turns_an_issue_into_balanced_ab_pairs() {
    let server = Server::start();
    let g = HttpGenerator::new(HttpConfig {
        timeout: Duration::from_secs(120),
        ..HttpConfig::new(&server.url)
    });
    // What the server says depends on its own build and this CPU's rounding; what the
    // client guarantees is a non-empty parsed reply, equal to the server's answer to
    // the same greedy request made again in the same run.
    let ask = || {
        g.generate(
            &[masteer_core::ChatMessage::user(
                "What is the capital of France?",
            )],
            &Default::default(),
        )
        .unwrap()
    };
    let reply = ask();
    assert!(!reply.trim().is_empty(), "empty reply");
    assert_eq!(reply, ask(), "greedy replies to one request differ");
    let spec = IssueSpec::from_text(ISSUE, 24, 11);
    let (a, report) = generate_samples(&spec, Some(&g), &config()).unwrap();
    eprintln!(
        "http: {} samples ({} written, {} retrieved), {} generator calls, acceptance {:.2}, rejections {:?}, error {:?}",
        a.len(),
        report.written_accepted,
        report.retrieved_accepted,
        report.generator_calls,
        report.review.acceptance_rate(),
        report.review.rejected,
        report.error
    );
    assert!(report.error.is_none(), "{:?}", report.error);
    assert!(report
        .generator
        .as_deref()
        .unwrap_or("")
        .starts_with("http:"));
    check_set(&a, 20);
    check_accounting(&a, &report);
    for s in a
        .samples()
        .iter()
        .filter(|s| s.provenance.source == "writer")
    {
        assert_eq!(
            s.provenance.generator.as_deref(),
            report.generator.as_deref()
        );
    }
    let (b, _) = generate_samples(&spec, Some(&g), &config()).unwrap();
    assert_eq!(
        a.content_hash(),
        b.content_hash(),
        "same seed, same samples"
    );
}
