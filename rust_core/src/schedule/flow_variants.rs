//! Flow-matching schedulers with their own `set_timesteps`: FlowMapEulerDiscreteScheduler
//! (float64 arrays), MiniMaxH3Scheduler (ascending timesteps `1 - sigma`) and PiflowScheduler
//! (pi-Flow's distilled grid). None has `init_noise_sigma` (reported as 1.0).

use super::classes::SchedulerClass as C;
use super::primitives::{r32, torch_linspace_f32, torch_linspace_f64};
use super::{reject_extras, required_steps, Built, FloatArray, Request, Timesteps};
use crate::error::{CoreError, Result};

/// Builds the schedule of FlowMapEuler, MiniMaxH3 or Piflow.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    match req.class {
        C::FlowMapEuler => flow_map(&req),
        C::MiniMaxH3 => minimax_h3(&req, warnings),
        _ => piflow(&req),
    }
}

fn built(timesteps: Timesteps, sigmas: FloatArray, n: usize) -> Built {
    Built {
        timesteps,
        sigmas: Some(sigmas),
        init_noise_sigma: 1.0,
        betas: FloatArray::default(),
        alphas_cumprod: FloatArray::default(),
        num_inference_steps: n,
    }
}

/// `linspace(1, 0, n + 1)[:-1]` (or custom sigmas, or timesteps / N), shifted unless shift is 1,
/// a terminal 0 appended; timesteps `sigma * N`; all float64 (float32 only on MPS / NPU).
// diffusers 0.42.1 schedulers/scheduling_flow_map_euler_discrete.py: set_timesteps, apply_shift.
fn flow_map(req: &Request<'_>) -> Result<Built> {
    reject_extras(req.class, req.extras, &["sigmas", "timesteps"])?;
    let extras = req.extras;
    let (sigmas, timesteps) = (extras.sigmas.as_deref(), extras.timesteps.as_deref());
    if let (Some(s), Some(t)) = (sigmas, timesteps) {
        if s.len() != t.len() {
            return Err(CoreError::invalid(
                "timesteps",
                "must have as many values as `sigmas`",
            ));
        }
    }
    let given = sigmas.or(timesteps).map(<[f64]>::len);
    let n = match (req.steps, given) {
        (Some(n), Some(len)) if n != len => {
            return Err(CoreError::invalid(
                "num_inference_steps",
                format!("{n} disagrees with the {len} custom values; pass None"),
            ))
        }
        (_, Some(len)) => len,
        (steps, None) => required_steps(steps)?,
    };
    let n_train = req.cfg.count("num_train_timesteps")? as f64;
    let mut working: Vec<f64> = match (sigmas, timesteps) {
        (Some(s), _) => s.to_vec(),
        (None, Some(t)) => t.iter().map(|&x| x / n_train).collect(),
        (None, None) => {
            let mut s = torch_linspace_f64(1.0, 0.0, n + 1);
            s.pop();
            s
        }
    };
    let shift = req.cfg.float("shift")?;
    if shift != 1.0 {
        for s in &mut working {
            *s = shift * *s / (1.0 + (shift - 1.0) * *s);
        }
    }
    let timesteps: Vec<f64> = working.iter().map(|&s| s * n_train).collect();
    working.push(0.0);
    Ok(built(Timesteps::F64(timesteps), working.into(), n))
}

/// `shift * b / (1 + (shift - 1) * b)` on `b = linspace(1, 0, n)` (float32), consecutive
/// repeats removed; or custom sigmas (strictly decreasing, ending at 0). Timesteps `1 - sigma`
/// for all but the last sigma.
// diffusers 0.42.1 schedulers/scheduling_minimax_h3.py: set_timesteps.
fn minimax_h3(req: &Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    reject_extras(req.class, req.extras, &["sigmas"])?;
    let sigmas: Vec<f32> = match req.extras.sigmas.as_deref() {
        Some(custom) => {
            let s: Vec<f32> = custom.iter().map(|&x| r32(x)).collect();
            let decreasing = s.windows(2).all(|w| w[1] < w[0]);
            if s.len() < 2 || !decreasing || s.last() != Some(&0.0) {
                return Err(CoreError::invalid(
                    "sigmas",
                    "must hold at least two strictly decreasing values ending at 0.0",
                ));
            }
            if let Some(n) = req.steps.filter(|&n| n + 1 != s.len()) {
                warnings.push(format!(
                    "MiniMaxH3Scheduler uses the {} given sigmas and ignores num_inference_steps={n}",
                    s.len()
                ));
            }
            s
        }
        None => {
            let n = required_steps(req.steps)?;
            if n < 2 {
                return Err(CoreError::invalid(
                    "num_inference_steps",
                    "MiniMaxH3Scheduler needs at least 2 steps without custom sigmas",
                ));
            }
            let shift = req.cfg.float("shift")?;
            let (k, k1) = (r32(shift), r32(shift - 1.0));
            let mut s: Vec<f32> = torch_linspace_f32(1.0, 0.0, n)
                .into_iter()
                .map(|b| k * b / (1.0 + k1 * b))
                .collect();
            s.dedup();
            s
        }
    };
    let timesteps: Vec<f32> = sigmas[..sigmas.len().saturating_sub(1)]
        .iter()
        .map(|&s| 1.0 - s)
        .collect();
    let n = timesteps.len();
    Ok(built(Timesteps::F32(timesteps), sigmas.into(), n))
}

/// pi-Flow: raw times `1 - i / (n - (1 - final_step_size_scale))` for i < n (float32), shifted,
/// timesteps `sigma * N`, a terminal 0 appended.
// diffusers 0.42.1 schedulers/scheduling_piflow.py: set_timesteps, shift_timesteps.
fn piflow(req: &Request<'_>) -> Result<Built> {
    // Upstream refuses sigmas, mu and timesteps: only its distilled grid is supported.
    reject_extras(req.class, req.extras, &[])?;
    let n = required_steps(req.steps)?;
    let cfg = &*req.cfg;
    let segment = r32(1.0 / (n as f64 - (1.0 - cfg.float("final_step_size_scale")?)));
    let shift = cfg.float("shift")?;
    let (k, k1) = (r32(shift), r32(shift - 1.0));
    let n_train = cfg.count("num_train_timesteps")? as f32;
    let mut sigmas: Vec<f32> = (0..n)
        .map(|i| {
            let raw = 1.0f32 - i as f32 * segment;
            k * raw / (1.0 + k1 * raw)
        })
        .collect();
    let timesteps: Vec<f32> = sigmas.iter().map(|&s| s * n_train).collect();
    sigmas.push(0.0);
    Ok(built(Timesteps::F32(timesteps), sigmas.into(), n))
}
