//! The plausibility checks (`landmarks.md` section 7) on a generated cohort with planted
//! errors (`plumbline synth --plant-errors`): every planted error is flagged, in the
//! `plausibility` column of measurements.csv, in qc.csv and in the report, and no clean
//! reading is.

use std::collections::BTreeMap;
use std::path::PathBuf;

use plumbline::run::{RunOptions, run};
use plumbline_e2e::read_csv;
use plumbline_synth::{ImageSize, SynthOptions, generate};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-plaus-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

// Long (over 80 lines): one run of a planted cohort, checked against design.csv reading by reading.
#[test]
fn every_planted_error_is_flagged_and_no_clean_reading_is() {
    let cohort = temp_dir("cohort");
    generate(&SynthOptions {
        patients: 40,
        seed: 11,
        out: cohort.clone(),
        image_size: ImageSize::Small,
        plant_errors: true,
        schedule: Default::default(),
    })
    .unwrap();
    let out = temp_dir("out");
    run(&RunOptions {
        overlays: true,
        ..RunOptions::new(
            cohort.join("dicom"),
            cohort.join("clinical.csv"),
            out.clone(),
        )
    })
    .unwrap();

    // What was planted: (patient) -> (timepoint, observer, kind).
    let (header, design) = read_csv(&cohort.join("design.csv"));
    assert_eq!(header[5], "planted_error");
    let planted: BTreeMap<String, (String, String, String)> = design
        .iter()
        .filter(|d| !d[5].is_empty())
        .map(|d| {
            let p: Vec<&str> = d[5].split(':').collect();
            (d[0].clone(), (p[0].into(), p[1].into(), p[2].into()))
        })
        .collect();
    let kinds: Vec<&str> = planted.values().map(|p| p.2.as_str()).collect();
    for k in [
        "swapped_corners",
        "vertebra_out_of_order",
        "femoral_head_above_s1",
        "pi_jump",
    ] {
        assert!(kinds.contains(&k), "no {k} planted: {planted:?}");
    }
    assert!(planted.len() >= 7, "{planted:?}");

    let (header, rows) = read_csv(&out.join("measurements.csv"));
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let (pid, tp, obs, plaus) = (
        col("patient_id"),
        col("timepoint"),
        col("observer"),
        col("plausibility"),
    );
    let mut flagged = 0;
    let mut clean = 0;
    for r in &rows {
        let want = match planted.get(&r[pid]) {
            // The PI check compares a reader's timepoints and marks both readings of a
            // pair, so a PI jump (or a femoral head moved, which moves the hip axis) marks
            // every reading of that reader.
            Some((t, o, kind)) if *o == r[obs] => match (kind.as_str(), *t == r[tp]) {
                ("pi_jump", _) => "pi_jump",
                ("femoral_head_above_s1", true) => "femoral_heads;pi_jump",
                ("femoral_head_above_s1", false) => "pi_jump",
                ("swapped_corners", true) => "corner_sides",
                ("vertebra_out_of_order", true) => "body_order",
                (_, false) => "ok",
                (other, true) => panic!("unknown planted kind {other}"),
            },
            _ => "ok",
        };
        assert_eq!(r[plaus], want, "{} {} {}", r[pid], r[tp], r[obs]);
        if want == "ok" {
            clean += 1;
        } else {
            flagged += 1;
        }
    }
    eprintln!(
        "planted {} errors; {flagged} readings flagged, {clean} clean readings not flagged",
        planted.len()
    );
    assert!(clean > 100 && flagged >= planted.len());

    // qc.csv: warnings only for the patients with a planted error, naming the landmarks.
    let (_, qc) = read_csv(&out.join("qc.csv"));
    let implausible: Vec<&Vec<String>> = qc
        .iter()
        .filter(|q| q[4] == "implausible_landmarks")
        .collect();
    assert!(implausible.len() >= planted.len());
    for q in &implausible {
        assert_eq!(q[3], "warning");
        assert!(planted.contains_key(&q[2]), "{q:?}");
    }
    for (p, (_, _, kind)) in &planted {
        let msgs: Vec<&str> = implausible
            .iter()
            .filter(|q| q[2] == *p)
            .map(|q| q[5].as_str())
            .collect();
        let needle = match kind.as_str() {
            "swapped_corners" => "_sup_ant is not anterior of ",
            "vertebra_out_of_order" => "L2 lies at ",
            "femoral_head_above_s1" => "FH_right lies at ",
            _ => "pelvic incidence is ",
        };
        assert!(
            msgs.iter().any(|m| m.contains(needle)),
            "{p} {kind}: {msgs:?}"
        );
    }
    // The report lists each flagged reading with its overlay links.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let section = &html[html.find("<section id=\"plausibility\">").unwrap()..];
    assert!(section.contains(&format!(
        "{flagged} of {} readings failed a check",
        rows.len()
    )));
    for p in planted.keys() {
        assert!(
            section.contains(&format!("<a href=\"#patient-{p}\">{p}</a>")),
            "{p}"
        );
        assert!(section.contains(&format!("href=\"overlays/{p}/")), "{p}");
    }
    let _ = std::fs::remove_dir_all(&cohort);
    let _ = std::fs::remove_dir_all(&out);
}
