//! Extraction benchmark: recall and precision of figures on the labelled corpus and on the
//! real-world set (tests/fixtures/realworld), then throughput (answers/s, MB/s) and
//! peak RSS over 10,000 answers (the corpus replicated), side by side in one run with
//! `pandas.read_html` (lxml) on the same HTML.
//!
//! Run: `cargo bench --bench extract` (needs `pip install pandas lxml` for the comparison;
//! PQBENCH_RUNS sets the runs, PQBENCH_ANSWERS the answers per run).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use pqwatch::extract::extract;
use serde_json::Value;

#[path = "../tests/support/score.rs"]
mod score;

fn corpus() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// The measured loop, run in a child process so that its peak RSS is its own.
fn child(n: usize) {
    let htmls: Vec<String> = corpus()
        .iter()
        .map(|c| c["answer_html"].as_str().unwrap().to_owned())
        .collect();
    let mut bytes = 0usize;
    let mut observations = 0usize;
    let start = Instant::now();
    for i in 0..n {
        let html = &htmls[i % htmls.len()];
        bytes += html.len();
        observations += extract(html)
            .tables
            .iter()
            .map(|t| t.observations.len())
            .sum::<usize>();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"answers": n, "bytes": bytes, "secs": secs, "cells": observations})
    );
}

/// Recall and precision of figures on one labelled folder, as the extract tests count them.
fn accuracy(folder: &str) -> score::Score {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder);
    score::score_dir(&dir, &mut Vec::new())
}

struct Run {
    secs: f64,
    bytes: f64,
    rss_mb: f64,
}

fn timed(cmd: &mut Command) -> Option<Run> {
    let out = cmd.output().ok()?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss_kb: f64 = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.lines().last()?).ok()?;
    Some(Run {
        secs: v["secs"].as_f64()?,
        bytes: v["bytes"].as_f64()?,
        rss_mb: rss_kb / 1024.0,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = std::env::var("PQBENCH_ANSWERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(args[i + 1].parse().unwrap());
        return;
    }
    let runs: usize = std::env::var("PQBENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for folder in ["corpus", "realworld"] {
        let a = accuracy(folder);
        println!(
            "figures on tests/fixtures/{folder}: recall {}/{} = {:.4}, precision {}/{} = {:.4}",
            a.found,
            a.labelled,
            a.recall(),
            a.found,
            a.extracted,
            a.precision()
        );
    }
    let me = std::env::current_exe().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pandas_read_html.py");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let r = timed(
            Command::new("/usr/bin/time")
                .arg("-v")
                .arg(&me)
                .args(["--child", &n.to_string()]),
        )
        .expect("the pqwatch child run failed");
        println!(
            "run {run} pqwatch: {n} answers in {:.3} s = {:.0} answers/s, {:.1} MB/s, peak RSS {:.1} MB",
            r.secs,
            n as f64 / r.secs,
            r.bytes / r.secs / 1e6,
            r.rss_mb
        );
        ours.push(r);
        match timed(
            Command::new("/usr/bin/time")
                .arg("-v")
                .arg("python3")
                .arg(&script)
                .arg(n.to_string()),
        ) {
            Some(p) => {
                println!(
                    "run {run} pandas.read_html (lxml): {n} answers in {:.3} s = {:.0} answers/s, {:.2} MB/s, peak RSS {:.1} MB",
                    p.secs,
                    n as f64 / p.secs,
                    p.bytes / p.secs / 1e6,
                    p.rss_mb
                );
                theirs.push(p);
            }
            None => println!("run {run} pandas: not run (pip install pandas lxml)"),
        }
    }
    let ours_rate = median(ours.iter().map(|r| n as f64 / r.secs).collect());
    let ours_mbs = median(ours.iter().map(|r| r.bytes / r.secs / 1e6).collect());
    let ours_rss = median(ours.iter().map(|r| r.rss_mb).collect());
    println!(
        "pqwatch: median {ours_rate:.0} answers/s, {ours_mbs:.1} MB/s, peak RSS {ours_rss:.1} MB ({runs} runs)"
    );
    if !theirs.is_empty() {
        let their_rate = median(theirs.iter().map(|r| n as f64 / r.secs).collect());
        let ratios: Vec<f64> = ours
            .iter()
            .zip(&theirs)
            .map(|(o, t)| t.secs / o.secs)
            .collect();
        println!(
            "pandas.read_html: median {their_rate:.0} answers/s; pqwatch is {:.1}x faster (median of per-run ratios; min {:.1}x, max {:.1}x)",
            median(ratios.clone()),
            ratios.iter().cloned().fold(f64::INFINITY, f64::min),
            ratios.iter().cloned().fold(0.0, f64::max)
        );
    }
}
