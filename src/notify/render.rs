//! Rendering alerts, digests and confirmations as subject, plain text and HTML. Pure: values in,
//! text out. Everything that came from an answer is escaped for HTML and stripped of control
//! characters for headers; no answer HTML is ever copied into a message.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One figure that changed, as an alert shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FigureLine {
    pub statistic: String,
    /// Row and column labels joined, e.g. "Maidstone / 2023".
    pub label: String,
    pub raw: String,
    /// For a revision: the earlier value and where it was published.
    pub previous_raw: Option<String>,
    pub previous_source: Option<String>,
    pub previous_url: Option<String>,
    pub table_index: usize,
    pub cell: [usize; 2],
}

/// A table as published, with the cells that changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableView {
    pub caption: Option<String>,
    pub header_rows: Vec<Vec<String>>,
    pub rows: Vec<Vec<String>>,
    /// Grid cells (header rows counted) that are new or revised.
    pub changed: Vec<[usize; 2]>,
    pub notes: Vec<String>,
}

/// Everything an alert says about one answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnswerAlert {
    pub heading: String,
    pub question: String,
    pub asked_by: Option<String>,
    pub answered_by: Option<String>,
    pub answering_body: Option<String>,
    pub date_answered: Option<String>,
    pub house: Option<String>,
    pub uin: Option<String>,
    pub url: Option<String>,
    pub is_correction: bool,
    pub new: Vec<FigureLine>,
    pub revised: Vec<FigureLine>,
    pub tables: Vec<TableView>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// HTML-escapes text from an answer.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One line of text fit for a header: no control characters, trimmed, at most 180 characters.
pub fn header_text(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    one.chars().take(180).collect()
}

/// Only http(s) links to Parliament's pages are linked; anything else is shown as text.
fn safe_url(u: &str) -> Option<&str> {
    (u.starts_with("https://questions-statements.parliament.uk/")
        && !u.contains(['"', '<', '>', ' ']))
    .then_some(u)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "2 new figures, 1 revised" (or "no new figures").
fn summary(new: usize, revised: usize) -> String {
    match (new, revised) {
        (0, 0) => "no new figures".into(),
        (n, 0) => plural(n, "new figure", "new figures"),
        (0, r) => format!("{r} revised"),
        (n, r) => format!("{}, {r} revised", plural(n, "new figure", "new figures")),
    }
}

/// The statistics an alert reports, in order (revised first), each named once.
fn statistics(a: &AnswerAlert) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for f in a.revised.iter().chain(&a.new) {
        if !out.contains(&f.statistic.as_str()) {
            out.push(&f.statistic);
        }
    }
    out
}

/// The figure lines of one list, grouped by statistic in first-seen order.
fn grouped(lines: &[FigureLine]) -> Vec<(&str, Vec<&FigureLine>)> {
    let mut out: Vec<(&str, Vec<&FigureLine>)> = Vec::new();
    for f in lines {
        match out.iter_mut().find(|(s, _)| *s == f.statistic) {
            Some((_, v)) => v.push(f),
            None => out.push((&f.statistic, vec![f])),
        }
    }
    out
}

/// "New figures: NOMS staff dismissed for corruption and 2 more": always names a statistic, or
/// for an answer without figures its heading or what its question asks.
pub fn subject(a: &AnswerAlert) -> String {
    let corr = if a.is_correction { "Correction: " } else { "" };
    let what = match (a.new.len(), a.revised.len()) {
        (0, 0) => "New answer",
        (_, 0) => "New figures",
        (0, _) => "Revised figures",
        _ => "New and revised figures",
    };
    let stats = statistics(a);
    let name = match stats.first() {
        Some(first) if !first.trim().is_empty() => {
            let more = stats.len() - 1;
            if more == 0 {
                (*first).to_owned()
            } else {
                format!("{first} and {more} more")
            }
        }
        _ => {
            let heading = header_text(&a.heading);
            if !heading.is_empty() {
                heading
            } else if let Some(t) = crate::title::from_question(&a.question) {
                t
            } else {
                match &a.uin {
                    Some(u) => format!("written answer {u}"),
                    None => "a written answer".to_owned(),
                }
            }
        }
    };
    header_text(&format!("{corr}{what}: {name}"))
}

/// The unsubscribe footer's two forms.
pub struct Unsubscribe<'a> {
    pub url: Option<&'a str>,
    pub mailto: &'a str,
    /// The signed link to the manage page (change keywords or frequency, or leave).
    pub manage: Option<&'a str>,
}

