//! Consistency-model samplers: CMStochasticIterativeScheduler (Song et al. 2023, Karras sigmas
//! over the training grid), SCMScheduler (sCM / Sana-Sprint, TrigFlow angles) and
//! ConsistencyDecoderScheduler (OpenAI's consistency decoder, two fixed timesteps).

use super::betas::{self, BetaSchedule, BetaSource};
use super::classes::SchedulerClass as C;
use super::conversions::karras_rho;
use super::primitives::{cumprod_f32, r32, rne, torch_linspace_f32, trunc_i64};
use super::Timesteps;
use super::{reject_extras, required_steps, steps_from_custom, Built, FloatArray, Request};
use crate::error::{CoreError, Result};

/// SCM's `set_timesteps` defaults (`max_timesteps`, `intermediate_timesteps`). Upstream writes
/// 1.5708, a rounded pi/2 that must be kept as written (it is not `FRAC_PI_2`).
#[allow(clippy::approx_constant)]
const SCM_MAX_TIMESTEPS: f64 = 1.5708;
const SCM_INTERMEDIATE_TIMESTEPS: f64 = 1.3;

/// The consistency decoder's fixed timesteps.
const DECODER_TIMESTEPS: [i64; 2] = [1008, 512];

/// Builds the schedule of one of this module's classes.
pub(crate) fn build(req: Request<'_>, _warnings: &mut [String]) -> Result<Built> {
    match req.class {
        C::CmStochasticIterative => cm_stochastic(&req),
        C::Scm => scm(&req),
        _ => consistency_decoder(&req),
    }
}

fn built(timesteps: Timesteps, sigmas: Option<Vec<f32>>, init: f64, n: usize) -> Built {
    Built {
        timesteps,
        sigmas: sigmas.map(FloatArray::F32),
        init_noise_sigma: init,
        betas: FloatArray::default(),
        alphas_cumprod: FloatArray::default(),
        num_inference_steps: n,
    }
}

/// Integer timesteps on the training grid (`N // n` apart, or custom), Karras sigmas at
/// `ramp = t / (N - 1)` (float64), timesteps replaced by `250 * ln(sigma + 1e-44)` (float64),
/// sigmas float32 with `sigma_min` appended.
// diffusers 0.42.1 schedulers/scheduling_consistency_models.py: set_timesteps,
// _convert_to_karras, sigma_to_t.
fn cm_stochastic(req: &Request<'_>) -> Result<Built> {
    reject_extras(req.class, req.extras, &["timesteps"])?;
    let cfg = &*req.cfg;
    let n_train = cfg.count("num_train_timesteps")?;
    let (n, grid) = match req.extras.timesteps.as_deref() {
        Some(custom) => {
            if req.steps.is_some() {
                return Err(CoreError::invalid(
                    "num_inference_steps",
                    "pass either num_inference_steps or custom timesteps, not both (as upstream)",
                ));
            }
            (custom.len(), custom_grid(custom, n_train)?)
        }
        None => {
            let n = required_steps(req.steps)?;
            if n > n_train {
                return Err(CoreError::invalid(
                    "num_inference_steps",
                    format!("{n} cannot be larger than num_train_timesteps ({n_train})"),
                ));
            }
            let ratio = (n_train / n) as f64;
            (
                n,
                (0..n).rev().map(|i| rne(i as f64 * ratio) as i64).collect(),
            )
        }
    };
    let span = (n_train - 1) as f64;
    let ramp: Vec<f64> = grid.iter().rev().map(|&t| t as f64 / span).collect();
    let sigma_min = cfg.float("sigma_min")?;
    let sigma_max = cfg.float("sigma_max")?;
    let sigmas = karras_rho(sigma_min, sigma_max, cfg.float("rho")?, &ramp);
    let timesteps: Vec<f64> = sigmas.iter().map(|&s| 250.0 * (s + 1e-44).ln()).collect();
    let mut sigmas32: Vec<f32> = sigmas.iter().map(|&s| r32(s)).collect();
    sigmas32.push(r32(sigma_min));
    Ok(built(
        Timesteps::F64(timesteps),
        Some(sigmas32),
        sigma_max,
        n,
    ))
}

