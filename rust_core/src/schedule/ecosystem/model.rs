//! The model-side noise tables the ecosystem tools build their schedules from: ComfyUI's
//! model-sampling objects (discrete VP, continuous EDM / V, discrete flow with an SD3-style
//! shift, Flux with an exponent μ) and the k-diffusion `DiscreteSchedule` that
//! AUTOMATIC1111 wraps around the model's float32 `alphas_cumprod`.

use super::super::primitives::{
    ln_f32, r32, torch_linspace_f32, torch_linspace_f64, training_sigmas,
};
use super::special::{exp32, ln32};
use crate::error::{CoreError, Result};

/// The constant both ComfyUI and AUTOMATIC1111 write into the last ᾱ of a zero-terminal-SNR
/// rescale so that σ stays finite.
pub(crate) const ZSNR_LAST_ALPHA_BAR: f64 = 4.897_345_189_085_343_5e-8;

/// How a model's σ table is built and how σ maps to the model's timestep input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A discrete VP table of `T` entries (SD1.x, SD2.x, SDXL, ...).
    Discrete,
    /// ComfyUI `ModelSamplingContinuousEDM`: timestep = ln σ / 4.
    Edm,
    /// ComfyUI `ModelSamplingContinuousV`: timestep = atan(σ)·2/π.
    ContinuousV,
    /// ComfyUI `ModelSamplingDiscreteFlow`: σ = S(shift, t / multiplier).
    Flow {
        /// The multiplicative shift α of `S(α, t) = α·t / (1 + (α − 1)·t)`.
        shift: f64,
        /// Timestep scale (1000 for SD3, 1 for AuraFlow / Flux schnell).
        multiplier: f64,
    },
    /// ComfyUI `ModelSamplingFlux`: σ = e^μ / (e^μ + 1/t − 1).
    Flux {
        /// The exponent μ.
        mu: f64,
    },
}

/// A model's ascending σ table plus the data needed to map σ ↔ t the way a tool does.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub kind: Kind,
    /// Ascending σ table (float32, as the tool stores it; float16 values with
    /// `half_table`).
    pub sigmas: Vec<f32>,
    /// `log_sigmas` as the tool stores it (ComfyUI: ln of the f64 σ, rounded; k-diffusion:
    /// f32 ln of the f32 σ, or the float16 ln of the float16 σ).
    pub log_sigmas: Vec<f32>,
    /// The k-diffusion table is a float16 buffer (A1111's "Downcast alphas_cumprod"), so
    /// differences of two table entries round to float16 too.
    pub half_table: bool,
    /// Training betas (discrete tables only).
    pub betas: Option<Vec<f32>>,
    /// Training ᾱ (discrete tables only).
    pub alphas_cumprod: Option<Vec<f32>>,
}

/// The parameters of a discrete VP table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DiscreteParams {
    pub beta_start: f64,
    pub beta_end: f64,
    pub num_train_timesteps: usize,
    /// diffusers naming: `scaled_linear` (ComfyUI/LDM "linear"), `linear` (LDM
    /// "sqrt_linear"), `squaredcos_cap_v2`.
    pub beta_schedule: String,
    pub zsnr: bool,
}

/// Betas in float64, as LDM / ComfyUI `make_beta_schedule` builds them.
pub(crate) fn betas_f64(p: &DiscreteParams) -> Result<Vec<f64>> {
    let n = p.num_train_timesteps;
    if !(2..=100_000).contains(&n) {
        return Err(CoreError::invalid(
            "num_train_timesteps",
            format!("must be between 2 and 100000, got {n}"),
        ));
    }
    for (field, v) in [("beta_start", p.beta_start), ("beta_end", p.beta_end)] {
        if !(v.is_finite() && v > 0.0 && v < 1.0) {
            return Err(CoreError::invalid(
                field,
                format!("must be in (0, 1), got {v}"),
            ));
        }
    }
    Ok(match p.beta_schedule.as_str() {
        "scaled_linear" => torch_linspace_f64(p.beta_start.sqrt(), p.beta_end.sqrt(), n)
            .into_iter()
            .map(|b| b * b)
            .collect(),
        "linear" => torch_linspace_f64(p.beta_start, p.beta_end, n),
        "squaredcos_cap_v2" => {
            let abar = |t: f64| {
                ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
                    .cos()
                    .powi(2)
            };
            (0..n)
                .map(|i| {
                    let t1 = i as f64 / n as f64;
                    let t2 = (i + 1) as f64 / n as f64;
                    (1.0 - abar(t2) / abar(t1)).min(0.999)
                })
                .collect()
        }
        other => {
            return Err(CoreError::invalid(
                "beta_schedule",
                format!(
                "{other:?} is not supported here; use scaled_linear, linear or squaredcos_cap_v2"
            ),
            ))
        }
    })
}

