//! Family A, the k-diffusion style schedulers: LMS, Euler, EulerAncestral, Heun, KDPM2,
//! KDPM2Ancestral and DPMSolverSDE (n fractional timesteps, sigmas interpolated from the
//! training sigmas, `init_noise_sigma` from the largest sigma).

use super::betas::TerminalPatch;
use super::classes::SchedulerClass as C;
use super::conversions::SigmaSpace;
use super::primitives::{interp_index, np_linspace, r32, reversed, torch_linspace_f32};
use super::vp::{leading_warning, trailing, Spacing, Vp};
use super::{
    reject_extras, required_steps, steps_from_custom, Built, FloatArray, Request, Timesteps,
};
use crate::error::{CoreError, Result};

/// Builds the schedule of a family-A class.
pub(crate) fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    let class = req.class;
    let allowed: &[&str] = match class {
        C::Euler => &["timesteps", "sigmas"],
        C::Heun => &["timesteps"],
        _ => &[],
    };
    reject_extras(class, req.extras, allowed)?;
    let vp = Vp::new(req.cfg, TerminalPatch::Fp16Tiny)?;
    let space = SigmaSpace::from_cfg(req.cfg)?;
    let spacing = Spacing::from_cfg(req.cfg)?;
    let mut built = if let Some(custom) = req.extras.sigmas.as_deref() {
        euler_custom_sigmas(&req, &vp, custom)?
    } else {
        let path = SigmaPath::compute(&req, &vp, space, warnings)?;
        assemble(&req, &vp, space, path, warnings)?
    };
    let sigmas = built.sigmas.as_ref().and_then(FloatArray::as_f32);
    built.init_noise_sigma = init_noise_sigma(sigmas.unwrap_or(&[]), spacing);
    built.betas = vp.training.betas.clone().into();
    built.alphas_cumprod = vp.training.alphas_cumprod.clone().into();
    Ok(built)
}

/// Timesteps and sigmas before the class-specific assembly (both float64 numpy arrays).
struct SigmaPath {
    n: usize,
    timesteps: Vec<f64>,
    sigmas: Vec<f64>,
}

impl SigmaPath {
    fn compute(
        req: &Request<'_>,
        vp: &Vp,
        space: SigmaSpace,
        warnings: &mut Vec<String>,
    ) -> Result<Self> {
        let float64 = req.class == C::DpmSde;
        let (n, timesteps) = match req.extras.timesteps.as_deref() {
            Some(custom) => {
                if space != SigmaSpace::Plain {
                    return Err(CoreError::invalid(
                        "timesteps",
                        format!("cannot be combined with {}", space.key()),
                    ));
                }
                check_continuous_custom(req)?;
                let n = steps_from_custom(req.steps, custom.len(), "timesteps")?;
                (n, custom.iter().map(|&t| f64::from(r32(t))).collect())
            }
            None => {
                let n = required_steps(req.steps)?;
                (n, spaced(req, n, float64, warnings)?)
            }
        };
        let sigmas = base_sigmas(req, vp, &timesteps, n)?;
        let mut path = Self {
            n,
            timesteps,
            sigmas,
        };
        path.apply_conversion(req, vp, space)?;
        Ok(path)
    }

    /// Replaces sigmas (and timesteps, via `_sigma_to_t`) by a Karras/exponential/beta schedule.
    fn apply_conversion(&mut self, req: &Request<'_>, vp: &Vp, space: SigmaSpace) -> Result<()> {
        let cfg = &*req.cfg;
        // LMS's and DPM-SDE's Karras helpers ignore config sigma_min/sigma_max; only Euler
        // declares those keys, so reading them is a no-op elsewhere.
        let reads_config =
            !(matches!(req.class, C::Lms | C::DpmSde) && space == SigmaSpace::Karras);
        let first = self.sigmas.first().copied().unwrap_or(f64::NAN);
        let last = self.sigmas.last().copied().unwrap_or(f64::NAN);
        let (mut lo, mut hi) = (last, first);
        if reads_config {
            lo = cfg.opt_float("sigma_min")?.unwrap_or(lo);
            hi = cfg.opt_float("sigma_max")?.unwrap_or(hi);
        }
        let Some(converted) = space.convert(lo, hi, self.n) else {
            return Ok(());
        };
        let round =
            space == SigmaSpace::Karras && matches!(req.class, C::Kdpm2 | C::Kdpm2Ancestral);
        self.timesteps = converted
            .iter()
            .map(|&s| vp.sigma_to_t(s))
            .map(|t| if round { t.round_ties_even() } else { t })
            .collect();
        self.sigmas = converted;
        Ok(())
    }
}

