//! Footnote markers as structure: which `<sup>` text is a marker (by its class: digits, lists,
//! letters, roman numerals, symbols), how markers travel inside flattened text until labels are
//! made, and which note a marker points to. Pure.
//!
//! While an element's text is flattened, a `<sup>` marker is written as `OPEN markers CLOSE`
//! (private-use characters, stripped from the input first), so that the label, the value and the
//! note it was glued to can each take it apart later without losing where it was.

/// Opens a marker inside flattened text.
pub(crate) const OPEN: char = '\u{E000}';
/// Closes a marker inside flattened text.
pub(crate) const CLOSE: char = '\u{E001}';

/// What a `<sup>` holds.
#[derive(Debug, PartialEq)]
pub(crate) enum Sup {
    /// Footnote markers, normalised: `<sup>(1)</sup>` and `<sup>1</sup>` are both `1`.
    Markers(Vec<String>),
    /// A power of a unit (`m<sup>2</sup>`): kept in the text as `²`.
    Power(char),
    /// Anything else (`1<sup>st</sup>`): plain text.
    Text,
}

const ROMAN: &[&str] = &[
    "i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii",
];

/// Units whose powers are written as superscripts.
const POWER_UNITS: &[&str] = &[
    "m", "cm", "mm", "km", "ft", "metre", "metres", "meter", "meters", "sqm",
];

/// Reads a `<sup>`'s text, given the flattened text before it.
pub(crate) fn classify(sup: &str, before: &str) -> Sup {
    let t = sup.trim();
    if t.is_empty() {
        return Sup::Text;
    }
    if matches!(t, "2" | "3") && follows_unit(before) {
        return Sup::Power(if t == "2" { '²' } else { '³' });
    }
    match markers_of(t) {
        Some(m) => Sup::Markers(m),
        None => Sup::Text,
    }
}

/// The unit just before a superscript, glued to it: "12 m", "metres" (not "£1.2m", a scale).
pub(crate) fn follows_unit(before: &str) -> bool {
    let word: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<Vec<char>>()
        .into_iter()
        .rev()
        .collect();
    if word.is_empty() || !POWER_UNITS.contains(&word.to_ascii_lowercase().as_str()) {
        return false;
    }
    let head = &before[..before.len() - word.len()];
    let token_start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    !head[token_start..].contains('£')
}

/// The markers a short text names, if it is nothing but markers: `1`, `1,2,3,4`, `1-3`, `(2)`,
/// `[note 3]`, `*`, `†`, `a`, `iv`. `None` for anything else.
pub(crate) fn markers_of(text: &str) -> Option<Vec<String>> {
    let mut t = text.trim();
    if t.is_empty() || t.chars().count() > 40 {
        return None;
    }
    if let Some(inner) = t
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .or_else(|| t.strip_prefix('[').and_then(|x| x.strip_suffix(']')))
    {
        t = inner.trim();
    }
    let lower = t.to_ascii_lowercase();
    for prefix in ["notes", "note"] {
        if lower.starts_with(prefix) {
            t = t[prefix.len()..].trim_start();
            break;
        }
    }
    let mut out = Vec::new();
    for token in t
        .split(|c: char| matches!(c, ',' | ';' | '&') || c.is_whitespace())
        .filter(|s| !s.is_empty() && *s != "and")
    {
        if let Some((a, b)) = token.split_once(['-', '\u{2013}']) {
            let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
            if a >= b || b - a > 20 || b > 999 {
                return None;
            }
            out.extend((a..=b).map(|n| n.to_string()));
            continue;
        }
        out.push(one_marker(token)?);
        if out.len() > 24 {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// One marker token, normalised, or `None`.
fn one_marker(token: &str) -> Option<String> {
    let digits: String = token.chars().filter_map(superscript_or_digit).collect();
    if !digits.is_empty() && digits.len() == token.chars().count() {
        return (digits.len() <= 3)
            .then(|| digits.trim_start_matches('0').to_owned())
            .filter(|d| !d.is_empty());
    }
    let n = token.chars().count();
    if n == 1 && token.chars().all(|c| c.is_ascii_alphabetic()) {
        return Some(token.to_owned());
    }
    if ROMAN.contains(&token) {
        return Some(token.to_owned());
    }
    if n <= 3
        && token
            .chars()
            .all(|c| matches!(c, '*' | '†' | '‡' | '§' | '¶' | '#'))
    {
        return Some(token.to_owned());
    }
    None
}

fn superscript_or_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '\u{2070}' => Some('0'),
        '\u{b9}' => Some('1'),
        '\u{b2}' => Some('2'),
        '\u{b3}' => Some('3'),
        '\u{2074}'..='\u{2079}' => char::from_digit(c as u32 - 0x2070, 10),
        _ => None,
    }
}

/// Writes markers into flattened text.
pub(crate) fn encode(out: &mut String, markers: &[String]) {
    out.push(OPEN);
    out.push_str(&markers.join(","));
    out.push(CLOSE);
}

/// Text with its `<sup>` markers taken out.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Resolved {
    /// The text without markers (white space collapsed).
    pub text: String,
    /// The markers in order.
    pub markers: Vec<String>,
    /// The markers that came before any text (a note's own marker: `<sup>1</sup> Source…`).
    pub leading: Vec<String>,
}

