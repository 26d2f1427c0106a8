//! Periods as labels: `2019`, `2019-20`, `2019/20`, `12 months to September 2019`, `Q1 2024`,
//! `Jan-Mar 2024`, `March 2024`, normalised to a key that compares across answers. Pure.
//!
//! Keys: `2019` (a year), `2019/20` (a financial or academic year), `2024-Q1`, `2024-03` (a
//! month), `2023-10..2024-09` (a span of months, e.g. "12 months to September 2024").

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    /// As written (markers removed).
    pub label: String,
    /// Comparable across answers.
    pub key: String,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month(word: &str) -> Option<u32> {
    let w = word.to_ascii_lowercase();
    let w = w.trim_end_matches('.');
    if w.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| w.starts_with(m) && (w.len() == 3 || full_month(w)))
        .map(|i| i as u32 + 1)
}

fn full_month(w: &str) -> bool {
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "sept",
        "october",
        "november",
        "december",
    ]
    .contains(&w)
}

fn year(s: &str) -> Option<i32> {
    let y: i32 = s.parse().ok()?;
    (s.len() == 4 && (1900..=2100).contains(&y)).then_some(y)
}

/// The period a label names, if it names one and nothing else.
pub fn parse(label: &str) -> Option<Period> {
    let label = label.trim();
    let l = label.to_lowercase().replace(['\u{2013}', '\u{2014}'], "-");
    let l = l.trim();
    let key = parse_key(l)?;
    Some(Period {
        label: label.to_owned(),
        key,
    })
}

fn parse_key(l: &str) -> Option<String> {
    if let Some(y) = year(l) {
        return Some(y.to_string());
    }
    // 2019-20, 2019/20, 2019-2020, 2019/2020 (consecutive years only)
    if let Some((a, b)) = l.split_once(['-', '/']) {
        let (a, b) = (a.trim(), b.trim());
        if let Some(y) = year(a) {
            let next = y + 1;
            let ok = b == format!("{:02}", next % 100) || b == next.to_string();
            if ok {
                return Some(format!("{y}/{:02}", next % 100));
            }
        }
    }
    let words: Vec<&str> = l
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    match words.as_slice() {
        // Q1 2024, 2024 Q1
        [q, y] | [y, q] if q.len() == 2 && q.starts_with('q') && year(y).is_some() => {
            let n: u32 = q[1..].parse().ok().filter(|n| (1..=4).contains(n))?;
            Some(format!("{}-Q{n}", year(y)?))
        }
        // March 2024
        [m, y] if month(m).is_some() && year(y).is_some() => {
            Some(format!("{}-{:02}", year(y)?, month(m)?))
        }
        // Jan-Mar 2024
        [span, y] if span.contains('-') && year(y).is_some() => {
            let (a, b) = span.split_once('-')?;
            let (ma, mb) = (month(a)?, month(b)?);
            let y = year(y)?;
            let ya = if ma > mb { y - 1 } else { y };
            Some(format!("{ya}-{ma:02}..{y}-{mb:02}"))
        }
        // 12 months to September 2019 / 12 months ending March 2024 / year to June 2023
        [rest @ .., m, y] if month(m).is_some() && year(y).is_some() => {
            let n = match rest {
                [n, "months", "to" | "ending" | "ended"] => n.parse::<u32>().ok()?,
                ["year", "to" | "ending" | "ended"] => 12,
                _ => return None,
            };
            if n == 0 || n > 120 {
                return None;
            }
            let (y, m) = (year(y)?, month(m)?);
            let end = y * 12 + m as i32 - 1;
            let start = end - n as i32 + 1;
            Some(format!(
                "{}-{:02}..{y}-{m:02}",
                start.div_euclid(12),
                start.rem_euclid(12) + 1
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Option<String> {
        parse(s).map(|p| p.key)
    }

    #[test]
    fn periods_as_the_moj_writes_them_get_comparable_keys() {
        assert_eq!(key("2019").as_deref(), Some("2019"));
        assert_eq!(key("2019-20").as_deref(), Some("2019/20"));
        assert_eq!(key("2019/20").as_deref(), Some("2019/20"));
        assert_eq!(key("2019-2020").as_deref(), Some("2019/20"));
        assert_eq!(key("2019 \u{2013} 20").as_deref(), Some("2019/20"));
        assert_eq!(key("Q1 2024").as_deref(), Some("2024-Q1"));
        assert_eq!(key("Jan-Mar 2024").as_deref(), Some("2024-01..2024-03"));
        assert_eq!(key("Oct-Dec 2023").as_deref(), Some("2023-10..2023-12"));
        assert_eq!(key("March 2024").as_deref(), Some("2024-03"));
        assert_eq!(
            key("12 months to September 2019").as_deref(),
            Some("2018-10..2019-09")
        );
        assert_eq!(
            key("Year to June 2023").as_deref(),
            Some("2022-07..2023-06")
        );
    }

    #[test]
    fn things_that_are_not_periods_are_not_read_as_periods() {
        for s in [
            "Belmarsh",
            "2019-22",
            "9185",
            "1850",
            "2017 - present",
            "Total",
            "Q5 2024",
        ] {
            assert_eq!(key(s), None, "{s}");
        }
    }
}
