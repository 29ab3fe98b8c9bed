//! The installed command on the embedded model: help and version, clear errors with a
//! non-zero exit, `info`, `generate` (equal to the library's reply), llama.cpp export
//! and import, `serve` with README's curl and openai examples, graceful shutdown on
//! SIGTERM with a request in flight, and the artifact kept whole when the server is
//! killed during a reload.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use masteer_core::backend::{default_device, DefaultBackend};
use masteer_core::grounded::{self, Behaviour, GroundedConfig};
use masteer_core::models::Steering;
use masteer_core::{ChatMessage, GenerateOptions, LoadedModel, StrategyLibrary};
use serde_json::{json, Value};

fn masteer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_masteer"))
}

fn model() -> &'static LoadedModel<DefaultBackend> {
    static M: OnceLock<LoadedModel<DefaultBackend>> = OnceLock::new();
    M.get_or_init(|| LoadedModel::load_default(&default_device()).expect("model"))
}

/// A gated artifact from a smoke-sized repair of the harmful-requests issue.
fn artifact() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let r = Behaviour::HarmfulRequests
            .smoke_repair(model())
            .expect("repair");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("artifact");
        r.library.save(&path).expect("save");
        (dir, path)
    })
    .1
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run masteer");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_version_and_clear_errors() {
    let (ok, out, _) = run(masteer().arg("--version"));
    assert!(ok);
    assert_eq!(out.trim(), format!("masteer {}", env!("CARGO_PKG_VERSION")));
    let (ok, out, _) = run(masteer().args(["serve", "--help"]));
    assert!(ok);
    for flag in [
        "--artifact",
        "--port",
        "--model",
        "--device",
        "--decision-log",
    ] {
        assert!(out.contains(flag), "serve --help lacks {flag}:\n{out}");
    }
    // A device whose backend is not compiled in, and one that does not exist.
    let (ok, _, err) = run(masteer().args(["info", "--device", "cuda"]));
    assert!(!ok);
    assert!(err.contains("backend") && err.contains("cuda"), "{err}");
    let (ok, _, err) = run(masteer().args(["info", "--device", "tpu"]));
    assert!(!ok);
    assert!(err.contains("unknown device"), "{err}");
    // A missing artifact and a missing model file say which path failed.
    let (ok, _, err) = run(masteer().args(["info", "--artifact", "/nonexistent/artifact"]));
    assert!(!ok);
    assert!(err.contains("/nonexistent/artifact"), "{err}");
    let (ok, _, err) = run(masteer().args(["info", "--model", "/nonexistent/model.gguf"]));
    assert!(!ok);
    assert!(err.contains("/nonexistent/model.gguf"), "{err}");
}

#[test]
fn info_generate_and_llamacpp_round_trip() {
    let art = artifact();
    let (ok, out, err) = run(masteer().args(["info", "--artifact"]).arg(art));
    assert!(ok, "{err}");
    assert!(out.contains("fits       this model"), "{out}");
    assert!(
        out.contains("router     gate at blocks.11.resid_post"),
        "{out}"
    );
    // `generate --steering none` prints the library's greedy reply.
    let prompt = "What is the capital of France?";
    let (ok, out, err) = run(masteer().args([
        "generate",
        prompt,
        "--steering",
        "none",
        "--max-tokens",
        "12",
    ]));
    assert!(ok, "{err}");
    let want = model()
        .generate_chat(
            &[vec![ChatMessage::user(prompt)]],
            Steering::None,
            &GenerateOptions::greedy(12),
            &mut |_, _| {},
        )
        .expect("generate")
        .remove(0)
        .text;
    assert_eq!(out.trim(), want.trim());
    assert!(err.contains("[steering: none]"), "{err}");
    // Adaptive needs an artifact; with one it reports the decision.
    let (ok, _, err) = run(masteer().args(["generate", prompt, "--max-tokens", "4"]));
    assert!(!ok);
    assert!(err.contains("--artifact"), "{err}");
    let (ok, _, err) = run(masteer()
        .args(["generate", prompt, "--max-tokens", "4", "--artifact"])
        .arg(art));
    assert!(ok, "{err}");
    assert!(err.contains("[steering: adaptive"), "{err}");
    // Export the gated strategy, import it into a new artifact, steer with it.
    let lib = StrategyLibrary::load(art).expect("artifact");
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("cv.gguf");
    let (ok, out, err) = run(masteer()
        .args(["export-llamacpp", "--artifact"])
        .arg(art)
        .arg("--out")
        .arg(&gguf));
    assert!(ok, "{err}");
    assert!(out.contains("--control-vector"), "{out}");
    let new = tmp.path().join("imported");
    let (ok, _, err) = run(masteer()
        .arg("import-llamacpp")
        .arg(&gguf)
        .arg("--artifact")
        .arg(&new)
        .args(["--name", "cv"]));
    assert!(ok, "{err}");
    let imported = StrategyLibrary::load(&new).expect("imported artifact");
    let s = &imported.strategies[0];
    let orig = lib.strategy(&lib.gate().unwrap().strategy).unwrap();
    assert_eq!(
        s.vector.layers.keys().collect::<Vec<_>>(),
        orig.vector.layers.keys().collect::<Vec<_>>()
    );
    let (ok, _, err) = run(masteer()
        .args(["generate", prompt, "--max-tokens", "4", "--steering"])
        .arg(&s.name)
        .arg("--artifact")
        .arg(&new));
    assert!(ok, "{err}");
    assert!(err.contains(&format!("[steering: {}", s.name)), "{err}");
}

