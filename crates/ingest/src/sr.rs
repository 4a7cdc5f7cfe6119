//! Landmark points from DICOM SR documents (spec `landmarks.md` section 2).
//!
//! The reader walks the whole content tree instead of following one toolkit's template, so
//! TID 1500 reports written by highdicom, by our generator or by anything else read alike.
//! The walk is iterative with an explicit depth cap: a broken or hostile file cannot
//! overflow the stack, and whatever lies below the cap is reported rather than lost
//! silently. Content items are numbered as in DCMTK's `dsrdump`: the document root is `1`,
//! its first child `1.1`, that child's third child `1.1.3`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::rc::Rc;

use dicom_core::Tag;
use dicom_core::value::PrimitiveValue;
use dicom_dictionary_std::{tags, uids};
use plumbline_geometry::Landmark;

use crate::dataset::Attributes;
use crate::qc::{QcIssue, Severity, codes};
use crate::records::{LandmarkDoc, Position, RawPoint, intern};
use crate::vocab::Vocabulary;

/// SOP classes read as landmark SRs: Comprehensive SR 1.2.840.10008.5.1.4.1.1.88.33,
/// Enhanced SR ...88.22, Comprehensive 3D SR ...88.34 (the classes that can hold SCOORD
/// items; Basic Text SR cannot).
pub const LANDMARK_SR_CLASSES: [&str; 3] = [
    uids::COMPREHENSIVE_SR_STORAGE,
    uids::ENHANCED_SR_STORAGE,
    uids::COMPREHENSIVE3_DSR_STORAGE,
];

/// Whether a SOP Class UID is one of [`LANDMARK_SR_CLASSES`] (trailing NUL padding and
/// spaces are ignored, as UIDs read from files may carry them).
pub fn is_landmark_sr_class(sop_class_uid: &str) -> bool {
    LANDMARK_SR_CLASSES.contains(&trim_value(sop_class_uid))
}

/// Default cap on content-tree depth. TID 1500 needs 4 levels (report, Imaging
/// Measurements, Measurement Group, SCOORD); 64 leaves ample room for other templates.
pub const DEFAULT_DEPTH_CAP: usize = 64;

/// Coding scheme of the DICOM concepts the reader looks for.
const DCM: &str = "DCM";
/// Finding (DCM 121071): the coded landmark name in a Measurement Group.
const FINDING: &str = "121071";
/// Tracking Identifier (DCM 112039): the free-text landmark name in a Measurement Group.
const TRACKING_IDENTIFIER: &str = "112039";
/// Person Observer Name (DCM 121008): the reader.
const PERSON_OBSERVER_NAME: &str = "121008";
/// Comment (DCM 121106): where OHIF's Cornerstone adapters put the user's label.
const COMMENT: &str = "121106";
/// Finding Site: SNOMED CT 363698007, or its older SNOMED-RT code G-C0E3 (where dcmjs puts
/// free-text labels).
const FINDING_SITE: [(&str, &str); 2] = [("SCT", "363698007"), ("SRT", "G-C0E3")];
/// The end of the Tracking Identifier of Cornerstone's ArrowAnnotate tool
/// (`Cornerstone3DTools@^0.1.0:ArrowAnnotate`, `cornerstoneTools@^4.0.0:ArrowAnnotate`).
const ARROW_TOOL_SUFFIX: &str = ":ArrowAnnotate";
/// The Person Observer Name dcmjs writes when it knows none: no reader.
const UNKNOWN_OBSERVER: &str = "unknown^unknown";

/// Evidence entries of these SOP class families are documents, not images: SR and Key
/// Object Selection (`...88.*`) and presentation states (`...11.*`). They are left out of
/// [`LandmarkDoc::evidence`] so that "the SR's only image" is not confused by them. These
/// are the roots of families of SOP classes, not UIDs (`uids` has no constant for them).
const NON_IMAGE_CLASS_PREFIXES: [&str; 2] =
    ["1.2.840.10008.5.1.4.1.1.88.", "1.2.840.10008.5.1.4.1.1.11."];

/// Paths longer than this many components are shortened in messages.
const MAX_PATH_COMPONENTS: usize = 12;

