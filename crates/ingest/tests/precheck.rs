//! The structure check run before dicom-rs parses a file (`plumbline_ingest::precheck`):
//! every committed file passes it, and each kind of hostile or broken structure is
//! rejected with its reason and byte offset, in any transfer syntax.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, OpenFileOptions};
use plumbline_ingest::precheck::{
    Limits, MAX_NESTING, PrecheckError, Problem, precheck_bytes, precheck_file,
};
use plumbline_ingest::qc::codes;
use plumbline_ingest::scan::{FileOutcome, SCAN_STACK_BYTES, list_files, scan_file};
use plumbline_ingest::sr::DEFAULT_DEPTH_CAP;
use plumbline_ingest::{ScanOptions, scan};

/// Every file below `dir` that starts like DICOM ("DICM" at byte 128 or 0).
fn dicom_files(dir: &Path) -> Vec<PathBuf> {
    let (files, _) = list_files(dir).unwrap();
    files
        .into_iter()
        .filter(|p| {
            let b = std::fs::read(p).unwrap();
            (b.len() >= 132 && &b[128..132] == b"DICM") || b.starts_with(b"DICM")
        })
        .collect()
}

/// Runs `f` on a thread with the scan's stack size (dicom-rs recurses per nesting level).
fn big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SCAN_STACK_BYTES)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// Whether dicom-rs reads the bytes as the scan does (up to Pixel Data).
fn dicom_rs_reads(bytes: Vec<u8>) -> bool {
    big_stack(move || {
        let dir = temp_dir(&format!("dicomrs-{:?}", std::thread::current().id()));
        let p = dir.join("f.dcm");
        std::fs::write(&p, &bytes).unwrap();
        let ok = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(&p)
            .is_ok();
        std::fs::remove_dir_all(dir).unwrap();
        ok
    })
}

fn expect(r: Result<(), PrecheckError>, problem: Problem) -> PrecheckError {
    match r {
        Err(e) if e.problem == problem => e,
        other => panic!("expected {problem:?}, got {other:?}"),
    }
}

#[test]
fn every_committed_dicom_file_passes() {
    let mut files = dicom_files(&root().join("fixtures"));
    files.extend(dicom_files(&root().join("crates/ingest/tests/data")));
    assert!(files.len() >= 136, "{} files", files.len());
    for limits in [
        Limits::default(),
        Limits::for_depth_cap(DEFAULT_DEPTH_CAP),
        Limits::for_depth_cap(4),
    ] {
        for f in &files {
            if let Err(e) = precheck_file(f, &limits) {
                panic!("{}: {e}", f.display());
            }
        }
    }
    // The encapsulated ones are among them.
    for name in ["cr/RG1_J2KR.dcm", "cr/RG1_RLE.dcm", "codecs/RG1_JLSL.dcm"] {
        assert!(files.iter().any(|f| f.ends_with(name)), "{name}");
    }
}

