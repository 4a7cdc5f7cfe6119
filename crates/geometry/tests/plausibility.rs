//! The plausibility checks of `landmarks.md` section 7 on views built by hand in mm
//! (x anterior or patient-left, y up), one planted error at a time.

use plumbline_geometry::*;

fn lm(s: &str) -> Landmark {
    s.parse().unwrap()
}

/// A clean lateral view: C7 high up, L1..L5 bodies 40 mm apart (superior corners 25 mm
/// above inferior ones, anterior corners at x = +20, posterior at -20), the S1 endplate
/// at y ~ 60 and both femoral heads below it.
fn clean_lateral() -> Vec<(Landmark, Point)> {
    let mut v = vec![(lm("C7_centroid"), Point::new(0.0, 600.0))];
    for k in 1..=5 {
        let sup = 300.0 - 40.0 * f64::from(k);
        for (e, y) in [("sup", sup), ("inf", sup - 25.0)] {
            v.push((lm(&format!("L{k}_{e}_ant")), Point::new(20.0, y)));
            v.push((lm(&format!("L{k}_{e}_post")), Point::new(-20.0, y + 1.0)));
        }
    }
    v.push((lm("S1_sup_ant"), Point::new(20.0, 60.0)));
    v.push((lm("S1_sup_post"), Point::new(-20.0, 65.0)));
    v.push((lm("FH_left"), Point::new(30.0, 10.0)));
    v.push((lm("FH_right"), Point::new(28.0, 12.0)));
    v
}

fn view(kind: ViewKind, pts: Vec<(Landmark, Point)>, o: OrientationSource) -> ViewLandmarks {
    ViewLandmarks::from_mm(kind, pts, o)
}

/// Renames landmark `a` to `b` and `b` to `a`.
fn swap(pts: &mut [(Landmark, Point)], a: &str, b: &str) {
    for (l, _) in pts.iter_mut() {
        if *l == lm(a) {
            *l = lm(b);
        } else if *l == lm(b) {
            *l = lm(a);
        }
    }
}

fn checks(v: &ViewLandmarks) -> Vec<Check> {
    check_view(v).into_iter().map(|i| i.check).collect()
}

#[test]
fn a_clean_view_passes_every_check() {
    let v = view(
        ViewKind::Lateral,
        clean_lateral(),
        OrientationSource::Header,
    );
    assert_eq!(check_view(&v), []);
}

#[test]
fn swapped_anterior_and_posterior_corners_are_one_failure() {
    let mut p = clean_lateral();
    swap(&mut p, "L3_sup_ant", "L3_sup_post");
    let v = view(ViewKind::Lateral, p.clone(), OrientationSource::Header);
    let found = check_view(&v);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].check, Check::CornerSides);
    assert_eq!(found[0].landmarks, [lm("L3_sup_ant"), lm("L3_sup_post")]);
    assert!(
        found[0].message.contains("x -20.0 mm vs 20.0 mm"),
        "{}",
        found[0].message
    );
    // With the direction inferred from S1, still known; with none, not checkable.
    let v = view(ViewKind::Lateral, p.clone(), OrientationSource::Inferred);
    assert_eq!(checks(&v), [Check::CornerSides]);
    let v = view(ViewKind::Lateral, p, OrientationSource::Unknown);
    assert_eq!(checks(&v), []);
}

#[test]
fn two_vertebrae_named_in_each_others_place_break_the_order_twice() {
    // A body's height is the mean of its four corners: superior y = 300 - 40k, so the
    // mean is (s + (s + 1) + (s - 25) + (s - 24)) / 4 = s - 12: L1 248, L2 208, L3 168,
    // L4 128, L5 88. With L2 and L4 swapped, "L2" is at 128 and "L4" at 208: "L2" is
    // below L3 (168), and L3 below "L4": two failures; L1 > "L2" and "L4" > L5 hold.
    let mut p = clean_lateral();
    for e in ["sup_ant", "sup_post", "inf_ant", "inf_post"] {
        swap(&mut p, &format!("L2_{e}"), &format!("L4_{e}"));
    }
    let v = view(ViewKind::Lateral, p, OrientationSource::Header);
    let found = check_view(&v);
    assert_eq!(
        found.iter().map(|i| i.check).collect::<Vec<_>>(),
        [Check::BodyOrder, Check::BodyOrder],
        "{found:#?}"
    );
    assert!(
        found[0]
            .message
            .starts_with("L2 lies at 128.0 mm, not above L3 at 168.0 mm"),
        "{}",
        found[0].message
    );
    assert!(found[0].landmarks.contains(&lm("L2_sup_ant")));
    assert!(found[0].landmarks.contains(&lm("L3_inf_post")));
    assert!(
        found[1]
            .message
            .starts_with("L3 lies at 168.0 mm, not above L4 at 208.0 mm"),
        "{}",
        found[1].message
    );
}

#[test]
fn superior_below_inferior_and_a_femoral_head_above_s1() {
    let mut p = clean_lateral();
    swap(&mut p, "L5_sup_ant", "L5_inf_ant");
    for (l, pt) in p.iter_mut() {
        if *l == lm("FH_right") {
            *pt = Point::new(28.0, 70.0);
        }
    }
    let v = view(ViewKind::Lateral, p, OrientationSource::Header);
    let found = check_view(&v);
    assert_eq!(
        found.iter().map(|i| i.check).collect::<Vec<_>>(),
        [Check::EndplateOrder, Check::FemoralHeads],
        "{found:#?}"
    );
    assert_eq!(found[0].landmarks, [lm("L5_sup_ant"), lm("L5_inf_ant")]);
    // S1 endplate midpoint height (60 + 65) / 2 = 62.5.
    assert_eq!(
        found[1].message,
        "FH_right lies at 70.0 mm, not below the S1 endplate at 62.5 mm (height, up)"
    );
    assert_eq!(
        found[1].landmarks,
        [lm("FH_right"), lm("S1_sup_ant"), lm("S1_sup_post")]
    );
}

#[test]
fn left_and_right_corners_only_where_the_ap_orientation_is_known() {
    // AP view: x toward the patient's left.
    let pts = vec![
        (lm("L1_sup_left"), Point::new(-20.0, 300.0)),
        (lm("L1_sup_right"), Point::new(20.0, 300.0)),
        (lm("L1_inf_left"), Point::new(20.0, 270.0)),
        (lm("L1_inf_right"), Point::new(-20.0, 270.0)),
    ];
    let v = view(ViewKind::Ap, pts.clone(), OrientationSource::Header);
    let found = check_view(&v);
    assert_eq!(checks(&v), [Check::CornerSides]);
    assert_eq!(found[0].landmarks, [lm("L1_sup_left"), lm("L1_sup_right")]);
    assert!(found[0].message.contains("on the patient's left"));
    let v = view(ViewKind::Ap, pts, OrientationSource::Unknown);
    assert_eq!(checks(&v), []);
}

#[test]
fn pi_jumps_pair_every_two_timepoints_beyond_the_tolerance() {
    // 50 -> 56 is exactly the tolerance (not beyond); 50 -> 56.5 and 51 -> 56.5 are.
    let j = pi_jumps(&[("preop", 50.0), ("postop", 51.0), ("m3", 56.0)], 6.0);
    assert_eq!(j, []);
    let j = pi_jumps(&[("preop", 50.0), ("postop", 51.0), ("m3", 57.5)], 6.0);
    assert_eq!(j, [("preop", "m3", 7.5), ("postop", "m3", 6.5)]);
}
