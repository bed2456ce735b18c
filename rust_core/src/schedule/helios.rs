//! HeliosScheduler and HeliosDMDScheduler (the Helios video model's pyramid sampler): with one
//! stage, shifted flow sigmas in float32; with several, each stage (`stage_index`) runs a linear
//! grid over its share of the training timesteps, in float64. The DMD variant (and Helios with
//! `scheduler_type='dmd'`) asks for one step more (two more with `is_amplify_first_chunk`) and
//! drops the last timestep and the second-to-last sigma.

use super::classes::SchedulerClass as C;
use super::config::{ConfigValue, Resolved};
use super::primitives::{np_linspace, r32};
use super::{reject_extras, required_steps, Built, FloatArray, Request, Timesteps};
use crate::error::{CoreError, Result};

/// What `set_timesteps` computes before the DMD trim and the dynamic shift.
enum Grid {
    /// One stage: float32 timesteps and sigmas.
    Single(Vec<f32>, Vec<f32>),
    /// A pyramid stage: float64 timesteps and sigmas, and that stage's training timesteps.
    Staged(Vec<f64>, Vec<f64>, Vec<f64>),
}

/// Builds the schedule of Helios or HeliosDMD.
// diffusers 0.42.1 schedulers/scheduling_helios.py and scheduling_helios_dmd.py: __init__,
// init_sigmas, init_sigmas_for_each_stage, set_timesteps, time_shift.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    let allowed = ["stage_index", "sigmas", "mu", "is_amplify_first_chunk"];
    reject_extras(req.class, req.extras, &allowed)?;
    if req.class == C::Helios {
        bh_solver(req.cfg, warnings)?;
    }
    let cfg = &*req.cfg;
    let dmd = req.class == C::HeliosDmd || cfg.text("scheduler_type")? == "dmd";
    let requested = required_steps(req.steps)?;
    let n = match (dmd, req.extras.is_amplify_first_chunk.unwrap_or(false)) {
        (true, true) => 2 * requested + 1,
        (true, false) => requested + 1,
        (false, _) => requested,
    };
    // `__init__` lays out every stage whatever `stages` is; refuse what it cannot lay out.
    stage_range(cfg, cfg.count("stages")?)?;
    let dynamic = cfg.flag("use_dynamic_shifting")?;
    if dynamic && cfg.float("shift")? != 1.0 {
        return Err(CoreError::invalid(
            "shift",
            "must be 1.0 with use_dynamic_shifting=True (upstream asserts it)",
        ));
    }
    if !dynamic && req.extras.mu.is_some() {
        warnings.push("`mu` is ignored without use_dynamic_shifting=True (as in diffusers)".into());
    }
    let mut grid = if cfg.count("stages")? == 1 {
        single_stage(&req, n)?
    } else {
        if req.extras.sigmas.is_some() {
            warnings.push("`sigmas` are ignored with several stages (as in diffusers)".into());
        }
        pyramid_stage(&req, n)?
    };
    if dmd {
        trim(&mut grid);
    }
    if dynamic {
        let mu = req.extras.mu.ok_or_else(|| {
            CoreError::invalid("mu", "is required when use_dynamic_shifting=True")
        })?;
        dynamic_shift(cfg, &mut grid, mu)?;
    }
    let (timesteps, sigmas) = match grid {
        Grid::Single(t, s) => (Timesteps::F32(t), FloatArray::F32(s)),
        Grid::Staged(t, s, _) => (Timesteps::F64(t), FloatArray::F64(s)),
    };
    Ok(Built {
        timesteps,
        sigmas: Some(sigmas),
        init_noise_sigma: 1.0,
        betas: FloatArray::default(),
        alphas_cumprod: FloatArray::default(),
        num_inference_steps: n,
    })
}

/// HeliosScheduler's `__init__` keeps only the UniPC `bh1` / `bh2` solvers.
fn bh_solver(cfg: &mut Resolved, warnings: &mut Vec<String>) -> Result<()> {
    let solver = cfg.text("solver_type")?.to_owned();
    if matches!(solver.as_str(), "midpoint" | "heun" | "logrho") {
        cfg.map
            .insert("solver_type", ConfigValue::Str("bh2".into()));
        warnings.push(format!(
            "solver_type={solver:?} is rewritten to 'bh2' (as diffusers does)"
        ));
    }
    Ok(())
}

