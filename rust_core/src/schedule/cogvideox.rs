//! CogVideoXDDIMScheduler and CogVideoXDPMScheduler: DDIM's timesteps over CogVideoX's own
//! training arrays. Three things differ from DDIM (diffusers 0.42.1
//! schedulers/scheduling_ddim_cogvideox.py and scheduling_dpm_cogvideox.py, `__init__`):
//!
//! * `scaled_linear` betas are built in float64 (`torch.linspace(..., dtype=float64) ** 2`), so
//!   `betas` and `alphas_cumprod` are float64 arrays for that schedule (float32 otherwise);
//! * `alphas_cumprod` is shifted to a lower SNR: `acp / (s + (1 - s) * acp)` with
//!   `s = snr_shift_scale`;
//! * the zero-terminal-SNR rescale acts on that `alphas_cumprod` directly and leaves the betas
//!   as they were.

use std::sync::{Arc, Mutex, PoisonError};

use super::betas::{self, BetaSchedule, BetaSource};
use super::config::Resolved;
use super::discrete;
use super::primitives::{cumprod_f32, r32, torch_linspace_f32, torch_linspace_f64};
use super::{reject_extras, required_steps, Built, FloatArray, Request, Timesteps};
use crate::error::{CoreError, Result};

/// Builds the schedule of CogVideoXDDIM or CogVideoXDPM (identical `set_timesteps`).
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    reject_extras(req.class, req.extras, &[])?;
    let cfg = &*req.cfg;
    let n_train = cfg.count("num_train_timesteps")?;
    let n = required_steps(req.steps)?;
    if n > n_train {
        return Err(CoreError::invalid(
            "num_inference_steps",
            format!("{n} cannot be larger than num_train_timesteps ({n_train})"),
        ));
    }
    let timesteps: Vec<i64> = discrete::spaced(cfg, n, req.extras.fix_quirks, warnings)?
        .into_iter()
        .rev()
        .collect();
    let (betas, alphas_cumprod) = training_arrays(cfg)?;
    Ok(Built {
        timesteps: Timesteps::I64(timesteps),
        sigmas: None,
        init_noise_sigma: 1.0,
        betas,
        alphas_cumprod,
        num_inference_steps: n,
    })
}

/// What determines the training arrays: the beta source, `snr_shift_scale`, the rescale.
type Key = (BetaSource, u64, bool);

/// `(betas, alphas_cumprod)`.
type Arrays = Arc<(FloatArray, FloatArray)>;

/// Recently built training arrays (a pure-function memo, as for the VP schedulers).
static CACHE: Mutex<Vec<(Key, Arrays)>> = Mutex::new(Vec::new());
const CACHE_CAPACITY: usize = 8;

/// `betas` and the shifted (and optionally rescaled) `alphas_cumprod`, in the betas' dtype.
fn training_arrays(cfg: &Resolved) -> Result<(FloatArray, FloatArray)> {
    let key: Key = (
        beta_source(cfg)?,
        cfg.float("snr_shift_scale")?.to_bits(),
        cfg.flag("rescale_betas_zero_snr")?,
    );
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(i) = cache.iter().position(|(k, _)| *k == key) {
        let entry = cache.remove(i);
        let arrays = Arc::clone(&entry.1);
        cache.insert(0, entry);
        return Ok((*arrays).clone());
    }
    drop(cache);
    let arrays = Arc::new(compute(&key));
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    cache.insert(0, (key, Arc::clone(&arrays)));
    cache.truncate(CACHE_CAPACITY);
    Ok((*arrays).clone())
}

/// The betas as configured (trained betas must match `num_train_timesteps`).
fn beta_source(cfg: &Resolved) -> Result<BetaSource> {
    let n = cfg.count("num_train_timesteps")?;
    if let Some(values) = cfg.opt_float_list("trained_betas")? {
        if values.len() != n {
            return Err(CoreError::invalid(
                "trained_betas",
                format!("has {} values but num_train_timesteps is {n}", values.len()),
            ));
        }
        return Ok(BetaSource::Trained(values));
    }
    let schedule = match cfg.text("beta_schedule")? {
        "scaled_linear" => BetaSchedule::ScaledLinear,
        "linear" => BetaSchedule::Linear,
        _ => BetaSchedule::SquaredCosCapV2,
    };
    Ok(BetaSource::Named {
        schedule,
        beta_start: cfg.float("beta_start")?,
        beta_end: cfg.float("beta_end")?,
        num_train_timesteps: n,
    })
}

