//! The SR landmark reader (`plumbline_ingest::sr`) against files from another toolkit
//! (highdicom, checked with plain pydicom), against the synthetic cohort, and against small
//! SR trees built in memory, one per rule of `landmarks.md` section 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use plumbline_geometry::Landmark;
use plumbline_ingest::qc::codes;
use plumbline_ingest::records::{Position, RawPoint};
use plumbline_ingest::sr::{DEFAULT_DEPTH_CAP, LANDMARK_SR_CLASSES, is_landmark_sr_class, read_sr};
use plumbline_ingest::{LandmarkDoc, Severity, Vocabulary};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn lm(name: &str) -> Landmark {
    name.parse().unwrap()
}

fn issue_codes(doc: &LandmarkDoc) -> Vec<&'static str> {
    doc.issues.iter().map(|i| i.code).collect()
}

// ---------------------------------------------------------------------------------------
// Interop fixtures (highdicom SRs, expected output from plain pydicom)

/// (observer, image, name, col bits, row bits): exact, so any rounding fails.
type PointKey = (String, String, String, u64, u64);

/// The f64 bits of a JSON coordinate, which `make_expected.py` wrote as the exact value of
/// a float32. serde_json (without its `float_roundtrip` feature) may parse a long decimal
/// 1 ulp off; rounding to the nearest f32 recovers the stored value exactly.
fn f32_bits(v: &serde_json::Value) -> u64 {
    let x = v.as_f64().unwrap();
    let stored = x as f32;
    assert!(
        (f64::from(stored) - x).abs() <= x.abs() * 1e-15,
        "{x} is not a float32 value"
    );
    f64::from(stored).to_bits()
}

fn check_interop(name: &str) {
    let root = repo_root().join("fixtures/interop");
    let path = root.join(format!("sr/{name}.dcm"));
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join(format!("expected/{name}.json"))).unwrap(),
    )
    .unwrap();
    let obj = dicom_object::open_file(&path).unwrap();
    let doc = read_sr(&*obj, &path, &Vocabulary::default(), DEFAULT_DEPTH_CAP);

    assert_eq!(doc.path, path);
    assert_eq!(
        doc.sop_instance_uid,
        expected["sop_instance_uid"].as_str().unwrap()
    );
    assert_eq!(doc.patient_id, "P0001");
    assert_eq!(
        doc.study_instance_uid,
        "2.25.152555793938593236799078268314839125822"
    );
    let evidence: Vec<&str> = expected["evidence_image_uids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(doc.evidence, evidence, "{name}: evidence");
    assert!(doc.issues.is_empty(), "{name}: {:#?}", doc.issues);
    assert_eq!(expected["unnamed_points"], 0);
    assert_eq!(expected["unsupported_graphics"], 0);

    let mut want: Vec<PointKey> = expected["landmarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["observer"].as_str().unwrap_or("").to_string(),
                p["image_sop_uid"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
                f32_bits(&p["col"]),
                f32_bits(&p["row"]),
            )
        })
        .collect();
    let mut got: Vec<PointKey> = doc
        .points
        .iter()
        .map(|p| {
            (
                doc.observer(p).to_string(),
                doc.image_uid(p).to_string(),
                p.landmark.to_string(),
                cr(p).0.to_bits(),
                cr(p).1.to_bits(),
            )
        })
        .collect();
    want.sort();
    got.sort();
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len(), "{name}: number of points");
    let missing: Vec<_> = want.iter().filter(|p| !got.contains(p)).take(3).collect();
    let extra: Vec<_> = got.iter().filter(|p| !want.contains(p)).take(3).collect();
    assert!(
        got == want,
        "{name}: points differ; expected but not read: {missing:?}; read but not expected: {extra:?}"
    );
    assert_eq!(doc.path, path);
    for p in &doc.points {
        assert_eq!(p.frame, None);
    }
}

#[test]
fn interop_finding_codes() {
    check_interop("sr_finding_codes");
}

#[test]
fn interop_tracking_only() {
    check_interop("sr_tracking_only");
}

#[test]
fn interop_two_images() {
    check_interop("sr_two_images");
}

#[test]
fn interop_two_observers() {
    check_interop("sr_two_observers");
}

// ---------------------------------------------------------------------------------------
// Synthetic cohort

fn cohort_srs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![repo_root().join("fixtures/cohort-small/dicom")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().unwrap().to_string_lossy().starts_with("SR_") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn cohort_srs_yield_every_point_and_no_issue() {
    let srs = cohort_srs();
    assert!(srs.len() > 10, "found only {} SRs", srs.len());
    let vocab = Vocabulary::default();
    let mut total = 0;
    for path in &srs {
        let obj = dicom_object::open_file(path).unwrap();
        let doc = read_sr(&*obj, path, &vocab, DEFAULT_DEPTH_CAP);
        assert!(
            doc.issues.is_empty(),
            "{}: {:#?}",
            path.display(),
            doc.issues
        );
        assert!(!doc.sop_instance_uid.is_empty() && !doc.patient_id.is_empty());
        assert!(
            (1..=2).contains(&doc.evidence.len()),
            "{}: evidence {:?}",
            path.display(),
            doc.evidence
        );
        let mut per_image: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &doc.points {
            let uid = doc.image_uid(p).to_string();
            assert!(doc.evidence.contains(&uid), "{}", path.display());
            assert!(
                doc.observer(p).starts_with("Reader^"),
                "{}",
                doc.observer(p)
            );
            assert!(cr(p).0.is_finite() && cr(p).1.is_finite());
            *per_image.entry(doc.image_uid(p)).or_default() += 1;
        }
        assert_eq!(per_image.len(), doc.evidence.len(), "{}", path.display());
        for (image, n) in per_image {
            assert!(
                (87..=90).contains(&n),
                "{}: {n} points on {image}",
                path.display()
            );
        }
        total += doc.points.len();
    }
    assert_eq!(total, 7907);
}

// ---------------------------------------------------------------------------------------
// SR trees built in memory

const IMG1: &str = "1.2.826.0.1.3680043.8.498.101";
const IMG2: &str = "1.2.826.0.1.3680043.8.498.102";
const DX_CLASS: &str = "1.2.840.10008.5.1.4.1.1.1.1";
const SR_UID: &str = "1.2.826.0.1.3680043.8.498.900";

type Concept<'a> = (&'a str, &'a str, &'a str);

const IMAGE_REGION: Concept = ("111030", "DCM", "Image Region");
const MEASUREMENT_GROUP: Concept = ("125007", "DCM", "Measurement Group");

