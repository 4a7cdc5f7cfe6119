//! The generator end to end: determinism, the variant mix of the data contract, the
//! designed L4-L5 slip, the clinical columns and the visit schedules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::{tags, uids};
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use plumbline_geometry::{Landmark, Level, Point};
use plumbline_synth::cohort::{
    self, Design, FUSION_DAYS, FUSION_JITTER_DAYS, MmLandmarks, PatientDesign, PatientModel,
};
use plumbline_synth::{ImageSize, Schedule, SynthError, SynthOptions, generate, yyyymmdd};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "plumbline-synth-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn gen_into(dir: &Path, patients: usize, seed: u64) {
    gen_schedule(dir, patients, seed, Schedule::Discectomy);
}

fn gen_schedule(dir: &Path, patients: usize, seed: u64, schedule: Schedule) {
    generate(&SynthOptions {
        patients,
        seed,
        out: dir.to_path_buf(),
        image_size: ImageSize::Small,
        plant_errors: false,
        schedule,
    })
    .unwrap();
}

/// Rows of a generated table (no quoting in the generator's tables), header first.
fn table(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let (a, b, c) = (temp_dir("a"), temp_dir("b"), temp_dir("c"));
    gen_into(&a, 3, 11);
    gen_into(&b, 3, 11);
    gen_into(&c, 3, 12);
    let fa = files(&a);
    let fb = files(&b);
    assert!(fa.len() > 30, "{} files", fa.len());
    let rel = |root: &Path, v: &[PathBuf]| -> Vec<PathBuf> {
        v.iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(rel(&a, &fa), rel(&b, &fb));
    for (x, y) in fa.iter().zip(&fb) {
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs between two runs with the same seed",
            x.display()
        );
    }
    // Another seed gives another cohort.
    assert_ne!(
        std::fs::read(a.join("truth.csv")).unwrap(),
        std::fs::read(c.join("truth.csv")).unwrap()
    );
    // Existing output is never overwritten.
    let again = generate(&SynthOptions {
        patients: 3,
        seed: 11,
        out: a.clone(),
        image_size: ImageSize::Small,
        plant_errors: false,
        schedule: Default::default(),
    });
    assert!(matches!(again, Err(SynthError::Exists(_))));
    for d in [a, b, c] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// A header value of `obj` without its padding.
fn text(obj: &DefaultDicomObject, tag: Tag) -> Option<String> {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|v| v.trim_end_matches(['\0', ' ']).to_string())
}

/// The variants of the data contract an image file `name` shows: its spacing source,
/// anisotropic pixels, its orientation, RLE, a name without `.dcm`.
fn image_variants(obj: &DefaultDicomObject, name: &str) -> Vec<&'static str> {
    let s = |tag| text(obj, tag);
    let mut seen = vec![match (
        s(tags::PIXEL_SPACING),
        s(tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR),
    ) {
        (Some(_), _) => "pixel spacing",
        (None, Some(_)) => "imager spacing / magnification",
        (None, None) => "imager spacing only",
    }];
    let ips = s(tags::IMAGER_PIXEL_SPACING).unwrap();
    let (r, c) = ips.split_once('\\').unwrap();
    if r != c {
        seen.push("anisotropic");
    }
    let o = s(tags::PATIENT_ORIENTATION).unwrap_or_default();
    seen.push(match o.split('\\').next().unwrap_or("") {
        "A" => "A",
        "P" => "P",
        "L" => "L",
        "R" => "R",
        "" => "no orientation",
        other => panic!("unexpected orientation {other}"),
    });
    if obj.meta().transfer_syntax() == uids::RLE_LOSSLESS {
        seen.push("rle");
    }
    if !name.ends_with(".dcm") {
        seen.push("no suffix");
    }
    seen
}

