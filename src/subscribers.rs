//! Subscribers as data: validation of an address and what it follows, and the CSV import format.
//! Pure: text in, validated subscribers (or line-numbered errors) out.

use serde::Serialize;

/// How often a subscriber hears from pqwatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Instant,
    Daily,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Instant => "instant",
            Frequency::Daily => "daily",
        }
    }

    pub fn parse(s: &str) -> Result<Frequency, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "instant" | "none" => Ok(Frequency::Instant),
            "daily" => Ok(Frequency::Daily),
            other => Err(format!(
                "digest {other:?} is not known: use \"daily\", or leave it out for instant alerts"
            )),
        }
    }
}

/// A subscriber as given, validated, before it is stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewSubscriber {
    pub email: String,
    pub name: String,
    pub keywords: Vec<String>,
    pub bodies: Vec<i64>,
    pub houses: Vec<String>,
    pub frequency: Frequency,
    pub include_no_figures: bool,
    pub confirmed: bool,
}

/// A valid address, lower-cased in its domain; header-breaking characters are refused.
pub fn parse_email(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.contains(['\r', '\n', '<', '>', ',', ';']) {
        return Err(format!(
            "{s:?} is not an email address (one bare address, like ops@union.org.uk)"
        ));
    }
    let addr: lettre::Address = s.parse().map_err(|e| {
        format!("{s:?} is not an email address ({e}); use one bare address, like ops@union.org.uk")
    })?;
    Ok(format!(
        "{}@{}",
        addr.user(),
        addr.domain().to_ascii_lowercase()
    ))
}

/// "drones, assaults on staff" → ["drones", "assaults on staff"] (commas or semicolons).
pub fn parse_keywords(s: &str) -> Result<Vec<String>, String> {
    let k: Vec<String> = s
        .split([',', ';'])
        .map(|k| k.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|k| !k.is_empty())
        .collect();
    if k.is_empty() {
        return Err(
            "no keywords: give the words or phrases to follow, e.g. \"drones, assaults on staff\""
                .into(),
        );
    }
    if let Some(bad) = k
        .iter()
        .find(|k| k.chars().any(char::is_control) || k.len() > 200)
    {
        return Err(format!(
            "keyword {bad:?} is not usable (control characters or over 200 characters)"
        ));
    }
    Ok(k)
}

pub fn parse_bodies(s: &str) -> Result<Vec<i64>, String> {
    s.split([',', ';', ' '])
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.trim()
                .parse()
                .map_err(|_| format!("answering body {b:?} is not a number (the API's id, e.g. 54 for the Ministry of Justice)"))
        })
        .collect()
}

pub fn parse_houses(s: &str) -> Result<Vec<String>, String> {
    s.split([',', ';', ' '])
        .filter(|h| !h.trim().is_empty())
        .map(|h| match h.trim().to_ascii_lowercase().as_str() {
            "commons" => Ok("Commons".to_owned()),
            "lords" => Ok("Lords".to_owned()),
            "bicameral" => Ok("Bicameral".to_owned()),
            other => Err(format!(
                "house {other:?} is not known: use Commons or Lords"
            )),
        })
        .collect()
}

fn parse_bool(s: &str, what: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "no" | "false" | "0" | "n" => Ok(false),
        "yes" | "true" | "1" | "y" => Ok(true),
        other => Err(format!("{what} {other:?} is not yes or no")),
    }
}

/// The columns `subscribers import` reads; `email` and `keywords` are required.
pub const CSV_COLUMNS: &[&str] = &[
    "email",
    "name",
    "keywords",
    "digest",
    "bodies",
    "houses",
    "confirmed",
    "include_no_figures",
];

