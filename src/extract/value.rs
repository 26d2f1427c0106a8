//! Reading one cell or label as the MoJ writes it: numbers with separators, currency, percent and
//! scale, footnote markers glued on, suppression and nil markers. Pure string functions.

use serde::Serialize;

/// What a data cell holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Number,
    /// Withheld to protect individuals: `*`, `c`, `[c]`, `[x]`, `<5`, "fewer than 5"…
    Suppressed,
    /// None, written as a dash.
    Nil,
    /// Not collected or not applicable: `..`, `n/a`, `[z]`.
    NotAvailable,
    Text,
}

/// The unit of a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Count,
    Percent,
    Gbp,
    Rate,
}

/// A cell read: its kind, its number, and what the cell itself says about unit and scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub kind: Kind,
    pub value: Option<f64>,
    pub unit: Option<Unit>,
    /// 1e3, 1e6 or 1e9 when written as `£1.2m`, `£3bn`, `4k`.
    pub scale: Option<f64>,
    pub markers: Vec<String>,
}

/// Collapses white space (including non-breaking spaces) and drops zero-width characters.
pub fn clean(s: &str) -> String {
    clean_cow(s).into_owned()
}

/// [`clean`] without a copy when the text is clean already (the usual case for a cell).
pub fn clean_cow(s: &str) -> std::borrow::Cow<'_, str> {
    let dirty = if s.is_ascii() {
        let b = s.as_bytes();
        b.first() == Some(&b' ')
            || b.last() == Some(&b' ')
            || b.windows(2).any(|w| w == b"  ")
            || b.iter().any(|c| c.is_ascii_whitespace() && *c != b' ')
    } else {
        s.starts_with(' ')
            || s.ends_with(' ')
            || s.contains("  ")
            || s.chars().any(|c| {
                (c.is_whitespace() && c != ' ')
                    || matches!(
                        c,
                        '\u{a0}' | '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}'
                    )
            })
    };
    if !dirty {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        match c {
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}' => {}
            c if c.is_whitespace() || c == '\u{a0}' => space = true,
            c => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push(c);
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Splits trailing footnote markers off a label: `Isis (2)` → (`Isis`, [`2`]), `staff1` →
/// (`staff`, [`1`]), `Thameside [note 3]`, `Total*`, superscript digits.
pub fn split_markers(label: &str) -> (String, Vec<String>) {
    let mut s = clean(label);
    let mut markers = Vec::new();
    loop {
        let t = s.trim_end();
        // (1), [1], [note 1], (a); superscripts; an asterisk
        let bracket = |inner: &str| {
            inner.chars().all(|c| c.is_ascii_digit())
                || (inner.len() == 1 && inner.chars().all(|c| c.is_ascii_lowercase()))
        };
        // a list in brackets: (1,2), [1, 3]
        if let Some((list, rest)) = trailing_list(t) {
            for (k, m) in list.into_iter().enumerate() {
                markers.insert(k, m);
            }
            s = rest.trim_end().to_owned();
            continue;
        }
        if let Some((marker, rest)) = trailing_bracket(t, bracket).or_else(|| trailing_symbol(t)) {
            markers.insert(0, marker);
            s = rest.trim_end().to_owned();
            continue;
        }
        // a digit or two glued to a lower-case word: "staff1", "prisoners2"
        let digits: String = t.chars().rev().take_while(|c| c.is_ascii_digit()).collect();
        if (1..=2).contains(&digits.len()) {
            let head = &t[..t.len() - digits.len()];
            let word: String = head
                .chars()
                .rev()
                .take_while(|c| c.is_alphabetic())
                .collect();
            if word.chars().count() >= 3 && word.chars().all(|c| c.is_lowercase()) {
                markers.insert(0, digits.chars().rev().collect());
                s = head.to_owned();
                continue;
            }
        }
        break;
    }
    (s.trim().to_owned(), markers)
}

fn superscript_digit(c: char) -> Option<u32> {
    match c {
        '\u{2070}' => Some(0),
        '\u{b9}' => Some(1),
        '\u{b2}' => Some(2),
        '\u{b3}' => Some(3),
        '\u{2074}'..='\u{2079}' => Some(c as u32 - 0x2070),
        _ => None,
    }
}

/// Reads a data cell.
pub fn parse_cell(raw: &str) -> Cell {
    let text = clean_cow(raw);
    let plain = |kind| Cell {
        kind,
        value: None,
        unit: None,
        scale: None,
        markers: vec![],
    };
    // Most cells are numbers: they need none of the marker checks below.
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_number(&text)
            .or_else(|| annotated_number(&text))
            .unwrap_or_else(|| plain(Kind::Text));
    }
    let lower = text.to_lowercase();
    if matches!(lower.as_str(), "-" | "–" | "—" | "−" | "nil" | "none") {
        return plain(Kind::Nil);
    }
    if matches!(
        lower.as_str(),
        "*" | "**" | "c" | "[c]" | "[x]" | "x" | "~" | "[u]" | "suppressed" | "[low]" | "low"
    ) || is_below_threshold(&lower)
    {
        return plain(Kind::Suppressed);
    }
    // A marker before the number: `*£2,146,841`, `†12`.
    if let Some(sym) = text.chars().next().filter(|c| matches!(c, '*' | '†' | '‡')) {
        let rest = text[sym.len_utf8()..].trim_start();
        if rest.starts_with(|c: char| c.is_ascii_digit() || c == '£') {
            if let Some(mut c) = parse_number(rest) {
                c.markers.insert(0, sym.to_string());
                return c;
            }
        }
    }
    if matches!(
        lower.as_str(),
        ".." | "…"
            | "n/a"
            | "na"
            | "[z]"
            | "z"
            | "n.a."
            | "not available"
            | "not applicable"
            | "[na]"
    ) {
        return plain(Kind::NotAvailable);
    }
    match parse_number(&text) {
        Some(c) => c,
        None => plain(Kind::Text),
    }
}

