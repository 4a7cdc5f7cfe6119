//! A JPEG-LS radiograph in a run: its header, landmarks and metrics are read whatever the
//! build; its overlay is drawn with the `jpeg-ls` feature and refused without it (QC
//! `codec_unavailable` naming the feature).
//!
//! The image is `fixtures/interop/codecs/SYNTH_JLSL.dcm` (DCMTK's JPEG-LS encoding of
//! cohort-small P0001's postop lateral view) given back that view's SOP Instance UID, so the
//! cohort's SRs point at it.

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use plumbline::run::{RunOptions, run};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-codecs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn run_overlays(input: &Path, out: &Path) {
    run(&RunOptions {
        overlays: true,
        ..RunOptions::new(
            input.to_path_buf(),
            root().join("fixtures/cohort-small/clinical.csv"),
            out.to_path_buf(),
        )
    })
    .unwrap();
}

fn qc_rows(out: &Path, code: &str) -> Vec<Vec<String>> {
    csv::Reader::from_path(out.join("qc.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect::<Vec<_>>())
        .filter(|r| r[4] == code)
        .collect()
}

// Long (over 80 lines): the same run checked with and without the jpeg-ls feature, side by side.
#[test]
fn a_jpeg_ls_view_gives_its_metrics_and_an_overlay_only_with_the_feature() {
    let cohort = root().join("fixtures/cohort-small/dicom/P0001");
    let plain = temp("plain");
    copy_tree(&cohort, &plain.join("P0001"));
    let jls = temp("jls");
    copy_tree(&cohort, &jls.join("P0001"));
    let view = jls.join("P0001/20210607_postop/XR_LAT.dcm");
    let uid = dicom_object::open_file(&view)
        .unwrap()
        .meta()
        .media_storage_sop_instance_uid()
        .trim_end_matches('\0')
        .to_string();
    let mut obj =
        dicom_object::open_file(root().join("fixtures/interop/codecs/SYNTH_JLSL.dcm")).unwrap();
    assert_eq!(obj.meta().transfer_syntax(), "1.2.840.10008.1.2.4.80");
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(uid.as_str()),
    ));
    obj.update_meta(|m| m.media_storage_sop_instance_uid = uid.clone());
    obj.write_to_file(&view).unwrap();

    let (out_plain, out_jls) = (temp("out-plain"), temp("out-jls"));
    run_overlays(&plain, &out_plain);
    run_overlays(&jls, &out_jls);

    // The same metrics: the scan reads headers and landmarks, never the pixels.
    let table = |o: &Path| std::fs::read_to_string(o.join("measurements.csv")).unwrap();
    assert_eq!(table(&out_plain), table(&out_jls));
    assert!(table(&out_jls).lines().count() > 4);

    // Both readers of the postop study marked that view.
    let names = |o: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(o.join("overlays/P0001"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let of_view = [
        "postop_Reader^Alpha_lateral.png",
        "postop_Reader^Beta_lateral.png",
    ];
    let all = names(&out_plain);
    assert_eq!(all.len(), 12, "{all:?}");
    assert!(
        of_view.iter().all(|v| all.iter().any(|a| a == v)),
        "{all:?}"
    );
    let refused = qc_rows(&out_jls, "codec_unavailable");
    if cfg!(feature = "jpeg-ls") {
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(names(&out_jls), all);
    } else {
        // One QC row (the two readers' identical refusals are one problem of one file).
        assert_eq!(refused.len(), 1, "{refused:?}");
        let r = &refused[0];
        assert!(r[0].ends_with("20210607_postop/XR_LAT.dcm"), "{r:?}");
        assert_eq!(
            (r[1].as_str(), r[2].as_str(), r[3].as_str()),
            (uid.as_str(), "P0001", "warning")
        );
        assert!(
            r[5].contains("JPEG-LS Lossless") && r[5].contains("--features jpeg-ls"),
            "{r:?}"
        );
        let rest: Vec<String> = all
            .into_iter()
            .filter(|a| !of_view.contains(&a.as_str()))
            .collect();
        assert_eq!(names(&out_jls), rest);
    }
    // No other overlay failed.
    assert!(qc_rows(&out_jls, "overlay_failed").is_empty());
    for d in [plain, jls, out_plain, out_jls] {
        let _ = std::fs::remove_dir_all(d);
    }
}
