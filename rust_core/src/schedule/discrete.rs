//! Family C, the discrete-timestep schedulers: DDPM, DDIM and PNDM, their `Parallel` twins
//! (identical `__init__` and `set_timesteps`) and DDIMInverse (int64 indices into
//! alphas_cumprod, no sigmas, `init_noise_sigma` 1.0).

use super::betas::TerminalPatch;
use super::classes::SchedulerClass as C;
use super::config::Resolved;
use super::primitives::{np_linspace, rne};
use super::vp::{leading_warning, trailing, Spacing, Vp};
use super::{reject_extras, required_steps, steps_from_custom, Built, Request, Timesteps};
use crate::error::{CoreError, Result};

/// Builds the schedule of DDPM, DDIM, PNDM, DDPMParallel, DDIMParallel or DDIMInverse.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    let class = req.class;
    let ddpm = matches!(class, C::Ddpm | C::DdpmParallel);
    let allowed: &[&str] = if ddpm { &["timesteps"] } else { &[] };
    reject_extras(class, req.extras, allowed)?;
    let cfg = &*req.cfg;
    let vp = Vp::new(cfg, TerminalPatch::KeepZero)?;
    let n_train = cfg.count("num_train_timesteps")?;
    let (n, timesteps) = match req.extras.timesteps.as_deref() {
        Some(custom) => {
            let n = steps_from_custom(req.steps, custom.len(), "timesteps")?;
            (n, ddpm_custom(custom, n_train)?)
        }
        None => {
            let n = required_steps(req.steps)?;
            if class != C::Pndm && n > n_train {
                return Err(CoreError::invalid(
                    "num_inference_steps",
                    format!("{n} cannot be larger than num_train_timesteps ({n_train})"),
                ));
            }
            let base = spaced(cfg, n, req.extras.fix_quirks, warnings)?;
            let ts = match class {
                C::Pndm => pndm(cfg, &base, n)?,
                C::DdimInverse => inverse(cfg, base)?,
                _ => base.into_iter().rev().collect(),
            };
            (n, ts)
        }
    };
    if matches!(class, C::Ddim | C::DdimParallel) && timesteps.iter().any(|&t| t < 0) {
        warnings.push(
            "a timestep of -1 indexes alphas_cumprod[-1] (the last entry) in DDIM's step()"
                .to_owned(),
        );
    }
    Ok(Built {
        timesteps: Timesteps::I64(timesteps),
        sigmas: None,
        init_noise_sigma: 1.0,
        betas: vp.training.betas.clone().into(),
        alphas_cumprod: vp.training.alphas_cumprod.clone().into(),
        num_inference_steps: n,
    })
}

/// DDPM custom timesteps: integers, strictly descending, the first below num_train_timesteps.
// diffusers 0.42.1 schedulers/scheduling_ddpm.py: set_timesteps (custom timesteps).
fn ddpm_custom(custom: &[f64], n_train: usize) -> Result<Vec<i64>> {
    if let Some(bad) = custom.iter().find(|t| t.fract() != 0.0) {
        return Err(CoreError::invalid(
            "timesteps",
            format!("must be integers, got {bad}"),
        ));
    }
    if custom.windows(2).any(|w| w[1] >= w[0]) {
        return Err(CoreError::invalid(
            "timesteps",
            "must be in strictly descending order",
        ));
    }
    if custom.first().is_some_and(|&t| t >= n_train as f64) {
        return Err(CoreError::invalid(
            "timesteps",
            format!("must start below num_train_timesteps ({n_train})"),
        ));
    }
    Ok(custom.iter().map(|&t| t as i64).collect())
}

/// DDIMInverse keeps the spaced timesteps ascending (it runs from clean to noisy), with its own
/// leading rule: `arange(n) * (N // n) + steps_offset`, without DDIM's reversal.
// diffusers 0.42.1 schedulers/scheduling_ddim_inverse.py: set_timesteps.
fn inverse(cfg: &Resolved, ascending: Vec<i64>) -> Result<Vec<i64>> {
    match Spacing::from_cfg(cfg)? {
        Spacing::Linspace => Err(CoreError::invalid(
            "timestep_spacing",
            "DDIMInverseScheduler supports 'leading' and 'trailing' only",
        )),
        _ => Ok(ascending),
    }
}

/// The spaced timesteps in ascending order (PNDM's base list; DDIM/DDPM reverse it).
// diffusers 0.42.1 schedulers/scheduling_ddim.py and scheduling_pndm.py: set_timesteps.
pub(crate) fn spaced(
    cfg: &Resolved,
    n: usize,
    fix: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<i64>> {
    let n_train = cfg.count("num_train_timesteps")?;
    let ascending: Vec<i64> = match Spacing::from_cfg(cfg)? {
        Spacing::Linspace => np_linspace(0.0, (n_train - 1) as f64, n)
            .into_iter()
            .map(|t| rne(t) as i64)
            .collect(),
        Spacing::Leading => {
            let ratio = n_train / n;
            let offset = cfg.int("steps_offset")?;
            let ts: Vec<i64> = (0..n).map(|i| (i * ratio) as i64 + offset).collect();
            if let Some(w) = ts.last().and_then(|&l| leading_warning(l as f64, n_train)) {
                warnings.push(w);
            }
            ts
        }
        Spacing::Trailing => {
            let ts = trailing(n_train, n_train, n, fix, warnings);
            ts.into_iter().rev().map(|t| t as i64).collect()
        }
    };
    Ok(ascending)
}

/// PNDM: PLMS with a duplicated second timestep (`skip_prk_steps`), or PRK warm-up steps then
/// PLMS.
// diffusers 0.42.1 schedulers/scheduling_pndm.py: set_timesteps.
fn pndm(cfg: &Resolved, base: &[i64], n: usize) -> Result<Vec<i64>> {
    let len = base.len();
    if cfg.flag("skip_prk_steps")? {
        let mut plms: Vec<i64> = base[..len.saturating_sub(1)].to_vec();
        if len >= 2 {
            plms.push(base[len - 2]);
        }
        plms.extend(base.last());
        plms.reverse();
        return Ok(plms);
    }
    if len < 4 {
        return Err(CoreError::invalid(
            "num_inference_steps",
            format!("PNDMScheduler with skip_prk_steps=False needs at least 4 steps, got {n}"),
        ));
    }
    let half = (cfg.count("num_train_timesteps")? / n / 2) as i64;
    let pattern: Vec<i64> = base[len - 4..]
        .iter()
        .flat_map(|&t| [t, t])
        .zip([0, half].into_iter().cycle())
        .map(|(t, d)| t + d)
        .collect();
    let prk: Vec<i64> = pattern[..pattern.len() - 1]
        .iter()
        .flat_map(|&t| [t, t])
        .collect();
    let mut prk: Vec<i64> = prk[1..prk.len() - 1].to_vec();
    prk.reverse();
    prk.extend(base[..len - 3].iter().rev());
    Ok(prk)
}