fn check_continuous_custom(req: &Request<'_>) -> Result<()> {
    if req.class == C::Euler && continuous_v(req)? {
        return Err(CoreError::invalid(
            "timesteps",
            "cannot be combined with timestep_type='continuous' and prediction_type='v_prediction'",
        ));
    }
    Ok(())
}

fn continuous_v(req: &Request<'_>) -> Result<bool> {
    Ok(req.class == C::Euler
        && req.cfg.text("timestep_type")? == "continuous"
        && req.cfg.text("prediction_type")? == "v_prediction")
}

/// The spaced timesteps, float32 values (float64 for DPM-SDE), descending.
// diffusers 0.42.1 schedulers/scheduling_euler_discrete.py: set_timesteps (timestep_spacing).
fn spaced(
    req: &Request<'_>,
    n: usize,
    float64: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<f64>> {
    let cfg = &*req.cfg;
    let n_train = cfg.count("num_train_timesteps")?;
    let cast = |x: f64| if float64 { x } else { f64::from(r32(x)) };
    let timesteps: Vec<f64> = match Spacing::from_cfg(cfg)? {
        Spacing::Linspace => reversed(np_linspace(0.0, (n_train - 1) as f64, n)),
        Spacing::Leading => {
            let ratio = n_train / n;
            let offset = cfg.int("steps_offset")? as f64;
            let ts: Vec<f64> = (0..n).rev().map(|i| (i * ratio) as f64 + offset).collect();
            if let Some(w) = ts.first().and_then(|&f| leading_warning(f, n_train)) {
                warnings.push(w);
            }
            ts
        }
        Spacing::Trailing => trailing(n_train, n_train, n, req.extras.fix_quirks, warnings),
    };
    Ok(timesteps.into_iter().map(cast).collect())
}

/// Sigmas at the timesteps: `np.interp` of the training sigmas, or Euler's `log_linear` rule.
fn base_sigmas(req: &Request<'_>, vp: &Vp, timesteps: &[f64], n: usize) -> Result<Vec<f64>> {
    if req.class == C::Euler && req.cfg.text("interpolation_type")? == "log_linear" {
        let lo = r32(f64::from(vp.sigma_max()).ln());
        let hi = r32(f64::from(vp.sigma_min()).ln());
        return Ok(torch_linspace_f32(f64::from(lo), f64::from(hi), n + 1)
            .into_iter()
            .map(|x| f64::from(r32(f64::from(x).exp())))
            .collect());
    }
    Ok(timesteps
        .iter()
        .map(|&t| interp_index(t, &vp.sigmas))
        .collect())
}

/// Euler with custom `sigmas`: used as given (float32), no final sigma appended, timesteps
/// from `_sigma_to_t` of all but the last.
fn euler_custom_sigmas(req: &Request<'_>, vp: &Vp, custom: &[f64]) -> Result<Built> {
    if req.extras.timesteps.is_some() {
        return Err(CoreError::invalid(
            "sigmas",
            "pass either `timesteps` or `sigmas`, not both",
        ));
    }
    if custom.len() < 2 {
        return Err(CoreError::invalid(
            "sigmas",
            "needs at least 2 values (the schedule and its final sigma, usually 0)",
        ));
    }
    let n = steps_from_custom(req.steps, custom.len() - 1, "sigmas")?;
    let sigmas: Vec<f32> = custom.iter().map(|&s| r32(s)).collect();
    let timesteps = if continuous_v(req)? {
        continuous_timesteps(&sigmas)
    } else {
        sigmas[..n]
            .iter()
            .map(|&s| r32(vp.sigma_to_t_f32_sigma(s)))
            .collect()
    };
    Ok(built(Timesteps::F32(timesteps), sigmas, n))
}

/// EDM's `c_noise = 0.25 * ln(sigma)` for every sigma but the last (float32).
fn continuous_timesteps(sigmas: &[f32]) -> Vec<f32> {
    let body = &sigmas[..sigmas.len().saturating_sub(1)];
    body.iter()
        .map(|&s| 0.25 * r32(f64::from(s).ln()))
        .collect()
}

fn built(timesteps: Timesteps, sigmas: Vec<f32>, n: usize) -> Built {
    Built {
        timesteps,
        sigmas: Some(sigmas.into()),
        init_noise_sigma: 1.0,
        betas: FloatArray::default(),
        alphas_cumprod: FloatArray::default(),
        num_inference_steps: n,
    }
}

/// Class-specific final arrays.
fn assemble(
    req: &Request<'_>,
    vp: &Vp,
    space: SigmaSpace,
    path: SigmaPath,
    warnings: &mut Vec<String>,
) -> Result<Built> {
    let result = match req.class {
        C::Euler => assemble_euler(req, vp, &path)?,
        C::Heun => assemble_heun(&path),
        C::Kdpm2 => assemble_kdpm2(vp, space, &path),
        C::Kdpm2Ancestral => assemble_kdpm2_ancestral(vp, space, &path),
        C::DpmSde => assemble_dpm_sde(vp, &path),
        _ => {
            let sigmas = with_final(&path.sigmas, 0.0);
            built(Timesteps::F32(to_f32(&path.timesteps)), sigmas, path.n)
        }
    };
    if matches!(req.class, C::Euler) && req.cfg.text("interpolation_type")? == "log_linear" {
        warnings.push(format!(
            "interpolation_type='log_linear' gives {} sigmas for {} timesteps (n+2; diffusers \
             0.42.1 keeps the extra sigma)",
            result.sigmas.as_ref().map_or(0, FloatArray::len),
            result.timesteps.len()
        ));
    }
    Ok(result)
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| r32(v)).collect()
}

