//! FlowMatchEulerDiscreteScheduler (SD3, Flux, video models), FlowMatchHeunDiscreteScheduler,
//! FlowMatchLCMScheduler (the same `set_timesteps` as FlowMatchEuler) and
//! LTXEulerAncestralRFScheduler (which builds a FlowMatchEuler from its config, or takes custom
//! sigmas as given): sigmas in [0, 1] with a resolution shift, float32 timesteps `sigma * N`, no
//! `init_noise_sigma` (pipelines do not scale flow latents; reported as 1.0).

use super::classes::SchedulerClass as C;
use super::config::Resolved;
use super::conversions::SigmaSpace;
use super::kdiffusion::{interleave_inner, repeat_tail};
use super::multistep::stretch_to_terminal;
use super::primitives::{np_linspace, r32};
use super::{reject_extras, required_steps, Built, FloatArray, Request, Timesteps};
use crate::error::{CoreError, Result};

/// Builds the schedule of a flow-matching class.
// diffusers 0.42.1 schedulers/scheduling_flow_match_euler_discrete.py and
// scheduling_flow_match_lcm.py: __init__, set_timesteps.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    let class = req.class;
    let allowed: &[&str] = if class == C::FlowMatchHeun {
        &[]
    } else {
        &["timesteps", "sigmas", "mu"]
    };
    reject_extras(class, req.extras, allowed)?;
    if class == C::LtxEulerAncestralRf
        && (req.extras.sigmas.is_some() || req.extras.timesteps.is_some())
    {
        return ltx_custom(&req, warnings);
    }
    let cfg = &*req.cfg;
    let n_train = cfg.count("num_train_timesteps")? as f64;
    let dynamic = cfg.flag("use_dynamic_shifting")?;
    let space = SigmaSpace::from_cfg(cfg)?;
    if dynamic && req.extras.mu.is_none() {
        return Err(CoreError::invalid(
            "mu",
            "is required when use_dynamic_shifting=True",
        ));
    }
    if !dynamic && req.extras.mu.is_some() {
        warnings.push("`mu` is ignored without use_dynamic_shifting=True (as in diffusers)".into());
    }
    let n = step_count(&req)?;
    let base = base_sigmas(&req, n, warnings)?;
    let shifted = shift(cfg, req.extras.mu, base)?;
    let converted = convert(space, shifted, n);
    let sigmas: Vec<f32> = converted.iter().map(|&s| r32(s)).collect();
    let n32 = n_train as f32;
    let timesteps: Vec<f32> = match req.extras.timesteps.as_deref() {
        Some(given) => given.iter().map(|&t| r32(t)).collect(),
        None => sigmas.iter().map(|&s| s * n32).collect(),
    };
    let (timesteps, sigmas) = if class == C::FlowMatchHeun {
        let mut all = sigmas;
        all.push(0.0);
        (repeat_tail(&timesteps), interleave_inner(&all))
    } else if cfg.flag("invert_sigmas")? {
        let inverted: Vec<f32> = sigmas.iter().map(|&s| 1.0 - s).collect();
        let ts = inverted.iter().map(|&s| s * n32).collect();
        let mut all = inverted;
        all.push(1.0);
        (ts, all)
    } else {
        let mut all = sigmas;
        all.push(0.0);
        (timesteps, all)
    };
    Ok(Built {
        timesteps: Timesteps::F32(timesteps),
        sigmas: Some(sigmas.into()),
        init_noise_sigma: 1.0,
        betas: FloatArray::default(),
        alphas_cumprod: FloatArray::default(),
        num_inference_steps: n,
    })
}

/// LTXEulerAncestralRF with custom `sigmas` (or `timesteps`, taken as sigmas): float32 values
/// used as given, no terminal value appended, timesteps `sigma * N` for every sigma, and
/// `num_inference_steps = len(sigmas) - 1` whatever was passed.
// diffusers 0.42.1 schedulers/scheduling_ltx_euler_ancestral_rf.py: set_timesteps.
fn ltx_custom(req: &Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    let given = req
        .extras
        .sigmas
        .as_deref()
        .or(req.extras.timesteps.as_deref())
        .unwrap_or(&[]);
    let sigmas: Vec<f32> = given.iter().map(|&s| r32(s)).collect();
    let n_train = req.cfg.count("num_train_timesteps")? as f32;
    let timesteps: Vec<f32> = sigmas.iter().map(|&s| s * n_train).collect();
    let n = sigmas.len().saturating_sub(1);
    if sigmas.last().is_some_and(|s| s.abs() > 1e-6) {
        warnings.push(
            "the last sigma is not 0; ComfyUI's RF sampler (which this scheduler follows) expects \
             a terminal sigma of 0 (upstream warns too)"
                .into(),
        );
    }
    if let Some(steps) = req.steps.filter(|&s| s != n) {
        warnings.push(format!(
            "num_inference_steps={steps} is replaced by len(sigmas) - 1 = {n} (upstream warns too)"
        ));
    }
    Ok(Built {
        timesteps: Timesteps::F32(timesteps),
        sigmas: Some(sigmas.into()),
        init_noise_sigma: 1.0,
        betas: FloatArray::default(),
        alphas_cumprod: FloatArray::default(),
        num_inference_steps: n,
    })
}

