//! [`ByLandmark`]: one value per landmark, as a vector sorted by landmark.

use crate::Landmark;

/// One value per [`Landmark`], kept in landmark order: what a `BTreeMap<Landmark, V>`
/// would hold, in one vector. (Not ingest's `markups::LandmarkMap`, the `--landmark-map`
/// table of which image each landmark file is on.)
///
/// A view holds up to 90 landmarks, twice (in mm and in source pixels). As `BTreeMap`s
/// (half-full nodes after inserts in order, each node its own allocation) the views of
/// 5000 generated patients took about 380 MB of fresh memory (`perf record -e
/// page-faults` in the grouping stage), and most of that stage's 1.6 s was the kernel
/// zeroing those pages; as sorted vectors the run's peak fell from 965 MB to 622-777 MB
/// and the stage to 0.65-0.96 s (BENCHMARKS.md, fifth session on #13). Lookups are
/// binary searches; an insert out of order shifts the entries after it, which for 90
/// entries costs less than a tree node.
///
/// ```
/// use plumbline_geometry::{Landmark, ByLandmark};
/// let s1: Landmark = "S1_sup_post".parse().unwrap();
/// let c7: Landmark = "C7_centroid".parse().unwrap();
/// let mut m: ByLandmark<f64> = [(s1, 2.0), (c7, 1.0)].into_iter().collect();
/// assert_eq!(m.keys().copied().collect::<Vec<_>>(), [c7, s1]); // landmark order
/// assert_eq!(m.insert(c7, 3.0), Some(1.0)); // one value per landmark
/// assert_eq!(m.get(&c7), Some(&3.0));
/// assert_eq!(m.remove(&s1), Some(2.0));
/// assert_eq!(m.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ByLandmark<V> {
    entries: Vec<(Landmark, V)>,
}

impl<V> Default for ByLandmark<V> {
    fn default() -> Self {
        ByLandmark {
            entries: Vec::new(),
        }
    }
}

impl<V> ByLandmark<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for `n` landmarks.
    pub fn with_capacity(n: usize) -> Self {
        ByLandmark {
            entries: Vec::with_capacity(n),
        }
    }

    fn find(&self, lm: &Landmark) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(lm))
    }

    /// The value of `lm`.
    pub fn get(&self, lm: &Landmark) -> Option<&V> {
        self.find(lm).ok().map(|i| &self.entries[i].1)
    }

    /// True when `lm` has a value.
    pub fn contains_key(&self, lm: &Landmark) -> bool {
        self.find(lm).is_ok()
    }

    /// Sets the value of `lm`; returns the value it replaced.
    pub fn insert(&mut self, lm: Landmark, value: V) -> Option<V> {
        // Entries usually come in landmark order: appending is the common case.
        if self.entries.last().is_none_or(|(k, _)| *k < lm) {
            self.entries.push((lm, value));
            return None;
        }
        match self.find(&lm) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (lm, value));
                None
            }
        }
    }

    /// Removes `lm`; returns its value.
    pub fn remove(&mut self, lm: &Landmark) -> Option<V> {
        self.find(lm).ok().map(|i| self.entries.remove(i).1)
    }

    /// Number of landmarks with a value.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no landmark has a value.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(landmark, value)` in landmark order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Landmark, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The landmarks, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Landmark> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values, in landmark order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values, mutable, in landmark order.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Landmark, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }
}

impl<V> FromIterator<(Landmark, V)> for ByLandmark<V> {
    /// Like a `BTreeMap`'s: in landmark order, and the last value of a landmark given
    /// twice wins.
    fn from_iter<I: IntoIterator<Item = (Landmark, V)>>(iter: I) -> Self {
        let mut entries: Vec<(Landmark, V)> = iter.into_iter().collect();
        // Stable: of equal landmarks, the one given last stays last.
        entries.sort_by_key(|a| a.0);
        let mut out: Vec<(Landmark, V)> = Vec::with_capacity(entries.len());
        for e in entries {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        out.shrink_to_fit();
        ByLandmark { entries: out }
    }
}

impl<V> std::ops::Index<&Landmark> for ByLandmark<V> {
    type Output = V;

    /// The value of `lm`; panics when it has none, as a `BTreeMap` does.
    fn index(&self, lm: &Landmark) -> &V {
        self.get(lm)
            .unwrap_or_else(|| panic!("no value for landmark {lm}"))
    }
}

impl<'a, V> IntoIterator for &'a ByLandmark<V> {
    type Item = (&'a Landmark, &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Landmark, V)>,
        fn(&'a (Landmark, V)) -> (&'a Landmark, &'a V),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<V> IntoIterator for ByLandmark<V> {
    type Item = (Landmark, V);
    type IntoIter = std::vec::IntoIter<(Landmark, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Every landmark, by ordinal.
    fn all() -> Vec<Landmark> {
        (0..=u16::from(u8::MAX))
            .filter_map(Landmark::from_ordinal)
            .collect()
    }

    #[test]
    fn behaves_as_a_btreemap_under_inserts_removes_and_collects() {
        let lms = all();
        assert!(lms.len() > 90);
        let mut map = ByLandmark::new();
        let mut reference = BTreeMap::new();
        // A fixed scramble of inserts (some twice) and removes.
        let mut x: u64 = 12345;
        for step in 0..2000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let lm = lms[(x >> 33) as usize % lms.len()];
            if x & 7 == 0 {
                assert_eq!(map.remove(&lm), reference.remove(&lm), "step {step}");
            } else {
                assert_eq!(
                    map.insert(lm, step),
                    reference.insert(lm, step),
                    "step {step}"
                );
            }
            assert_eq!(map.len(), reference.len());
        }
        let got: Vec<_> = map.iter().map(|(k, v)| (*k, *v)).collect();
        let want: Vec<_> = reference.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got, want);
        for lm in &lms {
            assert_eq!(map.get(lm), reference.get(lm));
            assert_eq!(map.contains_key(lm), reference.contains_key(lm));
        }
        // Collected from the same pairs in reverse (each landmark given several times).
        let pairs: Vec<(Landmark, u32)> = (0..300u32)
            .map(|i| (lms[(i as usize * 7) % lms.len()], i))
            .rev()
            .collect();
        let collected: ByLandmark<u32> = pairs.iter().copied().collect();
        let reference: BTreeMap<Landmark, u32> = pairs.iter().copied().collect();
        assert_eq!(
            collected.into_iter().collect::<Vec<_>>(),
            reference.into_iter().collect::<Vec<_>>()
        );
    }
}