/// `r32(sigmas) ++ [last]`.
fn with_final(sigmas: &[f64], last: f32) -> Vec<f32> {
    let mut out = to_f32(sigmas);
    out.push(last);
    out
}

fn assemble_euler(req: &Request<'_>, vp: &Vp, path: &SigmaPath) -> Result<Built> {
    let last = match req.cfg.text("final_sigmas_type")? {
        "sigma_min" => vp.sigma_min(),
        _ => 0.0,
    };
    let sigmas = with_final(&path.sigmas, last);
    let timesteps = if continuous_v(req)? {
        continuous_timesteps(&sigmas)
    } else {
        to_f32(&path.timesteps)
    };
    Ok(built(Timesteps::F32(timesteps), sigmas, path.n))
}

/// `[x0, x1, x1, x2, x2, ...]`: the first element once, the rest twice.
pub(crate) fn repeat_tail<T: Copy>(values: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(values.len() * 2);
    if let Some((&first, rest)) = values.split_first() {
        out.push(first);
        for &v in rest {
            out.extend([v, v]);
        }
    }
    out
}

/// `[s0] ++ each of s1..s_{n-1} twice ++ [s_n]` (Heun, DPM-SDE: 2n values from n+1).
pub(crate) fn interleave_inner(sigmas: &[f32]) -> Vec<f32> {
    let Some((&last, head)) = sigmas.split_last() else {
        return Vec::new();
    };
    let mut out = repeat_tail(head);
    out.push(last);
    out
}

fn assemble_heun(path: &SigmaPath) -> Built {
    let sigmas = interleave_inner(&with_final(&path.sigmas, 0.0));
    let timesteps = repeat_tail(&to_f32(&path.timesteps));
    built(Timesteps::F32(timesteps), sigmas, path.n)
}

/// torch `lerp(a, b, 0.5)` on float32: `fma(-0.5, b - a, b)`.
fn lerp_half(a: f32, b: f32) -> f32 {
    (-0.5f32).mul_add(b - a, b)
}

fn ln32(x: f32) -> f32 {
    r32(f64::from(x).ln())
}

fn exp32(x: f32) -> f32 {
    r32(f64::from(x).exp())
}

/// `[S0] ++ each of S1..Sn twice ++ [Sn]` (KDPM2 family: 2n+2 values from n+1).
fn kdpm2_repeat(values: &[f32]) -> Vec<f32> {
    let mut out = repeat_tail(values);
    if let Some(&last) = values.last() {
        out.push(last);
    }
    out
}

