//! A signature as the store keeps it beside its entry, so that a restart (every `--once`, the
//! service's first write, another instance catching up) reads signatures back instead of
//! deriving each recent entry's again from its text: the derivation is most of what loading
//! the story index costs.
//!
//! The bytes start with an epoch: a hash of this format's version, the signature's own
//! version and the alias table, the three things that decide what a signature holds. Bytes of
//! another epoch (an older program, other aliases in the config) are not read; the entry's
//! signature is derived again from its text, as before signatures were stored, and the
//! backend may write the new one back. The rest is a compact binary form (little-endian,
//! lengths as LEB128), about 250 bytes an entry on the bench's corpora, a tenth of its row.
//! Written and read by this module alone: no general serialisation crate is needed for one
//! fixed record, and a damaged record reads as "derive again", never as a wrong signature.

use std::sync::Arc;

use super::signature::Aliases;
use crate::model::Signature;

/// What the encoding below looks like. Bump it with any change to it. 2: the record ends with
/// the copy's [`Facts`].
const FORMAT: u32 = 2;

/// What `signature::signature` computes from an entry. Bump it with any change to what a
/// signature holds for the same text (tokenizer, stems, boilerplate, weights, entity rules):
/// signatures stored by the program before are then derived again. The test
/// `signatures_of_the_labelled_set_are_pinned` fails when they change and this did not.
pub const SIGNATURE_VERSION: u32 = 1;

/// The epoch of signatures computed with `aliases` by this program.
pub fn epoch(aliases: &Aliases) -> [u8; 4] {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&FORMAT.to_le_bytes());
    h.update(&SIGNATURE_VERSION.to_le_bytes());
    for (alias, name) in aliases.sorted() {
        h.update(alias.as_bytes());
        h.update(&[0]);
        h.update(name.as_bytes());
        h.update(&[0]);
    }
    let [a, b, c, d, ..] = h.digest().to_le_bytes();
    [a, b, c, d]
}

/// What the story index weighs of a copy beside its signature, kept in the same record so
/// that loading the index reads no more of an entry than its dates and ids (the link and
/// the headline, the two longest, are not read at all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// `cluster::link_key` of the entry's story key, if it has one.
    pub link_key: Option<u64>,
    pub has_link: bool,
    /// `cluster::real_title` of its headline.
    pub real_title: bool,
}

const HAS_LINK: u8 = 1;
const REAL_TITLE: u8 = 2;
const LINK_KEY: u8 = 4;

/// The record kept beside an entry: its signature and facts, under `epoch`.
pub fn record(s: &Signature, facts: Facts, epoch: [u8; 4]) -> Vec<u8> {
    let mut out = encode(s, epoch);
    let flags = u8::from(facts.has_link) * HAS_LINK
        | u8::from(facts.real_title) * REAL_TITLE
        | u8::from(facts.link_key.is_some()) * LINK_KEY;
    out.push(flags);
    if let Some(key) = facts.link_key {
        out.extend_from_slice(&key.to_le_bytes());
    }
    out
}

/// The signature and facts a [`record`] holds, if it was stored under `epoch` and reads whole.
pub fn read(bytes: &[u8], epoch: [u8; 4]) -> Option<(Signature, Facts)> {
    let mut r = Reader(bytes);
    let s = signature(&mut r, epoch)?;
    let flags = r.take(1)?[0];
    if flags & !(HAS_LINK | REAL_TITLE | LINK_KEY) != 0 {
        return None;
    }
    let link_key = match flags & LINK_KEY {
        0 => None,
        _ => Some(r.u64()?),
    };
    let facts = Facts {
        link_key,
        has_link: flags & HAS_LINK != 0,
        real_title: flags & REAL_TITLE != 0,
    };
    r.0.is_empty().then_some((s, facts))
}