#[test]
fn the_same_files_in_implicit_vr_and_big_endian_pass_and_read_alike() {
    let cohort = root().join("fixtures/cohort-small/dicom/P0001");
    let files = dicom_files(&cohort);
    let dir = temp_dir("precheck-syntaxes");
    let mut n = 0;
    for f in files.iter().take(8) {
        for (ts, tag) in [(IMPLICIT_LE, "implicit"), (EXPLICIT_BE, "big")] {
            let obj = dicom_object::open_file(f).unwrap();
            if obj.meta().transfer_syntax() != EXPLICIT_LE {
                continue;
            }
            let meta = FileMetaTableBuilder::new()
                .transfer_syntax(ts)
                .media_storage_sop_class_uid(obj.meta().media_storage_sop_class_uid())
                .media_storage_sop_instance_uid(obj.meta().media_storage_sop_instance_uid());
            let out = dir.join(format!("{n}_{tag}.dcm"));
            obj.into_inner()
                .with_meta(meta)
                .unwrap()
                .write_to_file(&out)
                .unwrap();
            precheck_file(&out, &Limits::default())
                .unwrap_or_else(|e| panic!("{} as {tag}: {e}", f.display()));
            let (outcome, _) = scan_file(&out, &ScanOptions::default());
            let (orig, _) = scan_file(f, &ScanOptions::default());
            match (outcome, orig) {
                (FileOutcome::Image(a), FileOutcome::Image(b)) => {
                    assert_eq!(a.sop_instance_uid, b.sop_instance_uid);
                    assert_eq!(a.spacing, b.spacing);
                }
                (FileOutcome::Landmarks(a), FileOutcome::Landmarks(b)) => {
                    let key = |d: &plumbline_ingest::LandmarkDoc| {
                        d.points
                            .iter()
                            .map(|p| {
                                (
                                    p.landmark.to_string(),
                                    p.pixel(),
                                    d.image_uid(p).to_string(),
                                )
                            })
                            .collect::<Vec<_>>()
                    };
                    assert!(!a.points.is_empty());
                    assert!(key(&a) == key(&b), "{}", f.display());
                }
                (a, b) => panic!("{}: {a:?} vs {b:?}", f.display()),
            }
            n += 1;
        }
    }
    assert!(n >= 8, "{n}");
    // A deep tree in implicit VR (ContentSequence is SQ by the dictionary) and in big
    // endian is caught like one in explicit little endian.
    let deep = deep_sr(500, "2.25.1", "P1", false);
    let obj = big_stack(move || {
        let p = temp_dir("precheck-deep-src").join("deep.dcm");
        std::fs::write(&p, &deep).unwrap();
        dicom_object::open_file(&p).unwrap()
    });
    for ts in [IMPLICIT_LE, EXPLICIT_BE] {
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(ts)
            .media_storage_sop_class_uid(COMPREHENSIVE_SR)
            .media_storage_sop_instance_uid("2.25.2");
        let obj = obj.clone();
        let out = dir.join(format!("deep_{ts}.dcm"));
        let o = out.clone();
        big_stack(move || {
            obj.into_inner()
                .with_meta(meta)
                .unwrap()
                .write_to_file(o)
                .unwrap()
        });
        let e = expect(precheck_file(&out, &Limits::default()), Problem::TooDeep);
        assert!(e.message.contains("nested 273 levels"), "{e}");
    }
    big_stack(move || drop(obj));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn nesting_limit_follows_the_depth_cap() {
    assert_eq!(Limits::for_depth_cap(64).max_nesting, 4 * 64 + 16);
    assert_eq!(Limits::default().max_nesting, 4 * 64 + 16);
    assert_eq!(Limits::for_depth_cap(10_000).max_nesting, MAX_NESTING);
    assert_eq!(Limits::for_depth_cap(usize::MAX).max_nesting, MAX_NESTING);
    // D containers, the point and its image (a content tree D + 2 deep) need 2D + 6
    // levels: the image's ReferencedSOPSequence item is the deepest.
    let limits = Limits::for_depth_cap(DEFAULT_DEPTH_CAP);
    for defined in [false, true] {
        let d = (limits.max_nesting - 6) / 2;
        precheck_bytes(&deep_sr(d, "2.25.1", "P1", defined), &limits).unwrap();
        let e = expect(
            precheck_bytes(&deep_sr(d + 1, "2.25.1", "P1", defined), &limits),
            Problem::TooDeep,
        );
        assert!(e.message.contains(&format!("at byte {}", e.offset)), "{e}");
        assert!(e.message.contains("limit of 272"), "{e}");
    }
}

#[test]
fn a_ten_thousand_deep_tree_is_rejected_quickly_and_the_batch_goes_on() {
    let dir = temp_dir("precheck-10k");
    for defined in [false, true] {
        let bytes = deep_sr(10_000, "2.25.1", "P1", defined);
        let t = std::time::Instant::now();
        let e = expect(precheck_bytes(&bytes, &Limits::default()), Problem::TooDeep);
        assert!(t.elapsed().as_secs_f64() < 1.0);
        // The first level past the limit: 272 open, the 273rd refused.
        assert!(e.message.contains("nested 273 levels"), "{e}");
        std::fs::write(dir.join(format!("deep_{defined}.dcm")), &bytes).unwrap();
    }
    // Even at the largest depth cap a pipeline accepts, the tree is refused before dicom-rs.
    let bytes = deep_sr(10_000, "2.25.1", "P1", false);
    expect(
        precheck_bytes(&bytes, &Limits::for_depth_cap(10_000)),
        Problem::TooDeep,
    );
    // On a thread with a default 2 MiB stack: only the check runs, so nothing overflows.
    let d = dir.clone();
    let outcomes = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            list_files(&d)
                .unwrap()
                .0
                .iter()
                .map(|p| scan_file(p, &ScanOptions::default()))
                .collect::<Vec<_>>()
        })
        .unwrap()
        .join()
        .unwrap();
    for (outcome, issues) in outcomes {
        assert_eq!(outcome, FileOutcome::Broken);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].code, codes::HOSTILE_STRUCTURE);
        assert!(
            issues[0].message.contains("at byte"),
            "{}",
            issues[0].message
        );
    }
    let s = scan(&dir, &ScanOptions::default(), &|_| {}).unwrap();
    assert_eq!(s.counts.broken, 2);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A small SR (explicit VR LE) with `body` as its data set after SOP class and instance.