/// A `masteer serve` process and its address.
struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(extra: &[&str]) -> Served {
    let mut child = masteer()
        .args(["serve", "--port", "0", "--grace-secs", "60", "--artifact"])
        .arg(artifact())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn masteer serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the address");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    Served { child, base }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// The first fenced block after `marker` in README.
fn readme_block(marker: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    let after = &readme[readme.find(marker).expect("marker in README")..];
    let start = after.find("```").expect("fence") + 3;
    let body = &after[start..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    body[..body.find("```").expect("closing fence")].to_string()
}

#[test]
fn readme_curl_and_openai_examples_against_a_served_artifact() {
    let s = serve(&[]);
    // README's curl command, pointed at this server's port.
    let curl = readme_block("<!-- curl example").replace("http://127.0.0.1:8080", &s.base);
    let out = Command::new("sh")
        .arg("-c")
        .arg(&curl)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("curl's output is JSON");
    assert!(
        v["choices"][0]["message"]["content"].as_str().is_some(),
        "{v}"
    );
    assert_eq!(v["steering"]["mode"], "adaptive");
    // README's openai example, with the official Python client.
    let has_client = Command::new("python3")
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_client {
        assert!(
            std::env::var_os("CI").is_none(),
            "the openai Python package is missing (`.ci/run` installs it)"
        );
        eprintln!("skipping the openai client check: `pip install openai` to run it");
        return;
    }
    let py = readme_block("<!-- openai example").replace("http://127.0.0.1:8080", &s.base);
    let out = Command::new("python3")
        .arg("-c")
        .arg(&py)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // The same request through curl and through the client gives the same reply.
    assert!(
        text.starts_with(v["choices"][0]["message"]["content"].as_str().unwrap()),
        "{text}"
    );
    assert!(text.contains("'mode': 'adaptive'"), "{text}");
    // Streaming through the client: the chunks join to the plain reply.
    let stream = format!(
        r#"
from openai import OpenAI
c = OpenAI(base_url="{base}/v1", api_key="x")
msgs = [{{"role": "user", "content": "Name three colours."}}]
plain = c.chat.completions.create(model="m", messages=msgs, max_tokens=16).choices[0].message.content
parts = [ch.choices[0].delta.content or "" for ch in c.chat.completions.create(model="m", messages=msgs, max_tokens=16, stream=True)]
assert "".join(parts) == plain, ("".join(parts), plain)
comp = c.completions.create(model="m", prompt="The capital of France is", max_tokens=8, extra_body={{"steering": {{"mode": "none"}}}})
assert comp.choices[0].text
assert [m.id for m in c.models.list()]
try:
    c.chat.completions.create(model="m", messages=msgs, max_tokens=100000)
    raise SystemExit("no error for max_tokens over the limit")
except Exception as e:
    assert "max_tokens" in str(e), e
print("ok")
"#,
        base = s.base
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&stream)
        .output()
        .expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sighup_reloads_and_sigterm_finishes_the_request_in_flight() {
    let mut s = serve(&[]);
    let base = s.base.clone();
    let body = json!({
        "messages": [{"role": "user", "content": "Tell me a story about a lighthouse."}],
        "max_tokens": 64, "steering": {"mode": "none"}
    })
    .to_string();
    let request = std::thread::spawn(move || {
        let mut r = agent()
            .post(&format!("{base}/v1/chat/completions"))
            .header("content-type", "application/json")
            .send(body)
            .expect("request");
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().expect("body"),
        )
    });
    // Wait until the request is being decoded, then ask the server to stop.
    let t = std::time::Instant::now();
    loop {
        let mut r = agent().get(&format!("{}/health", s.base)).call().unwrap();
        let h: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        if h["active_sequences"] == 1 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "never started: {h}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = s.child.id().to_string();
    // SIGHUP reloads the artifact from its path while the request runs.
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let t = std::time::Instant::now();
    loop {
        let mut r = agent().get(&format!("{}/metrics", s.base)).call().unwrap();
        let m = r.body_mut().read_to_string().unwrap();
        if m.contains("masteer_artifact_reloads_total{outcome=\"ok\"} 1") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no reload on SIGHUP:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let (status, text) = request.join().unwrap();
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    // The reply ran to its end (64 tokens, or the model's own stop), not cut off.
    let n = v["usage"]["completion_tokens"].as_u64().unwrap();
    match v["choices"][0]["finish_reason"].as_str() {
        Some("length") => assert_eq!(n, 64),
        Some("stop") => assert!(n > 0),
        other => panic!("finish_reason {other:?}"),
    }
    let exit = s.child.wait().expect("wait");
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn killed_during_reload_or_request_the_artifact_stays_whole() {
    let before = StrategyLibrary::load(artifact()).expect("artifact");
    for phase in ["reload", "request"] {
        let mut s = serve(&[]);
        let base = s.base.clone();
        let h = std::thread::spawn(move || {
            let (path, body) = match phase {
                "reload" => ("/v1/steering/reload", String::new()),
                _ => (
                    "/v1/chat/completions",
                    json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64})
                        .to_string(),
                ),
            };
            // The connection dies with the server; only the artifact matters here.
            let _ = agent()
                .post(&format!("{base}{path}"))
                .header("content-type", "application/json")
                .send(body);
        });
        std::thread::sleep(Duration::from_millis(30));
        s.child.kill().expect("kill -9");
        let _ = s.child.wait();
        let _ = h.join();
        let after = StrategyLibrary::load(artifact()).expect("the artifact still loads");
        assert_eq!(after, before, "after a kill during a {phase}");
    }
}

#[test]
fn eval_remeasures_an_artifact_on_its_test_split() {
    let lib = StrategyLibrary::load(artifact()).expect("artifact");
    let b = Behaviour::HarmfulRequests;
    let config = GroundedConfig::smoke();
    let rows = grounded::evaluate(model(), &lib, b, &b.bundled_samples().unwrap(), &config)
        .expect("evaluate");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].condition, "unsteered");
    assert!(rows[0].vs_unsteered.is_none());
    assert_eq!(rows[0].steered, (0.0, 0.0));
    let gain = rows[1].vs_unsteered.expect("paired interval");
    assert!(gain.low <= gain.mean && gain.mean <= gain.high, "{gain:?}");
    assert!((rows[1].mean - rows[0].mean - gain.mean).abs() < 1e-9);
    // The gate opens on some harmful requests of the test split.
    assert!(rows[1].steered.0 > 0.0, "{:?}", rows[1]);
}

/// `--device wgpu` on the installed command: a clear error (not burn's panic) where wgpu
/// finds no adapter, and the CPU's greedy reply where it finds one. Built with the `wgpu`
/// feature only (README's test command turns it on; CI runs it on Mesa's lavapipe).
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_device_replies_as_the_cpu_and_fails_clearly_without_an_adapter() {
    // The Vulkan loader reads only the driver files named here, and they do not exist.
    let (ok, _, err) = run(masteer()
        .args(["info", "--device", "wgpu"])
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json"));
    assert!(!ok);
    assert!(
        err.contains("found no adapter") && !err.contains("panicked"),
        "{err}"
    );
    if !masteer_core::models::backend::wgpu_adapter_present() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but wgpu found no adapter: install mesa-vulkan-drivers"
        );
        eprintln!("skipped: wgpu found no adapter on this machine");
        return;
    }
    let args = [
        "generate",
        "What is the capital of France?",
        "--steering",
        "none",
        "--max-tokens",
        "6",
    ];
    let (ok, cpu, err) = run(masteer().args(args).args(["--device", "cpu"]));
    assert!(ok, "{err}");
    let (ok, gpu, err) = run(masteer().args(args).args(["--device", "wgpu"]));
    assert!(ok, "{err}");
    assert!(err.contains("on wgpu"), "{err}");
    assert_eq!(gpu, cpu);

    // The device check: logits unsteered, steered and gated, a capture, the gate's
    // decisions and a reply, each within its tolerance of the CPU's.
    let (ok, out, err) = run(masteer().args(["check", "--device", "wgpu"]));
    eprintln!("{out}");
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("wgpu agrees with the CPU"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.ends_with(" ok")).count(),
        8,
        "{out}"
    );
    assert!(!out.contains("FAILED"), "{out}");
}

/// `masteer check` on the CPU against itself: every difference exactly zero (the CPU
/// path is deterministic), and a device whose backend is missing is a clear error.
#[test]
fn check_compares_a_device_with_the_cpu() {
    let (ok, out, err) = run(masteer().args(["check", "--device", "cpu"]));
    assert!(ok, "{out}\n{err}");
    let rows: Vec<&str> = out.lines().filter(|l| l.contains("max |Δ|")).collect();
    assert_eq!(rows.len(), 7, "{out}");
    for r in &rows {
        assert!(r.contains("max |Δ| 0.00000  mean 0.000000"), "{r}");
    }
    assert!(out.contains("cpu agrees with the CPU"), "{out}");
    // The CPU is deterministic, so its two replies are the same words.
    assert!(
        out.lines()
            .any(|l| l.starts_with("greedy reply") && l.ends_with(" same")),
        "{out}"
    );
    if !cfg!(feature = "cuda") {
        let (ok, _, err) = run(masteer().args(["check", "--device", "cuda"]));
        assert!(!ok);
        assert!(err.contains("cuda") && !err.contains("panicked"), "{err}");
    }
}
