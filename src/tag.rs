//! Tagging is pure rule evaluation: an entry in, its tags out. It fetches nothing, stores
//! nothing. Tags come from three places: the feed's configured tags, the entry's own categories,
//! and keyword rules matched as whole words, case-insensitively, in title, summary, content and
//! categories.

use std::collections::HashMap;

use regex::RegexSet;

use crate::model::{Entry, Tag, tag_key};
use crate::normalize::html_to_text;

/// A rule as configured: `[[tag]] name = "Binance" keywords = ["Binance", "BNB"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRule {
    pub name: String,
    pub keywords: Vec<String>,
}

/// The rules compiled once: one `RegexSet` so an entry's text is scanned once for all rules.
#[derive(Debug, Clone)]
pub struct TagRules {
    rules: Vec<TagRule>,
    /// Index `i` of the set belongs to `rules[owner[i]]` (rules without keywords have no pattern).
    set: RegexSet,
    owner: Vec<usize>,
    /// Tag key to the config's spelling, so a category "binance" shows as "Binance".
    spelling: HashMap<String, String>,
}

impl PartialEq for TagRules {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
    }
}

/// Whole-word pattern for one keyword. `\b` only where the keyword starts or ends with a word
/// character, so "$BTC" or "C++" still match; inner spaces match any run of white space.
fn keyword_pattern(keyword: &str) -> String {
    let k = keyword.trim();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let body = k.split_whitespace().map(regex::escape).collect::<Vec<_>>().join(r"\s+");
    let start = if word(k.chars().next()) { r"\b" } else { "" };
    let end = if word(k.chars().last()) { r"\b" } else { "" };
    format!("(?i){start}{body}{end}")
}

impl TagRules {
    /// Compiles the rules; an error carries the index of the rule at fault.
    pub fn compile(rules: Vec<TagRule>) -> Result<TagRules, (usize, String)> {
        let mut patterns = Vec::new();
        let mut owner = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            for kw in &rule.keywords {
                if kw.trim().is_empty() {
                    return Err((i, format!("rule {:?} has an empty keyword", rule.name)));
                }
                patterns.push(keyword_pattern(kw));
                owner.push(i);
            }
        }
        let set = RegexSet::new(&patterns).map_err(|e| (0, format!("cannot compile keywords: {e}")))?;
        let spelling = rules.iter().map(|r| (tag_key(&r.name), r.name.clone())).collect();
        Ok(TagRules { rules, set, owner, spelling })
    }

    pub fn empty() -> TagRules {
        TagRules::compile(Vec::new()).expect("no rules always compile")
    }

    pub fn rules(&self) -> &[TagRule] {
        &self.rules
    }

    /// The entry's tags, each once, in the config's spelling where the config names it.
    pub fn tags_for(&self, entry: &Entry, feed_tags: &[Tag]) -> Vec<Tag> {
        let mut out: Vec<Tag> = Vec::new();
        let mut push = |t: Tag| {
            let key = t.key();
            if !out.iter().any(|o| o.key() == key) {
                out.push(self.spelling.get(&key).map(|s| Tag(s.clone())).unwrap_or(t));
            }
        };
        feed_tags.iter().cloned().for_each(&mut push);
        entry.categories.iter().filter_map(|c| Tag::new(c)).for_each(&mut push);
        if !self.set.is_empty() {
            let text = match_text(entry);
            let mut matched: Vec<usize> = self.set.matches(&text).iter().map(|i| self.owner[i]).collect();
            matched.dedup();
            for i in matched {
                push(Tag(self.rules[i].name.clone()));
            }
        }
        out
    }
}

/// Everything keyword rules look at, as plain text, one field a line.
fn match_text(entry: &Entry) -> String {
    let mut text = String::with_capacity(entry.title.len() + 256);
    text.push_str(&entry.title);
    for html in [&entry.summary, &entry.content].into_iter().flatten() {
        text.push('\n');
        text.push_str(&html_to_text(html));
    }
    for c in &entry.categories {
        text.push('\n');
        text.push_str(c);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(title: &str, content: &str, cats: &[&str]) -> Entry {
        Entry {
            source_id: None,
            title: title.into(),
            link: None,
            summary: None,
            content: Some(content.into()),
            authors: vec![],
            categories: cats.iter().map(|c| c.to_string()).collect(),
            published: None,
            updated: None,
            enclosures: vec![],
        }
    }

    fn rules() -> TagRules {
        TagRules::compile(vec![
            TagRule { name: "Binance".into(), keywords: vec!["Binance".into(), "BNB".into(), "Changpeng Zhao".into()] },
            TagRule { name: "Bitcoin".into(), keywords: vec!["Bitcoin".into(), "$BTC".into()] },
        ])
        .unwrap()
    }

    #[test]
    fn whole_words_case_insensitive() {
        let r = rules();
        let t = r.tags_for(&entry("BINANCE lists a token", "", &[]), &[]);
        assert_eq!(t, vec![Tag("Binance".into())]);
        // "BNBx" and "Bitcoiner" are not whole words.
        assert!(r.tags_for(&entry("BNBx and Bitcoiners", "", &[]), &[]).is_empty());
        let t = r.tags_for(&entry("x", "<p>Changpeng\n Zhao bought $btc</p>", &[]), &[]);
        assert_eq!(t, vec![Tag("Binance".into()), Tag("Bitcoin".into())]);
    }

    #[test]
    fn categories_and_feed_tags_once_in_config_spelling() {
        let r = rules();
        let t = r.tags_for(&entry("nothing", "", &["#binance ", "Markets", "markets"]), &[Tag("crypto".into())]);
        assert_eq!(t, vec![Tag("crypto".into()), Tag("Binance".into()), Tag("Markets".into())]);
    }

    #[test]
    fn markup_is_not_matched() {
        let r = rules();
        assert!(r.tags_for(&entry("x", "<a href=\"https://x/bitcoin\">link</a>", &[]), &[]).is_empty());
    }
}
