//! The landmark vocabulary (spec section 3): codes in the private scheme `99SPINE` whose
//! value is the canonical name, plus synonyms from the pipeline file.

use std::collections::BTreeMap;

use plumbline_geometry::Landmark;

/// The private coding scheme of the canonical landmark codes.
pub const SCHEME: &str = "99SPINE";

/// Maps codes and free text to canonical landmarks.
///
/// ```
/// use plumbline_ingest::Vocabulary;
/// let mut v = Vocabulary::default();
/// v.add_text("Sacral plateau posterior", "S1_sup_post".parse().unwrap());
/// assert_eq!(v.code("99SPINE", "L1_sup_ant"), Some("L1_sup_ant".parse().unwrap()));
/// assert_eq!(v.code("SCT", "L1_sup_ant"), None); // another scheme: only through synonyms
/// assert_eq!(v.text("Sacral plateau posterior"), Some("S1_sup_post".parse().unwrap()));
/// assert_eq!(v.text("L1_sup_ant"), Some("L1_sup_ant".parse().unwrap())); // verbatim canonical
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vocabulary {
    /// Scheme, then code value (nested, so that a look-up needs no owned key).
    codes: BTreeMap<String, BTreeMap<String, Landmark>>,
    texts: BTreeMap<String, Landmark>,
}

impl Vocabulary {
    /// Adds a coded synonym (scheme designator, code value).
    pub fn add_code(&mut self, scheme: &str, value: &str, lm: Landmark) {
        self.codes
            .entry(scheme.to_string())
            .or_default()
            .insert(value.to_string(), lm);
    }

    /// Adds a free-text synonym (matched exactly, after trimming spaces).
    pub fn add_text(&mut self, text: &str, lm: Landmark) {
        self.texts.insert(text.trim().to_string(), lm);
    }

    /// A coded concept: the synonyms first, then `99SPINE` codes whose value is canonical.
    pub fn code(&self, scheme: &str, value: &str) -> Option<Landmark> {
        let (scheme, value) = (scheme.trim(), value.trim());
        if let Some(lm) = self.codes.get(scheme).and_then(|c| c.get(value)) {
            return Some(*lm);
        }
        if scheme == SCHEME {
            return Landmark::parse(value);
        }
        None
    }

    /// Every synonym, one per line in a fixed order (codes, then texts, each sorted):
    /// `code<TAB>scheme<TAB>value<TAB>landmark` or `text<TAB>text<TAB>landmark`. Two
    /// vocabularies read points alike exactly when their texts are equal.
    pub fn canonical_text(&self) -> String {
        let mut out = String::new();
        for (scheme, values) in &self.codes {
            for (value, lm) in values {
                out.push_str(&format!("code\t{scheme}\t{value}\t{lm}\n"));
            }
        }
        for (text, lm) in &self.texts {
            out.push_str(&format!("text\t{text}\t{lm}\n"));
        }
        out
    }

    /// A free-text candidate: the synonyms first, then the string verbatim if canonical.
    pub fn text(&self, text: &str) -> Option<Landmark> {
        let t = text.trim();
        self.texts.get(t).copied().or_else(|| Landmark::parse(t))
    }
}
