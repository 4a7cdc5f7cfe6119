//! Cohort statistics: proportions with Wilson intervals, descriptive summaries, paired
//! pre/post comparisons (t-test and Wilcoxon signed-rank), inter-observer agreement
//! (ICC(2,1) and Bland-Altman) and between-group comparisons (Welch t-test,
//! Mann-Whitney U, one-way ANOVA, Kruskal-Wallis).
//!
//! Every function is pure, takes slices and returns `None` when its result is not
//! computable (too few values, mismatched lengths, a non-finite input, a zero
//! denominator). No function returns NaN.
//!
//! The numbers are cross-checked against SciPy on a committed dataset:
//! `fixtures/stats/make_expected.py` writes `fixtures/stats/expected.json` and the test
//! `crates/export/tests/stats_vs_scipy.rs` compares to 1e-9 relative.
//!
//! ```
//! use plumbline_export::stats;
//!
//! // 7 of 20 patients imbalanced: 35 % (95 % Wilson CI 18.1 % to 56.7 %).
//! let share = stats::wilson(7, 20).unwrap();
//! assert_eq!(share.p, 0.35);
//! assert!((share.lo - 0.1812).abs() < 1e-4 && (share.hi - 0.5671).abs() < 1e-4);
//!
//! // Sagittal vertical axis (mm) before and 3 months after surgery, same patients.
//! let before = [52.0, 61.5, 40.2, 75.0, 48.3];
//! let after = [31.0, 45.5, 38.9, 50.2, 30.1];
//! let cmp = stats::paired(&before, &after).unwrap();
//! assert!(cmp.mean_diff < 0.0 && cmp.t_p.unwrap() < 0.05);
//! ```

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};
use statrs::function::beta::checked_beta_reg;

/// Two-sided 97.5 % standard normal quantile (`scipy.stats.norm.ppf(0.975)`), the `z`
/// of 95 % Wilson intervals.
pub const Z_975: f64 = 1.959963984540054;

/// Multiplier of the SD in Bland-Altman limits of agreement (the conventional 1.96).
pub const BLAND_ALTMAN_Z: f64 = 1.96;

/// Largest number of differences (zeros included) for which the Wilcoxon signed-rank test
/// uses an exact null distribution (SciPy's `method="auto"` threshold).
pub const WILCOXON_EXACT_MAX_N: usize = 50;

/// Largest number of differences (zeros included) for which, with ties or zeros present,
/// the Wilcoxon p-value comes from the exact permutation (sign-flip) distribution rather
/// than the normal approximation (SciPy: `2**13 <= 9999` resamples covers every sign flip).
pub const WILCOXON_PERMUTATION_MAX_N: usize = 13;

/// Without ties, the Mann-Whitney p-value is exact when the smaller group has at most this
/// many values (SciPy's `mannwhitneyu(method="auto")`: asymptotic only when *both* groups
/// have more than 8 values or there are ties).
pub const MANN_WHITNEY_EXACT_MAX_N: usize = 8;

/// A share `k / n` with its 95 % Wilson score interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Proportion {
    /// Number of "successes".
    pub k: usize,
    /// Number of trials.
    pub n: usize,
    /// `k / n`.
    pub p: f64,
    /// Lower bound of the 95 % Wilson interval.
    pub lo: f64,
    /// Upper bound of the 95 % Wilson interval.
    pub hi: f64,
}

/// Share `k / n` with its 95 % Wilson score interval (`z` = [`Z_975`]).
///
/// With `p = k / n`:
///
/// ```text
/// centre = (p + z² / 2n) / (1 + z² / n)
/// half   = z · sqrt(p (1 - p) / n + z² / 4n²) / (1 + z² / n)
/// lo, hi = centre ∓ half, clamped to [0, 1] (exactly 0 when k = 0, 1 when k = n)
/// ```
///
/// (Wilson 1927; the same as `statsmodels`' `proportion_confint(k, n, method="wilson")`.)
/// `None` when `n == 0` or `k > n`.
///
/// ```
/// use plumbline_export::stats::wilson;
///
/// let none = wilson(0, 10).unwrap();
/// assert_eq!((none.p, none.lo), (0.0, 0.0));
/// assert!((none.hi - 0.27753279986288926).abs() < 1e-12);
///
/// let half = wilson(5, 10).unwrap();
/// assert!((half.lo + half.hi - 1.0).abs() < 1e-15); // symmetric around 1/2
/// assert!(wilson(3, 0).is_none() && wilson(11, 10).is_none());
/// ```
pub fn wilson(k: usize, n: usize) -> Option<Proportion> {
    if n == 0 || k > n {
        return None;
    }
    let nf = n as f64;
    let p = k as f64 / nf;
    let z2 = Z_975 * Z_975;
    let denom = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denom;
    let half = Z_975 * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    // The bounds are exactly 0 at k = 0 and exactly 1 at k = n; say so rather than
    // leave the rounding of `centre ∓ half` (e.g. 0.9999999999999999).
    let lo = if k == 0 {
        0.0
    } else {
        (centre - half).clamp(0.0, 1.0)
    };
    let hi = if k == n {
        1.0
    } else {
        (centre + half).clamp(0.0, 1.0)
    };
    Some(Proportion { k, n, p, lo, hi })
}

/// Size, mean and sample standard deviation of a set of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Describe {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample SD (denominator `n - 1`); `None` when `n < 2`.
    pub sd: Option<f64>,
}

/// `n`, mean and sample SD of `xs`.
///
/// ```text
/// mean = Σ x / n
/// sd   = sqrt(Σ (x - mean)² / (n - 1))      (two-pass; n >= 2)
/// ```
///
/// When all values are equal the mean is that value and the SD exactly 0.
/// `None` when `xs` is empty or holds a non-finite value.
///
/// ```
/// use plumbline_export::stats::describe;
///
/// let d = describe(&[1.0, 2.0, 3.0, 4.0]).unwrap();
/// assert_eq!((d.n, d.mean), (4, 2.5));
/// assert!((d.sd.unwrap() - 1.2909944487358056).abs() < 1e-15);
/// assert_eq!(describe(&[7.0]).unwrap().sd, None);
/// ```
pub fn describe(xs: &[f64]) -> Option<Describe> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let n = xs.len();
    if xs.iter().all(|x| *x == xs[0]) {
        return Some(Describe {
            n,
            mean: xs[0],
            sd: (n >= 2).then_some(0.0),
        });
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let sd = (n >= 2).then(|| {
        let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
        (ss / (n - 1) as f64).sqrt()
    });
    Some(Describe { n, mean, sd })
}

/// Result of a paired comparison of `after - before`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairedTest {
    /// Number of pairs.
    pub n: usize,
    /// Mean of the differences `after - before`.
    pub mean_diff: f64,
    /// Lower bound of the 95 % t interval of the mean difference; `None` when `n < 2`.
    pub ci_lo: Option<f64>,
    /// Upper bound of the 95 % t interval of the mean difference; `None` when `n < 2`.
    pub ci_hi: Option<f64>,
    /// Two-sided paired t-test p-value; `None` when `n < 2` or all differences are
    /// identical (SD 0).
    pub t_p: Option<f64>,
    /// Two-sided Wilcoxon signed-rank p-value (see [`wilcoxon_signed_rank`]); `None` when
    /// every difference is zero.
    pub wilcoxon_p: Option<f64>,
    /// Whether `wilcoxon_p` comes from an exact null distribution (`false`: normal
    /// approximation).
    pub wilcoxon_exact: bool,
}

