//! Statistics: what a table measures, and whether it is a new edition of a statistic seen before.
//! Pure: tables and known statistics in, drafts and scored, explained matches out.
//!
//! A table splits into one draft statistic per unit (a table of numbers and rates is two
//! statistics). Within a draft, labels that are the same on every figure ("Number of incidents",
//! "Amount") say what is measured; labels that vary (prisons, staff groups) are dimensions, and
//! periods are the time axis. A draft matches a known statistic of the same answering body and
//! unit when their measure words overlap enough; below the threshold it starts a new statistic,
//! since a false revision is worse than a split series.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::extract::value::split_markers;
use crate::extract::{Kind, Observation, Table, Unit};

/// Jaccard similarity of measure words at or above which a draft joins a known statistic.
pub const MATCH_THRESHOLD: f64 = 0.8;

/// Words that say nothing about what is measured (and so survive a renamed "Number" column).
const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "and",
    "the",
    "of",
    "in",
    "on",
    "at",
    "to",
    "for",
    "by",
    "from",
    "with",
    "within",
    "as",
    "or",
    "per",
    "each",
    "all",
    "its",
    "their",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "number",
    "numbers",
    "total",
    "totals",
    "amount",
    "count",
    "figure",
    "figures",
    "table",
    "year",
    "years",
    "calendar",
    "financial",
    "data",
    "below",
    "above",
    "following",
    "information",
    "requested",
    "provided",
    "shows",
    "show",
    "hm",
    "hmp",
    "hmyoi",
    "yoi",
    "prisons",
    "note",
    "notes",
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "present",
    "since",
    "last",
    "ten",
    "five",
    "between",
];

/// The context of a table: who answered and under what heading.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub answering_body: String,
    pub heading: String,
    /// The question asked (what is counted, and its scope).
    pub question: String,
}

/// One figure of a draft, keyed for comparison with history.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// The normalised dimension labels, joined: "" for a single series, "maidstone".
    pub cell_key: String,
    /// The period key, or "" when the figure has none.
    pub period_key: String,
    pub period_label: Option<String>,
    pub kind: Kind,
    pub value: Option<f64>,
    pub raw: String,
    pub row: Vec<String>,
    pub column: Vec<String>,
    pub cell: [usize; 2],
    /// The label naming what this figure measures ("Dismissals"), markers apart; "" if none.
    pub measure: String,
}

/// A statistic as one table presents it, before it is matched.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub table_index: usize,
    /// A title a person would write (see [`crate::title`]).
    pub title: String,
    /// The table's caption as published, kept as the description.
    pub description: String,
    /// The label naming what is measured ("Dismissals"), markers apart; "" if none.
    pub measure_label: String,
    pub answering_body: String,
    pub unit: Option<Unit>,
    /// Measure words from the caption and the constant labels.
    pub measure: BTreeSet<String>,
    /// Words of the heading (a weaker signal, shared by many statistics).
    pub heading: BTreeSet<String>,
    /// Normalised dimension values (prisons, staff groups).
    pub dims: BTreeSet<String>,
    pub figures: Vec<Figure>,
}

/// A statistic already in the store, as matching needs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Known {
    pub id: i64,
    pub measure: BTreeSet<String>,
    pub dims: BTreeSet<String>,
}

/// Why a draft was filed where it was: stored, and shown by `pqwatch series show`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchReason {
    /// The statistic matched, or None for a new one.
    pub matched: Option<i64>,
    pub score: f64,
    pub threshold: f64,
    pub shared_words: Vec<String>,
    pub only_new_words: Vec<String>,
    pub only_known_words: Vec<String>,
    pub shared_dims: Vec<String>,
    /// The best candidate that fell short, when a new statistic was started.
    pub best_rejected: Option<(i64, f64)>,
}

/// A prison's or group's name, normalised: HMP/HMYOI prefixes dropped, "&" as "and", case and
/// footnote markers ignored.
pub fn normalise_label(label: &str) -> String {
    let (text, _) = split_markers(label);
    let mut s = text.to_lowercase().replace('&', " and ");
    for prefix in [
        "hmp/yoi ",
        "hmp & yoi ",
        "hmp and yoi ",
        "hmyoi ",
        "hmp ",
        "hm prison ",
        "yoi ",
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_owned();
        }
    }
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Content words: lower case, no digits, no stopwords, a plural "s" dropped.
pub fn words(text: &str) -> BTreeSet<String> {
    let (text, _) = split_markers(text);
    text.to_lowercase()
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| w.len() > 1 && !STOPWORDS.contains(w))
        .map(|w| {
            if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
                w[..w.len() - 1].to_owned()
            } else {
                w.to_owned()
            }
        })
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

