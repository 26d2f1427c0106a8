//! One HTML table to a grid and observations: spans expanded into a rectangle, header rows and
//! label columns found, section rows carried into row paths, each data cell read. Pure.

use scraper::{ElementRef, Node};

use super::period;
use super::value::{self, clean, parse_cell, split_markers, Kind, Unit};
use super::{Observation, Table};

/// Spans and grids beyond these are malformed or hostile: clamp and record a problem.
const MAX_ROWSPAN: usize = 1000;
const MAX_COLSPAN: usize = 100;
const MAX_CELLS: usize = 200_000;

#[derive(Clone, Debug)]
struct GridCell {
    text: String,
    th: bool,
    bold: bool,
    in_thead: bool,
    /// How many columns the source cell spans.
    colspan: usize,
    /// Not a cell of the source: padding of a short row.
    missing: bool,
    /// The cell read once: every rule below asks about it.
    kind: Kind,
    parsed: Option<value::Cell>,
    period: bool,
}

impl GridCell {
    fn missing() -> GridCell {
        GridCell {
            text: String::new(),
            th: false,
            bold: false,
            in_thead: false,
            colspan: 1,
            missing: true,
            kind: Kind::Text,
            parsed: None,
            period: false,
        }
    }

    fn is_number(&self) -> bool {
        self.kind == Kind::Number
    }
}

/// Builds the grid of `table` (its own rows, not those of nested tables).
fn grid(table: ElementRef<'_>, problems: &mut Vec<String>) -> Vec<Vec<GridCell>> {
    let rows: Vec<(ElementRef<'_>, bool)> = own_rows(table);
    let mut grid: Vec<Vec<Option<GridCell>>> = vec![Vec::new(); rows.len()];
    let mut cells_placed = 0usize;
    'rows: for (r, (tr, in_thead)) in rows.iter().enumerate() {
        let mut c = 0usize;
        for cell in tr.children().filter_map(ElementRef::wrap) {
            let name = cell.value().name();
            if name != "td" && name != "th" {
                continue;
            }
            while grid[r].get(c).is_some_and(Option::is_some) {
                c += 1;
            }
            let span = |attr: &str, max: usize, problems: &mut Vec<String>| -> usize {
                let raw = cell.value().attr(attr).map(str::trim);
                let n = raw.and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
                if n > max {
                    problems.push(format!("{attr}={n} clamped to {max}"));
                }
                n.clamp(1, max)
            };
            let rowspan = span("rowspan", MAX_ROWSPAN, problems).min(rows.len() - r);
            let colspan = span("colspan", MAX_COLSPAN, problems);
            let text = cell_text(cell);
            let parsed = parse_cell(&text);
            let kind = parsed.kind;
            let gc = GridCell {
                parsed: Some(parsed),
                // Boldness only decides whether a first row is a header.
                bold: r == 0 && is_bold(cell, &text),
                period: maybe_period(&text, kind) && is_period(&text),
                kind,
                text,
                th: name == "th",
                in_thead: *in_thead,
                colspan,
                missing: false,
            };
            for row in grid.iter_mut().skip(r).take(rowspan) {
                if row.len() < c + colspan {
                    row.resize(c + colspan, None);
                }
                for slot in row.iter_mut().skip(c).take(colspan) {
                    if slot.is_none() {
                        *slot = Some(gc.clone());
                        cells_placed += 1;
                    }
                }
            }
            if cells_placed > MAX_CELLS {
                problems.push(format!("table larger than {MAX_CELLS} cells: cut short"));
                break 'rows;
            }
            c += colspan;
        }
    }
    let width = grid.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::with_capacity(grid.len());
    for (r, row) in grid.into_iter().enumerate() {
        if row.len() < width && !row.is_empty() {
            problems.push(format!(
                "row {} has {} cells where the table has {width}: padded",
                r + 1,
                row.len()
            ));
        }
        let mut row: Vec<GridCell> = row
            .into_iter()
            .map(|c| c.unwrap_or_else(GridCell::missing))
            .collect();
        row.resize_with(width, GridCell::missing);
        out.push(row);
    }
    out.retain(|row| !row.is_empty());
    out
}

