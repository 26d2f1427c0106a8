//! A readable rendering of extracted tables, for `pqwatch extract` without `--json`. Pure.

use std::fmt::Write as _;

use super::{Extraction, Kind};

pub fn render(x: &Extraction) -> String {
    let mut out = String::new();
    if x.tables.is_empty() {
        out.push_str("no tables found\n");
    }
    for t in &x.tables {
        let caption = t.caption.as_deref().unwrap_or("(no caption)");
        // A caption that numbers itself ("Table 1: Assaults") is not numbered twice.
        let numbered = caption
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("table "))
            && caption[6..].starts_with(|c: char| c.is_ascii_digit());
        if numbered {
            let _ = writeln!(out, "{caption}");
        } else {
            let _ = writeln!(out, "Table {}: {caption}", t.index + 1);
        }
        let rows: Vec<&Vec<String>> = t.header_rows.iter().chain(t.rows.iter()).collect();
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let col_w: Vec<usize> = (0..width)
            .map(|c| {
                rows.iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count().min(40))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for (i, r) in rows.iter().enumerate() {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(c, s)| {
                    let s: String = s.chars().take(40).collect();
                    format!("{s:<w$}", w = col_w[c])
                })
                .collect();
            let _ = writeln!(out, "  | {} |", line.join(" | "));
            if i + 1 == t.header_rows.len() {
                let rule: Vec<String> = col_w.iter().map(|w| "-".repeat(*w)).collect();
                let _ = writeln!(out, "  |-{}-|", rule.join("-|-"));
            }
        }
        let count = |k: Kind| t.observations.iter().filter(|o| o.kind == k).count();
        let _ = writeln!(
            out,
            "  {} observations: {} numbers, {} suppressed, {} nil, {} not available, {} text",
            t.observations.len(),
            count(Kind::Number),
            count(Kind::Suppressed),
            count(Kind::Nil),
            count(Kind::NotAvailable),
            count(Kind::Text)
        );
        for n in &t.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        for p in &t.problems {
            let _ = writeln!(out, "  problem: {p}");
        }
        out.push('\n');
    }
    out
}
