//! Variance-exploding schedules: ScoreSdeVeScheduler (Song et al. 2021) and the deprecated
//! KarrasVeScheduler (Karras et al. 2022, stochastic sampler). Both report `init_noise_sigma =
//! sigma_max` (the config value).

use super::classes::SchedulerClass as C;
use super::primitives::{r32, torch_linspace_f32};
use super::{reject_extras, required_steps, Built, FloatArray, Request, Timesteps};
use crate::error::Result;

/// Builds the schedule of ScoreSdeVe or KarrasVe.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    reject_extras(req.class, req.extras, &[])?;
    let n = required_steps(req.steps)?;
    let cfg = &*req.cfg;
    let sigma_min = cfg.float("sigma_min")?;
    let sigma_max = cfg.float("sigma_max")?;
    let (timesteps, sigmas) = if req.class == C::KarrasVe {
        warnings.push(
            "KarrasVeScheduler: `sigmas` holds its `schedule` attribute, sigma_max^2 * \
             (sigma_min^2 / sigma_max^2)^(i / (n - 1)), which its pipeline reads as sigma"
                .to_owned(),
        );
        karras_ve(n, sigma_min, sigma_max)
    } else {
        warnings.push(
            "ScoreSdeVeScheduler: `sigmas` are those of set_sigmas(num_inference_steps), which \
             its pipeline calls after set_timesteps (set_timesteps alone keeps the \
             num_train_timesteps sigmas of __init__)"
                .to_owned(),
        );
        score_sde_ve(n, sigma_min, sigma_max, cfg.float("sampling_eps")?)
    };
    Ok(Built {
        timesteps,
        sigmas: Some(FloatArray::F32(sigmas)),
        init_noise_sigma: sigma_max,
        betas: FloatArray::default(),
        alphas_cumprod: FloatArray::default(),
        num_inference_steps: n,
    })
}

/// Timesteps `torch.linspace(1, eps, n)` and, per timestep t, `sigma_min * (sigma_max /
/// sigma_min) ** t` in float32 torch arithmetic (the base and factor rounded to f32).
// diffusers 0.42.1 schedulers/scheduling_sde_ve.py: set_timesteps, set_sigmas.
fn score_sde_ve(n: usize, sigma_min: f64, sigma_max: f64, eps: f64) -> (Timesteps, Vec<f32>) {
    let timesteps = torch_linspace_f32(1.0, eps, n);
    let base = r32(sigma_max / sigma_min);
    let factor = r32(sigma_min);
    let sigmas = timesteps
        .iter()
        .map(|&t| factor * powf32(base, t))
        .collect();
    (Timesteps::F32(timesteps), sigmas)
}

/// Timesteps `n-1, ..., 0` (int64) and `schedule[i] = sigma_max^2 * (sigma_min^2 /
/// sigma_max^2) ** (i / (n - 1))` for each timestep i, with `i / (n - 1)` a float32 tensor
/// division (NaN for n = 1, as upstream) and the Python floats rounded to f32.
// diffusers 0.42.1 schedulers/deprecated/scheduling_karras_ve.py: set_timesteps.
fn karras_ve(n: usize, sigma_min: f64, sigma_max: f64) -> (Timesteps, Vec<f32>) {
    let timesteps: Vec<i64> = (0..n as i64).rev().collect();
    let scale = r32(sigma_max * sigma_max);
    let base = r32((sigma_min * sigma_min) / (sigma_max * sigma_max));
    let denominator = (n as f32) - 1.0;
    let schedule = timesteps
        .iter()
        .map(|&i| scale * powf32(base, i as f32 / denominator))
        .collect();
    (Timesteps::I64(timesteps), schedule)
}

/// `torch.pow` of float32 operands (computed in float64, rounded once).
fn powf32(base: f32, exponent: f32) -> f32 {
    r32(f64::from(base).powf(f64::from(exponent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ve_schedules_run_from_sigma_max_down() {
        let (t, s) = score_sde_ve(5, 0.01, 1348.0, 1e-5);
        assert_eq!(t.get_f64(0), Some(1.0));
        assert!((f64::from(s[0]) - 1348.0).abs() < 1e-3);
        assert!(s.windows(2).all(|w| w[1] < w[0]));
        let (t, s) = karras_ve(3, 0.02, 100.0);
        assert_eq!(t, Timesteps::I64(vec![2, 1, 0]));
        assert_eq!(s[2], 10_000.0);
        assert!((s[0] - 0.0004).abs() < 1e-9);
        let (_, s) = karras_ve(1, 0.02, 100.0);
        assert!(s[0].is_nan());
    }
}
