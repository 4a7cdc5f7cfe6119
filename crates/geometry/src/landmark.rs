//! Typed landmark names (spec `landmarks.md` section 1).

use std::fmt;
use std::str::FromStr;

/// A vertebral level that carries landmarks: C7, T1..T12, L1..L5, S1.
///
/// Levels are ordered from head to pelvis, so `Level::C7 < Level::T(1) < Level::S1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Seventh cervical vertebra.
    C7,
    /// Thoracic vertebra 1..=12.
    T(u8),
    /// Lumbar vertebra 1..=5.
    L(u8),
    /// First sacral segment.
    S1,
}

impl Level {
    /// T1..T12 then L1..L5: the levels that have a centroid and four corners per view.
    pub fn thoracolumbar() -> impl Iterator<Item = Level> {
        (1..=12).map(Level::T).chain((1..=5).map(Level::L))
    }

    /// L1..L5.
    pub fn lumbar() -> impl Iterator<Item = Level> {
        (1..=5).map(Level::L)
    }

    /// Parses `C7`, `T1`..`T12`, `L1`..`L5`, `S1`.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "C7" => return Some(Level::C7),
            "S1" => return Some(Level::S1),
            _ => {}
        }
        let (region, num) = s.split_at_checked(1)?;
        // Reject leading zeros and signs: "T01" and "T+1" are not canonical.
        if num.starts_with('0') || !num.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u8 = num.parse().ok()?;
        match region {
            "T" if (1..=12).contains(&n) => Some(Level::T(n)),
            "L" if (1..=5).contains(&n) => Some(Level::L(n)),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Level::C7 => f.write_str("C7"),
            Level::T(n) => write!(f, "T{n}"),
            Level::L(n) => write!(f, "L{n}"),
            Level::S1 => f.write_str("S1"),
        }
    }
}

/// Superior or inferior endplate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endplate {
    /// Upper (cranial) endplate.
    Sup,
    /// Lower (caudal) endplate.
    Inf,
}

impl Endplate {
    /// `sup` or `inf`, as in the canonical names.
    pub fn as_str(self) -> &'static str {
        match self {
            Endplate::Sup => "sup",
            Endplate::Inf => "inf",
        }
    }
}

/// Which corner of an endplate: anterior/posterior on a lateral view, patient
/// left/right on an AP view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Corner {
    /// Anterior corner (lateral view).
    Ant,
    /// Posterior corner (lateral view).
    Post,
    /// Patient-left corner (AP view).
    Left,
    /// Patient-right corner (AP view).
    Right,
}

impl Corner {
    /// `ant`, `post`, `left` or `right`, as in the canonical names.
    pub fn as_str(self) -> &'static str {
        match self {
            Corner::Ant => "ant",
            Corner::Post => "post",
            Corner::Left => "left",
            Corner::Right => "right",
        }
    }

    /// True for the corners that only exist on a lateral view.
    pub fn is_lateral(self) -> bool {
        matches!(self, Corner::Ant | Corner::Post)
    }
}

/// Patient side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Patient left.
    Left,
    /// Patient right.
    Right,
}

/// One canonical landmark of the spec.
///
/// ```
/// use plumbline_geometry::{Landmark, Level, Endplate, Corner};
/// let lm: Landmark = "S1_sup_post".parse().unwrap();
/// assert_eq!(lm, Landmark::Corner(Level::S1, Endplate::Sup, Corner::Post));
/// assert_eq!(lm.to_string(), "S1_sup_post");
/// assert!("S1_inf_post".parse::<Landmark>().is_err()); // S1 has only a superior endplate
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Landmark {
    /// Centre of a vertebral body: C7, T1..T12, L1..L5.
    Centroid(Level),
    /// An endplate corner: T1..T12 and L1..L5 (both endplates), S1 (superior only).
    Corner(Level, Endplate, Corner),
    /// Centre of a femoral head.
    FemoralHead(Side),
}

/// A string that is not a canonical landmark name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a landmark name; expected e.g. `C7_centroid`, `L1_sup_ant`, `S1_sup_left` or `FH_right` (landmarks.md section 1; names are case-sensitive)"
)]
pub struct UnknownLandmark(
    /// The string as given.
    pub String,
);

