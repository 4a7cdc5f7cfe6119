//! Hand-computed cases for every metric, and properties (proptest).

use plumbline_geometry::*;
use proptest::prelude::*;

fn lm(s: &str) -> Landmark {
    s.parse().unwrap()
}

fn close(a: Option<f64>, b: f64) {
    let a = a.expect("metric missing");
    assert!((a - b).abs() < 1e-4, "{a} != {b}");
}

/// A lateral view in mm (x anterior, y up) with round numbers.
fn lateral_case() -> ViewLandmarks {
    ViewLandmarks::from_mm(
        ViewKind::Lateral,
        [
            ("C7_centroid", (25.0, 600.0)),
            ("T1_centroid", (80.0, 560.0)),
            ("T4_sup_post", (10.0, 500.0)),
            ("T4_sup_ant", (50.0, 480.0)),
            ("T12_inf_post", (0.0, 350.0)),
            ("T12_inf_ant", (40.0, 360.0)),
            ("L1_sup_post", (-10.0, 300.0)),
            ("L1_sup_ant", (30.0, 310.0)),
            ("L3_sup_post", (0.0, 200.0)),
            ("L3_sup_ant", (40.0, 205.0)),
            ("L3_inf_post", (0.0, 170.0)),
            ("L3_inf_ant", (40.0, 170.0)),
            ("L4_sup_post", (0.0, 100.0)),
            ("L4_sup_ant", (40.0, 100.0)),
            ("S1_sup_post", (0.0, 0.0)),
            ("S1_sup_ant", (40.0, -30.0)),
            ("FH_left", (30.0, -100.0)),
            ("FH_right", (50.0, -100.0)),
        ]
        .map(|(n, (x, y))| (lm(n), Point::new(x, y))),
        OrientationSource::Header,
    )
}

/// An AP view in mm (x to the patient's left, y up).
fn ap_case() -> ViewLandmarks {
    ViewLandmarks::from_mm(
        ViewKind::Ap,
        [
            ("C7_centroid", (-15.0, 600.0)),
            ("T5_sup_right", (-20.0, 500.0)),
            ("T5_sup_left", (20.0, 500.0)),
            ("T5_inf_right", (-20.0, 480.0)),
            ("T5_inf_left", (20.0, 480.0)),
            ("T10_sup_right", (-20.0, 400.0)),
            ("T10_sup_left", (20.0, 410.0)),
            ("T10_inf_right", (-20.0, 380.0)),
            ("T10_inf_left", (20.0, 390.0)),
            ("L3_sup_right", (-20.0, 170.0)),
            ("L3_sup_left", (20.0, 160.0)),
            ("L3_inf_right", (-20.0, 150.0)),
            ("L3_inf_left", (20.0, 140.0)),
            ("S1_sup_right", (-20.0, 0.0)),
            ("S1_sup_left", (20.0, 0.0)),
            ("FH_right", (-90.0, -80.0)),
            ("FH_left", (90.0, -70.0)),
        ]
        .map(|(n, (x, y))| (lm(n), Point::new(x, y))),
        OrientationSource::Header,
    )
}

#[test]
fn lateral_metrics_by_hand() {
    let v = lateral_case();
    // SVA = x(C7) - x(S1_sup_post) = 25 - 0 = 25 mm.
    close(sva_mm(&v), 25.0);
    // S1 endplate post (0,0) -> ant (40,-30): tilt = atan2(-30, 40) = -36.869898 deg;
    // SS = 36.869898.
    close(ss_deg(&v), 36.869898);
    // M = (20,-15), H = mean((30,-100),(50,-100)) = (40,-100);
    // PT = atan2(Hx-Mx, My-Hy) = atan2(20, 85) = 13.240520 deg.
    close(pt_deg(&v), 13.240520);
    // PI: caudal normal n = (sin t, -cos t) = (-0.6, -0.8), w = H-M = (20,-85);
    // cos = (-12 + 68) / sqrt(7625) = 0.641311 -> 50.110418 deg = PT + SS.
    close(pi_deg(&v), 50.110418);
    // L1 sup tilt = atan2(10, 40) = 14.036243; LL = 14.036243 + 36.869898 = 50.906141.
    close(ll_deg(&v), 50.906141);
    // L4 sup flat: L4-S1 = 0 + 36.869898.
    close(l4_s1_lordosis_deg(&v), 36.869898);
    // T4 sup tilt = atan2(-20,40) = -26.565051; T12 inf = atan2(10,40) = 14.036243;
    // TK = 14.036243 + 26.565051 = 40.601295.
    close(tk_deg(&v, &MetricOptions::default()), 40.601295);
    // TPA = PT + atan2(T1x-Hx, T1y-Hy) = 13.240520 + atan2(40, 660) = 13.240520 + 3.468229.
    close(tpa_deg(&v), 16.708749);
    // L3: sup tilt atan2(5,40) = 7.125016, inf flat -> wedge 7.125016 deg;
    // anterior height |(40,205)-(40,170)| = 35, posterior 30 -> (35-30)/35*100 = 14.285714 %.
    close(wedge_angle_deg(&v, Level::L(3)), 7.125016);
    close(wedge_index_pct(&v, Level::L(3)), 14.285714);
    let m = Metrics::compute(Some(&v), None, &MetricOptions::default());
    // PI-LL = 50.110418 - 50.906141 = -0.795724.
    close(m.get(Metric::PiLlDeg), -0.795724);
    assert_eq!(m.get(Metric::WedgeAngleDeg(1)), None); // L1 inferior corners absent
    assert_eq!(m.get(Metric::CobbDeg), None); // no AP view
}