/// The table's rows in order (thead, tbody, tfoot, or bare), skipping rows of nested tables.
fn own_rows(table: ElementRef<'_>) -> Vec<(ElementRef<'_>, bool)> {
    let mut rows = Vec::new();
    fn walk<'a>(el: ElementRef<'a>, in_thead: bool, rows: &mut Vec<(ElementRef<'a>, bool)>) {
        for child in el.children().filter_map(ElementRef::wrap) {
            match child.value().name() {
                "tr" => rows.push((child, in_thead)),
                "thead" => walk(child, true, rows),
                "tbody" | "tfoot" => walk(child, false, rows),
                _ => {}
            }
        }
    }
    walk(table, false, &mut rows);
    rows
}

/// A cell's visible text, with `<br>` as a space, markers and all.
fn cell_text(cell: ElementRef<'_>) -> String {
    let mut s = String::new();
    for node in cell.descendants() {
        match node.value() {
            Node::Text(t) => s.push_str(t),
            Node::Element(e) if e.name() == "br" => s.push(' '),
            _ => {}
        }
    }
    clean(&s)
}

/// All of the cell's text is inside `<strong>` or `<b>`.
fn is_bold(cell: ElementRef<'_>, text: &str) -> bool {
    if text.is_empty() {
        return false;
    }
    let mut bold = String::new();
    for node in cell.descendants() {
        if let Node::Text(t) = node.value() {
            let in_bold = node.ancestors().any(|a| {
                a.value()
                    .as_element()
                    .is_some_and(|e| matches!(e.name(), "strong" | "b"))
            });
            if in_bold {
                bold.push_str(t);
                bold.push(' ');
            }
        }
    }
    clean(&bold) == *text
}

/// A cheap test that rules out most cells before the period parser runs: a period has a digit,
/// is short, and as a number is a bare year or a year span.
fn maybe_period(text: &str, kind: Kind) -> bool {
    !text.is_empty()
        && text.len() <= 48
        && text.bytes().any(|b| b.is_ascii_digit())
        && (kind != Kind::Number || (text.len() == 4 && !text.contains(['.', ','])))
}

fn is_period(text: &str) -> bool {
    period::parse(&split_markers(text).0).is_some()
}

/// Words that, alone in a row under the headers, give a unit: "£m", "%", "Number", "Rate".
fn is_unit_token(text: &str) -> bool {
    let t = text.trim().trim_matches(['(', ')']).to_lowercase();
    matches!(
        t.as_str(),
        "£" | "£m"
            | "£bn"
            | "£k"
            | "£000"
            | "£000s"
            | "%"
            | "number"
            | "rate"
            | "count"
            | "£ million"
    )
}

fn nonempty(row: &[GridCell]) -> Vec<&GridCell> {
    row.iter().filter(|c| !c.text.is_empty()).collect()
}

/// A row with one distinct non-empty cell of text under a header: a section ("Number of
/// incidents"), carried into the row path of the rows below it.
fn is_section(row: &[GridCell]) -> Option<String> {
    let cells = nonempty(row);
    let first = cells.first()?;
    let one = cells.iter().all(|c| c.text == first.text)
        && (cells.len() == 1 || first.colspan == row.len());
    (one && row.len() > 1 && first.kind == Kind::Text && !first.period).then(|| first.text.clone())
}

