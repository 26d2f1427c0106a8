//! A statistic's values as a line chart, laid out for an SVG the template draws: one line per
//! dimension (up to [`MAX_LINES`]), each period's latest value a point, and a revised value
//! marked with its earlier one. Pure: values in, coordinates out.

use std::collections::BTreeMap;

use crate::store::SeriesValue;

/// Lines drawn at most; a statistic with more dimensions shows the fullest ones and says so.
pub const MAX_LINES: usize = 8;
pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 360.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 56.0;

/// Colours with at least 4.5:1 contrast on white, told apart by more than hue alone.
const COLOURS: [&str; MAX_LINES] = [
    "#0b4f8a", "#a4000f", "#0a6b2d", "#6a3d9a", "#8a4b00", "#00607a", "#333333", "#7a5c00",
];

#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub period: String,
    pub value: f64,
    pub raw: String,
    /// A revision: the earlier value, as published and where it is drawn.
    pub earlier: Option<Earlier>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Earlier {
    pub raw: String,
    pub value: f64,
    pub y: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub colour: &'static str,
    /// The SVG path through the points.
    pub path: String,
    pub points: Vec<Point>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    pub at: f64,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub lines: Vec<Line>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    /// Dimensions left out of the chart (the table has them).
    pub omitted: usize,
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_top: f64,
    pub plot_bottom: f64,
}

impl Chart {
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.points.is_empty())
    }

    pub fn width(&self) -> f64 {
        WIDTH
    }

    pub fn height(&self) -> f64 {
        HEIGHT
    }
}

/// Formats a number for a label: no needless decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A step of 1, 2 or 5 × 10ⁿ giving about five ticks over `range`.
fn nice_step(range: f64) -> f64 {
    let raw = (range / 5.0).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let m = raw / mag;
    let f = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * mag
}

/// One line's values: per x key, its label and every distinct value in publication order.
type Periods = BTreeMap<String, (String, Vec<(f64, String)>)>;

