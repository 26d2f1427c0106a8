//! Invariants of ARCHITECTURE.md that grep can check, checked on every test run.

use std::path::{Path, PathBuf};

fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    let mut out = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for d in ["src", "tests", "benches"] {
        walk(&root.join(d), &mut out);
    }
    out
}

fn name(p: &Path) -> String {
    p.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn every_source_file_opens_with_a_line_saying_what_it_owns() {
    for (p, text) in sources() {
        assert!(
            text.starts_with("//!"),
            "{} must open with a //! line",
            name(&p)
        );
    }
}

#[test]
fn sql_lives_only_in_the_store_and_http_only_in_fetch() {
    for (p, text) in sources() {
        let n = name(&p);
        if !n.starts_with("src/") {
            continue;
        }
        if !n.starts_with("src/store") {
            assert!(!text.contains("rusqlite"), "{n} uses rusqlite");
        }
        if n != "src/fetch.rs" {
            assert!(!text.contains("reqwest::Client"), "{n} makes HTTP requests");
        }
        if n == "src/extract.rs" || n.starts_with("src/extract/") || n == "src/watch.rs" {
            for io in ["std::fs", "std::net", "tokio", "Utc::now", "SystemTime"] {
                assert!(!text.contains(io), "{n} is pure but mentions {io}");
            }
        }
    }
}
