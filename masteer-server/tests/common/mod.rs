//! Shared helpers of the server tests: a real artifact (a small generation-grounded
//! repair of the harmful-requests issue on the embedded model), a server on a free
//! loopback port, and a plain HTTP client.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use masteer_core::backend::{default_device, DefaultBackend};
use masteer_core::grounded::Behaviour;
use masteer_core::LoadedModel;
use masteer_server::{Server, ServerConfig};

/// The embedded model (a fresh copy per server: the engine owns its model).
pub fn load_model() -> LoadedModel<DefaultBackend> {
    LoadedModel::load_default(&default_device()).expect("load the embedded model")
}

/// An artifact with a gate, made once per test binary by a smoke-sized grounded repair
/// of "helps with harmful requests" (about 30 s on 2 cores).
pub fn artifact() -> PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    DIR.get_or_init(|| {
        let lm = load_model();
        let repair = Behaviour::HarmfulRequests
            .smoke_repair(&lm)
            .expect("a smoke-sized repair");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("artifact");
        repair.library.save(&path).expect("save the artifact");
        (dir, path)
    })
    .1
    .clone()
}

/// A running server and how to stop it.
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Stop accepting, let requests in flight finish, and wait for the server.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Start a server with `config` on a free loopback port.
pub fn start(config: ServerConfig) -> Running {
    let server = Server::new(load_model(), &config).expect("start the server");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx
                .send(l.local_addr().expect("address"))
                .expect("send");
            server
                .serve(l, async move {
                    let _ = stop_rx.await;
                })
                .await
                .expect("serve");
        });
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server did not start");
    Running {
        base: format!("http://{addr}"),
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// An HTTP client that returns every status as a value.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// POST JSON text; returns status, `Retry-After` and body.
pub fn post(url: &str, body: &str) -> (u16, Option<String>, String) {
    let mut r = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .expect("request");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("body");
    (status, retry, text)
}

/// GET; returns status and body.
pub fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().expect("request");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().expect("body"))
}

/// A chat request body.
pub fn chat_body(user: &str, max_tokens: usize, steering: Option<serde_json::Value>) -> String {
    let mut v = serde_json::json!({
        "model": "smollm2",
        "messages": [{"role": "user", "content": user}],
        "max_tokens": max_tokens,
        "temperature": 0,
    });
    if let Some(s) = steering {
        v["steering"] = s;
    }
    v.to_string()
}
