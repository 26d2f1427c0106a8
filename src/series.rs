//! Statistics: what a table measures, and whether it is a new edition of a statistic seen before.
//! Pure: tables and known statistics in, drafts and scored, explained matches out.
//!
//! A series is the unit of identity: one measure, optionally broken down by dimensions (prisons,
//! staff groups), over periods. A table splits into one draft per unit and per non-period column
//! label (a table of four measures by year is four series; numbers and rates are two). Within a
//! draft, labels that are the same on every figure ("Dismissals") say what is measured; labels
//! that vary are dimensions, and periods are the time axis.
//!
//! A draft joins a known series of the same answering body and unit on the evidence together
//! (docs/matching.md): a scope qualifier one has and the other lacks (youth, women, agency, one
//! region) always separates them; overlapping figures that mostly agree join them whatever the
//! headers say; the same measure words and topic join them even when every overlapping figure
//! differs (a department re-running its figures). Weak evidence starts a new statistic, and the
//! reason names the one nearly matched and why not: a false revision is worse than a split series.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::extract::value::split_markers;
use crate::extract::{Kind, Observation, Table, Unit};

/// Similarity of measure-label words (Jaccard) at or above which two series measure the same.
pub const MATCH_THRESHOLD: f64 = 0.8;
/// Overlap of topic words (shared / smaller set) at or above which two series are about the same.
pub const TOPIC_THRESHOLD: f64 = 0.5;
/// Topic overlap needed when only the measure labels agree but a revision is announced, or when
/// there are no measure labels at all (a bare "Number" column) and the topic must carry it.
pub const TOPIC_WEAK: f64 = 0.3;
pub const TOPIC_ALONE: f64 = 0.8;

/// Qualifiers that narrow what is counted: a series with one that the other lacks is another
/// statistic ("youth custody only", "women prisoners", "agency staff", "in Wales").
const SCOPE_WORDS: &[&str] = &[
    "youth",
    "young",
    "juvenile",
    "juveniles",
    "child",
    "children",
    "women",
    "woman",
    "female",
    "females",
    "girls",
    "male",
    "males",
    "men",
    "boys",
    "agency",
    "contractor",
    "contractors",
    "contracted",
    "private",
    "privately",
    "foreign",
    "remand",
    "remanded",
    "england",
    "wales",
    "scotland",
    "london",
    "north",
    "south",
    "east",
    "west",
    "midlands",
    "yorkshire",
    "welsh",
];

/// Phrases naming the whole estate or a stock term, removed before scope words are read.
const NOT_SCOPE: &[&str] = &[
    "england and wales",
    "england & wales",
    "england &amp; wales",
    "young offender institutions",
    "young offender institution",
    "young offenders institutions",
    "young offenders institution",
    "young offenders",
    "category of offences",
    "offence category",
    "open to",
];