/// Reads every landmark point of an SR object (already fully loaded; the caller opened the
/// file).
///
/// Points come out in document order. Nothing panics and nothing stops the read: each
/// content item that cannot give a point becomes one [`QcIssue`] naming its place in the
/// tree, and the rest of the tree is still read. `depth_cap` is the deepest content-item
/// level read (children of the root dataset are level 1); deeper items produce a single
/// `sr_too_deep` issue.
pub fn read_sr<N: Attributes>(
    obj: &N,
    path: &Path,
    vocab: &Vocabulary,
    depth_cap: usize,
) -> LandmarkDoc {
    let sop_instance_uid = text(obj, tags::SOP_INSTANCE_UID)
        .map(Cow::into_owned)
        .unwrap_or_default();
    let patient_id = text(obj, tags::PATIENT_ID)
        .map(Cow::into_owned)
        .unwrap_or_default();
    let study_instance_uid = text(obj, tags::STUDY_INSTANCE_UID)
        .map(Cow::into_owned)
        .unwrap_or_default();
    let mut reader = Reader {
        path,
        vocab,
        sop_instance_uid,
        patient_id,
        evidence: evidence_images(obj),
        images: Vec::new(),
        observers: Vec::new(),
        points: Vec::new(),
        issues: Vec::new(),
    };
    if reader.sop_instance_uid.is_empty() {
        reader.issue(
            Severity::Warning,
            codes::MISSING_ATTRIBUTE,
            "the SR has no SOP Instance UID; its points are still read but cannot be traced \
             to a document UID"
                .to_string(),
        );
    }
    if reader.patient_id.is_empty() {
        reader.issue(
            Severity::Warning,
            codes::MISSING_ATTRIBUTE,
            "the SR has no PatientID; its points are still read and joined to images by \
             SOP Instance UID"
                .to_string(),
        );
    }
    reader.walk(obj, depth_cap);
    LandmarkDoc {
        path: path.to_path_buf(),
        sop_instance_uid: reader.sop_instance_uid,
        patient_id: reader.patient_id,
        study_instance_uid,
        evidence: reader.evidence,
        images: reader.images,
        observers: reader.observers,
        points: {
            // Grown by doubling while read: kept without the spare room.
            let mut p = reader.points;
            p.shrink_to_fit();
            p
        },
        issues: reader.issues,
    }
}

/// One level of the walk: the content items of one parent, and what they inherit.
struct Frame<'a, N> {
    /// The parent's ContentSequence items.
    items: &'a [N],
    /// The parent item (`None` for the document root).
    parent: Option<&'a N>,
    /// 1-based index of the item being visited (0 before the first).
    next: usize,
    /// The parent is a CONTAINER (or the document root): the boundary of a "group".
    container: bool,
    /// Person Observer Name in force for these items (empty when none).
    observer: Rc<str>,
    /// Whether more than one of `items` bears a point ([`bears_point`]), worked out for
    /// the first point named in this frame and kept for the others.
    several_points: std::cell::OnceCell<bool>,
}

/// The part of the tree below the depth cap, summed over all places it was hit.
struct TooDeep {
    /// The first item not read.
    first: String,
    /// Deepest level seen.
    max_depth: usize,
    /// SCOORD and SCOORD3D items among the unread ones.
    coords: usize,
}

impl TooDeep {
    /// Counts `item`, the item being visited (on top of `stack`), below the depth cap.
    fn add<N: Attributes>(slot: &mut Option<TooDeep>, item: &N, stack: &[Frame<'_, N>]) {
        let (max_depth, coords) = subtree_stats(item, stack.len());
        match slot {
            Some(t) => {
                t.max_depth = t.max_depth.max(max_depth);
                t.coords += coords;
            }
            None => {
                *slot = Some(TooDeep {
                    first: item_path(stack),
                    max_depth,
                    coords,
                })
            }
        }
    }
}

/// State of one [`read_sr`] call.
struct Reader<'v> {
    path: &'v Path,
    vocab: &'v Vocabulary,
    sop_instance_uid: String,
    patient_id: String,
    evidence: Vec<String>,
    /// [`LandmarkDoc::images`] so far.
    images: Vec<String>,
    /// [`LandmarkDoc::observers`] so far.
    observers: Vec<String>,
    points: Vec<RawPoint>,
    issues: Vec<QcIssue>,
}

