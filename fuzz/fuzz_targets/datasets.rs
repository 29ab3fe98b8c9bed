//! The dataset loaders: sample-set JSONL, CAA JSON (both A/B forms) and TruthfulQA
//! (CSV and the MC JSON). The first byte picks the format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masteer_datagen::formats::{caa, truthfulqa};
use masteer_datagen::SampleSet;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let _ = SampleSet::read(rest, "fuzz.jsonl");
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(items) = caa::parse(text, "fuzz.json") {
                    let _ = caa::to_samples(&items, caa::Wanted::NotMatching, "fuzz");
                }
            }
        }
        2 => {
            if let Ok(rows) = truthfulqa::read_csv(rest, "fuzz.csv") {
                let _ = truthfulqa::to_samples(&rows, "fuzz");
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = truthfulqa::parse_mc(text, "fuzz_mc.json");
            }
        }
    }
});