fn unit_name(u: Option<Unit>) -> &'static str {
    match u {
        Some(Unit::Count) => "count",
        Some(Unit::Percent) => "percent",
        Some(Unit::Gbp) => "gbp",
        Some(Unit::Rate) => "rate",
        None => "none",
    }
}

/// The draft statistics of one table: one per unit among its figures.
pub fn drafts(table: &Table, ctx: &Context) -> Vec<Draft> {
    let figures: Vec<&Observation> = table
        .observations
        .iter()
        .filter(|o| o.kind != Kind::Text)
        .collect();
    let mut by_unit: BTreeMap<&'static str, Vec<&Observation>> = BTreeMap::new();
    for o in figures {
        by_unit.entry(unit_name(o.unit)).or_default().push(o);
    }
    let caption = table.caption.clone().unwrap_or_default();
    let several = by_unit.len() > 1;
    by_unit
        .into_values()
        .map(|obs| draft(table.index, &caption, ctx, &obs, several))
        .collect()
}

fn draft(
    table_index: usize,
    caption: &str,
    ctx: &Context,
    obs: &[&Observation],
    several: bool,
) -> Draft {
    // Label positions: ("r", depth) and ("c", depth); a position with one value is a measure
    // label, with several a dimension.
    let mut values: BTreeMap<(char, usize), BTreeSet<&str>> = BTreeMap::new();
    for o in obs {
        for (i, l) in o.row.iter().enumerate() {
            values.entry(('r', i)).or_default().insert(l);
        }
        for (i, l) in o.column.iter().enumerate() {
            values.entry(('c', i)).or_default().insert(l);
        }
    }
    let is_period_label = |l: &str| crate::extract::period::parse(l).is_some();
    let constant = |side: char, i: usize| values.get(&(side, i)).is_some_and(|v| v.len() == 1);
    let mut measure = words(caption);
    let mut dims = BTreeSet::new();
    let mut figures = Vec::with_capacity(obs.len());
    let mut measure_labels: Vec<String> = Vec::new();
    for o in obs {
        let mut key = Vec::new();
        for (side, labels) in [('r', &o.row), ('c', &o.column)] {
            for (i, l) in labels.iter().enumerate() {
                if is_period_label(l) {
                    continue;
                }
                if constant(side, i) {
                    measure.extend(words(l));
                    let clean = split_markers(l).0;
                    if !clean.is_empty() && !measure_labels.contains(&clean) {
                        measure_labels.push(clean);
                    }
                } else {
                    let n = normalise_label(l);
                    dims.insert(n.clone());
                    key.push(n);
                }
            }
        }
        figures.push(Figure {
            cell_key: key.join(" / "),
            period_key: o.period.as_ref().map(|p| p.key.clone()).unwrap_or_default(),
            period_label: o.period.as_ref().map(|p| p.label.clone()),
            kind: o.kind,
            value: o.value,
            raw: o.raw.clone(),
            row: o.row.clone(),
            column: o.column.clone(),
            cell: o.cell,
            measure: String::new(),
        });
    }
    let measure_label = measure_labels.join(" / ");
    for f in &mut figures {
        f.measure = measure_label.clone();
    }
    // A figure with no period in a table of periods (a "Total" row) totals the periods shown:
    // key it by that span, so totals over different years are different cells, not revisions.
    let periods: BTreeSet<&str> = figures
        .iter()
        .map(|f| f.period_key.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    if let (Some(first), Some(last)) = (periods.first(), periods.last()) {
        let span = format!("total {first}..{last}");
        for f in figures.iter_mut().filter(|f| f.period_key.is_empty()) {
            f.period_key = span.clone();
        }
    }
    let unit = obs.first().and_then(|o| o.unit);
    let title = crate::title::title(&crate::title::Parts {
        question: &ctx.question,
        heading: &ctx.heading,
        caption,
        measure: &measure_label,
        one_of_several: several,
    });
    Draft {
        table_index,
        title,
        description: caption.to_owned(),
        measure_label,
        answering_body: ctx.answering_body.clone(),
        unit,
        measure,
        heading: words(&ctx.heading),
        dims,
        figures,
    }
}

/// The measure words worth looking a draft up by: all of them (the store picks the rarest).
pub fn lookup_words(d: &Draft) -> Vec<String> {
    d.measure.iter().chain(&d.heading).cloned().collect()
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// Scores a draft against each candidate and picks the best at or above the threshold.
/// The candidates are already of the same answering body and unit.
pub fn best_match(d: &Draft, candidates: &[Known]) -> MatchReason {
    let measure = if d.measure.is_empty() {
        &d.heading
    } else {
        &d.measure
    };
    let mut best: Option<(&Known, f64)> = None;
    for k in candidates {
        let mut score = jaccard(measure, &k.measure);
        // Dimensions that do not overlap at all (other prisons entirely) weaken the match.
        if !d.dims.is_empty() && !k.dims.is_empty() && d.dims.is_disjoint(&k.dims) {
            score *= 0.8;
        }
        if best.is_none_or(|(b, s)| score > s || (score == s && k.id < b.id)) {
            best = Some((k, score));
        }
    }
    let reason = |k: Option<&Known>, score: f64, matched: bool| {
        let empty = BTreeSet::new();
        let (km, kd) = k.map_or((&empty, &empty), |k| (&k.measure, &k.dims));
        MatchReason {
            matched: if matched { k.map(|k| k.id) } else { None },
            score,
            threshold: MATCH_THRESHOLD,
            shared_words: measure.intersection(km).cloned().collect(),
            only_new_words: measure.difference(km).cloned().collect(),
            only_known_words: km.difference(measure).cloned().collect(),
            shared_dims: d.dims.intersection(kd).cloned().collect(),
            best_rejected: if matched {
                None
            } else {
                k.map(|k| (k.id, score))
            },
        }
    };
    match best {
        Some((k, s)) if s >= MATCH_THRESHOLD => reason(Some(k), s, true),
        Some((k, s)) => reason(Some(k), s, false),
        None => reason(None, 0.0, false),
    }
}

/// The unit's stored name.
pub fn unit_key(u: Option<Unit>) -> &'static str {
    unit_name(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::extract;

    fn ctx() -> Context {
        Context {
            answering_body: "Ministry of Justice".into(),
            heading: "Prisons: Crimes of Violence".into(),
            question: String::new(),
        }
    }

    #[test]
    fn prison_names_are_normalised() {
        assert_eq!(normalise_label("HMP Wormwood Scrubs"), "wormwood scrubs");
        assert_eq!(normalise_label("Isis (2)"), "isis");
        assert_eq!(
            normalise_label("England &amp; Wales"),
            "england and amp wales"
        );
        assert_eq!(normalise_label("England & Wales"), "england and wales");
        assert_eq!(normalise_label("HMYOI Feltham"), "feltham");
    }

    #[test]
    fn a_table_of_numbers_and_rates_is_two_statistics_with_prisons_as_dimensions() {
        let html = "<p>Assaults on staff, 2019 to 2023</p><table><tr><th></th><th>2019</th><th>2020</th></tr>\
            <tr><td colspan=\"3\"><strong>Number of incidents</strong></td></tr>\
            <tr><td>Maidstone</td><td>25</td><td>48</td></tr><tr><td>HMP Huntercombe</td><td>19</td><td>16</td></tr>\
            <tr><td colspan=\"3\"><strong>Rate per 1,000 prisoners</strong></td></tr>\
            <tr><td>Maidstone</td><td>42.6</td><td>86.8</td></tr><tr><td>HMP Huntercombe</td><td>40.8</td><td>37.0</td></tr></table>";
        let x = extract(html);
        let ds = drafts(&x.tables[0], &ctx());
        assert_eq!(ds.len(), 2);
        let count = ds.iter().find(|d| d.unit == Some(Unit::Count)).unwrap();
        assert!(count.measure.contains("assault") && count.measure.contains("incident"));
        assert_eq!(
            count.dims.iter().cloned().collect::<Vec<_>>(),
            vec!["huntercombe", "maidstone"]
        );
        assert_eq!(count.figures[0].cell_key, "maidstone");
        assert_eq!(count.figures[0].period_key, "2019");
    }

    #[test]
    fn a_renamed_generic_column_still_matches_but_a_qualifier_does_not() {
        let a = extract("<p>Staff dismissed for corruption</p><table><tr><th>Year</th><th>Number</th></tr><tr><td>2019</td><td>5</td></tr><tr><td>2020</td><td>6</td></tr></table>");
        let b = extract("<p>Staff dismissed for corruption</p><table><tr><th>Year</th><th>Total</th></tr><tr><td>2020</td><td>6</td></tr><tr><td>2021</td><td>7</td></tr></table>");
        let c = extract("<p>Agency staff dismissed for corruption</p><table><tr><th>Year</th><th>Number</th></tr><tr><td>2020</td><td>6</td></tr><tr><td>2021</td><td>7</td></tr></table>");
        let da = &drafts(&a.tables[0], &ctx())[0];
        let known = Known {
            id: 1,
            measure: da.measure.clone(),
            dims: da.dims.clone(),
        };
        let m = best_match(
            &drafts(&b.tables[0], &ctx())[0],
            std::slice::from_ref(&known),
        );
        assert_eq!(m.matched, Some(1), "{m:?}");
        let m = best_match(&drafts(&c.tables[0], &ctx())[0], &[known]);
        assert_eq!(m.matched, None, "{m:?}");
        assert_eq!(m.only_new_words, vec!["agency"]);
    }
}
