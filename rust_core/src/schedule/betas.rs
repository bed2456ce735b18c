//! Training arrays: betas, the zero-terminal-SNR rescale, alphas_cumprod and training sigmas.

use super::primitives::{cumprod_f32, r32, torch_linspace_f32};
use crate::error::{CoreError, Result};

/// The largest beta `betas_for_alpha_bar` lets through.
const MAX_BETA: f64 = 0.999;

/// A named beta schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BetaSchedule {
    Linear,
    ScaledLinear,
    SquaredCosCapV2,
    /// HeunDiscrete only.
    Exp,
    /// DDPM only.
    Laplace,
    /// DDPM only (GeoDiff).
    Sigmoid,
}

impl BetaSchedule {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "linear" => Self::Linear,
            "scaled_linear" => Self::ScaledLinear,
            "squaredcos_cap_v2" => Self::SquaredCosCapV2,
            "exp" => Self::Exp,
            "laplace" => Self::Laplace,
            "sigmoid" => Self::Sigmoid,
            _ => return None,
        })
    }

    /// Whether the schedule reads `beta_start` / `beta_end`.
    pub(crate) fn uses_beta_range(self) -> bool {
        matches!(self, Self::Linear | Self::ScaledLinear | Self::Sigmoid)
    }
}

/// Where betas come from: a named schedule or an explicit `trained_betas` list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BetaSource {
    Named {
        schedule: BetaSchedule,
        beta_start: f64,
        beta_end: f64,
        num_train_timesteps: usize,
    },
    Trained(Vec<f64>),
}

/// The precision limit of `rescale_betas_zero_snr`, named in `Schedule.warnings` whenever the
/// rescale applies. Measured against diffusers 0.42.1 with torch 2.13 on an AVX-512 AMD EPYC:
/// sigmas up to 1.4e-3 relative (squaredcos_cap_v2), 1.1e-4 (linear), 7e-6 (scaled_linear),
/// alphas_cumprod up to 5e-6.
pub(crate) const ZERO_SNR_PRECISION: &str =
    "rescale_betas_zero_snr: the smallest sigmas are sqrt((1 - acp) / acp) with acp close to 1, \
     a cancellation that magnifies the 1-ulp rounding of torch's float32 sqrt (not correctly \
     rounded on every CPU; sigmaserve's is), so they can differ from torch's by up to about \
     1.5e-3 relative (alphas_cumprod by about 5e-6)";

/// What a scheduler does after `rescale_betas_zero_snr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TerminalPatch {
    /// DDIM, DDPM, LCM, TCD keep `alphas_cumprod[-1] = 0`.
    KeepZero,
    /// Euler, EulerAncestral, DPM multistep, UniPC set it to 2**-24 so sigma stays finite.
    Fp16Tiny,
}

/// betas and alphas_cumprod as a scheduler holds them after `__init__`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrainingArrays {
    pub(crate) betas: Vec<f32>,
    pub(crate) alphas_cumprod: Vec<f32>,
}

impl TrainingArrays {
    /// Builds the arrays; `zero_snr` applies the rescale and then the scheduler's terminal patch.
    pub(crate) fn build(source: &BetaSource, zero_snr: Option<TerminalPatch>) -> Result<Self> {
        let mut betas = betas(source);
        if betas.is_empty() {
            return Err(CoreError::invalid("trained_betas", "must not be empty"));
        }
        if zero_snr.is_some() {
            betas = rescale_zero_terminal_snr(&betas);
        }
        let mut alphas_cumprod = cumprod_f32(&alphas(&betas));
        if zero_snr == Some(TerminalPatch::Fp16Tiny) {
            if let Some(last) = alphas_cumprod.last_mut() {
                *last = 2f32.powi(-24);
            }
        }
        Ok(Self {
            betas,
            alphas_cumprod,
        })
    }
}

/// `1 - betas` in float32.
pub(crate) fn alphas(betas: &[f32]) -> Vec<f32> {
    betas.iter().map(|&b| 1.0f32 - b).collect()
}

/// The betas of `source` as float32.
// diffusers 0.42.1 schedulers/scheduling_*.py: __init__ (beta_schedule branches) and
// betas_for_alpha_bar.
pub(crate) fn betas(source: &BetaSource) -> Vec<f32> {
    match *source {
        BetaSource::Trained(ref values) => values.iter().map(|&b| r32(b)).collect(),
        BetaSource::Named {
            schedule,
            beta_start,
            beta_end,
            num_train_timesteps: n,
        } => match schedule {
            BetaSchedule::Linear => torch_linspace_f32(beta_start, beta_end, n),
            BetaSchedule::ScaledLinear => torch_linspace_f32(beta_start.sqrt(), beta_end.sqrt(), n)
                .into_iter()
                .map(|x| x * x)
                .collect(),
            BetaSchedule::SquaredCosCapV2 => betas_for_alpha_bar(n, alpha_bar_cosine),
            BetaSchedule::Exp => betas_for_alpha_bar(n, |t| (t * -12.0).exp()),
            BetaSchedule::Laplace => betas_for_alpha_bar(n, alpha_bar_laplace),
            BetaSchedule::Sigmoid => sigmoid_betas(beta_start, beta_end, n),
        },
    }
}