fn small(body: &[u8]) -> Vec<u8> {
    let mut b = meta(EXPLICIT_LE, COMPREHENSIVE_SR, "2.25.7");
    b.extend(el(0x0008, 0x0016, b"UI", COMPREHENSIVE_SR.as_bytes()));
    b.extend(el(0x0008, 0x0018, b"UI", b"2.25.7"));
    b.extend_from_slice(body);
    b
}

#[test]
fn lengths_past_the_end_are_rejected_before_any_allocation() {
    // A declared 2 GB value in a small file.
    let mut body = header(0x0010, 0x0010, b"OB", 0x8000_0000);
    body.extend_from_slice(&[0; 64]);
    let e = expect(
        precheck_bytes(&small(&body), &Limits::default()),
        Problem::Truncated,
    );
    assert_eq!(e.declared_len, Some(0x8000_0000));
    assert!(e.message.contains("2147483648"), "{e}");
    // 0xFFFFFFFE (defined, huge) on a text element of 4-byte length.
    let body = header(0x0040, 0xA160, b"UT", 0xFFFF_FFFE);
    expect(
        precheck_bytes(&small(&body), &Limits::default()),
        Problem::Truncated,
    );
    // In the file meta group: a transfer syntax UID of 4 GB (VR UN has a 4-byte
    // length); dicom-rs would reserve and zero it before reading.
    let mut b = vec![0u8; 128];
    b.extend_from_slice(b"DICM");
    b.extend(el(0x0002, 0x0000, b"UL", &100u32.to_le_bytes()));
    b.extend(header(0x0002, 0x0010, b"UN", 0xFFFF_FFF0));
    b.extend_from_slice(&[b'1'; 40]);
    let e = expect(precheck_bytes(&b, &Limits::default()), Problem::Truncated);
    assert_eq!(e.offset, 144);
    // An item of a pixel data fragment sequence nested in an icon image.
    let mut icon = header(0x7FE0, 0x0010, b"OB", UNDEFINED);
    icon.extend(item(0));
    icon.extend(item(0x7000_0000));
    icon.extend_from_slice(&[0; 16]);
    let mut body = header(0x0088, 0x0200, b"SQ", UNDEFINED);
    body.extend(item(UNDEFINED));
    body.extend(icon);
    expect(
        precheck_bytes(&small(&body), &Limits::default()),
        Problem::Truncated,
    );
    // A value longer than the limit though present in the file.
    let body = el(0x0009, 0x1010, b"OB", &vec![7u8; 4096]);
    let limits = Limits {
        max_value_len: 1024,
        ..Limits::default()
    };
    let e = expect(
        precheck_bytes(&small(&body), &limits),
        Problem::ValueTooLong,
    );
    assert!(e.problem.is_limit());
}

