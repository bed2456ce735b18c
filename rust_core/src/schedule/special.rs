//! Special functions needed by the beta sigma schedule: the inverse of the regularised
//! incomplete beta function (what `scipy.stats.beta.ppf` computes), accurate to a few ulp.

/// Lanczos approximation of `ln Γ(x)` for `x > 0` (g = 7, n = 9; relative error ~1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
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
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut acc = COEF[0];
    for (i, &c) in COEF.iter().enumerate().skip(1) {
        acc += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + acc.ln()
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=500 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// The regularised incomplete beta function `I_x(a, b)`, valid where the continued fraction
/// converges fast (`x < (a+1)/(a+b+2)`); callers use the symmetry otherwise.
fn ibeta_direct(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let front = (a * x.ln() + b * (-x).ln_1p() - ln_beta(a, b)).exp() / a;
    front * beta_continued_fraction(x, a, b)
}

/// `I_x(a, b)` with the symmetry `I_x(a,b) = 1 - I_{1-x}(b,a)` applied where it converges faster.
fn ibeta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        0.0
    } else if x >= 1.0 {
        1.0
    } else if x < (a + 1.0) / (a + b + 2.0) {
        ibeta_direct(x, a, b)
    } else {
        1.0 - ibeta_direct(1.0 - x, b, a)
    }
}

/// The beta density, the derivative of `I_x(a, b)` in `x`.
fn beta_pdf(x: f64, a: f64, b: f64) -> f64 {
    ((a - 1.0) * x.ln() + (b - 1.0) * (-x).ln_1p() - ln_beta(a, b)).exp()
}

/// Solves `I_x(a, b) = p` for `p <= 0.5` by safeguarded Newton iteration on `[0, 1]`.
fn ibeta_inv_lower(p: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    // Start from the small-x asymptote I_x ≈ x^a / (a B(a, b)).
    let mut x = ((p * a).ln() + ln_beta(a, b))
        .exp()
        .powf(1.0 / a)
        .clamp(1e-300, 0.5);
    for _ in 0..200 {
        let f = ibeta(x, a, b) - p;
        if f == 0.0 {
            return x;
        }
        if f < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let step = f / beta_pdf(x, a, b);
        let mut next = x - step;
        if !(next > lo && next < hi && next.is_finite()) {
            next = 0.5 * (lo + hi);
        }
        if (next - x).abs() <= f64::EPSILON * 0.25 * x.abs() || lo == hi {
            return next;
        }
        x = next;
    }
    x
}

/// `scipy.stats.beta.ppf(p, a, b)`: the inverse of the regularised incomplete beta function.
pub(crate) fn beta_ppf(p: f64, a: f64, b: f64) -> f64 {
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    if p <= 0.5 {
        ibeta_inv_lower(p, a, b)
    } else {
        1.0 - ibeta_inv_lower(1.0 - p, b, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppf_inverts_the_cdf() {
        for &p in &[1e-12, 0.001, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999] {
            let x = beta_ppf(p, 0.6, 0.6);
            assert!((ibeta(x, 0.6, 0.6) - p).abs() < 1e-14, "p={p} x={x}");
        }
        assert_eq!(beta_ppf(0.0, 0.6, 0.6), 0.0);
        assert_eq!(beta_ppf(1.0, 0.6, 0.6), 1.0);
        assert!((beta_ppf(0.5, 0.6, 0.6) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn uniform_case_is_identity() {
        for &p in &[0.1, 0.25, 0.8] {
            assert!((beta_ppf(p, 1.0, 1.0) - p).abs() < 1e-14);
        }
    }
}