impl Reader<'_> {
    fn issue(&mut self, severity: Severity, code: &'static str, message: String) {
        self.issues.push(
            QcIssue::file(self.path, severity, code, message)
                .with_ids(&self.sop_instance_uid, &self.patient_id),
        );
    }

    /// Depth-first, pre-order walk with an explicit stack (no recursion).
    fn walk<N: Attributes>(&mut self, obj: &N, depth_cap: usize) {
        let Some(root) = self.root_items(obj) else {
            return;
        };
        let mut stack = vec![Frame {
            items: root,
            parent: None,
            next: 0,
            container: true,
            observer: Rc::from(person_observer(root).unwrap_or_default()),
            several_points: std::cell::OnceCell::new(),
        }];
        let mut too_deep: Option<TooDeep> = None;

        while let Some(top) = stack.last_mut() {
            let items = top.items;
            let Some(item) = items.get(top.next) else {
                stack.pop();
                continue;
            };
            top.next += 1;
            let depth = stack.len();

            if depth > depth_cap {
                TooDeep::add(&mut too_deep, item, &stack);
                continue;
            }

            let value_type = upper(item, tags::VALUE_TYPE);
            match value_type.as_deref() {
                // A SCOORD's children are its SELECTED FROM image, read with the point.
                Some("SCOORD") => self.scoord(item, &stack),
                Some("SCOORD3D") => self.scoord3d(item, &stack),
                _ => {
                    let container = value_type.as_deref() == Some("CONTAINER");
                    if let Some(frame) = self.children(item, container, &stack) {
                        stack.push(frame);
                    }
                }
            }
        }

        if let Some(t) = too_deep {
            self.report_too_deep(&t, depth_cap);
        }
    }

    /// The content items of the document root; `None` (and an issue) when there are none
    /// to read.
    fn root_items<'a, N: Attributes>(&mut self, obj: &'a N) -> Option<&'a [N]> {
        let Some(vr) = obj.vr(tags::CONTENT_SEQUENCE) else {
            self.issue(
                Severity::Warning,
                codes::BAD_CONTENT_ITEM,
                "the SR has no ContentSequence at its root (content item 1), so it holds \
                 no landmarks"
                    .to_string(),
            );
            return None;
        };
        let items = obj.items(tags::CONTENT_SEQUENCE);
        if items.is_none() {
            self.issue(
                Severity::Error,
                codes::BAD_CONTENT_ITEM,
                format!(
                    "ContentSequence of the root (content item 1) is not a sequence \
                     (VR {}); no landmarks were read",
                    vr.to_string()
                ),
            );
        }
        items
    }

    /// The frame of the children of `item` (the item being visited, on top of `stack`),
    /// with the observer they inherit; `None` when it has none to visit (an issue when its
    /// ContentSequence is not a sequence).
    fn children<'a, N: Attributes>(
        &mut self,
        item: &'a N,
        container: bool,
        stack: &[Frame<'a, N>],
    ) -> Option<Frame<'a, N>> {
        let vr = item.vr(tags::CONTENT_SEQUENCE)?;
        let Some(children) = item.items(tags::CONTENT_SEQUENCE) else {
            let msg = format!(
                "ContentSequence of content item {} is not a sequence (VR {}); the items \
                 below it were not read",
                item_path(stack),
                vr.to_string()
            );
            self.issue(Severity::Error, codes::BAD_CONTENT_ITEM, msg);
            return None;
        };
        if children.is_empty() {
            return None;
        }
        let own_observer = if container {
            person_observer(children)
        } else {
            None
        };
        let observer = match own_observer {
            Some(name) => Rc::from(name),
            None => stack
                .last()
                .map_or_else(|| Rc::from(""), |f| Rc::clone(&f.observer)),
        };
        Some(Frame {
            items: children,
            parent: Some(item),
            next: 0,
            container,
            observer,
            several_points: std::cell::OnceCell::new(),
        })
    }

    /// The one `sr_too_deep` issue of the walk.
    fn report_too_deep(&mut self, t: &TooDeep, depth_cap: usize) {
        let lost = match t.coords {
            0 => "no SCOORD items were among them".to_string(),
            n => format!("{n} SCOORD/SCOORD3D item(s) among them were lost"),
        };
        self.issue(
            Severity::Error,
            codes::SR_TOO_DEEP,
            format!(
                "the content tree is {} levels deep, deeper than the cap of {depth_cap}: \
                 items below level {depth_cap} (from content item {} on) were not read \
                 and any points there are missing; {lost}",
                t.max_depth, t.first
            ),
        );
    }

    /// A SCOORD item: one landmark point when everything checks out, else one issue.
    fn scoord<N: Attributes>(&mut self, item: &N, stack: &[Frame<'_, N>]) {
        let naming = self.name_point(item, stack);
        // Described only when a message needs it (most points need none).
        let what = Described {
            naming: &naming,
            stack,
        };
        let Some(at) = self.point_position(item, &naming, &what) else {
            return;
        };
        let Some(landmark) = naming.landmark else {
            self.unnamed_point(&naming, &what);
            return;
        };
        let Some((image_uid, frame)) = self.point_image(item, &what) else {
            return;
        };
        if let Some((finding, tracking)) = naming.conflict {
            self.issue(
                Severity::Warning,
                codes::BAD_CONTENT_ITEM,
                format!(
                    "{what}: the Finding names it {finding} but the Tracking Identifier names \
                     it {tracking}; the Finding was used"
                ),
            );
        }

        let observer = stack.last().map_or("", |f| &*f.observer);
        let point = RawPoint {
            landmark,
            image: intern(&mut self.images, &image_uid),
            observer: intern(&mut self.observers, observer),
            frame,
            at,
        };
        self.points.push(point);
    }

    /// The (column, row) of a SCOORD point (`what` describes it in messages); `None`, and
    /// an issue, when its graphic is not a point or its data is unusable.
    fn point_position<N: Attributes>(
        &mut self,
        item: &N,
        naming: &Naming,
        what: &dyn fmt::Display,
    ) -> Option<Position> {
        // Cornerstone's ArrowAnnotate: the arrowhead is the landmark. Cornerstone 3D's tool
        // keeps the head in `points[0]` (`arrowFirst` defaults to true; the head is drawn
        // at `canvasCoordinates[0]`), and `@cornerstonejs/adapters` 5 writes the POLYLINE
        // as [head, tail]; dcmjs's own Cornerstone 3D adapter writes a one-vertex POLYLINE
        // of the head, its legacy adapter a POINT. (fixtures/interop/ohif/README.md cites
        // the sources.) An arrow without `arrowFirst` is written [tail, head]: nothing in
        // the SR tells it apart, so such files need the head moved first.
        let arrow = naming
            .tracking_text
            .as_deref()
            .is_some_and(|t| t.ends_with(ARROW_TOOL_SUFFIX));
        let graphic = upper(item, tags::GRAPHIC_TYPE);
        match graphic.as_deref() {
            Some("POINT") => {}
            Some("POLYLINE") if arrow => {}
            None => {
                self.issue(
                    Severity::Error,
                    codes::BAD_CONTENT_ITEM,
                    format!("{what} has no GraphicType; it was not read"),
                );
                return None;
            }
            Some(other) => {
                self.issue(
                    Severity::Warning,
                    codes::UNSUPPORTED_GRAPHIC,
                    format!(
                        "{what} has GraphicType {other}; only POINT is read as a landmark, so \
                         it was not used"
                    ),
                );
                return None;
            }
        }
        match graphic_point(item, graphic.as_deref() == Some("POLYLINE")) {
            Ok(p) => Some(p),
            Err(why) => {
                self.issue(
                    Severity::Error,
                    codes::BAD_CONTENT_ITEM,
                    format!("{what}: {why}; point skipped"),
                );
                None
            }
        }
    }

    /// The issue of a point that no rule names.
    fn unnamed_point(&mut self, naming: &Naming, what: &dyn fmt::Display) {
        let tried = if naming.tried.is_empty() {
            "it has no Finding, Tracking Identifier or concept name".to_string()
        } else {
            format!(
                "none of {} is a landmark in the vocabulary",
                naming
                    .tried
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        self.issue(
            Severity::Error,
            codes::UNNAMED_POINT,
            format!(
                "{what} has no landmark name: {tried}; point skipped (add a synonym to the \
                 pipeline vocabulary if it names a landmark)"
            ),
        );
    }

    /// The image (SOP Instance UID) and frame a SCOORD point lies on: its SELECTED FROM
    /// image, else the SR's only evidence image; `None`, and an issue, when neither.
    fn point_image<'a, N: Attributes>(
        &mut self,
        item: &'a N,
        what: &dyn fmt::Display,
    ) -> Option<(Cow<'a, str>, Option<u32>)> {
        match selected_image(item) {
            ImageRef::Found { uid, frame } => {
                let frame = frame.unwrap_or_else(|why| {
                    self.issue(
                        Severity::Warning,
                        codes::BAD_CONTENT_ITEM,
                        format!(
                            "{what}: ReferencedFrameNumber of its image {why}; the point \
                             is kept without a frame number"
                        ),
                    );
                    None
                });
                Some((uid, frame))
            }
            ImageRef::Broken(why) => {
                self.issue(
                    Severity::Error,
                    codes::BAD_CONTENT_ITEM,
                    format!("{what}: its SELECTED FROM image item {why}; point skipped"),
                );
                None
            }
            ImageRef::Missing => match self.evidence.as_slice() {
                [only] => Some((Cow::Owned(only.clone()), None)),
                ev => {
                    let msg = format!(
                        "{what} has no SELECTED FROM image item and the SR's evidence lists {} \
                         images (exactly one is needed to infer it); point skipped",
                        ev.len()
                    );
                    self.issue(Severity::Error, codes::NO_IMAGE_REFERENCE, msg);
                    None
                }
            },
        }
    }

    /// A SCOORD3D item: reported, never read.
    fn scoord3d<N: Attributes>(&mut self, item: &N, stack: &[Frame<'_, N>]) {
        let what = self
            .name_point(item, stack)
            .describe("SCOORD3D", &item_path(stack));
        self.issue(
            Severity::Warning,
            codes::SCOORD3D,
            format!(
                "{what} holds 3-D (patient space) coordinates; only 2-D SCOORD POINTs on an \
                 image are read, so it was not used"
            ),
        );
    }

    /// The landmark name of a SCOORD(3D) item (`landmarks.md` section 2): the first
    /// candidate, in rule order, that maps to a landmark; one that maps to none (a tool tag
    /// such as `Cornerstone3DTools@^0.1.0:Probe`) falls through to the next.
    ///
    /// 1. Finding (DCM 121071): its (scheme, value), then its meaning as text;
    /// 2. Tracking Identifier (DCM 112039);
    /// 3. Comment (DCM 121106);
    /// 4. Finding Site (SCT 363698007 / SRT G-C0E3): its meaning as text;
    /// 5. the SCOORD's own concept name, then that of the NUM it is INFERRED FROM.
    ///
    /// Candidates 1-4 come from the point's "group": the children of the nearest enclosing
    /// CONTAINER, plus the children of any non-container items between that container and
    /// the point, nearest first. A container holding several points (SCOORDs, or NUMs over
    /// SCOORDs) pairs each point with the name items just before it among its siblings
    /// (after the previous point), so one name is never given to every point.
    fn name_point<'a, N: Attributes>(&self, item: &'a N, stack: &[Frame<'a, N>]) -> Naming<'a> {
        let mut cand = Candidates::default();
        for frame in stack.iter().rev() {
            let siblings: &[N] = if frame.container {
                let at = frame.next.saturating_sub(1);
                let several = *frame
                    .several_points
                    .get_or_init(|| frame.items.iter().filter(|i| bears_point(*i)).count() > 1);
                if several {
                    let from = frame.items[..at]
                        .iter()
                        .rposition(bears_point)
                        .map_or(0, |p| p + 1);
                    &frame.items[from..at]
                } else {
                    frame.items
                }
            } else {
                frame.items
            };
            for it in siblings {
                cand.collect(it, self.vocab);
            }
            if frame.container {
                break;
            }
        }
        // 5. The SCOORD's own concept name, then the NUM's it is INFERRED FROM: only
        // looked at when rules 1-4 gave no landmark (the name would not be used, and what
        // it tried is only told when the point has no name).
        let named = cand.finding.is_some()
            || cand.tracking.is_some()
            || cand.comment.is_some()
            || cand.site.is_some();
        let parent = stack
            .last()
            .and_then(|f| f.parent)
            .filter(|p| !named && is(*p, tags::VALUE_TYPE, "NUM"));
        let own = (!named).then_some(item);
        for (what, it) in [("concept name", own), ("NUM concept name", parent)] {
            let Some(it) = it else { continue };
            if let Some(c) = first_code(it, tags::CONCEPT_NAME_CODE_SEQUENCE) {
                let lm = self
                    .vocab
                    .code(&c.scheme, &c.value)
                    .or_else(|| self.vocab.text(&c.value))
                    .or_else(|| self.vocab.text(&c.meaning));
                match lm {
                    Some(lm) => {
                        cand.own.get_or_insert(lm);
                    }
                    None => cand.tried.push(Tried::Code(what, c)),
                }
            }
        }
        let conflict = match (cand.finding, cand.tracking) {
            (Some(f), Some(t)) if f != t => Some((f, t)),
            _ => None,
        };
        Naming {
            landmark: cand
                .finding
                .or(cand.tracking)
                .or(cand.comment)
                .or(cand.site)
                .or(cand.own),
            tracking_text: cand.tracking_text,
            tried: cand.tried,
            conflict,
        }
    }
}

/// Whether a content item holds a point: a SCOORD, or an item (a NUM) with a SCOORD child.
fn bears_point<N: Attributes>(item: &N) -> bool {
    // One look-up of the value type for both names.
    let is_scoord = |i: &N| {
        text(i, tags::VALUE_TYPE)
            .is_some_and(|t| t.eq_ignore_ascii_case("SCOORD") || t.eq_ignore_ascii_case("SCOORD3D"))
    };
    is_scoord(item) || items(item, tags::CONTENT_SEQUENCE).iter().any(is_scoord)
}

/// The name candidates of one point, by rule (the first of each kind that maps).
#[derive(Default)]
struct Candidates<'a> {
    finding: Option<Landmark>,
    tracking: Option<Landmark>,
    comment: Option<Landmark>,
    site: Option<Landmark>,
    own: Option<Landmark>,
    /// The group's first Tracking Identifier text.
    tracking_text: Option<Cow<'a, str>>,
    /// Candidates that are not in the vocabulary, for the unnamed-point message.
    tried: Vec<Tried<'a>>,
}

/// A name candidate that is not in the vocabulary, described only when a message needs it
/// (most points need none).
enum Tried<'a> {
    /// "Finding (SCT, 123, "meaning")" and the like.
    Code(&'static str, Code<'a>),
    /// "Comment "text"" and the like.
    Text(&'static str, Cow<'a, str>),
}

impl fmt::Display for Tried<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tried::Code(what, c) => write!(f, "{what} {c}"),
            Tried::Text(what, t) => write!(f, "{what} {t:?}"),
        }
    }
}