fn put_str(o: &mut InMemDicomObject, tag: Tag, vr: VR, s: &str) {
    o.put(DataElement::new(tag, vr, PrimitiveValue::from(s)));
}

fn put_seq(o: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    o.put(DataElement::new(
        tag,
        VR::SQ,
        DataSetSequence::new(items, Length::UNDEFINED),
    ));
}

fn code((value, scheme, meaning): Concept) -> InMemDicomObject {
    let mut c = InMemDicomObject::new_empty();
    put_str(&mut c, tags::CODE_VALUE, VR::SH, value);
    put_str(&mut c, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_str(&mut c, tags::CODE_MEANING, VR::LO, meaning);
    c
}

fn item(relationship: &str, value_type: &str, name: Option<Concept>) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::RELATIONSHIP_TYPE, VR::CS, relationship);
    put_str(&mut it, tags::VALUE_TYPE, VR::CS, value_type);
    if let Some(name) = name {
        put_seq(&mut it, tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code(name)]);
    }
    it
}

fn with_children(mut it: InMemDicomObject, children: Vec<InMemDicomObject>) -> InMemDicomObject {
    put_seq(&mut it, tags::CONTENT_SEQUENCE, children);
    it
}

fn container(name: Concept, children: Vec<InMemDicomObject>) -> InMemDicomObject {
    with_children(item("CONTAINS", "CONTAINER", Some(name)), children)
}

fn group(children: Vec<InMemDicomObject>) -> InMemDicomObject {
    container(MEASUREMENT_GROUP, children)
}

/// A Finding (DCM 121071) CODE item.
fn finding(value: &str, scheme: &str) -> InMemDicomObject {
    let mut it = item("CONTAINS", "CODE", Some(("121071", "DCM", "Finding")));
    put_seq(
        &mut it,
        tags::CONCEPT_CODE_SEQUENCE,
        vec![code((value, scheme, "some meaning"))],
    );
    it
}

/// A Tracking Identifier (DCM 112039) TEXT item.
fn tracking(text: &str) -> InMemDicomObject {
    let mut it = item(
        "HAS OBS CONTEXT",
        "TEXT",
        Some(("112039", "DCM", "Tracking Identifier")),
    );
    put_str(&mut it, tags::TEXT_VALUE, VR::UT, text);
    it
}

/// A Person Observer Name (DCM 121008) PNAME item.
fn observer(name: &str) -> InMemDicomObject {
    let mut it = item(
        "HAS OBS CONTEXT",
        "PNAME",
        Some(("121008", "DCM", "Person Observer Name")),
    );
    put_str(&mut it, tags::PERSON_NAME, VR::PN, name);
    it
}

/// An IMAGE item SELECTED FROM `uid`, optionally with a ReferencedFrameNumber.
fn image(uid: &str, frame: Option<&str>) -> InMemDicomObject {
    let mut sop = InMemDicomObject::new_empty();
    put_str(&mut sop, tags::REFERENCED_SOP_CLASS_UID, VR::UI, DX_CLASS);
    put_str(&mut sop, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, uid);
    if let Some(f) = frame {
        put_str(&mut sop, tags::REFERENCED_FRAME_NUMBER, VR::IS, f);
    }
    let mut it = item("SELECTED FROM", "IMAGE", None);
    put_seq(&mut it, tags::REFERENCED_SOP_SEQUENCE, vec![sop]);
    it
}

/// A SCOORD item of any graphic type; `image` adds its SELECTED FROM child.
fn scoord(
    name: Option<Concept>,
    graphic_type: &str,
    data: &[f32],
    image_uid: Option<&str>,
) -> InMemDicomObject {
    let mut it = item("CONTAINS", "SCOORD", name);
    put_str(&mut it, tags::GRAPHIC_TYPE, VR::CS, graphic_type);
    it.put(DataElement::new(
        tags::GRAPHIC_DATA,
        VR::FL,
        PrimitiveValue::F32(data.iter().copied().collect()),
    ));
    match image_uid {
        Some(uid) => with_children(it, vec![image(uid, None)]),
        None => it,
    }
}

/// An Image Region SCOORD POINT on IMG1.
fn point(col: f32, row: f32) -> InMemDicomObject {
    scoord(Some(IMAGE_REGION), "POINT", &[col, row], Some(IMG1))
}

/// A Comprehensive SR whose root holds `content` and whose evidence lists `evidence`.
fn sr(content: Vec<InMemDicomObject>, evidence: &[&str]) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put_str(&mut o, tags::SOP_CLASS_UID, VR::UI, LANDMARK_SR_CLASSES[0]);
    put_str(&mut o, tags::SOP_INSTANCE_UID, VR::UI, SR_UID);
    put_str(&mut o, tags::PATIENT_ID, VR::LO, "PX");
    put_str(
        &mut o,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.8.498.7",
    );
    if !evidence.is_empty() {
        put_seq(
            &mut o,
            tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
            vec![evidence_study(evidence, DX_CLASS)],
        );
    }
    put_str(&mut o, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    put_seq(
        &mut o,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code(("126000", "DCM", "Imaging Measurement Report"))],
    );
    put_seq(&mut o, tags::CONTENT_SEQUENCE, content);
    o
}

/// One evidence study item listing `uids` of SOP class `class`.
fn evidence_study(uids: &[&str], class: &str) -> InMemDicomObject {
    let sops = uids
        .iter()
        .map(|uid| {
            let mut s = InMemDicomObject::new_empty();
            put_str(&mut s, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class);
            put_str(&mut s, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, uid);
            s
        })
        .collect();
    let mut series = InMemDicomObject::new_empty();
    put_seq(&mut series, tags::REFERENCED_SOP_SEQUENCE, sops);
    let mut study = InMemDicomObject::new_empty();
    put_seq(&mut study, tags::REFERENCED_SERIES_SEQUENCE, vec![series]);
    study
}

/// Column and row of a point given in pixels.
fn cr(p: &RawPoint) -> (f64, f64) {
    p.pixel().expect("a point in pixels")
}

fn read(obj: &InMemDicomObject) -> LandmarkDoc {
    read_with(obj, &Vocabulary::default(), DEFAULT_DEPTH_CAP)
}