/// Paired comparison of `after - before` (same patients, same order).
///
/// With differences `d = after - before`, `n` pairs, mean `d̄` and sample SD `s`:
///
/// ```text
/// t      = d̄ / (s / sqrt(n)),  df = n - 1
/// t_p    = 2 · P(T_df >= |t|)                      (scipy.stats.ttest_rel(after, before))
/// ci     = d̄ ∓ t_{0.975, df} · s / sqrt(n)         (its .confidence_interval())
/// ```
///
/// and the Wilcoxon signed-rank p of `d` from [`wilcoxon_signed_rank`].
///
/// `None` when the slices are empty, of different lengths or hold a non-finite value.
/// With `n == 1` only `mean_diff` and the Wilcoxon p (which is then 1) are given. When
/// all differences are identical the interval collapses to `d̄` and `t_p` is `None`
/// (SciPy reports `t = ±inf, p = 0` there).
///
/// ```
/// use plumbline_export::stats::paired;
///
/// let before = [10.0, 12.0, 9.0, 14.0, 11.0];
/// let after = [12.0, 15.0, 10.0, 18.0, 16.0];
/// let r = paired(&before, &after).unwrap();
/// assert_eq!((r.n, r.mean_diff), (5, 3.0));
/// // d = [2, 3, 1, 4, 5]: s = sqrt(2.5), t = 3 / (s / sqrt 5) = 4.2426..., df = 4
/// assert!((r.t_p.unwrap() - 0.01323559956368269).abs() < 1e-12);
/// assert!((r.ci_lo.unwrap() - 1.0367568385224428).abs() < 1e-9);
/// // every difference positive, no ties: exact Wilcoxon p = 2 / 2^5
/// assert_eq!((r.wilcoxon_p, r.wilcoxon_exact), (Some(0.0625), true));
///
/// let one = paired(&[1.0], &[2.0]).unwrap();
/// assert_eq!((one.t_p, one.ci_lo, one.wilcoxon_p), (None, None, Some(1.0)));
/// ```
pub fn paired(before: &[f64], after: &[f64]) -> Option<PairedTest> {
    if before.len() != after.len() {
        return None;
    }
    let diffs: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    let d = describe(&diffs)?;
    let n = d.n;
    let (mut ci_lo, mut ci_hi, mut t_p) = (None, None, None);
    if let Some(sd) = d.sd {
        let df = (n - 1) as f64;
        let se = sd / (n as f64).sqrt();
        let t_dist = StudentsT::new(0.0, 1.0, df).ok()?;
        let half = t_dist.inverse_cdf(0.975) * se;
        ci_lo = Some(d.mean - half).filter(|x| x.is_finite());
        ci_hi = Some(d.mean + half).filter(|x| x.is_finite());
        if sd > 0.0 {
            let t = d.mean / se;
            t_p = Some((2.0 * t_dist.sf(t.abs())).min(1.0)).filter(|p| p.is_finite());
        }
    }
    let wilcoxon = wilcoxon_signed_rank(&diffs);
    Some(PairedTest {
        n,
        mean_diff: d.mean,
        ci_lo,
        ci_hi,
        t_p,
        wilcoxon_p: wilcoxon.map(|w| w.0),
        wilcoxon_exact: wilcoxon.is_some_and(|w| w.1),
    })
}

/// Two-sided Wilcoxon signed-rank p-value of the differences `diffs`, with the semantics
/// of `scipy.stats.wilcoxon(diffs)` under its defaults (`zero_method="wilcox"`,
/// `correction=False`, `method="auto"`; SciPy 1.17). Returns `(p, exact)`.
///
/// Zero differences are dropped; the `m` nonzero `|d|` get average ranks (equal values,
/// compared exactly, share their mean rank), and the statistic is `T = r_plus`, the sum
/// of the ranks of the positive differences. With `N = diffs.len()` (zeros included):
///
/// * `N <= 50`, no zero and no tie: the exact null distribution of `T` (each of the `2^m`
///   sign patterns equally likely; counted by dynamic programming over rank sums),
///   `p = min(1, 2 · min(P(T <= t), P(T >= t)))`; `exact = true`.
/// * `N <= 13` with zeros or ties: the same formula over the exact sign-flip
///   (permutation) distribution of `T` given the tied ranks (SciPy switches to
///   `permutation_test`, which enumerates all `2^N` flips when `2^N <= 9999`; zeros only
///   duplicate each pattern); `exact = true`.
/// * otherwise the normal approximation without continuity correction,
///   `z = (t - m(m+1)/4) / σ`, `σ² = (m(m+1)(2m+1) - Σ(g³ - g)/2) / 24` over the tie
///   groups `g` of `|d|`, `p = 2 · P(Z >= |z|)`; `exact = false`.
///
/// `None` when `diffs` is empty, holds a non-finite value or has no nonzero value (SciPy
/// gives 1 there when `N <= 13` and NaN above).
///
/// ```
/// use plumbline_export::stats::wilcoxon_signed_rank;
///
/// // ranks 1..4, positive ranks {2, 4}: T = 6; of the 16 sign patterns 11 have T <= 6
/// // and 7 have T >= 6 → p = 2 · 7/16.
/// assert_eq!(wilcoxon_signed_rank(&[-1.0, 2.0, -3.0, 4.0]), Some((0.875, true)));
/// assert_eq!(wilcoxon_signed_rank(&[0.0, 0.0]), None);
/// ```
pub fn wilcoxon_signed_rank(diffs: &[f64]) -> Option<(f64, bool)> {
    if diffs.iter().any(|d| !d.is_finite()) {
        return None;
    }
    let total = diffs.len();
    let has_zero = diffs.contains(&0.0);
    let mut nonzero: Vec<f64> = diffs.iter().copied().filter(|d| *d != 0.0).collect();
    let m = nonzero.len();
    if m == 0 {
        return None;
    }
    // Average ranks of |d|, doubled so that they are integers (tied ranks are half-integers).
    nonzero.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let mut doubled_ranks = Vec::with_capacity(m);
    let mut t_plus2 = 0u64; // 2 · r_plus
    let mut tie_term = 0.0; // Σ (g³ - g)
    let mut has_ties = false;
    let mut i = 0;
    while i < m {
        let mut j = i + 1;
        while j < m && nonzero[j].abs() == nonzero[i].abs() {
            j += 1;
        }
        let g = j - i;
        // positions i+1 ..= j share the rank (i + 1 + j) / 2
        let r2 = (i + 1 + j) as u64;
        for d in &nonzero[i..j] {
            doubled_ranks.push(r2);
            if *d > 0.0 {
                t_plus2 += r2;
            }
        }
        if g > 1 {
            has_ties = true;
            let g = g as f64;
            tie_term += g * g * g - g;
        }
        i = j;
    }
    let exact = if total > WILCOXON_EXACT_MAX_N {
        false
    } else if !(has_ties || has_zero) {
        true
    } else {
        total <= WILCOXON_PERMUTATION_MAX_N
    };
    if exact {
        return Some((exact_two_sided(&doubled_ranks, t_plus2), true));
    }
    let mf = m as f64;
    let mean = mf * (mf + 1.0) * 0.25;
    let var = (mf * (mf + 1.0) * (2.0 * mf + 1.0) - tie_term / 2.0) / 24.0;
    if var <= 0.0 {
        return None;
    }
    let z = (t_plus2 as f64 / 2.0 - mean) / var.sqrt();
    let normal = Normal::new(0.0, 1.0).ok()?;
    let p = (2.0 * normal.sf(z.abs())).min(1.0);
    p.is_finite().then_some((p, false))
}