impl Landmark {
    /// Shorthand for a corner landmark.
    pub const fn corner(level: Level, endplate: Endplate, corner: Corner) -> Landmark {
        Landmark::Corner(level, endplate, corner)
    }

    /// Whether this combination exists in the spec (used by the parser and by
    /// callers building landmarks programmatically).
    pub fn is_valid(&self) -> bool {
        match *self {
            Landmark::Centroid(level) => level != Level::S1,
            Landmark::Corner(Level::C7, _, _) => false,
            Landmark::Corner(Level::S1, endplate, _) => endplate == Endplate::Sup,
            Landmark::Corner(_, _, _) => true,
            Landmark::FemoralHead(_) => true,
        }
    }

    /// Every canonical landmark, in a fixed order (levels head to pelvis).
    pub fn all() -> Vec<Landmark> {
        let mut v = vec![Landmark::Centroid(Level::C7)];
        for level in Level::thoracolumbar() {
            v.push(Landmark::Centroid(level));
            for e in [Endplate::Sup, Endplate::Inf] {
                for c in [Corner::Ant, Corner::Post, Corner::Left, Corner::Right] {
                    v.push(Landmark::Corner(level, e, c));
                }
            }
        }
        for c in [Corner::Ant, Corner::Post, Corner::Left, Corner::Right] {
            v.push(Landmark::Corner(Level::S1, Endplate::Sup, c));
        }
        v.push(Landmark::FemoralHead(Side::Left));
        v.push(Landmark::FemoralHead(Side::Right));
        v
    }

    /// A readable phrase, used as the code meaning in the `99SPINE` scheme.
    pub fn meaning(&self) -> String {
        match self {
            Landmark::Centroid(l) => format!("{l} vertebral body centre"),
            Landmark::Corner(l, e, c) => {
                let e = match e {
                    Endplate::Sup => "superior",
                    Endplate::Inf => "inferior",
                };
                let c = match c {
                    Corner::Ant => "anterior",
                    Corner::Post => "posterior",
                    side => side.as_str(),
                };
                format!("{l} {e} endplate, {c} corner")
            }
            Landmark::FemoralHead(Side::Left) => "Left femoral head centre".to_string(),
            Landmark::FemoralHead(Side::Right) => "Right femoral head centre".to_string(),
        }
    }
}

impl fmt::Display for Landmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Landmark::Centroid(l) => write!(f, "{l}_centroid"),
            Landmark::Corner(l, e, c) => write!(f, "{l}_{}_{}", e.as_str(), c.as_str()),
            Landmark::FemoralHead(Side::Left) => f.write_str("FH_left"),
            Landmark::FemoralHead(Side::Right) => f.write_str("FH_right"),
        }
    }
}

