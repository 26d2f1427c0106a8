//! The pure extractor: an answer's HTML in, its numeric tables out, each cell an observation with
//! its row and column labels, value, kind, unit and period. No I/O, no clock; bad HTML becomes
//! tables with problems, never a panic or an error.
//!
//! Tables come from `<table>` elements and, in an answer without one, from runs of label–number
//! lines (`<p>2019: 10</p>`, or a year line followed by a number line).

pub mod period;
pub mod render;
pub mod table;
pub mod value;

use scraper::{ElementRef, Html, Node};
use serde::Serialize;

pub use period::Period;
pub use value::{Kind, Unit};

/// The JSON shape of `pqwatch extract --json`: a stable interface (see the README).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Extraction {
    pub tables: Vec<Table>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Table {
    /// Position among the answer's tables (HTML tables first in order, then line tables).
    pub index: usize,
    /// The title that introduces it, footnote markers removed.
    pub caption: Option<String>,
    /// The footnote markers that were in the caption.
    pub caption_markers: Vec<String>,
    /// The header rows' text, after spans are expanded.
    pub header_rows: Vec<Vec<String>>,
    /// The other rows' text (section rows included), after spans are expanded.
    pub rows: Vec<Vec<String>>,
    pub observations: Vec<Observation>,
    /// The notes and key that follow the table.
    pub notes: Vec<String>,
    /// What could not be read, as data.
    pub problems: Vec<String>,
}