fn answer_text(a: &AnswerAlert, out: &mut String) {
    let _ = writeln!(out, "{}", header_text(&a.heading));
    if a.is_correction {
        let _ = writeln!(out, "CORRECTION to an earlier answer");
    }
    let _ = writeln!(out, "\nQuestion: {}", a.question.trim());
    let who = |w: &Option<String>| w.clone().unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "Asked by {} ({} {}). Answered by {} for the {} on {}.",
        who(&a.asked_by),
        who(&a.house),
        who(&a.uin),
        who(&a.answered_by),
        who(&a.answering_body),
        who(&a.date_answered)
    );
    if let Some(u) = &a.url {
        let _ = writeln!(out, "Official record: {u}");
    }
    if !a.new.is_empty() {
        let _ = writeln!(out, "\nNew figures:");
        for (stat, lines) in grouped(&a.new) {
            let _ = writeln!(out, "  {}", header_text(stat));
            for f in lines {
                let _ = writeln!(out, "    {}: {}", f.label, f.raw);
            }
        }
    }
    if !a.revised.is_empty() {
        let _ = writeln!(out, "\nRevised figures:");
        for (stat, lines) in grouped(&a.revised) {
            let _ = writeln!(out, "  {}", header_text(stat));
            for f in lines {
                let _ = writeln!(
                    out,
                    "    {}: {} -> {} (was given in {})",
                    f.label,
                    f.previous_raw.as_deref().unwrap_or("-"),
                    f.raw,
                    f.previous_source.as_deref().unwrap_or("an earlier answer")
                );
            }
        }
    }
    for t in &a.tables {
        let _ = writeln!(out, "\n{}", t.caption.as_deref().unwrap_or("Table"));
        for (r, row) in t.header_rows.iter().chain(&t.rows).enumerate() {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, v)| {
                    if t.changed.contains(&[r, c]) {
                        format!("*{v}*")
                    } else {
                        v.clone()
                    }
                })
                .collect();
            let _ = writeln!(out, "  | {} |", cells.join(" | "));
        }
        for n in &t.notes {
            let _ = writeln!(out, "  {n}");
        }
    }
    if !a.tables.iter().all(|t| t.changed.is_empty()) {
        let _ = writeln!(out, "  (*new or revised*)");
    }
}