impl Landmark {
    /// The canonical name of any landmark whose parts are in range (a level of C7, T1..T12,
    /// L1..L5 or S1), from a table made once: the work record writes one name per point
    /// (half a million for 600 patients), and formatting each took a few percent of the
    /// scan. `None` for a landmark built with an out-of-range level (`Level::T(13)`).
    ///
    /// ```
    /// use plumbline_geometry::Landmark;
    /// let lm: Landmark = "T12_inf_left".parse().unwrap();
    /// assert_eq!(lm.static_name(), Some("T12_inf_left"));
    /// ```
    pub fn static_name(self) -> Option<&'static str> {
        use std::sync::OnceLock;
        static NAMES: OnceLock<Vec<String>> = OnceLock::new();
        let names = NAMES.get_or_init(|| Landmark::in_range().map(|l| l.to_string()).collect());
        names.get(usize::from(self.ordinal()?)).map(String::as_str)
    }

    /// The landmark whose [`Landmark::ordinal`] is `n`, when it is a valid one (the work
    /// record stores a point's landmark as its ordinal).
    ///
    /// ```
    /// use plumbline_geometry::Landmark;
    /// let lm: Landmark = "S1_sup_left".parse().unwrap();
    /// assert_eq!(Landmark::from_ordinal(lm.ordinal().unwrap()), Some(lm));
    /// // Ordinal 19 is C7's superior anterior corner, which does not exist.
    /// assert_eq!(Landmark::from_ordinal(19), None);
    /// assert_eq!(Landmark::from_ordinal(999), None);
    /// ```
    pub fn from_ordinal(n: u16) -> Option<Landmark> {
        use std::sync::OnceLock;
        static ALL: OnceLock<Vec<Landmark>> = OnceLock::new();
        let all = ALL.get_or_init(|| Landmark::in_range().collect());
        all.get(usize::from(n)).copied().filter(Landmark::is_valid)
    }

    /// Every landmark with in-range levels, valid or not (C7 to S1, each with a centroid
    /// and eight corners, then the two femoral heads), in `Landmark`'s own order, so that
    /// the n-th has ordinal n ([`Landmark::ordinal`]).
    fn in_range() -> impl Iterator<Item = Landmark> {
        std::iter::once(Level::C7)
            .chain(Level::thoracolumbar())
            .chain([Level::S1])
            .map(Landmark::Centroid)
            .chain(
                std::iter::once(Level::C7)
                    .chain(Level::thoracolumbar())
                    .chain([Level::S1])
                    .flat_map(|l| {
                        [Endplate::Sup, Endplate::Inf]
                            .into_iter()
                            .flat_map(move |e| {
                                [Corner::Ant, Corner::Post, Corner::Left, Corner::Right]
                                    .map(move |c| Landmark::Corner(l, e, c))
                            })
                    }),
            )
            .chain([Side::Left, Side::Right].map(Landmark::FemoralHead))
    }

    /// The landmark's place among all landmarks with in-range levels (valid or not), in
    /// `Landmark`'s own order (`a < b` exactly when `a.ordinal() < b.ordinal()`): centroids
    /// by level, then corners by (level, endplate, corner), then the femoral heads. `None`
    /// for an out-of-range level. Sorting by it compares one integer instead of three
    /// nested enums.
    ///
    /// ```
    /// use plumbline_geometry::Landmark;
    /// let a: Landmark = "L5_centroid".parse().unwrap();
    /// let b: Landmark = "T1_sup_ant".parse().unwrap();
    /// assert!(a < b && a.ordinal() < b.ordinal());
    /// ```
    pub fn ordinal(self) -> Option<u16> {
        const LEVELS: usize = 19;
        let level = |l: Level| match l {
            Level::C7 => Some(0),
            Level::T(n) if (1..=12).contains(&n) => Some(usize::from(n)),
            Level::L(n) if (1..=5).contains(&n) => Some(12 + usize::from(n)),
            Level::S1 => Some(18),
            _ => None,
        };
        let i = match self {
            Landmark::Centroid(l) => level(l)?,
            Landmark::Corner(l, e, c) => {
                let e = match e {
                    Endplate::Sup => 0,
                    Endplate::Inf => 1,
                };
                let c = match c {
                    Corner::Ant => 0,
                    Corner::Post => 1,
                    Corner::Left => 2,
                    Corner::Right => 3,
                };
                LEVELS + level(l)? * 8 + e * 4 + c
            }
            Landmark::FemoralHead(Side::Left) => LEVELS * 9,
            Landmark::FemoralHead(Side::Right) => LEVELS * 9 + 1,
        };
        Some(i as u16)
    }
}