#[test]
fn cohort_mixes_every_variant() {
    let dir = temp_dir("mix");
    gen_into(&dir, 16, 5);
    let mut seen = BTreeSet::new();
    let mut observers = BTreeSet::new();
    let all = files(&dir.join("dicom"));
    let mut per_image_srs = 0;
    for f in &all {
        let obj = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(f)
            .unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        match text(&obj, tags::MODALITY).as_deref() {
            Some("DX" | "CR") => seen.extend(image_variants(&obj, &name)),
            Some("SR") => {
                observers.insert(
                    name.split('_')
                        .nth(1)
                        .unwrap()
                        .trim_end_matches(".dcm")
                        .to_string(),
                );
                if name.contains("_lat") || name.contains("_ap") {
                    per_image_srs += 1;
                }
            }
            other => panic!("{}: unexpected modality {other:?}", f.display()),
        }
    }
    for want in [
        "pixel spacing",
        "imager spacing / magnification",
        "imager spacing only",
        "anisotropic",
        "A",
        "P",
        "L",
        "R",
        "no orientation",
        "rle",
        "no suffix",
    ] {
        assert!(seen.contains(want), "no {want} variant in {seen:?}");
    }
    assert_eq!(
        observers,
        BTreeSet::from(["alpha".to_string(), "beta".to_string()])
    );
    assert!(per_image_srs > 0);
    // Some readings miss landmarks: fewer truth rows than metrics there, all elsewhere.
    let truth = std::fs::read_to_string(dir.join("truth.csv")).unwrap();
    let mut per_reading = std::collections::BTreeMap::new();
    for line in truth.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        *per_reading.entry((f[0], f[1], f[2])).or_insert(0) += 1;
    }
    let all = plumbline_geometry::Metric::all().len();
    assert!(per_reading.values().any(|&n| n < all), "no missing metric");
    assert!(per_reading.values().any(|&n| n == all));

    std::fs::remove_dir_all(dir).unwrap();
}

const BALANCED: PatientDesign = PatientDesign {
    design: Design::Balanced,
    coronal_away: false,
    sagittal_forward: false,
    recovered_at: 0,
};

/// `n` patients drawn the way the generator seeds them (any seed will do for the model).
fn models(n: usize) -> Vec<PatientModel> {
    (0..n as u64)
        .map(|i| PatientModel::new(BALANCED, &mut ChaCha8Rng::seed_from_u64(1000 + i)))
        .collect()
}

fn get(v: &MmLandmarks, name: &str) -> Point {
    let lm: Landmark = name.parse().unwrap();
    v.iter().find(|(k, _)| *k == lm).unwrap().1
}

/// `l4_l5_slip_pct` of landmarks.md section 5, from mm landmarks.
fn slip_pct(v: &MmLandmarks) -> f64 {
    let (p5, a5, p4) = (
        get(v, "L5_sup_post"),
        get(v, "L5_sup_ant"),
        get(v, "L4_inf_post"),
    );
    let d = p5.dist(a5);
    ((p4.x - p5.x) * (a5.x - p5.x) + (p4.y - p5.y) * (a5.y - p5.y)) / d / d * 100.0
}

#[test]
fn designed_slip_is_what_the_spec_formula_measures() {
    let ms = models(1000);
    let slipped: Vec<&PatientModel> = ms.iter().filter(|m| m.anatomy.slip_pct.is_some()).collect();
    // About 12% (a per-patient draw, not an exact split).
    assert!(
        (90..150).contains(&slipped.len()),
        "{} slipped",
        slipped.len()
    );
    let mut designed = BTreeSet::new();
    let mut baseline = (f64::MAX, f64::MIN);
    for m in &ms {
        for schedule in [Schedule::Discectomy, Schedule::Fusion] {
            for (t, shape) in m.shapes.iter().enumerate() {
                let a = m.anatomy_at(schedule, t);
                let lat = cohort::lateral_landmarks(&a, shape);
                // SVA is still met exactly, slip or not.
                let sva = get(&lat, "C7_centroid").x - get(&lat, "S1_sup_post").x;
                assert!((sva - shape.sva).abs() < 1e-9, "SVA {sva} vs {}", shape.sva);
                let measured = slip_pct(&lat);
                let unslipped = cohort::lateral_landmarks(
                    &cohort::Anatomy {
                        slip_pct: None,
                        ..a.clone()
                    },
                    shape,
                );
                match a.slip_pct {
                    Some(p) => {
                        assert!((5.0..=25.0).contains(&p), "{p}");
                        assert!((measured - p).abs() < 1e-6, "{measured} vs designed {p}");
                        designed.insert((p * 10.0).round() as i64);
                        // L5, S1 and the femoral heads stay; L4 and above move forward.
                        for (k, pt) in &lat {
                            let before = get(&unslipped, &k.to_string());
                            let moved = pt.dist(before) > 1e-9;
                            let low = matches!(
                                k,
                                Landmark::FemoralHead(_)
                                    | Landmark::Corner(Level::S1 | Level::L(5), _, _)
                                    | Landmark::Centroid(Level::L(5))
                            );
                            assert_eq!(moved, !low, "{k}");
                        }
                        let l4 = "L4_inf_post";
                        assert!(get(&lat, l4).x > get(&unslipped, l4).x);
                    }
                    None => {
                        assert_eq!(lat, unslipped);
                        // Without a slip the disc's own shape reads as a slight
                        // retrolisthesis: -h sin(delta / 2) / depth x 100.
                        assert!((-4.0..0.0).contains(&measured), "{measured}");
                        baseline = (baseline.0.min(measured), baseline.1.max(measured));
                    }
                }
                // The AP view has no slip.
                assert_eq!(
                    cohort::ap_landmarks(&a, shape),
                    cohort::ap_landmarks(
                        &cohort::Anatomy {
                            slip_pct: None,
                            ..a.clone()
                        },
                        shape
                    )
                );
            }
        }
    }
    eprintln!(
        "{} of 1000 slipped; without a slip the measure runs {:.2}% to {:.2}%",
        slipped.len(),
        baseline.0,
        baseline.1
    );
    // The designed slips spread over the range, the same one at every timepoint.
    assert!(designed.len() > 80, "{} distinct slips", designed.len());
    assert!(designed.first().unwrap() < &80 && designed.last().unwrap() > &220);
}