/// The chart of `values` (every published value, oldest first). `name` labels a statistic
/// with a single dimension.
pub fn chart(values: &[SeriesValue], name: &str) -> Chart {
    // Per cell, per x key: every numeric value in publication order.
    let by_period = values.iter().any(|v| !v.period_key.is_empty());
    let mut cells: Vec<String> = Vec::new();
    let mut series: BTreeMap<String, Periods> = BTreeMap::new();
    for v in values {
        let Some(value) = v.value.filter(|x| x.is_finite()) else {
            continue;
        };
        let (cell, key, label) = if by_period {
            if v.period_key.is_empty() {
                continue;
            }
            (
                v.cell.clone(),
                v.period_key.clone(),
                v.period.clone().unwrap_or_else(|| v.period_key.clone()),
            )
        } else {
            (String::new(), v.cell.clone(), v.cell.clone())
        };
        if !cells.contains(&cell) {
            cells.push(cell.clone());
        }
        let e = series
            .entry(cell)
            .or_default()
            .entry(key)
            .or_insert_with(|| (label, Vec::new()));
        if e.1.last().map(|(x, _)| *x) != Some(value) {
            e.1.push((value, v.raw.clone()));
        }
    }
    // The fullest lines, in the order they first appear.
    let mut ranked: Vec<(usize, &String)> = cells
        .iter()
        .map(|c| (series.get(c).map_or(0, BTreeMap::len), c))
        .collect();
    ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
    let kept: Vec<&String> = ranked.iter().take(MAX_LINES).map(|(_, c)| *c).collect();
    let shown: Vec<&String> = cells.iter().filter(|c| kept.contains(c)).collect();
    let omitted = cells.len() - shown.len();

    let mut keys: Vec<(String, String)> = Vec::new();
    for c in &shown {
        for (k, (label, _)) in &series[*c] {
            if !keys.iter().any(|(kk, _)| kk == k) {
                keys.push((k.clone(), label.clone()));
            }
        }
    }
    if by_period {
        keys.sort();
    }
    let (mut lo, mut hi) = (0f64, 0f64);
    for c in &shown {
        for (_, vals) in series[*c].values() {
            for (v, _) in vals {
                lo = lo.min(*v);
                hi = hi.max(*v);
            }
        }
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let step = nice_step(hi - lo);
    let lo = (lo / step).floor() * step;
    let hi = (hi / step).ceil() * step;
    let (left, right, top, bottom) = (LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM);
    let y_of = |v: f64| bottom - (v - lo) / (hi - lo) * (bottom - top);
    let n = keys.len().max(1);
    let x_of = |i: usize| {
        if n == 1 {
            (left + right) / 2.0
        } else {
            left + i as f64 * (right - left) / (n - 1) as f64
        }
    };
    let round = |v: f64| (v * 10.0).round() / 10.0;
    let mut lines = Vec::new();
    for (li, c) in shown.iter().enumerate() {
        let mut points = Vec::new();
        for (i, (k, label)) in keys.iter().enumerate() {
            let Some((_, vals)) = series[*c].get(k) else {
                continue;
            };
            let (value, raw) = vals.last().cloned().expect("at least one value");
            let earlier = (vals.len() > 1).then(|| {
                let (v, r) = vals[vals.len() - 2].clone();
                Earlier {
                    raw: r,
                    value: v,
                    y: round(y_of(v)),
                }
            });
            points.push(Point {
                x: round(x_of(i)),
                y: round(y_of(value)),
                period: label.clone(),
                value,
                raw,
                earlier,
            });
        }
        let path = points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}{} {}", if i == 0 { "M" } else { "L" }, p.x, p.y))
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(Line {
            name: if c.is_empty() {
                name.to_owned()
            } else {
                (*c).clone()
            },
            colour: COLOURS[li % COLOURS.len()],
            path,
            points,
        });
    }
    let every = keys.len().div_ceil(10).max(1);
    let x_ticks = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, (_, label))| Tick {
            at: round(x_of(i)),
            label: label.chars().take(16).collect(),
        })
        .collect();
    let mut y_ticks = Vec::new();
    let mut v = lo;
    while v <= hi + step / 2.0 {
        y_ticks.push(Tick {
            at: round(y_of(v)),
            label: number(v),
        });
        v += step;
    }
    Chart {
        lines,
        x_ticks,
        y_ticks,
        omitted,
        plot_left: left,
        plot_right: right,
        plot_top: top,
        plot_bottom: bottom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DocKind;
    use crate::store::Provenance;

    fn v(cell: &str, period: &str, value: f64) -> SeriesValue {
        SeriesValue {
            observation_id: 0,
            cell: cell.into(),
            period_key: period.into(),
            period: Some(period.into()),
            row: vec![],
            column: vec![],
            raw: number(value),
            value: Some(value),
            kind: "number".into(),
            change: None,
            source: Provenance {
                question_id: 1,
                kind: DocKind::Question,
                uin: None,
                house: None,
                heading: None,
                date_answered: None,
                version: 1,
                table_index: 0,
                cell: [0, 0],
                url: None,
                is_correction: false,
            },
        }
    }

    #[test]
    fn each_period_is_a_point_in_order_and_a_revision_keeps_its_earlier_value() {
        let c = chart(
            &[
                v("", "2022", 10.0),
                v("", "2021", 5.0),
                v("", "2022", 10.0),
                v("", "2022", 12.0),
            ],
            "Dismissals",
        );
        assert_eq!(c.lines.len(), 1);
        let p = &c.lines[0].points;
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].period.as_str(), p[0].value), ("2021", 5.0));
        assert_eq!((p[1].period.as_str(), p[1].value), ("2022", 12.0));
        assert!(
            p[0].x < p[1].x && p[0].y > p[1].y,
            "higher values are drawn higher"
        );
        assert_eq!(p[1].earlier.as_ref().map(|e| e.value), Some(10.0));
        assert_eq!(
            p[0].earlier, None,
            "a value repeated unchanged is no revision"
        );
        assert_eq!(c.lines[0].name, "Dismissals");
    }

    #[test]
    fn a_few_dimensions_are_a_line_each_and_many_are_cut_to_the_fullest() {
        let few: Vec<_> = ["A", "B"]
            .iter()
            .flat_map(|c| [v(c, "2020", 1.0), v(c, "2021", 2.0)])
            .collect();
        let c = chart(&few, "x");
        assert_eq!(
            c.lines.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["A", "B"]
        );
        assert_eq!(c.omitted, 0);
        let many: Vec<_> = (0..12)
            .flat_map(|i| {
                let cell = format!("prison {i}");
                let mut out = vec![v(&cell, "2020", i as f64)];
                if i >= 4 {
                    out.push(v(&cell, "2021", i as f64));
                }
                out
            })
            .collect();
        let c = chart(&many, "x");
        assert_eq!(c.lines.len(), MAX_LINES);
        assert_eq!(c.omitted, 4);
        assert!(c.lines.iter().all(|l| l.points.len() == 2));
    }

    #[test]
    fn values_without_periods_are_drawn_across_their_labels_and_text_is_left_out() {
        let mut s = v("", "", 0.0);
        s.kind = "suppressed".into();
        s.value = None;
        let c = chart(&[v("Leeds", "", 3.0), v("York", "", 4.0), s], "x");
        assert_eq!(c.lines.len(), 1);
        let labels: Vec<_> = c.lines[0]
            .points
            .iter()
            .map(|p| p.period.as_str())
            .collect();
        assert_eq!(labels, ["Leeds", "York"]);
        assert!(chart(&[], "x").is_empty());
    }
}
