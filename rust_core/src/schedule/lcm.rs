//! LCMScheduler and TCDScheduler: timesteps picked from the distillation grid
//! `k·[1..orig·strength] − 1`, int64, no sigmas, `init_noise_sigma` 1.0.

use super::betas::TerminalPatch;
use super::primitives::np_linspace_open;
use super::vp::Vp;
use super::{reject_extras, required_steps, steps_from_custom, Built, Request, Timesteps};
use crate::error::{CoreError, Result};

/// Builds the schedule of LCM or TCD. `strength` is the `set_timesteps` argument here (the LCM
/// img2img pipeline passes it to the scheduler).
// diffusers 0.42.1 schedulers/scheduling_lcm.py and scheduling_tcd.py: set_timesteps.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    reject_extras(req.class, req.extras, &["timesteps"])?;
    let cfg = &*req.cfg;
    let vp = Vp::new(cfg, TerminalPatch::KeepZero)?;
    let n_train = cfg.count("num_train_timesteps")?;
    let original = cfg.count("original_inference_steps")?;
    if original > n_train {
        return Err(CoreError::invalid(
            "original_inference_steps",
            format!("{original} cannot be larger than num_train_timesteps ({n_train})"),
        ));
    }
    let strength = req.extras.strength.unwrap_or(1.0);
    let k = (n_train / original) as i64;
    let kept = (original as f64 * strength) as i64;
    let origin: Vec<i64> = (1..=kept).map(|i| i * k - 1).collect();
    let (n, timesteps) = match req.extras.timesteps.as_deref() {
        Some(custom) => custom_timesteps(
            req.steps, custom, &origin, n_train, original, strength, warnings,
        )?,
        None => {
            let n = required_steps(req.steps)?;
            (n, pick(&origin, n, n_train, original, strength)?)
        }
    };
    Ok(Built {
        timesteps: Timesteps::I64(timesteps),
        sigmas: None,
        init_noise_sigma: 1.0,
        betas: vp.training.betas.clone().into(),
        alphas_cumprod: vp.training.alphas_cumprod.clone().into(),
        num_inference_steps: n,
    })
}

/// `n` timesteps from the reversed origin grid at `floor(linspace(0, len, n, endpoint=False))`.
fn pick(
    origin: &[i64],
    n: usize,
    n_train: usize,
    original: usize,
    strength: f64,
) -> Result<Vec<i64>> {
    if n > n_train {
        return Err(CoreError::invalid(
            "num_inference_steps",
            format!("{n} cannot be larger than num_train_timesteps ({n_train})"),
        ));
    }
    if origin.len() / n < 1 {
        return Err(CoreError::invalid(
            "num_inference_steps",
            format!(
                "{n} exceeds original_inference_steps x strength ({original} x {strength}); reduce the \
                 steps or raise strength"
            ),
        ));
    }
    if n > original {
        return Err(CoreError::invalid(
            "num_inference_steps",
            format!("{n} cannot be larger than original_inference_steps ({original})"),
        ));
    }
    let reversed: Vec<i64> = origin.iter().rev().copied().collect();
    Ok(np_linspace_open(0.0, reversed.len() as f64, n)
        .into_iter()
        .map(|x| reversed[(x.floor() as usize).min(reversed.len() - 1)])
        .collect())
}

/// Custom timesteps: validated like diffusers, truncated by strength as `set_timesteps` does.
fn custom_timesteps(
    steps: Option<usize>,
    custom: &[f64],
    origin: &[i64],
    n_train: usize,
    original: usize,
    strength: f64,
    warnings: &mut Vec<String>,
) -> Result<(usize, Vec<i64>)> {
    let n = steps_from_custom(steps, custom.len(), "timesteps")?;
    if let Some(bad) = custom.iter().find(|t| t.fract() != 0.0) {
        return Err(CoreError::invalid(
            "timesteps",
            format!("must be integers, got {bad}"),
        ));
    }
    let ts: Vec<i64> = custom.iter().map(|&t| t as i64).collect();
    if ts.windows(2).any(|w| w[1] >= w[0]) {
        return Err(CoreError::invalid(
            "timesteps",
            "must be in strictly descending order",
        ));
    }
    if ts[0] >= n_train as i64 {
        return Err(CoreError::invalid(
            "timesteps",
            format!("must start below num_train_timesteps ({n_train})"),
        ));
    }
    if strength == 1.0 && ts[0] != n_train as i64 - 1 {
        warnings.push(format!(
            "the first custom timestep is {}, not num_train_timesteps - 1 = {} (upstream warns too)",
            ts[0],
            n_train - 1
        ));
    }
    let off_grid: Vec<i64> = ts[1..]
        .iter()
        .copied()
        .filter(|t| !origin.contains(t))
        .collect();
    if !off_grid.is_empty() {
        warnings.push(format!(
            "custom timesteps {off_grid:?} are not on the distillation schedule (upstream warns too)"
        ));
    }
    if ts.len() > original {
        warnings.push(format!(
            "{} custom timesteps exceed original_inference_steps ({original})",
            ts.len()
        ));
    }
    let init = ((n as f64 * strength) as usize).min(n);
    let start = n.saturating_sub(init);
    Ok((n, ts[start..].to_vec()))
}
