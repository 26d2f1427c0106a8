//! Figure-level recall and precision of the extractor against answers labelled cell by cell
//! (tests/fixtures/corpus, tests/fixtures/realworld). Shared by the extract tests and the
//! extraction benchmark.
//!
//! A labelled figure counts as found when an extracted figure of the same table has the same row
//! and column labels (markers apart), the same raw text and the same value; each extracted figure
//! answers one labelled figure at most. Precision is found / extracted figures (every observation
//! that is not text: numbers, suppressed, nil, not available).

use std::path::Path;

use pqwatch::extract::value::split_markers;
use pqwatch::extract::{extract, Kind};
use serde_json::Value;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Score {
    pub labelled: usize,
    pub extracted: usize,
    pub found: usize,
}

impl Score {
    pub fn recall(&self) -> f64 {
        self.found as f64 / self.labelled.max(1) as f64
    }

    pub fn precision(&self) -> f64 {
        self.found as f64 / self.extracted.max(1) as f64
    }
}

/// The labelled answers of a folder, by file stem, in name order.
pub fn labelled(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_stem().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

/// A labelled figure's labels without markers: `row_clean` where the labeller gave it, else the
/// published labels with written markers split off.
fn clean_labels(e: &Value, clean: &str, published: &str) -> Vec<String> {
    match e.get(clean).and_then(Value::as_array) {
        Some(a) => a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
        None => e[published]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| split_markers(s.as_str().unwrap()).0)
            .collect(),
    }
}

/// Scores one labelled answer; `misses` gets a line for every labelled figure not found and every
/// extracted figure that answers none.
pub fn score_answer(answer: &Value, misses: &mut Vec<String>) -> Score {
    let x = extract(answer["answer_html"].as_str().unwrap());
    let figures: Vec<(usize, &pqwatch::extract::Observation)> = x
        .tables
        .iter()
        .flat_map(|t| t.observations.iter().map(move |o| (t.index, o)))
        .filter(|(_, o)| o.kind != Kind::Text)
        .collect();
    let mut used = vec![false; figures.len()];
    let expected = answer["expected"].as_array().unwrap();
    let mut found = 0;
    for e in expected {
        let table = e["table"].as_u64().unwrap() as usize;
        let row = clean_labels(e, "row_clean", "row");
        let column = clean_labels(e, "column_clean", "column");
        let hit = figures.iter().enumerate().position(|(i, (t, o))| {
            !used[i]
                && *t == table
                && o.row == row
                && o.column == column
                && o.raw == e["raw"]
                && o.value == e["value"].as_f64()
        });
        match hit {
            Some(i) => {
                used[i] = true;
                found += 1;
            }
            None => misses.push(format!(
                "missed: table {table} {row:?} × {column:?} = {} ({})",
                e["raw"], e["value"]
            )),
        }
    }
    for (i, (t, o)) in figures.iter().enumerate() {
        if !used[i] {
            misses.push(format!(
                "extra: table {t} {:?} × {:?} = {:?}",
                o.row, o.column, o.raw
            ));
        }
    }
    Score {
        labelled: expected.len(),
        extracted: figures.len(),
        found,
    }
}

/// Scores every labelled answer of a folder; misses are prefixed with the file's name.
pub fn score_dir(dir: &Path, misses: &mut Vec<String>) -> Score {
    let mut total = Score::default();
    for (name, answer) in labelled(dir) {
        let mut m = Vec::new();
        let s = score_answer(&answer, &mut m);
        misses.extend(m.into_iter().map(|l| format!("{name}: {l}")));
        total.labelled += s.labelled;
        total.extracted += s.extracted;
        total.found += s.found;
    }
    total
}
