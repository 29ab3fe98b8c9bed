//! The chat templates of popular models (`fixtures/chat_templates/`, from llama.cpp's
//! test set, MIT — licence beside them) rendered by `ChatTemplate` (minijinja) must
//! equal what Python's jinja2 renders for the same conversations (`expected.jsonl`:
//! 102 renders of 34 templates × 3 conversations, made with jinja2 as Hugging Face's
//! `apply_chat_template` runs it; eight of them are errors in jinja2 too — a template
//! that needs `functions`, Gemma 2 refusing a system role — and must be errors here).
//! A regression test: every case passed when it was added.

use masteer_models::{ChatMessage, ChatTemplate};

#[derive(serde::Deserialize)]
struct Case {
    template: String,
    conversation: String,
    add_generation_prompt: bool,
    messages: Vec<ChatMessage>,
    bos_token: String,
    eos_token: String,
    /// What jinja2 rendered; absent where jinja2 raised `error` instead.
    rendered: Option<String>,
    error: Option<String>,
}

#[test]
fn popular_chat_templates_render_as_jinja2_does() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat_templates");
    let text = std::fs::read_to_string(dir.join("expected.jsonl")).unwrap();
    let cases: Vec<Case> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cases.len(), 102);
    let mut failed = Vec::new();
    let mut templates = std::collections::BTreeSet::new();
    for c in &cases {
        templates.insert(c.template.clone());
        let source = std::fs::read_to_string(dir.join(&c.template)).unwrap();
        let got = ChatTemplate::new(&source, &c.bos_token, &c.eos_token)
            .and_then(|t| t.render(&c.messages, c.add_generation_prompt));
        match (got, &c.rendered, &c.error) {
            (Ok(s), Some(want), _) if s == *want => {}
            (Err(_), None, Some(_)) => {}
            (Ok(s), Some(want), _) => failed.push(format!(
                "{} / {}: rendered differently\n  got:  {s:?}\n  want: {want:?}",
                c.template, c.conversation
            )),
            (Ok(s), None, e) => failed.push(format!(
                "{} / {}: rendered {s:?} where jinja2 failed with {e:?}",
                c.template, c.conversation
            )),
            (Err(e), _, _) => failed.push(format!("{} / {}: {e}", c.template, c.conversation)),
        }
    }
    eprintln!(
        "chat templates: {} of {} renders equal jinja2's ({} templates)",
        cases.len() - failed.len(),
        cases.len(),
        templates.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