/// A landmark is stored as its canonical name (`"L1_sup_ant"`), as in the tables.
impl serde::Serialize for Landmark {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.static_name() {
            Some(name) => s.serialize_str(name),
            None => s.collect_str(self),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Landmark {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Landmark {
    type Err = UnknownLandmark;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Landmark::parse(s).ok_or_else(|| UnknownLandmark(s.to_string()))
    }
}

impl Landmark {
    /// The landmark a canonical name names, as [`str::parse`] reads it, without making an
    /// error for a name that is not one (the SR reader tries many such names).
    ///
    /// ```
    /// use plumbline_geometry::Landmark;
    /// assert_eq!(Landmark::parse("L1_sup_ant"), "L1_sup_ant".parse().ok());
    /// assert_eq!(Landmark::parse("Center"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Landmark> {
        let lm = match s {
            "FH_left" => Landmark::FemoralHead(Side::Left),
            "FH_right" => Landmark::FemoralHead(Side::Right),
            _ => {
                let mut parts = s.split('_');
                let level = parts.next().and_then(Level::parse)?;
                match (parts.next(), parts.next(), parts.next()) {
                    (Some("centroid"), None, None) => Landmark::Centroid(level),
                    (Some(e), Some(c), None) => {
                        let e = [Endplate::Sup, Endplate::Inf]
                            .into_iter()
                            .find(|x| x.as_str() == e)?;
                        let c = [Corner::Ant, Corner::Post, Corner::Left, Corner::Right]
                            .into_iter()
                            .find(|x| x.as_str() == c)?;
                        Landmark::Corner(level, e, c)
                    }
                    _ => return None,
                }
            }
        };
        lm.is_valid().then_some(lm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canonical_name_round_trips() {
        let all = Landmark::all();
        // C7 centroid + 17 levels x (1 centroid + 8 corners) + 4 S1 corners + 2 heads.
        assert_eq!(all.len(), 1 + 17 * 9 + 4 + 2);
        for lm in all {
            let s = lm.to_string();
            assert_eq!(s.parse::<Landmark>(), Ok(lm), "{s}");
        }
    }

    #[test]
    fn static_names_are_the_display_of_every_landmark() {
        // Every combination of parts, valid or not, with levels in range.
        let every: Vec<Landmark> = Landmark::in_range().collect();
        assert_eq!(every.len(), 19 * 9 + 2);
        for lm in &every {
            assert_eq!(lm.static_name(), Some(lm.to_string().as_str()), "{lm:?}");
        }
        // `ordinal` orders landmarks exactly as their own order does.
        let mut sorted = every.clone();
        sorted.sort();
        assert_eq!(sorted, every);
        let ordinals: Vec<u16> = every.iter().map(|l| l.ordinal().unwrap()).collect();
        assert_eq!(ordinals, (0..every.len() as u16).collect::<Vec<_>>());
        // `from_ordinal` undoes `ordinal` for exactly the valid landmarks.
        for (n, lm) in every.iter().enumerate() {
            let back = Landmark::from_ordinal(n as u16);
            assert_eq!(back, lm.is_valid().then_some(*lm), "{lm:?}");
        }
        let valid = (0..=u16::MAX)
            .filter(|&n| Landmark::from_ordinal(n).is_some())
            .count();
        assert_eq!(valid, Landmark::all().len());
        // Every canonical landmark is among them.
        assert!(Landmark::all().iter().all(|l| every.contains(l)));
        // Out-of-range levels have no static name (and are still written, by Display).
        for lm in [
            Landmark::Centroid(Level::T(13)),
            Landmark::Centroid(Level::L(0)),
            Landmark::Corner(Level::L(6), Endplate::Sup, Corner::Ant),
        ] {
            assert_eq!(lm.static_name(), None, "{lm:?}");
            assert_eq!(serde_json::to_string(&lm).unwrap(), format!("\"{lm}\""));
        }
        for lm in Landmark::all() {
            assert_eq!(serde_json::to_string(&lm).unwrap(), format!("\"{lm}\""));
        }
    }

    #[test]
    fn spec_examples_parse() {
        assert_eq!(
            "T12_inf_left".parse(),
            Ok(Landmark::Corner(Level::T(12), Endplate::Inf, Corner::Left))
        );
        assert_eq!("C7_centroid".parse(), Ok(Landmark::Centroid(Level::C7)));
        assert_eq!("FH_right".parse(), Ok(Landmark::FemoralHead(Side::Right)));
    }

    #[test]
    fn unknown_names_are_errors_not_panics() {
        for bad in [
            "",
            "_",
            "s1_sup_post",
            "S1_inf_ant",
            "S1_centroid",
            "C7_sup_ant",
            "T13_centroid",
            "T0_centroid",
            "T01_centroid",
            "L6_sup_ant",
            "L1_sup",
            "L1_sup_ant_x",
            "L1_mid_ant",
            "L1_sup_top",
            "FH_center",
            "T+1_centroid",
            "L\u{e9}_centroid",
            "C7_centroid ",
        ] {
            let e = bad.parse::<Landmark>().unwrap_err();
            assert_eq!(e, UnknownLandmark(bad.to_string()));
        }
    }

    #[test]
    fn levels_are_ordered_head_to_pelvis() {
        assert!(Level::C7 < Level::T(1));
        assert!(Level::T(12) < Level::L(1));
        assert!(Level::L(5) < Level::S1);
        assert!(Level::T(2) < Level::T(10));
    }
}
