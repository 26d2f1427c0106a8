//! Diff benchmark: the time to file and diff one new answer when the store holds 1,000, 10,000
//! and 100,000 statistics (it must stay flat), and the false revisions per 100 answers when the
//! corpus answers are published again unchanged or with their rows reordered.
//!
//! Run: `cargo bench --bench diff` (PQBENCH_SIZES=1000,10000 to choose the sizes).

use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use pqwatch::model::{DocKind, Document};
use pqwatch::pipeline::record_figures;
use pqwatch::store::Store;
use serde_json::{json, Value};

fn doc(id: i64, heading: &str, html: &str) -> Document {
    let rec = json!({"value": {"id": id, "uin": id.to_string(), "house": "Commons",
        "heading": heading, "dateTabled": "2024-01-01T00:00:00", "dateAnswered": "2024-01-05T00:00:00",
        "answeringBodyId": 54, "answeringBodyName": "Ministry of Justice", "answerText": html}});
    Document::from_record(DocKind::Question, &rec).unwrap()
}

/// An alphabetic pseudo-word for `i` (the word splitter ignores digits).
fn word(mut i: usize) -> String {
    let mut w = String::new();
    for _ in 0..4 {
        w.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
    }
    w
}

/// A two-prison table over two years: `leeds` and `hull` are each prison's figures for the two
/// years.
fn table(caption: &str, leeds: [u32; 2], hull: [u32; 2], years: (u32, u32)) -> String {
    format!(
        "<p>{caption}</p><table><tr><th>Prison</th><th>{}</th><th>{}</th></tr>\
         <tr><td>Leeds</td><td>{}</td><td>{}</td></tr><tr><td>Hull</td><td>{}</td><td>{}</td></tr></table>",
        years.0, years.1, leeds[0], leeds[1], hull[0], hull[1]
    )
}

/// A statistic of its own: five words drawn from 20,000 (so two captions rarely share one), and
/// figures of its own (so no two statistics agree on their figures by chance).
struct Spec {
    caption: String,
    leeds: [u32; 2],
    hull: [u32; 2],
}

fn spec(rng: &mut fastrand::Rng) -> Spec {
    let ws: Vec<String> = (0..5).map(|_| word(rng.usize(0..20_000))).collect();
    let mut fig = || rng.u32(100..1_000_000);
    Spec {
        caption: format!("{} staff", ws.join(" ")),
        leeds: [fig(), fig()],
        hull: [fig(), fig()],
    }
}

fn save(store: &mut Store, docs: Vec<Document>) {
    let items: Vec<(Document, String, Vec<String>)> = docs
        .into_iter()
        .map(|d| (d, "f".to_owned(), vec!["prison".to_owned()]))
        .collect();
    let now = Utc::now();
    store
        .save_documents(&items, now, |rec, d, v| {
            record_figures(rec, d, v, now, None)
        })
        .unwrap();
}

fn vm(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn flat(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("bench.sqlite")).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let specs: Vec<Spec> = (0..n).map(|_| spec(&mut rng)).collect();
    let t = Instant::now();
    for (chunk_i, chunk) in specs.chunks(1000).enumerate() {
        let docs = chunk
            .iter()
            .enumerate()
            .map(|(i, sp)| {
                let id = (chunk_i * 1000 + i) as i64;
                let html = table(&sp.caption, sp.leeds, sp.hull, (2022, 2023));
                doc(id, "Prisons: Statistics", &html)
            })
            .collect();
        save(&mut store, docs);
    }
    let fill = t.elapsed().as_secs_f64();
    let stats = store.series_list().unwrap().len();
    let rss_before = vm("VmRSS:");
    let mut times = Vec::new();
    // Each probe is a new edition of a statistic already filed: its 2023 figures again (Leeds
    // unchanged, Hull revised by one) and 2024 new.
    for k in 0..25 {
        let sp = &specs[rng.usize(0..n)];
        let html = table(
            &sp.caption,
            [sp.leeds[1], 7],
            [sp.hull[1] + 1, 9],
            (2023, 2024),
        );
        let d = doc(10_000_000 + k, "Prisons: Statistics", &html);
        let t = Instant::now();
        save(&mut store, vec![d]);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let counts = store.change_counts().unwrap();
    println!(
        "{stats} statistics (filled in {fill:.1} s): one new answer filed and diffed in median {:.2} ms (min {:.2}, max {:.2}; 25 answers); RSS {:.1} MB -> {:.1} MB; changes so far {:?}",
        median(times.clone()),
        times.iter().cloned().fold(f64::INFINITY, f64::min),
        times.iter().cloned().fold(0.0, f64::max),
        rss_before,
        vm("VmRSS:"),
        counts
    );
}

/// Rows after the header, reversed (only for tables without spanning section rows).
fn reorder(html: &str) -> Option<String> {
    if html.contains("colspan") || html.matches("<table").count() != 1 {
        return None;
    }
    let start = html.find("<table>")? + "<table>".len();
    let end = html.find("</table>")?;
    let rows: Vec<&str> = html[start..end]
        .split("<tr>")
        .filter(|r| !r.is_empty())
        .collect();
    let mut out = rows[..1].to_vec();
    out.extend(rows[1..].iter().rev());
    let body: String = out.iter().map(|r| format!("<tr>{r}")).collect();
    Some(format!("{}{}{}", &html[..start], body, &html[end..]))
}

fn precision() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("precision.sqlite")).unwrap();
    let corpus_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let corpus: Vec<Value> = files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    let mut answers = 0;
    let mut id = 0;
    for round in 0..3 {
        for c in &corpus {
            let html = c["answer_html"].as_str().unwrap();
            let html = match round {
                2 => match reorder(html) {
                    Some(h) => h,
                    None => continue,
                },
                _ => html.to_owned(),
            };
            id += 1;
            save(
                &mut store,
                vec![doc(id, c["heading"].as_str().unwrap(), &html)],
            );
            answers += 1;
        }
    }
    let counts = store.change_counts().unwrap();
    let revised = *counts.get("revised").unwrap_or(&0);
    println!(
        "precision: {answers} answers (7 corpus answers, the same 7 published again, and {} with rows reordered): {revised} revised = {:.1} false revisions per 100 answers; {} confirmed, {} new; {} statistics",
        answers - 14,
        100.0 * revised as f64 / answers as f64,
        counts.get("confirmed").unwrap_or(&0),
        counts.get("new").unwrap_or(&0),
        store.series_list().unwrap().len()
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::var("PQBENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    precision();
    for n in sizes {
        flat(n);
    }
}
