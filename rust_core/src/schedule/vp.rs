//! Shared pieces of the variance-preserving schedulers: training arrays from the resolved
//! config, training sigmas, and the `timestep_spacing` rules with their quirks.

use std::sync::{Arc, Mutex, PoisonError};

use super::betas::{BetaSchedule, BetaSource, TerminalPatch, TrainingArrays};
use super::config::Resolved;
use super::conversions::{sigma_to_t_f32_sigma_sorted, sigma_to_t_f32_sorted, sigma_to_t_sorted};
use super::primitives::{ln_f32, np_arange, rne, training_sigmas};
use crate::error::{CoreError, Result};

/// Training arrays plus the float32 training sigmas and their float32 logs.
#[derive(Debug)]
pub(crate) struct Vp {
    pub(crate) training: TrainingArrays,
    /// `((1 - acp) / acp) ** 0.5`, ascending in t (float32 torch ops).
    pub(crate) sigmas: Vec<f32>,
    /// `np.log(sigmas)` (float32).
    pub(crate) log_sigmas: Vec<f32>,
    /// `log_sigmas` widened to float64 (what `_sigma_to_t` compares in float64).
    log_sigmas_f64: Vec<f64>,
}

/// Recently built training arrays, keyed by what determines them (a pure-function memo: the
/// same configuration always gives the same arrays).
type VpCache = Mutex<Vec<(BetaSource, Option<TerminalPatch>, Arc<Vp>)>>;
static VP_CACHE: VpCache = Mutex::new(Vec::new());
const VP_CACHE_CAPACITY: usize = 16;

impl Vp {
    /// Builds (or reuses) the arrays; `patch` is what the class does after a zero-SNR rescale.
    pub(crate) fn new(cfg: &Resolved, patch: TerminalPatch) -> Result<Arc<Self>> {
        let source = beta_source(cfg)?;
        let zero_snr = cfg.flag("rescale_betas_zero_snr")?.then_some(patch);
        let mut cache = VP_CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = cache
            .iter()
            .position(|(s, z, _)| *s == source && *z == zero_snr)
        {
            let entry = cache.remove(i);
            let vp = Arc::clone(&entry.2);
            cache.insert(0, entry);
            return Ok(vp);
        }
        drop(cache);
        let vp = Arc::new(Self::compute(TrainingArrays::build(&source, zero_snr)?));
        let mut cache = VP_CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(0, (source, zero_snr, Arc::clone(&vp)));
        cache.truncate(VP_CACHE_CAPACITY);
        Ok(vp)
    }

    fn compute(training: TrainingArrays) -> Self {
        let sigmas = training_sigmas(&training.alphas_cumprod);
        let log_sigmas = ln_f32(&sigmas);
        let log_sigmas_f64 = log_sigmas.iter().map(|&x| f64::from(x)).collect();
        Self {
            training,
            sigmas,
            log_sigmas,
            log_sigmas_f64,
        }
    }

    /// `_sigma_to_t(sigma, log_sigmas)` in float64.
    pub(crate) fn sigma_to_t(&self, sigma: f64) -> f64 {
        sigma_to_t_sorted(sigma, &self.log_sigmas_f64)
    }

    /// `_sigma_to_t` entirely in float32 (KDPM2 interpolated timesteps).
    pub(crate) fn sigma_to_t_f32(&self, sigma: f32) -> f32 {
        sigma_to_t_f32_sorted(sigma, &self.log_sigmas)
    }

    /// `_sigma_to_t` of a float32 sigma with numpy promotion (Euler custom sigmas).
    pub(crate) fn sigma_to_t_f32_sigma(&self, sigma: f32) -> f64 {
        sigma_to_t_f32_sigma_sorted(sigma, &self.log_sigmas)
    }

    /// `sqrt((1 - acp[0]) / acp[0])` as a float32 torch scalar: the "sigma_min" final sigma.
    pub(crate) fn sigma_min(&self) -> f32 {
        self.sigmas.first().copied().unwrap_or(f32::NAN)
    }