fn answer_html(a: &AnswerAlert, out: &mut String) {
    let _ = write!(out, "<h2>{}</h2>", esc(&a.heading));
    if a.is_correction {
        out.push_str("<p><strong>Correction to an earlier answer</strong></p>");
    }
    let _ = write!(out, "<p><em>{}</em></p>", esc(a.question.trim()));
    let who = |w: &Option<String>| esc(w.as_deref().unwrap_or("-"));
    let _ = write!(
        out,
        "<p>Asked by {} ({} {}). Answered by {} for the {} on {}.</p>",
        who(&a.asked_by),
        who(&a.house),
        who(&a.uin),
        who(&a.answered_by),
        who(&a.answering_body),
        who(&a.date_answered)
    );
    if let Some(u) = a.url.as_deref().and_then(safe_url) {
        let _ = write!(out, "<p><a href=\"{}\">Official record</a></p>", esc(u));
    }
    if !a.new.is_empty() {
        out.push_str("<h3>New figures</h3>");
        for (stat, lines) in grouped(&a.new) {
            let _ = write!(out, "<h4>{}</h4><ul>", esc(stat));
            for f in lines {
                let _ = write!(
                    out,
                    "<li>{}: <strong>{}</strong></li>",
                    esc(&f.label),
                    esc(&f.raw)
                );
            }
            out.push_str("</ul>");
        }
    }
    if !a.revised.is_empty() {
        out.push_str("<h3>Revised figures</h3>");
        for (stat, lines) in grouped(&a.revised) {
            let _ = write!(out, "<h4>{}</h4><ul>", esc(stat));
            for f in lines {
                let was = match (
                    f.previous_source.as_deref(),
                    f.previous_url.as_deref().and_then(safe_url),
                ) {
                    (Some(s), Some(u)) => format!("<a href=\"{}\">{}</a>", esc(u), esc(s)),
                    (Some(s), None) => esc(s),
                    _ => "an earlier answer".into(),
                };
                let _ = write!(
                    out,
                    "<li>{}: {} → <strong>{}</strong> (was given in {was})</li>",
                    esc(&f.label),
                    esc(f.previous_raw.as_deref().unwrap_or("-")),
                    esc(&f.raw)
                );
            }
            out.push_str("</ul>");
        }
    }
    for t in &a.tables {
        let _ = write!(
            out,
            "<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\"><caption>{}</caption>",
            esc(t.caption.as_deref().unwrap_or(""))
        );
        for (r, row) in t.header_rows.iter().chain(&t.rows).enumerate() {
            out.push_str("<tr>");
            let tag = if r < t.header_rows.len() { "th" } else { "td" };
            for (c, v) in row.iter().enumerate() {
                if t.changed.contains(&[r, c]) {
                    let _ = write!(
                        out,
                        "<{tag} style=\"background:#ffe066\"><strong>{}</strong></{tag}>",
                        esc(v)
                    );
                } else {
                    let _ = write!(out, "<{tag}>{}</{tag}>", esc(v));
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
        for n in &t.notes {
            let _ = write!(out, "<p><small>{}</small></p>", esc(n));
        }
    }
}

fn footer(u: &Unsubscribe<'_>, text: &mut String, html: &mut String) {
    let _ = writeln!(text, "\n--\nYou follow these answers through pqwatch.");
    html.push_str("<hr><p><small>You follow these answers through pqwatch. ");
    match u.url {
        Some(url) => {
            let _ = writeln!(text, "Unsubscribe: {url}");
            let _ = write!(html, "<a href=\"{}\">Unsubscribe</a>", esc(url));
        }
        None => {
            let _ = writeln!(
                text,
                "Unsubscribe: email {} with the subject \"unsubscribe\".",
                u.mailto
            );
            let _ = write!(
                html,
                "To unsubscribe, email {} with the subject “unsubscribe”.",
                esc(u.mailto)
            );
        }
    }
    if let Some(m) = u.manage {
        let _ = writeln!(text, "Change what you follow or how often: {m}");
        let _ = write!(
            html,
            " <a href=\"{}\">Change what you follow or how often</a>",
            esc(m)
        );
    }
    html.push_str("</small></p>");
}

/// One instant alert about one answer.
pub fn alert(a: &AnswerAlert, u: &Unsubscribe<'_>) -> Rendered {
    let mut text = String::new();
    let mut html = String::from("<!DOCTYPE html><html><body>");
    answer_text(a, &mut text);
    answer_html(a, &mut html);
    footer(u, &mut text, &mut html);
    html.push_str("</body></html>");
    Rendered {
        subject: subject(a),
        text,
        html,
    }
}

/// A daily digest: several answers, newest first (the caller orders them).
pub fn digest(day: &str, answers: &[AnswerAlert], u: &Unsubscribe<'_>) -> Rendered {
    let new: usize = answers.iter().map(|a| a.new.len()).sum();
    let revised: usize = answers.iter().map(|a| a.revised.len()).sum();
    let mut text = format!(
        "pqwatch daily digest, {day}: {} with {}\n",
        plural(answers.len(), "answer", "answers"),
        summary(new, revised)
    );
    let mut html = format!(
        "<!DOCTYPE html><html><body><h1>pqwatch daily digest, {}</h1>",
        esc(day)
    );
    for a in answers {
        text.push_str("\n==========\n");
        answer_text(a, &mut text);
        html.push_str("<hr>");
        answer_html(a, &mut html);
    }
    footer(u, &mut text, &mut html);
    html.push_str("</body></html>");
    Rendered {
        subject: header_text(&format!(
            "Daily digest {day}: {} in {}",
            summary(new, revised),
            plural(answers.len(), "answer", "answers")
        )),
        text,
        html,
    }
}

/// The only message an unconfirmed subscriber gets.
pub fn confirmation(
    name: &str,
    keywords: &[String],
    confirm_url: Option<&str>,
    reply_to: &str,
    valid_days: u32,
) -> Rendered {
    let follow = keywords.join(", ");
    let how = match confirm_url {
        Some(u) => format!(
            "To confirm, open {u} (the link works for {valid_days} day{}).",
            if valid_days == 1 { "" } else { "s" }
        ),
        None => format!("To confirm, reply to this email or write to {reply_to}; an administrator will confirm you."),
    };
    let text = format!(
        "Hello {name},\n\nSomeone asked pqwatch to email this address when ministers publish new prison and probation figures about: {follow}.\n\n{how}\n\nIf this was not you, ignore this email and you will hear nothing more.\n"
    );
    let html = format!(
        "<!DOCTYPE html><html><body><p>Hello {},</p><p>Someone asked pqwatch to email this address when ministers publish new prison and probation figures about: <strong>{}</strong>.</p><p>{}</p><p>If this was not you, ignore this email and you will hear nothing more.</p></body></html>",
        esc(name),
        esc(&follow),
        esc(&how)
    );
    Rendered {
        subject: "Please confirm your pqwatch alerts".into(),
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AnswerAlert {
        AnswerAlert {
            heading: "Prisons: Drones\r\nBcc: victim@example.org".into(),
            question: "How many <script>alert(1)</script> drones?".into(),
            asked_by: Some("A Member".into()),
            answered_by: Some("A Minister".into()),
            answering_body: Some("Ministry of Justice".into()),
            date_answered: Some("2025-02-03".into()),
            house: Some("Commons".into()),
            uin: Some("1234".into()),
            url: Some("javascript:alert(1)".into()),
            is_correction: false,
            new: vec![FigureLine {
                statistic: "Drone incidents".into(),
                label: "2024".into(),
                raw: "1,667<img src=x onerror=alert(1)>".into(),
                previous_raw: None,
                previous_source: None,
                previous_url: None,
                table_index: 0,
                cell: [2, 1],
            }],
            revised: vec![FigureLine {
                statistic: "Drone incidents".into(),
                label: "2023".into(),
                raw: "1,214".into(),
                previous_raw: Some("1,200".into()),
                previous_source: Some("Commons 999 (2024-02-01)".into()),
                previous_url: Some("https://questions-statements.parliament.uk/written-questions/detail/2024-01-29/999".into()),
                table_index: 0,
                cell: [1, 1],
            }],
            tables: vec![TableView {
                caption: Some("Drone finds".into()),
                header_rows: vec![vec!["Year".into(), "Finds".into()]],
                rows: vec![vec!["2023".into(), "1,214".into()], vec!["2024".into(), "1,667".into()]],
                changed: vec![[1, 1], [2, 1]],
                notes: vec!["Source: <b>HMPPS</b>".into()],
            }],
        }
    }

    #[test]
    fn the_subject_names_the_statistic_and_what_changed_on_one_line() {
        let s = subject(&sample());
        assert_eq!(s, "New and revised figures: Drone incidents");
        assert!(!s.contains(['\r', '\n']));
        let mut a = sample();
        a.revised.clear();
        a.new[0].statistic = "NOMS staff dismissed for corruption".into();
        let mut other = a.new[0].clone();
        other.statistic = "Drone incidents\r\nBcc: x@y.org".into();
        a.new.push(other.clone());
        a.new.push(other);
        assert_eq!(
            subject(&a),
            "New figures: NOMS staff dismissed for corruption and 1 more"
        );
    }

    #[test]
    fn an_alert_subject_always_names_something_even_without_heading_or_figures() {
        let mut a = sample();
        a.heading = String::new();
        a.new.clear();
        a.revised.clear();
        a.question = "To ask the Secretary of State for Justice, how many NOMS staff have been dismissed for corruption in each of the last five years.".into();
        assert_eq!(
            subject(&a),
            "New answer: NOMS staff dismissed for corruption"
        );
        a.question = String::new();
        assert_eq!(subject(&a), "New answer: written answer 1234");
        let mut a = sample();
        a.heading = String::new();
        for f in a.new.iter_mut().chain(a.revised.iter_mut()) {
            f.statistic = "Drone finds".into();
        }
        assert_eq!(subject(&a), "New and revised figures: Drone finds");
    }

    #[test]
    fn hostile_answer_text_is_escaped_and_unsafe_links_are_not_linked() {
        let r = alert(
            &sample(),
            &Unsubscribe {
                url: None,
                mailto: "u@x.org",
                manage: None,
            },
        );
        assert!(!r.html.contains("<script>"));
        assert!(!r.html.contains("<img"));
        assert!(!r.html.contains("javascript:"));
        assert!(r.html.contains("&lt;script&gt;"));
        assert!(r.html.contains("&lt;b&gt;HMPPS&lt;/b&gt;"));
        assert!(r.html.contains("href=\"https://questions-statements.parliament.uk/written-questions/detail/2024-01-29/999\""));
    }

    #[test]
    fn the_alert_lists_new_and_revised_figures_under_their_statistic_and_marks_changed_cells() {
        let r = alert(
            &sample(),
            &Unsubscribe {
                url: Some("https://pq.example.org/unsubscribe?t=abc"),
                mailto: "u@x.org",
                manage: Some("https://pq.example.org/manage?t=abc.<x>"),
            },
        );
        assert!(r
            .text
            .contains("New figures:\n  Drone incidents\n    2024: 1,667"));
        assert!(r
            .text
            .contains("2023: 1,200 -> 1,214 (was given in Commons 999 (2024-02-01))"));
        assert!(r.text.contains("| 2023 | *1,214* |"));
        assert!(r
            .text
            .contains("Unsubscribe: https://pq.example.org/unsubscribe?t=abc"));
        assert!(r.html.contains("background:#ffe066"));
        assert!(r.text.contains(
            "Change what you follow or how often: https://pq.example.org/manage?t=abc.<x>"
        ));
        assert!(r
            .html
            .contains("href=\"https://pq.example.org/manage?t=abc.&lt;x&gt;\""));
    }

    #[test]
    fn a_digest_counts_every_answer() {
        let r = digest(
            "2025-02-03",
            &[sample(), sample()],
            &Unsubscribe {
                url: None,
                mailto: "u@x.org",
                manage: None,
            },
        );
        assert_eq!(
            r.subject,
            "Daily digest 2025-02-03: 2 new figures, 2 revised in 2 answers"
        );
    }
}
