//! Statistic titles a person would write ("NOMS staff dismissed for corruption"), built from the
//! question, the caption, the heading and the measure label. Pure: text in, one short line out.
//!
//! The question says what is counted and its scope; the caption is kept as the description, and
//! heads a title only when it reads like one (never "Table 1" or a sentence about the table).

use crate::extract::value::split_markers;

/// The longest title made: a person's title is short; the cut falls on a phrase boundary.
pub const MAX_TITLE: usize = 80;

/// What a title is made from.
#[derive(Clone, Debug, Default)]
pub struct Parts<'a> {
    pub question: &'a str,
    pub heading: &'a str,
    pub caption: &'a str,
    /// The label that names this series' measure ("Dismissals"), markers apart.
    pub measure: &'a str,
    /// Whether the table holds several series, so the measure label must be named.
    pub one_of_several: bool,
}

/// The title of one statistic: never empty, at most [`MAX_TITLE`] characters (plus a measure
/// label when the table holds several series), never "Table N" or a sentence about the table.
pub fn title(p: &Parts<'_>) -> String {
    let measure = clean(&split_markers(p.measure).0);
    let base = from_question(p.question)
        .or_else(|| caption_title(p.caption))
        .or_else(|| {
            let h = clean(p.heading);
            (!h.is_empty()).then_some(h)
        });
    let Some(base) = base else {
        return if measure.is_empty() || is_generic(&measure) {
            "Figures".to_owned()
        } else {
            capitalise(&measure)
        };
    };
    if p.one_of_several && !measure.is_empty() && !names_measure(&base, &measure) {
        let room = MAX_TITLE
            .saturating_sub(measure.chars().count() + 2)
            .max(24);
        return format!("{}: {measure}", shorten(&base, room));
    }
    base
}

/// Whether a caption is a real one: short, not "Table 1", not a sentence about the table.
pub fn caption_title(caption: &str) -> Option<String> {
    let c = clean(&split_markers(caption).0);
    let c = c.trim_end_matches([':', '.']).trim();
    let lower = c.to_lowercase();
    let table_n = lower
        .strip_prefix("table")
        .is_some_and(|r| r.trim().chars().all(|ch| ch.is_alphanumeric() || ch == '.'));
    if c.is_empty() || table_n || is_sentence_about_table(&lower) || c.chars().count() > MAX_TITLE {
        return None;
    }
    // "Table 2: Prisoners on temporary release" → the part after the label.
    let c = match lower.strip_prefix("table") {
        Some(rest) => match rest.find([':', '-', '–']) {
            Some(i) => c[5 + i + 1..].trim(),
            None => c,
        },
        None => c,
    };
    (!c.is_empty()).then(|| capitalise(c))
}

fn is_sentence_about_table(lower: &str) -> bool {
    const OPENINGS: &[&str] = &[
        "the information",
        "the table below",
        "the following table",
        "the table ",
        "the figures ",
        "the data ",
        "please see",
        "see the table",
        "information on",
        "we ",
        "i ",
        "this ",
        "these ",
        "as ",
    ];
    OPENINGS.iter().any(|o| lower.starts_with(o))
        || (lower.starts_with("the number of") && lower.contains(" is "))
        || lower.contains("table below")
        || lower.contains("following table")
        || lower.contains("as follows")
        || lower.contains(" are provided")
        || lower.contains(" is provided")
        || lower.contains(" has been provided")
}

fn is_generic(s: &str) -> bool {
    matches!(
        s.to_lowercase().as_str(),
        "number" | "numbers" | "total" | "count" | "amount" | "figure" | "figures" | "value"
    )
}

/// Whether the title already names the measure (every content word, by stem).
fn names_measure(title: &str, measure: &str) -> bool {
    if is_generic(measure) {
        return true;
    }
    let t: Vec<String> = words(title);
    words(measure)
        .iter()
        .all(|m| t.iter().any(|w| stem(w) == stem(m)))
}

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(str::to_owned)
        .collect()
}

fn stem(w: &str) -> &str {
    let n = w.len().min(6);
    &w[..w.char_indices().nth(n).map_or(w.len(), |(i, _)| i)]
}

