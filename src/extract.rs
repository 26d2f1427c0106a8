//! The pure extractor: an answer's HTML in, its numeric tables out, each cell an observation with
//! its row and column labels, value, kind, unit and period. No I/O, no clock; bad HTML becomes
//! tables with problems, never a panic or an error.
//!
//! Tables come from `<table>` elements and, in an answer without one, from runs of label–number
//! lines (`<p>2019: 10</p>`, or a year line followed by a number line).

pub(crate) mod marker;
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
    /// The header rows' text, after spans are expanded (`<sup>` markers left out).
    pub header_rows: Vec<Vec<String>>,
    /// The other rows' text (section rows included), after spans are expanded.
    pub rows: Vec<Vec<String>>,
    pub observations: Vec<Observation>,
    /// The notes and key that follow the table.
    pub notes: Vec<String>,
    /// The notes that start with a footnote marker: which note each marker points to.
    pub footnotes: Vec<Footnote>,
    /// What could not be read, as data.
    pub problems: Vec<String>,
}

/// A note that explains a marker: `(1) Assaults on staff are a subset of all assault incidents.`
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Footnote {
    /// The marker, as labels and values carry it (`1`, `a`, `*`).
    pub marker: String,
    /// Index of the note in the table's `notes`.
    pub note: usize,
}

/// The parts of a table before its footnotes are linked.
pub(crate) struct TableParts {
    pub index: usize,
    /// Flattened, markers encoded.
    pub caption: Option<String>,
    pub header_rows: Vec<Vec<String>>,
    pub rows: Vec<Vec<String>>,
    pub observations: Vec<Observation>,
    /// Flattened, markers encoded.
    pub notes: Vec<String>,
    pub problems: Vec<String>,
}