/// Words in an answer's prose that announce revised figures.
const REVISION_CUES: &[&str] = &[
    "revised",
    "revision",
    "corrected",
    "correcting",
    "correction",
    "understated",
    "overstated",
    "further cases",
    "re-run",
    "rerun",
    "amended",
    "since my reply",
    "since my answer",
    "since my previous",
    "updated figures",
];

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
    /// The answer's prose as text, read only for words announcing revisions.
    pub prose: String,
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
    /// Measure words: the words of the series' own constant labels ("Dismissals").
    pub measure: BTreeSet<String>,
    /// Topic words: the question's title, the caption and the heading.
    pub topic: BTreeSet<String>,
    /// Scope qualifiers found in the question, caption, heading and labels.
    pub scope: BTreeSet<String>,
    /// Whether the answer's prose says figures were revised or corrected.
    pub revision_cue: bool,
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
    /// Empty for statistics stored before series matching (then `measure` stands in).
    pub topic: BTreeSet<String>,
    pub scope: BTreeSet<String>,
    /// The latest number of each (cell key, period key), for the candidates worth reading.
    pub values: Vec<(String, String, f64)>,
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
    /// Jaccard similarity of the measure-label words (null when either has none).
    #[serde(default)]
    pub label_similarity: Option<f64>,
    /// Topic words shared, over the smaller topic.
    #[serde(default)]
    pub topic_overlap: f64,
    /// Overlapping figures (same cell and period) that agree and that differ.
    #[serde(default)]
    pub values_agree: usize,
    #[serde(default)]
    pub values_differ: usize,
    /// Scope qualifiers only one side has.
    #[serde(default)]
    pub scope_only_new: Vec<String>,
    #[serde(default)]
    pub scope_only_known: Vec<String>,
    #[serde(default)]
    pub revision_cue: bool,
    /// One sentence: why it matched, or which statistic it nearly matched and why not.
    #[serde(default)]
    pub why: String,
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
    // One series per unit and per non-period column label: a table of four measures by year
    // is four series.
    let mut by_unit: BTreeMap<(&'static str, Vec<String>), Vec<&Observation>> = BTreeMap::new();
    for o in figures {
        let path: Vec<String> = o
            .column
            .iter()
            .filter(|l| crate::extract::period::parse(l).is_none())
            .map(|l| normalise_label(l))
            .collect();
        by_unit
            .entry((unit_name(o.unit), path))
            .or_default()
            .push(o);
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
    let mut measure = BTreeSet::new();
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
    let mut topic = words(caption);
    topic.extend(words(&ctx.heading));
    if let Some(t) = crate::title::from_question(&ctx.question) {
        topic.extend(words(&t));
    }
    // The question or caption narrows the scope only when it names one qualifier: one naming
    // several ("(a) England and Wales, (b) Scotland") asks for a breakdown, each series a part.
    let mut scope_words = scope(&format!("{} {measure_label}", ctx.heading));
    for text in [first_clause(&ctx.question), caption] {
        let named = scope(text);
        if named.len() <= 1 {
            scope_words.extend(named);
        }
    }
    let prose = ctx.prose.to_lowercase();
    Draft {
        table_index,
        title,
        description: caption.to_owned(),
        measure_label,
        topic,
        scope: scope_words,
        revision_cue: REVISION_CUES.iter().any(|c| prose.contains(c)),
        answering_body: ctx.answering_body.clone(),
        unit,
        measure,
        heading: words(&ctx.heading),
        dims,
        figures,
    }
}

/// The words worth looking a draft up by: its measure words first, then its topic (the store
/// reads only the rarest few of each).
pub fn lookup_words(d: &Draft) -> (Vec<String>, Vec<String>) {
    (
        d.measure.iter().cloned().collect(),
        d.topic.iter().chain(&d.heading).cloned().collect(),
    )
}

/// Candidates whose figures are worth reading: the `n` closest by words (a shared measure word
/// or topic), so reading values stays bounded however many candidates the words find.
pub fn closest(d: &Draft, mut known: Vec<Known>, n: usize) -> Vec<Known> {
    let d_topic: BTreeSet<String> = d.topic.union(&d.heading).cloned().collect();
    let key = |k: &Known| {
        let topic = if k.topic.is_empty() {
            &k.measure
        } else {
            &k.topic
        };
        jaccard(&d.measure, &k.measure) + overlap(&d_topic, topic)
    };
    known.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.id.cmp(&b.id)));
    known.truncate(n);
    known
}

/// The first clause of a question: what it asks, before "; and what ...".
fn first_clause(q: &str) -> &str {
    q.split([';', '?']).next().unwrap_or("")
}

/// The scope qualifiers in a text.
pub fn scope(text: &str) -> BTreeSet<String> {
    let mut t = format!(
        " {} ",
        split_markers(text)
            .0
            .to_lowercase()
            .replace('\u{2019}', "'")
    );
    for p in NOT_SCOPE {
        t = t.replace(p, " ");
    }
    t.split(|c: char| !c.is_alphabetic())
        .filter(|w| SCOPE_WORDS.contains(w))
        .map(|w| match w {
            "woman" | "female" | "females" | "girls" => "women",
            "male" | "males" | "boys" => "men",
            "young" | "juvenile" | "juveniles" | "child" | "children" => "youth",
            "contractors" | "contracted" => "contractor",
            "privately" => "private",
            "remanded" => "remand",
            "welsh" => "wales",
            w => w,
        })
        .map(str::to_owned)
        .collect()
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// Shared words over the smaller set: a short topic inside a long one still counts.
fn overlap(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / n as f64
}

/// The evidence for one candidate, and whether it is enough.
struct Judged<'k> {
    known: &'k Known,
    matched: bool,
    score: f64,
    label: Option<f64>,
    topic: f64,
    agree: usize,
    differ: usize,
    scope_new: Vec<String>,
    scope_known: Vec<String>,
    why: String,
}