impl Table {
    fn new(
        index: usize,
        caption: Option<String>,
        header_rows: Vec<Vec<String>>,
        rows: Vec<Vec<String>>,
        observations: Vec<Observation>,
        notes: Vec<String>,
        problems: Vec<String>,
    ) -> Table {
        let (caption, caption_markers) = match caption {
            Some(c) => {
                let (text, markers) = caption_markers(&c);
                (Some(text).filter(|t| !t.is_empty()), markers)
            }
            None => (None, vec![]),
        };
        Table {
            index,
            caption,
            caption_markers,
            header_rows,
            rows,
            observations,
            notes,
            problems,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observation {
    /// Row labels, outer to inner (a spanning section row first).
    pub row: Vec<String>,
    /// Column labels, outer to inner.
    pub column: Vec<String>,
    /// The cell as written.
    pub raw: String,
    pub value: Option<f64>,
    pub kind: Kind,
    pub unit: Option<Unit>,
    /// 1e3, 1e6 or 1e9 where the cell or its header says so (`£1.2m`, `£m`).
    pub scale: Option<f64>,
    /// The period the row or column labels name, as written and as a comparable key.
    pub period: Option<Period>,
    /// Footnote markers glued to the value.
    pub markers: Vec<String>,
    /// Row and column in the expanded grid, from 0, header rows included.
    pub cell: [usize; 2],
}

/// A block of the answer in reading order.
enum Block<'a> {
    Text(String),
    Table(ElementRef<'a>),
}

/// Extracts every table of an answer.
pub fn extract(html: &str) -> Extraction {
    let doc = Html::parse_fragment(html);
    let mut blocks = Vec::new();
    collect_blocks(doc.root_element(), &mut blocks);
    let table_positions: Vec<usize> = blocks
        .iter()
        .enumerate()
        .filter_map(|(i, b)| matches!(b, Block::Table(_)).then_some(i))
        .collect();
    let mut tables = Vec::new();
    for (n, &pos) in table_positions.iter().enumerate() {
        let Block::Table(el) = blocks[pos] else {
            continue;
        };
        let caption = match pos.checked_sub(1).map(|p| &blocks[p]) {
            Some(Block::Text(t)) if t.chars().count() <= 400 => Some(t.clone()),
            _ => None,
        };
        let next = table_positions.get(n + 1).copied().unwrap_or(blocks.len());
        // The paragraph just before the next table is its caption, not a note of this one.
        let notes_end = if next < blocks.len() && next > pos + 1 {
            next - 1
        } else {
            next
        };
        let notes = blocks[pos + 1..notes_end]
            .iter()
            .filter_map(|b| match b {
                Block::Text(t) => Some(t.clone()),
                Block::Table(_) => None,
            })
            .collect();
        tables.push(table::extract_table(el, n, caption, notes));
    }
    if table_positions.is_empty() {
        let lines: Vec<String> = blocks
            .into_iter()
            .filter_map(|b| match b {
                Block::Text(t) => Some(t),
                Block::Table(_) => None,
            })
            .collect();
        tables.extend(line_tables(&lines));
    }
    Extraction { tables }
}

/// Extracts from plain text (one block a line), for answers kept as text.
pub fn extract_text(text: &str) -> Extraction {
    let lines: Vec<String> = text
        .lines()
        .map(value::clean)
        .filter(|l| !l.is_empty())
        .collect();
    Extraction {
        tables: line_tables(&lines),
    }
}

const BLOCK_TEXT: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "dt",
    "dd",
    "caption",
    "pre",
    "blockquote",
];

fn collect_blocks<'a>(el: ElementRef<'a>, out: &mut Vec<Block<'a>>) {
    let mut loose = String::new();
    for child in el.children() {
        match child.value() {
            Node::Text(t) => loose.push_str(t),
            Node::Element(e) => {
                let Some(child_el) = ElementRef::wrap(child) else {
                    continue;
                };
                let name = e.name();
                if name == "table" {
                    flush(&mut loose, out);
                    out.push(Block::Table(child_el));
                    // A layout table's inner tables, at any depth, are read on their own.
                    out.extend(
                        child_el
                            .descendants()
                            .skip(1)
                            .filter_map(ElementRef::wrap)
                            .filter(|t| t.value().name() == "table")
                            .map(Block::Table),
                    );
                } else if name == "br" {
                    loose.push('\n');
                } else if BLOCK_TEXT.contains(&name) && !has_block_child(child_el) {
                    flush(&mut loose, out);
                    for line in text_with_breaks(child_el).split('\n') {
                        let l = value::clean(line);
                        if !l.is_empty() {
                            out.push(Block::Text(l));
                        }
                    }
                } else if matches!(
                    name,
                    "strong" | "b" | "em" | "i" | "span" | "a" | "sup" | "sub" | "u"
                ) {
                    loose.push_str(&text_with_breaks(child_el));
                } else {
                    flush(&mut loose, out);
                    collect_blocks(child_el, out);
                }
            }
            _ => {}
        }
    }
    flush(&mut loose, out);
}

fn has_block_child(el: ElementRef<'_>) -> bool {
    el.descendants().skip(1).any(|n| {
        n.value()
            .as_element()
            .is_some_and(|e| e.name() == "table" || e.name() == "p" || e.name() == "div")
    })
}

fn flush(loose: &mut String, out: &mut Vec<Block<'_>>) {
    for line in loose.split('\n') {
        let l = value::clean(line);
        if !l.is_empty() {
            out.push(Block::Text(l));
        }
    }
    loose.clear();
}

fn text_with_breaks(el: ElementRef<'_>) -> String {
    let mut s = String::new();
    for node in el.descendants() {
        match node.value() {
            Node::Text(t) => s.push_str(t),
            Node::Element(e) if e.name() == "br" => s.push('\n'),
            _ => {}
        }
    }
    s
}

/// Splits footnote markers out of a caption: `Serious (1) assaults`, `staff1 within`, a leading
/// `*`.
fn caption_markers(caption: &str) -> (String, Vec<String>) {
    let mut markers = Vec::new();
    let mut words = Vec::new();
    for (i, w) in caption.split_whitespace().enumerate() {
        let mut w = w;
        if i == 0 {
            if let Some(rest) = w.strip_prefix('*').filter(|r| !r.is_empty()) {
                markers.push("*".to_owned());
                w = rest;
            }
        }
        let inner = w
            .strip_prefix('(')
            .and_then(|x| x.strip_suffix(')'))
            .or_else(|| w.strip_prefix('[').and_then(|x| x.strip_suffix(']')));
        if let Some(m) =
            inner.filter(|m| !m.is_empty() && m.len() <= 2 && m.chars().all(|c| c.is_ascii_digit()))
        {
            markers.push(m.to_owned());
            continue;
        }
        let may_have_marker = w.ends_with(|c: char| {
            c.is_ascii_digit() || matches!(c, ')' | ']' | '*') || c.is_numeric()
        });
        let (word, mut ms) = if may_have_marker {
            value::split_markers(w)
        } else {
            (String::new(), Vec::new())
        };
        if !ms.is_empty() && !word.is_empty() {
            markers.append(&mut ms);
            words.push(word);
        } else {
            words.push(w.to_owned());
        }
    }
    (words.join(" "), markers)
}

/// Runs of label–number lines as two-column tables: `2019: 10` lines, or a period line then a
/// number line, optionally under two header lines ("Year", "Amount").
fn line_tables(lines: &[String]) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (pairs, used) = run_at(lines, i);
        if pairs.len() < 2 {
            i += 1;
            continue;
        }
        // Two short word lines just before a paired run are its header.
        let mut start = i;
        let mut column = Vec::new();
        if used > pairs.len() && i >= 2 {
            let (a, b) = (&lines[i - 2], &lines[i - 1]);
            let wordy = |s: &String| {
                s.chars().count() <= 40
                    && value::parse_cell(s).kind == Kind::Text
                    && !is_period_line(s)
            };
            if wordy(a) && wordy(b) {
                column.push(value::split_markers(b).0);
                start = i - 2;
            }
        }
        let caption = start.checked_sub(1).map(|p| lines[p].clone());
        let end = i + used;
        let next_start = (end..lines.len())
            .find(|&j| run_at(lines, j).0.len() >= 2)
            .unwrap_or(lines.len());
        let notes = lines[end..next_start.min(lines.len())].to_vec();
        let index = tables.len();
        let caption_unit = caption.as_deref().and_then(value::unit_hint);
        let observations = pairs
            .iter()
            .enumerate()
            .map(|(k, (label, raw))| {
                let cell = value::parse_cell(raw);
                let label = value::split_markers(label).0;
                Observation {
                    period: period::parse(&label),
                    row: vec![label],
                    column: column.clone(),
                    raw: raw.clone(),
                    value: cell.value,
                    kind: cell.kind,
                    unit: cell
                        .unit
                        .or_else(|| column.iter().find_map(|c| value::unit_hint(c)))
                        .or(caption_unit)
                        .or(Some(Unit::Count)),
                    scale: cell.scale,
                    markers: cell.markers,
                    cell: [k, 1],
                }
            })
            .collect();
        tables.push(Table::new(
            index,
            caption,
            if column.is_empty() {
                vec![]
            } else {
                vec![vec![lines[start].clone(), lines[start + 1].clone()]]
            },
            pairs
                .iter()
                .map(|(l, v)| vec![l.clone(), v.clone()])
                .collect(),
            observations,
            notes,
            vec![],
        ));
        i = end;
    }
    tables
}

