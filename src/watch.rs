//! Keyword matching: whole-word, case-insensitive phrases over an item's heading, question and
//! full answer text. Pure: text in, matches out.
//!
//! Used for the `[watch] keywords` and (later) for what each subscriber follows, so both match the
//! same way.

/// A compiled list of phrases. A phrase is a run of words; a word ending in `*` matches any word
/// it begins.
#[derive(Clone, Debug)]
pub struct Matcher {
    phrases: Vec<Phrase>,
}

#[derive(Clone, Debug)]
struct Phrase {
    text: String,
    words: Vec<Word>,
}

#[derive(Clone, Debug)]
enum Word {
    Exact(String),
    Prefix(String),
}

impl Word {
    fn matches(&self, token: &str) -> bool {
        match self {
            Word::Exact(w) => w == token,
            Word::Prefix(p) => token.starts_with(p.as_str()),
        }
    }
}

impl Matcher {
    pub fn new<S: AsRef<str>>(phrases: &[S]) -> Matcher {
        let phrases = phrases
            .iter()
            .filter_map(|p| {
                let text = p.as_ref().trim();
                let words: Vec<Word> = tokens(text)
                    .into_iter()
                    .map(|t| match t.strip_suffix('*') {
                        Some(prefix) if !prefix.is_empty() => Word::Prefix(prefix.to_owned()),
                        _ => Word::Exact(t.trim_end_matches('*').to_owned()),
                    })
                    .filter(|w| !matches!(w, Word::Exact(s) if s.is_empty()))
                    .collect();
                (!words.is_empty()).then(|| Phrase {
                    text: text.to_owned(),
                    words,
                })
            })
            .collect();
        Matcher { phrases }
    }

    /// The phrases (as configured) that occur in any of `texts`, in configured order.
    pub fn matches(&self, texts: &[&str]) -> Vec<String> {
        let token_lists: Vec<Vec<String>> = texts.iter().map(|t| tokens(t)).collect();
        self.phrases
            .iter()
            .filter(|p| {
                token_lists.iter().any(|toks| {
                    toks.windows(p.words.len())
                        .any(|win| win.iter().zip(&p.words).all(|(t, w)| w.matches(t)))
                })
            })
            .map(|p| p.text.clone())
            .collect()
    }
}

/// Lower-cased words: runs of letters and digits, with apostrophes inside a word kept
/// ("children's") and a trailing `*` kept for patterns. Everything else separates words.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let apostrophe = matches!(c, '\'' | '\u{2019}')
            && !cur.is_empty()
            && chars.peek().is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if apostrophe {
            cur.push('\'');
        } else if c == '*' && !cur.is_empty() {
            cur.push('*');
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The visible text of an HTML fragment, for matching (tags become spaces, entities decoded).
pub fn html_text(html: &str) -> String {
    let doc = scraper::Html::parse_fragment(html);
    let mut out = String::with_capacity(html.len());
    for t in doc.root_element().text() {
        out.push_str(t);
        out.push(' ');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_is_whole_word_and_ignores_case() {
        let m = Matcher::new(&["prison", "YOI"]);
        assert_eq!(m.matches(&["HM PRISON Belmarsh"]), vec!["prison"]);
        assert!(m.matches(&["imprisonment rates"]).is_empty());
        assert!(m.matches(&["prisons"]).is_empty());
        assert_eq!(m.matches(&["Feltham yoi."]), vec!["YOI"]);
    }

    #[test]
    fn phrases_match_across_punctuation_and_line_breaks_but_not_gaps() {
        let m = Matcher::new(&["licence recall", "secure children's home"]);
        assert_eq!(m.matches(&["on licence\n recall,"]), vec!["licence recall"]);
        assert_eq!(m.matches(&["licence-recall"]), vec!["licence recall"]);
        assert!(m.matches(&["licence, then recall"]).is_empty());
        assert!(m.matches(&["licence was recall"]).is_empty());
        assert_eq!(
            m.matches(&["Secure Children\u{2019}s Homes and a secure children's home"]),
            vec!["secure children's home"]
        );
    }

    #[test]
    fn a_trailing_star_matches_any_ending() {
        let m = Matcher::new(&["prison*"]);
        assert_eq!(m.matches(&["two prisoners"]), vec!["prison*"]);
        assert!(m.matches(&["imprisoned"]).is_empty());
    }

    #[test]
    fn any_of_the_texts_can_match() {
        let m = Matcher::new(&["probation"]);
        assert_eq!(
            m.matches(&[
                "Heading",
                "",
                &html_text("<p>the <b>Probation</b> Service</p>")
            ]),
            vec!["probation"]
        );
    }

    #[test]
    fn html_text_decodes_entities_and_separates_cells() {
        let t = html_text("<table><tr><td>HMP&nbsp;Leeds</td><td>12</td></tr></table>");
        assert!(Matcher::new(&["HMP Leeds"]).matches(&[&t]).len() == 1);
        assert!(t.contains("12"));
    }
}