#[test]
fn configurable_tk_levels() {
    // T4 sup to L1 sup is not a TK definition anyone uses; T4 sup to T12 inf with
    // explicit levels must equal the default.
    let v = lateral_case();
    let o = MetricOptions {
        tk_upper: Level::T(4),
        tk_lower: Level::T(12),
    };
    assert_eq!(tk_deg(&v, &o), tk_deg(&v, &MetricOptions::default()));
    let o = MetricOptions {
        tk_upper: Level::T(5),
        tk_lower: Level::T(12),
    };
    assert_eq!(tk_deg(&v, &o), None);
}

#[test]
fn ap_metrics_by_hand() {
    let v = ap_case();
    // M = (0,0); C7PL-CSVL = Mx - C7x = 0 - (-15) = 15 mm (C7 to the patient's right).
    close(c7pl_csvl_mm(&v), 15.0);
    // FH_right (-90,-80) -> FH_left (90,-70): atan2(10, 180) = 3.179830 deg.
    close(pelvic_obliquity_deg(&v), 3.179830);
    // Sup tilts: T5 0, T10 atan2(10,40)=14.036243, L3 -14.036243; inf tilts the same.
    // Pairs U above V: (T5,T10) 14.04, (T5,L3) 14.04, (T10,L3) 28.072487.
    let c = cobb(&v).unwrap();
    assert!((c.angle - 28.072487).abs() < 1e-4);
    assert_eq!((c.upper, c.lower), (Level::T(10), Level::L(3)));
    let m = Metrics::compute(None, Some(&v), &MetricOptions::default());
    assert_eq!(m.cobb_levels, Some((Level::T(10), Level::L(3))));
    close(m.c7pl_csvl_magnitude_mm, 15.0);
}

#[test]
fn ap_unknown_orientation_keeps_magnitudes_only() {
    let v = ap_case();
    let unknown = ViewLandmarks::from_mm(
        ViewKind::Ap,
        v.points().iter().map(|(k, p)| (*k, *p)),
        OrientationSource::Unknown,
    );
    assert_eq!(c7pl_csvl_mm(&unknown), None);
    assert_eq!(pelvic_obliquity_deg(&unknown), None);
    close(c7pl_csvl_magnitude_mm(&unknown), 15.0);
    close(cobb(&unknown).map(|c| c.angle), 28.072487);
}

#[test]
fn pixel_frame_gives_the_same_metrics_as_mm() {
    // The lateral case drawn on a P\F image with 0.2 mm rows and 0.1 mm columns:
    // column = -x / 0.1 + 1000, row = -y / 0.2 + 4000.
    let v = lateral_case();
    let px: Vec<_> = v
        .points()
        .iter()
        .map(|(k, p)| (*k, (-p.x / 0.1 + 1000.0, -p.y / 0.2 + 4000.0)))
        .collect();
    let w = ViewLandmarks::from_pixels(
        ViewKind::Lateral,
        px.clone(),
        Spacing { row: 0.2, col: 0.1 },
        Some(PatientDirection::P),
        Some(PatientDirection::F),
    )
    .unwrap();
    close(sva_mm(&w), 25.0);
    close(pi_deg(&w), 50.110418);
    // Without orientation, anterior is inferred from S1 and the result is the same.
    let w = ViewLandmarks::from_pixels(
        ViewKind::Lateral,
        px,
        Spacing { row: 0.2, col: 0.1 },
        None,
        None,
    )
    .unwrap();
    assert_eq!(w.orientation(), OrientationSource::Inferred);
    close(sva_mm(&w), 25.0);
    close(ll_deg(&w), 50.906141);
}

