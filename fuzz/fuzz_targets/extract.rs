//! Fuzz target: the extractor must never panic on any input, as HTML or as text, and every
//! table's grid must be rectangular.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let x = pqwatch::extract::extract(&text);
    for t in &x.tables {
        let widths: std::collections::HashSet<usize> =
            t.header_rows.iter().chain(&t.rows).map(Vec::len).collect();
        assert!(widths.len() <= 1, "ragged grid: {widths:?}");
    }
    let _ = pqwatch::extract::extract_text(&text);
});
