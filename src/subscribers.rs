//! Subscribers as data: validation of an address and what it follows, and the CSV import format.
//! Pure: text in, validated subscribers (or line-numbered errors) out.

use serde::Serialize;

/// How often a subscriber hears from pqwatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Instant,
    Daily,
    /// One digest a week, on Mondays at `[mail] digest_hour`.
    Weekly,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Instant => "instant",
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
        }
    }

    pub fn parse(s: &str) -> Result<Frequency, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "instant" | "none" => Ok(Frequency::Instant),
            "daily" => Ok(Frequency::Daily),
            "weekly" => Ok(Frequency::Weekly),
            other => Err(format!(
                "digest {other:?} is not known: use \"instant\" (one email per answer, the default), \"daily\" or \"weekly\""
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

/// A valid address (RFC 5321/5322, checked by the `email_address` crate), lower-cased in its
/// domain. Refused: a display name or brackets, a domain without a dot (`a@b`), an IP-literal
/// domain, and anything lettre could not send to.
pub fn parse_email(s: &str) -> Result<String, String> {
    let s = s.trim();
    let fix = "give one bare address, like ops@union.org.uk";
    let options = email_address::Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    let addr = email_address::EmailAddress::parse_with_options(s, options).map_err(|e| {
        let why = match e {
            email_address::Error::DomainTooFew => {
                "its domain has no dot (a domain such as union.org.uk is needed)".to_owned()
            }
            e => e.to_string().trim_end_matches('.').to_lowercase(),
        };
        format!("{s:?} is not an email address: {why}; {fix}")
    })?;
    let address = format!(
        "{}@{}",
        addr.local_part(),
        addr.domain().to_ascii_lowercase()
    );
    address
        .parse::<lettre::Address>()
        .map_err(|e| format!("{s:?} is not an email address pqwatch can send to ({e}); {fix}"))?;
    Ok(address)
}

/// The longest name or keyword taken, in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// A subscriber's name for greetings: one line, no control characters, at most 200 characters.
pub fn parse_name(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.chars().any(char::is_control) {
        return Err("name has a line break or control character; give the name on one line".into());
    }
    let n = s.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(format!(
            "name is {n} characters long; give a name of at most {MAX_TEXT_CHARS} characters"
        ));
    }
    Ok(s.to_owned())
}

/// "drones, assaults on staff" → ["drones", "assaults on staff"] (commas or semicolons). Each
/// keyword needs a letter or digit, one line, at most 200 characters.
pub fn parse_keywords(s: &str) -> Result<Vec<String>, String> {
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return Err(
            "keywords have a line break or control character; give them on one line, comma-separated"
                .into(),
        );
    }
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
    if let Some(bad) = k.iter().find(|k| !k.chars().any(char::is_alphanumeric)) {
        return Err(format!(
            "keyword {bad:?} has no letter or digit; give words or phrases, e.g. \"drones, assaults on staff\""
        ));
    }
    if let Some(bad) = k.iter().find(|k| k.chars().count() > MAX_TEXT_CHARS) {
        return Err(format!(
            "keyword {:?}… is over {MAX_TEXT_CHARS} characters; give shorter words or phrases",
            bad.chars().take(20).collect::<String>()
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
                name: parse_name(&col(&row, "name"))?,
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
    fn an_address_needs_a_dotted_domain_and_no_display_name() {
        for bad in [
            "a@b",
            "a@[127.0.0.1]",
            "Ops <ops@union.org.uk>",
            "@union.org.uk",
            "ops@",
            "ops@union..org",
        ] {
            let e = parse_email(bad).unwrap_err();
            assert!(e.contains("ops@union.org.uk"), "{bad}: {e}");
        }
        assert!(parse_email("a@b").unwrap_err().contains("no dot"));
        assert_eq!(
            parse_email("first.last+tag@Mail.Union.ORG.uk").unwrap(),
            "first.last+tag@mail.union.org.uk"
        );
    }

    #[test]
    fn keywords_need_a_letter_or_digit_and_one_line() {
        assert!(parse_keywords("--")
            .unwrap_err()
            .contains("no letter or digit"));
        assert!(parse_keywords("drones, ***").is_err());
        assert!(parse_keywords("drones\r\nBcc: x").is_err());
        assert!(parse_keywords(&"x".repeat(201)).is_err());
        assert_eq!(parse_keywords("prison*, HMP").unwrap(), ["prison*", "HMP"]);
    }

    #[test]
    fn names_are_one_line_and_at_most_200_characters() {
        assert!(parse_name("Ops\r\nBcc: victim@x.org").is_err());
        assert!(parse_name("Ops\u{7}").is_err());
        let long = parse_name(&"n".repeat(100_000)).unwrap_err();
        assert!(long.contains("100000") && long.contains("200"), "{long}");
        assert_eq!(parse_name("  Jo Bloggs ").unwrap(), "Jo Bloggs");
        assert_eq!(parse_name(&"é".repeat(200)).unwrap().chars().count(), 200);
    }

    #[test]
    fn a_csv_with_bad_rows_reports_each_with_its_line_and_imports_nothing() {
        let csv = "email,name,keywords,digest\n\
                   ok@union.org.uk,Ops,\"drones, assaults on staff\",daily\n\
                   broken,Someone,prison,\n\
                   two@union.org.uk,Two,,\n\
                   three@union.org.uk,\"Multi\nline\",parole,hourly\n";
        let errs = parse_csv(csv).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("line 3:"), "{errs:?}");
        assert!(errs[1].starts_with("line 4:"), "{errs:?}");
        assert!(
            errs[2].starts_with("line 5:") && errs[2].contains("name"),
            "a name over two lines is refused: {errs:?}"
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