#[test]
fn l4_l5_and_l5_s1_disc_heights_vary_across_patients() {
    let ms = models(300);
    let dist = |v: &MmLandmarks, a: &str, b: &str| get(v, a).dist(get(v, b));
    for (u, l) in [("L4", "L5"), ("L5", "S1")] {
        let mut ant = Vec::new();
        let mut post = Vec::new();
        for m in &ms {
            let lat = cohort::lateral_landmarks(&m.anatomy, &m.shapes[0]);
            ant.push(dist(&lat, &format!("{u}_inf_ant"), &format!("{l}_sup_ant")));
            post.push(dist(
                &lat,
                &format!("{u}_inf_post"),
                &format!("{l}_sup_post"),
            ));
        }
        let sd = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        };
        let range = |v: &[f64]| {
            v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min)
        };
        for (what, v) in [("anterior", &ant), ("posterior", &post)] {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            eprintln!(
                "{u}-{l} {what}: mean {mean:.2} mm, SD {:.2}, range {:.2}",
                sd(v),
                range(v)
            );
            assert!(sd(v) > 0.5, "{u}-{l} {what} SD {}", sd(v));
            assert!(range(v) > 3.0, "{u}-{l} {what} range {}", range(v));
        }
        // Lordotic discs: wider in front in (nearly) every patient.
        let wider = ant.iter().zip(&post).filter(|(a, p)| a > p).count();
        assert!(wider >= 295, "{u}-{l}: {wider} of 300 wider in front");
    }
}

#[test]
fn fusion_narrows_the_disc_above_the_fused_segments() {
    for m in models(200) {
        let i = m.adjacent_disc();
        let lowest = if m.clinical.fusion_to_sacrum { 16 } else { 15 };
        assert_eq!(i, lowest - usize::from(m.clinical.fused_levels));
        let h: Vec<[f64; 17]> = (0..4)
            .map(|t| m.anatomy_at(Schedule::Fusion, t).disc_h)
            .collect();
        // Before surgery, and in the other schedules, the anatomy is the fixed one.
        assert_eq!(h[0], m.anatomy.disc_h);
        for t in 0..4 {
            assert_eq!(
                m.anatomy_at(Schedule::Discectomy, t).disc_h,
                m.anatomy.disc_h
            );
        }
        assert!((0.0..0.3).contains(&m.adjacent_disc_loss));
        for t in 1..4 {
            for (k, (now, before)) in h[t].iter().zip(&h[t - 1]).enumerate() {
                if k == i {
                    assert!(now <= before);
                } else {
                    assert_eq!(now, before);
                }
            }
        }
        let lost = 1.0 - h[3][i] / m.anatomy.disc_h[i];
        let days = m.fusion_offsets[3] as f64;
        assert!((lost - m.adjacent_disc_loss * days / 728.0).abs() < 1e-12);
    }
}

