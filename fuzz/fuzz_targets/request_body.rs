//! The server's request parser: JSON bodies of `/v1/chat/completions` and
//! `/v1/completions` into the internal request. The first byte picks the endpoint.
//! Every input must give a request within the limits or a 400 whose body is JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masteer_server::api::{parse_chat, parse_completion, RequestLimits};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let limits = RequestLimits::default();
    let parsed = if which % 2 == 0 {
        parse_chat(body, &limits)
    } else {
        parse_completion(body, &limits)
    };
    match parsed {
        Ok(r) => {
            assert!(r.max_tokens >= 1 && r.max_tokens <= limits.max_tokens);
            assert!(r.temperature.is_finite());
        }
        Err(e) => {
            assert_eq!(e.status, 400);
            let v: serde_json::Value = serde_json::from_str(&e.body()).expect("error body is JSON");
            assert!(v["error"]["message"].is_string());
        }
    }
});