/// Takes the markers out of flattened text.
pub(crate) fn resolve(marked: &str) -> Resolved {
    if !marked.contains(OPEN) {
        return Resolved {
            text: super::value::clean(marked),
            ..Resolved::default()
        };
    }
    let mut text = String::with_capacity(marked.len());
    let mut markers = Vec::new();
    let mut leading = Vec::new();
    let mut rest = marked;
    let mut gap = false;
    while let Some(i) = rest.find(OPEN) {
        push_after_gap(&mut text, &rest[..i], gap);
        let after = &rest[i + OPEN.len_utf8()..];
        let (inner, tail) = after.split_once(CLOSE).unwrap_or((after, ""));
        let these = inner
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        if text.trim().is_empty() {
            leading.extend(these.clone());
        }
        markers.extend(these);
        gap = true;
        rest = tail;
    }
    push_after_gap(&mut text, rest, gap);
    Resolved {
        text: super::value::clean(&text),
        markers,
        leading,
    }
}

/// Appends `s`, with a space where a marker stood between two words ("Officer<sup>1</sup>joiners").
fn push_after_gap(text: &mut String, s: &str, gap: bool) {
    if gap && text.ends_with(char::is_alphanumeric) && s.starts_with(char::is_alphanumeric) {
        text.push(' ');
    }
    text.push_str(s);
}

/// Flattened text shown to a person (notes): markers written where they stood, a space after a
/// leading one (`<sup>1</sup>Source` → `1 Source`).
pub(crate) fn shown(marked: &str) -> String {
    if !marked.contains(OPEN) {
        return super::value::clean(marked);
    }
    let mut out = String::with_capacity(marked.len());
    let mut rest = marked;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + OPEN.len_utf8()..];
        let (inner, tail) = after.split_once(CLOSE).unwrap_or((after, ""));
        out.push_str(inner);
        if tail.starts_with(char::is_alphanumeric) {
            out.push(' ');
        }
        rest = tail;
    }
    out.push_str(rest);
    super::value::clean(&out)
}

/// The marker a note starts with, if it starts with one: a `<sup>` marker, `(1)`, `[1]`, `1.`,
/// `1)`, `1:`, `1 ` before a capital, `Note 1:`, `*`, `†`, `¹`, `(a)`, `a)`.
pub(crate) fn note_markers(marked: &str) -> Vec<String> {
    let r = resolve(marked);
    if !r.leading.is_empty() {
        return r.leading;
    }
    let t = r.text.as_str();
    let lower = t.to_ascii_lowercase();
    let t = if lower.starts_with("note ") || lower.starts_with("notes ") {
        t.split_once(' ').map_or(t, |(_, rest)| rest.trim_start())
    } else {
        t
    };
    let (head, rest) = match t.split_once(char::is_whitespace) {
        Some((h, r)) => (h, r.trim_start()),
        None => return vec![],
    };
    // (1) / [1] / (a): the bracketed form is a marker whatever follows.
    if (head.starts_with('(') && head.ends_with(')'))
        || (head.starts_with('[') && head.ends_with(']'))
    {
        return markers_of(head).unwrap_or_default();
    }
    // 1. / 1) / 1: / a) / i.
    if let Some(body) = head.strip_suffix(['.', ')', ':']) {
        let digits_or_letter = body.chars().all(|c| c.is_ascii_digit())
            || (body.len() == 1
                && body.chars().all(|c| c.is_ascii_alphabetic())
                && head.ends_with(')'))
            || ROMAN.contains(&body);
        if !body.is_empty() && body.len() <= 3 && digits_or_letter {
            return markers_of(body).unwrap_or_default();
        }
        return vec![];
    }
    // 1 Figures… / * Figures… / ¹ Figures…
    let starts_upper = rest.starts_with(|c: char| c.is_uppercase());
    let symbol = head
        .chars()
        .all(|c| matches!(c, '*' | '†' | '‡' | '§' | '¶' | '#'));
    let superscript = head
        .chars()
        .all(|c| superscript_or_digit(c).is_some() && !c.is_ascii_digit());
    let digits = head.len() <= 2 && head.chars().all(|c| c.is_ascii_digit());
    if symbol || superscript || (digits && starts_upper) {
        return markers_of(head).unwrap_or_default();
    }
    // *Figures… glued
    if let Some(body) = t.strip_prefix('*') {
        if body.starts_with(|c: char| c.is_alphabetic()) {
            return vec!["*".to_owned()];
        }
    }
    vec![]
}

