//! Sigma-schedule conversions shared by the sigma-space schedulers (Karras, exponential, beta,
//! Lu lambdas) and `_sigma_to_t`, the map from a sigma back to a fractional training timestep.

use super::primitives::{np_linspace, r32};
use super::special::beta_ppf;

/// Karras et al. (2022) with rho = 7, float64 numpy arithmetic.
// diffusers 0.42.1 schedulers/scheduling_euler_discrete.py: _convert_to_karras.
pub(crate) fn karras(sigma_min: f64, sigma_max: f64, n: usize) -> Vec<f64> {
    karras_rho(sigma_min, sigma_max, 7.0, &np_linspace(0.0, 1.0, n))
}

/// `(max^(1/rho) + ramp * (min^(1/rho) - max^(1/rho)))^rho` over a given ramp, float64.
pub(crate) fn karras_rho(sigma_min: f64, sigma_max: f64, rho: f64, ramp: &[f64]) -> Vec<f64> {
    let min_inv_rho = sigma_min.powf(1.0 / rho);
    let max_inv_rho = sigma_max.powf(1.0 / rho);
    ramp.iter()
        .map(|&r| (max_inv_rho + r * (min_inv_rho - max_inv_rho)).powf(rho))
        .collect()
}

/// `exp(np.linspace(ln max, ln min, n))`, float64.
// diffusers 0.42.1 schedulers/scheduling_euler_discrete.py: _convert_to_exponential.
pub(crate) fn exponential(sigma_min: f64, sigma_max: f64, n: usize) -> Vec<f64> {
    np_linspace(sigma_max.ln(), sigma_min.ln(), n)
        .into_iter()
        .map(f64::exp)
        .collect()
}

/// "Beta Sampling is All You Need": `min + ppf(1 - lin_i; a, b) * (max - min)`, float64.
// diffusers 0.42.1 schedulers/scheduling_euler_discrete.py: _convert_to_beta (alpha = beta = 0.6).
pub(crate) fn beta(sigma_min: f64, sigma_max: f64, n: usize) -> Vec<f64> {
    const ALPHA: f64 = 0.6;
    const BETA: f64 = 0.6;
    np_linspace(0.0, 1.0, n)
        .into_iter()
        .map(|x| sigma_min + beta_ppf(1.0 - x, ALPHA, BETA) * (sigma_max - sigma_min))
        .collect()
}

/// Lu et al. lambdas: evenly spaced between two log-sigmas (`rho = 1`), then `exp`.
// diffusers 0.42.1 schedulers/scheduling_dpmsolver_multistep.py: _convert_to_lu.
pub(crate) fn lu_sigmas(lambda_max: f64, lambda_min: f64, n: usize) -> Vec<f64> {
    np_linspace(0.0, 1.0, n)
        .into_iter()
        .map(|r| (lambda_max + r * (lambda_min - lambda_max)).exp())
        .collect()
}

/// The interpolation bracket of `_sigma_to_t`: the last index `k` with `ls[k] <= l` (0 when
/// none), clamped to `len - 2`.
fn low_index<T: Copy + PartialOrd>(
    log_sigma: T,
    log_sigmas: &[T],
    diff_ge_zero: impl Fn(T, T) -> bool,
) -> usize {
    let last_true = log_sigmas
        .iter()
        .rposition(|&ls| diff_ge_zero(log_sigma, ls))
        .unwrap_or(0);
    last_true.min(log_sigmas.len().saturating_sub(2))
}

/// The bracket index for `log_sigmas` known to be non-decreasing (training log-sigmas always
/// are: betas in [0, 1] make alphas_cumprod non-increasing): a binary search with the same
/// result as the linear scan.
fn low_index_sorted<T: Copy>(log_sigmas: &[T], ge_zero: impl Fn(T) -> bool) -> usize {
    let count = log_sigmas.partition_point(|&ls| ge_zero(ls));
    count
        .saturating_sub(1)
        .min(log_sigmas.len().saturating_sub(2))
}

/// `_sigma_to_t` in float64 against sorted float64 log-sigmas.
pub(crate) fn sigma_to_t_sorted(sigma: f64, log_sigmas: &[f64]) -> f64 {
    if log_sigmas.len() < 2 {
        return f64::NAN;
    }
    let l = if sigma.is_nan() {
        f64::NAN
    } else {
        sigma.max(1e-10).ln()
    };
    let low = low_index_sorted(log_sigmas, |ls| l - ls >= 0.0);
    let (lo, hi) = (log_sigmas[low], log_sigmas[low + 1]);
    let w = clip01((lo - l) / (lo - hi));
    (1.0 - w) * low as f64 + w * (low + 1) as f64
}

/// `_sigma_to_t` entirely in float32 torch arithmetic (KDPM2 / KDPM2Ancestral interpolated
/// timesteps), against sorted log-sigmas.
pub(crate) fn sigma_to_t_f32_sorted(sigma: f32, log_sigmas: &[f32]) -> f32 {
    if log_sigmas.len() < 2 {
        return f32::NAN;
    }
    let l = ln32(if sigma.is_nan() {
        sigma
    } else {
        sigma.max(1e-10)
    });
    let low = low_index_sorted(log_sigmas, |ls| l - ls >= 0.0);
    let (lo, hi) = (log_sigmas[low], log_sigmas[low + 1]);
    let w = clip01_f32((lo - l) / (lo - hi));
    (1.0f32 - w) * low as f32 + w * (low + 1) as f32
}