/// Reads the SR object `obj` with the SR reader, and checks that the stream reader gives
/// the same document from the file dicom-rs writes of it (explicit VR little endian).
fn read_with(obj: &InMemDicomObject, vocab: &Vocabulary, cap: usize) -> LandmarkDoc {
    let doc = read_sr(obj, Path::new("mem/sr.dcm"), vocab, cap);
    // A tree nested deeper than the structure limits is refused before any reading (the
    // precheck tests cover that); every other one must read alike from a file.
    let limits = plumbline_ingest::precheck::Limits::for_depth_cap(cap);
    if nesting(obj) <= limits.max_nesting {
        let streamed = through_a_file(obj, vocab, cap);
        assert_eq!(format!("{streamed:?}"), format!("{doc:?}"));
    }
    for i in &doc.issues {
        assert_eq!(i.path, Path::new("mem/sr.dcm"));
        assert_eq!(i.sop_instance_uid, SR_UID);
        assert_eq!(i.patient_id, "PX");
        assert!(!i.message.is_empty());
    }
    doc
}

/// How deep sequences and items nest in `obj` (a sequence inside an item inside a
/// sequence is 3), counted without recursion.
fn nesting(obj: &InMemDicomObject) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(obj, 0usize)];
    while let Some((o, d)) = todo.pop() {
        deepest = deepest.max(d);
        for el in o.iter() {
            for item in el.items().unwrap_or(&[]) {
                todo.push((item, d + 2));
            }
        }
    }
    deepest
}

/// `obj` written to a file by dicom-rs, read back by the stream reader and the SR reader.
fn through_a_file(obj: &InMemDicomObject, vocab: &Vocabulary, cap: usize) -> LandmarkDoc {
    use dicom_object::meta::FileMetaTableBuilder;
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("plumbline-sr-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{n}.dcm"));
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(uids::COMPREHENSIVE_SR_STORAGE)
        .media_storage_sop_instance_uid(SR_UID)
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN);
    // dicom-rs writes nested sequences recursively: a thread with room for deep trees.
    let (obj, to) = (obj.clone(), file.clone());
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || obj.with_meta(meta).unwrap().write_to_file(&to).unwrap())
        .unwrap()
        .join()
        .unwrap();
    let limits = plumbline_ingest::precheck::Limits::for_depth_cap(cap);
    let header = plumbline_ingest::dataset::read_file(&file, &limits, None)
        .map_err(|r| r.error)
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let tree = header.store.tree();
    read_sr(&tree.root(), Path::new("mem/sr.dcm"), vocab, cap)
}

/// `leaf` wrapped in `levels` containers, built iteratively; placed in the root's
/// ContentSequence, `leaf` is at level `levels + 1`.
fn nest(leaf: InMemDicomObject, levels: usize) -> InMemDicomObject {
    let mut node = leaf;
    for _ in 0..levels {
        node = container(("111028", "DCM", "Image Library"), vec![node]);
    }
    node
}

/// Drops a deep tree one level at a time: the derived drop recurses once per level.
fn drop_iteratively(root: InMemDicomObject) {
    let mut todo = vec![root];
    while let Some(mut o) = todo.pop() {
        if let Some(el) = o.take(tags::CONTENT_SEQUENCE)
            && let Some(children) = el.into_value().into_items()
        {
            todo.extend(children);
        }
    }
}

#[test]
fn a_plain_measurement_group_gives_its_point() {
    let obj = sr(
        vec![
            observer("Reader^One"),
            container(
                ("126010", "DCM", "Imaging Measurements"),
                vec![group(vec![
                    tracking("L1_sup_ant"),
                    finding("L1_sup_ant", "99SPINE"),
                    point(12.25, 7.125),
                ])],
            ),
        ],
        &[IMG1],
    );
    let doc = read(&obj);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    assert_eq!(doc.sop_instance_uid, SR_UID);
    assert_eq!(doc.patient_id, "PX");
    assert_eq!(doc.study_instance_uid, "1.2.826.0.1.3680043.8.498.7");
    assert_eq!(doc.evidence, [IMG1]);
    assert_eq!(doc.points.len(), 1);
    let p = &doc.points[0];
    assert_eq!(p.landmark, lm("L1_sup_ant"));
    assert_eq!(cr(p), (12.25, 7.125));
    assert_eq!(doc.image_uid(p), IMG1);
    assert_eq!(p.frame, None);
    assert_eq!(doc.observer(p), "Reader^One");
    assert_eq!(doc.sop_instance_uid, SR_UID);
}

#[test]
fn coordinates_are_the_stored_float32_widened_exactly() {
    let (col, row) = (1234.567_f32, 0.1_f32);
    let obj = sr(
        vec![group(vec![finding("FH_left", "99SPINE"), point(col, row)])],
        &[],
    );
    let doc = read(&obj);
    assert_eq!(doc.points[0].at, Position::Pixel32([col, row]));
    assert_eq!(cr(&doc.points[0]), (f64::from(col), f64::from(row)));
    assert_ne!(cr(&doc.points[0]).1, 0.1_f64); // not re-rounded through decimal
}

#[test]
fn a_200_deep_tree_reports_once_and_keeps_the_points_above_the_cap() {
    let deep = |levels: usize, name: &str| {
        nest(
            group(vec![finding(name, "99SPINE"), point(1.0, 2.0)]),
            levels,
        )
    };
    // The SCOORDs sit one level below their group: levels 200 and 100.
    let build = || {
        sr(
            vec![
                observer("Reader^Deep"),
                group(vec![finding("S1_sup_post", "99SPINE"), point(5.0, 6.0)]),
                deep(198, "L5_inf_post"),
                deep(98, "L4_inf_post"),
            ],
            &[IMG1],
        )
    };
    let obj = build();

    let doc = read(&obj);
    assert_eq!(doc.points.len(), 1);
    assert_eq!(doc.points[0].landmark, lm("S1_sup_post"));
    assert_eq!(doc.observer(&doc.points[0]), "Reader^Deep");
    assert_eq!(issue_codes(&doc), [codes::SR_TOO_DEEP]);
    let issue = &doc.issues[0];
    assert_eq!(issue.severity, Severity::Error);
    assert!(
        issue.message.contains("200 levels deep"),
        "{}",
        issue.message
    );
    assert!(issue.message.contains("cap of 64"), "{}", issue.message);
    assert!(issue.message.contains("2 SCOORD"), "{}", issue.message);

    // A cap at the deepest point's level reads everything.
    let doc = read_with(&obj, &Vocabulary::default(), 200);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    let names: Vec<String> = doc.points.iter().map(|p| p.landmark.to_string()).collect();
    assert_eq!(names, ["S1_sup_post", "L5_inf_post", "L4_inf_post"]);
    assert!(doc.points.iter().all(|p| doc.observer(p) == "Reader^Deep"));

    // One level less loses exactly the deepest point.
    let doc = read_with(&obj, &Vocabulary::default(), 199);
    assert_eq!(doc.points.len(), 2);
    assert_eq!(issue_codes(&doc), [codes::SR_TOO_DEEP]);
    assert!(
        doc.issues[0].message.contains("1 SCOORD"),
        "{}",
        doc.issues[0].message
    );
}

