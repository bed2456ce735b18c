//! EDMEulerScheduler, EDMDPMSolverMultistepScheduler and CosineDPMSolverMultistepScheduler:
//! Karras or exponential sigmas between `sigma_min` and `sigma_max`, timesteps `c_noise = 0.25
//! ln sigma` (EDM) or `atan(sigma) * 2 / pi` (cosine), `init_noise_sigma`
//! `sqrt(sigma_max^2 + 1)`.

use super::classes::SchedulerClass as C;
use super::config::{ConfigValue, Resolved};
use super::conversions::karras_rho;
use super::primitives::{r32, torch_linspace_f32, torch_linspace_f64};
use super::{
    reject_extras, required_steps, steps_from_custom, Built, FloatArray, Request, Timesteps,
};
use crate::error::{CoreError, Result};

/// Builds the schedule of EDMEuler, EDMDPMSolverMultistep or CosineDPMSolverMultistep.
// diffusers 0.42.1 schedulers/scheduling_edm_euler.py, scheduling_edm_dpmsolver_multistep.py and
// scheduling_cosine_dpmsolver_multistep.py: __init__, set_timesteps, _compute_karras_sigmas,
// _compute_exponential_sigmas, precondition_noise.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    let class = req.class;
    let allowed: &[&str] = if class == C::EdmEuler {
        &["sigmas"]
    } else {
        &[]
    };
    reject_extras(class, req.extras, allowed)?;
    match class {
        C::EdmDpm => normalise_edm_dpm(req.cfg, warnings)?,
        C::CosineDpm => midpoint_solver(req.cfg, warnings)?,
        _ => {}
    }
    let cfg = &*req.cfg;
    let sigma_min = cfg.float("sigma_min")?;
    let sigma_max = cfg.float("sigma_max")?;
    let (n, ramp) = match req.extras.sigmas.as_deref() {
        Some(custom) => {
            warnings.push(
                "EDMEulerScheduler treats `sigmas` as a ramp in [0, 1] (diffusers semantics), not \
                 as sigma values"
                    .to_owned(),
            );
            (
                steps_from_custom(req.steps, custom.len(), "sigmas")?,
                custom.to_vec(),
            )
        }
        None => {
            let n = required_steps(req.steps)?;
            let ramp = match class {
                C::EdmEuler => torch_linspace_f64(0.0, 1.0, n),
                _ => torch_linspace_f32(0.0, 1.0, n)
                    .into_iter()
                    .map(f64::from)
                    .collect(),
            };
            (n, ramp)
        }
    };
    let sigmas = edm_sigmas(class, cfg, sigma_min, sigma_max, &ramp)?;
    let timesteps: Vec<f32> = if class == C::CosineDpm {
        // atan(sigma) / pi * 2 in float32 torch arithmetic.
        let pi = r32(std::f64::consts::PI);
        sigmas
            .iter()
            .map(|&s| r32(f64::from(s).atan()) / pi * 2.0)
            .collect()
    } else {
        sigmas
            .iter()
            .map(|&s| 0.25 * r32(f64::from(s).ln()))
            .collect()
    };
    let last = match cfg.text("final_sigmas_type")? {
        "sigma_min" if class == C::EdmEuler => sigmas.last().copied().unwrap_or(f32::NAN),
        "sigma_min" => r32(sigma_min),
        _ => 0.0,
    };
    let mut all = sigmas;
    all.push(last);
    Ok(Built {
        timesteps: Timesteps::F32(timesteps),
        sigmas: Some(all.into()),
        init_noise_sigma: (sigma_max * sigma_max + 1.0).sqrt(),
        betas: FloatArray::default(),
        alphas_cumprod: FloatArray::default(),
        num_inference_steps: n,
    })
}

/// Karras (float64 for EDMEuler, float32 for EDM-DPM) or exponential (float32) sigmas.
fn edm_sigmas(
    class: C,
    cfg: &Resolved,
    sigma_min: f64,
    sigma_max: f64,
    ramp: &[f64],
) -> Result<Vec<f32>> {
    let rho = cfg.float("rho")?;
    Ok(match cfg.text("sigma_schedule")? {
        "exponential" => {
            let mut s: Vec<f32> = torch_linspace_f32(sigma_min.ln(), sigma_max.ln(), ramp.len())
                .into_iter()
                .map(|x| r32(f64::from(x).exp()))
                .collect();
            s.reverse();
            s
        }
        _ if class == C::EdmEuler => karras_rho(sigma_min, sigma_max, rho, ramp)
            .into_iter()
            .map(r32)
            .collect(),
        _ => karras_f32(sigma_min, sigma_max, rho, ramp),
    })
}

/// The Karras formula in float32 torch arithmetic (EDM-DPM): the roots in float64 Python, the
/// rest float32.
fn karras_f32(sigma_min: f64, sigma_max: f64, rho: f64, ramp: &[f64]) -> Vec<f32> {
    let min_inv = sigma_min.powf(1.0 / rho);
    let max_inv = sigma_max.powf(1.0 / rho);
    let diff = r32(min_inv - max_inv);
    let base = r32(max_inv);
    let rho32 = r32(rho);
    ramp.iter()
        .map(|&r| {
            let x = base + r32(r) * diff;
            r32(f64::from(x).powf(f64::from(rho32)))
        })
        .collect()
}

/// `solver_type` logrho / bh1 / bh2 becomes midpoint, as the DPM-family `__init__` rewrites it.
fn midpoint_solver(cfg: &mut Resolved, warnings: &mut Vec<String>) -> Result<()> {
    let solver = cfg.text("solver_type")?.to_owned();
    if matches!(solver.as_str(), "logrho" | "bh1" | "bh2") {
        cfg.map
            .insert("solver_type", ConfigValue::Str("midpoint".into()));
        warnings.push(format!(
            "solver_type={solver:?} is rewritten to 'midpoint' (as diffusers does)"
        ));
    }
    Ok(())
}

/// EDM-DPM's `__init__` rewrites and refusals.
fn normalise_edm_dpm(cfg: &mut Resolved, warnings: &mut Vec<String>) -> Result<()> {
    let algorithm = cfg.text("algorithm_type")?.to_owned();
    if algorithm == "deis" {
        if cfg.text("final_sigmas_type")? == "zero" {
            return Err(CoreError::invalid(
                "final_sigmas_type",
                "'zero' is not supported for algorithm_type 'deis'; use 'sigma_min'",
            ));
        }
        cfg.map
            .insert("algorithm_type", ConfigValue::Str("dpmsolver++".into()));
        warnings
            .push("algorithm_type='deis' is rewritten to 'dpmsolver++' (as diffusers does)".into());
    }
    midpoint_solver(cfg, warnings)
}