#[test]
fn classification_by_hand() {
    let t = Thresholds::default();
    let v = lateral_case().map_points(|p| Point::new(p.x * 2.0, p.y)); // SVA 50
    let m = Metrics::compute(Some(&v), Some(&ap_case()), &MetricOptions::default());
    let c = classify(&m, &t);
    assert_eq!(c.sagittal, Some(true));
    assert_eq!(c.coronal, Some(false)); // 15 mm <= 20
    assert_eq!(c.kind, Some(ImbalanceType::Sagittal));
    // Exactly at the threshold is balanced (strictly greater is imbalanced).
    let v = lateral_case().map_points(|p| Point::new(p.x * 1.6, p.y)); // SVA 40
    let m = Metrics::compute(Some(&v), Some(&ap_case()), &MetricOptions::default());
    assert_eq!(classify(&m, &t).kind, Some(ImbalanceType::Balanced));
    let ap = ap_case().map_points(|p| Point::new(p.x * 2.0, p.y)); // C7PL-CSVL 30
    let m = Metrics::compute(Some(&v), Some(&ap), &MetricOptions::default());
    assert_eq!(classify(&m, &t).kind, Some(ImbalanceType::Coronal));
    let m = Metrics::compute(None, Some(&ap), &MetricOptions::default());
    assert_eq!(classify(&m, &t).kind, None);
    // C7 to the right (+30) with a left herniation: shifted away (opposite).
    assert_eq!(
        shift_relation(30.0, HerniationSide::Left),
        Some(ShiftRelation::Opposite)
    );
    assert_eq!(
        shift_relation(30.0, HerniationSide::Right),
        Some(ShiftRelation::Same)
    );
    assert_eq!(shift_relation(-30.0, HerniationSide::Central), None);
    assert_eq!(sagittal_direction(50.0), Some(SagittalDirection::Forward));
    assert_eq!(sagittal_direction(-50.0), Some(SagittalDirection::Backward));
}

/// Landmarks each metric needs: dropping any one gives `None`.
// Long (over 80 lines): one table: each metric next to the landmarks it needs.
#[test]
fn dropping_a_required_landmark_gives_none() {
    let lat = lateral_case();
    let ap = ap_case();
    let o = MetricOptions::default();
    type F = fn(&ViewLandmarks) -> Option<f64>;
    let lateral: Vec<(&str, F, Vec<&str>)> = vec![
        ("sva", sva_mm, vec!["C7_centroid", "S1_sup_post"]),
        ("ss", ss_deg, vec!["S1_sup_ant", "S1_sup_post"]),
        ("pt", pt_deg, vec!["S1_sup_ant", "S1_sup_post"]),
        ("pi", pi_deg, vec!["S1_sup_ant", "S1_sup_post"]),
        (
            "ll",
            ll_deg,
            vec!["L1_sup_ant", "L1_sup_post", "S1_sup_ant", "S1_sup_post"],
        ),
        (
            "l4s1",
            l4_s1_lordosis_deg,
            vec!["L4_sup_ant", "L4_sup_post", "S1_sup_ant", "S1_sup_post"],
        ),
        (
            "tpa",
            tpa_deg,
            vec!["T1_centroid", "S1_sup_ant", "S1_sup_post"],
        ),
        (
            "wedge",
            |v| wedge_angle_deg(v, Level::L(3)),
            vec!["L3_sup_ant", "L3_sup_post", "L3_inf_ant", "L3_inf_post"],
        ),
        (
            "wedge index",
            |v| wedge_index_pct(v, Level::L(3)),
            vec!["L3_sup_ant", "L3_sup_post", "L3_inf_ant", "L3_inf_post"],
        ),
    ];
    for (name, f, needs) in lateral {
        assert!(f(&lat).is_some(), "{name}");
        for n in needs {
            assert_eq!(f(&lat.without(lm(n))), None, "{name} without {n}");
        }
    }
    for n in ["T4_sup_ant", "T4_sup_post", "T12_inf_ant", "T12_inf_post"] {
        assert_eq!(tk_deg(&lat.without(lm(n)), &o), None, "tk without {n}");
    }
    // Femoral heads: one is enough (the mean of the heads present), none is not.
    let no_heads = lat.without(lm("FH_left")).without(lm("FH_right"));
    for f in [pt_deg, pi_deg, tpa_deg] {
        assert!(f(&lat.without(lm("FH_left"))).is_some());
        assert_eq!(f(&no_heads), None);
    }
    let ap_metrics: Vec<(&str, F, Vec<&str>)> = vec![
        (
            "c7pl",
            c7pl_csvl_mm,
            vec!["C7_centroid", "S1_sup_left", "S1_sup_right"],
        ),
        ("po", pelvic_obliquity_deg, vec!["FH_left", "FH_right"]),
    ];
    for (name, f, needs) in ap_metrics {
        assert!(f(&ap).is_some(), "{name}");
        for n in needs {
            assert_eq!(f(&ap.without(lm(n))), None, "{name} without {n}");
        }
    }
    // Cobb needs two vertebrae with corners: only L3 left -> None.
    let only_l3 = ViewLandmarks::from_mm(
        ViewKind::Ap,
        ap.points()
            .iter()
            .filter(|(k, _)| k.to_string().starts_with("L3"))
            .map(|(k, p)| (*k, *p)),
        OrientationSource::Header,
    );
    assert_eq!(cobb(&only_l3), None);
    // Metrics of the wrong view are None, not 0.
    assert_eq!(sva_mm(&ap), None);
    assert_eq!(c7pl_csvl_mm(&lat), None);
    // A metrics table never holds NaN or 0 for missing: every value is Some finite or None.
    let m = Metrics::compute(Some(&no_heads), Some(&ap), &o);
    assert_eq!(m.get(Metric::PtDeg), None);
    assert_eq!(m.get(Metric::PiLlDeg), None);
    assert!(m.iter().all(|(_, v)| v.is_none_or(f64::is_finite)));
}

