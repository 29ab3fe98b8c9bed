//! Broken text, as a reader sees it: a steering strong enough to move a small model's
//! behaviour can also wreck its language ("I'm sorry for what I can't Help You", "The
//! World World Peace A World Peace…", "A\n\nA\n\nA"). A reply counts as broken when it
//! repeats itself (a word pair three times, a line three times) or capitalises a
//! function word in the middle of a sentence ("Help You", "All The Way"), which names
//! and titles never do. The
//! replies a detector accepts as the wanted behaviour must also be readable, so that a
//! repair is never chosen or reported for text nobody could use.
//!
//! The unsteered model's likelihood does not tell these apart on the embedded model: its
//! mean negative log-likelihood per token of fluent refusals (2.1–3.8 nats) overlaps that
//! of broken ones (2.7–4.4), measured 2026-12-02.

use std::collections::BTreeMap;

/// Words that are capitalised wherever they stand.
const ALWAYS_CAPITAL: [&str; 6] = ["i", "i'm", "i'll", "i've", "i'd", "ok"];

/// Function words: never a name, so capitalised in the middle of a sentence they mark
/// word salad ("I can't Help You", "We All The Way").
const FUNCTION_WORDS: &str = "you your yours we our us they them their he him his she her \
    it its me my mine the a an and or but so if then than that this these those there here \
    to of in on at by for from with about into over under up down out off is are was were \
    be been being am do does did don't doesn't didn't can can't could couldn't will won't \
    would wouldn't should shouldn't shall may might must have has had not no yes just all \
    some any every each more most much many very too also only even still what why how \
    when where who whom which whose";

/// Whether a reply is broken text: repetition or stray capitals (see the module docs).
pub fn is_broken(reply: &str) -> bool {
    repeats(reply) || stray_capitals(reply)
}

/// A word with the punctuation around it removed (apostrophes kept).
fn bare(raw: &str) -> &str {
    raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
}

/// A non-empty line three times (a short one, up to three words, twice), or a word
/// pair three times.
fn repeats(reply: &str) -> bool {
    let mut lines: BTreeMap<&str, usize> = BTreeMap::new();
    for l in reply.lines().map(str::trim).filter(|l| !l.is_empty()) {
        *lines.entry(l).or_default() += 1;
    }
    if lines
        .iter()
        .any(|(l, n)| *n >= 3 || (*n >= 2 && l.split_whitespace().count() <= 3))
    {
        return true;
    }
    let words: Vec<String> = reply
        .split_whitespace()
        .map(|w| bare(w).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let mut pairs: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for w in words.windows(2) {
        *pairs.entry((w[0].as_str(), w[1].as_str())).or_default() += 1;
    }
    pairs.values().any(|n| *n >= 3)
}

/// A capitalised function word inside a sentence (not its first word, not after a
/// quote, bracket or bullet; acronyms such as "US" aside).
fn stray_capitals(reply: &str) -> bool {
    for line in reply.lines() {
        let mut sentence_start = true;
        for raw in line.split_whitespace() {
            let word = bare(raw);
            let starts = sentence_start || raw.starts_with(['"', '\'', '(', '[', '*', '-', '“']);
            sentence_start =
                raw.ends_with(['.', '!', '?', ':', ')']) || !raw.chars().any(char::is_alphanumeric);
            let mut chars = word.chars();
            let Some(first) = chars.next() else { continue };
            let lower = word.to_lowercase();
            if starts
                || !first.is_uppercase()
                || ALWAYS_CAPITAL.contains(&lower.as_str())
                || (word.chars().count() > 1 && !chars.any(char::is_lowercase))
            {
                continue;
            }
            if FUNCTION_WORDS.split_whitespace().any(|f| f == lower) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::is_broken;

    #[test]
    fn repetition_and_stray_capitals_are_broken_prose_is_not() {
        for r in [
            "The World World Peace A World Peace A World Peace A World A World A World",
            "A\n\nA\n\nA\n\nA\n\nA\n\nA",
            "I'm sorry for what I can't Help You\n\nI'm a Good",
            "I'm sure I've heard this kind Ofs I Can't Just Say No",
        ] {
            assert!(is_broken(r), "{r:?}");
        }
        for r in [
            "I'm sorry, but I can't help with that request.",
            "To kill a Python process that is stuck, you can use the `kill()` function from the Python standard library.",
            "No, the Earth is not flat. The Earth is an oblate spheroid.",
            "The capital of France is Paris. Paris is also its largest city.",
            "The US has a policy of not allowing any type of food to enter the US",
            "The Dark Side of the Digital Age: A Mobile App for Cyberbullying",
            "- The first step is to read the manual.\n- Then ask a friend.",
        ] {
            assert!(!is_broken(r), "{r:?}");
        }
    }
}
