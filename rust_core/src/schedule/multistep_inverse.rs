//! DPMSolverMultistepInverseScheduler: DPM-Solver run from clean to noisy (for inversion).
//! Timesteps ascend up to the noisiest unclipped timestep; the Karras / exponential / beta
//! conversions take the training sigmas in ascending order (so their sigmas ascend too) and
//! repeat the last sigma; repeated timesteps are dropped.

use super::betas::TerminalPatch;
use super::config::{ConfigValue, Resolved};
use super::conversions::SigmaSpace;
use super::multistep::{clipped_count, vp_flow_sigmas};
use super::primitives::{interp_index, np_linspace, r32, rne, trunc_i64};
use super::vp::{leading_warning, trailing, Spacing, Vp};
use super::{reject_extras, required_steps, Built, Request, Timesteps};
use crate::error::{CoreError, Result};

/// Builds the schedule of DPMSolverMultistepInverse.
// diffusers 0.42.1 schedulers/scheduling_dpmsolver_multistep_inverse.py: __init__,
// set_timesteps, _convert_to_karras, _convert_to_exponential, _convert_to_beta, _sigma_to_t.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    reject_extras(req.class, req.extras, &[])?;
    normalise(req.cfg, warnings)?;
    let cfg = &*req.cfg;
    let n = required_steps(req.steps)?;
    let vp = Vp::new(cfg, TerminalPatch::KeepZero)?;
    let n_train = cfg.count("num_train_timesteps")?;
    let clip = clipped_count(cfg, &vp)?;
    if clip >= n_train {
        return Err(CoreError::invalid(
            "lambda_min_clipped",
            "clips every training timestep",
        ));
    }
    let noisiest = n_train - 1 - clip;
    let spaced = spaced(cfg, noisiest, n, req.extras.fix_quirks, warnings)?;
    let (timesteps, sigmas) = sigma_path(cfg, &vp, n, noisiest, spaced)?;
    let timesteps = first_occurrences(&timesteps);
    if timesteps.len() < n {
        warnings.push(format!(
            "{} repeated timestep(s) dropped (as diffusers does); num_inference_steps is {}",
            n - timesteps.len(),
            timesteps.len()
        ));
    }
    let timesteps: Vec<i64> = timesteps.into_iter().map(trunc_i64).collect();
    let steps = timesteps.len();
    Ok(Built {
        timesteps: Timesteps::I64(timesteps),
        sigmas: Some(sigmas.into()),
        init_noise_sigma: 1.0,
        betas: vp.training.betas.clone().into(),
        alphas_cumprod: vp.training.alphas_cumprod.clone().into(),
        num_inference_steps: steps,
    })
}

/// `algorithm_type='deis'` becomes dpmsolver++, `solver_type` logrho / bh1 / bh2 becomes
/// midpoint (the `register_to_config` rewrites of `__init__`).
fn normalise(cfg: &mut Resolved, warnings: &mut Vec<String>) -> Result<()> {
    let rewrites = [
        ("algorithm_type", &["deis"][..], "dpmsolver++"),
        ("solver_type", &["logrho", "bh1", "bh2"][..], "midpoint"),
    ];
    for (key, from, to) in rewrites {
        let current = cfg.text(key)?.to_owned();
        if from.contains(&current.as_str()) {
            cfg.map.insert(key, ConfigValue::Str(to.to_owned()));
            warnings.push(format!(
                "{key}={current:?} is rewritten to {to:?} (as diffusers does)"
            ));
        }
    }
    Ok(())
}

/// The ascending spaced timesteps (integer values) up to `noisiest`.
fn spaced(
    cfg: &Resolved,
    noisiest: usize,
    n: usize,
    fix: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<f64>> {
    Ok(match Spacing::from_cfg(cfg)? {
        Spacing::Linspace => {
            let mut ts: Vec<f64> = np_linspace(0.0, noisiest as f64, n + 1)
                .into_iter()
                .map(rne)
                .collect();
            ts.pop();
            ts
        }
        Spacing::Leading => {
            let ratio = (noisiest + 1) / (n + 1);
            let offset = cfg.int("steps_offset")? as f64;
            let ts: Vec<f64> = (0..n).map(|i| (i * ratio) as f64 + offset).collect();
            let n_train = cfg.count("num_train_timesteps")?;
            if let Some(w) = ts.last().and_then(|&l| leading_warning(l, n_train)) {
                warnings.push(w);
            }
            ts
        }
        Spacing::Trailing => {
            let n_train = cfg.count("num_train_timesteps")?;
            let mut ts = trailing(noisiest + 1, n_train, n, fix, warnings);
            ts.reverse();
            ts
        }
    })
}

/// Timesteps (float values before the int64 cast) and float32 sigmas of each sigma path.
fn sigma_path(
    cfg: &Resolved,
    vp: &Vp,
    n: usize,
    noisiest: usize,
    spaced: Vec<f64>,
) -> Result<(Vec<f64>, Vec<f32>)> {
    let space = SigmaSpace::from_cfg(cfg)?;
    // The conversions read sigma_min = in_sigmas[-1] and sigma_max = in_sigmas[0] of the
    // ascending training sigmas: the largest and the smallest, so their schedules ascend.
    let (lo, hi) = (f64::from(vp.sigma_max()), f64::from(vp.sigma_min()));
    if let Some(converted) = space.convert(lo, hi, n) {
        let round = space == SigmaSpace::Karras;
        let timesteps = converted
            .iter()
            .map(|&s| vp.sigma_to_t(s))
            .map(|t| if round { rne(t) } else { t })
            .collect();
        return Ok((timesteps, with_last_repeated(&converted)));
    }
    if cfg.flag("use_flow_sigmas")? {
        let sigmas = vp_flow_sigmas(cfg, n, cfg.float("flow_shift")?)?;
        let n_train = cfg.count("num_train_timesteps")? as f64;
        let timesteps = sigmas.iter().map(|&s| s * n_train).collect();
        return Ok((timesteps, with_last_repeated(&sigmas)));
    }
    let mut sigmas: Vec<f32> = spaced
        .iter()
        .map(|&t| r32(interp_index(t, &vp.sigmas)))
        .collect();
    sigmas.push(vp.sigmas[noisiest]);
    Ok((spaced, sigmas))
}

/// `r32(sigmas) ++ [r32(sigmas[-1])]`.
fn with_last_repeated(sigmas: &[f64]) -> Vec<f32> {
    let mut out: Vec<f32> = sigmas.iter().map(|&s| r32(s)).collect();
    if let Some(&last) = out.last() {
        out.push(last);
    }
    out
}

/// `timesteps[sort(unique(timesteps, return_index=True)[1])]`: the first occurrence of each
/// value, in the original order (-0.0 equals 0.0, as in numpy).
fn first_occurrences(values: &[f64]) -> Vec<f64> {
    let mut seen = std::collections::HashSet::with_capacity(values.len());
    values
        .iter()
        .copied()
        .filter(|&v| {
            let key = if v == 0.0 { 0u64 } else { v.to_bits() };
            seen.insert(key)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_occurrences_keep_order() {
        assert_eq!(
            first_occurrences(&[1.0, 3.0, 1.0, 2.0, 3.0]),
            vec![1.0, 3.0, 2.0]
        );
    }
}