#[test]
fn a_10000_deep_tree_neither_overflows_nor_hides_the_cap() {
    const LEVELS: usize = 10_000;
    let obj = sr(
        vec![
            observer("Reader^Deep"),
            group(vec![finding("T4_sup_ant", "99SPINE"), point(3.0, 4.0)]),
            // group at level LEVELS - 1, its SCOORD at LEVELS.
            nest(
                group(vec![finding("T12_inf_ant", "99SPINE"), point(1.0, 2.0)]),
                LEVELS - 2,
            ),
        ],
        &[IMG1],
    );

    let doc = read(&obj);
    assert_eq!(doc.points.len(), 1);
    assert_eq!(doc.points[0].landmark, lm("T4_sup_ant"));
    assert_eq!(issue_codes(&doc), [codes::SR_TOO_DEEP]);
    assert!(
        doc.issues[0].message.contains("10000 levels deep"),
        "{}",
        doc.issues[0].message
    );

    // Without a cap the (iterative) walk reaches the bottom.
    let doc = read_with(&obj, &Vocabulary::default(), usize::MAX);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    assert_eq!(doc.points.len(), 2);
    assert_eq!(doc.points[1].landmark, lm("T12_inf_ant"));
    assert_eq!(doc.observer(&doc.points[1]), "Reader^Deep");

    drop_iteratively(obj);
}

#[test]
fn a_scoord3d_is_reported_not_dropped() {
    let mut s3 = item("CONTAINS", "SCOORD3D", Some(IMAGE_REGION));
    put_str(&mut s3, tags::GRAPHIC_TYPE, VR::CS, "POINT");
    s3.put(DataElement::new(
        tags::GRAPHIC_DATA,
        VR::FL,
        PrimitiveValue::from([1.0_f32, 2.0, 3.0]),
    ));
    put_str(
        &mut s3,
        tags::REFERENCED_FRAME_OF_REFERENCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.8.498.55",
    );
    let obj = sr(
        vec![group(vec![finding("L3_centroid", "99SPINE"), s3])],
        &[IMG1],
    );
    let doc = read(&obj);
    assert!(doc.points.is_empty());
    assert_eq!(issue_codes(&doc), [codes::SCOORD3D]);
    assert_eq!(doc.issues[0].severity, Severity::Warning);
    let msg = &doc.issues[0].message;
    assert!(
        msg.contains("L3_centroid") && msg.contains("content item 1.1.2"),
        "{msg}"
    );
}

#[test]
fn a_polyline_is_an_unsupported_graphic() {
    let obj = sr(
        vec![group(vec![
            tracking("L2_sup_ant"),
            scoord(
                Some(IMAGE_REGION),
                "POLYLINE",
                &[1.0, 2.0, 3.0, 4.0],
                Some(IMG1),
            ),
        ])],
        &[IMG1],
    );
    let doc = read(&obj);
    assert!(doc.points.is_empty());
    assert_eq!(issue_codes(&doc), [codes::UNSUPPORTED_GRAPHIC]);
    assert_eq!(doc.issues[0].severity, Severity::Warning);
    let msg = &doc.issues[0].message;
    assert!(
        msg.contains("POLYLINE") && msg.contains("L2_sup_ant"),
        "{msg}"
    );
}

#[test]
fn a_point_without_a_name_is_reported_and_skipped() {
    let obj = sr(
        vec![
            group(vec![tracking("lesion 7"), point(1.0, 2.0)]),
            scoord(None, "POINT", &[3.0, 4.0], Some(IMG1)),
            group(vec![finding("L1_sup_ant", "99SPINE"), point(5.0, 6.0)]),
        ],
        &[IMG1],
    );
    let doc = read(&obj);
    assert_eq!(doc.points.len(), 1);
    assert_eq!(doc.points[0].landmark, lm("L1_sup_ant"));
    assert_eq!(
        issue_codes(&doc),
        [codes::UNNAMED_POINT, codes::UNNAMED_POINT]
    );
    assert!(doc.issues.iter().all(|i| i.severity == Severity::Error));
    let first = &doc.issues[0].message;
    assert!(first.contains("content item 1.1.2"), "{first}");
    assert!(
        first.contains("\"lesion 7\"") && first.contains("Image Region"),
        "{first}"
    );
    let second = &doc.issues[1].message;
    assert!(
        second.contains("content item 1.2") && second.contains("no Finding"),
        "{second}"
    );
}

#[test]
fn an_unknown_finding_falls_through_to_a_canonical_tracking_identifier() {
    let obj = sr(
        vec![group(vec![
            finding("123456", "SCT"),
            tracking("S1_sup_ant"),
            point(1.0, 2.0),
        ])],
        &[IMG1],
    );
    let doc = read(&obj);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    assert_eq!(doc.points[0].landmark, lm("S1_sup_ant"));
}

#[test]
fn synonyms_from_the_vocabulary_name_points() {
    let mut vocab = Vocabulary::default();
    vocab.add_text("Sacral plateau posterior", lm("S1_sup_post"));
    vocab.add_code("SCT", "999001", lm("FH_right"));
    let obj = sr(
        vec![
            group(vec![tracking("Sacral plateau posterior"), point(1.0, 2.0)]),
            group(vec![
                tracking("not a landmark"),
                finding("999001", "SCT"),
                point(3.0, 4.0),
            ]),
        ],
        &[IMG1],
    );
    let doc = read_with(&obj, &vocab, DEFAULT_DEPTH_CAP);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    let names: Vec<Landmark> = doc.points.iter().map(|p| p.landmark).collect();
    assert_eq!(names, [lm("S1_sup_post"), lm("FH_right")]);
    // Without the synonyms both points are unnamed.
    let doc = read(&obj);
    assert!(doc.points.is_empty());
    assert_eq!(
        issue_codes(&doc),
        [codes::UNNAMED_POINT, codes::UNNAMED_POINT]
    );
}