#[test]
fn metric_names_are_the_spec_columns() {
    let names: Vec<String> = Metric::all().into_iter().map(Metric::name).collect();
    // 22 whole-spine and body metrics, 10 body heights, 6 segments x 6 disc metrics.
    assert_eq!(names.len(), 22 + 10 + 36);
    assert_eq!(names[0], "sva_mm");
    assert_eq!(names[9], "l1_wedge_angle_deg");
    assert_eq!(names[18], "l5_wedge_index_pct");
    assert_eq!(names[21], "pelvic_obliquity_deg");
    assert_eq!(names[22], "l1_ant_height_mm");
    assert_eq!(names[27], "l1_post_height_mm");
    assert_eq!(
        names[32..38],
        [
            "t12_l1_disc_angle_deg",
            "t12_l1_segmental_lordosis_deg",
            "t12_l1_disc_height_ant_mm",
            "t12_l1_disc_height_post_mm",
            "t12_l1_disc_height_index",
            "t12_l1_slip_pct",
        ]
    );
    assert_eq!(names[67], "l5_s1_slip_pct");
    for n in &names {
        assert_eq!(Metric::from_name(n).unwrap().name(), *n);
    }
}

/// L4, L5 and S1 on a lateral view (mm, x anterior, y up), for the segment metrics.
fn segment_case() -> ViewLandmarks {
    ViewLandmarks::from_mm(
        ViewKind::Lateral,
        [
            ("L4_sup_post", (0.0, 100.0)),
            ("L4_sup_ant", (40.0, 104.0)),
            ("L4_inf_post", (6.0, 70.0)),
            ("L4_inf_ant", (46.0, 70.0)),
            ("L5_sup_post", (3.0, 60.0)),
            ("L5_sup_ant", (43.0, 58.0)),
            ("L5_inf_post", (3.0, 30.0)),
            ("L5_inf_ant", (43.0, 27.0)),
            ("S1_sup_post", (5.0, 20.0)),
            ("S1_sup_ant", (45.0, 5.0)),
        ]
        .map(|(n, (x, y))| (lm(n), Point::new(x, y))),
        OrientationSource::Header,
    )
}