impl Table {
    pub(crate) fn new(p: TableParts) -> Table {
        let (caption, caption_markers) = match p.caption {
            Some(c) => {
                let r = marker::resolve(&c);
                let (text, mut plain_markers) = caption_markers(&r.text);
                let mut markers = r.markers;
                markers.append(&mut plain_markers);
                (Some(text).filter(|t| !t.is_empty()), markers)
            }
            None => (None, vec![]),
        };
        let footnotes: Vec<Footnote> = p
            .notes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| {
                marker::note_markers(n)
                    .into_iter()
                    .map(move |marker| Footnote { marker, note: i })
            })
            .collect();
        let mut observations = p.observations;
        if !footnotes.is_empty() {
            for o in &mut observations {
                o.notes = footnotes
                    .iter()
                    .filter(|f| {
                        o.markers
                            .iter()
                            .chain(o.row_markers.iter().flatten())
                            .chain(o.column_markers.iter().flatten())
                            .any(|m| marker::same(m, &f.marker))
                    })
                    .map(|f| f.note)
                    .collect();
                o.notes.sort_unstable();
                o.notes.dedup();
            }
        }
        Table {
            index: p.index,
            caption,
            caption_markers,
            header_rows: p.header_rows,
            rows: p.rows,
            observations,
            notes: p.notes.iter().map(|n| marker::shown(n)).collect(),
            footnotes,
            problems: p.problems,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observation {
    /// Row labels, outer to inner (a spanning section row first), footnote markers removed.
    pub row: Vec<String>,
    /// The footnote markers of each row label (one list a label, often empty).
    pub row_markers: Vec<Vec<String>>,
    /// Column labels, outer to inner, footnote markers removed.
    pub column: Vec<String>,
    /// The footnote markers of each column label.
    pub column_markers: Vec<Vec<String>>,
    /// The cell as written (a `<sup>` marker left out: it is in `markers`).
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
    /// The notes (indices into the table's `notes`) that this figure's markers point to: its
    /// value's, its row labels' and its column labels'.
    pub notes: Vec<usize>,
    /// Row and column in the expanded grid, from 0, header rows included.
    pub cell: [usize; 2],
}

/// A block of the answer in reading order. Text is flattened with its `<sup>` markers encoded
/// (see [`marker`]).
enum Block<'a> {
    Text(String),
    Table(ElementRef<'a>, bool),
}

/// Extracts every table of an answer.
pub fn extract(html: &str) -> Extraction {
    let doc = Html::parse_fragment(html);
    let blocks = collect_blocks(&doc);
    let table_positions: Vec<usize> = blocks
        .iter()
        .enumerate()
        .filter_map(|(i, b)| matches!(b, Block::Table(..)).then_some(i))
        .collect();
    let mut tables = Vec::new();
    let mut budget = Budget::for_input(html.len());
    for (n, &pos) in table_positions.iter().enumerate() {
        let Block::Table(el, nested) = blocks[pos] else {
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
                Block::Table(..) => None,
            })
            .collect();
        tables.push(table::extract_table(
            el,
            n,
            caption,
            notes,
            nested,
            &mut budget,
        ));
    }
    if table_positions.is_empty() {
        let lines: Vec<String> = blocks
            .into_iter()
            .filter_map(|b| match b {
                Block::Text(t) => Some(t),
                Block::Table(..) => None,
            })
            .collect();
        drop(doc);
        tables.extend(line_tables(&lines, &mut budget));
    }
    Extraction { tables }
}

/// Extracts from plain text (one block a line), for answers kept as text.
pub fn extract_text(text: &str) -> Extraction {
    let lines: Vec<String> = text
        .lines()
        .map(|l| value::clean(&strip_sentinels(l)))
        .filter(|l| !l.is_empty())
        .collect();
    let mut budget = Budget::for_input(text.len());
    Extraction {
        tables: line_tables(&lines, &mut budget),
    }
}

/// What one answer may make: figures, and bytes of label text copied into them. Proportional to
/// the input, so that a huge or hostile answer costs memory in proportion, and never unbounded.
pub(crate) struct Budget {
    pub figures: usize,
    pub bytes: usize,
    /// Set once a limit was reached (reported once, on the table where it happened).
    pub spent: bool,
}

/// At most this many figures are read from one answer (no real answer comes near).
pub(crate) const MAX_FIGURES: usize = 200_000;

impl Budget {
    fn for_input(len: usize) -> Budget {
        Budget {
            figures: MAX_FIGURES,
            bytes: (8 * len).max(4 << 20),
            spent: false,
        }
    }