#[test]
fn clinical_columns_have_their_shares() {
    let ms = models(2000);
    let share = |f: &dyn Fn(&PatientModel) -> bool| {
        ms.iter().filter(|m| f(m)).count() as f64 / ms.len() as f64
    };
    let hip = share(&|m| m.clinical.hip_pain);
    assert!((0.27..0.33).contains(&hip), "hip_pain {hip}");
    let sacrum = share(&|m| m.clinical.fusion_to_sacrum);
    assert!((0.47..0.53).contains(&sacrum), "fusion_to_sacrum {sacrum}");
    for (n, want) in [(1, 0.4), (2, 0.3), (3, 0.2), (4, 0.1)] {
        let got = share(&|m| m.clinical.fused_levels == n);
        assert!((got - want).abs() < 0.03, "{n} fused levels: {got}");
    }
}

/// FNV-1a, 64 bit.
fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

#[test]
fn default_schedule_is_unchanged_for_patients_without_a_slip() {
    // fixtures/cohort-small's command. Its patients P0003 and P0006 now have a slip; the
    // hash covers everything else, computed from the files the generator wrote before
    // the slip, the clinical columns and the schedules were added (commit b00f401): every
    // DICOM file of the other six patients (path and bytes), their truth.csv rows, and
    // the first six columns of clinical.csv and design.csv.
    let dir = temp_dir("unchanged");
    gen_into(&dir, 8, 1);
    let design = table(&dir.join("design.csv"));
    assert_eq!(design[0][6], "slip_pct");
    let slipped: BTreeSet<&str> = design[1..]
        .iter()
        .filter(|r| !r[6].is_empty())
        .map(|r| r[0].as_str())
        .collect();
    assert_eq!(slipped, BTreeSet::from(["P0003", "P0006"]));
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut rel: Vec<String> = files(&dir.join("dicom"))
        .iter()
        .map(|p| {
            let r = p.strip_prefix(&dir).unwrap();
            r.components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect::<Vec<_>>()
                .join("/")
        })
        .filter(|r| !slipped.contains(r.split('/').nth(1).unwrap()))
        .collect();
    rel.sort();
    assert_eq!(rel.len(), 94);
    for r in &rel {
        fnv(&mut h, r.as_bytes());
        fnv(&mut h, b"\0");
        fnv(&mut h, &std::fs::read(dir.join(r)).unwrap());
        fnv(&mut h, b"\0");
    }
    // truth.csv rows of the 22 metrics that existed at b00f401 (the metrics added since
    // are new rows, not changed ones).
    let old: BTreeSet<String> = plumbline_geometry::Metric::all()
        .into_iter()
        .take(22)
        .map(|m| m.name())
        .chain(["metric".to_string()])
        .collect();
    for line in std::fs::read_to_string(dir.join("truth.csv"))
        .unwrap()
        .lines()
    {
        let f: Vec<&str> = line.split(',').collect();
        if !slipped.contains(f[0]) && old.contains(f[3]) {
            fnv(&mut h, format!("{line}\n").as_bytes());
        }
    }
    for t in ["clinical.csv", "design.csv"] {
        for row in table(&dir.join(t)) {
            fnv(&mut h, format!("{}\n", row[..6].join(",")).as_bytes());
        }
    }
    assert_eq!(h, 0x256d_b06a_0f60_504a, "{h:#x}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Days since 1970-01-01 of a `YYYYMMDD` date in the generator's range.
fn day_of(date: &str) -> i64 {
    (17_000..22_000)
        .find(|&d| yyyymmdd(d) == date)
        .unwrap_or_else(|| panic!("{date} out of range"))
}

/// Study folders per patient: (timepoint, days from surgery), in date order.
fn studies(dir: &Path) -> BTreeMap<String, Vec<(String, i64)>> {
    let surgery: BTreeMap<String, i64> = table(&dir.join("clinical.csv"))[1..]
        .iter()
        .map(|r| (r[0].clone(), day_of(&r[1].replace('-', ""))))
        .collect();
    let mut out = BTreeMap::new();
    for (pid, day0) in &surgery {
        let mut v: Vec<(String, i64)> = std::fs::read_dir(dir.join("dicom").join(pid))
            .unwrap()
            .map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().to_string();
                let (date, tp) = name.split_once('_').unwrap();
                (tp.to_string(), day_of(date) - day0)
            })
            .collect();
        v.sort_by_key(|(_, d)| *d);
        out.insert(pid.clone(), v);
    }
    out
}