#[test]
fn the_scoords_own_concept_name_is_the_last_resort() {
    let obj = sr(
        vec![
            // code value in 99SPINE
            scoord(
                Some(("L2_centroid", "99SPINE", "L2 centre")),
                "POINT",
                &[1.0, 2.0],
                Some(IMG1),
            ),
            // canonical code value in another scheme: through vocab.text(value)
            scoord(
                Some(("L3_centroid", "99LOCAL", "whatever")),
                "POINT",
                &[3.0, 4.0],
                Some(IMG1),
            ),
            // only the meaning is canonical
            scoord(
                Some(("X1", "99LOCAL", "L4_centroid")),
                "POINT",
                &[5.0, 6.0],
                Some(IMG1),
            ),
            // a non-canonical Tracking Identifier falls through to the concept name
            group(vec![
                tracking("vertebra 5"),
                scoord(
                    Some(("L5_centroid", "99SPINE", "L5 centre")),
                    "POINT",
                    &[7.0, 8.0],
                    Some(IMG1),
                ),
            ]),
        ],
        &[IMG1],
    );
    let doc = read(&obj);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    let names: Vec<String> = doc.points.iter().map(|p| p.landmark.to_string()).collect();
    assert_eq!(
        names,
        ["L2_centroid", "L3_centroid", "L4_centroid", "L5_centroid"]
    );
}

#[test]
fn the_finding_wins_over_a_disagreeing_tracking_identifier() {
    let obj = sr(
        vec![group(vec![
            tracking("L1_inf_ant"),
            finding("L1_inf_post", "99SPINE"),
            point(1.0, 2.0),
        ])],
        &[IMG1],
    );
    let doc = read(&obj);
    assert_eq!(doc.points.len(), 1);
    assert_eq!(doc.points[0].landmark, lm("L1_inf_post"));
    assert_eq!(issue_codes(&doc), [codes::BAD_CONTENT_ITEM]);
    assert_eq!(doc.issues[0].severity, Severity::Warning);
    assert!(
        doc.issues[0].message.contains("L1_inf_ant"),
        "{}",
        doc.issues[0].message
    );
}

#[test]
fn the_group_is_the_nearest_container() {
    // A NUM between the group and the SCOORD does not hide the group's Finding; a nested
    // group names its own point and the outer Finding does not leak into it.
    let num = with_children(
        item("CONTAINS", "NUM", Some(("121206", "DCM", "Distance"))),
        vec![{
            let mut s = point(1.0, 2.0);
            put_str(&mut s, tags::RELATIONSHIP_TYPE, VR::CS, "INFERRED FROM");
            s
        }],
    );
    let obj = sr(
        vec![group(vec![
            finding("T8_centroid", "99SPINE"),
            num,
            group(vec![tracking("T9_centroid"), point(3.0, 4.0)]),
            group(vec![tracking("something else"), point(5.0, 6.0)]),
        ])],
        &[IMG1],
    );
    let doc = read(&obj);
    let names: Vec<String> = doc.points.iter().map(|p| p.landmark.to_string()).collect();
    assert_eq!(names, ["T8_centroid", "T9_centroid"]);
    assert_eq!(issue_codes(&doc), [codes::UNNAMED_POINT]);
    assert!(
        doc.issues[0].message.contains("content item 1.1.4.2"),
        "{}",
        doc.issues[0].message
    );
}

#[test]
fn without_selected_from_the_only_evidence_image_is_used() {
    let content = || {
        vec![group(vec![
            finding("C7_centroid", "99SPINE"),
            scoord(Some(IMAGE_REGION), "POINT", &[1.0, 2.0], None),
        ])]
    };
    let doc = read(&sr(content(), &[IMG2]));
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    assert_eq!(doc.image_uid(&doc.points[0]), IMG2);

    // An SR listed in the evidence is not an image.
    let mut obj = sr(content(), &[IMG2]);
    put_seq(
        &mut obj,
        tags::PERTINENT_OTHER_EVIDENCE_SEQUENCE,
        vec![evidence_study(
            &["1.2.826.0.1.3680043.8.498.77"],
            LANDMARK_SR_CLASSES[0],
        )],
    );
    let doc = read(&obj);
    assert_eq!(doc.evidence, [IMG2]);
    assert_eq!(doc.image_uid(&doc.points[0]), IMG2);
}

#[test]
fn without_selected_from_and_two_evidence_images_the_point_is_skipped() {
    let obj = sr(
        vec![group(vec![
            finding("C7_centroid", "99SPINE"),
            scoord(Some(IMAGE_REGION), "POINT", &[1.0, 2.0], None),
        ])],
        &[IMG1, IMG2],
    );
    let doc = read(&obj);
    assert!(doc.points.is_empty());
    assert_eq!(issue_codes(&doc), [codes::NO_IMAGE_REFERENCE]);
    assert_eq!(doc.issues[0].severity, Severity::Error);
    let msg = &doc.issues[0].message;
    assert!(
        msg.contains("C7_centroid") && msg.contains("2 images"),
        "{msg}"
    );
}

#[test]
fn evidence_merges_both_sequences_in_order_without_repeats() {
    let mut obj = sr(vec![], &[IMG2, IMG1, IMG2]);
    put_seq(
        &mut obj,
        tags::PERTINENT_OTHER_EVIDENCE_SEQUENCE,
        vec![evidence_study(
            &[IMG1, "1.2.826.0.1.3680043.8.498.103"],
            DX_CLASS,
        )],
    );
    let doc = read(&obj);
    assert_eq!(doc.evidence, [IMG2, IMG1, "1.2.826.0.1.3680043.8.498.103"]);
}

#[test]
fn observers_in_measurement_groups_override_the_document() {
    let obj = sr(
        vec![
            observer("Root^Reader"),
            container(
                ("126010", "DCM", "Imaging Measurements"),
                vec![
                    group(vec![
                        tracking("L1_centroid"),
                        observer("Reader^Alpha"),
                        point(1.0, 2.0),
                    ]),
                    group(vec![
                        tracking("L1_centroid"),
                        observer("Reader^Beta"),
                        point(1.5, 2.5),
                    ]),
                    group(vec![tracking("L1_centroid"), point(1.25, 2.25)]),
                ],
            ),
        ],
        &[IMG1],
    );
    let doc = read(&obj);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    let observers: Vec<&str> = doc.points.iter().map(|p| doc.observer(p)).collect();
    assert_eq!(observers, ["Reader^Alpha", "Reader^Beta", "Root^Reader"]);

    // No observer anywhere: empty string.
    let obj = sr(
        vec![group(vec![tracking("L1_centroid"), point(1.0, 2.0)])],
        &[IMG1],
    );
    let doc = read(&obj);
    assert_eq!(doc.observer(&doc.points[0]), "");
}

