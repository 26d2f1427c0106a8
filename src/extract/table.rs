//! One HTML table to a grid and observations: spans expanded into a rectangle, header rows and
//! label columns found, section rows carried into row paths, each data cell read. Pure.

use scraper::ElementRef;

use super::value::{self, clean, parse_cell, split_markers, Kind, Unit};
use super::{budget_problem, flatten, marker, period};
use super::{Budget, Observation, Table, TableParts};

/// Spans and grids beyond these are malformed or hostile: clamp and record a problem.
const MAX_ROWSPAN: usize = 1000;
const MAX_COLSPAN: usize = 100;
const MAX_CELLS: usize = 200_000;

#[derive(Clone, Debug)]
struct GridCell {
    /// The source cell (0: padding): slots of one spanning cell share it.
    id: usize,
    /// The cell's text, `<sup>` markers left out.
    text: String,
    /// The `<sup>` markers of the cell.
    markers: Vec<String>,
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
            id: 0,
            text: String::new(),
            markers: Vec::new(),
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

/// The source cells of a table, and its grid: each slot the index of the cell that covers it
/// (spans share one cell, nothing is copied). Index 0 is the padding cell.
struct Grid {
    cells: Vec<GridCell>,
    slots: Vec<Vec<usize>>,
}

impl Grid {
    fn row(&self, r: usize) -> Vec<&GridCell> {
        self.slots[r].iter().map(|&i| &self.cells[i]).collect()
    }
}

/// Builds the grid of `table` (its own rows, not those of nested tables).
fn grid(table: ElementRef<'_>, problems: &mut Vec<String>, text_budget: usize) -> Grid {
    let rows: Vec<(ElementRef<'_>, bool)> = own_rows(table);
    let mut cells = vec![GridCell::missing()];
    let mut grid: Vec<Vec<usize>> = vec![Vec::new(); rows.len()];
    let mut cells_placed = 0usize;
    let mut text_placed = 0usize;
    'rows: for (r, (tr, in_thead)) in rows.iter().enumerate() {
        let mut c = 0usize;
        for cell in tr.children().filter_map(ElementRef::wrap) {
            let name = cell.value().name();
            if name != "td" && name != "th" {
                continue;
            }
            while grid[r].get(c).is_some_and(|&i| i != 0) {
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
            let flat = flatten(cell, ' ');
            let resolved = marker::resolve(&flat.text);
            let text = resolved.text;
            let parsed = parse_cell(&text);
            let kind = parsed.kind;
            let text_len = text.len();
            cells.push(GridCell {
                id: cells.len(),
                parsed: Some(parsed),
                // Boldness only decides whether a first row is a header.
                bold: r == 0 && flat.bold,
                period: maybe_period(&text, kind) && is_period(&text),
                kind,
                text,
                markers: resolved.markers,
                th: name == "th",
                in_thead: *in_thead,
                colspan,
                missing: false,
            });
            let id = cells.len() - 1;
            for row in grid.iter_mut().skip(r).take(rowspan) {
                if row.len() < c + colspan {
                    row.resize(c + colspan, 0);
                }
                for slot in row.iter_mut().skip(c).take(colspan) {
                    if *slot == 0 {
                        *slot = id;
                        cells_placed += 1;
                        text_placed += text_len;
                    }
                }
            }
            if cells_placed > MAX_CELLS || text_placed > text_budget {
                problems.push(format!(
                    "table larger than {MAX_CELLS} cells or its spans copy text far larger than the answer: cut short"
                ));
                break 'rows;
            }
            c += colspan;
        }
    }
    let mut width = grid.iter().map(Vec::len).max().unwrap_or(0);
    let nonempty_rows = grid.iter().filter(|r| !r.is_empty()).count();
    // Short rows are padded to the widest: the rectangle must stay within the cell limit too.
    if width.saturating_mul(nonempty_rows) > MAX_CELLS {
        let keep = (MAX_CELLS / width.max(1)).max(1);
        problems.push(format!(
            "table of {nonempty_rows} rows and {width} columns is larger than {MAX_CELLS} cells: cut to {keep} rows"
        ));
        let mut kept = 0;
        grid.retain(|r| {
            let keep_it = !r.is_empty() && kept < keep;
            kept += keep_it as usize;
            keep_it
        });
        if keep == 1 && width > MAX_CELLS {
            width = MAX_CELLS;
            grid.iter_mut().for_each(|r| r.truncate(MAX_CELLS));
        }
    }
    let mut out = Vec::with_capacity(grid.len());
    for (r, mut row) in grid.into_iter().enumerate() {
        if row.is_empty() {
            continue;
        }
        if row.len() < width {
            problems.push(format!(
                "row {} has {} cells where the table has {width}: padded",
                r + 1,
                row.len()
            ));
        }
        row.resize(width, 0);
        out.push(row);
    }
    Grid { cells, slots: out }
}

/// The table's rows in order (thead, tbody, tfoot, or bare), skipping rows of nested tables.
/// Walked with an explicit stack: row groups nest only as deep as the HTML says.
fn own_rows(table: ElementRef<'_>) -> Vec<(ElementRef<'_>, bool)> {
    let mut rows = Vec::new();
    let mut stack = vec![(table.children(), false)];
    while let Some((children, in_thead)) = stack.last_mut() {
        let in_thead = *in_thead;
        let Some(child) = children.next() else {
            stack.pop();
            continue;
        };
        let Some(child) = ElementRef::wrap(child) else {
            continue;
        };
        match child.value().name() {
            "tr" => rows.push((child, in_thead)),
            "thead" => stack.push((child.children(), true)),
            "tbody" | "tfoot" => stack.push((child.children(), false)),
            _ => {}
        }
    }
    rows
}

/// A cheap test that rules out most cells before the period parser runs: a period has a digit,
/// is short, and as a number is a bare year or a year span.
fn maybe_period(text: &str, kind: Kind) -> bool {
    let bare_year = |t: &str| {
        t.len() == 4 && !t.contains(['.', ','])
        // A year with a footnote marker: "2012(2)", "2015 [1]".
        || (t.len() > 4 && t.len() <= 12 && bare_year_with_marker(t))
    };
    !text.is_empty()
        && text.len() <= 48
        && text.bytes().any(|b| b.is_ascii_digit())
        && (kind != Kind::Number || bare_year(text))
}

fn bare_year_with_marker(text: &str) -> bool {
    let bare = split_markers(text).0;
    bare.len() == 4 && bare.bytes().all(|b| b.is_ascii_digit())
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

type Row<'g> = [&'g GridCell];

fn nonempty<'g>(row: &Row<'g>) -> Vec<&'g GridCell> {
    row.iter().copied().filter(|c| !c.text.is_empty()).collect()
}