/// A number with a worded note in brackets after it, "1 (self-inflicted)": the number, the
/// note kept apart with the markers.
fn annotated_number(text: &str) -> Option<Cell> {
    let (number, note) = text.strip_suffix(')')?.split_once(" (")?;
    // Words only: a note with figures ("2017 (to 30 Sept)") is a label, not an annotated count.
    let words = note.chars().filter(|c| c.is_alphabetic()).count() >= 3
        && !note.contains(['(', ')'])
        && !note.chars().any(|c| c.is_ascii_digit());
    let mut cell = parse_number(number.trim()).filter(|_| words)?;
    cell.markers.push(note.trim().to_owned());
    Some(cell)
}

/// A count withheld below a threshold: `<5`, `< 10`, `fewer than 5`, `less than ten`, `under 5`;
/// not a band label such as "Less than 1 year".
fn is_below_threshold(lower: &str) -> bool {
    let rest = ["<", "fewer than", "less than", "under "]
        .iter()
        .find_map(|p| lower.strip_prefix(p));
    let Some(rest) = rest.map(str::trim) else {
        return false;
    };
    const WORDS: &[&str] = &[
        "three", "five", "ten", "six", "four", "two", "twenty", "fifty",
    ];
    WORDS.contains(&rest)
        || (rest.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && parse_number(rest).is_some())
}

/// `9,185`, `-3.5`, `−3.5`, `12%`, `£1.2m`, `£3bn`, `9,185(1)`, `40.8¹`.
fn parse_number(text: &str) -> Option<Cell> {
    let (t, markers) = split_value_markers(text);
    let mut s: &str = &t;
    let mut unit = None;
    let mut scale = None;
    let mut negative = false;
    if let Some(r) = s.strip_prefix(['-', '\u{2212}', '\u{2013}']) {
        negative = true;
        s = r.trim_start();
    } else if let Some(r) = s.strip_prefix('+') {
        // A change written with its sign: "+168".
        s = r.trim_start();
    }
    if let Some(r) = s.strip_prefix('£') {
        unit = Some(Unit::Gbp);
        s = r.trim_start();
    }
    if let Some(r) = s.strip_suffix('%') {
        unit = Some(Unit::Percent);
        s = r.trim_end();
    }
    let lower = s.to_ascii_lowercase();
    for (suffix, factor) in [
        ("bn", 1e9),
        ("billion", 1e9),
        ("million", 1e6),
        ("m", 1e6),
        ("k", 1e3),
    ] {
        if unit == Some(Unit::Gbp) || suffix != "m" {
            if let Some(r) = lower.strip_suffix(suffix) {
                if r.trim_end().ends_with(|c: char| c.is_ascii_digit()) {
                    scale = Some(factor);
                    s = s[..r.trim_end().len()].trim_end();
                    break;
                }
            }
        }
    }
    if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    // Thousands separators must group by three; a decimal point at most once.
    let mut digits = String::new();
    let (int_part, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if int_part.contains(',') {
        let groups: Vec<&str> = int_part.split(',').collect();
        let ok = !groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3);
        if !ok {
            return None;
        }
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit() || b == b',') {
        return None;
    }
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    if int_part.contains(',') {
        digits.reserve(s.len());
        digits.extend(s.chars().filter(|c| *c != ','));
    }
    let mut value: f64 = if int_part.contains(',') {
        digits.parse().ok()?
    } else {
        s.parse().ok()?
    };
    if negative {
        value = -value;
    }
    Some(Cell {
        kind: Kind::Number,
        value: Some(value),
        unit,
        scale,
        markers,
    })
}