#[test]
fn segment_metrics_by_hand() {
    let v = segment_case();
    let l4_l5 = Segment::parse("l4_l5").unwrap();
    let l5_s1 = Segment::parse("L5-S1").unwrap();
    // Tilts: L4 sup atan2(4, 40) = 5.710593; L4 inf 0; L5 sup atan2(-2, 40) = -2.862405;
    // L5 inf atan2(-3, 40) = -4.289153; S1 sup atan2(-15, 40) = -20.556045 (degrees).
    // L4-L5 disc angle = tilt(L4 inf) - tilt(L5 sup) = 0 + 2.862405.
    close(disc_angle_deg(&v, l4_l5), 2.862405);
    // L4-L5 segmental lordosis = tilt(L4 sup) - tilt(L5 inf) = 5.710593 + 4.289153.
    close(segmental_lordosis_deg(&v, l4_l5), 9.999746);
    // L5-S1 disc angle = tilt(L5 inf) - tilt(S1 sup) = -4.289153 + 20.556045.
    close(disc_angle_deg(&v, l5_s1), 16.266892);
    // L5-S1 segmental lordosis = tilt(L5 sup) - tilt(S1 sup) = -2.862405 + 20.556045.
    close(segmental_lordosis_deg(&v, l5_s1), 17.693640);
    // L4 body heights: ant (40,104)-(46,70) = sqrt(36 + 1156) = 34.525353,
    // post (0,100)-(6,70) = sqrt(36 + 900) = 30.594117.
    let (ant, post) = body_heights_mm(&v, Level::L(4));
    close(ant, 34.525353);
    close(post, 30.594117);
    // L4-L5 disc: ant (46,70)-(43,58) = sqrt(153) = 12.369317, post (6,70)-(3,60) =
    // sqrt(109) = 10.440307; L4 inferior endplate depth 40: index = 22.809624 / 80.
    let d = disc(&v, l4_l5);
    close(d.height_ant_mm, 12.369317);
    close(d.height_post_mm, 10.440307);
    close(d.height_index, 0.285120);
    // Slip: w = L4_inf_post - L5_sup_post = (3, 10), e*d = (40, -2), d^2 = 1604:
    // (120 - 20) / 1604 x 100 = 6.234414 % (anterior).
    close(d.slip_pct, 6.234414);
    // L5-S1: ant (43,27)-(45,5) = sqrt(488) = 22.090722, post (3,30)-(5,20) = sqrt(104)
    // = 10.198039, L5 inferior depth sqrt(1609) = 40.112342: index = 32.288761 / 80.224684.
    // Slip: w = (-2, 10), e*d = (40, -15), d^2 = 1825: (-80 - 150) / 1825 x 100 = -12.602740
    // (L5 behind S1: retrolisthesis).
    let d = disc(&v, l5_s1);
    close(d.height_ant_mm, 22.090722);
    close(d.height_post_mm, 10.198039);
    close(d.height_index, 0.402479);
    close(d.slip_pct, -12.602740);
    // The table names and values agree with the functions.
    let m = Metrics::compute(Some(&v), None, &MetricOptions::default());
    close(
        m.get(Metric::from_name("l4_l5_slip_pct").unwrap()),
        6.234414,
    );
    close(
        m.get(Metric::from_name("l4_post_height_mm").unwrap()),
        30.594117,
    );
    close(
        m.get(Metric::from_name("l5_s1_disc_height_index").unwrap()),
        0.402479,
    );
    // L3-L4 has no L3 corners: missing, not 0.
    assert_eq!(
        m.get(Metric::from_name("l3_l4_disc_angle_deg").unwrap()),
        None
    );
    assert_eq!(m.get(Metric::from_name("l3_l4_slip_pct").unwrap()), None);
    // Angles need the direction; distances, the index and the slip do not.
    let unknown = ViewLandmarks::from_mm(
        ViewKind::Lateral,
        v.points().iter().map(|(k, p)| (*k, *p)),
        OrientationSource::Unknown,
    );
    assert_eq!(disc_angle_deg(&unknown, l4_l5), None);
    assert_eq!(disc(&unknown, l4_l5), disc(&v, l4_l5));
}