/// Markers compare without case: a note `(A)` answers a marker `a`.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Option<Vec<String>> {
        markers_of(s)
    }

    #[test]
    fn marker_classes_are_read_as_markers() {
        assert_eq!(m("1"), Some(vec!["1".into()]));
        assert_eq!(
            m("1,2,3,4"),
            Some(vec!["1".into(), "2".into(), "3".into(), "4".into()])
        );
        assert_eq!(m("1, 2"), Some(vec!["1".into(), "2".into()]));
        assert_eq!(m("(1)"), Some(vec!["1".into()]));
        assert_eq!(m("[note 3]"), Some(vec!["3".into()]));
        assert_eq!(m("2-4"), Some(vec!["2".into(), "3".into(), "4".into()]));
        assert_eq!(m("*"), Some(vec!["*".into()]));
        assert_eq!(m("†"), Some(vec!["†".into()]));
        assert_eq!(m("a"), Some(vec!["a".into()]));
        assert_eq!(m("iv"), Some(vec!["iv".into()]));
        assert_eq!(m("\u{b9}"), Some(vec!["1".into()]));
    }

    #[test]
    fn other_superscripts_are_not_markers() {
        for s in [
            "st",
            "nd",
            "th",
            "rd",
            "provisional",
            "1st",
            "2019",
            "",
            "e.g.",
        ] {
            assert_eq!(m(s), None, "{s}");
        }
        assert_eq!(classify("2", "Cell size 12m"), Sup::Power('²'));
        assert_eq!(classify("2", "Area (metres"), Sup::Power('²'));
        assert_eq!(classify("2", "HMP Ranby"), Sup::Markers(vec!["2".into()]));
        assert_eq!(classify("2", "Spend £1.2m"), Sup::Markers(vec!["2".into()]));
        assert_eq!(classify("st", "1"), Sup::Text);
    }

    #[test]
    fn resolving_takes_markers_out_and_keeps_words_apart() {
        let mut s = String::from("Prison Officer");
        encode(&mut s, &["1".into()]);
        s.push_str("joiners");
        let r = resolve(&s);
        assert_eq!(r.text, "Prison Officer joiners");
        assert_eq!(r.markers, vec!["1"]);
        assert!(r.leading.is_empty());
        let mut n = String::new();
        encode(&mut n, &["2".into()]);
        n.push_str("Source: HMPPS");
        assert_eq!(resolve(&n).leading, vec!["2"]);
        assert_eq!(shown(&n), "2 Source: HMPPS");
    }

    #[test]
    fn notes_say_which_marker_they_explain() {
        assert_eq!(
            note_markers("(1) Assaults on staff are a subset"),
            vec!["1"]
        );
        assert_eq!(note_markers("[2] Figures are provisional"), vec!["2"]);
        assert_eq!(note_markers("1. Figures are provisional"), vec!["1"]);
        assert_eq!(note_markers("3 Includes YCS"), vec!["3"]);
        assert_eq!(note_markers("Note 4: Includes YCS"), vec!["4"]);
        assert_eq!(note_markers("* Less than five"), vec!["*"]);
        assert_eq!(note_markers("*Less than five"), vec!["*"]);
        assert_eq!(note_markers("\u{b9} Includes YCS"), vec!["1"]);
        assert_eq!(note_markers("a) Includes YCS"), vec!["a"]);
        assert!(note_markers("10 prisons were excluded").is_empty());
        assert!(note_markers("2019 figures are provisional").is_empty());
        assert!(note_markers("Source: HMPPS").is_empty());
        assert!(note_markers("a total of 5").is_empty());
    }
}