impl<'a> Candidates<'a> {
    /// Takes what content item `it` offers as a name.
    fn collect<N: Attributes>(&mut self, it: &'a N, vocab: &Vocabulary) {
        match upper(it, tags::VALUE_TYPE).as_deref() {
            Some("CODE") if concept_is(it, FINDING) => {
                for code in codes_in(it, tags::CONCEPT_CODE_SEQUENCE) {
                    match vocab
                        .code(&code.scheme, &code.value)
                        .or_else(|| vocab.text(&code.meaning))
                    {
                        Some(lm) => {
                            self.finding.get_or_insert(lm);
                        }
                        None => self.tried.push(Tried::Code("Finding", code)),
                    }
                }
            }
            Some("CODE") if is_finding_site(it) => {
                for code in codes_in(it, tags::CONCEPT_CODE_SEQUENCE) {
                    match vocab.text(&code.meaning) {
                        Some(lm) => {
                            self.site.get_or_insert(lm);
                        }
                        None => self.tried.push(Tried::Code("Finding Site", code)),
                    }
                }
            }
            Some("TEXT") if concept_is(it, TRACKING_IDENTIFIER) => {
                let Some(t) = text(it, tags::TEXT_VALUE) else {
                    return;
                };
                match vocab.text(&t) {
                    Some(lm) => {
                        self.tracking.get_or_insert(lm);
                    }
                    None => self
                        .tried
                        .push(Tried::Text("Tracking Identifier", t.clone())),
                }
                self.tracking_text.get_or_insert(t);
            }
            Some("TEXT") if concept_is(it, COMMENT) => {
                let Some(t) = text(it, tags::TEXT_VALUE) else {
                    return;
                };
                match vocab.text(&t) {
                    Some(lm) => {
                        self.comment.get_or_insert(lm);
                    }
                    None => self.tried.push(Tried::Text("Comment", t)),
                }
            }
            _ => {}
        }
    }
}

