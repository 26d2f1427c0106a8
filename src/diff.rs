//! The diff: a statistic's new figures against the latest earlier value of each cell. Pure:
//! history and figures in, changes out.
//!
//! - `new`: the cell (dimensions and period) had no value before, or had only a suppressed or
//!   unavailable one and now has a number;
//! - `revised`: a number different from the latest earlier number (a dash counts as zero);
//! - `confirmed`: the same number again.
//!
//! A suppressed or unavailable value where a number was published is not a revision, and gives
//! no change: the earlier number stays the latest known.

use std::collections::HashMap;

use serde::Serialize;

use crate::extract::Kind;
use crate::series::Figure;

/// The latest earlier value of one cell of a statistic.
#[derive(Clone, Debug, PartialEq)]
pub struct Prior {
    pub observation_id: i64,
    pub kind: Kind,
    pub value: Option<f64>,
    pub raw: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    New,
    Revised,
    Confirmed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::New => "new",
            ChangeKind::Revised => "revised",
            ChangeKind::Confirmed => "confirmed",
        }
    }
}

/// What one new figure is, against history.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Index into the figures given to [`diff`].
    pub figure: usize,
    pub kind: ChangeKind,
    /// The earlier value it revises or confirms.
    pub prior: Option<Prior>,
}

/// `prior` maps (cell key, period key) to the latest earlier value.
pub fn diff(prior: &HashMap<(String, String), Prior>, figures: &[Figure]) -> Vec<Change> {
    let mut out = Vec::new();
    for (i, f) in figures.iter().enumerate() {
        let p = prior.get(&(f.cell_key.clone(), f.period_key.clone()));
        let kind = match (p, f.kind) {
            (_, Kind::Text) => continue,
            (None, _) => ChangeKind::New,
            (Some(p), Kind::Number | Kind::Nil) => match p.kind {
                Kind::Number | Kind::Nil => {
                    if numeric(p.kind, p.value) == numeric(f.kind, f.value) {
                        ChangeKind::Confirmed
                    } else {
                        ChangeKind::Revised
                    }
                }
                _ => ChangeKind::New,
            },
            // Suppressed or unavailable now.
            (Some(p), _) => match p.kind {
                Kind::Number | Kind::Nil => continue,
                _ => ChangeKind::Confirmed,
            },
        };
        out.push(Change {
            figure: i,
            kind,
            prior: p.cloned(),
        });
    }
    out
}

fn numeric(kind: Kind, value: Option<f64>) -> Option<f64> {
    match kind {
        Kind::Nil => Some(0.0),
        _ => value,
    }
}

/// Whether a later observation of `kind` should replace `prior` as the latest known value.
pub fn supersedes(prior: Option<&Prior>, kind: Kind) -> bool {
    !matches!(
        (prior.map(|p| p.kind), kind),
        (_, Kind::Text)
            | (
                Some(Kind::Number | Kind::Nil),
                Kind::Suppressed | Kind::NotAvailable
            )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(cell: &str, period: &str, kind: Kind, value: Option<f64>) -> Figure {
        Figure {
            cell_key: cell.into(),
            period_key: period.into(),
            period_label: None,
            kind,
            value,
            raw: value.map_or("*".into(), |v| v.to_string()),
            row: vec![],
            column: vec![],
            cell: [0, 0],
            measure: String::new(),
        }
    }

    fn prior(kind: Kind, value: Option<f64>) -> Prior {
        Prior {
            observation_id: 1,
            kind,
            value,
            raw: String::new(),
        }
    }

    #[test]
    fn new_revised_and_confirmed_cells_are_told_apart() {
        let mut h = HashMap::new();
        h.insert(("".into(), "2022".into()), prior(Kind::Number, Some(21.0)));
        h.insert(("".into(), "2023".into()), prior(Kind::Number, Some(21.0)));
        let figs = vec![
            fig("", "2022", Kind::Number, Some(21.0)),
            fig("", "2023", Kind::Number, Some(23.0)),
            fig("", "2024", Kind::Number, Some(30.0)),
        ];
        let kinds: Vec<ChangeKind> = diff(&h, &figs).iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![ChangeKind::Confirmed, ChangeKind::Revised, ChangeKind::New]
        );
    }

    #[test]
    fn suppression_is_not_a_revision_but_a_number_replacing_it_is_new() {
        let mut h = HashMap::new();
        h.insert(("a".into(), "2022".into()), prior(Kind::Number, Some(4.0)));
        h.insert(("b".into(), "2022".into()), prior(Kind::Suppressed, None));
        let figs = vec![
            fig("a", "2022", Kind::Suppressed, None),
            fig("b", "2022", Kind::Number, Some(3.0)),
        ];
        let changes = diff(&h, &figs);
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].figure, changes[0].kind), (1, ChangeKind::New));
    }

    #[test]
    fn a_dash_and_a_zero_are_the_same_figure() {
        let mut h = HashMap::new();
        h.insert(("x".into(), "2012".into()), prior(Kind::Nil, None));
        let changes = diff(&h, &[fig("x", "2012", Kind::Number, Some(0.0))]);
        assert_eq!(changes[0].kind, ChangeKind::Confirmed);
    }
}