#[test]
fn undefined_lengths_are_followed_as_dicom_rs_reads_them() {
    // dicom-rs reads an element of undefined length as a sequence whatever its VR: with
    // items and a delimiter after it, both read the file; with anything else, both refuse.
    let mut body = header(0x0010, 0x1000, b"UT", UNDEFINED);
    body.extend(seq_end());
    body.extend(header(0x0010, 0x1001, b"UN", UNDEFINED));
    body.extend(item(UNDEFINED));
    body.extend(el(0x0010, 0x0010, b"PN", b"A^B"));
    body.extend(item_end());
    body.extend(seq_end());
    body.extend(el(0x0010, 0x0020, b"LO", b"P1"));
    let good = small(&body);
    precheck_bytes(&good, &Limits::default()).unwrap();
    assert!(dicom_rs_reads(good));
    let mut body = header(0x0010, 0x1001, b"UN", UNDEFINED);
    body.extend(el(0x0010, 0x0020, b"LO", b"P1"));
    let bad = small(&body);
    let e = expect(precheck_bytes(&bad, &Limits::default()), Problem::Malformed);
    assert!(e.message.contains("(0010,0020)"), "{e}");
    assert!(!dicom_rs_reads(bad));
    // A stray item delimiter at the top level is skipped by both.
    let mut body = item_end();
    body.extend(el(0x0010, 0x0020, b"LO", b"P1"));
    let stray = small(&body);
    precheck_bytes(&stray, &Limits::default()).unwrap();
    assert!(dicom_rs_reads(stray));
    // An item that overruns its sequence: both refuse.
    let mut body = header(0x0040, 0xA730, b"SQ", 8 + 10);
    body.extend(item(20));
    body.extend(el(0x0040, 0xA040, b"CS", b"TEXT"));
    body.extend(el(0x0040, 0xA160, b"UT", b"abcd"));
    let over = small(&body);
    expect(
        precheck_bytes(&over, &Limits::default()),
        Problem::Malformed,
    );
    assert!(!dicom_rs_reads(over));
}

#[test]
fn the_check_stops_at_top_level_pixel_data() {
    let mut body = el(0x0028, 0x0010, b"US", &2u16.to_le_bytes());
    body.extend(header(0x7FE0, 0x0010, b"OW", 0x7FFF_FFF0));
    body.extend_from_slice(&[0xFF; 8]);
    precheck_bytes(&small(&body), &Limits::default()).unwrap();
    let mut body = header(0x7FE0, 0x0010, b"OB", UNDEFINED);
    body.extend(item(0x7FFF_FFF0));
    precheck_bytes(&small(&body), &Limits::default()).unwrap();
}

#[test]
fn text_values_and_element_counts_are_bounded() {
    // Implicit VR: Modality (CS by the dictionary) holding 3 million empty values would
    // become 3 million strings in dicom-rs.
    let mut b = meta(IMPLICIT_LE, COMPREHENSIVE_SR, "2.25.8");
    b.extend(el_implicit(
        0x0008,
        0x0016,
        b"1.2.840.10008.5.1.4.1.1.88.33\0",
    ));
    b.extend(el_implicit(0x0008, 0x0060, &vec![b'\\'; 3_000_000]));
    let e = expect(
        precheck_bytes(&b, &Limits::default()),
        Problem::TooManyTextValues,
    );
    assert!(e.message.contains("(0008,0060)"), "{e}");
    assert!(e.problem.is_limit());
    // Elements: an SR fixture under a tiny element limit.
    let sr = std::fs::read(root().join("fixtures/interop/sr/sr_two_observers.dcm")).unwrap();
    let limits = Limits {
        max_elements: 500,
        ..Limits::default()
    };
    expect(precheck_bytes(&sr, &limits), Problem::TooManyElements);
    let limits = Limits {
        max_items: 100,
        ..Limits::default()
    };
    let e = expect(precheck_bytes(&sr, &limits), Problem::TooManyItems);
    assert!(e.problem.is_limit());
    precheck_bytes(&sr, &Limits::default()).unwrap();
    // 300,000 one-element items (5.4 MB of file; ~400 MB in dicom-rs) under the default
    // limits.
    let mut b = meta(EXPLICIT_LE, COMPREHENSIVE_SR, "2.25.9");
    b.extend(header(0x0040, 0xA730, b"SQ", UNDEFINED));
    for _ in 0..300_000 {
        b.extend(item(10));
        b.extend(el(0x0028, 0x0010, b"US", &[1, 0]));
    }
    b.extend(seq_end());
    let e = expect(
        precheck_bytes(&b, &Limits::default()),
        Problem::TooManyItems,
    );
    assert!(e.message.contains("250000"), "{e}");
}