/// Whether an item's concept name is Finding Site.
fn is_finding_site<N: Attributes>(item: &N) -> bool {
    first_code(item, tags::CONCEPT_NAME_CODE_SEQUENCE).is_some_and(|c| {
        FINDING_SITE
            .iter()
            .any(|(s, v)| c.scheme == *s && c.value == *v)
    })
}

/// "landmark L1_sup_ant (SCOORD at content item 1.5.3.4)" ([`Naming::describe`]) of the
/// SCOORD on top of `stack`, written only when printed.
struct Described<'a, 'f, N> {
    naming: &'a Naming<'f>,
    stack: &'a [Frame<'f, N>],
}

impl<N> fmt::Display for Described<'_, '_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.naming.describe("SCOORD", &item_path(self.stack)))
    }
}

/// What naming found for one point.
struct Naming<'a> {
    /// The landmark, when some rule gave one.
    landmark: Option<Landmark>,
    /// The group's first Tracking Identifier, for messages about unnamed points.
    tracking_text: Option<Cow<'a, str>>,
    /// Candidates that are not in the vocabulary, for the unnamed-point message.
    tried: Vec<Tried<'a>>,
    /// A Finding and a Tracking Identifier naming different landmarks.
    conflict: Option<(Landmark, Landmark)>,
}

