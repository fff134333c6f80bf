//! Tagging is pure rule evaluation: an entry in, its tags out. It fetches nothing, stores
//! nothing. Tags come from three places: the feed's configured tags, the entry's own categories,
//! and keyword rules matched as whole words, case-insensitively, in title, summary, content and
//! categories.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::RegexSet;

use crate::model::{Entry, Tag, tag_key};
use crate::normalize::push_text;

/// A rule as configured: `[[tag]] name = "Binance" keywords = ["Binance", "BNB"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRule {
    pub name: String,
    pub keywords: Vec<String>,
}

/// The rules compiled once, so an entry's text is scanned once for all of them: ASCII keywords
/// by one Aho-Corasick automaton (case-insensitive; word boundaries checked at each hit), the
/// rare keyword with non-ASCII letters by a `RegexSet` with Unicode case folding. The automaton
/// made tagging five times cheaper than a `RegexSet` of every keyword.
#[derive(Debug, Clone)]
pub struct TagRules {
    rules: Vec<TagRule>,
    ascii: Option<AhoCorasick>,
    /// Pattern `i` of `ascii` is `ascii_keys[i]`: its rule and whether it needs a boundary at
    /// its start and at its end.
    ascii_keys: Vec<(usize, bool, bool)>,
    /// Index `i` of the set belongs to `rules[owner[i]]`.
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
    let body = k
        .split_whitespace()
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(r"\s+");
    let start = if word(k.chars().next()) { r"\b" } else { "" };
    let end = if word(k.chars().last()) { r"\b" } else { "" };
    format!("(?i){start}{body}{end}")
}

/// A rule that does not compile, by its index in the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    pub rule: usize,
    pub message: String,
}

impl TagRules {
    /// Compiles the rules; an error names the rule at fault.
    pub fn compile(rules: Vec<TagRule>) -> Result<TagRules, RuleError> {
        let (mut patterns, mut owner) = (Vec::new(), Vec::new());
        let (mut ascii_words, mut ascii_keys) = (Vec::new(), Vec::new());
        for (i, rule) in rules.iter().enumerate() {
            for kw in &rule.keywords {
                if kw.trim().is_empty() {
                    return Err(RuleError {
                        rule: i,
                        message: format!("rule {:?} has an empty keyword", rule.name),
                    });
                }
                if kw.is_ascii() {
                    let word = kw
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .to_ascii_lowercase();
                    let first_word = word.chars().next().is_some_and(is_word_char);
                    let last_word = word.chars().last().is_some_and(is_word_char);
                    ascii_keys.push((i, first_word, last_word));
                    ascii_words.push(word);
                } else {
                    patterns.push(keyword_pattern(kw));
                    owner.push(i);
                }
            }
        }
        let ascii = (!ascii_words.is_empty())
            .then(|| {
                // Keywords and text are both lower-cased (ASCII): a case-sensitive automaton
                // scans faster than a case-insensitive one.
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build(&ascii_words)
                    .map_err(|e| RuleError {
                        rule: 0,
                        message: format!("cannot compile keywords: {e}"),
                    })
            })
            .transpose()?;
        let set = RegexSet::new(&patterns).map_err(|e| RuleError {
            rule: 0,
            message: format!("cannot compile keywords: {e}"),
        })?;
        let spelling = rules
            .iter()
            .map(|r| (tag_key(&r.name), r.name.clone()))
            .collect();
        Ok(TagRules {
            rules,
            ascii,
            ascii_keys,
            set,
            owner,
            spelling,
        })
    }

