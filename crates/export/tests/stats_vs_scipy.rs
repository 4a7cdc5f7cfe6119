//! `plumbline_export::stats` against SciPy, statsmodels and pingouin on a committed dataset.
//!
//! `fixtures/stats/make_expected.py` (pinned in `fixtures/stats/requirements.txt`) reads
//! `fixtures/stats/dataset.csv` and writes `fixtures/stats/expected.json`; this test
//! recomputes every value in Rust and requires agreement to 1e-9 relative (1e-12 absolute
//! near 0), the same `None`s, and the same Wilcoxon and Mann-Whitney methods (exact or
//! normal approximation).

use std::collections::BTreeMap;
use std::path::PathBuf;

use plumbline_export::stats;
use serde_json::Value;

const REL: f64 = 1e-9;
const ABS: f64 = 1e-12;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/stats")
}

/// `case -> (kind, rows of x1..x3 as text, empty cells dropped)`.
fn read_dataset() -> BTreeMap<String, (String, Vec<Vec<String>>)> {
    let path = fixtures().join("dataset.csv");
    let mut rdr = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert_eq!(
        rdr.headers().unwrap(),
        vec!["case", "kind", "x1", "x2", "x3"],
        "dataset.csv header"
    );
    let mut cases: BTreeMap<String, (String, Vec<Vec<String>>)> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let entry = cases
            .entry(rec[0].to_string())
            .or_insert_with(|| (rec[1].to_string(), Vec::new()));
        assert_eq!(entry.0, &rec[1], "case {} changes kind", &rec[0]);
        entry.1.push(
            (2..5)
                .map(|i| rec[i].to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        );
    }
    cases
}

fn floats(rows: &[Vec<String>], col: usize) -> Vec<f64> {
    rows.iter()
        .map(|r| r[col].parse::<f64>().unwrap())
        .collect()
}

/// Values of a `two_sample` or `groups` case by group label (x1), a missing label giving
/// an empty group.
fn labelled_groups(rows: &[Vec<String>]) -> Vec<Vec<f64>> {
    let mut groups: Vec<Vec<f64>> = Vec::new();
    for r in rows {
        let label: usize = r[0].parse().unwrap();
        if groups.len() <= label {
            groups.resize(label + 1, Vec::new());
        }
        groups[label].push(r[1].parse().unwrap());
    }
    groups
}

/// Collects mismatches so that one run reports all of them.
#[derive(Default)]
struct Checker {
    failures: Vec<String>,
    compared: usize,
}

impl Checker {
    fn num(&mut self, case: &str, field: &str, got: Option<f64>, want: &Value) {
        self.compared += 1;
        let want = want.as_f64();
        match (got, want) {
            (None, None) => {}
            (Some(g), Some(w)) => {
                let err = (g - w).abs();
                if !(err <= REL * w.abs() || err <= ABS) {
                    self.failures.push(format!(
                        "{case}.{field}: got {g:e}, scipy {w:e} (rel err {:e})",
                        err / w.abs()
                    ));
                }
            }
            (g, w) => self
                .failures
                .push(format!("{case}.{field}: got {g:?}, scipy {w:?}")),
        }
    }

    fn int(&mut self, case: &str, field: &str, got: Option<usize>, want: &Value) {
        self.compared += 1;
        let want = want.as_u64().map(|w| w as usize);
        if got != want {
            self.failures
                .push(format!("{case}.{field}: got {got:?}, scipy {want:?}"));
        }
    }

    fn flag(&mut self, case: &str, field: &str, got: bool, want: &Value) {
        self.compared += 1;
        if Some(got) != want.as_bool() {
            self.failures
                .push(format!("{case}.{field}: got {got}, scipy {want}"));
        }
    }
}