impl Naming<'_> {
    /// "landmark L1_sup_ant (SCOORD at content item 1.5.3.4)" and the like.
    fn describe(&self, kind: &str, loc: &str) -> String {
        match (&self.landmark, &self.tracking_text) {
            (Some(lm), _) => format!("landmark {lm} ({kind} at content item {loc})"),
            (None, Some(t)) => format!("{kind} at content item {loc} (Tracking Identifier {t:?})"),
            (None, None) => format!("{kind} at content item {loc}"),
        }
    }
}

/// A coded concept as stored.
struct Code<'a> {
    scheme: Cow<'a, str>,
    value: Cow<'a, str>,
    meaning: Cow<'a, str>,
}

impl fmt::Display for Code<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {}, {:?})", self.scheme, self.value, self.meaning)
    }
}

/// The image a SCOORD is SELECTED FROM.
enum ImageRef<'a> {
    /// SOP Instance UID and frame (`Err` when ReferencedFrameNumber is unusable).
    Found {
        uid: Cow<'a, str>,
        frame: Result<Option<u32>, String>,
    },
    /// There is an IMAGE item but it names no image.
    Broken(String),
    /// No SELECTED FROM IMAGE item.
    Missing,
}

/// The first IMAGE child of `item` with relationship SELECTED FROM.
fn selected_image<N: Attributes>(item: &N) -> ImageRef<'_> {
    let Some(image) = items(item, tags::CONTENT_SEQUENCE).iter().find(|c| {
        is(*c, tags::VALUE_TYPE, "IMAGE") && is(*c, tags::RELATIONSHIP_TYPE, "SELECTED FROM")
    }) else {
        return ImageRef::Missing;
    };
    let Some(sop) = items(image, tags::REFERENCED_SOP_SEQUENCE).first() else {
        return ImageRef::Broken("has no ReferencedSOPSequence item".to_string());
    };
    let Some(uid) = text(sop, tags::REFERENCED_SOP_INSTANCE_UID) else {
        return ImageRef::Broken("has no ReferencedSOPInstanceUID".to_string());
    };
    let frame = match (
        sop.vr(tags::REFERENCED_FRAME_NUMBER),
        sop.value(tags::REFERENCED_FRAME_NUMBER),
    ) {
        (None, _) => Ok(None),
        (Some(_), Some(p)) => match p.to_multi_int::<i64>() {
            Ok(v) => match v.first() {
                None => Ok(None),
                Some(&n) => match u32::try_from(n) {
                    Ok(n) if n >= 1 => Ok(Some(n)),
                    _ => Err(format!("is {n}, not a frame number (1 or more)")),
                },
            },
            Err(_) => Err(format!("is not a number ({:?})", p.to_str())),
        },
        (Some(_), None) => Err(format!("is not a number ({:?})", "")),
    };
    ImageRef::Found { uid, frame }
}