/// `x` rounded to float16 and back: what a torch op on float16 tensors stores (it computes
/// in float32 and rounds the result).
fn h16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

/// Zero-terminal-SNR rescale of an ascending ᾱ in the precision of its buffer, as A1111's
/// `rescale_zero_terminal_snr_abar` (modules/sd_models.py, v1.10.1) runs it on
/// `alphas_cumprod`: float32 ops, or float16 ones (`round` = [`h16`]) after the downcast.
fn rescale_zsnr_abar(acp: &[f32], round: fn(f32) -> f32) -> Vec<f32> {
    let sq: Vec<f32> = acp.iter().map(|a| round(a.sqrt())).collect();
    let (Some(&a0), Some(&at)) = (sq.first(), sq.last()) else {
        return Vec::new();
    };
    let scale = round(a0 / round(a0 - at));
    let mut out: Vec<f32> = sq
        .iter()
        .map(|&a| {
            let v = round(round(a - at) * scale);
            round(v * v)
        })
        .collect();
    if let Some(last) = out.last_mut() {
        *last = round(r32(ZSNR_LAST_ALPHA_BAR));
    }
    out
}

/// ComfyUI's `rescale_zero_terminal_snr_sigmas` (comfy/model_sampling.py, a125cd84) on the
/// float64 σ table: ᾱ = 1/(σ² + 1), the √ᾱ shift and scale, the last ᾱ pinned, back to σ,
/// all in float64 like ComfyUI's tensors.
fn rescale_zsnr_sigmas_f64(sigmas: &[f64]) -> Vec<f64> {
    let sq: Vec<f64> = sigmas
        .iter()
        .map(|s| (1.0 / (s * s + 1.0)).sqrt())
        .collect();
    let (Some(&a0), Some(&at)) = (sq.first(), sq.last()) else {
        return Vec::new();
    };
    let scale = a0 / (a0 - at);
    let last = sq.len() - 1;
    sq.iter()
        .enumerate()
        .map(|(i, &a)| {
            let v = (a - at) * scale;
            let abar = if i == last {
                ZSNR_LAST_ALPHA_BAR
            } else {
                v * v
            };
            ((1.0 - abar) / abar).sqrt()
        })
        .collect()
}

impl Model {
    /// ComfyUI `ModelSamplingDiscrete` (comfy/model_sampling.py, a125cd84): betas, ᾱ, σ
    /// and `zsnr`'s rescale in float64; σ and ln σ (of the float64 σ) stored as float32.
    pub(crate) fn comfy_discrete(p: &DiscreteParams) -> Result<Model> {
        let betas = betas_f64(p)?;
        let mut acc = 1.0f64;
        let acp: Vec<f64> = betas
            .iter()
            .map(|b| {
                acc *= 1.0 - b;
                acc
            })
            .collect();
        let mut s64: Vec<f64> = acp.iter().map(|a| ((1.0 - a) / a).sqrt()).collect();
        if p.zsnr {
            s64 = rescale_zsnr_sigmas_f64(&s64);
        }
        Ok(Model {
            kind: Kind::Discrete,
            sigmas: s64.iter().map(|&s| r32(s)).collect(),
            log_sigmas: s64.iter().map(|&s| r32(s.ln())).collect(),
            half_table: false,
            betas: Some(betas.iter().map(|&b| r32(b)).collect()),
            // What the (rescaled) table implies; ComfyUI itself keeps no ᾱ buffer.
            alphas_cumprod: Some(s64.iter().map(|&s| r32(1.0 / (s * s + 1.0))).collect()),
        })
    }