/// A row with one distinct non-empty cell of text under a header: a section ("Number of
/// incidents"), carried into the row path of the rows below it.
fn is_section<'g>(row: &Row<'g>) -> Option<&'g GridCell> {
    let cells = nonempty(row);
    let first = *cells.first()?;
    let one = cells.iter().all(|c| c.text == first.text)
        && (cells.len() == 1 || first.colspan == row.len());
    let words = first.kind == Kind::Text && !first.period;
    // A period across the whole row ("1995" over the months below it) heads a block too.
    let period_across =
        first.period && cells.iter().all(|c| c.id == first.id) && first.colspan == row.len();
    (one && row.len() > 1 && (words || period_across)).then_some(first)
}

fn is_header_row(row: &Row<'_>, index: usize, later_numbers: bool) -> bool {
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
        // A first row of periods only (no label column): "2015 | 2016 | Q1 & 2 2017".
        let periods = cells.len() > 1
            && cells.iter().all(|c| c.period || c.kind == Kind::Text)
            && cells.iter().filter(|c| c.period).count() * 2 >= cells.len();
        return years || words || bold || periods;
    }
    if index > 0 {
        // Under a header row, a row of several labels and no figure ("Apr | May | Jun" under
        // "2007" spanning them) is a header row too; one label alone is a section.
        let distinct = cells
            .iter()
            .map(|c| c.id)
            .collect::<std::collections::HashSet<_>>()
            .len();
        return distinct > 1
            && cells.iter().all(|c| c.kind == Kind::Text || c.period)
            && row.iter().all(|c| !is_figure(c));
    }
    false
}