    /// The rules whose keywords occur in `text` as whole words, each once, in rule order.
    fn matching_rules(&self, text: &str) -> Vec<usize> {
        let mut hit = vec![false; self.rules.len()];
        if let Some(ac) = &self.ascii {
            for m in ac.find_overlapping_iter(text) {
                let (rule, bound_start, bound_end) = self.ascii_keys[m.pattern().as_usize()];
                if hit[rule] {
                    continue;
                }
                let before = text[..m.start()].chars().next_back();
                let after = text[m.end()..].chars().next();
                let ok_start = !bound_start || !before.is_some_and(is_word_char);
                let ok_end = !bound_end || !after.is_some_and(is_word_char);
                hit[rule] = ok_start && ok_end;
            }
        }
        if !self.set.is_empty() {
            for i in self.set.matches(text).iter() {
                hit[self.owner[i]] = true;
            }
        }
        hit.iter()
            .enumerate()
            .filter(|(_, h)| **h)
            .map(|(i, _)| i)
            .collect()
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
        entry
            .categories
            .iter()
            .filter_map(|c| Tag::new(c))
            .for_each(&mut push);
        if self.ascii.is_some() || !self.set.is_empty() {
            for i in self.matching_rules(&match_text(entry)) {
                push(Tag(self.rules[i].name.clone()));
            }
        }
        out
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Everything keyword rules look at, as plain text, fields separated, white space collapsed to
/// single spaces (so "BNB Chain" matches across a line break), ASCII letters lower-cased.
fn match_text(entry: &Entry) -> String {
    let len = entry.title.len()
        + entry.summary.as_ref().map_or(0, String::len)
        + entry.content.as_ref().map_or(0, String::len);
    let mut text = String::with_capacity(len + 64);
    push_text(&mut text, &entry.title);
    for html in [&entry.summary, &entry.content].into_iter().flatten() {
        text.push_str(" \n");
        push_text(&mut text, html);
    }
    for c in &entry.categories {
        text.push_str(" \n");
        push_text(&mut text, c);
    }
    text.make_ascii_lowercase();
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
            category_labels: vec![],
            published: None,
            updated: None,
            enclosures: vec![],
        }
    }

    fn rules() -> TagRules {
        TagRules::compile(vec![
            TagRule {
                name: "Binance".into(),
                keywords: vec!["Binance".into(), "BNB".into(), "Changpeng Zhao".into()],
            },
            TagRule {
                name: "Bitcoin".into(),
                keywords: vec!["Bitcoin".into(), "$BTC".into()],
            },
        ])
        .unwrap()
    }

    #[test]
    fn whole_words_case_insensitive() {
        let r = rules();
        let t = r.tags_for(&entry("BINANCE lists a token", "", &[]), &[]);
        assert_eq!(t, vec![Tag("Binance".into())]);
        // "BNBx" and "Bitcoiner" are not whole words.
        assert!(
            r.tags_for(&entry("BNBx and Bitcoiners", "", &[]), &[])
                .is_empty()
        );
        let t = r.tags_for(&entry("x", "<p>Changpeng\n Zhao bought $btc</p>", &[]), &[]);
        assert_eq!(t, vec![Tag("Binance".into()), Tag("Bitcoin".into())]);
    }

    #[test]
    fn categories_and_feed_tags_once_in_config_spelling() {
        let r = rules();
        let t = r.tags_for(
            &entry("nothing", "", &["#binance ", "Markets", "markets"]),
            &[Tag("crypto".into())],
        );
        assert_eq!(
            t,
            vec![
                Tag("crypto".into()),
                Tag("Binance".into()),
                Tag("Markets".into())
            ]
        );
    }

    #[test]
    fn non_ascii_keywords_fold_case_too() {
        let r = TagRules::compile(vec![TagRule {
            name: "Zürich".into(),
            keywords: vec!["Zürich".into()],
        }])
        .unwrap();
        assert_eq!(
            r.tags_for(&entry("ZÜRICH café", "", &[]), &[]),
            vec![Tag("Zürich".into())]
        );
        assert!(r.tags_for(&entry("Zürichsee", "", &[]), &[]).is_empty());
    }

    #[test]
    fn overlapping_keywords_and_boundaries() {
        let r = TagRules::compile(vec![
            TagRule {
                name: "Chain".into(),
                keywords: vec!["BNB Chain".into()],
            },
            TagRule {
                name: "BNB".into(),
                keywords: vec!["BNB".into()],
            },
        ])
        .unwrap();
        let t = r.tags_for(&entry("the bnb\nchain grows", "", &[]), &[]);
        assert_eq!(t, vec![Tag("Chain".into()), Tag("BNB".into())]);
        // Titles keep a non-breaking space; in a body it may be an entity: both separate words.
        for (title, body) in [("the BNB\u{a0}Chain", ""), ("x", "<p>BNB&nbsp;Chain</p>")] {
            let t = r.tags_for(&entry(title, body, &[]), &[]);
            assert_eq!(
                t,
                vec![Tag("Chain".into()), Tag("BNB".into())],
                "{title:?} {body:?}"
            );
        }
        assert!(r.tags_for(&entry("xBNB_ chain", "", &[]), &[]).is_empty());
    }

    #[test]
    fn markup_is_not_matched() {
        let r = rules();
        assert!(
            r.tags_for(
                &entry("x", "<a href=\"https://x/bitcoin\">link</a>", &[]),
                &[]
            )
            .is_empty()
        );
    }
}