/// `min(1, 2 · min(P(T <= t), P(T >= t)))` where `T` is the sum of a uniformly random
/// subset of `doubled_ranks` (each rank positive with probability 1/2, independently) and
/// `t = t_obs`; everything in doubled ranks so that sums are integers.
///
/// `counts[s]` = number of subsets with doubled-rank sum `s`, built one rank at a time;
/// probabilities are `count / 2^m`, exact in `f64` for `m <= 52`.
fn exact_two_sided(doubled_ranks: &[u64], t_obs: u64) -> f64 {
    let max: u64 = doubled_ranks.iter().sum();
    let mut counts = vec![0u64; max as usize + 1];
    counts[0] = 1;
    let mut reach = 0usize;
    for &r in doubled_ranks {
        let r = r as usize;
        for s in (0..=reach).rev() {
            if counts[s] != 0 {
                counts[s + r] += counts[s];
            }
        }
        reach += r;
    }
    let t = t_obs as usize;
    let le: u64 = counts[..=t].iter().sum();
    let ge: u64 = counts[t..].iter().sum();
    let total = 2f64.powi(doubled_ranks.len() as i32);
    (2.0 * le.min(ge) as f64 / total).min(1.0)
}

/// Intraclass correlation ICC(2,1): two-way random effects, absolute agreement, single
/// rater (Shrout & Fleiss 1979 "ICC(2,1)"; McGraw & Wong 1996 "ICC(A,1)").
///
/// `ratings[i][j]` is rater `j`'s value for subject `i` (`n` subjects × `k` raters).
/// From the two-way ANOVA without replication, with grand mean `x̄`, subject means `x̄ᵢ.`
/// and rater means `x̄.ⱼ`:
///
/// ```text
/// MSR = k Σᵢ (x̄ᵢ. - x̄)² / (n - 1)                          (subjects)
/// MSC = n Σⱼ (x̄.ⱼ - x̄)² / (k - 1)                          (raters)
/// MSE = Σᵢⱼ (xᵢⱼ - x̄ᵢ. - x̄.ⱼ + x̄)² / ((n - 1)(k - 1))     (residual)
/// ICC(2,1) = (MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n)
/// ```
///
/// `None` when `n < 2`, `k < 2`, the rows have unequal lengths, a value is non-finite or
/// the denominator is 0 (e.g. all values equal).
///
/// ```
/// use plumbline_export::stats::icc_2_1;
///
/// let same = vec![vec![1.0, 1.0], vec![2.0, 2.0], vec![4.0, 4.0]];
/// assert_eq!(icc_2_1(&same), Some(1.0));
/// assert_eq!(icc_2_1(&[vec![1.0, 2.0]]), None);
/// ```
pub fn icc_2_1(ratings: &[Vec<f64>]) -> Option<f64> {
    let n = ratings.len();
    let k = ratings.first()?.len();
    if n < 2 || k < 2 || ratings.iter().any(|r| r.len() != k) {
        return None;
    }
    if ratings.iter().flatten().any(|x| !x.is_finite()) {
        return None;
    }
    let (nf, kf) = (n as f64, k as f64);
    let grand = ratings.iter().flatten().sum::<f64>() / (nf * kf);
    let row_means: Vec<f64> = ratings.iter().map(|r| r.iter().sum::<f64>() / kf).collect();
    let col_means: Vec<f64> = (0..k)
        .map(|j| ratings.iter().map(|r| r[j]).sum::<f64>() / nf)
        .collect();
    let ss_rows = kf * row_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>();
    let ss_cols = nf * col_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>();
    let ss_err: f64 = ratings
        .iter()
        .zip(&row_means)
        .flat_map(|(r, rm)| {
            r.iter()
                .zip(&col_means)
                .map(move |(x, cm)| (x - rm - cm + grand).powi(2))
        })
        .sum();
    let msr = ss_rows / (nf - 1.0);
    let msc = ss_cols / (kf - 1.0);
    let mse = ss_err / ((nf - 1.0) * (kf - 1.0));
    let denom = msr + (kf - 1.0) * mse + kf * (msc - mse) / nf;
    if denom == 0.0 {
        return None;
    }
    let icc = (msr - mse) / denom;
    icc.is_finite().then_some(icc)
}

/// Bland-Altman agreement of paired measurements `(a, b)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlandAltman {
    /// Number of pairs.
    pub n: usize,
    /// Mean difference `mean(a - b)`.
    pub bias: f64,
    /// Lower limit of agreement, `bias - 1.96 · SD(a - b)`.
    pub lo: f64,
    /// Upper limit of agreement, `bias + 1.96 · SD(a - b)`.
    pub hi: f64,
}

/// Bland-Altman bias and 95 % limits of agreement for pairs `(a[i], b[i])` (Bland &
/// Altman 1986):
///
/// ```text
/// d = a - b,  bias = mean(d),  lo, hi = bias ∓ 1.96 · sd(d)      (sample SD, n - 1)
/// ```
///
/// `None` when fewer than 2 pairs, the slices differ in length or a value is non-finite.
///
/// ```
/// use plumbline_export::stats::bland_altman;
///
/// let r = bland_altman(&[10.0, 12.0, 11.0], &[9.0, 12.0, 9.0]).unwrap();
/// assert_eq!((r.n, r.bias), (3, 1.0));
/// assert!((r.hi - (1.0 + 1.96)).abs() < 1e-12); // sd(d = [1, 0, 2]) = 1
/// ```
pub fn bland_altman(a: &[f64], b: &[f64]) -> Option<BlandAltman> {
    if a.len() != b.len() {
        return None;
    }
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let d = describe(&diffs)?;
    let sd = d.sd?;
    Some(BlandAltman {
        n: d.n,
        bias: d.mean,
        lo: d.mean - BLAND_ALTMAN_Z * sd,
        hi: d.mean + BLAND_ALTMAN_Z * sd,
    })
}

// ---------------------------------------------------------------------------------------
// Between-group comparisons
// ---------------------------------------------------------------------------------------

/// Result of a two-sample (between-group) test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoSample {
    /// Test statistic: Welch's `t` (sign of `mean(a) - mean(b)`) or the Mann-Whitney `U`
    /// of the first sample.
    pub statistic: f64,
    /// Degrees of freedom of the reference distribution (Welch-Satterthwaite `df` for the
    /// t-test); `None` for rank tests.
    pub df: Option<f64>,
    /// Two-sided p-value.
    pub p: f64,
    /// Whether `p` comes from an exact null distribution (small Mann-Whitney samples
    /// without ties); `false` for the t-test and the normal approximation.
    pub exact: bool,
}

/// Result of a test across two or more groups.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupTest {
    /// Test statistic: `F` (one-way ANOVA) or `H` (Kruskal-Wallis).
    pub statistic: f64,
    /// Numerator degrees of freedom: number of groups with data minus 1.
    pub df1: f64,
    /// Denominator degrees of freedom (ANOVA: values minus groups); `None` for
    /// Kruskal-Wallis, whose reference distribution is chi-square with `df1`.
    pub df2: Option<f64>,
    /// p-value (upper tail of the reference distribution).
    pub p: f64,
}