/// `_sigma_to_t` for a float32 sigma with numpy promotion (the log and the weight in float32,
/// the final combination in float64; Euler custom `sigmas`), against sorted log-sigmas.
pub(crate) fn sigma_to_t_f32_sigma_sorted(sigma: f32, log_sigmas: &[f32]) -> f64 {
    if log_sigmas.len() < 2 {
        return f64::NAN;
    }
    let l = ln32(if sigma.is_nan() {
        sigma
    } else {
        sigma.max(1e-10)
    });
    let low = low_index_sorted(log_sigmas, |ls| l - ls >= 0.0);
    let (lo, hi) = (log_sigmas[low], log_sigmas[low + 1]);
    let w = clip01_f32((lo - l) / (lo - hi));
    f64::from(1.0f32 - w) * low as f64 + f64::from(w) * (low + 1) as f64
}

/// `_sigma_to_t` with arbitrary float64 `log_sigmas`, by the upstream linear scan (UniPC with
/// user sigmas takes their float64 log, which need not be sorted).
// diffusers 0.42.1 schedulers/scheduling_euler_discrete.py: _sigma_to_t.
pub(crate) fn sigma_to_t_f64(sigma: f64, log_sigmas: &[f64]) -> f64 {
    if log_sigmas.len() < 2 {
        return f64::NAN;
    }
    let l = if sigma.is_nan() {
        f64::NAN
    } else {
        sigma.max(1e-10).ln()
    };
    let low = low_index(l, log_sigmas, |a, b| a - b >= 0.0);
    let (lo, hi) = (log_sigmas[low], log_sigmas[low + 1]);
    let w = clip01((lo - l) / (lo - hi));
    (1.0 - w) * low as f64 + w * (low + 1) as f64
}

fn ln32(x: f32) -> f32 {
    r32(f64::from(x).ln())
}

/// numpy `clip(w, 0, 1)`: NaN stays NaN.
fn clip01(w: f64) -> f64 {
    if w.is_nan() {
        w
    } else {
        w.clamp(0.0, 1.0)
    }
}

fn clip01_f32(w: f32) -> f32 {
    if w.is_nan() {
        w
    } else {
        w.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn karras_endpoints() {
        let s = karras(0.029_167_535, 14.614_647, 25);
        assert_eq!(s.len(), 25);
        assert!((s[0] - 14.614_647).abs() < 1e-12);
        assert!((s[24] - 0.029_167_535).abs() < 1e-12);
        assert_eq!(karras(0.1, 1.0, 1).len(), 1);
    }

    #[test]
    fn sigma_to_t_clamps_at_the_ends() {
        let ls: Vec<f32> = [0.1f32, 1.0, 10.0].iter().map(|x| x.ln()).collect();
        let ls64: Vec<f64> = ls.iter().map(|&x| f64::from(x)).collect();
        for sigma in [100.0, 0.01, 1.0, 0.5, 3.0, f64::NAN] {
            let sorted = sigma_to_t_sorted(sigma, &ls64);
            let scan = sigma_to_t_f64(sigma, &ls64);
            assert!(sorted == scan || (sorted.is_nan() && scan.is_nan()));
        }
        assert_eq!(sigma_to_t_sorted(100.0, &ls64), 2.0);
        assert_eq!(sigma_to_t_sorted(0.01, &ls64), 0.0);
        assert!((sigma_to_t_sorted(1.0, &ls64) - 1.0).abs() < 1e-6);
        assert!(sigma_to_t_f32_sorted(f32::NAN, &ls).is_nan());
    }
}

/// Which sigma conversion a config selects (`use_karras_sigmas` / `use_exponential_sigmas` /
/// `use_beta_sigmas`; diffusers allows at most one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigmaSpace {
    Plain,
    Karras,
    Exponential,
    Beta,
}

impl SigmaSpace {
    pub(crate) fn from_cfg(cfg: &super::config::Resolved) -> crate::error::Result<Self> {
        let flags = [
            ("use_karras_sigmas", Self::Karras),
            ("use_exponential_sigmas", Self::Exponential),
            ("use_beta_sigmas", Self::Beta),
        ];
        let mut chosen = Self::Plain;
        for (key, space) in flags {
            if cfg.flag(key)? {
                if chosen != Self::Plain {
                    return Err(crate::error::CoreError::invalid(
                        key,
                        "only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas can be set",
                    ));
                }
                chosen = space;
            }
        }
        Ok(chosen)
    }

    /// The converted sigmas between `sigma_min` and `sigma_max`, `None` for `Plain`.
    pub(crate) fn convert(self, sigma_min: f64, sigma_max: f64, n: usize) -> Option<Vec<f64>> {
        match self {
            Self::Plain => None,
            Self::Karras => Some(karras(sigma_min, sigma_max, n)),
            Self::Exponential => Some(exponential(sigma_min, sigma_max, n)),
            Self::Beta => Some(beta(sigma_min, sigma_max, n)),
        }
    }

    /// The config key that selected this conversion.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Plain => "timestep_spacing",
            Self::Karras => "use_karras_sigmas",
            Self::Exponential => "use_exponential_sigmas",
            Self::Beta => "use_beta_sigmas",
        }
    }
}