/// The title a question asks for, or None when the question is not about a count.
pub fn from_question(question: &str) -> Option<String> {
    let q = clean(question);
    let lower = q.to_lowercase();
    if !lower.starts_with("to ask") {
        return None;
    }
    // Drop "To ask the Secretary of State for Justice, with reference to …, " up to the first
    // question word.
    let start = ["how ", "what ", "which ", "if ", "whether "]
        .iter()
        .filter_map(|w| find_word(&lower, w))
        .min()?;
    let mut s = q[start..].to_owned();
    // One question: the first clause.
    if let Some(i) = s.find([';', '?']) {
        s.truncate(i);
    }
    if let Some(i) = s.find(". ") {
        s.truncate(i);
    }
    let s = s.trim_end_matches(['.', ',', ' ']).to_owned();
    let s = drop_enumerators(&s);
    let lower = s.to_lowercase();
    // The opening that asks, replaced by what is counted.
    const OPENINGS: &[(&str, &str)] = &[
        ("how many and what proportion of ", ""),
        ("how many, and (2) what proportion of, ", ""),
        ("how many, and what proportion of, ", ""),
        ("how many and what percentage of ", ""),
        ("how much was spent on ", "spending on "),
        ("how much has been spent on ", "spending on "),
        ("how much his department spent on ", "spending on "),
        ("how much ", ""),
        ("how many ", ""),
        ("what the average number of ", "average number of "),
        ("what the total number of ", ""),
        ("what the number of ", ""),
        ("what number of ", ""),
        ("what proportion of ", "proportion of "),
        ("what percentage of ", "percentage of "),
        ("what the average ", "average "),
        ("what the ", ""),
        ("what ", ""),
        ("which ", ""),
    ];
    let mut body = None;
    for (open, with) in OPENINGS {
        if let Some(rest) = lower.strip_prefix(open) {
            body = Some(format!("{with}{}", &s[s.len() - rest.len()..]));
            break;
        }
    }
    // "if he will publish (a breakdown of) X", "what data his Department holds on X".
    if body.is_none() {
        for lead in [" publish ", " holds on ", " holds about ", " provide "] {
            if let Some(i) = lower.find(lead) {
                body = Some(s[i + lead.len()..].to_owned());
                break;
            }
        }
    }
    let mut body = body?;
    if let Some(i) = body.to_lowercase().find(" holds on ") {
        body = body[i + 10..].to_owned();
    }
    for lead in [
        "a breakdown of ",
        "the number and proportion of ",
        "the number of ",
        "the numbers of ",
        "figures on ",
        "data on ",
        "the ",
    ] {
        if body.to_lowercase().starts_with(lead) {
            body = body[lead.len()..].to_owned();
        }
    }
    // "assessment he has made", "steps he is taking": not a count.
    let bl = body.to_lowercase();
    if [
        "assessment",
        "steps ",
        "plans ",
        "his department",
        "her department",
    ]
    .iter()
    .any(|w| bl.starts_with(w))
    {
        return None;
    }
    let body = drop_auxiliary(&body);
    let body = drop_time(&body);
    let body = clean(body.trim_end_matches([',', ' ', '.']));
    if body.chars().count() < 4 {
        return None;
    }
    Some(capitalise(&shorten(&body, MAX_TITLE)))
}

fn find_word(lower: &str, w: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = lower[from..].find(w) {
        let at = from + i;
        if at == 0 || !lower[..at].ends_with(|c: char| c.is_alphanumeric()) {
            return Some(at);
        }
        from = at + w.len();
    }
    None
}