/// The timesteps of KDPM2 in their dtype: float32, or float64 after Karras/exponential/beta.
fn kdpm2_timesteps(
    space: SigmaSpace,
    main: &[f64],
    interpolated: &[f32],
    pairs: &[(usize, usize)],
) -> Timesteps {
    // pairs: (interpolated index, main index) appended after main[0].
    let ordered =
        std::iter::once(Ok(0usize)).chain(pairs.iter().flat_map(|&(i, m)| [Err(i), Ok(m)]));
    if space == SigmaSpace::Plain {
        Timesteps::F32(
            ordered
                .map(|e| match e {
                    Ok(m) => r32(main[m]),
                    Err(i) => interpolated[i],
                })
                .collect(),
        )
    } else {
        Timesteps::F64(
            ordered
                .map(|e| match e {
                    Ok(m) => main[m],
                    Err(i) => f64::from(interpolated[i]),
                })
                .collect(),
        )
    }
}

// diffusers 0.42.1 schedulers/scheduling_k_dpm_2_discrete.py: set_timesteps.
fn assemble_kdpm2(vp: &Vp, space: SigmaSpace, path: &SigmaPath) -> Built {
    let s = with_final(&path.sigmas, 0.0);
    let n = path.n;
    let interpolated: Vec<f32> = (0..s.len())
        .map(|i| {
            let prev = s[(i + s.len() - 1) % s.len()];
            exp32(lerp_half(ln32(s[i]), ln32(prev)))
        })
        .collect();
    let tau: Vec<f32> = interpolated.iter().map(|&x| vp.sigma_to_t_f32(x)).collect();
    let m = path.timesteps.len();
    let pairs: Vec<(usize, usize)> = (1..m).map(|i| (i, i)).collect();
    let timesteps = kdpm2_timesteps(space, &path.timesteps, &tau, &pairs);
    built(timesteps, kdpm2_repeat(&s), n)
}

// diffusers 0.42.1 schedulers/scheduling_k_dpm_2_ancestral_discrete.py: set_timesteps.
fn assemble_kdpm2_ancestral(vp: &Vp, space: SigmaSpace, path: &SigmaPath) -> Built {
    let s = with_final(&path.sigmas, 0.0);
    let n = path.n;
    let len = s.len();
    let interpolated: Vec<f32> = (0..len)
        .map(|i| {
            if i + 2 >= len {
                return 0.0;
            }
            let next = s[i + 1];
            let (cur2, next2) = (s[i] * s[i], next * next);
            let up = ((next2 * (cur2 - next2)) / cur2).sqrt();
            let down = (next2 - up * up).sqrt();
            exp32(lerp_half(ln32(s[i]), ln32(down)))
        })
        .collect();
    let tau: Vec<f32> = interpolated.iter().map(|&x| vp.sigma_to_t_f32(x)).collect();
    let count = path.timesteps.len();
    let pairs: Vec<(usize, usize)> = (1..count).map(|m| (m - 1, m)).collect();
    let timesteps = kdpm2_timesteps(space, &path.timesteps, &tau, &pairs);
    built(timesteps, kdpm2_repeat(&s), n)
}

// diffusers 0.42.1 schedulers/scheduling_dpmsolver_sde.py: set_timesteps, _second_order_timesteps.
fn assemble_dpm_sde(vp: &Vp, path: &SigmaPath) -> Built {
    let u: Vec<f64> = path.sigmas.iter().map(|&s| -s.ln()).collect();
    let midpoints: Vec<f64> = u
        .windows(2)
        .map(|w| {
            let proposed = w[0] + (w[1] - w[0]) * 0.5;
            vp.sigma_to_t((-proposed).exp())
        })
        .collect();
    let mut timesteps = Vec::with_capacity(2 * path.n);
    for (i, &t) in path.timesteps.iter().enumerate() {
        if i > 0 {
            timesteps.push(midpoints[i - 1]);
        }
        timesteps.push(t);
    }
    let sigmas = interleave_inner(&with_final(&path.sigmas, 0.0));
    built(Timesteps::F64(timesteps), sigmas, path.n)
}

/// `max(sigmas)` for linspace/trailing spacing, `sqrt(max^2 + 1)` for leading (float32 torch).
// diffusers 0.42.1 schedulers/scheduling_euler_discrete.py: init_noise_sigma.
fn init_noise_sigma(sigmas: &[f32], spacing: Spacing) -> f64 {
    let max = sigmas.iter().copied().fold(f32::NEG_INFINITY, |m, s| {
        if m.is_nan() || s.is_nan() {
            f32::NAN
        } else {
            m.max(s)
        }
    });
    let value = match spacing {
        Spacing::Leading => (max * max + 1.0).sqrt(),
        _ => max,
    };
    f64::from(value)
}