/// `linspace(1, 1/N, n + 1)[:-1]` as float32, shifted by `time_shift(shift)` unless shift is 1
/// (or custom float32 sigmas as given); timesteps `sigma * N`; a terminal 0 appended.
fn single_stage(req: &Request<'_>, n: usize) -> Result<Grid> {
    let cfg = &*req.cfg;
    let n_train = cfg.count("num_train_timesteps")?;
    let sigmas: Vec<f32> = match req.extras.sigmas.as_deref() {
        Some(custom) => custom.iter().map(|&s| r32(s)).collect(),
        None => {
            let mut s: Vec<f32> = np_linspace(1.0, 1.0 / n_train as f64, n + 1)
                .into_iter()
                .map(r32)
                .collect();
            s.pop();
            let shift = cfg.float("shift")?;
            if shift != 1.0 {
                let linear = cfg.text("time_shift_type")? == "linear";
                s = s.into_iter().map(|t| shift_f32(linear, shift, t)).collect();
            }
            s
        }
    };
    let n32 = n_train as f32;
    let timesteps = sigmas.iter().map(|&s| s * n32).collect();
    let mut all = sigmas;
    all.push(0.0);
    Ok(Grid::Single(timesteps, all))
}

/// `time_shift(mu, 1, t)` on a float32 numpy array: `e / (e + (1/t - 1))` with `e = exp(mu)`
/// (exponential) or `mu / (mu + (1/t - 1))` (linear), the Python floats rounded to f32.
fn shift_f32(linear: bool, mu: f64, t: f32) -> f32 {
    let a = r32(if linear { mu } else { mu.exp() });
    a / (a + (1.0 / t - 1.0))
}

/// [`shift_f32`] on a float32 torch tensor, where `python_float / tensor` is computed as
/// `tensor.reciprocal() * python_float` (two roundings; torch `Tensor.__rtruediv__`).
fn shift_torch_f32(linear: bool, mu: f64, t: f32) -> f32 {
    let a = r32(if linear { mu } else { mu.exp() });
    (1.0 / (a + (1.0 / t - 1.0))) * a
}

/// [`shift_torch_f32`] on a float64 tensor.
fn shift_torch_f64(linear: bool, mu: f64, t: f64) -> f64 {
    let a = if linear { mu } else { mu.exp() };
    (1.0 / (a + (1.0 / t - 1.0))) * a
}

/// Stage `stage_index`: `n` timesteps spaced linearly over the stage's training timesteps and
/// `n` sigmas over `linspace(0.999, 0, N + 1)[:-1]`, a terminal 0 appended (float64).
fn pyramid_stage(req: &Request<'_>, n: usize) -> Result<Grid> {
    let cfg = &*req.cfg;
    let stages = cfg.count("stages")?;
    let index = req.extras.stage_index.ok_or_else(|| {
        CoreError::invalid(
            "stage_index",
            format!("is required with stages={stages} (the pyramid stage to schedule)"),
        )
    })?;
    let index = usize::try_from(index)
        .ok()
        .filter(|&i| i < stages)
        .ok_or_else(|| {
            CoreError::invalid(
                "stage_index",
                format!("must be in [0, {stages}), got {index}"),
            )
        })?;
    let stage = stage_timesteps(cfg, index)?;
    let n_train = cfg.count("num_train_timesteps")?;
    let (first, last) = (stage[0], stage[stage.len() - 1]);
    let timesteps = np_linspace(first, last, n);
    let ratios = np_linspace(0.999, 0.0, n_train + 1);
    let mut sigmas = np_linspace(ratios[0], ratios[n_train - 1], n);
    sigmas.push(0.0);
    Ok(Grid::Staged(timesteps, sigmas, stage))
}