#[test]
fn cut_headers_are_truncation() {
    let sr = std::fs::read(root().join("fixtures/interop/sr/sr_tracking_only.dcm")).unwrap();
    let headers = element_headers(&sr);
    // Cut inside the tenth header of the data set.
    let (at, ..) = headers[12];
    let e = expect(
        precheck_bytes(&sr[..at + 5], &Limits::default()),
        Problem::Truncated,
    );
    assert_eq!(e.offset, at as u64);
    // Cut inside a value.
    let (at, ..) = headers[20];
    expect(
        precheck_bytes(&sr[..at + 13], &Limits::default()),
        Problem::Truncated,
    );
}

/// A reader that hands out one byte per call, so that the check's read buffer never holds
/// a whole header and every header takes the slow path.
struct OneByte(std::io::Cursor<Vec<u8>>);

impl std::io::Read for OneByte {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

impl std::io::Seek for OneByte {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

#[test]
fn buffered_and_byte_by_byte_reads_agree() {
    let limits = Limits::default();
    let same = |bytes: &[u8]| {
        let slow = plumbline_ingest::precheck::precheck_reader(
            OneByte(std::io::Cursor::new(bytes.to_vec())),
            bytes.len() as u64,
            &limits,
        );
        assert_eq!(precheck_bytes(bytes, &limits), slow);
    };
    let mut seed = 7u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let dir = root().join("fixtures");
    for rel in [
        "interop/sr/sr_two_observers.dcm",
        "interop/codecs/SYNTH_RLE.dcm",
        "cohort-small/dicom/P0001/20210530_preop/SR_alpha_ap.dcm",
        "cohort-small/dicom/P0001/20210530_preop/IM0002",
    ] {
        let bytes = std::fs::read(dir.join(rel)).unwrap();
        let bytes = &bytes[..bytes.len().min(40_000)];
        same(bytes);
        for _ in 0..40 {
            let mut m = bytes.to_vec();
            for _ in 0..1 + next() % 6 {
                let at = (next() % m.len() as u64) as usize;
                m[at] ^= 1 + (next() % 255) as u8;
            }
            same(&m);
            let cut = (next() % m.len() as u64) as usize;
            same(&m[..cut]);
        }
    }
    for defined in [false, true] {
        same(&deep_sr(300, "2.25.1", "P1", defined));
    }
    // Big endian, and implicit VR (slow path only).
    let sr = dir.join("cohort-small/dicom/P0001/20210530_preop/SR_alpha_ap.dcm");
    for ts in [EXPLICIT_BE, IMPLICIT_LE] {
        let obj = dicom_object::open_file(&sr).unwrap();
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(ts)
            .media_storage_sop_class_uid(COMPREHENSIVE_SR)
            .media_storage_sop_instance_uid("2.25.3");
        let mut bytes = Vec::new();
        obj.into_inner()
            .with_meta(meta)
            .unwrap()
            .write_all(&mut bytes)
            .unwrap();
        precheck_bytes(&bytes, &limits).unwrap();
        same(&bytes);
        for _ in 0..20 {
            let mut m = bytes.clone();
            let at = 132 + (next() % (m.len() as u64 - 132)) as usize;
            m[at] ^= 1 + (next() % 255) as u8;
            same(&m);
        }
    }
}