/// Reads an organisation's CSV: a header row naming columns from [`CSV_COLUMNS`], then one
/// subscriber a row. Every bad row is reported with its line number.
pub fn parse_csv(text: &str) -> Result<Vec<NewSubscriber>, Vec<String>> {
    let records = match csv_records(text) {
        Ok(r) => r,
        Err(e) => return Err(vec![e]),
    };
    let mut it = records.into_iter();
    let Some((_, header)) = it.next() else {
        return Err(vec![
            "line 1: the file is empty; the first line names the columns, e.g. email,name,keywords"
                .into(),
        ]);
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let mut errors = Vec::new();
    for h in &header {
        if !CSV_COLUMNS.contains(&h.as_str()) {
            errors.push(format!(
                "line 1: unknown column {h:?}; the columns are {}",
                CSV_COLUMNS.join(", ")
            ));
        }
    }
    for required in ["email", "keywords"] {
        if !header.iter().any(|h| h == required) {
            errors.push(format!("line 1: no {required:?} column"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let col = |row: &[String], name: &str| -> String {
        header
            .iter()
            .position(|h| h == name)
            .and_then(|i| row.get(i))
            .cloned()
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line, row) in it {
        if row.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let parsed = (|| -> Result<NewSubscriber, String> {
            let email = parse_email(&col(&row, "email"))?;
            if !seen.insert(email.clone()) {
                return Err(format!("{email} appears twice in the file"));
            }
            Ok(NewSubscriber {
                email,
                name: col(&row, "name").trim().to_owned(),
                keywords: parse_keywords(&col(&row, "keywords"))?,
                bodies: parse_bodies(&col(&row, "bodies"))?,
                houses: parse_houses(&col(&row, "houses"))?,
                frequency: Frequency::parse(&col(&row, "digest"))?,
                include_no_figures: parse_bool(
                    &col(&row, "include_no_figures"),
                    "include_no_figures",
                )?,
                confirmed: parse_bool(&col(&row, "confirmed"), "confirmed")?,
            })
        })();
        match parsed {
            Ok(s) => out.push(s),
            Err(e) => errors.push(format!("line {line}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// RFC 4180 records with the line each starts on.
fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut out = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                out.push((row_line, std::mem::take(&mut row)));
                line += 1;
                row_line = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {row_line}: a quoted field is never closed"));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        out.push((row_line, row));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_validated_and_header_injection_is_refused() {
        assert_eq!(
            parse_email(" Ops@Union.ORG.uk ").unwrap(),
            "Ops@union.org.uk"
        );
        assert!(parse_email("not an address").is_err());
        assert!(parse_email("a@b.org\r\nBcc: victim@x.org").is_err());
        assert!(parse_email("a@b.org, c@d.org").is_err());
    }

    #[test]
    fn a_csv_with_bad_rows_reports_each_with_its_line_and_imports_nothing() {
        let csv = "email,name,keywords,digest\n\
                   ok@union.org.uk,Ops,\"drones, assaults on staff\",daily\n\
                   broken,Someone,prison,\n\
                   two@union.org.uk,Two,,\n\
                   three@union.org.uk,\"Multi\nline\",parole,weekly\n";
        let errs = parse_csv(csv).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("line 3:"), "{errs:?}");
        assert!(errs[1].starts_with("line 4:"), "{errs:?}");
        assert!(
            errs[2].starts_with("line 5:") && errs[2].contains("weekly"),
            "{errs:?}"
        );
    }

    #[test]
    fn a_good_csv_reads_every_column() {
        let csv = "email,keywords,bodies,houses,confirmed,include_no_figures\r\n\
                   a@b.org,\"prison; probation\",54,Commons,yes,no\r\n";
        let s = &parse_csv(csv).unwrap()[0];
        assert_eq!(s.keywords, vec!["prison", "probation"]);
        assert_eq!(
            (s.bodies.clone(), s.houses.clone()),
            (vec![54], vec!["Commons".to_owned()])
        );
        assert!(s.confirmed && !s.include_no_figures);
        assert_eq!(s.frequency, Frequency::Instant);
    }
}