/// GraphicData of a POINT: exactly (column, row), finite, stored as floats; with
/// `arrow`, the first vertex of an ArrowAnnotate POLYLINE of one or two vertices (its head).
fn graphic_point<N: Attributes>(item: &N, arrow: bool) -> Result<Position, String> {
    let Some(vr) = item.vr(tags::GRAPHIC_DATA) else {
        return Err("it has no GraphicData".to_string());
    };
    let value = item.value(tags::GRAPHIC_DATA);
    // FL values are kept as float32, as stored.
    let single = matches!(value.as_deref(), Some(PrimitiveValue::F32(_)));
    let values: Vec<f64> = match value.as_deref() {
        Some(PrimitiveValue::F32(v)) => v.iter().map(|&x| f64::from(x)).collect(),
        Some(PrimitiveValue::F64(v)) => v.to_vec(),
        Some(PrimitiveValue::Empty) => Vec::new(),
        _ => {
            return Err(format!(
                "its GraphicData has VR {} and is not stored as floating-point numbers (FL)",
                vr.to_string()
            ));
        }
    };
    let head = match values.as_slice() {
        &[col, row] => (col, row),
        &[col, row, _, _] if arrow => (col, row),
        v if arrow => {
            return Err(format!(
                "its arrow POLYLINE has {} values, expected 2 or 4 (head, then tail)",
                v.len()
            ));
        }
        v => {
            return Err(format!(
                "its GraphicData has {} values, expected 2 (column, row)",
                v.len()
            ));
        }
    };
    match head {
        // Narrowing back is exact: the values were float32 to begin with.
        (col, row) if col.is_finite() && row.is_finite() && single => {
            Ok(Position::Pixel32([col as f32, row as f32]))
        }
        (col, row) if col.is_finite() && row.is_finite() => Ok(Position::Pixel([col, row])),
        (col, row) => Err(format!(
            "its GraphicData ({col}, {row}) is not a finite coordinate pair"
        )),
    }
}

/// Evidence image UIDs, document order, without repeats or non-image documents.
fn evidence_images<N: Attributes>(obj: &N) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for seq in [
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        tags::PERTINENT_OTHER_EVIDENCE_SEQUENCE,
    ] {
        for study in items(obj, seq) {
            for series in items(study, tags::REFERENCED_SERIES_SEQUENCE) {
                for sop in items(series, tags::REFERENCED_SOP_SEQUENCE) {
                    let Some(uid) = text(sop, tags::REFERENCED_SOP_INSTANCE_UID) else {
                        continue;
                    };
                    let class = text(sop, tags::REFERENCED_SOP_CLASS_UID).unwrap_or_default();
                    if NON_IMAGE_CLASS_PREFIXES
                        .iter()
                        .any(|p| class.starts_with(p))
                    {
                        continue;
                    }
                    if seen.insert(uid.clone()) {
                        out.push(uid.into_owned());
                    }
                }
            }
        }
    }
    out
}

/// The first Person Observer Name among a container's own HAS OBS CONTEXT items;
/// `unknown^unknown` (dcmjs's placeholder) is no name.
fn person_observer<N: Attributes>(children: &[N]) -> Option<String> {
    children.iter().find_map(|c| {
        let is_name = is(c, tags::RELATIONSHIP_TYPE, "HAS OBS CONTEXT")
            && is(c, tags::VALUE_TYPE, "PNAME")
            && concept_is(c, PERSON_OBSERVER_NAME);
        if is_name {
            text(c, tags::PERSON_NAME)
                .filter(|n| !n.eq_ignore_ascii_case(UNKNOWN_OBSERVER))
                .map(Cow::into_owned)
        } else {
            None
        }
    })
}