#[test]
fn fusion_studies_fall_in_their_windows() {
    let dir = temp_dir("fusion");
    gen_schedule(&dir, 6, 4, Schedule::Fusion);
    let names = ["preop", "w6", "w52", "w104"];
    let all = studies(&dir);
    assert_eq!(all.len(), 6);
    let mut offsets = BTreeSet::new();
    for (pid, v) in &all {
        let tps: Vec<&str> = v.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tps, names, "{pid}");
        for ((tp, day), nominal) in v.iter().zip(FUSION_DAYS) {
            assert!(
                (day - nominal).abs() <= FUSION_JITTER_DAYS,
                "{pid} {tp} on day {day}"
            );
            offsets.insert(day - nominal);
        }
        // Windows of a fusion protocol: before surgery, 6 weeks (+-2), 1 and 2 years.
        assert!((-30..0).contains(&v[0].1));
        assert!((28..=56).contains(&v[1].1));
        assert!((330..=400).contains(&v[2].1));
        assert!((690..=770).contains(&v[3].1));
    }
    assert!(offsets.len() > 3, "no jitter: {offsets:?}");
    // truth.csv and design.csv name the fusion timepoints.
    let truth: BTreeSet<String> = table(&dir.join("truth.csv"))[1..]
        .iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(truth, names.iter().map(|s| s.to_string()).collect());
    for r in &table(&dir.join("design.csv"))[1..] {
        assert!(["", "w6", "w52", "w104"].contains(&r[4].as_str()), "{r:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn survey_writes_one_study_per_patient_and_clinical_columns() {
    let (survey, disc) = (temp_dir("survey"), temp_dir("survey-disc"));
    gen_schedule(&survey, 8, 1, Schedule::Survey);
    gen_into(&disc, 8, 1);
    let s = studies(&survey);
    let d = studies(&disc);
    assert_eq!(s.len(), 8);
    for (pid, v) in &s {
        // One study, on the day of the discectomy schedule's preop study.
        assert_eq!(v.len(), 1, "{pid}");
        assert_eq!(v[0].0, "baseline");
        assert_eq!(d[pid][0].0, "preop");
        assert_eq!(v[0].1, d[pid][0].1);
        // Two images and one to three SRs.
        let n = files(&survey.join("dicom").join(pid)).len();
        assert!((3..=5).contains(&n), "{pid}: {n} files");
    }
    let truth: BTreeSet<String> = table(&survey.join("truth.csv"))[1..]
        .iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(truth, BTreeSet::from(["baseline".to_string()]));

    // The clinical table is the same whatever the schedule, and carries the new columns.
    let clinical = table(&survey.join("clinical.csv"));
    assert_eq!(clinical, table(&disc.join("clinical.csv")));
    assert_eq!(
        clinical[0],
        [
            "patient_id",
            "surgery_date",
            "herniation_level",
            "herniation_side",
            "sex",
            "age_years",
            "hip_pain",
            "fusion_to_sacrum",
            "fused_levels"
        ]
    );
    let mut seen = BTreeSet::new();
    for r in &clinical[1..] {
        assert!(["yes", "no"].contains(&r[6].as_str()), "{r:?}");
        assert!(["yes", "no"].contains(&r[7].as_str()), "{r:?}");
        let n: u8 = r[8].parse().unwrap();
        assert!((1..=4).contains(&n), "{r:?}");
        seen.insert((r[6].clone(), r[7].clone()));
    }
    assert!(seen.len() >= 3, "{seen:?}");
    // design.csv: the survey observes no recovery; the slips are the same.
    let (ds, dd) = (
        table(&survey.join("design.csv")),
        table(&disc.join("design.csv")),
    );
    for (a, b) in ds.iter().zip(&dd).skip(1) {
        assert_eq!(a[4], "");
        assert_eq!((&a[..4], &a[5..]), (&b[..4], &b[5..]));
    }
    for dir in [survey, disc] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
