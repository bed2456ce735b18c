//! The smaller variance-preserving ("alpha" family) schedulers: UnCLIP, RePaint, IPNDM,
//! DDPMWuerstchen and the deprecated ScoreSdeVp. Each has its own `set_timesteps` rule; none has
//! sigmas and all report `init_noise_sigma` 1.0 (or lack the attribute).

use super::betas::TerminalPatch;
use super::classes::SchedulerClass as C;
use super::primitives::{r32, rne, torch_linspace_f32};
use super::vp::Vp;
use super::{reject_extras, required_steps, Built, FloatArray, Request, Timesteps};
use crate::error::{CoreError, Result};

/// The longest RePaint schedule accepted (its jumps multiply the step count; the paper's
/// 250 steps with 10 jumps of 10 give 4,750).
const MAX_REPAINT_TIMESTEPS: usize = 1_000_000;

/// Builds the schedule of one of this module's classes.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    match req.class {
        C::UnClip => unclip(&req),
        C::RePaint => repaint(&req),
        C::Ipndm => ipndm(&req),
        C::DdpmWuerstchen => wuerstchen(&req, warnings),
        _ => score_sde_vp(&req),
    }
}

fn plain(timesteps: Timesteps, n: usize) -> Built {
    Built {
        timesteps,
        sigmas: None,
        init_noise_sigma: 1.0,
        betas: FloatArray::default(),
        alphas_cumprod: FloatArray::default(),
        num_inference_steps: n,
    }
}

/// `rne(arange(n) * (N - 1) / (n - 1))` reversed, over squaredcos_cap_v2 training arrays.
// diffusers 0.42.1 schedulers/scheduling_unclip.py: __init__, set_timesteps.
fn unclip(req: &Request<'_>) -> Result<Built> {
    reject_extras(req.class, req.extras, &[])?;
    let cfg = &*req.cfg;
    let n = required_steps(req.steps)?;
    if n < 2 {
        return Err(CoreError::invalid(
            "num_inference_steps",
            "UnCLIPScheduler needs at least 2 steps (diffusers divides by num_inference_steps - 1)",
        ));
    }
    let vp = Vp::new(cfg, TerminalPatch::KeepZero)?;
    let ratio = (cfg.count("num_train_timesteps")? - 1) as f64 / (n - 1) as f64;
    let timesteps: Vec<i64> = (0..n).rev().map(|i| rne(i as f64 * ratio) as i64).collect();
    let mut built = plain(Timesteps::I64(timesteps), n);
    built.betas = vp.training.betas.clone().into();
    built.alphas_cumprod = vp.training.alphas_cumprod.clone().into();
    Ok(built)
}

/// The resampling schedule of RePaint (Lugmayr et al. 2022): walk down from `n - 1`, and every
/// `jump_length` steps jump back up `jump_length` steps, `jump_n_sample - 1` times; each entry
/// is then multiplied by `N // n`.
// diffusers 0.42.1 schedulers/scheduling_repaint.py: __init__, set_timesteps.
fn repaint(req: &Request<'_>) -> Result<Built> {
    reject_extras(req.class, req.extras, &["jump_length", "jump_n_sample"])?;
    let cfg = &*req.cfg;
    if cfg.opt_float_list("trained_betas")?.is_some() {
        return Err(CoreError::invalid(
            "trained_betas",
            "RePaintScheduler builds its betas with torch.from_numpy(trained_betas), which fails \
             for the list a config holds; use beta_schedule",
        ));
    }
    let n_train = cfg.count("num_train_timesteps")?;
    let n = required_steps(req.steps)?.min(n_train);
    let jump_length = req.extras.jump_length.unwrap_or(10);
    let jump_n_sample = req.extras.jump_n_sample.unwrap_or(10);
    if jump_length < 1 {
        return Err(CoreError::invalid(
            "jump_length",
            format!("must be at least 1, got {jump_length}"),
        ));
    }
    let walk = repaint_walk(n as i64, jump_length, jump_n_sample)?;
    let ratio = (n_train / n) as i64;
    let vp = Vp::new(cfg, TerminalPatch::KeepZero)?;
    let mut built = plain(
        Timesteps::I64(walk.into_iter().map(|t| t * ratio).collect()),
        n,
    );
    built.betas = vp.training.betas.clone().into();
    built.alphas_cumprod = vp.training.alphas_cumprod.clone().into();
    Ok(built)
}