/// The step count, from `num_inference_steps` or the lengths of custom `sigmas` / `timesteps`.
fn step_count(req: &Request<'_>) -> Result<usize> {
    let sigmas = req.extras.sigmas.as_ref().map(Vec::len);
    let timesteps = req.extras.timesteps.as_ref().map(Vec::len);
    if let (Some(a), Some(b)) = (sigmas, timesteps) {
        if a != b {
            return Err(CoreError::invalid(
                "timesteps",
                "must have as many values as `sigmas`",
            ));
        }
    }
    match (req.steps, sigmas.or(timesteps)) {
        (Some(n), Some(len)) if n != len => Err(CoreError::invalid(
            "num_inference_steps",
            format!("{n} disagrees with the {len} custom values; pass None"),
        )),
        (_, Some(len)) => Ok(len),
        (steps, None) => required_steps(steps),
    }
}

/// The unshifted sigmas (a float32 array when the user gave sigmas or timesteps, float64
/// otherwise, per numpy promotion).
enum Base {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

/// `__init__`'s post-shift `sigma_max` / `sigma_min` (float32 torch arithmetic).
fn init_sigma_range(cfg: &Resolved) -> Result<(f64, f64)> {
    let n_train = cfg.count("num_train_timesteps")?;
    let n32 = n_train as f32;
    let shift = cfg.float("shift")?;
    let dynamic = cfg.has("use_dynamic_shifting") && cfg.flag("use_dynamic_shifting")?;
    let at = |t: f32| {
        let s = t / n32;
        if dynamic {
            s
        } else {
            (r32(shift) * s) / (1.0 + r32(shift - 1.0) * s)
        }
    };
    Ok((f64::from(at(n32)), f64::from(at(1.0))))
}

fn base_sigmas(req: &Request<'_>, n: usize, warnings: &mut Vec<String>) -> Result<Base> {
    let cfg = &*req.cfg;
    let n_train = cfg.count("num_train_timesteps")?;
    if let Some(given) = req.extras.sigmas.as_deref() {
        return Ok(Base::F32(given.iter().map(|&s| r32(s)).collect()));
    }
    if let Some(given) = req.extras.timesteps.as_deref() {
        if req.class == C::FlowMatchEuler {
            warnings.push(
                "`timesteps` without `sigmas`: the timesteps are used as given while the sigmas \
                 derived from them are shifted (diffusers warns the two may disagree)"
                    .into(),
            );
        }
        let n32 = n_train as f32;
        return Ok(Base::F32(given.iter().map(|&t| r32(t) / n32).collect()));
    }
    let (sigma_max, mut sigma_min) = init_sigma_range(cfg)?;
    let shifted_twice = !cfg.flag("use_dynamic_shifting")? && cfg.float("shift")? != 1.0;
    if shifted_twice {
        if req.extras.fix_quirks {
            sigma_min = 1.0 / n_train as f64;
            warnings.push(
                "flow matching: sigma_min shifted once (fix_quirks=True); diffusers 0.42.1 shifts it \
                 twice (issue #13243)"
                    .into(),
            );
        } else {
            warnings.push(
                "flow matching double shift (diffusers issue #13243): the schedule ends at \
                 shift(shift(1/N)) instead of shift(1/N); pass fix_quirks=True for the corrected \
                 schedule"
                    .into(),
            );
        }
    }
    let nt = n_train as f64;
    let ts = np_linspace(sigma_max * nt, sigma_min * nt, n);
    Ok(Base::F64(ts.into_iter().map(|t| t / nt).collect()))
}

/// The static or dynamic (mu) shift, then the optional terminal stretch; float64 result.
fn shift(cfg: &Resolved, mu: Option<f64>, base: Base) -> Result<Vec<f64>> {
    let dynamic = cfg.flag("use_dynamic_shifting")?;
    let linear = cfg.has("time_shift_type") && cfg.text("time_shift_type")? == "linear";
    let shift = cfg.float("shift")?;
    let terminal = if cfg.has("shift_terminal") {
        cfg.opt_float("shift_terminal")?.filter(|&t| t != 0.0)
    } else {
        None
    };
    match base {
        Base::F64(s) => {
            let s: Vec<f64> = match (dynamic, mu) {
                (true, Some(mu)) => {
                    let a = if linear { mu } else { mu.exp() };
                    s.iter().map(|&x| a / (a + (1.0 / x - 1.0))).collect()
                }
                _ => s
                    .iter()
                    .map(|&x| shift * x / (1.0 + (shift - 1.0) * x))
                    .collect(),
            };
            Ok(match terminal {
                Some(t) => stretch_to_terminal(&s, t),
                None => s,
            })
        }
        Base::F32(s) => {
            let s: Vec<f32> = match (dynamic, mu) {
                (true, Some(mu)) => {
                    let a = r32(if linear { mu } else { mu.exp() });
                    s.iter().map(|&x| a / (a + (1.0 / x - 1.0))).collect()
                }
                _ => {
                    let (k, k1) = (r32(shift), r32(shift - 1.0));
                    s.iter().map(|&x| k * x / (1.0 + k1 * x)).collect()
                }
            };
            let s = match terminal {
                Some(t) => stretch_f32(&s, t),
                None => s,
            };
            Ok(s.into_iter().map(f64::from).collect())
        }
    }
}

fn stretch_f32(sigmas: &[f32], terminal: f64) -> Vec<f32> {
    let last = sigmas.last().copied().unwrap_or(f32::NAN);
    let scale = (1.0 - last) / r32(1.0 - terminal);
    sigmas.iter().map(|&s| 1.0 - (1.0 - s) / scale).collect()
}

/// Karras / exponential / beta between the last and first shifted sigma.
fn convert(space: SigmaSpace, sigmas: Vec<f64>, n: usize) -> Vec<f64> {
    let first = sigmas.first().copied().unwrap_or(f64::NAN);
    let last = sigmas.last().copied().unwrap_or(f64::NAN);
    space.convert(last, first, n).unwrap_or(sigmas)
}
