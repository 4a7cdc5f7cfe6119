//! 3D Slicer markups as Slicer writes them (patient mm, LPS or RAS, no image reference):
//! tied to their image by the file name or a `--landmark-map` table, and put back on the
//! pixels through the geometry ITK gives the image. The fixtures
//! (`fixtures/interop/slicer`, `make_markups.py`) hold positions SimpleITK computed with
//! `TransformContinuousIndexToPhysicalPoint` from the cohort SRs' pixels: Plumbline must
//! land on those pixels to 1e-6 and give the SRs' metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plumbline::run::{RunOptions, run};
use plumbline_e2e::{SIMPLEITK, repo_root, require};
use plumbline_ingest::markups::{LandmarkMap, read_landmark_map};
use plumbline_ingest::{ScanOptions, default_windows, group, scan};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-slicer-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The study folder's images (every file but the SRs) copied into `dir`.
fn copy_images(study: &Path, dir: &Path) {
    for e in std::fs::read_dir(study).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("SR_") {
            std::fs::copy(&p, dir.join(&name)).unwrap();
        }
    }
}

fn expected(dir: &Path) -> Vec<serde_json::Value> {
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    j["files"].as_array().unwrap().clone()
}

/// The fixture sets: the pre-op study (isotropic ImagerPixelSpacing) and the 3-month one
/// (a CR lateral with PixelSpacing 2.375\2.1375 and ImagerPixelSpacing 2.6125\2.35125:
/// ITK takes the latter, columns first).
fn sets() -> Vec<(PathBuf, PathBuf)> {
    let cohort = repo_root().join("fixtures/cohort-small/dicom/P0001");
    let slicer = repo_root().join("fixtures/interop/slicer");
    vec![
        (cohort.join("20210530_preop"), slicer.clone()),
        (cohort.join("20210822_m3"), slicer.join("m3")),
    ]
}

#[test]
fn slicer_positions_land_on_the_simpleitk_pixels() {
    assert_eq!(land_on_pixels(&sets(), "committed"), 2 * 5 * 90);
}

/// The same check on markups that SimpleITK writes now, from the images as this checkout
/// has them (`make_markups.py` into a scratch folder), not on the committed copies.
#[test]
#[cfg_attr(
    missing_tool = "simpleitk",
    ignore = "needs SimpleITK: pip install -r fixtures/interop/slicer/requirements.txt"
)]
fn markups_written_by_simpleitk_now_land_on_the_same_pixels() {
    require(&SIMPLEITK);
    let mut written = Vec::new();
    for (study, _) in sets() {
        let out = temp_dir(&format!("sitk-{}", written.len()));
        let status = std::process::Command::new("python3")
            .arg(repo_root().join("fixtures/interop/slicer/make_markups.py"))
            .arg("--study")
            .arg(&study)
            .arg("--out-dir")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "make_markups.py failed:\n{}{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr)
        );
        written.push((study, out));
    }
    assert_eq!(land_on_pixels(&written, "now"), 2 * 5 * 90);
    for (_, out) in written {
        let _ = std::fs::remove_dir_all(out);
    }
}

/// Reads every markups file of each (study, fixture folder) with its study's images and
/// checks every point against the folder's `expected.json`; returns the points checked.
fn land_on_pixels(sets: &[(PathBuf, PathBuf)], tag: &str) -> usize {
    let mut checked = 0;
    for (study, dir) in sets {
        let (study, dir) = (study.as_path(), dir.as_path());
        let map = read_landmark_map(&dir.join("landmark_map.csv")).unwrap();
        for f in expected(dir) {
            let name = f["file"].as_str().unwrap();
            let tree = temp_dir(&format!("pix-{tag}-{checked}"));
            copy_images(study, &tree);
            std::fs::copy(dir.join(name), tree.join(name)).unwrap();
            // UID-named files need no map; the other one is tied only by the map.
            let landmark_map: LandmarkMap = if name.starts_with("2.25.") {
                LandmarkMap::new()
            } else {
                map.clone()
            };
            let opts = ScanOptions {
                landmark_map,
                ..ScanOptions::default()
            };
            let s = scan(&tree, &opts, &|_| {}).unwrap();
            let landmark_issues: Vec<_> = s
                .issues
                .iter()
                .filter(|i| i.path.to_string_lossy().ends_with(".mrk.json"))
                .collect();
            assert!(landmark_issues.is_empty(), "{name}: {landmark_issues:#?}");
            let (clinical, _) = plumbline_ingest::clinical::read_clinical(
                &repo_root().join("fixtures/cohort-small/clinical.csv"),
            )
            .unwrap();
            let g = group(&s, Some(&clinical), &default_windows());
            let uid = f["sop_instance_uid"].as_str().unwrap();
            let observer = f["observer"].as_str().unwrap_or("");
            let view = g
                .readings
                .iter()
                .filter(|r| r.observer == observer)
                .flat_map(|r| [&r.lateral, &r.ap])
                .flatten()
                .find(|v| v.image_uid == uid)
                .unwrap_or_else(|| panic!("{name}: no view of {uid} for `{observer}`"));
            let want = f["landmarks"].as_array().unwrap();
            assert_eq!(view.pixels.len(), want.len(), "{name}");
            for w in want {
                let lm: plumbline_geometry::Landmark =
                    w["label"].as_str().unwrap().parse().unwrap();
                let (c, r) = view.pixels[&lm];
                let (wc, wr) = (w["col"].as_f64().unwrap(), w["row"].as_f64().unwrap());
                assert!(
                    (c - wc).abs() < 1e-6 && (r - wr).abs() < 1e-6,
                    "{name} {lm}: ({c}, {r}) vs SimpleITK ({wc}, {wr})"
                );
                checked += 1;
            }
            let _ = std::fs::remove_dir_all(&tree);
        }
    }
    // 2 studies x (2 images x LPS/RAS + the mapped file) x 90 points.
    checked
}