fn is_empty(row: &Row<'_>) -> bool {
    row.iter().all(|c| c.text.is_empty())
}

/// A cell that holds a figure: a number, a suppressed or nil cell, not a period.
fn is_figure(c: &GridCell) -> bool {
    c.kind != Kind::Text && !c.period
}

fn has_figure(row: &Row<'_>) -> bool {
    row.iter().any(|c| is_figure(c))
}

/// The one cell of a row that is one cell across the table (padding aside): a title or a note.
fn title_cell<'g>(row: &Row<'g>) -> Option<&'g GridCell> {
    let first = *row.iter().find(|c| !c.text.is_empty())?;
    let across = row.iter().all(|c| c.id == first.id || c.missing);
    (across && row.len() > 1 && first.kind == Kind::Text && !first.period).then_some(first)
}

/// Above the headers, a row whose one non-empty cell is the first and reads as a sentence or a
/// heading ("Table 1 - Ratio of Band 3 to 5 prison officers to prisoners, by category…"), the
/// rest of the row left as empty cells: the table's title, written inside the grid.
fn title_in_first_cell<'g>(row: &Row<'g>) -> Option<&'g GridCell> {
    let cells = nonempty(row);
    let first = *cells.first()?;
    let alone = cells.len() == 1 && row.first().is_some_and(|c| c.id == first.id);
    let long = first.text.split_whitespace().count() >= 6;
    (alone && long && row.len() > 2 && first.kind == Kind::Text && !first.period).then_some(first)
}

/// A row that only joins the rows around it ("of which", "of whom"): neither label nor data.
fn is_connector(text: &str) -> bool {
    let t = text.trim().trim_end_matches([':', ',']).to_lowercase();
    matches!(
        t.as_str(),
        "of which"
            | "of whom"
            | "of these"
            | "of those"
            | "of that total"
            | "including"
            | "which includes"
    )
}

/// Where the table's figures end: rows below the last row holding a figure that are one cell
/// across (or empty) are its notes.
struct Shape {
    end: usize,
}

impl Shape {
    fn of(all: &[Vec<&GridCell>]) -> Shape {
        let last = all.iter().rposition(|r| has_figure(r));
        let end = match last {
            Some(l) => {
                let tail_is_notes = all[l + 1..]
                    .iter()
                    .all(|r| is_empty(r) || title_cell(r).is_some());
                if tail_is_notes {
                    l + 1
                } else {
                    all.len()
                }
            }
            None => all.len(),
        };
        Shape { end }
    }
}

/// A cell's text with its markers encoded again (a caption taken from a title row).
fn marked(cell: &GridCell) -> String {
    let mut s = cell.text.clone();
    if !cell.markers.is_empty() {
        marker::encode(&mut s, &cell.markers);
    }
    s
}