/// Footnote markers glued to a value: `9,185(1)`, `12[note 2]`, `40.8¹`, `17*`.
fn split_value_markers(text: &str) -> (std::borrow::Cow<'_, str>, Vec<String>) {
    let trimmed = text.trim();
    if trimmed.ends_with(|c: char| c.is_ascii_digit() || c == '%' || c.is_ascii_alphabetic()) {
        return (std::borrow::Cow::Borrowed(trimmed), Vec::new());
    }
    let mut s = trimmed.to_owned();
    let mut markers = Vec::new();
    let bracket = |inner: &str| inner.chars().all(|c| c.is_ascii_alphanumeric());
    loop {
        let t = s.trim_end();
        let Some((marker, rest)) = trailing_bracket(t, bracket).or_else(|| trailing_symbol(t))
        else {
            break;
        };
        markers.insert(0, marker);
        s = rest.trim_end().to_owned();
    }
    (std::borrow::Cow::Owned(s.trim().to_owned()), markers)
}

/// A list of numbered markers in brackets ending `t` (`(1,2)`, `[1, 3]`), and the text before.
fn trailing_list(t: &str) -> Option<(Vec<String>, &str)> {
    let (open, body) = match t.strip_suffix(')') {
        Some(x) => ('(', x),
        None => ('[', t.strip_suffix(']')?),
    };
    let i = body.rfind(open).filter(|&i| i > 0)?;
    let inner = &body[i + 1..];
    if !inner.contains(',')
        || inner.len() > 16
        || !inner
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
    {
        return None;
    }
    let list = super::marker::markers_of(inner)?;
    Some((list, &t[..i]))
}

/// A marker in brackets ending `t` (`(1)`, `[note 2]`), if `accept` takes what is inside
/// (at most 3 characters, after any "note"), and the text before it.
fn trailing_bracket(t: &str, accept: impl Fn(&str) -> bool) -> Option<(String, &str)> {
    let (open, body) = match t.strip_suffix(')') {
        Some(x) => ('(', x),
        None => ('[', t.strip_suffix(']')?),
    };
    let i = body.rfind(open).filter(|&i| i > 0)?;
    let inner = body[i + 1..].trim().trim_start_matches("note").trim();
    (!inner.is_empty() && inner.len() <= 3 && accept(inner)).then(|| (inner.to_owned(), &t[..i]))
}

/// A superscript digit or an asterisk ending `t`, and the text before it.
fn trailing_symbol(t: &str) -> Option<(String, &str)> {
    let c = t.chars().last()?;
    if let Some(d) = superscript_digit(c) {
        let before = &t[..t.len() - c.len_utf8()];
        // `m²` is a unit, not a marker.
        if matches!(c, '²' | '³') && super::marker::follows_unit(before) {
            return None;
        }
        return Some((d.to_string(), before));
    }
    (c == '*' && t.len() > 1).then(|| ("*".to_owned(), &t[..t.len() - 1]))
}