    /// Takes one figure whose labels and text come to `bytes`; false once the answer's budget is
    /// spent.
    pub fn take(&mut self, bytes: usize) -> bool {
        if self.spent || self.figures == 0 || self.bytes < bytes {
            self.spent = true;
            return false;
        }
        self.figures -= 1;
        self.bytes -= bytes;
        true
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

/// The answer's blocks in reading order, found without recursion: a walk with an explicit stack
/// of child iterators, so that nesting of any depth costs heap, not stack.
fn collect_blocks(doc: &Html) -> Vec<Block<'_>> {
    let marks = Marks::of(doc);
    let mut out = Vec::new();
    let mut loose = String::new();
    let mut stack = vec![doc.root_element().children()];
    while let Some(top) = stack.last_mut() {
        let Some(child) = top.next() else {
            flush(&mut loose, &mut out);
            stack.pop();
            continue;
        };
        match child.value() {
            Node::Text(t) => push_text(&mut loose, t),
            Node::Element(e) => {
                let Some(child_el) = ElementRef::wrap(child) else {
                    continue;
                };
                let name = e.name();
                if name == "table" {
                    flush(&mut loose, &mut out);
                    out.push(Block::Table(child_el, marks.has_table(child.id())));
                    // A layout table's inner tables, at any depth, are read on their own.
                    if marks.has_table(child.id()) {
                        out.extend(
                            child_el
                                .descendants()
                                .skip(1)
                                .filter_map(ElementRef::wrap)
                                .filter(|t| t.value().name() == "table")
                                .map(|t| Block::Table(t, marks.has_table(t.id()))),
                        );
                    }
                } else if name == "br" {
                    loose.push('\n');
                } else if BLOCK_TEXT.contains(&name) && !marks.has_block(child.id()) {
                    flush(&mut loose, &mut out);
                    for line in flatten(child_el, '\n').text.split('\n') {
                        let l = value::clean(line);
                        if !l.is_empty() {
                            out.push(Block::Text(l));
                        }
                    }
                } else if matches!(
                    name,
                    "strong" | "b" | "em" | "i" | "span" | "a" | "sup" | "sub" | "u"
                ) {
                    let flat = flatten_after(child_el, '\n', &loose);
                    loose.push_str(&flat.text);
                } else {
                    flush(&mut loose, &mut out);
                    stack.push(child.children());
                }
            }
            _ => {}
        }
    }
    out
}

/// Which elements hold a block (`table`, `p`, `div`) or a table below them, found in one pass
/// over the tree: each block marks its ancestors, stopping at one marked before.
struct Marks {
    block: std::collections::HashSet<ego_tree::NodeId>,
    table: std::collections::HashSet<ego_tree::NodeId>,
}

impl Marks {
    fn of(doc: &Html) -> Marks {
        use ego_tree::iter::Edge;
        let mut marks = Marks {
            block: Default::default(),
            table: Default::default(),
        };
        // One flag an open element: "a block was found below it".
        let mut below: Vec<bool> = Vec::new();
        let mut tables: Vec<ego_tree::NodeId> = Vec::new();
        for edge in doc.tree.root().traverse() {
            match edge {
                Edge::Open(node) => {
                    if node
                        .value()
                        .as_element()
                        .is_some_and(|e| e.name() == "table")
                    {
                        if let Some(&outer) = tables.last() {
                            marks.table.insert(outer);
                        }
                        tables.push(node.id());
                    }
                    below.push(false);
                }
                Edge::Close(node) => {
                    let found = below.pop().unwrap_or(false);
                    if found {
                        marks.block.insert(node.id());
                    }
                    let name = node.value().as_element().map(|e| e.name());
                    if name == Some("table") {
                        tables.pop();
                    }
                    let is_block = matches!(name, Some("table" | "p" | "div"));
                    if let Some(parent) = below.last_mut() {
                        *parent |= found || is_block;
                    }
                }
            }
        }
        marks
    }

    fn has_block(&self, id: ego_tree::NodeId) -> bool {
        self.block.contains(&id)
    }