fn is_header_row(row: &[GridCell], index: usize, later_numbers: bool) -> bool {
    let cells = nonempty(row);
    if cells.is_empty() {
        return true;
    }
    if row.iter().all(|c| c.in_thead || c.missing) {
        return true;
    }
    if cells.iter().all(|c| c.th) {
        return true;
    }
    if index > 0 && cells.iter().all(|c| is_unit_token(&c.text)) {
        return true;
    }
    if index == 0 && later_numbers {
        // A first row of years over a label column, or a first row of words, or all bold.
        let rest: Vec<&&GridCell> = cells.iter().skip(1).collect();
        let years = !rest.is_empty()
            && rest.iter().all(|c| c.period)
            && (row[0].text.is_empty() || !row[0].is_number());
        let words = cells.iter().all(|c| c.kind == Kind::Text) && cells.len() > 1;
        let bold = cells.iter().all(|c| c.bold) && cells.len() > 1;
        return years || words || bold;
    }
    false
}

/// Turns one HTML table into a [`Table`].
pub fn extract_table(
    table: ElementRef<'_>,
    index: usize,
    caption: Option<String>,
    notes: Vec<String>,
) -> Table {
    let mut problems = Vec::new();
    let mut caption = caption;
    if let Some(c) = table
        .children()
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == "caption")
    {
        let t = cell_text(c);
        if !t.is_empty() {
            caption = Some(t);
        }
    }
    if table
        .descendants()
        .skip(1)
        .any(|n| n.value().as_element().is_some_and(|e| e.name() == "table"))
    {
        problems.push(
            "holds a nested table: read as layout, its inner tables are read on their own".into(),
        );
        return Table::new(index, caption, vec![], vec![], vec![], notes, problems);
    }
    let mut grid = grid(table, &mut problems);
    // A first row that is one cell across the whole table is a title.
    if let Some(first) = grid.first() {
        let cells = nonempty(first);
        if cells.len() == 1 && first.len() > 1 && cells[0].colspan == first.len() {
            if caption.is_none() {
                caption = Some(cells[0].text.clone());
            }
            grid.remove(0);
        }
    }
    let later_numbers = grid
        .iter()
        .skip(1)
        .any(|r| r.iter().skip(1).any(GridCell::is_number));
    let mut header_count = 0;
    while header_count < grid.len()
        && is_header_row(&grid[header_count], header_count, later_numbers)
    {
        header_count += 1;
    }
    let header_rows = &grid[..header_count];
    let body = &grid[header_count..];
    let width = grid.first().map_or(0, Vec::len);
    let data_rows: Vec<&Vec<GridCell>> = body.iter().filter(|r| is_section(r).is_none()).collect();

    // Label columns: leading columns of th, words or periods.
    let mut label_cols = 0;
    while label_cols + 1 < width {
        let col: Vec<&GridCell> = data_rows
            .iter()
            .map(|r| &r[label_cols])
            .filter(|c| !c.text.is_empty())
            .collect();
        let is_label = !col.is_empty()
            && col
                .iter()
                .all(|c| c.th || c.kind == Kind::Text || (label_cols == 0 && c.period));
        let empty = col.is_empty() && label_cols == 0 && header_count > 0 && {
            header_rows.iter().all(|h| h[0].text.is_empty())
        };
        if is_label || empty {
            label_cols += 1;
        } else {
            break;
        }
    }
    // Headerless pairs: period, value, period, value… across each row.
    let pairs = header_count == 0
        && label_cols == 1
        && width >= 4
        && width.is_multiple_of(2)
        && data_rows.iter().all(|r| {
            r.chunks(2).all(|p| {
                (p[0].text.is_empty() && p[1].text.is_empty())
                    || (p[0].period && p[1].kind != Kind::Text)
            })
        });

    let caption_unit = caption.as_deref().and_then(value::unit_hint);
    // Column labels, and what they say of period, unit and scale: once a column.
    let columns: Vec<Labels> = (0..width)
        .map(|c| {
            let mut path: Vec<String> = Vec::new();
            if !pairs {
                for h in header_rows {
                    let l = split_markers(&h[c].text).0;
                    if !l.is_empty() && path.last() != Some(&l) {
                        path.push(l);
                    }
                }
            }
            let scale = header_rows
                .iter()
                .find_map(|h| value::scale_hint(&h[c].text));
            Labels::new(path, scale)
        })
        .collect();
    let mut observations = Vec::new();
    let mut section: Vec<String> = Vec::new();
    let mut last_was_section = false;
    for (bi, row) in body.iter().enumerate() {
        let r = header_count + bi;
        if let Some(s) = is_section(row) {
            if !last_was_section {
                section.clear();
            }
            section.push(split_markers(&s).0);
            last_was_section = true;
            continue;
        }
        last_was_section = false;
        let row_labels = |range: std::ops::Range<usize>| {
            let mut path = section.clone();
            for lc in range {
                let l = split_markers(&row[lc].text).0;
                if !l.is_empty() && path.last() != Some(&l) {
                    path.push(l);
                }
            }
            Labels::new(path, None)
        };
        if pairs {
            for c in (1..width).step_by(2) {
                if row[c].text.is_empty() {
                    continue;
                }
                let labels = row_labels(c - 1..c);
                observations.push(observation(
                    &row[c],
                    &labels,
                    &columns[c],
                    (r, c),
                    caption_unit,
                    &mut problems,
                ));
            }
        } else {
            let labels = row_labels(0..label_cols);
            for (c, cell) in row.iter().enumerate().skip(label_cols) {
                if cell.text.is_empty() || cell.missing {
                    continue;
                }
                observations.push(observation(
                    cell,
                    &labels,
                    &columns[c],
                    (r, c),
                    caption_unit,
                    &mut problems,
                ));
            }
        }
    }
    if !observations.iter().any(|o| o.kind != Kind::Text) {
        observations.clear();
    }
    // The texts move into the table: no cell is copied.
    let mut texts = grid
        .into_iter()
        .map(|r| r.into_iter().map(|c| c.text).collect::<Vec<String>>());
    let header_rows: Vec<Vec<String>> = texts.by_ref().take(header_count).collect();
    let rows_text: Vec<Vec<String>> = texts.collect();
    Table::new(
        index,
        caption,
        header_rows,
        rows_text,
        observations,
        notes,
        problems,
    )
}