#[test]
fn landmark_sr_classes() {
    assert!(is_landmark_sr_class("1.2.840.10008.5.1.4.1.1.88.33"));
    assert!(is_landmark_sr_class("1.2.840.10008.5.1.4.1.1.88.22"));
    assert!(is_landmark_sr_class("1.2.840.10008.5.1.4.1.1.88.34"));
    assert!(is_landmark_sr_class("1.2.840.10008.5.1.4.1.1.88.34\0"));
    assert!(!is_landmark_sr_class("1.2.840.10008.5.1.4.1.1.88.11")); // Basic Text SR
    assert!(!is_landmark_sr_class("1.2.840.10008.5.1.4.1.1.88.3"));
    assert!(!is_landmark_sr_class("1.2.840.10008.5.1.4.1.1.1.1"));
    assert!(!is_landmark_sr_class(""));
}

#[test]
fn graphic_data_must_be_two_finite_floats() {
    let bad_vr = {
        let mut s = point(0.0, 0.0);
        put_str(&mut s, tags::GRAPHIC_DATA, VR::DS, "1.0\\2.0");
        s
    };
    let missing = {
        let mut s = point(0.0, 0.0);
        s.take(tags::GRAPHIC_DATA);
        s
    };
    let obj = sr(
        vec![
            group(vec![
                finding("L1_sup_post", "99SPINE"),
                scoord(Some(IMAGE_REGION), "POINT", &[1.0, 2.0, 3.0], Some(IMG1)),
            ]),
            group(vec![
                finding("L2_sup_post", "99SPINE"),
                point(f32::NAN, 2.0),
            ]),
            group(vec![finding("L3_sup_post", "99SPINE"), bad_vr]),
            group(vec![finding("L4_sup_post", "99SPINE"), missing]),
            group(vec![
                finding("L5_sup_post", "99SPINE"),
                scoord(Some(IMAGE_REGION), "POINT", &[], Some(IMG1)),
            ]),
        ],
        &[IMG1],
    );
    let doc = read(&obj);
    assert!(doc.points.is_empty(), "{:?}", doc.points);
    assert_eq!(issue_codes(&doc), [codes::BAD_CONTENT_ITEM; 5]);
    assert!(doc.issues.iter().all(|i| i.severity == Severity::Error));
    let msgs: Vec<&str> = doc.issues.iter().map(|i| i.message.as_str()).collect();
    assert!(
        msgs[0].contains("L1_sup_post") && msgs[0].contains("3 values"),
        "{}",
        msgs[0]
    );
    assert!(msgs[1].contains("not a finite"), "{}", msgs[1]);
    assert!(msgs[2].contains("VR DS"), "{}", msgs[2]);
    assert!(msgs[3].contains("no GraphicData"), "{}", msgs[3]);
    assert!(msgs[4].contains("0 values"), "{}", msgs[4]);
}

#[test]
fn frame_numbers_are_read_and_bad_ones_only_warn() {
    let on_frame = |frame: &str| {
        let mut s = scoord(Some(IMAGE_REGION), "POINT", &[1.0, 2.0], None);
        put_seq(
            &mut s,
            tags::CONTENT_SEQUENCE,
            vec![image(IMG1, Some(frame))],
        );
        s
    };
    let obj = sr(
        vec![
            group(vec![finding("L1_centroid", "99SPINE"), on_frame("3")]),
            group(vec![finding("L2_centroid", "99SPINE"), on_frame("abc")]),
            group(vec![finding("L3_centroid", "99SPINE"), on_frame("0")]),
        ],
        &[IMG1, IMG2],
    );
    let doc = read(&obj);
    let frames: Vec<Option<u32>> = doc.points.iter().map(|p| p.frame).collect();
    assert_eq!(frames, [Some(3), None, None]);
    assert_eq!(issue_codes(&doc), [codes::BAD_CONTENT_ITEM; 2]);
    assert!(doc.issues.iter().all(|i| i.severity == Severity::Warning));
}

#[test]
fn malformed_trees_give_issues_not_panics() {
    // IMAGE item without a ReferencedSOPSequence, and one without a UID.
    let no_sop = {
        let mut s = scoord(Some(IMAGE_REGION), "POINT", &[1.0, 2.0], None);
        put_seq(
            &mut s,
            tags::CONTENT_SEQUENCE,
            vec![item("SELECTED FROM", "IMAGE", None)],
        );
        s
    };
    let no_uid = {
        let mut s = scoord(Some(IMAGE_REGION), "POINT", &[1.0, 2.0], None);
        let mut img = item("SELECTED FROM", "IMAGE", None);
        put_seq(
            &mut img,
            tags::REFERENCED_SOP_SEQUENCE,
            vec![InMemDicomObject::new_empty()],
        );
        put_seq(&mut s, tags::CONTENT_SEQUENCE, vec![img]);
        s
    };
    let no_graphic_type = {
        let mut s = point(1.0, 2.0);
        s.take(tags::GRAPHIC_TYPE);
        s
    };
    // A ContentSequence that is not a sequence, an empty item, an empty container.
    let mut not_a_seq = item("CONTAINS", "CONTAINER", Some(MEASUREMENT_GROUP));
    put_str(&mut not_a_seq, tags::CONTENT_SEQUENCE, VR::LO, "oops");
    let obj = sr(
        vec![
            group(vec![finding("L1_centroid", "99SPINE"), no_sop]),
            group(vec![finding("L2_centroid", "99SPINE"), no_uid]),
            group(vec![finding("L3_centroid", "99SPINE"), no_graphic_type]),
            not_a_seq,
            InMemDicomObject::new_empty(),
            group(vec![]),
            group(vec![finding("L4_centroid", "99SPINE"), point(1.0, 2.0)]),
        ],
        &[IMG1],
    );
    let doc = read(&obj);
    assert_eq!(doc.points.len(), 1);
    assert_eq!(doc.points[0].landmark, lm("L4_centroid"));
    assert_eq!(issue_codes(&doc), [codes::BAD_CONTENT_ITEM; 4]);
    let msgs: Vec<&str> = doc.issues.iter().map(|i| i.message.as_str()).collect();
    assert!(msgs[0].contains("ReferencedSOPSequence"), "{}", msgs[0]);
    assert!(msgs[1].contains("ReferencedSOPInstanceUID"), "{}", msgs[1]);
    assert!(msgs[2].contains("GraphicType"), "{}", msgs[2]);
    assert!(
        msgs[3].contains("content item 1.4") && msgs[3].contains("not a sequence"),
        "{}",
        msgs[3]
    );

    // No content at all, and an object with nothing in it.
    let mut empty_sr = sr(vec![], &[IMG1]);
    empty_sr.take(tags::CONTENT_SEQUENCE);
    assert_eq!(issue_codes(&read(&empty_sr)), [codes::BAD_CONTENT_ITEM]);
    let doc = read_sr(
        &InMemDicomObject::new_empty(),
        Path::new("x.dcm"),
        &Vocabulary::default(),
        DEFAULT_DEPTH_CAP,
    );
    assert!(doc.points.is_empty() && doc.evidence.is_empty());
    assert_eq!(
        issue_codes(&doc),
        [
            codes::MISSING_ATTRIBUTE,
            codes::MISSING_ATTRIBUTE,
            codes::BAD_CONTENT_ITEM
        ]
    );
}