fn alpha_bar_cosine(t: f64) -> f64 {
    let c = ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0).cos();
    c * c
}

fn alpha_bar_laplace(t: f64) -> f64 {
    let lmb = -0.5 * (1.0f64).copysign(0.5 - t) * (1.0 - 2.0 * (0.5 - t).abs() + 1e-6).ln();
    let snr = lmb.exp();
    (snr / (1.0 + snr)).sqrt()
}

/// `min(1 - abar((i+1)/N) / abar(i/N), 0.999)` in float64, rounded to f32 per element.
fn betas_for_alpha_bar(n: usize, alpha_bar: impl Fn(f64) -> f64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t1 = i as f64 / n as f64;
            let t2 = (i + 1) as f64 / n as f64;
            r32((1.0 - alpha_bar(t2) / alpha_bar(t1)).min(MAX_BETA))
        })
        .collect()
}

/// `sigmoid(linspace(-6, 6, N)) * (end - start) + start`, all float32 torch ops. torch's
/// vectorised sigmoid is `reciprocal(1 + exp(-x))` in float32 (each step rounded; its exp is
/// within 1 ulp of the correctly rounded one used here).
// torch 2.13 aten/src/ATen/native/cpu/UnaryOpsKernel.cpp: sigmoid_kernel (vectorised path).
fn sigmoid_betas(beta_start: f64, beta_end: f64, n: usize) -> Vec<f32> {
    let scale = r32(beta_end - beta_start);
    let offset = r32(beta_start);
    torch_linspace_f32(-6.0, 6.0, n)
        .into_iter()
        .map(|x| {
            let e = r32((-f64::from(x)).exp());
            let s = 1.0f32 / (1.0f32 + e);
            s * scale + offset
        })
        .collect()
}

/// Lin et al. 2023, Algorithm 1, in float32 torch arithmetic.
// diffusers 0.42.1 schedulers/scheduling_ddpm.py: rescale_zero_terminal_snr.
pub(crate) fn rescale_zero_terminal_snr(betas: &[f32]) -> Vec<f32> {
    let acp = cumprod_f32(&alphas(betas));
    let mut sqrt_acp: Vec<f32> = acp.iter().map(|a| a.sqrt()).collect();
    let (Some(&first), Some(&last)) = (sqrt_acp.first(), sqrt_acp.last()) else {
        return Vec::new();
    };
    let scale = first / (first - last);
    for s in &mut sqrt_acp {
        *s = (*s - last) * scale;
    }
    let abar: Vec<f32> = sqrt_acp.iter().map(|s| s * s).collect();
    let new_alphas = std::iter::once(abar[0]).chain(abar.windows(2).map(|w| w[1] / w[0]));
    new_alphas.map(|a| 1.0f32 - a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(schedule: BetaSchedule, start: f64, end: f64) -> BetaSource {
        BetaSource::Named {
            schedule,
            beta_start: start,
            beta_end: end,
            num_train_timesteps: 1000,
        }
    }

    #[test]
    fn sd_scaled_linear_matches_diffusers_reference() {
        let t = TrainingArrays::build(&named(BetaSchedule::ScaledLinear, 0.00085, 0.012), None)
            .expect("valid");
        assert_eq!(t.betas[0], 0.000_849_999_95_f32);
        assert_eq!(t.betas[999], 0.011_999_999_f32);
        assert_eq!(t.alphas_cumprod[0], 0.99915_f32);
        assert_eq!(t.alphas_cumprod[999], 0.004_660_095_f32);
    }

    #[test]
    fn linear_and_cosine_reference_values() {
        let lin = betas(&named(BetaSchedule::Linear, 1e-4, 0.02));
        assert_eq!(
            [lin[0], lin[1], lin[998], lin[999]],
            [0.0001, 0.000_119_919_92, 0.019_980_08, 0.02]
        );
        let cos = betas(&named(BetaSchedule::SquaredCosCapV2, 1e-4, 0.02));
        assert_eq!(
            [cos[0], cos[1], cos[998], cos[999]],
            [4.128_422_4e-5, 4.614_175e-5, 0.749_999_4, 0.999]
        );
    }

    #[test]
    fn zero_snr_patches_terminal_value() {
        let src = named(BetaSchedule::ScaledLinear, 0.00085, 0.012);
        let keep = TrainingArrays::build(&src, Some(TerminalPatch::KeepZero)).expect("valid");
        assert_eq!(keep.betas[999], 1.0);
        assert_eq!(keep.alphas_cumprod[999], 0.0);
        let tiny = TrainingArrays::build(&src, Some(TerminalPatch::Fp16Tiny)).expect("valid");
        assert_eq!(tiny.alphas_cumprod[999], 5.960_464_5e-8);
    }
}