fn judge<'k>(d: &Draft, k: &'k Known) -> Judged<'k> {
    // Statistics stored before series matching have only `measure` (caption and labels).
    let legacy = k.topic.is_empty() && k.scope.is_empty();
    let k_topic = if legacy { &k.measure } else { &k.topic };
    let k_measure = if legacy { &BTreeSet::new() } else { &k.measure };
    let d_topic: BTreeSet<String> = d.topic.union(&d.heading).cloned().collect();
    let label =
        (!d.measure.is_empty() && !k_measure.is_empty()).then(|| jaccard(&d.measure, k_measure));
    let topic = overlap(&d_topic, k_topic).max(if legacy {
        overlap(&d.measure.union(&d_topic).cloned().collect(), k_topic)
    } else {
        0.0
    });
    let known: HashMap<(&str, &str), f64> = k
        .values
        .iter()
        .map(|(c, p, v)| ((c.as_str(), p.as_str()), *v))
        .collect();
    let (mut agree, mut differ, mut timeless_differ) = (0, 0, 0);
    for f in &d.figures {
        let v = match f.kind {
            Kind::Number => f.value,
            Kind::Nil => Some(0.0),
            _ => None,
        };
        if let (Some(v), Some(kv)) = (v, known.get(&(f.cell_key.as_str(), f.period_key.as_str()))) {
            if (v - kv).abs() < 1e-9 {
                agree += 1;
            } else {
                differ += 1;
                if f.period_key.is_empty() {
                    timeless_differ += 1;
                }
            }
        }
    }
    let scope_new: Vec<String> = if legacy {
        Vec::new()
    } else {
        d.scope.difference(&k.scope).cloned().collect()
    };
    let scope_known: Vec<String> = if legacy {
        Vec::new()
    } else {
        k.scope.difference(&d.scope).cloned().collect()
    };
    let words = label.unwrap_or(topic);
    let values_agree = agree >= 2 && agree > differ;
    // Three or more overlapping figures, all agreeing, are one series
    // whatever the words say (a reworded header, a table rebuilt around them).
    let distinct: BTreeSet<String> = d
        .figures
        .iter()
        .filter_map(|f| {
            let kv = known.get(&(f.cell_key.as_str(), f.period_key.as_str()))?;
            (f.value? - kv).abs().lt(&1e-9).then(|| format!("{kv}"))
        })
        .collect();
    // Coincidences among a few small counts are common, so at least three distinct values,
    // and some shared word.
    let values_strong = agree >= 3
        && differ == 0
        && distinct.len() >= 3
        && (label.unwrap_or(0.0) > 0.0 || topic > 0.0);
    let related = label.unwrap_or(0.0) > 0.0 || topic >= TOPIC_THRESHOLD;
    let same_measure = match label {
        Some(l) => {
            (l >= MATCH_THRESHOLD && topic >= TOPIC_THRESHOLD)
                || (l >= TOPIC_THRESHOLD && topic >= TOPIC_ALONE)
        }
        None => topic >= TOPIC_ALONE,
    };
    // A revision announced in the prose: a shared measure word and a related topic suffice.
    let announced = d.revision_cue && label.is_some_and(|l| l > 0.0) && topic >= TOPIC_WEAK;
    let overlapping = agree + differ;
    let (matched, why) = if !scope_new.is_empty() || !scope_known.is_empty() {
        (
            false,
            format!(
                "different scope: {} only in the new table, {} only in statistic {}",
                list(&scope_new),
                list(&scope_known),
                k.id
            ),
        )
    } else if values_strong || (values_agree && related) {
        (
            true,
            format!("{agree} of {overlapping} overlapping figures agree"),
        )
    } else if timeless_differ > 0 && agree == 0 {
        (
            false,
            format!(
                "figures without a period differ from statistic {} ({timeless_differ}): a new date or another statistic, not a revision",
                k.id
            ),
        )
    } else if same_measure || announced {
        let how = if announced && !same_measure {
            "the same measure, and the answer says figures were revised"
        } else {
            "the same measure and topic"
        };
        let values = match (agree, differ) {
            (0, 0) => "no overlapping figures".to_owned(),
            (0, n) => format!("all {n} overlapping figures differ (a re-run revises every one)"),
            (a, n) => format!("{a} of {} overlapping figures agree", a + n),
        };
        (true, format!("{how}; {values}"))
    } else {
        (
            false,
            format!(
                "too little evidence: measure words {}, topic overlap {topic:.2}, {agree} of {overlapping} overlapping figures agree",
                label.map_or("absent".to_owned(), |l| format!("{l:.2}"))
            ),
        )
    };
    let value_part = if overlapping > 0 {
        agree as f64 / overlapping as f64
    } else {
        0.5
    };
    Judged {
        known: k,
        matched,
        score: (words + value_part) / 2.0,
        label,
        topic,
        agree,
        differ,
        scope_new,
        scope_known,
        why,
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Weighs the evidence for each candidate and picks the best that is enough; else explains the
/// nearest miss. The candidates are already of the same answering body and unit.
pub fn best_match(d: &Draft, candidates: &[Known]) -> MatchReason {
    let mut best: Option<Judged<'_>> = None;
    for k in candidates {
        let j = judge(d, k);
        let better = match &best {
            None => true,
            Some(b) => {
                (j.matched, j.score, std::cmp::Reverse(j.known.id))
                    > (b.matched, b.score, std::cmp::Reverse(b.known.id))
            }
        };
        if better {
            best = Some(j);
        }
    }
    let Some(j) = best else {
        return MatchReason {
            matched: None,
            score: 0.0,
            threshold: MATCH_THRESHOLD,
            shared_words: Vec::new(),
            only_new_words: d.measure.iter().cloned().collect(),
            only_known_words: Vec::new(),
            shared_dims: Vec::new(),
            best_rejected: None,
            label_similarity: None,
            topic_overlap: 0.0,
            values_agree: 0,
            values_differ: 0,
            scope_only_new: Vec::new(),
            scope_only_known: Vec::new(),
            revision_cue: d.revision_cue,
            why: "no known statistic shares its words".into(),
        };
    };
    let k = j.known;
    MatchReason {
        matched: j.matched.then_some(k.id),
        score: j.score,
        threshold: MATCH_THRESHOLD,
        shared_words: d.measure.intersection(&k.measure).cloned().collect(),
        only_new_words: d.measure.difference(&k.measure).cloned().collect(),
        only_known_words: k.measure.difference(&d.measure).cloned().collect(),
        shared_dims: d.dims.intersection(&k.dims).cloned().collect(),
        best_rejected: (!j.matched).then_some((k.id, j.score)),
        label_similarity: j.label,
        topic_overlap: j.topic,
        values_agree: j.agree,
        values_differ: j.differ,
        scope_only_new: j.scope_new,
        scope_only_known: j.scope_known,
        revision_cue: d.revision_cue,
        why: if j.matched {
            format!("matched statistic {}: {}", k.id, j.why)
        } else {
            format!(
                "new statistic; nearly matched statistic {}, but {}",
                k.id, j.why
            )
        },
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
            prose: String::new(),
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
        assert!(count.measure.contains("incident") && count.topic.contains("assault"));
        assert_eq!(
            count.dims.iter().cloned().collect::<Vec<_>>(),
            vec!["huntercombe", "maidstone"]
        );
        assert_eq!(count.figures[0].cell_key, "maidstone");
        assert_eq!(count.figures[0].period_key, "2019");
    }

    fn known_from(id: i64, d: &Draft) -> Known {
        Known {
            id,
            measure: d.measure.clone(),
            dims: d.dims.clone(),
            topic: d.topic.union(&d.heading).cloned().collect(),
            scope: d.scope.clone(),
            values: d
                .figures
                .iter()
                .filter_map(|f| Some((f.cell_key.clone(), f.period_key.clone(), f.value?)))
                .collect(),
        }
    }

    fn one(html: &str) -> Draft {
        drafts(&extract(html).tables[0], &ctx()).remove(0)
    }

    #[test]
    fn a_renamed_generic_column_still_matches_but_a_qualifier_does_not() {
        let a = one("<p>Staff dismissed for corruption</p><table><tr><th>Year</th><th>Number</th></tr><tr><td>2019</td><td>5</td></tr><tr><td>2020</td><td>6</td></tr></table>");
        let b = one("<p>Staff dismissed for corruption</p><table><tr><th>Year</th><th>Total</th></tr><tr><td>2020</td><td>6</td></tr><tr><td>2021</td><td>7</td></tr></table>");
        let c = one("<p>Agency staff dismissed for corruption</p><table><tr><th>Year</th><th>Number</th></tr><tr><td>2020</td><td>6</td></tr><tr><td>2021</td><td>7</td></tr></table>");
        let known = known_from(1, &a);
        let m = best_match(&b, std::slice::from_ref(&known));
        assert_eq!(m.matched, Some(1), "{m:?}");
        let m = best_match(&c, &[known]);
        assert_eq!(m.matched, None, "{m:?}");
        assert_eq!(m.scope_only_new, vec!["agency"]);
        assert_eq!(m.best_rejected.map(|b| b.0), Some(1));
        assert!(m.why.contains("nearly matched statistic 1"), "{}", m.why);
    }

    #[test]
    fn a_table_of_four_measures_by_year_is_four_series_and_one_column_alone_joins_its_own() {
        let wide = "<p>The table below shows convictions, police cautions, dismissals and exclusions of staff.</p><table><tr><th></th><th>Convictions</th><th>Police Cautions</th><th>Dismissals</th><th>Exclusions</th></tr>\
            <tr><td>2013</td><td>23</td><td>15</td><td>16</td><td>72</td></tr><tr><td>2014</td><td>26</td><td>5</td><td>17</td><td>81</td></tr></table>";
        let ds = drafts(&extract(wide).tables[0], &ctx());
        assert_eq!(ds.len(), 4);
        let known: Vec<Known> = ds
            .iter()
            .enumerate()
            .map(|(i, d)| known_from(i as i64 + 1, d))
            .collect();
        let dismissals = known
            .iter()
            .find(|k| k.measure.contains("dismissal"))
            .unwrap()
            .id;
        // Alone, re-run: every overlapping figure differs, the measure and topic are the same.
        let alone = one("<p>Dismissals of staff for corruption.</p><table><tr><th>Year</th><th>Dismissals</th></tr><tr><td>2013</td><td>15</td></tr><tr><td>2014</td><td>16</td></tr></table>");
        let m = best_match(&alone, &known);
        assert_eq!(m.matched, Some(dismissals), "{m:?}");
        assert_eq!((m.values_agree, m.values_differ), (0, 2));
    }

    #[test]
    fn agreeing_figures_join_a_reworded_header_and_disagreeing_ones_alone_do_not_prove_a_match() {
        let a = one("<p>Assaults on staff</p><table><tr><th>Year</th><th>Assaults</th></tr><tr><td>2019</td><td>50</td></tr><tr><td>2020</td><td>61</td></tr><tr><td>2021</td><td>70</td></tr></table>");
        let reworded = one("<p>Attacks on officers</p><table><tr><th>Year</th><th>Attacks on prison staff</th></tr><tr><td>2020</td><td>61</td></tr><tr><td>2021</td><td>70</td></tr><tr><td>2022</td><td>75</td></tr></table>");
        let other = one("<p>Finds of drones</p><table><tr><th>Year</th><th>Drone finds</th></tr><tr><td>2020</td><td>3</td></tr><tr><td>2021</td><td>4</td></tr></table>");
        let known = known_from(7, &a);
        assert_eq!(
            best_match(&reworded, std::slice::from_ref(&known)).matched,
            Some(7)
        );
        let m = best_match(&other, &[known]);
        assert_eq!(m.matched, None, "{m:?}");
    }

    #[test]
    fn scope_words_are_read_apart_from_the_whole_estate() {
        assert!(scope("Deaths in prisons in England and Wales").is_empty());
        assert_eq!(
            scope("Self-harm by women prisoners in Wales")
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["wales", "women"]
        );
        assert_eq!(
            scope("youth custody only").into_iter().collect::<Vec<_>>(),
            vec!["youth"]
        );
        assert!(scope("prisons and young offender institutions").is_empty());
    }
}