/// The step indices of the RePaint walk, before scaling to training timesteps.
fn repaint_walk(n: i64, jump_length: i64, jump_n_sample: i64) -> Result<Vec<i64>> {
    // Jumps start at every multiple j of jump_length below n - jump_length.
    let mut jumps_left: Vec<i64> = vec![0; usize::try_from(n).unwrap_or(0)];
    let mut j = 0;
    while j < n - jump_length {
        if let Some(slot) = usize::try_from(j).ok().and_then(|i| jumps_left.get_mut(i)) {
            *slot = jump_n_sample - 1;
        }
        j += jump_length;
    }
    let mut out = Vec::new();
    let mut t = n;
    while t >= 1 {
        t -= 1;
        out.push(t);
        let slot = usize::try_from(t).ok().and_then(|i| jumps_left.get_mut(i));
        if let Some(left) = slot.filter(|left| **left > 0) {
            *left -= 1;
            for _ in 0..jump_length {
                t += 1;
                out.push(t);
            }
        }
        if out.len() > MAX_REPAINT_TIMESTEPS {
            return Err(CoreError::too_large(
                "jump_n_sample",
                format!(
                    "the RePaint schedule would exceed {MAX_REPAINT_TIMESTEPS} timesteps; lower \
                     jump_n_sample or num_inference_steps"
                ),
            ));
        }
    }
    Ok(out)
}

/// iPNDM (Zhang & Chen 2022) on Crowson's v-diffusion parameterisation: `sigma = sin(pi t / 2)`
/// on `t = linspace(1, 0, n + 1)` (diffusers stores it as `betas`), `alpha = sqrt(1 - sigma^2)`,
/// timesteps `atan2(sigma, alpha) * 2 / pi` without the last; all float32 torch arithmetic.
// diffusers 0.42.1 schedulers/scheduling_ipndm.py: set_timesteps.
fn ipndm(req: &Request<'_>) -> Result<Built> {
    reject_extras(req.class, req.extras, &[])?;
    let n = required_steps(req.steps)?;
    let pi = r32(std::f64::consts::PI);
    let betas: Vec<f32> = match req.cfg.opt_float_list("trained_betas")? {
        Some(values) => values.iter().map(|&b| r32(b)).collect(),
        None => {
            let mut steps = torch_linspace_f32(1.0, 0.0, n + 1);
            if let Some(last) = steps.last_mut() {
                *last = 0.0;
            }
            steps
                .into_iter()
                .map(|s| {
                    let x = sin32(s * pi / 2.0);
                    x * x
                })
                .collect()
        }
    };
    let timesteps: Vec<f32> = betas[..betas.len().saturating_sub(1)]
        .iter()
        .map(|&b| {
            let alpha = (1.0f32 - b * b).sqrt();
            atan2_32(b, alpha) / pi * 2.0
        })
        .collect();
    let mut built = plain(Timesteps::F32(timesteps), n);
    built.betas = betas.into();
    Ok(built)
}

fn sin32(x: f32) -> f32 {
    r32(f64::from(x).sin())
}

fn atan2_32(y: f32, x: f32) -> f32 {
    r32(f64::from(y).atan2(f64::from(x)))
}

/// Würstchen / Stable Cascade: `torch.linspace(1, 0, n + 1)` (float32), or the given
/// timesteps; no betas (its alpha_cumprod is a continuous cosine of t).
// diffusers 0.42.1 schedulers/scheduling_ddpm_wuerstchen.py: set_timesteps.
fn wuerstchen(req: &Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    reject_extras(req.class, req.extras, &["timesteps"])?;
    let timesteps: Vec<f32> = match req.extras.timesteps.as_deref() {
        Some(custom) => {
            if let Some(n) = req.steps.filter(|&n| n + 1 != custom.len()) {
                warnings.push(format!(
                    "DDPMWuerstchenScheduler uses the {} given timesteps and ignores \
                     num_inference_steps={n}",
                    custom.len()
                ));
            }
            custom.iter().map(|&t| r32(t)).collect()
        }
        None => torch_linspace_f32(1.0, 0.0, required_steps(req.steps)? + 1),
    };
    // The pipeline iterates timesteps[:-1].
    let n = timesteps.len().saturating_sub(1);
    Ok(plain(Timesteps::F32(timesteps), n))
}

/// The deprecated VP SDE: `torch.linspace(1, sampling_eps, n)` (float32), nothing else.
// diffusers 0.42.1 schedulers/deprecated/scheduling_sde_vp.py: set_timesteps.
fn score_sde_vp(req: &Request<'_>) -> Result<Built> {
    reject_extras(req.class, req.extras, &[])?;
    let n = required_steps(req.steps)?;
    let eps = req.cfg.float("sampling_eps")?;
    Ok(plain(Timesteps::F32(torch_linspace_f32(1.0, eps, n)), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repaint_walk_jumps_back_and_ends_at_zero() {
        // n = 4, jumps of 2 from t = 0 (j < n - jump_length = 2), one extra pass.
        let walk = repaint_walk(4, 2, 2).expect("valid");
        assert_eq!(walk, vec![3, 2, 1, 0, 1, 2, 1, 0]);
        assert_eq!(repaint_walk(3, 10, 10).expect("valid"), vec![2, 1, 0]);
        assert!(repaint_walk(1000, 1, 1_000_000).is_err());
    }
}