    /// k-diffusion `CompVisDenoiser` over an LDM model: ᾱ computed in f64 and stored as the
    /// model's float32 buffer, then σ = √((1 − ᾱ)/ᾱ) and ln σ in float32. `downcast` is
    /// A1111's "Downcast alphas_cumprod to fp16" (`use_downcasted_alpha_bar`): the buffer
    /// becomes float16 and so does everything k-diffusion derives from it, the σ and ln σ
    /// tables included (σ_max 14.609375, σ_min 0.03125 for SD). `zsnr` is A1111's rescale of
    /// ᾱ in the buffer's precision.
    pub(crate) fn kdiff_discrete(p: &DiscreteParams, downcast: bool) -> Result<Model> {
        let betas = betas_f64(p)?;
        let mut acc = 1.0f64;
        let mut acp: Vec<f32> = betas
            .iter()
            .map(|b| {
                acc *= 1.0 - b;
                r32(acc)
            })
            .collect();
        let round: fn(f32) -> f32 = if downcast { h16 } else { |x| x };
        acp = acp.into_iter().map(round).collect();
        if p.zsnr {
            acp = rescale_zsnr_abar(&acp, round);
        }
        let (sigmas, log_sigmas) = if downcast {
            // ((1 - ᾱ) / ᾱ) ** 0.5 and .log() on float16 tensors: each op rounds to float16.
            let sigmas: Vec<f32> = acp
                .iter()
                .map(|&a| h16(h16(h16(1.0 - a) / a).sqrt()))
                .collect();
            let logs = sigmas.iter().map(|&s| h16(ln32(s))).collect();
            (sigmas, logs)
        } else {
            let sigmas = training_sigmas(&acp);
            let logs = ln_f32(&sigmas);
            (sigmas, logs)
        };
        Ok(Model {
            kind: Kind::Discrete,
            sigmas,
            log_sigmas,
            half_table: downcast,
            betas: Some(betas.iter().map(|&b| r32(b)).collect()),
            alphas_cumprod: Some(acp),
        })
    }

    /// ComfyUI continuous EDM / V table: `exp(linspace(ln σmin, ln σmax, 1000))` in f32.
    pub(crate) fn comfy_continuous(kind: Kind, sigma_min: f64, sigma_max: f64) -> Result<Model> {
        if !(sigma_min.is_finite() && sigma_min > 0.0) {
            return Err(CoreError::invalid(
                "model_sigma_min",
                format!("must be finite and > 0, got {sigma_min}"),
            ));
        }
        if !(sigma_max.is_finite() && sigma_max > sigma_min) {
            return Err(CoreError::invalid(
                "model_sigma_max",
                format!("must be finite and > model_sigma_min ({sigma_min}), got {sigma_max}"),
            ));
        }
        let sigmas: Vec<f32> = torch_linspace_f32(sigma_min.ln(), sigma_max.ln(), 1000)
            .into_iter()
            .map(exp32)
            .collect();
        let log_sigmas = ln_f32(&sigmas);
        Ok(Model {
            kind,
            sigmas,
            log_sigmas,
            half_table: false,
            betas: None,
            alphas_cumprod: None,
        })
    }

    /// ComfyUI `ModelSamplingDiscreteFlow` (1000 entries) or `ModelSamplingFlux` (10000).
    pub(crate) fn comfy_flow(kind: Kind) -> Result<Model> {
        let (n, multiplier) = match kind {
            Kind::Flow { shift, multiplier } => {
                if !(shift.is_finite() && shift > 0.0) {
                    return Err(CoreError::invalid(
                        "shift",
                        format!("must be finite and > 0, got {shift}"),
                    ));
                }
                if !(multiplier.is_finite() && multiplier > 0.0) {
                    return Err(CoreError::invalid(
                        "multiplier",
                        format!("must be finite and > 0, got {multiplier}"),
                    ));
                }
                (1000usize, r32(multiplier))
            }
            Kind::Flux { mu } => {
                if !mu.is_finite() {
                    return Err(CoreError::invalid(
                        "mu",
                        format!("must be finite, got {mu}"),
                    ));
                }
                (10_000usize, 1.0f32)
            }
            _ => return Err(CoreError::invalid("model_sampling", "not a flow model")),
        };
        let mut model = Model {
            kind,
            sigmas: Vec::new(),
            log_sigmas: Vec::new(),
            half_table: false,
            betas: None,
            alphas_cumprod: None,
        };
        let sigmas: Vec<f32> = (1..=n)
            .map(|i| {
                let t = i as f32 / n as f32;
                model.comfy_sigma(t * multiplier)
            })
            .collect();
        model.log_sigmas = ln_f32(&sigmas);
        model.sigmas = sigmas;
        Ok(model)
    }

