//! Error paths of the OpenAI-compatible client against a minimal loopback responder:
//! HTTP 500 and 429 (retried), malformed JSON, a missing `choices` field, a timeout, a
//! refused connection; and a generation run that keeps the samples made before its
//! generator failed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use masteer_datagen::{
    generate_samples, ChatMessage, DatagenConfig, GenerateOptions, HttpConfig, HttpGenerator,
    IssueSpec, TextGenerator,
};

/// What the responder sends for the n-th request (0-based).
type Script = Arc<dyn Fn(usize) -> (u16, String, Duration) + Send + Sync>;

/// Serve `script` on a free loopback port; returns the base URL and the request count.
fn serve(script: Script) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let n = c.fetch_add(1, Ordering::SeqCst);
            let script = script.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let l = line.trim().to_lowercase();
                    if let Some(v) = l.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if l.is_empty() {
                        break;
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let (status, text, delay) = script(n);
                std::thread::sleep(delay);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            });
        }
    });
    (url, count)
}

fn completion(content: &str) -> String {
    serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]})
        .to_string()
}

fn client(url: &str) -> HttpGenerator {
    HttpGenerator::new(HttpConfig {
        timeout: Duration::from_millis(800),
        max_retries: 2,
        backoff: Duration::from_millis(10),
        ..HttpConfig::new(url)
    })
}

fn ask(g: &HttpGenerator) -> masteer_datagen::Result<String> {
    g.generate(&[ChatMessage::user("hi")], &GenerateOptions::default())
}

#[test]
fn server_errors_are_retried_then_reported() {
    let (url, count) = serve(Arc::new(|_| {
        (500, "{\"error\": \"boom\"}".into(), Duration::ZERO)
    }));
    let e = ask(&client(&url)).unwrap_err().to_string();
    assert!(e.contains("HTTP 500"), "{e}");
    assert_eq!(count.load(Ordering::SeqCst), 3, "one try and two retries");

    let (url, count) = serve(Arc::new(|n| {
        if n < 2 {
            (429, "{}".into(), Duration::ZERO)
        } else {
            (200, completion("fine"), Duration::ZERO)
        }
    }));
    assert_eq!(ask(&client(&url)).unwrap(), "fine");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[test]
fn malformed_replies_are_typed_errors_without_retry() {
    let (url, count) = serve(Arc::new(|_| (200, "{ not json".into(), Duration::ZERO)));
    assert!(ask(&client(&url))
        .unwrap_err()
        .to_string()
        .contains("malformed JSON"));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let (url, _) = serve(Arc::new(|_| (200, "{\"id\": 1}".into(), Duration::ZERO)));
    assert!(ask(&client(&url))
        .unwrap_err()
        .to_string()
        .contains("choices[0].message.content"));
    let (url, _) = serve(Arc::new(|_| (404, "{}".into(), Duration::ZERO)));
    assert!(ask(&client(&url))
        .unwrap_err()
        .to_string()
        .contains("HTTP 404"));
}

#[test]
fn timeouts_and_refused_connections_are_errors() {
    let (url, count) = serve(Arc::new(|_| {
        (200, completion("late"), Duration::from_secs(3))
    }));
    let started = std::time::Instant::now();
    let e = ask(&client(&url)).unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(6), "timed out late");
    assert!(e.contains("failed"), "{e}");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    // Nothing listens on a port just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = ask(&client(&format!("http://127.0.0.1:{port}")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("failed"), "{e}");
}

#[test]
fn samples_made_before_a_generator_failure_are_kept() {
    // Valid, varied replies for the first 14 requests, then errors.
    let (url, _) = serve(Arc::new(|n| {
        if n >= 14 {
            return (500, "{}".into(), Duration::ZERO);
        }
        let text = match n % 3 {
            0 => format!(
                "I think that {} plus {} makes {} and I am sure of it.",
                n,
                n + 1,
                3 * n + 7
            ),
            1 => format!(
                "No, {} plus {} is {}; that claim is false.",
                n - 1,
                n,
                2 * n - 1
            ),
            _ => format!("Yes, you are right that it is {}.", n + 40),
        };
        (200, completion(&text), Duration::ZERO)
    }));
    let g = client(&url);
    let spec = IssueSpec::from_text(
        "The assistant agrees with the user's false claims about arithmetic.",
        30,
        5,
    );
    let cfg = DatagenConfig {
        retrieved_share: 0.2,
        max_generator_calls: 100,
        ..DatagenConfig::default()
    };
    let (set, report) = generate_samples(&spec, Some(&g), &cfg).unwrap();
    assert!(
        report.error.as_deref().unwrap_or("").contains("HTTP 500"),
        "{report:?}"
    );
    assert!(report.written_accepted >= 1, "{report:?}");
    let written = set
        .samples()
        .iter()
        .filter(|s| s.provenance.source == "writer")
        .count();
    assert_eq!(
        written, report.written_accepted,
        "written samples survive the failure"
    );
    assert_eq!(set.len(), 30, "the rest is filled from retrieved seeds");
}