/// "(a) Belmarsh, (b) Feltham and (c) Isis" → "Belmarsh, Feltham and Isis".
fn drop_enumerators(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('(') {
        let after = &rest[i + 1..];
        let close = after.find(')');
        let inner = close.map(|c| &after[..c]);
        let enumerator = inner.is_some_and(|x| {
            !x.is_empty()
                && x.len() <= 4
                && (x.chars().all(|c| c.is_ascii_digit())
                    || x.chars().all(|c| matches!(c, 'i' | 'v' | 'x'))
                    || (x.len() == 1 && x.chars().all(|c| c.is_ascii_lowercase())))
        });
        out.push_str(&rest[..i]);
        match (enumerator, close) {
            (true, Some(c)) => rest = after[c + 1..].trim_start(),
            _ => {
                out.push('(');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    clean(&out)
}

/// "NOMS staff have been dismissed" → "NOMS staff dismissed"; "assaults there were" → "assaults".
fn drop_auxiliary(s: &str) -> String {
    let mut s = format!(" {s} ");
    for aux in [
        " there have been ",
        " there has been ",
        " there were ",
        " there are ",
        " there was ",
        " there is ",
        " have been ",
        " has been ",
        " had been ",
    ] {
        if let Some(i) = s.to_lowercase().find(aux) {
            s.replace_range(i..i + aux.len(), " ");
        }
    }
    let lower = s.to_lowercase();
    let first = [" were ", " was ", " are ", " is ", " did "]
        .iter()
        .filter_map(|a| lower.find(a).map(|i| (i, a.len())))
        .min();
    if let Some((i, n)) = first {
        s.replace_range(i..i + n, " ");
    }
    clean(&s)
}

/// Drops the time span asked about ("in each of the last five years", "since 2010"): periods
/// are the figures' own axis, not part of the title.
fn drop_time(s: &str) -> String {
    const MARKERS: &[&str] = &[
        " in each of the last",
        " in each of the past",
        " in each year",
        " in each month",
        " in each quarter",
        " in each financial year",
        " for each year",
        " for each of the last",
        " for each month",
        " each year",
        " in the last ",
        " over the last ",
        " in the past ",
        " over the past ",
        " in the most recent",
        " in the latest",
        " for the latest",
        " for the last ",
        " since ",
        " between 19",
        " between 20",
        " from 19",
        " from 20",
        " in 19",
        " in 20",
        " during ",
        " to date",
        " at the end of ",
        " on the last day",
        " for which ",
    ];
    let lower = s.to_lowercase();
    let cut = MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .filter(|&i| i >= 8)
        .min();
    match cut {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// Cuts a title to at most `max` characters at a phrase boundary (before " in ", " at ", a
/// comma...), never mid-word.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let limit = s.char_indices().nth(max).map_or(s.len(), |(i, _)| i);
    let head = &s[..limit];
    let lower = head.to_lowercase();
    let boundary = [
        ", ", " in ", " at ", " on ", " by ", " for ", " from ", " who ", " which ", " and ",
        " with ", " of ",
    ]
    .iter()
    .filter_map(|b| lower.rfind(b))
    .filter(|&i| i >= 16)
    .max();
    let cut = boundary.unwrap_or_else(|| head.rfind(' ').unwrap_or(limit));
    s[..cut].trim_end_matches([',', ' ']).to_owned()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn clean(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(question: &str) -> String {
        title(&Parts {
            question,
            ..Parts::default()
        })
    }

    #[test]
    fn questions_become_what_is_counted() {
        let cases = [
            ("To ask the Secretary of State for Justice, how many NOMS staff have been dismissed for corruption in each of the last five years.", "NOMS staff dismissed for corruption"),
            ("To ask the Secretary of State for Justice, how many prison officers have been dismissed for (a) supplying and (b) transporting drugs in prison in each of the last ten years.", "Prison officers dismissed for supplying and transporting drugs in prison"),
            ("To ask the Secretary of State for Justice, how many assaults on staff there were by prisoners in HMP (a) Maidstone, (b) Huntercombe and (c) Morton Hall in each of the last five years; and what the national average was for those assaults.", "Assaults on staff by prisoners in HMP Maidstone, Huntercombe and Morton Hall"),
            ("To ask the Secretary of State for Justice, how much was spent on probation services in (a) Greater Manchester (b) Oldham for each year from 2015 to date.", "Spending on probation services in Greater Manchester Oldham"),
            ("To ask the Secretary of State for Justice, what proportion of new prison officers left the service within two years of joining in each year since 2010.", "Proportion of new prison officers left the service within two years of joining"),
            ("To ask Her Majesty's Government how many incidents of self-harm were recorded in prisons and young offender institutions in each year from 2010 to the last year for which records are available.", "Incidents of self-harm recorded in prisons and young offender institutions"),
            ("To ask the Secretary of State for Justice, how many prison officer days have been lost due to being off work for mental health reasons in each year since 2010.", "Prison officer days lost due to being off work for mental health reasons"),
            ("To ask the Secretary of State for Justice, how many women received custodial sentences of less than (a) three and (b) six months in each of the last three years.", "Women received custodial sentences of less than three and six months"),
            ("To ask the Secretary of State for Justice, if he will publish the number of vacancies per region in the probation service at the end of 2023.", "Vacancies per region in the probation service"),
            ("To ask the Secretary of State for Justice, if he will publish a breakdown of drug incidents in prison since 2010 by (a) drug type and (b) overall weight substances.", "Drug incidents in prison"),
            ("To ask the Secretary of State for Justice, what the average caseload of probation officers in England and Wales was in each of the last ten years for which figures are available.", "Average caseload of probation officers in England and Wales"),
            ("To ask His Majesty's Government how many deaths by suicide there have been of people in prison in England and Wales for each year in the last decade.", "Deaths by suicide of people in prison in England and Wales"),
            ("To ask the Secretary of State for Justice, what data his Department holds on the number and proportion of prisoners who have self-harmed in (a) each of the last 12 months and (b) each year since 2010.", "Prisoners who have self-harmed"),
            ("To ask the Secretary of State for Justice, how many prison officer positions were vacant in (a) June, (b) July, (c) August, (d) September and (e) October 2023.", "Prison officer positions vacant in June, July, August, September"),
        ];
        for (question, want) in cases {
            let got = q(question);
            assert_eq!(got, want, "{question}");
            assert!(got.chars().count() <= MAX_TITLE, "{got}");
        }
    }

    #[test]
    fn long_questions_are_cut_at_a_phrase_boundary() {
        let got = q("To ask the Secretary of State for Justice, how many serious assaults on staff there were in HM Prison (a) Belmarsh, (b) Feltham, (c) Isis, (d) Pentonville, (e) Thameside, (f) Wandsworth and (g) Wormwood Scrubs in each year since 2010.");
        assert!(
            got.starts_with("Serious assaults on staff in HM Prison Belmarsh"),
            "{got}"
        );
        assert!(got.chars().count() <= MAX_TITLE, "{got}");
        assert!(!got.ends_with(','), "{got}");
        let got = q("To ask the Secretary of State for Justice, with reference to the letter sent in response to Question 6758, answered on 16 July 2015, what offences were committed by the 291 prisoners in the violence against the person category released on temporary licence on 25 December 2014.");
        assert!(
            got.starts_with("Offences committed by the 291 prisoners"),
            "{got}"
        );
        assert!(got.chars().count() <= MAX_TITLE, "{got}");
    }

    #[test]
    fn questions_that_ask_no_count_fall_back_to_the_heading() {
        let t = title(&Parts {
            question: "To ask the Secretary of State for Justice, what assessment he has made of the impact of staff absences as a result of work-related stress in the (a) prison service and (b) probation service.",
            heading: "Prison and Probation Service: Sick Leave",
            caption: "The table below shows days lost.",
            ..Parts::default()
        });
        assert_eq!(t, "Prison and Probation Service: Sick Leave");
    }

    #[test]
    fn captions_that_are_table_numbers_or_sentences_are_never_titles() {
        for c in [
            "Table 1",
            "Table 2.",
            "The number of dismissals over the last five years of NOMS staff for corruption related offences has been provided in the table below.",
            "The information requested is provided in the table below:",
            "The table below shows the number of finds.",
            "The number of assaults is set out below",
        ] {
            assert_eq!(caption_title(c), None, "{c}");
        }
        assert_eq!(
            caption_title(
                "Table: Prisoners on temporary release on 25 December 2015, England & Wales"
            )
            .as_deref(),
            Some("Prisoners on temporary release on 25 December 2015, England & Wales")
        );
        let t = title(&Parts {
            heading: "Prisons: Drugs",
            caption: "Table 1",
            ..Parts::default()
        });
        assert_eq!(t, "Prisons: Drugs");
    }

    #[test]
    fn a_series_of_a_wider_table_names_its_measure() {
        let t = title(&Parts {
            heading: "FOI 104637: staff corruption outcomes",
            measure: "Dismissals",
            one_of_several: true,
            ..Parts::default()
        });
        assert_eq!(t, "FOI 104637: staff corruption outcomes: Dismissals");
        let t = title(&Parts {
            question: "To ask the Secretary of State for Justice, how many NOMS staff have been dismissed for corruption in each of the last five years.",
            measure: "Number",
            one_of_several: true,
            ..Parts::default()
        });
        assert_eq!(t, "NOMS staff dismissed for corruption");
    }

    #[test]
    fn a_title_is_never_empty() {
        assert_eq!(title(&Parts::default()), "Figures");
        let t = title(&Parts {
            measure: "Conveyance of drugs (1)",
            ..Parts::default()
        });
        assert_eq!(t, "Conveyance of drugs");
    }
}