/// A row's or a column's labels, with the period, unit and scale they name (innermost first).
struct Labels {
    path: Vec<String>,
    period: Option<period::Period>,
    unit: Option<Unit>,
    scale: Option<f64>,
}

impl Labels {
    fn new(path: Vec<String>, scale: Option<f64>) -> Labels {
        let period = path.iter().rev().find_map(|l| period::parse(l));
        let unit = path.iter().rev().find_map(|l| value::unit_hint(l));
        Labels {
            path,
            period,
            unit,
            scale,
        }
    }
}

fn observation(
    grid_cell: &GridCell,
    row: &Labels,
    column: &Labels,
    (r, c): (usize, usize),
    caption_unit: Option<Unit>,
    problems: &mut Vec<String>,
) -> Observation {
    let raw = grid_cell.text.as_str();
    let cell = grid_cell.parsed.clone().unwrap_or_else(|| parse_cell(raw));
    if cell.kind == Kind::Text && raw.chars().any(|c| c.is_ascii_digit()) {
        problems.push(format!(
            "row {} column {}: {raw:?} is not a number pqwatch can read",
            r + 1,
            c + 1
        ));
    }
    let hint = cell.unit.or(column.unit).or(row.unit).or(caption_unit);
    let unit = match cell.kind {
        Kind::Text | Kind::NotAvailable => hint,
        _ => hint.or(Some(Unit::Count)),
    };
    Observation {
        row: row.path.clone(),
        column: column.path.clone(),
        raw: raw.to_owned(),
        value: cell.value,
        kind: cell.kind,
        unit,
        scale: cell.scale.or(column.scale),
        period: column.period.clone().or_else(|| row.period.clone()),
        markers: cell.markers,
        cell: [r, c],
    }
}