    /// `sigmas[0]`, the smallest σ of the table.
    pub(crate) fn sigma_min(&self) -> f32 {
        self.sigmas.first().copied().unwrap_or(0.0)
    }

    /// `sigmas[-1]`, the largest σ of the table.
    pub(crate) fn sigma_max(&self) -> f32 {
        self.sigmas.last().copied().unwrap_or(0.0)
    }

    /// Whether this is a flow (CONST) model, whose latent mixes rather than scales.
    pub(crate) fn is_flow(&self) -> bool {
        matches!(self.kind, Kind::Flow { .. } | Kind::Flux { .. })
    }

    /// Log-linear interpolation of the table at fractional index `t` (float32 ops), with or
    /// without ComfyUI's clamp to `[0, T−1]`; out-of-range input without the clamp is NaN
    /// (k-diffusion raises an indexing error there).
    fn table_sigma(&self, t: f32, clamp: bool) -> f32 {
        let last = self.log_sigmas.len().saturating_sub(1);
        let t = if clamp { t.clamp(0.0, last as f32) } else { t };
        if !(t >= 0.0 && t <= last as f32) {
            return f32::NAN;
        }
        let lo = t.floor() as usize;
        let hi = t.ceil() as usize;
        let w = t - t.floor();
        let ls = (1.0 - w) * self.log_sigmas[lo] + w * self.log_sigmas[hi];
        exp32(ls)
    }

    /// ComfyUI `model_sampling.sigma(t)`.
    pub(crate) fn comfy_sigma(&self, t: f32) -> f32 {
        match self.kind {
            Kind::Discrete => self.table_sigma(t, true),
            Kind::Edm => exp32(t / 0.25),
            Kind::ContinuousV => r32((f64::from(t) * std::f64::consts::PI / 2.0).tan()),
            Kind::Flow { shift, multiplier } => {
                let t = t / r32(multiplier);
                if shift == 1.0 {
                    t
                } else {
                    r32(shift) * t / (1.0 + r32(shift - 1.0) * t)
                }
            }
            Kind::Flux { mu } => {
                let e = r32(mu.exp());
                e / (e + (1.0 / t - 1.0))
            }
        }
    }

    /// ComfyUI `model_sampling.timestep(σ)`: what ComfyUI feeds the model.
    pub(crate) fn comfy_timestep(&self, sigma: f32) -> f32 {
        match self.kind {
            Kind::Discrete => self.quantized_t(sigma) as f32,
            Kind::Edm => 0.25 * ln32(sigma),
            Kind::ContinuousV => r32(f64::from(sigma).atan() * 2.0 / std::f64::consts::PI),
            Kind::Flow { multiplier, .. } => sigma * r32(multiplier),
            Kind::Flux { .. } => sigma,
        }
    }

    /// ComfyUI `timestep(σ)` and k-diffusion's quantised `sigma_to_t`:
    /// `argmin_i |ln σ − ln σ_i|`. torch's `argmin` returns the first minimum, so a σ exactly
    /// between two entries in log space (σ(k + ½), e.g. from sgm_uniform's fractional
    /// timesteps) maps to the **lower** index k. In float32 such a tie survives only up to
    /// the rounding of `exp` and `log`, which differs between torch builds, so the distances
    /// are compared in float64 and an entry within that rounding of the minimum
    /// ([`tie_tolerance`]) below it wins.
    pub(crate) fn quantized_t(&self, sigma: f32) -> usize {
        let ls = f64::from(sigma).ln();
        let dist = |i: usize| (ls - f64::from(self.log_sigmas[i])).abs();
        let mut best = 0usize;
        let mut best_d = f64::INFINITY;
        for i in 0..self.log_sigmas.len() {
            let d = dist(i);
            if d < best_d {
                best_d = d;
                best = i;
            }
        }
        let tie = tie_tolerance(ls);
        while best > 0 && dist(best - 1) <= best_d + tie {
            best -= 1;
        }
        best
    }