#[test]
fn schwab_and_wedging_by_hand() {
    let t = Thresholds::default();
    let grade = |pi_ll: f64, pt: f64, sva: f64| {
        let m = Metrics::from_parts(
            [
                (Metric::PiLlDeg, pi_ll),
                (Metric::PtDeg, pt),
                (Metric::SvaMm, sva),
            ],
            None,
            None,
        );
        let s = classify(&m, &t).schwab;
        [s.pi_ll, s.pt, s.sva].map(|g| g.unwrap().as_str())
    };
    // Below, at and above each limit (PI-LL 10/20, PT 20/30, SVA 40/95).
    assert_eq!(grade(9.9, 19.9, 39.9), ["0", "0", "0"]);
    assert_eq!(grade(10.0, 20.0, 40.0), ["+", "+", "+"]);
    assert_eq!(grade(20.0, 30.0, 95.0), ["+", "+", "+"]);
    assert_eq!(grade(20.1, 30.1, 95.1), ["++", "++", "++"]);
    // Signed: a negative SVA (backward) or PI-LL is grade 0.
    assert_eq!(grade(-25.0, -5.0, -120.0), ["0", "0", "0"]);
    // Missing metrics give no grade.
    let none = classify(&Metrics::default(), &t);
    assert_eq!(none.schwab, Schwab::default());
    assert_eq!(none.wedge_abnormal, [None; 5]);
    // Abnormal wedging: index strictly above 8.3 %.
    let m = Metrics::from_parts(
        [
            (Metric::WedgeIndexPct(1), 8.3),
            (Metric::WedgeIndexPct(4), 8.31),
            (Metric::WedgeIndexPct(5), -12.0),
        ],
        None,
        None,
    );
    assert_eq!(
        classify(&m, &t).wedge_abnormal,
        [Some(false), None, None, Some(true), Some(false)]
    );
    let strict = Thresholds {
        wedge_abnormal_pct: 5.0,
        ..t
    };
    assert_eq!(classify(&m, &strict).wedge_abnormal[0], Some(true));
}

// ---------------------------------------------------------------- properties

/// A plausible lateral or AP view: a column of vertebrae with random shapes.
fn view_strategy(kind: ViewKind) -> impl Strategy<Value = ViewLandmarks> {
    (
        proptest::collection::vec((-30.0..30.0f64, -25.0..25.0f64, 25.0..45.0f64), 18),
        -70.0..0.0f64,
        (-60.0..60.0f64, -150.0..-60.0f64, 5.0..40.0f64),
        (-80.0..80.0f64, 550.0..700.0f64),
    )
        .prop_map(move |(bodies, s1_tilt, (hx, hy, hsep), (c7x, c7y))| {
            let (pos, neg) = match kind {
                ViewKind::Lateral => ("ant", "post"),
                ViewKind::Ap => ("left", "right"),
            };
            let mut pts = Vec::new();
            let mut add = |n: String, x: f64, y: f64| pts.push((lm(&n), Point::new(x, y)));
            let t = s1_tilt.to_radians();
            add(format!("S1_sup_{neg}"), 0.0, 0.0);
            add(format!("S1_sup_{pos}"), 40.0 * t.cos(), 40.0 * t.sin());
            for (i, level) in Level::thoracolumbar().enumerate() {
                let (dx, tilt, h) = bodies[i];
                let cy = 30.0 + 35.0 * (17 - i) as f64;
                let cx = dx;
                let (s, c) = tilt.to_radians().sin_cos();
                add(format!("{level}_centroid"), cx, cy);
                for (e, off) in [("sup", h / 2.0), ("inf", -h / 2.0)] {
                    add(
                        format!("{level}_{e}_{neg}"),
                        cx - 20.0 * c,
                        cy + off - 20.0 * s,
                    );
                    add(
                        format!("{level}_{e}_{pos}"),
                        cx + 20.0 * c,
                        cy + off + 20.0 * s,
                    );
                }
            }
            add("C7_centroid".into(), c7x, c7y);
            add("FH_left".into(), hx - hsep, hy);
            add("FH_right".into(), hx + hsep, hy + 3.0);
            ViewLandmarks::from_mm(kind, pts, OrientationSource::Header)
        })
}

fn rotation_free_lateral(v: &ViewLandmarks) -> Vec<Option<f64>> {
    let mut out = vec![
        pi_deg(v),
        ll_deg(v),
        l4_s1_lordosis_deg(v),
        tk_deg(v, &MetricOptions::default()),
        tpa_deg(v),
    ];
    for n in 1..=5 {
        out.push(wedge_angle_deg(v, Level::L(n)));
        out.push(wedge_index_pct(v, Level::L(n)));
    }
    for g in Segment::all() {
        let d = disc(v, g);
        out.extend([
            disc_angle_deg(v, g),
            segmental_lordosis_deg(v, g),
            d.height_index,
            d.slip_pct,
        ]);
    }
    out
}

fn assert_all_close(a: &[Option<f64>], b: &[Option<f64>], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x.expect("present"), y.expect("present"));
        assert!((x - y).abs() < tol, "{x} vs {y}");
    }
}