/// Deepest level and number of SCOORD/SCOORD3D items in the subtree of `item` (at
/// `depth`), counted iteratively; like the main walk, it does not enter SCOORD items.
fn subtree_stats<N: Attributes>(item: &N, depth: usize) -> (usize, usize) {
    let mut max_depth = depth;
    let mut coords = 0;
    let mut todo = vec![(item, depth)];
    while let Some((it, d)) = todo.pop() {
        max_depth = max_depth.max(d);
        if matches!(
            upper(it, tags::VALUE_TYPE).as_deref(),
            Some("SCOORD" | "SCOORD3D")
        ) {
            // Its children belong to the point, as in the main walk.
            coords += 1;
            continue;
        }
        todo.extend(items(it, tags::CONTENT_SEQUENCE).iter().map(|c| (c, d + 1)));
    }
    (max_depth, coords)
}

/// The dsrdump-style position of the item being visited: `1.4.2`, shortened when deep.
fn item_path<N>(stack: &[Frame<'_, N>]) -> String {
    let part = |fs: &[Frame<'_, N>]| {
        fs.iter()
            .map(|f| f.next.to_string())
            .collect::<Vec<_>>()
            .join(".")
    };
    if stack.len() <= MAX_PATH_COMPONENTS {
        format!("1.{}", part(stack))
    } else {
        let half = MAX_PATH_COMPONENTS / 2;
        format!(
            "1.{}...{} (level {})",
            part(&stack[..half]),
            part(&stack[stack.len() - half..]),
            stack.len()
        )
    }
}

/// Whether an item's concept name is the DCM code `value`.
fn concept_is<N: Attributes>(item: &N, value: &str) -> bool {
    // `first_code(..)` compared on scheme and value, without reading the meaning.
    let Some(c) = items(item, tags::CONCEPT_NAME_CODE_SEQUENCE).first() else {
        return false;
    };
    text(c, tags::CODING_SCHEME_DESIGNATOR).as_deref() == Some(DCM)
        && text(c, tags::CODE_VALUE)
            .or_else(|| text(c, tags::LONG_CODE_VALUE))
            .or_else(|| text(c, tags::URN_CODE_VALUE))
            .as_deref()
            == Some(value)
}

/// The codes of a code sequence (CodeValue, else LongCodeValue, else URNCodeValue).
fn codes_in<N: Attributes>(item: &N, seq: Tag) -> impl Iterator<Item = Code<'_>> {
    items(item, seq).iter().map(code)
}

/// The first code of a code sequence (the concept name, for a concept name sequence).
fn first_code<N: Attributes>(item: &N, seq: Tag) -> Option<Code<'_>> {
    items(item, seq).first().map(code)
}

/// The code an item of a code sequence holds.
fn code<N: Attributes>(c: &N) -> Code<'_> {
    Code {
        scheme: text(c, tags::CODING_SCHEME_DESIGNATOR).unwrap_or_default(),
        value: text(c, tags::CODE_VALUE)
            .or_else(|| text(c, tags::LONG_CODE_VALUE))
            .or_else(|| text(c, tags::URN_CODE_VALUE))
            .unwrap_or_default(),
        meaning: text(c, tags::CODE_MEANING).unwrap_or_default(),
    }
}

/// The items of a sequence attribute; empty when absent or not a sequence.
fn items<N: Attributes>(obj: &N, tag: Tag) -> &[N] {
    obj.items(tag).unwrap_or(&[])
}

/// A string attribute, trimmed of padding; `None` when absent, empty or a sequence.
/// Borrowed from the value when it is a single string (the walk reads every item's
/// attributes several times, so it does not copy them).
fn text<N: Attributes>(obj: &N, tag: Tag) -> Option<Cow<'_, str>> {
    let t = match obj.text(tag)? {
        Cow::Borrowed(v) => Cow::Borrowed(trim_value(v)),
        Cow::Owned(v) => Cow::Owned(trim_value(&v).to_string()),
    };
    (!t.is_empty()).then_some(t)
}

/// Whether a code string (CS) attribute is `want` (upper case), in any case: `upper(..) ==
/// Some(want)` without making the upper-case copy.
fn is<N: Attributes>(obj: &N, tag: Tag, want: &str) -> bool {
    text(obj, tag).is_some_and(|t| t.eq_ignore_ascii_case(want))
}

/// A code string (CS) attribute in upper case, for robust enumerated-value matching.
fn upper<N: Attributes>(obj: &N, tag: Tag) -> Option<Cow<'_, str>> {
    text(obj, tag).map(|s| {
        if s.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(s.to_ascii_uppercase())
        } else {
            s
        }
    })
}

/// Strips the NUL and space padding DICOM values may carry at either end.
fn trim_value(s: &str) -> &str {
    // Most values have nothing to trim: both ends printable ASCII (no white space, no
    // NUL), checked on the bytes before any character is decoded.
    let printable = |b: Option<&u8>| b.is_some_and(|&c| c > b' ' && c < 0x7F);
    if printable(s.as_bytes().first()) && printable(s.as_bytes().last()) {
        return s;
    }
    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}