/// `s` as stored, under `epoch` (the start of a [`record`]).
pub fn encode(s: &Signature, epoch: [u8; 4]) -> Vec<u8> {
    let text: usize = s.terms.iter().map(|(t, _)| t.len() + 2).sum::<usize>()
        + [&s.entities, &s.subjects, &s.topics]
            .iter()
            .flat_map(|l| l.iter())
            .map(|n| n.len() + 1)
            .sum::<usize>();
    let mut out = Vec::with_capacity(32 + text + 8 * (s.numbers.len() + s.title_numbers.len()));
    out.extend_from_slice(&epoch);
    out.extend_from_slice(&s.title.to_le_bytes());
    out.extend_from_slice(&s.simhash.to_le_bytes());
    varint(&mut out, u64::from(s.words));
    out.push(u8::from(s.series));
    varint(&mut out, s.terms.len() as u64);
    for (term, count) in &s.terms {
        string(&mut out, term);
        out.push(*count);
    }
    for list in [&s.entities, &s.subjects, &s.topics] {
        varint(&mut out, list.len() as u64);
        for name in list {
            string(&mut out, name);
        }
    }
    for list in [&s.numbers, &s.title_numbers] {
        varint(&mut out, list.len() as u64);
        for n in list {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    out
}

/// The signature `bytes` hold, if they are an [`encode`]d one of `epoch` and read whole.
pub fn decode(bytes: &[u8], epoch: [u8; 4]) -> Option<Signature> {
    let mut r = Reader(bytes);
    let s = signature(&mut r, epoch)?;
    r.0.is_empty().then_some(s)
}

/// Reads the signature at the start of `r`.
fn signature(r: &mut Reader, epoch: [u8; 4]) -> Option<Signature> {
    if r.take(4)? != epoch {
        return None;
    }
    let title = r.u64()?;
    let simhash = r.u64()?;
    let words = u32::try_from(r.varint()?).ok()?;
    let series = match r.take(1)? {
        [0] => false,
        [1] => true,
        _ => return None,
    };
    let terms = (0..r.len()?)
        .map(|_| Some((Arc::<str>::from(r.str()?), r.take(1)?[0])))
        .collect::<Option<Vec<_>>>()?;
    let mut names =
        || -> Option<Vec<String>> { (0..r.len()?).map(|_| r.str().map(str::to_owned)).collect() };
    let (entities, subjects, topics) = (names()?, names()?, names()?);
    let mut numbers =
        || -> Option<Vec<f64>> { (0..r.len()?).map(|_| r.u64().map(f64::from_bits)).collect() };
    let (numbers, title_numbers) = (numbers()?, numbers()?);
    Some(Signature {
        title,
        simhash,
        words,
        terms,
        entities,
        numbers,
        title_numbers,
        series,
        subjects,
        topics,
    })
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads what [`encode`] wrote; every read says `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// A count of items, each at least one byte: a count past what is left is damage.
    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?)
            .ok()
            .filter(|n| *n <= self.0.len())
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Entry;

    fn sample() -> Signature {
        let entry = Entry {
            summary: Some(
                "<p>Binance and the SEC settled for $4.3 billion on Tuesday, Changpeng Zhao \
                 said; BTC rose 3% to $67,200 as the exchange's lawyers filed the agreement \
                 in Seattle, ending a case that began in 2023.</p>"
                    .into(),
            ),
            ..Entry::titled("Binance settles with SEC for $4.3 billion, CZ steps down")
        };
        super::super::signature::signature(&entry, &Aliases::default())
    }

    #[test]
    fn a_signature_reads_back_as_it_was_written() {
        let s = sample();
        assert!(!s.terms.is_empty() && !s.entities.is_empty() && !s.numbers.is_empty());
        let e = epoch(&Aliases::default());
        let bytes = encode(&s, e);
        assert_eq!(decode(&bytes, e), Some(s.clone()));
        // Negative zero, a fraction, infinity: numbers come back bit for bit.
        let odd = Signature {
            numbers: vec![-0.0, 0.1, f64::INFINITY],
            words: u32::MAX,
            ..s
        };
        let back = decode(&encode(&odd, e), e).expect("reads back");
        let bits = |v: &[f64]| v.iter().map(|n| n.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.numbers), bits(&odd.numbers));
        assert_eq!(back.words, u32::MAX);
    }

    #[test]
    fn a_record_keeps_the_facts_beside_the_signature() {
        let s = sample();
        let e = epoch(&Aliases::default());
        for facts in [
            Facts::default(),
            Facts {
                link_key: Some(u64::MAX - 7),
                has_link: true,
                real_title: true,
            },
            Facts {
                link_key: None,
                has_link: true,
                real_title: false,
            },
        ] {
            let bytes = record(&s, facts, e);
            assert_eq!(read(&bytes, e), Some((s.clone(), facts)));
            for cut in 0..bytes.len() {
                assert_eq!(read(&bytes[..cut], e), None, "cut at {cut}");
            }
            assert_eq!(decode(&bytes, e), None, "a record is not a bare signature");
        }
        let mut odd = record(&s, Facts::default(), e);
        *odd.last_mut().unwrap() = 0x80;
        assert_eq!(read(&odd, e), None, "unknown flags");
    }

    #[test]
    fn another_epoch_or_damaged_bytes_read_as_nothing() {
        let s = sample();
        let e = epoch(&Aliases::default());
        let other = epoch(&Aliases::with(&[("cb".into(), "coinbase".into())]));
        assert_ne!(e, other, "an alias added changes the epoch");
        let bytes = encode(&s, e);
        assert_eq!(decode(&bytes, other), None);
        // Cut anywhere, or with a byte more, the record is refused, never half read.
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut], e), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer, e), None);
        // A length that claims more than is there.
        let mut lying = bytes[..4 + 16].to_vec();
        varint(&mut lying, u64::from(s.words));
        lying.push(0);
        varint(&mut lying, u64::MAX);
        assert_eq!(decode(&lying, e), None);
    }

    /// The digest of every signature of the labelled set. It changes only when what a
    /// signature holds changes: then bump `SIGNATURE_VERSION` (stored signatures would
    /// otherwise be read as if derived by this program) and write the new digest here.
    #[test]
    fn signatures_of_the_labelled_set_are_pinned() {
        #[derive(serde::Deserialize)]
        struct Item {
            title: String,
            body: String,
            link: String,
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/stories/labelled.json"
        );
        let items: Vec<Item> =
            serde_json::from_str(&std::fs::read_to_string(path).expect("the labelled set"))
                .expect("labelled.json parses");
        assert!(items.len() > 400);
        let aliases = Aliases::default();
        let mut digest = xxhash_rust::xxh3::Xxh3::new();
        for item in items {
            let entry = Entry {
                link: Some(item.link),
                summary: Some(item.body),
                ..Entry::titled(item.title)
            };
            let s = super::super::signature::signature(&entry, &aliases);
            digest.update(&encode(&s, [0; 4]));
        }
        assert_eq!(
            format!("{:016x}", digest.digest()),
            "4d49ff06ed7f8751",
            "signatures changed: bump SIGNATURE_VERSION in src/dedup/stored.rs and pin the new digest"
        );
    }
}