// Long (over 80 lines): the SciPy reference values of every statistic, one block per test, read top to bottom against the script.
#[test]
fn stats_match_scipy() {
    let path = fixtures().join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let expected: Value = serde_json::from_str(&text).unwrap();
    let dataset = read_dataset();
    let mut ck = Checker::default();
    let mut seen = Vec::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();

    for e in expected["cases"].as_array().expect("cases") {
        let case = e["case"].as_str().unwrap();
        let kind = e["kind"].as_str().unwrap();
        let (data_kind, rows) = dataset
            .get(case)
            .unwrap_or_else(|| panic!("{case} is in expected.json but not in dataset.csv"));
        assert_eq!(data_kind, kind, "{case}: kind");
        seen.push(case.to_string());
        *kinds.entry(kind.to_string()).or_default() += 1;
        match kind {
            "proportion" => {
                let k: usize = rows[0][0].parse().unwrap();
                let n: usize = rows[0][1].parse().unwrap();
                let r = stats::wilson(k, n);
                ck.int(case, "k", r.map(|r| r.k), &e["k"]);
                ck.int(case, "n", r.map(|r| r.n), &e["n"]);
                ck.num(case, "p", r.map(|r| r.p), &e["p"]);
                ck.num(case, "lo", r.map(|r| r.lo), &e["lo"]);
                ck.num(case, "hi", r.map(|r| r.hi), &e["hi"]);
            }
            "describe" => {
                let r = stats::describe(&floats(rows, 0));
                ck.int(case, "n", r.map(|r| r.n), &e["n"]);
                ck.num(case, "mean", r.map(|r| r.mean), &e["mean"]);
                ck.num(case, "sd", r.and_then(|r| r.sd), &e["sd"]);
            }
            "paired" => {
                let (before, after) = (floats(rows, 0), floats(rows, 1));
                let r = stats::paired(&before, &after).expect("paired result");
                ck.int(case, "n", Some(r.n), &e["n"]);
                ck.num(case, "mean_diff", Some(r.mean_diff), &e["mean_diff"]);
                ck.num(case, "ci_lo", r.ci_lo, &e["ci_lo"]);
                ck.num(case, "ci_hi", r.ci_hi, &e["ci_hi"]);
                ck.num(case, "t_p", r.t_p, &e["t_p"]);
                ck.num(case, "wilcoxon_p", r.wilcoxon_p, &e["wilcoxon_p"]);
                ck.flag(
                    case,
                    "wilcoxon_exact",
                    r.wilcoxon_exact,
                    &e["wilcoxon_exact"],
                );
                // and the flag agrees with the method SciPy's "auto" picked
                let method_exact = matches!(
                    e["wilcoxon_method"].as_str(),
                    Some("exact") | Some("permutation")
                );
                assert_eq!(r.wilcoxon_exact, method_exact, "{case}: wilcoxon method");
                // the standalone function gives the same on the differences
                let diffs: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
                assert_eq!(
                    stats::wilcoxon_signed_rank(&diffs),
                    r.wilcoxon_p.map(|p| (p, r.wilcoxon_exact)),
                    "{case}: wilcoxon_signed_rank vs paired"
                );
            }
            "icc" => {
                let m: Vec<Vec<f64>> = rows
                    .iter()
                    .map(|r| r.iter().map(|x| x.parse().unwrap()).collect())
                    .collect();
                assert_eq!(Some(m.len()), e["n"].as_u64().map(|n| n as usize));
                assert_eq!(Some(m[0].len()), e["k"].as_u64().map(|k| k as usize));
                ck.num(case, "icc", stats::icc_2_1(&m), &e["icc"]);
            }
            "bland_altman" => {
                let r = stats::bland_altman(&floats(rows, 0), &floats(rows, 1));
                ck.int(case, "n", r.map(|r| r.n), &e["n"]);
                ck.num(case, "bias", r.map(|r| r.bias), &e["bias"]);
                ck.num(case, "lo", r.map(|r| r.lo), &e["lo"]);
                ck.num(case, "hi", r.map(|r| r.hi), &e["hi"]);
            }
            "two_sample" => {
                let g = labelled_groups(rows);
                assert_eq!(g.len(), 2, "{case}: two_sample labels 0 and 1");
                let (a, b) = (&g[0], &g[1]);
                ck.int(case, "n1", Some(a.len()), &e["n1"]);
                ck.int(case, "n2", Some(b.len()), &e["n2"]);
                let w = stats::welch_t(a, b);
                ck.num(case, "welch_t", w.map(|w| w.statistic), &e["welch_t"]);
                ck.num(case, "welch_df", w.and_then(|w| w.df), &e["welch_df"]);
                ck.num(case, "welch_p", w.map(|w| w.p), &e["welch_p"]);
                let u = stats::mann_whitney_u(a, b).expect("mann-whitney result");
                ck.num(case, "mwu_u", Some(u.statistic), &e["mwu_u"]);
                ck.num(case, "mwu_p", Some(u.p), &e["mwu_p"]);
                ck.flag(case, "mwu_exact", u.exact, &e["mwu_exact"]);
                assert_eq!(
                    u.exact,
                    e["mwu_method"].as_str() == Some("exact"),
                    "{case}: mann-whitney method"
                );
                assert_eq!(u.df, None, "{case}: mann-whitney df");
            }
            "groups" => {
                let g = labelled_groups(rows);
                ck.int(case, "groups", Some(g.len()), &e["groups"]);
                let with_data = g.iter().filter(|g| !g.is_empty()).count();
                ck.int(case, "k", Some(with_data), &e["k"]);
                ck.int(case, "n", Some(g.iter().map(Vec::len).sum()), &e["n"]);
                let a = stats::anova_oneway(&g);
                ck.num(case, "anova_f", a.map(|a| a.statistic), &e["anova_f"]);
                ck.num(case, "anova_df1", a.map(|a| a.df1), &e["anova_df1"]);
                ck.num(case, "anova_df2", a.and_then(|a| a.df2), &e["anova_df2"]);
                ck.num(case, "anova_p", a.map(|a| a.p), &e["anova_p"]);
                let h = stats::kruskal_wallis(&g);
                ck.num(case, "kruskal_h", h.map(|h| h.statistic), &e["kruskal_h"]);
                ck.num(case, "kruskal_df", h.map(|h| h.df1), &e["kruskal_df"]);
                ck.num(case, "kruskal_p", h.map(|h| h.p), &e["kruskal_p"]);
                assert!(h.is_none_or(|h| h.df2.is_none()), "{case}: kruskal df2");
            }
            other => panic!("{case}: unknown kind {other}"),
        }
    }

    let missing: Vec<&String> = dataset.keys().filter(|c| !seen.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "cases without expected values: {missing:?}"
    );
    for kind in [
        "proportion",
        "describe",
        "paired",
        "icc",
        "bland_altman",
        "two_sample",
        "groups",
    ] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) >= 3,
            "too few {kind} cases"
        );
    }
    assert!(
        ck.failures.is_empty(),
        "{} of {} values differ from scipy:\n{}",
        ck.failures.len(),
        ck.compared,
        ck.failures.join("\n")
    );
}

/// The fixture covers every Wilcoxon path of SciPy's `method="auto"`.
#[test]
fn fixture_covers_every_wilcoxon_method() {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    let methods: Vec<&str> = expected["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["wilcoxon_method"].as_str())
        .collect();
    for m in ["exact", "permutation", "asymptotic"] {
        assert!(methods.contains(&m), "no case uses the {m} Wilcoxon method");
    }
}

/// The fixture covers both Mann-Whitney paths of SciPy's `method="auto"`.
#[test]
fn fixture_covers_every_mann_whitney_method() {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    let methods: Vec<&str> = expected["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["mwu_method"].as_str())
        .collect();
    for m in ["exact", "asymptotic"] {
        assert!(
            methods.contains(&m),
            "no case uses the {m} Mann-Whitney method"
        );
    }
}
