//! Numeric helpers the ecosystem schedules need beyond the shared primitives: numpy `interp` on
//! an arbitrary grid, log-linear resampling, and float32 element operations with torch's CPU
//! semantics. (scipy's `beta.ppf` lives in `schedule::special`, shared with diffusers' beta
//! sigmas.)

use super::super::primitives::{np_linspace, r32};

/// numpy `interp(x, xp, fp)` (float64; `xp` increasing): the same branch order and formula
/// `slope * (x - xp[j]) + fp[j]`, exact at the nodes, clamped outside.
// numpy 2.4 numpy/_core/src/multiarray/compiled_base.c: arr_interp.
pub(crate) fn np_interp(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let n = xp.len().min(fp.len());
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x >= xp[n - 1] {
        return fp[n - 1];
    }
    if x < xp[0] {
        return fp[0];
    }
    // Largest j with xp[j] <= x.
    let j = xp[..n].partition_point(|&v| v <= x).saturating_sub(1);
    if xp[j] == x {
        return fp[j];
    }
    let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    slope * (x - xp[j]) + fp[j]
}

/// Log-linear resampling of a decreasing table to `k` points (the AYS / GITS recipe):
/// reverse, `log`, `interp` on `linspace(0, 1, ·)` grids, `exp`, reverse, all in float64.
pub(crate) fn loglinear_interp(table: &[f64], k: usize) -> Vec<f64> {
    let m = table.len();
    let xs = np_linspace(0.0, 1.0, m);
    let ys: Vec<f64> = table.iter().rev().map(|v| v.ln()).collect();
    let new_xs = np_linspace(0.0, 1.0, k);
    let mut out: Vec<f64> = new_xs
        .iter()
        .map(|&x| np_interp(x, &xs, &ys).exp())
        .collect();
    out.reverse();
    out
}

/// f32 `exp` (correctly rounded; torch's vectorised kernel is within one ulp of it).
pub(crate) fn exp32(x: f32) -> f32 {
    r32(f64::from(x).exp())
}

/// f32 natural logarithm.
pub(crate) fn ln32(x: f32) -> f32 {
    r32(f64::from(x).ln())
}

/// f32 `tan`.
pub(crate) fn tan32(x: f32) -> f32 {
    r32(f64::from(x).tan())
}

/// torch `tensor ** exponent` for a float32 tensor and a Python-float exponent: the special
/// cases torch dispatches (0.5 → sqrt, 1 → identity, 2 → x·x, 3 → x·x·x), otherwise `pow`
/// with the exponent rounded to f32.
// torch 2.13 aten/src/ATen/native/cpu/PowKernel.cpp (pow_tensor_scalar_optimized_kernel).
pub(crate) fn pow32(x: f32, exponent: f64) -> f32 {
    if exponent == 0.5 {
        x.sqrt()
    } else if exponent == 1.0 {
        x
    } else if exponent == 2.0 {
        x * x
    } else if exponent == 3.0 {
        x * x * x
    } else {
        r32(f64::from(x).powf(f64::from(r32(exponent))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn interp_matches_numpy_rules() {
        let xp = [0.0, 0.5, 1.0];
        let fp = [1.0, 3.0, 4.0];
        assert_eq!(np_interp(0.25, &xp, &fp), 2.0);
        assert_eq!(np_interp(0.5, &xp, &fp), 3.0);
        assert_eq!(np_interp(1.0, &xp, &fp), 4.0);
        assert_eq!(np_interp(-1.0, &xp, &fp), 1.0);
        assert!(np_interp(0.5, &[], &[]).is_nan());
    }

    #[test]
    fn loglinear_identity_when_same_length() {
        let t = [10.0, 5.0, 1.0];
        let r = loglinear_interp(&t, 3);
        for (a, b) in r.iter().zip(t.iter()) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