/// Turns one HTML table into a [`Table`]. `caption` and `notes` are flattened text with markers
/// encoded; `nested` says the table holds another table (it is then read as layout).
pub(crate) fn extract_table(
    table: ElementRef<'_>,
    index: usize,
    caption: Option<String>,
    notes: Vec<String>,
    nested: bool,
    budget: &mut Budget,
) -> Table {
    let mut problems = Vec::new();
    let mut caption = caption;
    if let Some(c) = table
        .children()
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == "caption")
    {
        let t = clean(&flatten(c, ' ').text);
        if !t.is_empty() {
            caption = Some(t);
        }
    }
    let parts = |caption, header_rows, rows, observations, notes, problems| {
        Table::new(TableParts {
            index,
            caption,
            header_rows,
            rows,
            observations,
            notes,
            problems,
        })
    };
    if nested {
        problems.push(
            "holds a nested table: read as layout, its inner tables are read on their own".into(),
        );
        return parts(caption, vec![], vec![], vec![], notes, problems);
    }
    if budget.spent {
        return parts(caption, vec![], vec![], vec![], notes, problems);
    }
    let g = grid(table, &mut problems, budget.bytes);
    let all: Vec<Vec<&GridCell>> = (0..g.slots.len()).map(|r| g.row(r)).collect();
    let width = all.first().map_or(0, Vec::len);
    let shape = Shape::of(&all);
    // Rows above the headers that are one cell across the table are its title: the table's own
    // caption (as a `<caption>` would be). Where the table repeats its header row under a
    // spanning row, each spanning row (the first included) heads a block: a section.
    let mut start = 0;
    let mut title: Vec<&GridCell> = Vec::new();
    while start < shape.end {
        if let Some(t) = title_cell(&all[start]).or_else(|| title_in_first_cell(&all[start])) {
            title.push(t);
        } else if !is_empty(&all[start]) {
            break;
        }
        start += 1;
    }
    let grid = &all[start..shape.end];
    let later_numbers = grid
        .iter()
        .skip(1)
        .any(|r| r.iter().skip(1).any(|c| c.is_number()));
    let mut header_count = 0;
    let mut first_full = None;
    while header_count < grid.len() {
        let row = &grid[header_count];
        let nth = match first_full {
            Some(f) => header_count - f,
            None => 0,
        };
        let continues = header_count > 0
            && !has_figure(row)
            && row
                .iter()
                .zip(&grid[header_count - 1])
                .any(|(a, b)| a.id != 0 && a.id == b.id);
        if !(is_empty(row) || continues || is_header_row(row, nth, later_numbers)) {
            break;
        }
        if first_full.is_none() && !is_empty(row) {
            first_full = Some(header_count);
        }
        header_count += 1;
    }
    let header_rows = &grid[..header_count];
    let body = &grid[header_count..];
    // A body row that repeats the header row heads another block; it is not data.
    let last_header = header_rows.iter().rev().find(|h| !is_empty(h));
    let repeats = |row: &Row<'_>| {
        last_header.is_some_and(|h| {
            h.iter().zip(row.iter()).all(|(a, b)| a.text == b.text) && !has_figure(row)
        })
    };
    let blocks = body.iter().any(|r| repeats(r));
    let mut initial_section = Labels::default();
    if blocks {
        if let Some(t) = title.pop() {
            initial_section.push(t);
        }
    }
    if !title.is_empty() {
        let mut text = String::new();
        for t in &title {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&marked(t));
        }
        caption = Some(text);
    }
    let is_data = |r: &&Vec<&GridCell>| is_section(r).is_none() && !repeats(r) && !is_empty(r);
    let data_rows: Vec<&Vec<&GridCell>> = body.iter().filter(is_data).collect();

    // Label columns: leading columns of th, words or periods.
    let mut label_cols = 0;
    while label_cols + 1 < width {
        let col: Vec<&GridCell> = data_rows
            .iter()
            .map(|r| r[label_cols])
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

    let caption_unit = caption
        .as_deref()
        .and_then(|c| value::unit_hint(&marker::resolve(c).text));
    // Column labels, and what they say of period, unit and scale: once a column.
    let columns: Vec<Labels> = (0..width)
        .map(|c| {
            let mut path = Labels::default();
            if !pairs {
                for h in header_rows {
                    path.push(h[c]);
                }
            }
            let scale = header_rows
                .iter()
                .find_map(|h| value::scale_hint(&h[c].text));
            path.finish(scale)
        })
        .collect();
    let mut observations = Vec::new();
    let mut section = initial_section;
    let mut last_was_section = false;
    let mut above: Option<&Vec<&GridCell>> = None;
    'body: for (bi, row) in body.iter().enumerate() {
        let r = start + header_count + bi;
        if repeats(row) || is_empty(row) {
            continue;
        }
        if let Some(s) = is_section(row) {
            if is_connector(&s.text) {
                continue;
            }
            if !last_was_section {
                section = Labels::default();
            }
            section.push(s);
            last_was_section = true;
            continue;
        }
        last_was_section = false;
        // A value spanning several columns or rows is one figure, read where it starts.
        let prev = above.replace(row);
        let spanned = |c: usize| {
            (c > label_cols && row[c - 1].id == row[c].id)
                || prev.is_some_and(|a| a[c].id == row[c].id)
        };
        let row_labels = |range: std::ops::Range<usize>| {
            let mut path = Labels {
                path: section.path.clone(),
                markers: section.markers.clone(),
                ..Labels::default()
            };
            for lc in range {
                path.push(row[lc]);
            }
            path.finish(None)
        };
        let mut add = |cell: &GridCell, labels: &Labels, c: usize| -> bool {
            let bytes = labels.bytes + columns[c].bytes + cell.text.len() + 64;
            if !budget.take(bytes) {
                problems.push(budget_problem());
                return false;
            }
            observations.push(observation(
                cell,
                labels,
                &columns[c],
                (r, c),
                caption_unit,
                &mut problems,
            ));
            true
        };
        if pairs {
            for c in (1..width).step_by(2) {
                if row[c].text.is_empty() {
                    continue;
                }
                if !add(row[c], &row_labels(c - 1..c), c) {
                    break 'body;
                }
            }
        } else {
            let labels = row_labels(0..label_cols);
            for (c, cell) in row.iter().enumerate().skip(label_cols) {
                if cell.text.is_empty() || cell.missing || spanned(c) {
                    continue;
                }
                if !add(cell, &labels, c) {
                    break 'body;
                }
            }
        }
    }
    if !observations.iter().any(|o| o.kind != Kind::Text) {
        observations.clear();
    }
    let texts = |rows: &[Vec<&GridCell>]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|c| c.text.clone()).collect())
            .collect()
    };
    let header_rows = texts(header_rows);
    let rows_text = texts(body);
    // Note rows below the figures ("(1) Figures include…") are notes, before those that follow
    // the table.
    let mut in_table_notes: Vec<String> = all[shape.end..]
        .iter()
        .filter_map(|r| title_cell(r).or_else(|| nonempty(r).first().copied()))
        .map(marked)
        .collect();
    in_table_notes.extend(notes);
    parts(
        caption,
        header_rows,
        rows_text,
        observations,
        in_table_notes,
        problems,
    )
}