proptest! {
    #[test]
    fn pi_is_pt_plus_ss(v in view_strategy(ViewKind::Lateral)) {
        let (pi, pt, ss) = (pi_deg(&v).unwrap(), pt_deg(&v).unwrap(), ss_deg(&v).unwrap());
        prop_assert!((pi - (pt + ss)).abs() < 1e-9, "{pi} vs {pt} + {ss}");
    }

    #[test]
    fn angle_metrics_survive_translation_scaling_rotation(
        v in view_strategy(ViewKind::Lateral),
        ap in view_strategy(ViewKind::Ap),
        (dx, dy) in (-500.0..500.0f64, -500.0..500.0f64),
        k in 0.2..5.0f64,
        theta in -40.0..40.0f64,
    ) {
        let (s, c) = theta.to_radians().sin_cos();
        let moved = |p: Point| {
            let (x, y) = (p.x * k, p.y * k);
            Point::new(x * c - y * s + dx, x * s + y * c + dy)
        };
        let before = rotation_free_lateral(&v);
        let after = rotation_free_lateral(&v.map_points(moved));
        assert_all_close(&before, &after, 1e-7);
        let c0 = cobb(&ap).unwrap().angle;
        let c1 = cobb(&ap.map_points(moved)).unwrap().angle;
        prop_assert!((c0 - c1).abs() < 1e-7);
        // Distances scale, SVA and C7PL-CSVL scale with k under translation + scaling.
        let scaled = |p: Point| Point::new(p.x * k + dx, p.y * k + dy);
        let sva0 = sva_mm(&v).unwrap();
        prop_assert!((sva_mm(&v.map_points(scaled)).unwrap() - k * sva0).abs() < 1e-7);
        // SS and PT are measured against the horizontal/vertical: unchanged by
        // translation and scaling (not by rotation).
        prop_assert!((ss_deg(&v.map_points(scaled)).unwrap() - ss_deg(&v).unwrap()).abs() < 1e-9);
        prop_assert!((pt_deg(&v.map_points(scaled)).unwrap() - pt_deg(&v).unwrap()).abs() < 1e-9);
    }

    #[test]
    fn wedges_and_discs_add_up_to_lordosis(v in view_strategy(ViewKind::Lateral)) {
        // tilt(L1 sup) - tilt(S1 sup) telescopes through every body and disc below L1.
        let m = Metrics::compute(Some(&v), None, &MetricOptions::default());
        let get = |n: &str| m.get(Metric::from_name(n).unwrap()).unwrap();
        let bodies: f64 = (1..=5).map(|n| get(&format!("l{n}_wedge_angle_deg"))).sum();
        let discs: f64 = ["l1_l2", "l2_l3", "l3_l4", "l4_l5", "l5_s1"]
            .iter()
            .map(|g| get(&format!("{g}_disc_angle_deg")))
            .sum();
        prop_assert!((bodies + discs - get("ll_deg")).abs() < 1e-9);
        // A segment's lordosis is the wedges of its two bodies plus its disc (for L5-S1,
        // L5's wedge plus the disc).
        for (u, l) in [(1, 2), (2, 3), (3, 4), (4, 5)] {
            let seg = get(&format!("l{u}_l{l}_segmental_lordosis_deg"));
            let parts = get(&format!("l{u}_wedge_angle_deg"))
                + get(&format!("l{u}_l{l}_disc_angle_deg"))
                + get(&format!("l{l}_wedge_angle_deg"));
            prop_assert!((seg - parts).abs() < 1e-9);
        }
        let l5s1 = get("l5_wedge_angle_deg") + get("l5_s1_disc_angle_deg");
        prop_assert!((get("l5_s1_segmental_lordosis_deg") - l5s1).abs() < 1e-9);
        // Body and disc heights are lengths: never negative.
        for (k, val) in m.iter() {
            if k.unit() == "mm" && k.name().contains("height") {
                prop_assert!(val.unwrap() >= 0.0);
            }
        }
    }

    #[test]
    fn disc_measures_scale_and_mirror(
        v in view_strategy(ViewKind::Lateral),
        k in 0.2..5.0f64,
        (dx, dy) in (-500.0..500.0f64, -500.0..500.0f64),
    ) {
        // Heights scale with k; the index and the slip are ratios: unchanged, also by a
        // mirror (a lateral view taken from the other side).
        let scaled = v.map_points(|p| Point::new(p.x * k + dx, p.y * k + dy));
        let mirrored = v.map_points(|p| Point::new(-p.x, p.y));
        for g in Segment::all() {
            let (a, b, c) = (disc(&v, g), disc(&scaled, g), disc(&mirrored, g));
            prop_assert!((b.height_ant_mm.unwrap() - k * a.height_ant_mm.unwrap()).abs() < 1e-7);
            prop_assert!((b.height_post_mm.unwrap() - k * a.height_post_mm.unwrap()).abs() < 1e-7);
            prop_assert!((b.height_index.unwrap() - a.height_index.unwrap()).abs() < 1e-9);
            prop_assert!((b.slip_pct.unwrap() - a.slip_pct.unwrap()).abs() < 1e-7);
            prop_assert!((c.slip_pct.unwrap() - a.slip_pct.unwrap()).abs() < 1e-9);
        }
        for n in 1..=5 {
            let (a0, p0) = body_heights_mm(&v, Level::L(n));
            let (a1, p1) = body_heights_mm(&scaled, Level::L(n));
            prop_assert!((a1.unwrap() - k * a0.unwrap()).abs() < 1e-7);
            prop_assert!((p1.unwrap() - k * p0.unwrap()).abs() < 1e-7);
        }
    }

    #[test]
    fn mirroring_flips_sva_and_c7pl_csvl(
        v in view_strategy(ViewKind::Lateral),
        ap in view_strategy(ViewKind::Ap),
    ) {
        let mirror = |p: Point| Point::new(-p.x, p.y);
        let sva = sva_mm(&v).unwrap();
        prop_assert_eq!(sva_mm(&v.map_points(mirror)), Some(-sva));
        let c = c7pl_csvl_mm(&ap).unwrap();
        prop_assert_eq!(c7pl_csvl_mm(&ap.map_points(mirror)), Some(-c));
    }

    #[test]
    fn every_metric_is_none_without_its_landmarks(
        v in view_strategy(ViewKind::Lateral),
        ap in view_strategy(ViewKind::Ap),
        pick in 0usize..1000,
    ) {
        // Drop one random landmark: each metric either keeps its value (landmark not
        // needed) or becomes None; it never turns into 0 or NaN. Dropping one femoral
        // head legitimately changes PT/PI/TPA/PI-LL/obliquity (mean of the heads present).
        let full = Metrics::compute(Some(&v), Some(&ap), &MetricOptions::default());
        let keys: Vec<Landmark> = v.points().keys().chain(ap.points().keys()).copied().collect();
        let drop = keys[pick % keys.len()];
        let less = Metrics::compute(Some(&v.without(drop)), Some(&ap.without(drop)), &MetricOptions::default());
        for ((k, a), (_, b)) in full.iter().zip(less.iter()) {
            prop_assert!(a.is_some(), "{} missing on the full set", k.name());
            if let Some(b) = b {
                prop_assert!(b.is_finite());
                if k == Metric::CobbDeg {
                    // The largest over fewer pairs can only shrink.
                    prop_assert!(b <= a.unwrap());
                } else if !matches!(drop, Landmark::FemoralHead(_)) {
                    prop_assert_eq!(Some(b), a, "{} changed without {}", k.name(), drop);
                }
            }
        }
    }
}

/// Metrics keeps values by `Metric::index`: it must be each metric's place in
/// `Metric::all()`, and a metric outside the list has none (and is never stored).
#[test]
fn metric_index_is_the_place_in_all() {
    let all = Metric::all();
    assert_eq!(all.len(), METRIC_COUNT);
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m.index(), Some(i), "{}", m.name());
    }
    for outside in [
        Metric::WedgeAngleDeg(0),
        Metric::WedgeAngleDeg(6),
        Metric::WedgeIndexPct(9),
        Metric::AntHeightMm(0),
        Metric::PostHeightMm(6),
    ] {
        assert_eq!(outside.index(), None, "{outside:?}");
    }
    // Every metric set is read back, each from its own place.
    let m = Metrics::from_parts(
        all.iter()
            .enumerate()
            .map(|(i, &k)| (k, i as f64 + 0.5))
            .chain([(Metric::WedgeAngleDeg(6), 1.0)]),
        None,
        None,
    );
    for (i, &k) in all.iter().enumerate() {
        assert_eq!(m.get(k), Some(i as f64 + 0.5), "{}", k.name());
    }
    assert_eq!(m.get(Metric::WedgeAngleDeg(6)), None);
    assert_eq!(Metrics::default().get(Metric::SvaMm), None);
}