// ---------------------------------------------------------------------------------------
// The naming rules of OHIF/dcmjs trees (landmarks.md section 2, candidates 1-5)

/// A TEXT item with concept `name` and value `text`.
fn text_item(name: Concept, text: &str) -> InMemDicomObject {
    let mut it = item("CONTAINS", "TEXT", Some(name));
    put_str(&mut it, tags::TEXT_VALUE, VR::UT, text);
    it
}

/// A Comment (DCM 121106) TEXT item.
fn comment(text: &str) -> InMemDicomObject {
    text_item(("121106", "DCM", "Comment"), text)
}

/// A CODE item with concept `name` holding the code (value, scheme, meaning).
fn code_item(name: Concept, value: Concept) -> InMemDicomObject {
    let mut it = item("HAS CONCEPT MOD", "CODE", Some(name));
    put_seq(&mut it, tags::CONCEPT_CODE_SEQUENCE, vec![code(value)]);
    it
}

/// OHIF's Probe: `NUM "Center"` with the SCOORD POINT under it by INFERRED FROM.
fn probe_num(col: f32, row: f32) -> InMemDicomObject {
    let mut pt = scoord(None, "POINT", &[col, row], Some(IMG1));
    put_str(&mut pt, tags::RELATIONSHIP_TYPE, VR::CS, "INFERRED FROM");
    with_children(
        item("CONTAINS", "NUM", Some(("111010", "DCM", "Center"))),
        vec![pt],
    )
}

const PROBE_TAG: &str = "Cornerstone3DTools@^0.1.0:Probe";

fn names(doc: &LandmarkDoc) -> Vec<(String, f64)> {
    doc.points
        .iter()
        .map(|p| (p.landmark.to_string(), cr(p).0))
        .collect()
}

#[test]
fn a_probe_label_in_a_comment_names_the_point_under_its_num() {
    // The tool tag in the Tracking Identifier maps to nothing and falls through to the
    // user's label in the Comment; the point sits under NUM "Center".
    let obj = sr(
        vec![container(
            ("126010", "DCM", "Imaging Measurements"),
            vec![
                group(vec![
                    tracking(PROBE_TAG),
                    comment("S1_sup_post"),
                    probe_num(10.5, 20.5),
                ]),
                group(vec![
                    tracking(PROBE_TAG),
                    comment("S1_sup_ant"),
                    probe_num(30.5, 21.5),
                ]),
            ],
        )],
        &[IMG1],
    );
    let doc = read(&obj);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    assert_eq!(
        names(&doc),
        [
            ("S1_sup_post".to_string(), 10.5),
            ("S1_sup_ant".to_string(), 30.5)
        ]
    );
    // A human label is found through a text synonym.
    let obj = sr(
        vec![group(vec![
            tracking(PROBE_TAG),
            comment("S1 superior posterior"),
            probe_num(10.5, 20.5),
        ])],
        &[IMG1],
    );
    let doc = read(&obj);
    assert_eq!(issue_codes(&doc), [codes::UNNAMED_POINT]);
    let msg = &doc.issues[0].message;
    assert!(
        msg.contains(PROBE_TAG) && msg.contains("S1 superior posterior"),
        "{msg}"
    );
    let mut v = Vocabulary::default();
    v.add_text("S1 superior posterior", lm("S1_sup_post"));
    let doc = read_with(&obj, &v, DEFAULT_DEPTH_CAP);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    assert_eq!(names(&doc), [("S1_sup_post".to_string(), 10.5)]);
}

#[test]
fn dcmjs_labels_in_finding_site_and_finding_meanings_name_points() {
    // dcmjs's own adapter: CODE Finding Site (CORNERSTONEFREETEXT, CORNERSTONEJS, label).
    let site = code_item(
        ("363698007", "SCT", "Finding Site"),
        ("CORNERSTONEFREETEXT", "CORNERSTONEJS", "L5_inf_ant"),
    );
    let old_site = code_item(
        ("G-C0E3", "SRT", "Finding Site"),
        ("CORNERSTONEFREETEXT", "CORNERSTONEJS", "L5_inf_post"),
    );
    // Cornerstone 3D: CODE Finding (CS3DTEXT, 99dcmjs, label): the scheme is unknown, the
    // meaning names the landmark.
    let mut fnd = item("CONTAINS", "CODE", Some(("121071", "DCM", "Finding")));
    put_seq(
        &mut fnd,
        tags::CONCEPT_CODE_SEQUENCE,
        vec![code(("CS3DTEXT", "99dcmjs", "L4_sup_ant"))],
    );
    let obj = sr(
        vec![
            group(vec![tracking(PROBE_TAG), site, probe_num(1.5, 2.5)]),
            group(vec![tracking(PROBE_TAG), old_site, probe_num(3.5, 4.5)]),
            group(vec![tracking(PROBE_TAG), fnd, probe_num(5.5, 6.5)]),
        ],
        &[IMG1],
    );
    let doc = read(&obj);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    assert_eq!(
        names(&doc),
        [
            ("L5_inf_ant".to_string(), 1.5),
            ("L5_inf_post".to_string(), 3.5),
            ("L4_sup_ant".to_string(), 5.5)
        ]
    );
}