/// Custom CM timesteps: strictly descending, the first below `num_train_timesteps`, cast to
/// int64 (numpy truncates fractions).
fn custom_grid(custom: &[f64], n_train: usize) -> Result<Vec<i64>> {
    if custom.windows(2).any(|w| w[1] >= w[0]) {
        return Err(CoreError::invalid(
            "timesteps",
            "must be in descending order",
        ));
    }
    if custom.first().is_some_and(|&t| t >= n_train as f64) {
        return Err(CoreError::invalid(
            "timesteps",
            format!("must start below num_train_timesteps ({n_train})"),
        ));
    }
    Ok(custom.iter().map(|&t| trunc_i64(t)).collect())
}

/// sCM: TrigFlow angles from `max_timesteps` down to 0 (n + 1 float32 values), the fixed
/// two-step `[max, intermediate, 0]`, or custom timesteps.
// diffusers 0.42.1 schedulers/scheduling_scm.py: set_timesteps.
fn scm(req: &Request<'_>) -> Result<Built> {
    reject_extras(
        req.class,
        req.extras,
        &["timesteps", "max_timesteps", "intermediate_timesteps"],
    )?;
    let extras = req.extras;
    let n = match extras.timesteps.as_deref() {
        Some(custom) => steps_from_custom(req.steps, custom.len().saturating_sub(1), "timesteps")?,
        None => required_steps(req.steps)?,
    };
    let n_train = req.cfg.count("num_train_timesteps")?;
    if n > n_train {
        return Err(CoreError::invalid(
            "num_inference_steps",
            format!("{n} cannot be larger than num_train_timesteps ({n_train})"),
        ));
    }
    let max_timesteps = extras.max_timesteps.unwrap_or(Some(SCM_MAX_TIMESTEPS));
    let intermediate = extras
        .intermediate_timesteps
        .unwrap_or(Some(SCM_INTERMEDIATE_TIMESTEPS));
    let custom = extras.timesteps.as_deref();
    if custom.is_some() && max_timesteps.is_some() {
        return Err(CoreError::invalid(
            "max_timesteps",
            "must be None with custom timesteps (as upstream)",
        ));
    }
    if intermediate.is_some() && n != 2 {
        return Err(CoreError::invalid(
            "intermediate_timesteps",
            format!("is only supported with 2 steps (got {n}); pass intermediate_timesteps=None"),
        ));
    }
    let timesteps: Vec<f32> = match (custom, max_timesteps, intermediate) {
        (Some(values), _, _) => values.iter().map(|&t| r32(t)).collect(),
        (None, Some(max), Some(mid)) => vec![r32(max), r32(mid), 0.0],
        (None, Some(max), None) => torch_linspace_f32(max, 0.0, n + 1),
        (None, None, _) => {
            return Err(CoreError::invalid(
                "max_timesteps",
                "give either custom timesteps or max_timesteps",
            ))
        }
    };
    Ok(built(Timesteps::F32(timesteps), None, 1.0, n))
}

/// Two fixed timesteps; `init_noise_sigma = sqrt(1 - alphas_cumprod[1008])` of squaredcos
/// training arrays (float32 torch arithmetic). The arrays themselves are not attributes.
// diffusers 0.42.1 schedulers/scheduling_consistency_decoder.py: __init__, set_timesteps,
// init_noise_sigma.
fn consistency_decoder(req: &Request<'_>) -> Result<Built> {
    reject_extras(req.class, req.extras, &[])?;
    let n = required_steps(req.steps)?;
    if n != 2 {
        return Err(CoreError::invalid(
            "num_inference_steps",
            format!("ConsistencyDecoderScheduler supports exactly 2 steps, got {n}"),
        ));
    }
    let n_train = req.cfg.count("num_train_timesteps")?;
    let first = DECODER_TIMESTEPS[0] as usize;
    if n_train <= first {
        return Err(CoreError::invalid(
            "num_train_timesteps",
            format!("must exceed {first}: the fixed timesteps index its alphas_cumprod"),
        ));
    }
    let source = BetaSource::Named {
        schedule: BetaSchedule::SquaredCosCapV2,
        beta_start: 0.0,
        beta_end: 0.0,
        num_train_timesteps: n_train,
    };
    let alphas: Vec<f32> = betas::betas(&source).iter().map(|&b| 1.0 - b).collect();
    let acp = cumprod_f32(&alphas);
    let init = f64::from((1.0f32 - acp[first]).sqrt());
    Ok(built(
        Timesteps::I64(DECODER_TIMESTEPS.to_vec()),
        None,
        init,
        n,
    ))
}