/// Mean and sum of squared deviations from it (two-pass), of a non-empty slice.
fn mean_and_ss(xs: &[f64]) -> (f64, f64) {
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let ss = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
    (mean, ss)
}

/// Average ranks (1-based, in the order of `xs`) and the tie term `Σ (t³ - t)` over the
/// groups of `t` equal values (compared exactly; `-0.0 == 0.0`), like
/// `scipy.stats.rankdata(xs, "average")`. `xs` must be finite.
fn average_ranks(xs: &[f64]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&i, &j| xs[i].total_cmp(&xs[j]));
    let mut ranks = vec![0.0; xs.len()];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && xs[order[j]] == xs[order[i]] {
            j += 1;
        }
        // positions i+1 ..= j share the rank (i + 1 + j) / 2
        let rank = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = rank;
        }
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    (ranks, tie_term)
}

/// The groups that hold values, or `None` when a value is non-finite or fewer than 2
/// groups hold values.
fn groups_with_data(groups: &[Vec<f64>]) -> Option<Vec<&[f64]>> {
    if groups.iter().flatten().any(|x| !x.is_finite()) {
        return None;
    }
    let with_data: Vec<&[f64]> = groups
        .iter()
        .filter(|g| !g.is_empty())
        .map(Vec::as_slice)
        .collect();
    (with_data.len() >= 2).then_some(with_data)
}

/// Welch's unequal-variance t-test of `mean(a) = mean(b)`, two-sided; the same as
/// `scipy.stats.ttest_ind(a, b, equal_var=False)` (statistic, `.df`, p-value).
///
/// With group sizes `nᵢ`, means `x̄ᵢ` and sample variances `sᵢ²` (denominator `nᵢ - 1`):
///
/// ```text
/// vᵢ = sᵢ² / nᵢ
/// t  = (x̄_a - x̄_b) / sqrt(v_a + v_b)
/// df = (v_a + v_b)² / (v_a² / (n_a - 1) + v_b² / (n_b - 1))     (Welch-Satterthwaite)
/// p  = 2 · P(T_df >= |t|)
/// ```
///
/// One constant group is fine (its variance is 0). `None` when either group has fewer
/// than 2 values (SciPy: NaN), both variances are 0 (SciPy: `t = ±inf`, `p = 0`, or NaN
/// when the means are equal too) or a value is non-finite. `exact` is always `false`.
///
/// ```
/// use plumbline_export::stats::welch_t;
///
/// // Pelvic incidence (degrees) in two groups of patients.
/// let a = [48.2, 51.0, 55.4, 46.9, 60.1, 52.3];
/// let b = [58.7, 63.2, 57.9, 66.0, 61.4];
/// let r = welch_t(&a, &b).unwrap();
/// // scipy.stats.ttest_ind(a, b, equal_var=False)
/// assert!((r.statistic - -3.6838147663925227).abs() < 1e-12);
/// assert!((r.df.unwrap() - 8.736388583355103).abs() < 1e-12);
/// assert!((r.p - 0.005309788290917085).abs() < 1e-12);
/// assert!(welch_t(&[1.0], &b).is_none() && welch_t(&[2.0, 2.0], &[3.0, 3.0]).is_none());
/// ```
pub fn welch_t(a: &[f64], b: &[f64]) -> Option<TwoSample> {
    if a.len() < 2 || b.len() < 2 || a.iter().chain(b).any(|x| !x.is_finite()) {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mean_a, ss_a) = mean_and_ss(a);
    let (mean_b, ss_b) = mean_and_ss(b);
    let va = ss_a / (na - 1.0) / na;
    let vb = ss_b / (nb - 1.0) / nb;
    let v = va + vb;
    if v == 0.0 {
        return None;
    }
    let t = (mean_a - mean_b) / v.sqrt();
    let df = v * v / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = (2.0 * dist.sf(t.abs())).min(1.0);
    (t.is_finite() && p.is_finite()).then_some(TwoSample {
        statistic: t,
        df: Some(df),
        p,
        exact: false,
    })
}

/// Mann-Whitney U test (Wilcoxon rank-sum), two-sided; the same as
/// `scipy.stats.mannwhitneyu(a, b, alternative="two-sided")` with its defaults
/// (`use_continuity=True`, `method="auto"`; SciPy 1.17).
///
/// The pooled values get average ranks (equal values, compared exactly, share their mean
/// rank). With `R_a` the rank sum of `a`:
///
/// ```text
/// U_a = R_a - n_a (n_a + 1) / 2          (the statistic returned)
/// U_b = n_a n_b - U_a,  U = max(U_a, U_b)
/// ```
///
/// * no ties and the smaller group has at most [`MANN_WHITNEY_EXACT_MAX_N`] (8) values —
///   SciPy's "auto" rule, which goes asymptotic only when both groups have more than 8
///   values or there are ties: the exact null distribution of `U` over all
///   `C(n_a + n_b, n_a)` equally likely arrangements (counted by dynamic programming),
///   `p = min(1, 2 · P(U' >= U))`; `exact = true`.
/// * otherwise the normal approximation with tie and continuity corrections,
///   `σ² = n_a n_b / 12 · ((n + 1) - Σ(t³ - t) / (n (n - 1)))` over the tie groups `t` of
///   the `n = n_a + n_b` values, `z = (U - n_a n_b / 2 - 1/2) / σ`,
///   `p = min(1, 2 · P(Z >= z))` (computed as `P(χ²₁ >= z²)` for `z > 0`);
///   `exact = false`. When every value is the same `σ = 0`,
///   `U = n_a n_b / 2` and `p = 1` (as SciPy, whose `z` is then `-inf`).
///
/// `df` is `None`. `None` when either group is empty (SciPy: NaN) or a value is
/// non-finite.
///
/// ```
/// use plumbline_export::stats::mann_whitney_u;
///
/// // a below b except for one pair: U_a = 1; of the C(5, 2) = 10 arrangements U <= 1 in 2
/// // → p = 2 · 2/10
/// let r = mann_whitney_u(&[1.0, 3.5], &[3.0, 4.0, 5.0]).unwrap();
/// assert_eq!((r.statistic, r.p, r.exact), (1.0, 0.4, true));
/// // a tie: normal approximation
/// assert!(!mann_whitney_u(&[1.0, 3.0], &[3.0, 4.0, 5.0]).unwrap().exact);
/// assert!(mann_whitney_u(&[], &[1.0]).is_none());
/// ```
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> Option<TwoSample> {
    if a.is_empty() || b.is_empty() || a.iter().chain(b).any(|x| !x.is_finite()) {
        return None;
    }
    let (n1, n2) = (a.len(), b.len());
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let (ranks, tie_term) = average_ranks(&pooled);
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u1 = ranks[..n1].iter().sum::<f64>() - n1f * (n1f + 1.0) / 2.0;
    let u2 = n1f * n2f - u1;
    let exact = tie_term == 0.0 && n1.min(n2) <= MANN_WHITNEY_EXACT_MAX_N;
    let p = if exact {
        // without ties the ranks are 1..=n and U an integer
        mann_whitney_exact_p(n1, n2, u1.min(u2) as usize)
    } else {
        let n = n1f + n2f;
        let var = n1f * n2f / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
        if var > 0.0 {
            let z = (u1.max(u2) - n1f * n2f / 2.0 - 0.5) / var.sqrt();
            // 2 · P(Z >= z) = P(χ²₁ >= z²) for z >= 0 (statrs' chi-square tail is closer
            // to SciPy's than its normal tail, ~1e-15 against ~1e-10 relative); for z < 0
            // it exceeds 1 and is clipped.
            if z > 0.0 {
                ChiSquared::new(1.0).ok()?.sf(z * z).min(1.0)
            } else {
                1.0
            }
        } else {
            // every value equal (a single tie group of all n): U1 = U2 = n1 n2 / 2
            1.0
        }
    };
    p.is_finite().then_some(TwoSample {
        statistic: u1,
        df: None,
        p,
        exact,
    })
}