#[test]
fn the_nums_concept_name_is_the_last_candidate() {
    // No group names: the NUM over the point is named by a synonym of its concept.
    let mut num = with_children(
        item("CONTAINS", "NUM", Some(("T12C", "99LAB", "T12 centre"))),
        vec![scoord(None, "POINT", &[7.5, 8.5], Some(IMG1))],
    );
    put_str(&mut num, tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS");
    let obj = sr(vec![group(vec![num])], &[IMG1]);
    assert_eq!(issue_codes(&read(&obj)), [codes::UNNAMED_POINT]);
    let mut v = Vocabulary::default();
    v.add_code("99LAB", "T12C", lm("T12_centroid"));
    let doc = read_with(&obj, &v, DEFAULT_DEPTH_CAP);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    assert_eq!(names(&doc), [("T12_centroid".to_string(), 7.5)]);
}

#[test]
fn a_flat_container_pairs_each_point_with_the_name_before_it() {
    // No Measurement Groups: names and points alternate in one container; each point
    // takes the name just before it, a point with no name before it has none, and one
    // name is never given to every point.
    let obj = sr(
        vec![container(
            ("126010", "DCM", "Imaging Measurements"),
            vec![
                tracking("L1_sup_ant"),
                point(1.0, 1.0),
                tracking("L1_sup_post"),
                comment("ignored: the Tracking Identifier comes first"),
                point(2.0, 2.0),
                point(3.0, 3.0),
                text_item(("121106", "DCM", "Comment"), "L2_inf_ant"),
                probe_num(4.0, 4.0),
            ],
        )],
        &[IMG1],
    );
    let doc = read(&obj);
    assert_eq!(
        names(&doc),
        [
            ("L1_sup_ant".to_string(), 1.0),
            ("L1_sup_post".to_string(), 2.0),
            ("L2_inf_ant".to_string(), 4.0)
        ]
    );
    assert_eq!(
        issue_codes(&doc),
        [codes::UNNAMED_POINT],
        "{:#?}",
        doc.issues
    );
    assert!(
        doc.issues[0].message.contains("1.1.6"),
        "{}",
        doc.issues[0].message
    );
    // One name and two points: the name goes to the point after it only.
    let obj = sr(
        vec![tracking("C7_centroid"), point(1.0, 1.0), point(2.0, 2.0)],
        &[IMG1],
    );
    let doc = read(&obj);
    assert_eq!(names(&doc), [("C7_centroid".to_string(), 1.0)]);
    assert_eq!(issue_codes(&doc), [codes::UNNAMED_POINT]);
}

#[test]
fn an_unknown_observer_is_no_reader() {
    let obj = sr(
        vec![
            observer("unknown^unknown"),
            group(vec![tracking("L3_sup_ant"), point(5.0, 6.0)]),
            group(vec![
                observer("Reader^Two"),
                tracking("L3_sup_post"),
                point(7.0, 8.0),
            ]),
        ],
        &[IMG1],
    );
    let doc = read(&obj);
    assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
    let readers: Vec<&str> = doc.points.iter().map(|p| doc.observer(p)).collect();
    assert_eq!(readers, ["", "Reader^Two"]);
}

// ---------------------------------------------------------------------------------------
// SRs written by OHIF's libraries (fixtures/interop/ohif: @cornerstonejs/adapters 5.14.0
// and dcmjs 0.52.0 from npm, Probe and ArrowAnnotate, canonical and human labels)

/// The `[[synonyms]]` tables of `fixtures/interop/ohif/human_labels.toml` (text synonyms
/// only: `landmark = "..."` then `text = "..."`).
fn human_labels() -> Vocabulary {
    let text = std::fs::read_to_string(repo_root().join("fixtures/interop/ohif/human_labels.toml"))
        .unwrap();
    let value = |l: &str| {
        l.split_once('=')
            .unwrap()
            .1
            .trim()
            .trim_matches('"')
            .to_string()
    };
    let mut v = Vocabulary::default();
    let mut landmark = None;
    let mut n = 0;
    for line in text.lines().map(str::trim) {
        if line.starts_with("landmark") {
            landmark = Some(lm(&value(line)));
        } else if line.starts_with("text") {
            v.add_text(&value(line), landmark.take().unwrap());
            n += 1;
        }
    }
    assert_eq!(n, 160);
    v
}

#[test]
fn every_ohif_and_dcmjs_sr_gives_all_its_points_named_where_the_tool_put_them() {
    let dir = repo_root().join("fixtures/interop/ohif");
    let human = human_labels();
    let mut files = 0;
    for entry in std::fs::read_dir(dir.join("expected")).unwrap() {
        let exp: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let name = exp["file"].as_str().unwrap();
        let path = dir.join("sr").join(name);
        let obj = dicom_object::open_file(&path).unwrap();
        let vocab = if exp["labels"] == "human" {
            // Without the synonyms nothing is named, and every point says why.
            let doc = read_sr(&*obj, &path, &Vocabulary::default(), DEFAULT_DEPTH_CAP);
            assert!(doc.points.is_empty(), "{name}");
            let unnamed = doc
                .issues
                .iter()
                .filter(|i| i.code == codes::UNNAMED_POINT)
                .count();
            assert_eq!(unnamed, 180, "{name}");
            human.clone()
        } else {
            Vocabulary::default()
        };
        let doc = read_sr(&*obj, &path, &vocab, DEFAULT_DEPTH_CAP);
        // dcmjs leaves PatientID empty: one warning, the points still read.
        for i in &doc.issues {
            assert_eq!(i.code, codes::MISSING_ATTRIBUTE, "{name}: {i:?}");
            assert!(
                name.starts_with("dcmjs") && i.message.contains("PatientID"),
                "{name}: {i:?}"
            );
        }
        let want = exp["landmarks"].as_array().unwrap();
        assert_eq!(want.len(), 180, "{name}");
        assert_eq!(doc.points.len(), 180, "{name}: {:#?}", doc.issues);
        let mut got: BTreeMap<(String, String), (f64, f64, String)> = BTreeMap::new();
        for p in &doc.points {
            got.insert(
                (doc.image_uid(p).to_string(), p.landmark.to_string()),
                (cr(p).0, cr(p).1, doc.observer(p).to_string()),
            );
        }
        for w in want {
            let key = (
                w["image_sop_uid"].as_str().unwrap().to_string(),
                w["name"].as_str().unwrap().to_string(),
            );
            let (col, row, observer) = got.get(&key).unwrap_or_else(|| panic!("{name}: {key:?}"));
            // Exactly what the tool stored (the arrowhead for arrows) ...
            assert_eq!(
                (col.to_bits(), row.to_bits()),
                (f32_bits(&w["stored_col"]), f32_bits(&w["stored_row"])),
                "{name}: {key:?}"
            );
            // ... which is the source landmark to one float32 step.
            let (sc, sr) = (w["col"].as_f64().unwrap(), w["row"].as_f64().unwrap());
            assert!(
                (col - sc).abs() < 2e-5 && (row - sr).abs() < 2e-5,
                "{name}: {key:?}"
            );
            // unknown^unknown is no reader.
            assert_eq!(w["observer"], "unknown^unknown");
            assert_eq!(observer, "", "{name}");
        }
        files += 1;
    }
    assert_eq!(files, 10);
}