/// A row's or a column's labels and their markers, with the period, unit and scale they name
/// (innermost first).
#[derive(Default)]
struct Labels {
    path: Vec<String>,
    markers: Vec<Vec<String>>,
    period: Option<period::Period>,
    unit: Option<Unit>,
    scale: Option<f64>,
    /// The labels' length, for the answer's budget.
    bytes: usize,
}

impl Labels {
    /// Adds a cell's label (markers apart); a label repeated by a span is one label.
    fn push(&mut self, cell: &GridCell) {
        let (label, mut written) = split_markers(&cell.text);
        let mut markers = cell.markers.clone();
        markers.append(&mut written);
        if label.is_empty() {
            return;
        }
        if self.path.last() == Some(&label) {
            if let Some(last) = self.markers.last_mut() {
                for m in markers {
                    if !last.contains(&m) {
                        last.push(m);
                    }
                }
            }
            return;
        }
        self.path.push(label);
        self.markers.push(markers);
    }

    fn finish(mut self, scale: Option<f64>) -> Labels {
        self.period = self.path.iter().rev().find_map(|l| period::parse(l));
        self.unit = self.path.iter().rev().find_map(|l| value::unit_hint(l));
        self.scale = scale;
        self.bytes = self.path.iter().map(|l| l.len() + 24).sum();
        self
    }

    /// One list of markers a label, or none at all when no label has one (the usual case:
    /// nothing to copy).
    fn markers(&self) -> Vec<Vec<String>> {
        if self.markers.iter().all(Vec::is_empty) {
            Vec::new()
        } else {
            self.markers.clone()
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
    let mut markers = grid_cell.markers.clone();
    markers.extend(cell.markers);
    Observation {
        row: row.path.clone(),
        row_markers: row.markers(),
        column: column.path.clone(),
        column_markers: column.markers(),
        raw: raw.to_owned(),
        value: cell.value,
        kind: cell.kind,
        unit,
        scale: cell.scale.or(column.scale),
        period: column.period.clone().or_else(|| row.period.clone()),
        markers,
        notes: vec![],
        cell: [r, c],
    }
}