    /// k-diffusion `DiscreteSchedule.t_to_sigma` (no clamp).
    pub(crate) fn kd_t_to_sigma(&self, t: f32) -> f32 {
        self.table_sigma(t, false)
    }

    /// k-diffusion `DiscreteSchedule.sigma_to_t` of a 0-d tensor, as A1111's `normal` and
    /// `sgm_uniform` call it on `torch.tensor(sigma)`. torch's type promotion lets the
    /// table's dtype win over a 0-d operand, so on a float16 table (the downcast) ln σ is cast
    /// to float16 and every step rounds to float16: the distances, `w`, and `t` itself.
    /// Otherwise as [`Model::kd_sigma_to_t`].
    pub(crate) fn kd_sigma_to_t_0d(&self, sigma: f32, quantize: bool) -> f32 {
        if !self.half_table {
            return self.kd_sigma_to_t(sigma, quantize);
        }
        let ls = h16(ln32(sigma));
        let dists: Vec<f32> = self.log_sigmas.iter().map(|&l| h16(ls - l)).collect();
        if quantize {
            // argmin of the float16 distances: the first of equal ones.
            let mut best = 0usize;
            for (i, d) in dists.iter().enumerate() {
                if d.abs() < dists[best].abs() {
                    best = i;
                }
            }
            return best as f32;
        }
        let n = dists.len();
        if n < 2 {
            return 0.0;
        }
        let lo = dists
            .iter()
            .rposition(|&d| d >= 0.0)
            .unwrap_or(0)
            .min(n - 2);
        let (low, high) = (self.log_sigmas[lo], self.log_sigmas[lo + 1]);
        let w = h16(h16(low - ls) / h16(low - high)).clamp(0.0, 1.0);
        h16(h16(h16(1.0 - w) * lo as f32) + h16(w * (lo + 1) as f32))
    }

    /// k-diffusion `DiscreteSchedule.sigma_to_t` of a 1-D float32 tensor (what the sampler
    /// feeds the model), interpolated (default) or quantised.
    pub(crate) fn kd_sigma_to_t(&self, sigma: f32, quantize: bool) -> f32 {
        if quantize {
            return self.quantized_t(sigma) as f32;
        }
        let n = self.log_sigmas.len();
        if n < 2 {
            return 0.0;
        }
        let ls = ln32(sigma);
        let lo = self
            .log_sigmas
            .iter()
            .rposition(|&l| ls - l >= 0.0)
            .unwrap_or(0)
            .min(n - 2);
        let hi = lo + 1;
        let (low, high) = (self.log_sigmas[lo], self.log_sigmas[hi]);
        // `low - high` of two float16 buffer entries is a float16 op.
        let span = if self.half_table {
            h16(low - high)
        } else {
            low - high
        };
        let w = ((low - ls) / span).clamp(0.0, 1.0);
        (1.0 - w) * lo as f32 + w * hi as f32
    }
}