/// `timesteps_per_stage[index]` of `init_sigmas_for_each_stage`: N float64 values.
fn stage_timesteps(cfg: &Resolved, index: usize) -> Result<Vec<f64>> {
    let n_train = cfg.count("num_train_timesteps")?;
    let stages = cfg.count("stages")?;
    let range = stage_range(cfg, stages)?;
    let sigmas = init_sigmas(n_train, cfg.float("shift")?);
    let nf = n_train as f64;
    let gamma = cfg.float("gamma")?;
    let mut distances = Vec::with_capacity(stages);
    for i in 0..stages {
        let start = (range[i] * nf) as usize;
        let end = ((range[i + 1] * nf) as usize).min(n_train);
        let mut start_sigma = *sigmas.get(start).ok_or_else(|| {
            CoreError::invalid(
                "stage_range",
                format!("stage {i} starts at {}, past the last timestep", range[i]),
            )
        })?;
        let end_sigma = if end < n_train { sigmas[end] } else { 0.0 };
        if i != 0 {
            let ori = 1.0 - start_sigma;
            let corrected = 1.0 / ((1.0 + 1.0 / gamma).sqrt() * (1.0 - ori) + ori) * ori;
            start_sigma = 1.0 - corrected;
        }
        distances.push(start_sigma - end_sigma);
    }
    let total: f64 = distances.iter().sum();
    if !(total.is_finite() && total != 0.0) {
        return Err(CoreError::invalid(
            "stage_range",
            "gives stages of no total length (upstream divides by it)",
        ));
    }
    let before: f64 = distances[..index].iter().sum();
    let start_ratio = if index == 0 { 0.0 } else { before / total };
    let end_ratio = if index == stages - 1 {
        0.999_999_999_999_999_9
    } else {
        (before + distances[index]) / total
    };
    let init_timesteps: Vec<f64> = sigmas.iter().map(|&s| s * nf).collect();
    let top = init_timesteps
        .get((start_ratio * nf) as usize)
        .copied()
        .filter(|t| t.is_finite())
        .ok_or_else(|| CoreError::invalid("stage_range", "gives a stage outside the schedule"))?;
    // Python's min(timestep, 999) keeps the timestep unless 999 is smaller.
    let top = if 999.0 < top { 999.0 } else { top };
    let bottom = init_timesteps[((end_ratio * nf) as usize).min(n_train - 1)];
    let mut grid = np_linspace(top, bottom, n_train + 1);
    grid.pop();
    Ok(grid)
}

/// `stage_range` validated: at least `stages + 1` values in [0, 1].
fn stage_range(cfg: &Resolved, stages: usize) -> Result<Vec<f64>> {
    let range = cfg.opt_float_list("stage_range")?.unwrap_or_default();
    if range.len() <= stages {
        return Err(CoreError::invalid(
            "stage_range",
            format!(
                "needs stages + 1 = {} values, got {}",
                stages + 1,
                range.len()
            ),
        ));
    }
    if let Some(bad) = range.iter().find(|r| !(0.0..=1.0).contains(*r)) {
        return Err(CoreError::invalid(
            "stage_range",
            format!("values must be in [0, 1], got {bad}"),
        ));
    }
    Ok(range)
}

/// `init_sigmas`: `flip(shift(1 - linspace(1, 1/N, N + 1)))[:-1]`, float64.
fn init_sigmas(n_train: usize, shift: f64) -> Vec<f64> {
    let mut sigmas: Vec<f64> = np_linspace(1.0, 1.0 / n_train as f64, n_train + 1)
        .into_iter()
        .map(|a| 1.0 - a)
        .map(|s| shift * s / (1.0 + (shift - 1.0) * s))
        .rev()
        .collect();
    sigmas.pop();
    sigmas
}

/// The DMD trim: drop the last timestep and the second-to-last sigma.
fn trim(grid: &mut Grid) {
    fn drop_second_last<T>(v: &mut Vec<T>) {
        if v.len() >= 2 {
            v.remove(v.len() - 2);
        }
    }
    match grid {
        Grid::Single(t, s) => {
            t.pop();
            drop_second_last(s);
        }
        Grid::Staged(t, s, _) => {
            t.pop();
            drop_second_last(s);
        }
    }
}

/// `use_dynamic_shifting`: sigmas through `time_shift(mu)`, timesteps re-derived from them
/// (`sigma * N`, or spread over the stage's training timesteps).
fn dynamic_shift(cfg: &Resolved, grid: &mut Grid, mu: f64) -> Result<()> {
    let linear = cfg.text("time_shift_type")? == "linear";
    let n_train = cfg.count("num_train_timesteps")?;
    match grid {
        Grid::Single(t, s) => {
            for x in s.iter_mut() {
                *x = shift_torch_f32(linear, mu, *x);
            }
            let n32 = n_train as f32;
            *t = s[..s.len().saturating_sub(1)]
                .iter()
                .map(|&x| x * n32)
                .collect();
        }
        Grid::Staged(t, s, stage) => {
            for x in s.iter_mut() {
                *x = shift_torch_f64(linear, mu, *x);
            }
            let lo = stage.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = stage.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            *t = s[..s.len().saturating_sub(1)]
                .iter()
                .map(|&x| lo + x * (hi - lo))
                .collect();
        }
    }
    Ok(())
}