fn compute(key: &Key) -> (FloatArray, FloatArray) {
    let (source, shift_bits, zero_snr) = key;
    let (shift, zero_snr) = (f64::from_bits(*shift_bits), *zero_snr);
    match source {
        BetaSource::Named {
            schedule: BetaSchedule::ScaledLinear,
            beta_start,
            beta_end,
            num_train_timesteps,
        } => {
            let betas: Vec<f64> =
                torch_linspace_f64(beta_start.sqrt(), beta_end.sqrt(), *num_train_timesteps)
                    .into_iter()
                    .map(|x| x * x)
                    .collect();
            arrays_f64(betas, shift, zero_snr)
        }
        BetaSource::Named {
            schedule: BetaSchedule::Linear,
            beta_start,
            beta_end,
            num_train_timesteps,
        } => arrays_f32(
            torch_linspace_f32(*beta_start, *beta_end, *num_train_timesteps),
            shift,
            zero_snr,
        ),
        // Trained betas (float32) and squaredcos_cap_v2.
        other => arrays_f32(betas::betas(other), shift, zero_snr),
    }
}

/// float32 torch arithmetic: `acp / (s + (1 - s) * acp)` with the Python floats rounded to f32.
fn arrays_f32(betas: Vec<f32>, shift: f64, zero_snr: bool) -> (FloatArray, FloatArray) {
    let alphas: Vec<f32> = betas.iter().map(|&b| 1.0f32 - b).collect();
    let (s, one_minus_s) = (r32(shift), r32(1.0 - shift));
    let mut acp: Vec<f32> = cumprod_f32(&alphas)
        .into_iter()
        .map(|a| a / (s + one_minus_s * a))
        .collect();
    if zero_snr {
        acp = rescale_f32(&acp);
    }
    (betas.into(), acp.into())
}

/// The float64 twin of [`arrays_f32`] (`scaled_linear` betas).
fn arrays_f64(betas: Vec<f64>, shift: f64, zero_snr: bool) -> (FloatArray, FloatArray) {
    let mut product = 1.0f64;
    let mut acp: Vec<f64> = betas
        .iter()
        .map(|&b| {
            product *= 1.0 - b;
            product / (shift + (1.0 - shift) * product)
        })
        .collect();
    if zero_snr {
        acp = rescale_f64(&acp);
    }
    (betas.into(), acp.into())
}

/// Lin et al. 2023, Algorithm 1, on `alphas_cumprod` (CogVideoX's variant), float32.
fn rescale_f32(acp: &[f32]) -> Vec<f32> {
    let roots: Vec<f32> = acp.iter().map(|a| a.sqrt()).collect();
    let (Some(&first), Some(&last)) = (roots.first(), roots.last()) else {
        return Vec::new();
    };
    let scale = first / (first - last);
    roots
        .iter()
        .map(|&r| {
            let x = (r - last) * scale;
            x * x
        })
        .collect()
}

/// [`rescale_f32`] in float64.
fn rescale_f64(acp: &[f64]) -> Vec<f64> {
    let roots: Vec<f64> = acp.iter().map(|a| a.sqrt()).collect();
    let (Some(&first), Some(&last)) = (roots.first(), roots.last()) else {
        return Vec::new();
    };
    let scale = first / (first - last);
    roots
        .iter()
        .map(|&r| {
            let x = (r - last) * scale;
            x * x
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_lowers_the_snr_and_rescale_ends_at_zero() {
        let betas = torch_linspace_f64(0.00085f64.sqrt(), 0.012f64.sqrt(), 1000)
            .into_iter()
            .map(|x| x * x)
            .collect::<Vec<f64>>();
        let (_, plain) = arrays_f64(betas.clone(), 1.0, false);
        let (_, shifted) = arrays_f64(betas.clone(), 3.0, false);
        let (_, rescaled) = arrays_f64(betas, 3.0, true);
        for i in [0, 500, 999] {
            let (p, s) = (
                plain.get_f64(i).unwrap_or(0.0),
                shifted.get_f64(i).unwrap_or(1.0),
            );
            // acp / (3 - 2 acp) < acp for acp < 1.
            assert!(s < p, "{i}: {s} !< {p}");
        }
        assert_eq!(rescaled.get_f64(999), Some(0.0));
        assert_eq!(shifted.dtype(), "float64");
    }
}