/// A unit named in a header, label or caption, if it names exactly one. Whole words only, so
/// "Moderate" is not a rate.
pub fn unit_hint(text: &str) -> Option<Unit> {
    let l = text.to_lowercase();
    let words: Vec<&str> = l
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |ws: &[&str]| words.iter().any(|w| ws.contains(w));
    let mut found = Vec::new();
    if has(&["rate", "rates"]) || l.contains("per 1,000") || l.contains("per 100,000") {
        found.push(Unit::Rate);
    }
    if l.contains('%') || has(&["percent", "percentage", "proportion"]) {
        found.push(Unit::Percent);
    }
    if l.contains('£') || has(&["spend", "spending", "cost", "costs", "expenditure", "gbp"]) {
        found.push(Unit::Gbp);
    }
    if has(&["number", "count", "total"]) {
        found.push(Unit::Count);
    }
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// A scale named in a header: `£m`, `£000s`, `(£ million)`, `£bn`.
pub fn scale_hint(text: &str) -> Option<f64> {
    let l = clean(text).to_lowercase().replace(['(', ')', ' '], "");
    if !l.contains('£') {
        return None;
    }
    if l.contains("£m") || l.contains("£million") || l.contains("millions") {
        Some(1e6)
    } else if l.contains("£bn") || l.contains("£billion") {
        Some(1e9)
    } else if l.contains("£000") || l.contains("£k") || l.contains("£thousand") {
        Some(1e3)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(raw: &str) -> Option<f64> {
        let c = parse_cell(raw);
        c.value.filter(|_| c.kind == Kind::Number)
    }

    #[test]
    fn numbers_are_read_as_the_moj_writes_them() {
        assert_eq!(num("9,185"), Some(9185.0));
        assert_eq!(num("12.15"), Some(12.15));
        assert_eq!(num("-3"), Some(-3.0));
        assert_eq!(num("\u{2212}3.5"), Some(-3.5));
        assert_eq!(num("1,234,567"), Some(1_234_567.0));
        assert_eq!(num(" 42\u{a0}"), Some(42.0));
        assert_eq!(num("4\u{200b}2"), Some(42.0));
        assert_eq!(num("12,34"), None);
        assert_eq!(num("1.2.3"), None);
        assert_eq!(num("2017 - present"), None);
    }

    #[test]
    fn currency_percent_and_scale_are_kept_apart_from_the_value() {
        let c = parse_cell("£1.2m");
        assert_eq!(
            (c.value, c.unit, c.scale),
            (Some(1.2), Some(Unit::Gbp), Some(1e6))
        );
        let c = parse_cell("12%");
        assert_eq!((c.value, c.unit), (Some(12.0), Some(Unit::Percent)));
        let c = parse_cell("£3bn");
        assert_eq!(c.scale, Some(1e9));
        assert_eq!(num("5m"), None, "m without £ is not a scale");
    }

    #[test]
    fn footnote_markers_glued_to_values_are_split_off() {
        let c = parse_cell("9,185(1)");
        assert_eq!(
            (c.value, c.markers.clone()),
            (Some(9185.0), vec!["1".to_owned()])
        );
        let c = parse_cell("40.8\u{b9}");
        assert_eq!((c.value, c.markers), (Some(40.8), vec!["1".to_owned()]));
        let c = parse_cell("*£2,146,841");
        assert_eq!(
            (c.value, c.unit, c.markers),
            (Some(2146841.0), Some(Unit::Gbp), vec!["*".to_owned()])
        );
        let c = parse_cell("17*");
        assert_eq!((c.value, c.markers), (Some(17.0), vec!["*".to_owned()]));
    }

    #[test]
    fn suppression_nil_and_not_available_are_told_apart() {
        for s in [
            "*",
            "c",
            "[c]",
            "[x]",
            "<5",
            "fewer than 5",
            "Fewer than 10",
        ] {
            assert_eq!(parse_cell(s).kind, Kind::Suppressed, "{s}");
        }
        for s in ["-", "–", "—"] {
            assert_eq!(parse_cell(s).kind, Kind::Nil, "{s}");
        }
        for s in ["..", "n/a", "N/A", "[z]"] {
            assert_eq!(parse_cell(s).kind, Kind::NotAvailable, "{s}");
        }
        assert_eq!(parse_cell("Closed in 2019").kind, Kind::Text);
        for s in [
            "Less than 1 year",
            "Less than six months",
            "Under 18s",
            "< 5 years",
        ] {
            assert_eq!(parse_cell(s).kind, Kind::Text, "{s}");
        }
        for s in ["less than 5", "Fewer than ten", "< 10", "under 5"] {
            assert_eq!(parse_cell(s).kind, Kind::Suppressed, "{s}");
        }
    }

    #[test]
    fn label_markers_are_split_off_but_real_names_are_kept() {
        assert_eq!(split_markers("Isis (2)"), ("Isis".into(), vec!["2".into()]));
        assert_eq!(split_markers("staff1"), ("staff".into(), vec!["1".into()]));
        assert_eq!(
            split_markers("Rate of incidents per 1,000 prisoners2"),
            (
                "Rate of incidents per 1,000 prisoners".into(),
                vec!["2".into()]
            )
        );
        assert_eq!(split_markers("Thameside [note 3]").0, "Thameside");
        assert_eq!(split_markers("Q1 2024").0, "Q1 2024");
        assert_eq!(split_markers("Category B1").0, "Category B1");
        assert_eq!(split_markers("2019").0, "2019");
        assert_eq!(split_markers("Total*"), ("Total".into(), vec!["*".into()]));
        assert_eq!(
            split_markers("Eligible for HDC (1,2)"),
            ("Eligible for HDC".into(), vec!["1".into(), "2".into()])
        );
        assert_eq!(
            split_markers("Cell area m²"),
            ("Cell area m²".into(), vec![])
        );
        assert_eq!(split_markers("Hull²"), ("Hull".into(), vec!["2".into()]));
    }

    #[test]
    fn units_are_read_from_headers_when_they_name_one() {
        assert_eq!(
            unit_hint("Rate of incidents per 1,000 prisoners"),
            Some(Unit::Rate)
        );
        assert_eq!(unit_hint("Number of incidents"), Some(Unit::Count));
        assert_eq!(unit_hint("£m"), Some(Unit::Gbp));
        assert_eq!(unit_hint("Percentage of staff"), Some(Unit::Percent));
        assert_eq!(unit_hint("Number and rate per 1,000 prisoners"), None);
        assert_eq!(unit_hint("HMP Moderate"), None);
        assert_eq!(scale_hint("£m"), Some(1e6));
        assert_eq!(scale_hint("(£000s)"), Some(1e3));
    }
}
