//! Special functions of the beta sigma schedules (diffusers' `use_beta_sigmas`, ComfyUI's and
//! AUTOMATIC1111's "beta"): the regularised incomplete beta function and its inverse, what
//! `scipy.stats.beta.ppf` computes, to the last bit where the tools round its result.

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, 9 terms; relative error about 1e-15).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let s = (std::f64::consts::PI * x).sin();
        return std::f64::consts::PI.ln() - s.abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// The regularised incomplete beta function `I_x(a, b)` for `a, b > 0`, `0 ≤ x ≤ 1`.
pub(crate) fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (-x).ln_1p();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// scipy `stats.beta.ppf(p, a, b)`: the inverse of [`beta_inc`] in `x`, found by bisection to
/// the last bit, with the closed forms for `a = 1` or `b = 1` (where the upstream library
/// returns them exactly, which matters for `rint` ties).
pub(crate) fn beta_ppf(p: f64, a: f64, b: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return 0.0;
    }
    if p == 1.0 {
        return 1.0;
    }
    if a == 1.0 && b == 1.0 {
        return p;
    }
    if a == b && p == 0.5 {
        // The median of a symmetric beta distribution (scipy lands on or just above it).
        return 0.5;
    }
    if b == 1.0 {
        return p.powf(1.0 / a);
    }
    if a == 1.0 {
        return -((-p).ln_1p() / b).exp_m1();
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..2_000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if beta_inc(a, b, mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // Pick whichever neighbour is closer in probability.
    if (beta_inc(a, b, lo) - p).abs() < (beta_inc(a, b, hi) - p).abs() {
        lo
    } else {
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-14);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
    }

    #[test]
    fn beta_ppf_inverts_beta_inc() {
        for &(a, b) in &[(0.6, 0.6), (2.0, 5.0), (0.3, 1.7), (1.0, 1.0), (1.0, 3.0)] {
            for i in 1..20 {
                let p = f64::from(i) / 20.0;
                let x = beta_ppf(p, a, b);
                assert!((beta_inc(a, b, x) - p).abs() < 1e-13, "a={a} b={b} p={p}");
            }
        }
        // Symmetric distribution: the median is 1/2.
        assert!((beta_ppf(0.5, 0.6, 0.6) - 0.5).abs() < 1e-15);
        assert!(beta_ppf(1.5, 0.6, 0.6).is_nan());
    }

    #[test]
    fn uniform_case_is_identity() {
        for &p in &[0.1, 0.25, 0.8] {
            assert!((beta_ppf(p, 1.0, 1.0) - p).abs() < 1e-14);
        }
        assert_eq!(beta_ppf(0.0, 0.6, 0.6), 0.0);
        assert_eq!(beta_ppf(1.0, 0.6, 0.6), 1.0);
    }
}
