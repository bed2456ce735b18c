//! Family B, the multistep solvers: DPMSolverMultistep, DPMSolverSinglestep, UniPCMultistep,
//! DEISMultistep and SASolver (n int64 timesteps taken from n+1 points, VP sigmas, optional
//! Karras / exponential / beta / Lu / flow sigmas, `init_noise_sigma` 1.0).

use super::betas::TerminalPatch;
use super::classes::SchedulerClass as C;
use super::config::{ConfigValue, Resolved};
use super::conversions::{lu_sigmas, sigma_to_t_f64, SigmaSpace};
use super::primitives::{interp_index, np_linspace, r32, rne, trunc_i64};
use super::vp::{leading_warning, trailing, Spacing, Vp};
use super::{reject_extras, required_steps, steps_from_custom, Built, Request, Timesteps};
use crate::error::{CoreError, Result};

/// Builds the schedule of a family-B class.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    let class = req.class;
    let allowed: &[&str] = match class {
        C::DpmMultistep | C::DpmSinglestep => &["timesteps", "mu"],
        C::UniPc => &["sigmas", "mu"],
        C::Deis => &["mu"],
        _ => &[],
    };
    reject_extras(class, req.extras, allowed)?;
    normalise_solver_config(class, req.cfg, warnings)?;
    let mu_shift = apply_mu(class, req.cfg, req.extras.mu, warnings)?;
    let vp = Vp::new(req.cfg, TerminalPatch::Fp16Tiny)?;
    let space = SigmaSpace::from_cfg(req.cfg)?;
    let cfg = &*req.cfg;
    let (n, spaced) = initial_timesteps(&req, &vp, warnings)?;
    let (timesteps, sigmas) = match class {
        C::UniPc => unipc_sigmas(&req, &vp, space, n, &spaced)?,
        _ => {
            let plan = Plan {
                class,
                cfg,
                vp: &vp,
                space,
                n,
                spaced: &spaced,
                flow_shift: mu_shift.unwrap_or(cfg.float("flow_shift")?),
            };
            vp_family_sigmas(&plan, warnings)?
        }
    };
    if class == C::DpmSinglestep {
        singlestep_order_fixups(req.cfg, n, warnings)?;
    }
    note_duplicates(&timesteps, warnings);
    let steps = if class == C::DpmSinglestep {
        n
    } else {
        timesteps.len()
    };
    Ok(Built {
        timesteps: Timesteps::I64(timesteps),
        sigmas: Some(sigmas.into()),
        init_noise_sigma: 1.0,
        betas: vp.training.betas.clone().into(),
        alphas_cumprod: vp.training.alphas_cumprod.clone().into(),
        num_inference_steps: steps,
    })
}