fn is_period_line(s: &str) -> bool {
    period::parse(&value::split_markers(s).0).is_some()
}

fn is_value_line(s: &str) -> bool {
    let k = value::parse_cell(s).kind;
    k != Kind::Text
}

/// The label–value pairs of a run starting at `i`, and how many lines it used.
fn run_at(lines: &[String], i: usize) -> (Vec<(String, String)>, usize) {
    // "Label: 10" lines.
    let mut pairs = Vec::new();
    let mut j = i;
    while j < lines.len() {
        match split_label_value(&lines[j]) {
            Some(p) => pairs.push(p),
            None => break,
        }
        j += 1;
    }
    if pairs.len() >= 2 {
        return (pairs, j - i);
    }
    // A period line, then a value line.
    let mut pairs = Vec::new();
    let mut j = i;
    while j + 1 < lines.len() && is_period_line(&lines[j]) && is_value_line(&lines[j + 1]) {
        pairs.push((lines[j].clone(), lines[j + 1].clone()));
        j += 2;
    }
    (pairs, j - i)
}

fn split_label_value(line: &str) -> Option<(String, String)> {
    let (label, val) = line
        .rsplit_once(": ")
        .or_else(|| line.rsplit_once(" - "))
        .or_else(|| line.rsplit_once(" – "))
        .or_else(|| line.rsplit_once(" = "))?;
    let label = label.trim();
    let val = val.trim();
    (!label.is_empty() && label.chars().count() <= 80 && is_value_line(val))
        .then(|| (label.to_owned(), val.to_owned()))
}