/// How far apart two float64 distances from `ln σ` may be and still come from a tie in real
/// arithmetic: the float32 σ carries a relative rounding of 2^-24 (so 2^-23 between the two
/// distances) and the float32 interpolation of ln σ that produced it up to two ulps.
fn tie_tolerance(ln_sigma: f64) -> f64 {
    let v = (ln_sigma as f32).abs();
    if !v.is_finite() {
        return 0.0;
    }
    let ulp = f64::from(f32::from_bits(v.to_bits() + 1) - v);
    2f64.powi(-23) + 2.0 * ulp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sd() -> DiscreteParams {
        DiscreteParams {
            beta_start: 0.00085,
            beta_end: 0.012,
            num_train_timesteps: 1000,
            beta_schedule: "scaled_linear".into(),
            zsnr: false,
        }
    }

    #[test]
    fn comfy_table_ends_match_spec() {
        let m = Model::comfy_discrete(&sd()).unwrap();
        assert_eq!(f64::from(m.sigma_max()), 14.614641189575195);
        assert_eq!(f64::from(m.sigma_min()), 0.029167158529162407);
    }

    #[test]
    fn kdiff_table_ends_match_spec() {
        let m = Model::kdiff_discrete(&sd(), false).unwrap();
        // torch's float32 sqrt is not correctly rounded on x86 wheels (1 ulp, ~17% of
        // inputs); σ_min is one of those, so compare to within one ulp.
        assert_eq!(f64::from(m.sigma_max()), 14.614642143249512);
        assert!((f64::from(m.sigma_min()) - 0.02916753478348255).abs() < 2e-9);
        // A1111's "Downcast alphas_cumprod": the whole table is float16 (issue 13).
        let h = Model::kdiff_discrete(&sd(), true).unwrap();
        assert_eq!(h.sigma_max(), 14.609375);
        assert_eq!(h.sigma_min(), 0.03125);
        assert!(h.half_table);
        for (s, l) in h.sigmas.iter().zip(&h.log_sigmas) {
            assert_eq!(h16(*s), *s);
            assert_eq!(h16(*l), *l);
        }
    }

    #[test]
    fn quantized_ties_take_the_lower_index() {
        // σ(k + ½) lies halfway between two entries in log space: torch's argmin keeps the
        // first, whatever the float32 rounding of exp/log (issue 13: t = 202.5 -> 202).
        let m = Model::comfy_discrete(&sd()).unwrap();
        for k in [0usize, 1, 202, 500, 997] {
            let s = m.comfy_sigma(k as f32 + 0.5);
            assert_eq!(m.quantized_t(s), k, "k = {k}");
            assert_eq!(m.quantized_t(m.comfy_sigma(k as f32 + 0.51)), k + 1);
            assert_eq!(m.quantized_t(m.comfy_sigma(k as f32 + 0.49)), k);
        }
        assert_eq!(m.quantized_t(0.0), 0);
        assert_eq!(m.quantized_t(1e6), 999);
    }

    #[test]
    fn zsnr_tables_match_spec() {
        let mut p = sd();
        p.zsnr = true;
        let m = Model::comfy_discrete(&p).unwrap();
        assert!((f64::from(m.sigma_max()) - 4518.76).abs() < 0.01);
        assert!((f64::from(m.sigmas[998]) - 2254.24).abs() < 0.01);
        // ComfyUI rescales in float64: σ_min stays the plain table's 0.029167159 (issue 13).
        assert_eq!(f64::from(m.sigma_min()), 0.029167158529162407);
        // A1111 rescales its float32 alphas_cumprod: its σ_min moves by float32 rounding.
        let a = Model::kdiff_discrete(&p, false).unwrap();
        assert!((f64::from(a.sigma_min()) - 0.0291675).abs() < 1e-6);
        // With the float16 downcast the pinned last ᾱ is float16's smallest subnormal, and
        // (1 - ᾱ)/ᾱ overflows float16: A1111's σ_max is infinite.
        assert!(Model::kdiff_discrete(&p, true)
            .unwrap()
            .sigma_max()
            .is_infinite());
    }

    #[test]
    fn interpolated_t_hits_ends() {
        let m = Model::kdiff_discrete(&sd(), false).unwrap();
        assert_eq!(m.kd_sigma_to_t(m.sigma_max(), false), 999.0);
        assert_eq!(m.kd_sigma_to_t(m.sigma_min(), false), 0.0);
    }

    #[test]
    fn flow_table_ends_match_spec() {
        let m = Model::comfy_flow(Kind::Flow {
            shift: 3.0,
            multiplier: 1000.0,
        })
        .unwrap();
        assert!((f64::from(m.sigma_min()) - 0.002994).abs() < 1e-6);
        assert_eq!(m.sigma_max(), 1.0);
        let f = Model::comfy_flow(Kind::Flux { mu: 1.15 }).unwrap();
        assert!((f64::from(f.sigma_min()) - 0.000316).abs() < 1e-6);
    }

    #[test]
    fn bad_params_name_the_field() {
        let mut p = sd();
        p.beta_schedule = "bogus".into();
        assert_eq!(
            Model::comfy_discrete(&p).unwrap_err().field(),
            "beta_schedule"
        );
        p = sd();
        p.beta_end = 2.0;
        assert_eq!(Model::comfy_discrete(&p).unwrap_err().field(), "beta_end");
        assert_eq!(
            Model::comfy_continuous(Kind::Edm, 1.0, 0.5)
                .unwrap_err()
                .field(),
            "model_sigma_max"
        );
    }
}