    /// The table holds another table (at any depth).
    fn has_table(&self, id: ego_tree::NodeId) -> bool {
        self.table.contains(&id)
    }
}

fn flush(loose: &mut String, out: &mut Vec<Block<'_>>) {
    if loose.is_empty() {
        return;
    }
    for line in loose.split('\n') {
        let l = value::clean(line);
        if !l.is_empty() {
            out.push(Block::Text(l));
        }
    }
    loose.clear();
}

/// An element's text flattened: `<sup>` markers encoded, `<br>` as `br`.
pub(crate) struct Flat {
    pub text: String,
    /// All of the text is inside `<strong>` or `<b>` (and there is some).
    pub bold: bool,
}

/// Flattens an element's text without recursion (see [`Flat`]).
pub(crate) fn flatten(el: ElementRef<'_>, br: char) -> Flat {
    flatten_after(el, br, "")
}

/// [`flatten`], where `before` is the text just before the element (a `<sup>` after "m" is a
/// power).
fn flatten_after(el: ElementRef<'_>, br: char, before: &str) -> Flat {
    use ego_tree::iter::Edge;
    let mut text = String::new();
    let mut bold_depth = 0usize;
    let (mut any, mut all_bold) = (false, true);
    // Inside a `<sup>` already read whole, as markers or a power.
    let mut skip: Option<ego_tree::NodeId> = None;
    for edge in el.traverse() {
        match edge {
            Edge::Open(node) => {
                if skip.is_some() {
                    continue;
                }
                match node.value() {
                    Node::Text(t) => {
                        if !t.trim().is_empty() {
                            any = true;
                            all_bold &= bold_depth > 0;
                        }
                        push_text(&mut text, t);
                    }
                    Node::Element(e) => match e.name() {
                        "br" => text.push(br),
                        "strong" | "b" => bold_depth += 1,
                        "sup" => {
                            let Some(inner) = short_text(node) else {
                                continue;
                            };
                            let context = if text.is_empty() { before } else { &text };
                            match marker::classify(&inner, context) {
                                marker::Sup::Markers(m) => marker::encode(&mut text, &m),
                                marker::Sup::Power(c) => text.push(c),
                                marker::Sup::Text => continue,
                            }
                            skip = Some(node.id());
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
            Edge::Close(node) => {
                if skip == Some(node.id()) {
                    skip = None;
                } else if skip.is_none()
                    && node
                        .value()
                        .as_element()
                        .is_some_and(|e| matches!(e.name(), "strong" | "b"))
                {
                    bold_depth = bold_depth.saturating_sub(1);
                }
            }
        }
    }
    Flat {
        text,
        bold: any && all_bold,
    }
}

/// A `<sup>`'s text if it is short (a marker is a few characters), reading at most a few nodes,
/// so that a chain of nested `<sup>`s costs no more than one pass.
fn short_text(node: ego_tree::NodeRef<'_, Node>) -> Option<String> {
    let mut s = String::new();
    for (i, d) in node.descendants().enumerate() {
        if i > 8 {
            return None;
        }
        if let Node::Text(t) = d.value() {
            s.push_str(t);
            if s.len() > 40 {
                return None;
            }
        }
    }
    Some(s)
}

/// Appends a text node, dropping the characters that encode markers.
fn push_text(out: &mut String, t: &str) {
    if t.contains([marker::OPEN, marker::CLOSE]) {
        out.push_str(&strip_sentinels(t));
    } else {
        out.push_str(t);
    }
}

fn strip_sentinels(t: &str) -> std::borrow::Cow<'_, str> {
    if t.contains([marker::OPEN, marker::CLOSE]) {
        std::borrow::Cow::Owned(t.replace([marker::OPEN, marker::CLOSE], ""))
    } else {
        std::borrow::Cow::Borrowed(t)
    }
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
/// number line, optionally under two header lines ("Year", "Amount"). Lines are flattened text,
/// `<sup>` markers encoded.
fn line_tables(lines: &[String], budget: &mut Budget) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (pairs, used) = run_at(lines, i, usize::MAX);
        if pairs.len() < 2 {
            i += 1;
            continue;
        }
        // Two short word lines just before a paired run are its header.
        let mut start = i;
        let mut column = Vec::new();
        let mut column_markers = Vec::new();
        if used > pairs.len() && i >= 2 {
            let (a, b) = (plain(&lines[i - 2]), plain(&lines[i - 1]));
            let wordy = |s: &str| {
                s.chars().count() <= 40
                    && value::parse_cell(s).kind == Kind::Text
                    && !is_period_line(s)
            };
            if wordy(&a) && wordy(&b) {
                let (label, markers) = label_and_markers(&lines[i - 1]);
                column.push(label);
                if !markers.is_empty() {
                    column_markers.push(markers);
                }
                start = i - 2;
            }
        }
        let caption = start.checked_sub(1).map(|p| lines[p].clone());
        let end = i + used;
        let next_start = (end..lines.len())
            .find(|&j| run_at(lines, j, 2).0.len() >= 2)
            .unwrap_or(lines.len());
        let notes = lines[end..next_start.min(lines.len())].to_vec();
        let index = tables.len();
        let caption_unit = caption.as_deref().and_then(|c| value::unit_hint(&plain(c)));
        let column_unit = column.iter().find_map(|c| value::unit_hint(c));
        let mut problems = Vec::new();
        let mut observations = Vec::with_capacity(pairs.len());
        let mut rows = Vec::with_capacity(pairs.len());
        for (k, (label, raw)) in pairs.iter().enumerate() {
            let (label, label_markers) = label_and_markers(label);
            let value = marker::resolve(raw);
            if !budget.take(label.len() + value.text.len() + 64) {
                problems.push(budget_problem());
                break;
            }
            let cell = value::parse_cell(&value.text);
            let mut markers = value.markers;
            markers.extend(cell.markers);
            rows.push(vec![label.clone(), value.text.clone()]);
            observations.push(Observation {
                period: period::parse(&label),
                row: vec![label],
                row_markers: if label_markers.is_empty() {
                    vec![]
                } else {
                    vec![label_markers]
                },
                column: column.clone(),
                column_markers: column_markers.clone(),
                raw: value.text,
                value: cell.value,
                kind: cell.kind,
                unit: cell
                    .unit
                    .or(column_unit)
                    .or(caption_unit)
                    .or(Some(Unit::Count)),
                scale: cell.scale,
                markers,
                notes: vec![],
                cell: [k, 1],
            });
        }
        tables.push(Table::new(TableParts {
            index,
            caption,
            header_rows: if column.is_empty() {
                vec![]
            } else {
                vec![vec![
                    plain(&lines[start]).into_owned(),
                    plain(&lines[start + 1]).into_owned(),
                ]]
            },
            rows,
            observations,
            notes,
            problems,
        }));
        if budget.spent {
            break;
        }
        i = end;
    }
    tables
}

/// What is said when an answer's budget is spent.
pub(crate) fn budget_problem() -> String {
    format!(
        "more than {MAX_FIGURES} figures, or labels far larger than the answer: the rest of the answer was not read"
    )
}

/// A label without its markers, and its markers: `<sup>` ones first, then written ones
/// (`Isis (2)`).
pub(crate) fn label_and_markers(marked: &str) -> (String, Vec<String>) {
    let r = marker::resolve(marked);
    let (label, plain_markers) = value::split_markers(&r.text);
    let mut markers = r.markers;
    markers.extend(plain_markers);
    (label, markers)
}

/// Flattened text without its markers.
fn plain(marked: &str) -> std::borrow::Cow<'_, str> {
    if marked.contains(marker::OPEN) {
        std::borrow::Cow::Owned(marker::resolve(marked).text)
    } else {
        std::borrow::Cow::Borrowed(marked)
    }
}

fn is_period_line(s: &str) -> bool {
    period::parse(&value::split_markers(&plain(s)).0).is_some()
}

fn is_value_line(s: &str) -> bool {
    let k = value::parse_cell(&plain(s)).kind;
    k != Kind::Text
}

/// The label–value pairs of a run starting at `i` (at most `limit`), and how many lines it used.
fn run_at(lines: &[String], i: usize, limit: usize) -> (Vec<(&str, &str)>, usize) {
    // "Label: 10" lines.
    let mut pairs = Vec::new();
    let mut j = i;
    while j < lines.len() && pairs.len() < limit {
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
    while j + 1 < lines.len()
        && pairs.len() < limit
        && is_period_line(&lines[j])
        && is_value_line(&lines[j + 1])
    {
        pairs.push((lines[j].as_str(), lines[j + 1].as_str()));
        j += 2;
    }
    (pairs, j - i)
}

fn split_label_value(line: &str) -> Option<(&str, &str)> {
    let (label, val) = line
        .rsplit_once(": ")
        .or_else(|| line.rsplit_once(" - "))
        .or_else(|| line.rsplit_once(" – "))
        .or_else(|| line.rsplit_once(" = "))?;
    let label = label.trim();
    let val = val.trim();
    (!label.is_empty() && label.chars().count() <= 80 && is_value_line(val)).then_some((label, val))
}