    /// `sigmas[N-1]`, the largest training sigma.
    pub(crate) fn sigma_max(&self) -> f32 {
        self.sigmas.last().copied().unwrap_or(f32::NAN)
    }
}

/// Where the betas come from (validated): `trained_betas` or the named `beta_schedule`.
fn beta_source(cfg: &Resolved) -> Result<BetaSource> {
    let n = cfg.count("num_train_timesteps")?;
    let trained = if cfg.has("trained_betas") {
        cfg.opt_float_list("trained_betas")?
    } else {
        None
    };
    Ok(match trained {
        Some(values) => {
            if values.len() != n {
                return Err(CoreError::invalid(
                    "trained_betas",
                    format!("has {} values but num_train_timesteps is {n}", values.len()),
                ));
            }
            BetaSource::Trained(values)
        }
        None => named_source(cfg, n)?,
    })
}

fn named_source(cfg: &Resolved, n: usize) -> Result<BetaSource> {
    let name = cfg.text("beta_schedule")?;
    let schedule = BetaSchedule::parse(name)
        .ok_or_else(|| CoreError::invalid("beta_schedule", format!("unknown schedule {name:?}")))?;
    // UnCLIP declares no beta range; the cosine-family schedules ignore it.
    let (beta_start, beta_end) = if schedule.uses_beta_range() {
        (cfg.float("beta_start")?, cfg.float("beta_end")?)
    } else {
        (0.0, 0.0)
    };
    if schedule.uses_beta_range() && beta_start >= beta_end {
        return Err(CoreError::invalid(
            "beta_start",
            format!("must be smaller than beta_end ({beta_start} >= {beta_end})"),
        ));
    }
    Ok(BetaSource::Named {
        schedule,
        beta_start,
        beta_end,
        num_train_timesteps: n,
    })
}

/// A `timestep_spacing` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spacing {
    Linspace,
    Leading,
    Trailing,
}

impl Spacing {
    pub(crate) fn from_cfg(cfg: &Resolved) -> Result<Self> {
        match cfg.text("timestep_spacing")? {
            "linspace" => Ok(Self::Linspace),
            "leading" => Ok(Self::Leading),
            "trailing" => Ok(Self::Trailing),
            other => Err(CoreError::invalid(
                "timestep_spacing",
                format!("must be one of linspace, leading, trailing; got {other:?}"),
            )),
        }
    }
}

/// `rne(np.arange(start, 0, -n_train/n)) - 1`, the trailing rule, in float64 (descending).
///
/// numpy's `arange` can yield one element too many (`ceil` of a rounded quotient), which
/// becomes a final timestep of -1. diffusers keeps it; with `fix` it is dropped. Either way the
/// warning is recorded.
pub(crate) fn trailing(
    start: usize,
    n_train: usize,
    n: usize,
    fix: bool,
    warnings: &mut Vec<String>,
) -> Vec<f64> {
    let mut ts: Vec<f64> = np_arange(start as f64, 0.0, -(n_train as f64 / n as f64))
        .into_iter()
        .map(|t| rne(t) - 1.0)
        .collect();
    if ts.len() > n && ts.last().is_some_and(|&t| t < 0.0) {
        let len = ts.len();
        if fix {
            ts.pop();
            warnings.push(format!(
                "timestep_spacing='trailing': dropped the extra timestep -1 that diffusers 0.42.1 \
                 produces for {n} steps (fix_quirks=True)"
            ));
        } else {
            warnings.push(format!(
                "timestep_spacing='trailing' produced {len} timesteps for {n} steps, the extra one -1 \
                 (numpy arange rounding; diffusers 0.42.1 keeps it). Pass fix_quirks=True to drop it."
            ));
        }
    }
    ts
}

/// The warning for `leading` spacing whose first timestep reaches `num_train_timesteps`.
pub(crate) fn leading_warning(first: f64, n_train: usize) -> Option<String> {
    (first >= n_train as f64).then(|| {
        format!(
            "timestep_spacing='leading' with steps_offset gives a first timestep of {first}, outside \
             the trained range [0, {}] (diffusers issue #10003)",
            n_train - 1
        )
    })
}