/// The `register_to_config` rewrites diffusers' `__init__` applies, and its refusals.
// diffusers 0.42.1 schedulers/scheduling_dpmsolver_multistep.py, scheduling_unipc_multistep.py,
// scheduling_deis_multistep.py: __init__.
fn normalise_solver_config(class: C, cfg: &mut Resolved, warnings: &mut Vec<String>) -> Result<()> {
    let rewrite = |cfg: &mut Resolved,
                   key: &str,
                   from: &[&str],
                   to: &str,
                   w: &mut Vec<String>|
     -> Result<()> {
        let current = cfg.text(key)?.to_owned();
        if from.contains(&current.as_str()) {
            cfg.map.insert(key, ConfigValue::Str(to.to_owned()));
            w.push(format!(
                "{}: {key}={current:?} is rewritten to {to:?} in the config (as diffusers does)",
                class.name()
            ));
        }
        Ok(())
    };
    match class {
        C::DpmMultistep | C::DpmSinglestep => {
            let algorithm = cfg.text("algorithm_type")?.to_owned();
            let plus = matches!(algorithm.as_str(), "dpmsolver++" | "sde-dpmsolver++");
            if !plus && cfg.text("final_sigmas_type")? == "zero" {
                return Err(CoreError::invalid(
                    "final_sigmas_type",
                    format!(
                        "'zero' is not supported for algorithm_type {algorithm:?}; use 'sigma_min'"
                    ),
                ));
            }
            rewrite(cfg, "algorithm_type", &["deis"], "dpmsolver++", warnings)?;
            rewrite(
                cfg,
                "solver_type",
                &["logrho", "bh1", "bh2"],
                "midpoint",
                warnings,
            )?;
        }
        C::UniPc => {
            rewrite(
                cfg,
                "solver_type",
                &["midpoint", "heun", "logrho"],
                "bh2",
                warnings,
            )?;
            if cfg.opt_float("shift_terminal")?.is_some() && !cfg.flag("use_flow_sigmas")? {
                return Err(CoreError::invalid(
                    "shift_terminal",
                    "is only supported with use_flow_sigmas=True",
                ));
            }
        }
        C::Deis => {
            rewrite(
                cfg,
                "algorithm_type",
                &["dpmsolver", "dpmsolver++"],
                "deis",
                warnings,
            )?;
            rewrite(
                cfg,
                "solver_type",
                &["midpoint", "heun", "bh1", "bh2"],
                "logrho",
                warnings,
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// `set_timesteps(mu=...)`: DPM / singlestep / DEIS set the attribute `config.flow_shift =
/// exp(mu)` (the config dict keeps its value; the attribute persists upstream); UniPC requires
/// mu with dynamic shifting. Returns the flow shift to use.
fn apply_mu(
    class: C,
    cfg: &Resolved,
    mu: Option<f64>,
    warnings: &mut Vec<String>,
) -> Result<Option<f64>> {
    let dynamic = cfg.flag("use_dynamic_shifting")?;
    if class == C::UniPc {
        if dynamic && mu.is_none() {
            return Err(CoreError::invalid(
                "mu",
                "is required when use_dynamic_shifting=True",
            ));
        }
        return Ok(None);
    }
    let Some(mu) = mu else {
        return Ok(None);
    };
    if !dynamic || cfg.text("time_shift_type")? != "exponential" {
        return Err(CoreError::invalid(
            "mu",
            "needs use_dynamic_shifting=True and time_shift_type='exponential'",
        ));
    }
    let shift = mu.exp();
    warnings.push(format!(
        "set_timesteps(mu={mu}) sets the attribute config.flow_shift = exp(mu) = {shift} (the config \
         dict keeps {}); diffusers keeps the attribute for later calls",
        cfg.float("flow_shift")?
    ));
    Ok(Some(shift))
}

/// The step count and the spaced (or custom) timesteps, before any sigma conversion.
fn initial_timesteps(
    req: &Request<'_>,
    vp: &Vp,
    warnings: &mut Vec<String>,
) -> Result<(usize, Vec<f64>)> {
    let cfg = &*req.cfg;
    if let Some(custom) = req.extras.timesteps.as_deref() {
        let n = steps_from_custom(req.steps, custom.len(), "timesteps")?;
        if let Some(bad) = custom.iter().find(|t| t.fract() != 0.0) {
            return Err(CoreError::invalid(
                "timesteps",
                format!("must be integers, got {bad}"),
            ));
        }
        check_custom_timesteps_allowed(req.class, cfg)?;
        return Ok((n, custom.to_vec()));
    }
    if let Some(custom) = req.extras.sigmas.as_deref() {
        if !cfg.flag("use_flow_sigmas")? {
            return Err(CoreError::invalid(
                "sigmas",
                "are only supported with use_flow_sigmas=True",
            ));
        }
        let n = steps_from_custom(req.steps, custom.len(), "sigmas")?;
        return Ok((
            n,
            spaced(req.class, cfg, vp, n, req.extras.fix_quirks, warnings)?,
        ));
    }
    let n = required_steps(req.steps)?;
    Ok((
        n,
        spaced(req.class, cfg, vp, n, req.extras.fix_quirks, warnings)?,
    ))
}

/// Custom timesteps exclude the converted sigma spaces (and, for DPM multistep, flow sigmas,
/// where diffusers fails for lack of a step count).
fn check_custom_timesteps_allowed(class: C, cfg: &Resolved) -> Result<()> {
    let space = SigmaSpace::from_cfg(cfg)?;
    if space != SigmaSpace::Plain {
        return Err(CoreError::invalid(
            "timesteps",
            format!("cannot be combined with {}", space.key()),
        ));
    }
    if cfg.has("use_lu_lambdas") && cfg.flag("use_lu_lambdas")? {
        return Err(CoreError::invalid(
            "timesteps",
            "cannot be combined with use_lu_lambdas",
        ));
    }
    if class == C::DpmMultistep && cfg.flag("use_flow_sigmas")? {
        return Err(CoreError::invalid(
            "timesteps",
            "cannot be combined with use_flow_sigmas in DPMSolverMultistepScheduler",
        ));
    }
    Ok(())
}

/// `N - searchsorted(flip(lambda_t), lambda_min_clipped)` (DPM multistep, singlestep, SASolver).
pub(crate) fn clipped_count(cfg: &Resolved, vp: &Vp) -> Result<usize> {
    if !cfg.has("lambda_min_clipped") {
        return Ok(0);
    }
    let threshold = cfg.float("lambda_min_clipped")?;
    if threshold == f64::NEG_INFINITY {
        return Ok(0);
    }
    let threshold = r32(threshold);
    let below = vp
        .training
        .alphas_cumprod
        .iter()
        .map(|&a| r32(f64::from(a.sqrt()).ln()) - r32(f64::from((1.0f32 - a).sqrt()).ln()))
        .filter(|&lambda| lambda < threshold)
        .count();
    Ok(below)
}

/// The spaced int64 timesteps (as float64 values), descending.
// diffusers 0.42.1 schedulers/scheduling_dpmsolver_multistep.py: set_timesteps (spacing).
fn spaced(
    class: C,
    cfg: &Resolved,
    vp: &Vp,
    n: usize,
    fix: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<f64>> {
    let n_train = cfg.count("num_train_timesteps")?;
    let clip = clipped_count(cfg, vp)?;
    let last = match class {
        C::DpmMultistep | C::SaSolver | C::DpmSinglestep => n_train.saturating_sub(clip),
        _ => n_train,
    };
    if class == C::DpmSinglestep {
        return Ok(linspace_drop_last(last, n));
    }
    let timesteps = match Spacing::from_cfg(cfg)? {
        Spacing::Linspace => linspace_drop_last(last, n),
        Spacing::Leading => {
            let ratio = last / (n + 1);
            let offset = cfg.int("steps_offset")? as f64;
            let ts: Vec<f64> = (1..=n).rev().map(|i| (i * ratio) as f64 + offset).collect();
            if let Some(w) = ts.first().and_then(|&f| leading_warning(f, n_train)) {
                warnings.push(w);
            }
            ts
        }
        Spacing::Trailing => trailing(last, n_train, n, fix, warnings),
    };
    Ok(timesteps)
}

/// `rne(np.linspace(0, last - 1, n + 1))[::-1][:-1]`.
fn linspace_drop_last(last: usize, n: usize) -> Vec<f64> {
    let mut ts: Vec<f64> = np_linspace(0.0, last as f64 - 1.0, n + 1)
        .into_iter()
        .map(rne)
        .rev()
        .collect();
    ts.pop();
    ts
}

/// The training sigma range the conversions of this family use (UniPC: config overrides).
fn training_range(cfg: &Resolved, vp: &Vp) -> Result<(f64, f64)> {
    let lo = cfg
        .opt_float("sigma_min")?
        .unwrap_or(f64::from(vp.sigma_min()));
    let hi = cfg
        .opt_float("sigma_max")?
        .unwrap_or(f64::from(vp.sigma_max()));
    Ok((lo, hi))
}

fn to_i64(values: &[f64]) -> Vec<i64> {
    values.iter().map(|&v| trunc_i64(v)).collect()
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| r32(v)).collect()
}

/// Flow sigmas of DPM / singlestep / DEIS / SASolver: `1 - linspace(1, 1/N, n+1)`, shifted,
/// reversed, last (0) dropped.
// diffusers 0.42.1 schedulers/scheduling_dpmsolver_multistep.py: set_timesteps (use_flow_sigmas).
pub(crate) fn vp_flow_sigmas(cfg: &Resolved, n: usize, shift: f64) -> Result<Vec<f64>> {
    let n_train = cfg.count("num_train_timesteps")? as f64;
    let mut sigmas: Vec<f64> = np_linspace(1.0, 1.0 / n_train, n + 1)
        .into_iter()
        .map(|a| 1.0 - a)
        .map(|s| shift * s / (1.0 + (shift - 1.0) * s))
        .rev()
        .collect();
    sigmas.pop();
    Ok(sigmas)
}

/// Sigmas and int timesteps of DPM multistep / singlestep / DEIS / SASolver.
/// What the DPM / singlestep / DEIS / SASolver sigma paths read.
struct Plan<'a> {
    class: C,
    cfg: &'a Resolved,
    vp: &'a Vp,
    space: SigmaSpace,
    n: usize,
    spaced: &'a [f64],
    /// `config.flow_shift`, or `exp(mu)` after `set_timesteps(mu=...)`.
    flow_shift: f64,
}

fn vp_family_sigmas(plan: &Plan<'_>, warnings: &mut Vec<String>) -> Result<(Vec<i64>, Vec<f32>)> {
    let Plan {
        class,
        cfg,
        vp,
        space,
        n,
        spaced,
        flow_shift,
    } = *plan;
    let lu = cfg.has("use_lu_lambdas") && cfg.flag("use_lu_lambdas")?;
    let flow = cfg.flag("use_flow_sigmas")?;
    let (lo, hi) = training_range(cfg, vp)?;
    let squaredcos = cfg.text("beta_schedule")? == "squaredcos_cap_v2" && class == C::DpmMultistep;
    let round = |t: f64| if squaredcos { t } else { rne(t) };
    let (timesteps, sigmas): (Vec<f64>, Vec<f64>) = if space == SigmaSpace::Karras {
        let s = super::conversions::karras(lo, hi, n);
        (s.iter().map(|&x| round(vp.sigma_to_t(x))).collect(), s)
    } else if lu {
        let (lmax, lmin) = (
            f64::from(vp.log_sigmas[vp.log_sigmas.len() - 1]),
            f64::from(vp.log_sigmas[0]),
        );
        let s = lu_sigmas(lmax, lmin, n);
        (s.iter().map(|&x| round(vp.sigma_to_t(x))).collect(), s)
    } else if let Some(s) = space.convert(lo, hi, n) {
        (s.iter().map(|&x| vp.sigma_to_t(x)).collect(), s)
    } else if flow {
        let s = vp_flow_sigmas(cfg, n, flow_shift)?;
        let n_train = cfg.count("num_train_timesteps")? as f64;
        (s.iter().map(|&x| x * n_train).collect(), s)
    } else {
        let s = spaced
            .iter()
            .map(|&t| interp_index(t, &vp.sigmas))
            .collect();
        (spaced.to_vec(), s)
    };
    let mut out = to_f32(&sigmas);
    out.push(final_sigma(class, cfg, vp, &out, space, flow, warnings)?);
    Ok((to_i64(&timesteps), out))
}

/// The appended final sigma of DPM / singlestep (`final_sigmas_type`) and DEIS / SASolver
/// (no option: `sigma_train[0]` on the default path, else the last sigma repeated).
fn final_sigma(
    class: C,
    cfg: &Resolved,
    vp: &Vp,
    sigmas: &[f32],
    space: SigmaSpace,
    flow: bool,
    warnings: &mut Vec<String>,
) -> Result<f32> {
    let last = sigmas.last().copied().unwrap_or(f32::NAN);
    match class {
        C::Deis | C::SaSolver => {
            warnings.push(format!(
                "{} has no final_sigmas_type: its last sigma is {} , never 0 (by design upstream)",
                class.name(),
                if space == SigmaSpace::Plain && !flow {
                    "sigma_train[0]"
                } else {
                    "the previous sigma repeated"
                }
            ));
            Ok(if space == SigmaSpace::Plain && !flow {
                vp.sigma_min()
            } else {
                last
            })
        }
        _ => match cfg.text("final_sigmas_type")? {
            "sigma_min" => {
                if flow && space == SigmaSpace::Plain {
                    warnings.push(
                        "final_sigmas_type='sigma_min' with use_flow_sigmas appends the VP training \
                         sigma_min (diffusers 0.42.1 quirk), not a flow sigma"
                            .to_owned(),
                    );
                }
                Ok(vp.sigma_min())
            }
            _ => Ok(0.0),
        },
    }
}

/// UniPC's sigma paths (its Karras / exponential / beta / flow branches differ from DPM's).
// diffusers 0.42.1 schedulers/scheduling_unipc_multistep.py: set_timesteps.
fn unipc_sigmas(
    req: &Request<'_>,
    vp: &Vp,
    space: SigmaSpace,
    n: usize,
    spaced: &[f64],
) -> Result<(Vec<i64>, Vec<f32>)> {
    let cfg = &*req.cfg;
    let flow = cfg.flag("use_flow_sigmas")?;
    let n_train = cfg.count("num_train_timesteps")? as f64;
    let user = req.extras.sigmas.as_deref();
    let sigma_min_final = cfg.text("final_sigmas_type")? == "sigma_min";
    let (timesteps, sigmas): (Vec<f64>, Vec<f64>) = if space != SigmaSpace::Plain {
        let (source, log_sigmas): (Vec<f64>, Vec<f64>) = match user {
            Some(u) => (u.to_vec(), u.iter().map(|x| x.ln()).collect()),
            None => (
                vp.sigmas.iter().map(|&x| f64::from(x)).collect(),
                vp.log_sigmas.iter().map(|&x| f64::from(x)).collect(),
            ),
        };
        let first = source.first().copied().unwrap_or(f64::NAN);
        let last = source.last().copied().unwrap_or(f64::NAN);
        let lo = cfg.opt_float("sigma_min")?.unwrap_or(first);
        let hi = cfg.opt_float("sigma_max")?.unwrap_or(last);
        let mut s = space.convert(lo, hi, n).unwrap_or_default();
        let t: Vec<f64> = if space == SigmaSpace::Karras && flow {
            s = s.iter().map(|&x| x / (x + 1.0)).collect();
            s.iter().map(|&x| x * n_train).collect()
        } else if space == SigmaSpace::Karras {
            s.iter()
                .map(|&x| rne(sigma_to_t_f64(x, &log_sigmas)))
                .collect()
        } else {
            s.iter().map(|&x| sigma_to_t_f64(x, &log_sigmas)).collect()
        };
        (t, s)
    } else if flow {
        let s = unipc_flow_sigmas(cfg, req.extras.mu, user, n)?;
        (s.iter().map(|&x| x * n_train).collect(), s)
    } else {
        let s = spaced
            .iter()
            .map(|&t| interp_index(t, &vp.sigmas))
            .collect();
        (spaced.to_vec(), s)
    };
    let mut out = to_f32(&sigmas);
    let last = match (sigma_min_final, space != SigmaSpace::Plain || flow) {
        (false, _) => 0.0,
        (true, true) => out.last().copied().unwrap_or(f32::NAN),
        (true, false) => vp.sigma_min(),
    };
    out.push(last);
    Ok((to_i64(&timesteps), out))
}

/// UniPC flow sigmas: shift (or time-shift with mu), optional terminal stretch, and the
/// `1 - 1e-6` nudge of a first sigma of 1.
fn unipc_flow_sigmas(
    cfg: &Resolved,
    mu: Option<f64>,
    user: Option<&[f64]>,
    n: usize,
) -> Result<Vec<f64>> {
    let n_train = cfg.count("num_train_timesteps")? as f64;
    let mut s: Vec<f64> = match user {
        Some(u) => u.to_vec(),
        None => {
            let mut v = np_linspace(1.0, 1.0 / n_train, n + 1);
            v.pop();
            v
        }
    };
    if cfg.flag("use_dynamic_shifting")? {
        let mu = mu.ok_or_else(|| {
            CoreError::invalid("mu", "is required when use_dynamic_shifting=True")
        })?;
        let linear = cfg.text("time_shift_type")? == "linear";
        let a = if linear { mu } else { mu.exp() };
        s = s.iter().map(|&x| a / (a + (1.0 / x - 1.0))).collect();
    } else {
        let shift = cfg.float("flow_shift")?;
        s = s
            .iter()
            .map(|&x| shift * x / (1.0 + (shift - 1.0) * x))
            .collect();
    }
    if let Some(terminal) = cfg.opt_float("shift_terminal")?.filter(|&t| t != 0.0) {
        s = stretch_to_terminal(&s, terminal);
    }
    if let Some(first) = s.first_mut() {
        if (*first - 1.0).abs() < 1e-6 {
            *first -= 1e-6;
        }
    }
    Ok(s)
}

/// `1 - (1 - s) / ((1 - s[-1]) / (1 - terminal))` in float64.
pub(crate) fn stretch_to_terminal(sigmas: &[f64], terminal: f64) -> Vec<f64> {
    let last = sigmas.last().copied().unwrap_or(f64::NAN);
    let scale = (1.0 - last) / (1.0 - terminal);
    sigmas.iter().map(|&s| 1.0 - (1.0 - s) / scale).collect()
}

/// DPMSolverSinglestep's `set_timesteps` rewrites `lower_order_final` to True for an uneven
/// step count or a zero final sigma.
// diffusers 0.42.1 schedulers/scheduling_dpmsolver_singlestep.py: set_timesteps.
fn singlestep_order_fixups(cfg: &mut Resolved, n: usize, warnings: &mut Vec<String>) -> Result<()> {
    if cfg.flag("lower_order_final")? {
        return Ok(());
    }
    let order = cfg.count("solver_order")?.max(1);
    let uneven = (n / order) * order != n;
    if uneven || cfg.text("final_sigmas_type")? == "zero" {
        cfg.map.insert("lower_order_final", ConfigValue::Bool(true));
        warnings.push(format!(
            "DPMSolverSinglestepScheduler set lower_order_final=True in its config ({})",
            if uneven {
                "uneven number of steps for solver_order"
            } else {
                "final_sigmas_type='zero'"
            }
        ));
    }
    Ok(())
}

/// Repeated timesteps make diffusers' `index_for_timestep` pick the second match.
fn note_duplicates(timesteps: &[i64], warnings: &mut Vec<String>) {
    let duplicates = timesteps.windows(2).filter(|w| w[0] == w[1]).count();
    if duplicates > 0 {
        warnings.push(format!(
            "{duplicates} repeated timestep(s): diffusers' index_for_timestep resolves repeats to \
             the second match (see diffusers issues #5687, #12771)"
        ));
    }
}
