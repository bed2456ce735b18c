//! The schedule algorithms of k-diffusion, ComfyUI and AUTOMATIC1111, each reproducing the
//! upstream arithmetic (float32 torch ops, float64 numpy/Python ops) so the sigmas agree to
//! the last bit or within one float32 ulp (transcendentals).

use super::super::primitives::{np_linspace, np_linspace_open, r32, rne, torch_linspace_f32};
use super::model::Model;
use super::special::{exp32, ln32, loglinear_interp, pow32, tan32};
use crate::schedule::special::beta_ppf;

fn append_zero(mut v: Vec<f32>) -> Vec<f32> {
    v.push(0.0);
    v
}

/// k-diffusion `get_sigmas_karras(n, σmin, σmax, ρ)` (n sigmas plus a trailing 0).
pub(crate) fn karras(n: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> Vec<f32> {
    let ramp = torch_linspace_f32(0.0, 1.0, n);
    let min_inv = sigma_min.powf(1.0 / rho);
    let max_inv = sigma_max.powf(1.0 / rho);
    let (d, mx) = (r32(min_inv - max_inv), r32(max_inv));
    append_zero(ramp.iter().map(|&r| pow32(mx + r * d, rho)).collect())
}

/// k-diffusion `get_sigmas_exponential(n, σmin, σmax)`.
pub(crate) fn exponential(n: usize, sigma_min: f64, sigma_max: f64) -> Vec<f32> {
    append_zero(
        torch_linspace_f32(sigma_max.ln(), sigma_min.ln(), n)
            .into_iter()
            .map(exp32)
            .collect(),
    )
}

/// k-diffusion `get_sigmas_polyexponential(n, σmin, σmax, ρ)`.
pub(crate) fn polyexponential(n: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> Vec<f32> {
    let d = r32(sigma_max.ln() - sigma_min.ln());
    let lmin = r32(sigma_min.ln());
    append_zero(
        torch_linspace_f32(1.0, 0.0, n)
            .into_iter()
            .map(|r| exp32(pow32(r, rho) * d + lmin))
            .collect(),
    )
}

/// k-diffusion `get_sigmas_vp(n, β_d, β_min, ε_s)`; `expm1` selects ComfyUI's variant.
pub(crate) fn vp(n: usize, beta_d: f64, beta_min: f64, eps_s: f64, expm1: bool) -> Vec<f32> {
    let (bd, bm) = (r32(beta_d), r32(beta_min));
    append_zero(
        torch_linspace_f32(1.0, eps_s, n)
            .into_iter()
            .map(|t| {
                let x = bd * (t * t) / 2.0 + bm * t;
                if expm1 {
                    r32(f64::from(x).exp_m1()).sqrt()
                } else {
                    (exp32(x) - 1.0).sqrt()
                }
            })
            .collect(),
    )
}

/// ComfyUI `get_sigmas_laplace(n, σmin, σmax, μ, β)` (length n, no trailing 0).
pub(crate) fn laplace(n: usize, sigma_min: f64, sigma_max: f64, mu: f64, beta: f64) -> Vec<f32> {
    let (lo, hi, mu, beta) = (r32(sigma_min), r32(sigma_max), r32(mu), r32(beta));
    torch_linspace_f32(0.0, 1.0, n)
        .into_iter()
        .map(|x| {
            let c = 0.5 - x;
            let sign = if c > 0.0 {
                1.0
            } else if c < 0.0 {
                -1.0
            } else {
                0.0
            };
            let lmb = mu - beta * sign * ln32(1.0 - 2.0 * c.abs() + r32(1e-5));
            exp32(lmb).clamp(lo, hi)
        })
        .collect()
}

/// ComfyUI `normal_scheduler` (`sgm = false`) and `sgm_uniform` (`sgm = true`).
pub(crate) fn comfy_normal(model: &Model, n: usize, sgm: bool) -> Vec<f32> {
    let start = model.comfy_timestep(model.sigma_max());
    let end = model.comfy_timestep(model.sigma_min());
    let (ts, append) = if sgm {
        let mut ts = torch_linspace_f32(f64::from(start), f64::from(end), n + 1);
        ts.pop();
        (ts, true)
    } else if model.comfy_sigma(end).abs() <= 1e-5 {
        (
            torch_linspace_f32(f64::from(start), f64::from(end), n + 1),
            false,
        )
    } else {
        (
            torch_linspace_f32(f64::from(start), f64::from(end), n),
            true,
        )
    };
    let sig: Vec<f32> = ts.iter().map(|&t| model.comfy_sigma(t)).collect();
    if append {
        append_zero(sig)
    } else {
        sig
    }
}

/// AUTOMATIC1111 `normal_scheduler` / `sgm_uniform` (modules/sd_schedulers.py, v1.10.1):
/// the t-range is k-diffusion's `sigma_to_t` of the (possibly overridden) σ range, which with
/// "Enable quantization" returns table indices, so an overridden end moves to the nearest
/// table σ (both on 0-d tensors: in float16 on the downcast table).
pub(crate) fn a1111_normal(
    model: &Model,
    n: usize,
    (sigma_min, sigma_max): (f64, f64),
    sgm: bool,
    quantize: bool,
) -> Vec<f32> {
    let start = model.kd_sigma_to_t_0d(r32(sigma_max), quantize);
    let end = model.kd_sigma_to_t_0d(r32(sigma_min), quantize);
    let mut ts = torch_linspace_f32(
        f64::from(start),
        f64::from(end),
        if sgm { n + 1 } else { n },
    );
    if sgm {
        ts.pop();
    }
    append_zero(ts.iter().map(|&t| model.kd_t_to_sigma(t)).collect())
}

/// k-diffusion `DiscreteSchedule.get_sigmas(n)` (A1111 "Uniform").
pub(crate) fn kd_get_sigmas(model: &Model, n: usize) -> Vec<f32> {
    let t_max = model.sigmas.len().saturating_sub(1) as f64;
    append_zero(
        torch_linspace_f32(t_max, 0.0, n)
            .into_iter()
            .map(|t| model.kd_t_to_sigma(t))
            .collect(),
    )
}

/// ComfyUI / A1111 `simple`: `σ = S[L − 1 − ⌊x·L/N⌋]`, then 0.
pub(crate) fn simple(model: &Model, n: usize) -> Vec<f32> {
    let l = model.sigmas.len();
    let ss = l as f64 / n as f64;
    append_zero(
        (0..n)
            .map(|x| {
                let k = (x as f64 * ss) as usize;
                model.sigmas[l - 1 - k.min(l - 1)]
            })
            .collect(),
    )
}

/// ComfyUI `ddim_uniform` (`comfy = true`, with its σ≈0 exception) and A1111 `ddim`.
pub(crate) fn ddim_uniform(model: &Model, n: usize, comfy: bool) -> Vec<f32> {
    let l = model.sigmas.len();
    let mut steps = n;
    let mut sigs = Vec::new();
    let mut append = true;
    if comfy && l > 1 && model.sigmas[1].abs() <= 1e-5 {
        steps += 1;
        append = false;
    }
    if comfy && append {
        sigs.push(0.0);
    }
    let ss = (l / steps).max(1);
    let mut x = 1;
    while x < l {
        sigs.push(model.sigmas[x]);
        x += ss;
    }
    sigs.reverse();
    if !comfy {
        sigs.push(0.0);
    }
    sigs
}

/// The integer timesteps ComfyUI's `beta` scheduler picks (before de-duplication).
pub(crate) fn comfy_beta_timesteps(len: usize, n: usize, alpha: f64, beta: f64) -> Vec<f64> {
    let total = (len.saturating_sub(1)) as f64;
    np_linspace_open(0.0, 1.0, n)
        .into_iter()
        .map(|u| rne(beta_ppf(1.0 - u, alpha, beta) * total))
        .collect()
}

/// ComfyUI `beta_scheduler`: beta quantiles on integer timesteps, consecutive duplicates
/// dropped, then 0.
pub(crate) fn comfy_beta(model: &Model, n: usize, alpha: f64, beta: f64) -> Vec<f32> {
    let mut sigs = Vec::new();
    let mut last = f64::NAN;
    for t in comfy_beta_timesteps(model.sigmas.len(), n, alpha, beta) {
        if t != last {
            let i = (t.max(0.0) as usize).min(model.sigmas.len() - 1);
            sigs.push(model.sigmas[i]);
        }
        last = t;
    }
    append_zero(sigs)
}

/// AUTOMATIC1111 v1.10 `beta_scheduler`: beta quantiles linear in σ, then 0.
pub(crate) fn a1111_beta(
    n: usize,
    sigma_min: f64,
    sigma_max: f64,
    alpha: f64,
    beta: f64,
) -> Vec<f32> {
    append_zero(
        np_linspace(0.0, 1.0, n)
            .into_iter()
            .map(|u| r32(sigma_min + beta_ppf(1.0 - u, alpha, beta) * (sigma_max - sigma_min)))
            .collect(),
    )
}

/// ComfyUI `linear_quadratic_schedule` (threshold 0.025, ⌊N/2⌋ linear steps by default),
/// scaled by the model's σ_max.
pub(crate) fn linear_quadratic(
    n: usize,
    sigma_max: f32,
    threshold_noise: f64,
    linear_steps: Option<usize>,
) -> Vec<f32> {
    let sched: Vec<f64> = if n == 1 {
        vec![1.0, 0.0]
    } else {
        let ls = linear_steps.unwrap_or(n / 2).min(n);
        let mut v: Vec<f64> = (0..ls)
            .map(|i| i as f64 * threshold_noise / ls as f64)
            .collect();
        let diff = ls as f64 - threshold_noise * n as f64;
        let qs = (n - ls) as f64;
        let qc = diff / (ls as f64 * qs * qs);
        let lc = threshold_noise / ls as f64 - 2.0 * diff / (qs * qs);
        let c = qc * (ls as f64 * ls as f64);
        v.extend((ls..n).map(|i| qc * (i as f64 * i as f64) + lc * i as f64 + c));
        v.push(1.0);
        v.into_iter().map(|x| 1.0 - x).collect()
    };
    sched.into_iter().map(|x| r32(x) * sigma_max).collect()
}

/// ComfyUI `kl_optimal_scheduler`: `a_k = k/(N−1)`, then 0 (needs N ≥ 2).
pub(crate) fn comfy_kl_optimal(n: usize, sigma_min: f64, sigma_max: f64) -> Vec<f32> {
    let (amin, amax) = (r32(sigma_min.atan()), r32(sigma_max.atan()));
    let d = (n - 1) as f32;
    append_zero(
        (0..n)
            .map(|k| {
                let a = k as f32 / d;
                tan32(a * amin + (1.0 - a) * amax)
            })
            .collect(),
    )
}

/// AUTOMATIC1111 `kl_optimal`: `a_k = k/N` for k = 0…N, no trailing 0.
pub(crate) fn a1111_kl_optimal(n: usize, sigma_min: f64, sigma_max: f64) -> Vec<f32> {
    let amin = r32(f64::from(r32(sigma_min)).atan());
    let amax = r32(f64::from(r32(sigma_max)).atan());
    (0..=n)
        .map(|k| {
            let a = k as f32 / n as f32;
            tan32(a * amin + (1.0 - a) * amax)
        })
        .collect()
}

/// Align Your Steps resampled as ComfyUI's node does: N+1 points, keep the last
/// `total + 1`, overwrite the last with 0.
pub(crate) fn ays_comfy(table: &[f64], n: usize, total: usize) -> Vec<f32> {
    let s: Vec<f64> = if n + 1 != table.len() {
        loglinear_interp(table, n + 1)
    } else {
        table.to_vec()
    };
    let keep = (total + 1).min(s.len());
    let mut out: Vec<f32> = s[s.len() - keep..].iter().map(|&v| r32(v)).collect();
    if let Some(last) = out.last_mut() {
        *last = 0.0;
    }
    out
}

/// Align Your Steps as AUTOMATIC1111 resamples it: N points (unless N equals the table
/// length), then 0 appended.
pub(crate) fn ays_a1111(table: &[f64], n: usize) -> Vec<f32> {
    let s: Vec<f64> = if n != table.len() {
        loglinear_interp(table, n)
    } else {
        table.to_vec()
    };
    append_zero(s.into_iter().map(r32).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_zero() {
        let k = karras(1, 0.03, 14.6, 7.0);
        assert_eq!(k.len(), 2);
        assert!((k[0] - 14.6).abs() < 1e-5 && k[1] == 0.0);
        assert_eq!(exponential(5, 0.03, 14.6).len(), 6);
        assert_eq!(laplace(7, 0.03, 14.6, 0.0, 0.5)[3], 1.0);
        assert_eq!(linear_quadratic(1, 1.0, 0.025, None), vec![1.0, 0.0]);
        assert_eq!(a1111_kl_optimal(4, 0.03, 14.6).len(), 5);
    }
}