/// `min(1, 2 · P(U <= u_min))` under the exact null distribution of the Mann-Whitney `U`
/// for groups of `n1` and `n2` values without ties.
///
/// The number of arrangements with `U = u` is the coefficient of `q^u` in the Gaussian
/// binomial `[m + n choose m]_q = Π_{i=1..m} (1 - q^(n+i)) / (1 - q^i)` (`m` the smaller
/// group). It is built one factor at a time, truncated after `q^u_min` (both the division
/// by `1 - q^i`, a running sum with stride `i`, and the multiplication by `1 - q^(n+i)`
/// only look back), so after step `i` the array holds `[n + i choose i]_q`: `O(m · u_min)`
/// operations. Counts are exact integers (`u128`) while they fit; beyond that (more than
/// ~10^38 arrangements, e.g. 8 values against 300 000) they are carried in `f64`, as SciPy
/// switches to floats beyond `u64`.
fn mann_whitney_exact_p(n1: usize, n2: usize, u_min: usize) -> f64 {
    let (m, n) = (n1.min(n2), n1.max(n2));
    let p = match gaussian_binomial_counts_u128(m, n, u_min) {
        Some((le, total)) => le as f64 / total as f64,
        None => {
            let (le, total) = gaussian_binomial_counts_f64(m, n, u_min);
            le / total
        }
    };
    (2.0 * p).min(1.0)
}

/// `(number of arrangements with U <= u_max, C(m + n, m))`, exactly; `None` on overflow.
fn gaussian_binomial_counts_u128(m: usize, n: usize, u_max: usize) -> Option<(u128, u128)> {
    let mut total: u128 = 1;
    for i in 1..=m {
        // C(n + i, i) = C(n + i - 1, i - 1) · (n + i) / i, exact at every step
        total = total.checked_mul((n + i) as u128)? / i as u128;
    }
    let mut c = vec![0u128; u_max + 1];
    c[0] = 1;
    for i in 1..=m {
        for u in i..=u_max {
            c[u] = c[u].checked_add(c[u - i])?;
        }
        // the result is [n + i choose i]_q, non-negative: the subtraction cannot wrap
        for u in (n + i..=u_max).rev() {
            c[u] -= c[u - n - i];
        }
    }
    let mut le: u128 = 0;
    for x in &c {
        le = le.checked_add(*x)?;
    }
    Some((le, total))
}

/// [`gaussian_binomial_counts_u128`] in floating point, for counts beyond `u128`.
fn gaussian_binomial_counts_f64(m: usize, n: usize, u_max: usize) -> (f64, f64) {
    let mut total = 1.0;
    for i in 1..=m {
        total = total * (n + i) as f64 / i as f64;
    }
    let mut c = vec![0.0f64; u_max + 1];
    c[0] = 1.0;
    for i in 1..=m {
        for u in i..=u_max {
            c[u] += c[u - i];
        }
        for u in (n + i..=u_max).rev() {
            c[u] = (c[u] - c[u - n - i]).max(0.0);
        }
    }
    (c.iter().sum(), total)
}

/// One-way ANOVA of the means of `groups`; the same as `scipy.stats.f_oneway(*groups)`
/// over the groups that hold values.
///
/// With `k` groups with data, `N` values in all, group means `x̄ᵢ` and grand mean `x̄`:
///
/// ```text
/// SSB = Σᵢ nᵢ (x̄ᵢ - x̄)²,  SSW = Σᵢ Σⱼ (xᵢⱼ - x̄ᵢ)²
/// F   = (SSB / (k - 1)) / (SSW / (N - k)),  df1 = k - 1,  df2 = N - k
/// p   = P(F_{df1, df2} >= F) = I_{df2 / (df2 + df1 F)}(df2 / 2, df1 / 2)
/// ```
///
/// Groups of a single value are fine while another group has more. Empty groups are
/// skipped (SciPy returns NaN when given an empty sample). `None` when fewer than 2
/// groups hold values, `N - k = 0` (every group a single value; SciPy: NaN), the values
/// are all equal within each group (`SSW = 0`; SciPy: `F = inf`, `p = 0` when the groups
/// differ, NaN when every value is the same) or a value is non-finite.
///
/// ```
/// use plumbline_export::stats::anova_oneway;
///
/// // means 2, 5, 4 (grand 19/6): SSB = 318/36, SSW = 2; F = (318/72) / (2/3) = 6.625
/// let r = anova_oneway(&[vec![1.0, 2.0, 3.0], vec![5.0], vec![4.0, 4.0]]).unwrap();
/// assert!((r.statistic - 6.625).abs() < 1e-12);
/// assert_eq!((r.df1, r.df2), (2.0, Some(3.0)));
/// assert!((r.p - 0.07932349373975266).abs() < 1e-12); // scipy.stats.f_oneway
/// assert!(anova_oneway(&[vec![1.0, 1.0], vec![2.0, 2.0]]).is_none());
/// ```
pub fn anova_oneway(groups: &[Vec<f64>]) -> Option<GroupTest> {
    let groups = groups_with_data(groups)?;
    let k = groups.len();
    let n: usize = groups.iter().map(|g| g.len()).sum();
    if n == k || groups.iter().all(|g| g.iter().all(|x| *x == g[0])) {
        return None;
    }
    let grand = groups.iter().copied().flatten().sum::<f64>() / n as f64;
    let (mut ssb, mut ssw) = (0.0, 0.0);
    for g in &groups {
        let (mean, ss) = mean_and_ss(g);
        ssb += g.len() as f64 * (mean - grand) * (mean - grand);
        ssw += ss;
    }
    let (df1, df2) = ((k - 1) as f64, (n - k) as f64);
    let f = (ssb / df1) / (ssw / df2);
    let p = checked_beta_reg(df2 / 2.0, df1 / 2.0, df2 / (df2 + df1 * f)).ok()?;
    (f.is_finite() && p.is_finite()).then_some(GroupTest {
        statistic: f,
        df1,
        df2: Some(df2),
        p,
    })
}