/// Metric columns of measurements.csv by (timepoint, observer).
fn metrics(out: &Path) -> BTreeMap<(String, String), Vec<(String, String)>> {
    let mut r = csv::Reader::from_path(out.join("measurements.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let cells: Vec<(String, String)> = header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .filter(|(h, _)| h.ends_with("_mm") || h.ends_with("_deg") || h.ends_with("_pct"))
                .collect();
            ((rec[1].to_string(), rec[3].to_string()), cells)
        })
        .collect()
}

// Long (over 80 lines): one run over the SimpleITK-made markups, compared with the run over the SRs they came from.
#[test]
fn slicer_markups_give_the_metrics_of_the_original_srs() {
    let clinical = repo_root().join("fixtures/cohort-small/clinical.csv");
    for (study, dir) in sets() {
        let tp = study
            .file_name()
            .unwrap()
            .to_string_lossy()
            .split('_')
            .nth(1)
            .unwrap()
            .to_string();
        // The original SRs (reader Alpha).
        let original = temp_dir(&format!("orig-{tp}"));
        copy_images(&study, &original);
        for e in std::fs::read_dir(&study).unwrap() {
            let p = e.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("SR_alpha")
            {
                std::fs::copy(&p, original.join(p.file_name().unwrap())).unwrap();
            }
        }
        let out = temp_dir(&format!("orig-out-{tp}"));
        let _ = std::fs::remove_dir_all(&out);
        run(&RunOptions::new(
            original.clone(),
            clinical.clone(),
            out.clone(),
        ))
        .unwrap();
        let want = metrics(&out)[&(tp.clone(), "Reader^Alpha".to_string())].clone();
        assert!(want.iter().filter(|(_, v)| !v.is_empty()).count() > 15);
        // Slicer's files: the RAS pair named by UID (no reader), and through the map the
        // lateral file of reader Alpha with the AP one renamed and mapped too.
        let tree = temp_dir(&format!("tree-{tp}"));
        copy_images(&study, &tree);
        let map_rows: Vec<String> = expected(&dir)
            .iter()
            .map(|f| f["file"].as_str().unwrap().to_string())
            .filter(|n| n.ends_with("_ras.mrk.json"))
            .collect();
        for n in &map_rows {
            std::fs::copy(dir.join(n), tree.join(n)).unwrap();
        }
        let out = temp_dir(&format!("out-{tp}"));
        let _ = std::fs::remove_dir_all(&out);
        run(&RunOptions::new(
            tree.clone(),
            clinical.clone(),
            out.clone(),
        ))
        .unwrap();
        let got = &metrics(&out)[&(tp.clone(), String::new())];
        for ((name, a), (_, b)) in want.iter().zip(got) {
            assert_eq!(a.is_empty(), b.is_empty(), "{tp} {name}");
            if !a.is_empty() {
                let d = (a.parse::<f64>().unwrap() - b.parse::<f64>().unwrap()).abs();
                assert!(d < 1e-6, "{tp} {name}: {a} vs {b}");
            }
        }
        // The mapped lateral file with --landmark-map: reader Alpha, lateral metrics.
        let mapped = temp_dir(&format!("mapped-{tp}"));
        copy_images(&study, &mapped);
        std::fs::copy(
            dir.join("reader_alpha_lateral.mrk.json"),
            mapped.join("reader_alpha_lateral.mrk.json"),
        )
        .unwrap();
        let out = temp_dir(&format!("mapped-out-{tp}"));
        let _ = std::fs::remove_dir_all(&out);
        run(&RunOptions {
            landmark_map: Some(dir.join("landmark_map.csv")),
            ..RunOptions::new(mapped.clone(), clinical.clone(), out.clone())
        })
        .unwrap();
        let got = &metrics(&out)[&(tp.clone(), "Reader^Alpha".to_string())];
        let sva = |m: &Vec<(String, String)>| {
            m.iter()
                .find(|(n, _)| n == "sva_mm")
                .unwrap()
                .1
                .parse::<f64>()
                .unwrap()
        };
        assert!(
            (sva(got) - sva(&want)).abs() < 1e-6,
            "{tp}: SVA {} vs {}",
            sva(got),
            sva(&want)
        );
        for d in [original, tree, mapped] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