/// Kruskal-Wallis H test across `groups`; the same as `scipy.stats.kruskal(*groups)` over
/// the groups that hold values.
///
/// The pooled `N` values get average ranks (equal values, compared exactly, share their
/// mean rank); with `k` groups with data and `R̄ᵢ` the mean rank of group `i`:
///
/// ```text
/// H = 12 / (N (N + 1)) · Σᵢ nᵢ (R̄ᵢ - (N + 1) / 2)²  /  (1 - Σ(t³ - t) / (N³ - N))
/// p = P(χ²_{k-1} >= H),  df1 = k - 1
/// ```
///
/// over the tie groups `t` (no exact small-sample distribution, as in SciPy). Groups of a
/// single value are fine; empty groups are skipped (SciPy returns NaN when given an empty
/// sample). `df2` is `None`. `None` when fewer than 2 groups hold values, every value is
/// the same (the tie correction is 0; SciPy: NaN) or a value is non-finite.
///
/// ```
/// use plumbline_export::stats::kruskal_wallis;
///
/// // no ties, ranks = values; mean ranks 2, 4.5, 7 around 4.5:
/// // H = 12 / 72 · (3 · 2.5² + 0 + 3 · 2.5²) = 6.25, p = exp(-6.25 / 2) (χ² with 2 df)
/// let g = [vec![1.0, 2.0, 3.0], vec![4.0, 5.0], vec![6.0, 7.0, 8.0]];
/// let r = kruskal_wallis(&g).unwrap();
/// assert!((r.statistic - 6.25).abs() < 1e-12);
/// assert!((r.p - (-3.125f64).exp()).abs() < 1e-12);
/// assert_eq!((r.df1, r.df2), (2.0, None));
/// assert!(kruskal_wallis(&[vec![3.0, 3.0], vec![3.0]]).is_none());
/// ```
pub fn kruskal_wallis(groups: &[Vec<f64>]) -> Option<GroupTest> {
    let groups = groups_with_data(groups)?;
    let pooled: Vec<f64> = groups.iter().copied().flatten().copied().collect();
    if pooled.iter().all(|x| *x == pooled[0]) {
        return None;
    }
    let (ranks, tie_term) = average_ranks(&pooled);
    let n = pooled.len() as f64;
    let centre = (n + 1.0) / 2.0;
    let mut between = 0.0;
    let mut start = 0;
    for g in &groups {
        let ni = g.len() as f64;
        let mean_rank = ranks[start..start + g.len()].iter().sum::<f64>() / ni;
        between += ni * (mean_rank - centre) * (mean_rank - centre);
        start += g.len();
    }
    let correction = 1.0 - tie_term / (n * n * n - n);
    let h = 12.0 / (n * (n + 1.0)) * between / correction;
    let df1 = (groups.len() - 1) as f64;
    let p = ChiSquared::new(df1).ok()?.sf(h);
    (h.is_finite() && p.is_finite()).then_some(GroupTest {
        statistic: h,
        df1,
        df2: None,
        p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn wilson_edges() {
        let p = wilson(0, 10).unwrap();
        assert_eq!((p.k, p.n, p.p, p.lo), (0, 10, 0.0, 0.0));
        // z² / (n + z²) for k = 0
        let z2 = Z_975 * Z_975;
        assert!(close(p.hi, z2 / (10.0 + z2)));
        let p = wilson(10, 10).unwrap();
        assert_eq!((p.p, p.hi), (1.0, 1.0));
        assert!(close(p.lo, 10.0 / (10.0 + z2)));
        assert!(wilson(0, 0).is_none());
        assert!(wilson(2, 1).is_none());
        // symmetric: wilson(k, n) mirrors wilson(n - k, n)
        let (a, b) = (wilson(3, 17).unwrap(), wilson(14, 17).unwrap());
        assert!(close(a.lo, 1.0 - b.hi) && close(a.hi, 1.0 - b.lo));
    }

    #[test]
    fn describe_cases() {
        let d = describe(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((d.n, d.mean), (4, 2.5));
        assert!(close(d.sd.unwrap(), 1.2909944487358056));
        assert_eq!(
            describe(&[3.5]),
            Some(Describe {
                n: 1,
                mean: 3.5,
                sd: None
            })
        );
        assert_eq!(describe(&[0.1; 3]).unwrap().sd, Some(0.0));
        assert_eq!(describe(&[]), None);
        assert_eq!(describe(&[1.0, f64::NAN]), None);
        assert_eq!(describe(&[1.0, f64::INFINITY]), None);
    }

    #[test]
    fn paired_small_and_degenerate() {
        let one = paired(&[1.0], &[3.0]).unwrap();
        assert_eq!(one.n, 1);
        assert_eq!(one.mean_diff, 2.0);
        assert_eq!((one.ci_lo, one.ci_hi, one.t_p), (None, None, None));
        assert_eq!((one.wilcoxon_p, one.wilcoxon_exact), (Some(1.0), true));

        // identical differences: no t-test, degenerate interval
        let same = paired(&[1.0, 2.0, 3.0], &[3.5, 4.5, 5.5]).unwrap();
        assert_eq!(same.t_p, None);
        assert_eq!((same.ci_lo, same.ci_hi), (Some(2.5), Some(2.5)));
        // all three |d| tied, all positive, N = 3 <= 13: sign-flip p = 2 / 8
        assert_eq!((same.wilcoxon_p, same.wilcoxon_exact), (Some(0.25), true));

        // no change at all
        let zero = paired(&[1.0, 2.0], &[1.0, 2.0]).unwrap();
        assert_eq!(
            (zero.t_p, zero.wilcoxon_p, zero.wilcoxon_exact),
            (None, None, false)
        );

        assert!(paired(&[], &[]).is_none());
        assert!(paired(&[1.0, 2.0], &[1.0]).is_none());
        assert!(paired(&[1.0, f64::NAN], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn paired_t_by_hand() {
        // d = [1, 2, 3, 4, 5, 6]: mean 3.5, sd sqrt(3.5), t = 3.5 / sqrt(3.5 / 6), df = 5
        let before = [0.0; 6];
        let after = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let r = paired(&before, &after).unwrap();
        assert_eq!(r.mean_diff, 3.5);
        let t = 3.5 / (3.5f64 / 6.0).sqrt();
        let dist = StudentsT::new(0.0, 1.0, 5.0).unwrap();
        assert!(close(r.t_p.unwrap(), 2.0 * dist.sf(t)));
        // t_{0.975, 5} = 2.570581835636314 (tables)
        let half = 2.570581835636314 * (3.5f64 / 6.0).sqrt();
        assert!((r.ci_lo.unwrap() - (3.5 - half)).abs() < 1e-9);
        assert!((r.ci_hi.unwrap() - (3.5 + half)).abs() < 1e-9);
        // all positive, no ties: p = 2 / 2^6
        assert_eq!(r.wilcoxon_p, Some(2.0 / 64.0));
    }

    #[test]
    fn wilcoxon_exact_distribution() {
        // n = 4, ranks 1..4: sums of subsets 0..10 with counts
        // [1, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1] (16 subsets)
        // d = [-1, 2, -3, 4]: T = 6, P(T <= 6) = 11/16, P(T >= 6) = 7/16 → p = 14/16
        assert_eq!(
            wilcoxon_signed_rank(&[-1.0, 2.0, -3.0, 4.0]),
            Some((0.875, true))
        );
        // T = 0 at n = 4: p = 2/16
        assert_eq!(
            wilcoxon_signed_rank(&[-1.0, -2.0, -3.0, -4.0]),
            Some((0.125, true))
        );
        // symmetric in sign
        assert_eq!(
            wilcoxon_signed_rank(&[1.0, -2.0, 3.0, -4.0]),
            wilcoxon_signed_rank(&[-1.0, 2.0, -3.0, 4.0])
        );
        // 50 differences without ties or zeros: still exact; 51: normal approximation
        let d50: Vec<f64> = (1..=50)
            .map(|i| if i % 3 == 0 { -(i as f64) } else { i as f64 })
            .collect();
        assert!(wilcoxon_signed_rank(&d50).unwrap().1);
        let d51: Vec<f64> = (1..=51)
            .map(|i| if i % 3 == 0 { -(i as f64) } else { i as f64 })
            .collect();
        assert!(!wilcoxon_signed_rank(&d51).unwrap().1);
    }

    #[test]
    fn wilcoxon_ties_and_zeros() {
        // one zero, N = 5 <= 13: sign flips of ranks [1, 2.5, 2.5, 4] (|d| = 1, 2, 2, 3)
        // d = [0, 1, 2, -2, 3]: T = 1 + 2.5 + 4 = 7.5; of the 16 subset sums of
        // {1, 2.5, 2.5, 4}, 14 are <= 7.5 and 4 (7.5, 7.5, 9, 10) are >= 7.5 → p = 8/16
        assert_eq!(
            wilcoxon_signed_rank(&[0.0, 1.0, 2.0, -2.0, 3.0]),
            Some((0.5, true))
        );
        // a negative zero is a zero
        assert_eq!(
            wilcoxon_signed_rank(&[-0.0, 1.0, 2.0, -2.0, 3.0]),
            Some((0.5, true))
        );
        // N = 14 with a tie: normal approximation with tie correction
        let mut d: Vec<f64> = (1..=13).map(f64::from).collect();
        d.push(13.0);
        let (p, exact) = wilcoxon_signed_rank(&d).unwrap();
        assert!(!exact);
        // all positive, m = 14: T = 105, mean 52.5, var = (14·15·29 - (8 - 2)/2) / 24
        let z = 52.5 / ((14.0f64 * 15.0 * 29.0 - 3.0) / 24.0).sqrt();
        let normal = Normal::new(0.0, 1.0).unwrap();
        assert!(close(p, 2.0 * normal.sf(z)));
        assert_eq!(wilcoxon_signed_rank(&[]), None);
        assert_eq!(wilcoxon_signed_rank(&[0.0; 20]), None);
        assert_eq!(wilcoxon_signed_rank(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn icc_by_hand() {
        // 3 subjects × 2 raters, rater 2 = rater 1 + 1 (perfect consistency, bias 1)
        // grand 3.5; subject means 2.5, 3.5, 4.5 → MSR = 2·2/2 = 2
        // rater means 3, 4 → MSC = 3·0.5/1 = 1.5; MSE = 0
        // ICC = 2 / (2 + 0 + 2·1.5/3) = 2/3
        let r = vec![vec![2.0, 3.0], vec![3.0, 4.0], vec![4.0, 5.0]];
        assert!(close(icc_2_1(&r).unwrap(), 2.0 / 3.0));
        assert_eq!(icc_2_1(&[vec![1.0, 1.0], vec![1.0, 1.0]]), None);
        assert_eq!(icc_2_1(&[vec![1.0, 2.0], vec![1.0]]), None);
        assert_eq!(icc_2_1(&[vec![1.0], vec![2.0]]), None);
        assert_eq!(icc_2_1(&[]), None);
    }

    #[test]
    fn bland_altman_by_hand() {
        let r = bland_altman(&[10.0, 12.0, 11.0], &[9.0, 12.0, 9.0]).unwrap();
        assert_eq!(
            r,
            BlandAltman {
                n: 3,
                bias: 1.0,
                lo: 1.0 - 1.96,
                hi: 1.0 + 1.96
            }
        );
        assert!(bland_altman(&[1.0], &[2.0]).is_none());
        assert!(bland_altman(&[1.0, 2.0], &[2.0]).is_none());
    }

    #[test]
    fn welch_by_hand() {
        // a = [1, 2, 3]: mean 2, s² = 1; b = [2, 4, 6, 8]: mean 5, s² = 20/3
        // v_a = 1/3, v_b = 5/3, v_a + v_b = 2 → t = (2 - 5) / sqrt 2 = -2.1213...
        // df = 2² / ((1/3)²/2 + (5/3)²/3) = 4 / (1/18 + 25/27) = 4 · 54/53 = 216/53
        let r = welch_t(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0, 8.0]).unwrap();
        assert!(close(r.statistic, -3.0 / 2f64.sqrt()));
        assert!(close(r.df.unwrap(), 216.0 / 53.0));
        let dist = StudentsT::new(0.0, 1.0, 216.0 / 53.0).unwrap();
        assert!(close(r.p, 2.0 * dist.sf(3.0 / 2f64.sqrt())));
        // scipy.stats.ttest_ind([1, 2, 3], [2, 4, 6, 8], equal_var=False).pvalue
        assert!(close(r.p, 0.09991286431180087));
        assert!(!r.exact);
        // swapping the groups flips t only
        let s = welch_t(&[2.0, 4.0, 6.0, 8.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.statistic, s.df, s.p), (-r.statistic, r.df, r.p));

        // one constant group: v_a = 0, v_b = 1/3 → t = (5 - 2) / sqrt(1/3) = 3 sqrt 3,
        // df = (1/3)² / ((1/3)² / 2) = 2
        let r = welch_t(&[5.0, 5.0, 5.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!(close(r.statistic, 3.0 * 3f64.sqrt()));
        assert!(close(r.df.unwrap(), 2.0));
        // equal means: t = 0, p = 1
        let r = welch_t(&[1.0, 2.0, 3.0], &[0.0, 2.0, 4.0]).unwrap();
        assert_eq!((r.statistic, r.p), (0.0, 1.0));

        assert_eq!(welch_t(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(welch_t(&[1.0, 2.0], &[]), None);
        assert_eq!(welch_t(&[4.0, 4.0], &[2.0, 2.0, 2.0]), None);
        assert_eq!(welch_t(&[1.0, f64::NAN], &[1.0, 2.0]), None);
    }

    #[test]
    fn mann_whitney_exact_by_hand() {
        // n1 = 2, n2 = 3: the 10 arrangements give U = 0, 1, 2, 2, 3, 3, 4, 4, 5, 6
        // (counts [1, 1, 2, 2, 2, 1, 1])
        // a = [1, 2] below b: U_a = 0, p = 2 · 1/10
        let r = mann_whitney_u(&[1.0, 2.0], &[3.0, 4.0, 5.0]).unwrap();
        assert_eq!((r.statistic, r.df, r.p, r.exact), (0.0, None, 0.2, true));
        // a = [1, 4]: ranks 1, 4 → R_a = 5, U_a = 5 - 3 = 2, U_b = 4; P(U <= 2) = 4/10
        let r = mann_whitney_u(&[1.0, 4.0], &[2.0, 3.0, 5.0]).unwrap();
        assert_eq!((r.statistic, r.p), (2.0, 0.8));
        // U_a = U_b = 3 = n1 n2 / 2: 2 · P(U <= 3) = 2 · 6/10 → clipped to 1
        let r = mann_whitney_u(&[1.0, 6.0], &[2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!((r.statistic, r.p), (4.0, 1.0));
        // one value each: U = 0 or 1 with probability 1/2 → p = 1
        assert_eq!(mann_whitney_u(&[1.0], &[2.0]).unwrap().p, 1.0);
        // 1 value against 20, no ties: still exact (the smaller group is <= 8)
        let b: Vec<f64> = (1..=20).map(f64::from).collect();
        let r = mann_whitney_u(&[0.5], &b).unwrap();
        assert_eq!((r.statistic, r.p, r.exact), (0.0, 2.0 / 21.0, true));
        // 9 against 9 without ties: normal approximation
        let a: Vec<f64> = (0..9).map(|i| f64::from(i) * 2.0).collect();
        let b: Vec<f64> = (0..9).map(|i| f64::from(i) * 2.0 + 1.0).collect();
        assert!(!mann_whitney_u(&a, &b).unwrap().exact);
        assert!(mann_whitney_u(&a[..8], &b).unwrap().exact);
    }

    #[test]
    fn mann_whitney_exact_distribution_vs_enumeration() {
        // every split of 0..n1+n2 into a group of n1 (bit masks): U = Σ over a of the
        // number of b values below it
        for n1 in 1..=6usize {
            for n2 in 1..=7usize {
                let n = n1 + n2;
                let mut counts = vec![0u64; n1 * n2 + 1];
                for mask in 0u32..(1 << n) {
                    if mask.count_ones() as usize != n1 {
                        continue;
                    }
                    let mut u = 0;
                    let mut b_below = 0;
                    for bit in 0..n {
                        if mask & (1 << bit) != 0 {
                            u += b_below;
                        } else {
                            b_below += 1;
                        }
                    }
                    counts[u] += 1;
                }
                let total: u64 = counts.iter().sum();
                for u_min in 0..=n1 * n2 / 2 {
                    let le: u64 = counts[..=u_min].iter().sum();
                    let want = (2.0 * le as f64 / total as f64).min(1.0);
                    assert!(close(mann_whitney_exact_p(n1, n2, u_min), want));
                    assert_eq!(
                        mann_whitney_exact_p(n2, n1, u_min),
                        mann_whitney_exact_p(n1, n2, u_min)
                    );
                    let (lf, tf) = gaussian_binomial_counts_f64(n1.min(n2), n1.max(n2), u_min);
                    assert_eq!((lf as u64, tf as u64), (le, total));
                }
            }
        }
        // 8 against 10^5: the counts leave u128 and the f64 path takes over
        assert!(gaussian_binomial_counts_u128(8, 300_000, 10).is_none());
        let p = mann_whitney_exact_p(8, 300_000, 10);
        assert!(p > 0.0 && p < 1e-30);
    }

    #[test]
    fn mann_whitney_ties_by_hand() {
        // a = [1, 2, 2], b = [2, 3]: ranks 1, 3, 3 | 3, 5 → R_a = 7, U_a = 7 - 6 = 1,
        // U_b = 5; one tie group of 3: Σ(t³ - t) = 24, n = 5
        // σ² = 6/12 · (6 - 24/20) = 2.4; z = (5 - 3 - 0.5) / sqrt 2.4
        let r = mann_whitney_u(&[1.0, 2.0, 2.0], &[2.0, 3.0]).unwrap();
        assert_eq!((r.statistic, r.exact), (1.0, false));
        // p = 2 P(Z >= z) = P(χ²₁ >= z²) = P(χ²₁ >= 2.25 / 2.4)
        let chi2 = ChiSquared::new(1.0).unwrap();
        assert!(close(r.p, chi2.sf(2.25 / 2.4)));
        // scipy.stats.mannwhitneyu([1, 2, 2], [2, 3]).pvalue
        assert!(close(r.p, 0.3329216080655659));
        // -0.0 and 0.0 are a tie
        assert!(!mann_whitney_u(&[-0.0, 1.0], &[0.0, 2.0]).unwrap().exact);
        // all values equal: U = n1 n2 / 2, p = 1
        let r = mann_whitney_u(&[3.0, 3.0], &[3.0, 3.0, 3.0]).unwrap();
        assert_eq!((r.statistic, r.p, r.exact), (3.0, 1.0, false));
        assert_eq!(mann_whitney_u(&[1.0], &[]), None);
        assert_eq!(mann_whitney_u(&[1.0], &[f64::INFINITY]), None);
    }

    #[test]
    fn anova_by_hand() {
        // [1, 2, 3], [5], [4, 4]: means 2, 5, 4; grand 19/6
        // SSB = 3 (2 - 19/6)² + (5 - 19/6)² + 2 (4 - 19/6)² = (147 + 121 + 50)/36 = 318/36
        // SSW = 2 + 0 + 0 = 2; df 2, 3 → F = (318/72) / (2/3) = 6.625
        let r = anova_oneway(&[vec![1.0, 2.0, 3.0], vec![5.0], vec![4.0, 4.0]]).unwrap();
        assert!(close(r.statistic, 6.625));
        assert_eq!((r.df1, r.df2), (2.0, Some(3.0)));
        // an empty group is skipped
        let s = anova_oneway(&[vec![1.0, 2.0, 3.0], vec![], vec![5.0], vec![4.0, 4.0]]);
        assert_eq!(s, Some(r));
        // two groups: F = t² of the pooled-variance t-test; [1, 2, 3] vs [3, 4, 5]:
        // pooled s² = 1, t = -2 / sqrt(1/3 + 1/3) → F = 4 · 3/2 = 6, df 1, 4;
        // p = I_{4/(4+6)}(2, 1/2)
        let r = anova_oneway(&[vec![1.0, 2.0, 3.0], vec![3.0, 4.0, 5.0]]).unwrap();
        assert!(close(r.statistic, 6.0));
        let t = StudentsT::new(0.0, 1.0, 4.0).unwrap();
        assert!(close(r.p, 2.0 * t.sf(6f64.sqrt())));

        assert_eq!(anova_oneway(&[vec![1.0], vec![2.0], vec![3.0]]), None);
        assert_eq!(anova_oneway(&[vec![1.0, 1.0], vec![2.0]]), None);
        assert_eq!(anova_oneway(&[vec![1.0, 2.0], vec![]]), None);
        assert_eq!(anova_oneway(&[vec![1.0, 2.0], vec![f64::NAN]]), None);
    }

    #[test]
    fn kruskal_by_hand() {
        // a = [1, 2, 2], b = [2, 3]: ranks 1, 3, 3 | 3, 5; N = 5, centre 3
        // mean ranks 7/3 and 4: Σ nᵢ (R̄ᵢ - 3)² = 3 · 4/9 + 2 · 1 = 10/3
        // H₀ = 12 / 30 · 10/3 = 4/3; tie correction 1 - 24/120 = 0.8 → H = 5/3, df 1
        let r = kruskal_wallis(&[vec![1.0, 2.0, 2.0], vec![2.0, 3.0]]).unwrap();
        assert!(close(r.statistic, 5.0 / 3.0));
        assert_eq!((r.df1, r.df2), (1.0, None));
        // χ² with 1 df: P(X >= h) = 2 P(Z >= sqrt h) (statrs' normal tail is good to ~1e-10)
        let normal = Normal::new(0.0, 1.0).unwrap();
        assert!((r.p - 2.0 * normal.sf((5.0f64 / 3.0).sqrt())).abs() < 1e-9);
        // scipy.stats.kruskal([1, 2, 2], [2, 3]).pvalue
        assert!(close(r.p, 0.1967056024589434));

        // single values: [1], [2] → ranks 1, 2, centre 1.5: H = 12/6 · (0.25 + 0.25) = 1
        let r = kruskal_wallis(&[vec![1.0], vec![], vec![2.0]]).unwrap();
        assert!(close(r.statistic, 1.0));
        assert_eq!(r.df1, 1.0);

        assert_eq!(kruskal_wallis(&[vec![2.0, 2.0], vec![2.0]]), None);
        assert_eq!(kruskal_wallis(&[vec![1.0, 2.0, 3.0]]), None);
        assert_eq!(kruskal_wallis(&[vec![1.0, 2.0], vec![], vec![]]), None);
        assert_eq!(kruskal_wallis(&[vec![1.0], vec![f64::NAN]]), None);
    }
}
