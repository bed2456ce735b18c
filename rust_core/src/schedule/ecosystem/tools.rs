//! Per-tool front ends: presets → model table, options, the tool's post-processing (denoise,
//! discard-penultimate, img2img) and its initial-noise rule.

use super::super::primitives::r32;
use super::algorithms as alg;
use super::model::{DiscreteParams, Kind, Model};
use super::options::{Reader, Value};
use super::{EcosystemSchedule, InitNoise, Options};
use crate::error::{CoreError, Result};

/// ComfyUI schedule names (`SCHEDULER_HANDLERS` plus the scheduler nodes).
pub(crate) const COMFY_NAMES: &[&str] = &[
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
    "polyexponential",
    "vp",
    "laplace",
    "align_your_steps",
    "sd_turbo",
];
/// AUTOMATIC1111 schedule names (`modules/sd_schedulers.py`).
pub(crate) const A1111_NAMES: &[&str] = &[
    "automatic",
    "uniform",
    "karras",
    "exponential",
    "polyexponential",
    "sgm_uniform",
    "kl_optimal",
    "align_your_steps",
    "simple",
    "normal",
    "ddim",
    "beta",
];
/// k-diffusion schedule functions.
pub(crate) const KDIFF_NAMES: &[&str] =
    &["karras", "exponential", "polyexponential", "vp", "discrete"];
/// Align Your Steps tables.
pub(crate) const AYS_NAMES: &[&str] = &["sd15", "sdxl", "svd"];

/// Alternative spellings (A1111 labels, k-diffusion method names).
pub(crate) fn alias(tool: &str, name: &str) -> Option<&'static str> {
    Some(match (tool, name) {
        ("a1111", "sgmuniform" | "sgm uniform") => "sgm_uniform",
        ("a1111", "kl optimal") => "kl_optimal",
        ("a1111", "align your steps" | "ays") => "align_your_steps",
        ("comfyui", "ays") => "align_your_steps",
        ("kdiffusion", "get_sigmas" | "uniform") => "discrete",
        ("ays", "sd1" | "sd1.5" | "sd15") => "sd15",
        _ => return None,
    })
}

/// One request, as the front ends see it.
pub(crate) struct Request<'a> {
    pub name: &'static str,
    pub steps: usize,
    pub preset: Option<String>,
    pub opts: &'a Reader<'a>,
}

/// The model a preset and the options describe.
#[derive(Debug, Clone)]
enum Spec {
    Discrete(DiscreteParams),
    Edm { sigma_min: f64, sigma_max: f64 },
    ContinuousV { sigma_min: f64, sigma_max: f64 },
    Flow { shift: f64, multiplier: f64 },
    Flux { mu: f64 },
}

fn sd(beta_start: f64, beta_end: f64, schedule: &str) -> Spec {
    Spec::Discrete(DiscreteParams {
        beta_start,
        beta_end,
        num_train_timesteps: 1000,
        beta_schedule: schedule.into(),
        zsnr: false,
    })
}

/// Model tables per preset (ComfyUI `supported_models.py` sampling settings).
fn preset_spec(preset: Option<&str>) -> Result<Spec> {
    Ok(match preset.unwrap_or("sd15") {
        "sd15" | "sd1" | "sd14" | "sd1.5" | "sd2" | "sd20" | "sd21" | "sd21-base" | "sd2-base"
        | "sd21-v" | "sd2-v" | "sd21v" | "sdxl" | "sdxl-base" | "sdxl-refiner" | "ssd-1b"
        | "sdxl-turbo" | "sd-turbo" | "sdxl-zsnr" => sd(0.00085, 0.012, "scaled_linear"),
        "x4-upscaler" | "sd-x4-upscaler" => sd(1e-4, 2e-2, "scaled_linear"),
        "pixart" | "pixart-alpha" | "pixart-sigma" => sd(1e-4, 2e-2, "linear"),
        "hunyuandit" => sd(0.00085, 0.018, "scaled_linear"),
        "svd" | "sv3d" => Spec::Edm {
            sigma_min: 0.002,
            sigma_max: 700.0,
        },
        "playground25" | "playground-v2.5" | "playground-v25" => Spec::Edm {
            sigma_min: 0.002,
            sigma_max: 80.0,
        },
        "stable-audio" => Spec::ContinuousV {
            sigma_min: 0.03,
            sigma_max: 500.0,
        },
        "sd3" | "sd35" | "sd3.5" | "sd3-medium" | "sd35-medium" | "sd35-large" | "hidream" => {
            Spec::Flow {
                shift: 3.0,
                multiplier: 1000.0,
            }
        }
        "auraflow" => Spec::Flow {
            shift: 1.73,
            multiplier: 1.0,
        },
        "flux-schnell" | "chroma" => Spec::Flow {
            shift: 1.0,
            multiplier: 1.0,
        },
        "mochi" => Spec::Flow {
            shift: 6.0,
            multiplier: 1.0,
        },
        "wan" | "wan21" | "wan22" | "wan2.1" | "wan2.2" => Spec::Flow {
            shift: 8.0,
            multiplier: 1000.0,
        },
        "hunyuanvideo" | "hunyuan-video" => Spec::Flow {
            shift: 7.0,
            multiplier: 1000.0,
        },
        "flux" | "flux-dev" => Spec::Flux { mu: 1.15 },
        other => {
            return Err(crate::names::unknown(
                "preset",
                "preset for the ecosystem schedules",
                other,
                ECOSYSTEM_PRESETS,
                ECOSYSTEM_PRESETS,
            ))
        }
    })
}

/// The presets [`preset_spec`] knows (its match arms), for suggestions.
pub(crate) const ECOSYSTEM_PRESETS: &[&str] = &[
    "sd15",
    "sd1",
    "sd14",
    "sd1.5",
    "sd2",
    "sd20",
    "sd21",
    "sd21-base",
    "sd2-base",
    "sd21-v",
    "sd2-v",
    "sd21v",
    "sdxl",
    "sdxl-base",
    "sdxl-refiner",
    "ssd-1b",
    "sdxl-turbo",
    "sd-turbo",
    "sdxl-zsnr",
    "x4-upscaler",
    "sd-x4-upscaler",
    "pixart",
    "pixart-alpha",
    "pixart-sigma",
    "hunyuandit",
    "svd",
    "sv3d",
    "playground25",
    "playground-v2.5",
    "playground-v25",
    "stable-audio",
    "sd3",
    "sd35",
    "sd3.5",
    "sd3-medium",
    "sd35-medium",
    "sd35-large",
    "hidream",
    "auraflow",
    "flux-schnell",
    "chroma",
    "mochi",
    "wan",
    "wan21",
    "wan22",
    "wan2.1",
    "wan2.2",
    "hunyuanvideo",
    "hunyuan-video",
    "flux",
    "flux-dev",
];

/// Whether the preset is a v-prediction or zero-terminal-SNR SDXL variant.
fn preset_zsnr(preset: Option<&str>) -> bool {
    matches!(preset, Some("sdxl-zsnr"))
}

/// Resolves the model spec: preset, then `model_sampling` and the model options.
fn resolve_spec(req: &Request<'_>) -> Result<Spec> {
    let o = req.opts;
    let mut spec = preset_spec(req.preset.as_deref())?;
    if let Some(kind) = o.str("model_sampling")? {
        spec = match kind.as_str() {
            "discrete" | "eps" | "v_prediction" => match spec {
                Spec::Discrete(p) => Spec::Discrete(p),
                _ => sd(0.00085, 0.012, "scaled_linear"),
            },
            "edm" => Spec::Edm {
                sigma_min: 0.002,
                sigma_max: 120.0,
            },
            "v" | "continuous_v" => Spec::ContinuousV {
                sigma_min: 0.03,
                sigma_max: 500.0,
            },
            "flow" => Spec::Flow {
                shift: 3.0,
                multiplier: 1000.0,
            },
            "flux" => Spec::Flux { mu: 1.15 },
            other => {
                return Err(CoreError::invalid(
                    "model_sampling",
                    format!("unknown {other:?}; expected discrete, edm, v, flow or flux"),
                ))
            }
        };
    }
    o.ignore("prediction_type");
    // The size of a pipeline-level request (`get_schedule(..., width, height, num_frames)`):
    // only Flux's resolution-dependent mu reads it; every other model's schedule is the same
    // at any size, as in the pipelines.
    if !matches!(spec, Spec::Flux { .. }) {
        o.ignore("width");
        o.ignore("height");
    }
    o.ignore("num_frames");
    Ok(match spec {
        Spec::Discrete(mut p) => {
            p.beta_start = o.f64_or("beta_start", p.beta_start)?;
            p.beta_end = o.f64_or("beta_end", p.beta_end)?;
            p.num_train_timesteps = o
                .usize("num_train_timesteps")?
                .unwrap_or(p.num_train_timesteps);
            o.record(
                "num_train_timesteps",
                Value::Int(p.num_train_timesteps as i64),
            );
            if let Some(s) = o.str("beta_schedule")? {
                p.beta_schedule = s;
            }
            o.record("beta_schedule", Value::Str(p.beta_schedule.clone()));
            let zdef = preset_zsnr(req.preset.as_deref());
            let z1 = o.bool_or("rescale_betas_zero_snr", zdef)?;
            p.zsnr = o.bool_or("zsnr", z1)?;
            Spec::Discrete(p)
        }
        Spec::Edm {
            sigma_min,
            sigma_max,
        } => Spec::Edm {
            sigma_min: o.f64_or("model_sigma_min", sigma_min)?,
            sigma_max: o.f64_or("model_sigma_max", sigma_max)?,
        },
        Spec::ContinuousV {
            sigma_min,
            sigma_max,
        } => Spec::ContinuousV {
            sigma_min: o.f64_or("model_sigma_min", sigma_min)?,
            sigma_max: o.f64_or("model_sigma_max", sigma_max)?,
        },
        Spec::Flow { shift, multiplier } => Spec::Flow {
            shift: o.f64_or("shift", shift)?,
            multiplier: o.f64_or("multiplier", multiplier)?,
        },
        Spec::Flux { mu } => {
            // diffusers' Flux config carries `shift` (its own static shift, not ComfyUI's μ).
            if o.overridden("shift") {
                return Err(CoreError::invalid(
                    "shift",
                    "Flux takes the exponent `mu` (or `width`/`height`), not `shift`",
                ));
            }
            o.ignore("shift");
            let (w, h) = (o.f64("width")?, o.f64("height")?);
            let mu = match (o.f64("mu")?, w, h) {
                (Some(mu), _, _) => mu,
                (None, Some(w), Some(h)) => {
                    let base = o.f64_or("base_shift", 0.5)?;
                    let max = o.f64_or("max_shift", 1.15)?;
                    // ComfyUI ModelSamplingFlux node: tokens = W·H/256, linear in tokens.
                    let m = (max - base) / (4096.0 - 256.0);
                    (w * h / 256.0) * m + (base - m * 256.0)
                }
                (None, None, None) => mu,
                _ => {
                    return Err(CoreError::invalid(
                        if w.is_none() { "width" } else { "height" },
                        "Flux's resolution-dependent mu needs both width and height",
                    ))
                }
            };
            o.record("mu", Value::Float(mu));
            Spec::Flux { mu }
        }
    })
}

/// ComfyUI-precision model table.
fn comfy_model(spec: &Spec) -> Result<Model> {
    match spec {
        Spec::Discrete(p) => Model::comfy_discrete(p),
        Spec::Edm {
            sigma_min,
            sigma_max,
        } => Model::comfy_continuous(Kind::Edm, *sigma_min, *sigma_max),
        Spec::ContinuousV {
            sigma_min,
            sigma_max,
        } => Model::comfy_continuous(Kind::ContinuousV, *sigma_min, *sigma_max),
        Spec::Flow { shift, multiplier } => Model::comfy_flow(Kind::Flow {
            shift: *shift,
            multiplier: *multiplier,
        }),
        Spec::Flux { mu } => Model::comfy_flow(Kind::Flux { mu: *mu }),
    }
}

/// k-diffusion / A1111-precision model table (discrete); other kinds use ComfyUI's tables.
fn kdiff_model(spec: &Spec, downcast: bool) -> Result<Model> {
    match spec {
        Spec::Discrete(p) => Model::kdiff_discrete(p, downcast),
        other => comfy_model(other),
    }
}

fn kind_name(m: &Model) -> &'static str {
    match m.kind {
        Kind::Discrete => "discrete",
        Kind::Edm => "edm",
        Kind::ContinuousV => "v",
        Kind::Flow { .. } => "flow",
        Kind::Flux { .. } => "flux",
    }
}

fn positive(field: &str, v: f64) -> Result<f64> {
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(CoreError::invalid(
            field,
            format!("must be finite and > 0, got {v}"),
        ))
    }
}

/// The σ range a range-taking scheduler uses: the model's ends unless overridden.
fn sigma_range(o: &Reader<'_>, model: &Model) -> Result<(f64, f64)> {
    let smin = positive(
        "sigma_min",
        o.f64_or("sigma_min", f64::from(model.sigma_min()))?,
    )?;
    let smax = positive(
        "sigma_max",
        o.f64_or("sigma_max", f64::from(model.sigma_max()))?,
    )?;
    if smax <= smin {
        return Err(CoreError::invalid(
            "sigma_max",
            format!("must be greater than sigma_min ({smin}), got {smax}"),
        ));
    }
    Ok((smin, smax))
}

fn rho(o: &Reader<'_>, default: f64) -> Result<f64> {
    positive("rho", o.f64_or("rho", default)?)
}

fn alpha_beta(o: &Reader<'_>, ka: &str, kb: &str) -> Result<(f64, f64)> {
    Ok((
        positive(ka, o.f64_or(ka, 0.6)?)?,
        positive(kb, o.f64_or(kb, 0.6)?)?,
    ))
}

/// The AYS tables (NVIDIA's published 11-point schedules). SD1.5/SDXL values are σ(t) of
/// the SD table at the published timesteps, at the precision ComfyUI ships them.
fn ays_table(model: &str) -> &'static [f64] {
    match model {
        "sdxl" => &[
            14.6146412293,
            6.3184485287,
            3.7681790315,
            2.1811480769,
            1.3405244945,
            0.8620721141,
            0.5550693289,
            0.3798540708,
            0.2332364134,
            0.1114188177,
            0.0291671582,
        ],
        "svd" => &[
            700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002,
        ],
        _ => &[
            14.6146412293,
            6.4745760956,
            3.8636745985,
            2.6946151520,
            1.8841921177,
            1.3943805092,
            0.9642583904,
            0.6523686016,
            0.3977456272,
            0.1515232662,
            0.0291671582,
        ],
    }
}

/// AUTOMATIC1111's 3-decimal AYS tables (`sd_schedulers.py`).
fn ays_table_a1111(sdxl: bool) -> &'static [f64] {
    if sdxl {
        &[
            14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029,
        ]
    } else {
        &[
            14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029,
        ]
    }
}

fn is_sdxl(preset: Option<&str>) -> bool {
    preset.is_some_and(|p| p.starts_with("sdxl") || p == "ssd-1b")
}

fn base(
    model: &Model,
    sigmas: Vec<f32>,
    timesteps: Vec<f32>,
    init: InitNoise,
    f: f64,
) -> EcosystemSchedule {
    let discrete = model.kind == Kind::Discrete;
    let evaluated = &sigmas[..sigmas.len().saturating_sub(1)];
    EcosystemSchedule {
        scheduler: String::new(),
        num_inference_steps: sigmas.len().saturating_sub(1),
        timesteps_quantized: discrete.then(|| {
            evaluated
                .iter()
                .map(|&s| model.quantized_t(s) as f32)
                .collect()
        }),
        timesteps_interpolated: discrete.then(|| {
            evaluated
                .iter()
                .map(|&s| model.kd_sigma_to_t(s, false))
                .collect()
        }),
        sigmas,
        timesteps,
        init_noise_sigma: f,
        init_noise: init,
        betas: model.betas.clone(),
        alphas_cumprod: model.alphas_cumprod.clone(),
        model_sigma_range: (f64::from(model.sigma_min()), f64::from(model.sigma_max())),
        model_sampling: kind_name(model).into(),
        config: Options::new(),
        warnings: Vec::new(),
    }
}

/// `√(1 + σ²)` in float32, as torch computes it from the f32 σ_0.
fn sqrt1p(s: f32) -> f64 {
    f64::from((1.0f32 + s * s).sqrt())
}

fn first(sigmas: &[f32], field: &str) -> Result<f32> {
    sigmas
        .first()
        .copied()
        .ok_or_else(|| CoreError::invalid(field, "leaves no sigmas to sample"))
}

fn flow_warning(out: &mut EcosystemSchedule) {
    if out.init_noise == InitNoise::Flow {
        out.warnings.push(
            "flow model: the starting latent is sigma_0*noise + (1 - sigma_0)*latent \
             (a mix, not a scale); init_noise_sigma is the noise factor sigma_0"
                .into(),
        );
    }
}

/// The precision limit of a zero-terminal-SNR table, named whenever the rescale applies
/// (`comfy`: ComfyUI's float64 rescale; otherwise A1111's float32 one on alphas_cumprod).
fn zsnr_warning(spec: &Spec, comfy: bool, out: &mut EcosystemSchedule) {
    if !matches!(spec, Spec::Discrete(p) if p.zsnr) {
        return;
    }
    out.warnings.push(if comfy {
        "zero terminal SNR: ComfyUI rescales the table in float64, as here; its smallest \
         sigmas come from 1 - alphas_bar, a cancellation that magnifies rounding about \
         1000-fold but stays below float32 resolution in float64, so the table matches \
         ComfyUI's float32 values"
            .into()
    } else {
        "zero terminal SNR: A1111 rescales alphas_cumprod in float32; the smallest sigmas come \
         from 1 - alphas_cumprod, a cancellation that magnifies the 1-ulp rounding of torch's \
         float32 sqrt (not correctly rounded on every CPU; sigmaserve's is) to up to about \
         2e-5 relative there"
            .into()
    });
}

fn steps_warning(out: &mut EcosystemSchedule, requested: usize) {
    if out.num_inference_steps != requested {
        out.warnings.push(format!(
            "the schedule has {} steps for num_inference_steps={requested}",
            out.num_inference_steps
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// ComfyUI

const COMFY_DISCARD: &[&str] = &["dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"];

fn comfy_sigmas(name: &str, model: &Model, n: usize, o: &Reader<'_>) -> Result<Vec<f32>> {
    Ok(match name {
        "simple" => alg::simple(model, n),
        "sgm_uniform" => alg::comfy_normal(model, n, true),
        "normal" => alg::comfy_normal(model, n, false),
        "ddim_uniform" => alg::ddim_uniform(model, n, true),
        "karras" => {
            let (a, b) = sigma_range(o, model)?;
            alg::karras(n, a, b, rho(o, 7.0)?)
        }
        "exponential" => {
            let (a, b) = sigma_range(o, model)?;
            alg::exponential(n, a, b)
        }
        "polyexponential" => {
            let (a, b) = sigma_range(o, model)?;
            alg::polyexponential(n, a, b, rho(o, 1.0)?)
        }
        "kl_optimal" => {
            if n < 2 {
                return Err(CoreError::invalid(
                    "num_inference_steps",
                    "comfyui:kl_optimal needs at least 2 steps (ComfyUI divides by steps - 1)",
                ));
            }
            let (a, b) = sigma_range(o, model)?;
            alg::comfy_kl_optimal(n, a, b)
        }
        "laplace" => {
            if n < 2 {
                return Err(CoreError::invalid(
                    "num_inference_steps",
                    "comfyui:laplace needs at least 2 steps (it returns N sigmas, no trailing 0)",
                ));
            }
            let (a, b) = sigma_range(o, model)?;
            let mu = o.f64_or("mu", 0.0)?;
            let beta = positive("beta", o.f64_or("beta", 0.5)?)?;
            alg::laplace(n, a, b, mu, beta)
        }
        "vp" => alg::vp(
            n,
            o.f64_or("beta_d", 19.9)?,
            o.f64_or("beta_min", 0.1)?,
            positive("eps_s", o.f64_or("eps_s", 1e-3)?)?,
            true,
        ),
        "beta" => {
            let (a, b) = alpha_beta(o, "alpha", "beta")?;
            alg::comfy_beta(model, n, a, b)
        }
        "linear_quadratic" => {
            let thr = o.f64_or("threshold_noise", 0.025)?;
            let ls = o.usize("linear_steps")?;
            if n > 1 && ls == Some(0) {
                return Err(CoreError::invalid("linear_steps", "must be at least 1"));
            }
            alg::linear_quadratic(n, model.sigma_max(), thr, ls)
        }
        _ => return Err(CoreError::invalid("scheduler", format!("comfyui:{name}"))),
    })
}

pub(crate) fn comfyui(req: &Request<'_>) -> Result<EcosystemSchedule> {
    let o = req.opts;
    let spec = resolve_spec(req)?;
    let model = comfy_model(&spec)?;
    let n = req.steps;
    let denoise = o.f64_or("denoise", 1.0)?;
    if denoise <= 0.0 {
        return Err(CoreError::invalid(
            "denoise",
            format!("must be > 0 (ComfyUI returns no sigmas at {denoise})"),
        ));
    }
    let mut warnings = Vec::new();
    // KSampler(Advanced) inputs, valid with every schedule: read up front so that one
    // without effect here is accepted (and named in the warnings), never "not an option".
    let sampler = o.str("sampler")?;
    let discard = o.bool_or(
        "discard_penultimate_sigma",
        sampler
            .as_deref()
            .is_some_and(|s| COMFY_DISCARD.contains(&s)),
    )?;
    let last_step = o.usize("last_step")?;
    let force_full_denoise = o.bool_or("force_full_denoise", false)?;
    let start_step = o.usize("start_step")?;
    if discard && matches!(req.name, "align_your_steps" | "sd_turbo") {
        warnings.push(format!(
            "discarding the penultimate sigma has no effect on comfyui:{}: its scheduler node \
             feeds SamplerCustom, which samples the sigmas as given",
            req.name
        ));
    }
    let mut sigmas = match req.name {
        "align_your_steps" => {
            let mt = match o.str("model_type")? {
                Some(m) => m,
                None if is_sdxl(req.preset.as_deref()) => "sdxl".into(),
                None if matches!(spec, Spec::Edm { .. }) => "svd".into(),
                None => "sd1".into(),
            };
            let table = match mt.as_str() {
                "sd1" | "sd15" => ays_table("sd15"),
                "sdxl" => ays_table("sdxl"),
                "svd" => ays_table("svd"),
                other => {
                    return Err(CoreError::invalid(
                        "model_type",
                        format!("unknown {other:?}; expected SD1, SDXL or SVD"),
                    ))
                }
            };
            // The node runs round(N·denoise) steps of the N-step schedule (Python round).
            let total = if denoise < 1.0 {
                (n as f64 * denoise).round_ties_even() as usize
            } else {
                n
            };
            if total == 0 {
                return Err(CoreError::invalid("denoise", "leaves no steps"));
            }
            alg::ays_comfy(table, n, total)
        }
        "sd_turbo" => {
            if n > 10 {
                return Err(CoreError::invalid(
                    "num_inference_steps",
                    format!("comfyui:sd_turbo takes 1 to 10 steps, got {n}"),
                ));
            }
            let start = 10 - ((10.0 * denoise.min(1.0)) as usize).min(10);
            let ts: Vec<usize> = (0..10).rev().map(|k| k * 100 + 99).collect();
            let take = &ts[start.min(10)..(start + n).min(10)];
            if take.is_empty() {
                return Err(CoreError::invalid("denoise", "leaves no steps"));
            }
            let mut s: Vec<f32> = take.iter().map(|&t| model.comfy_sigma(t as f32)).collect();
            s.push(0.0);
            s
        }
        name => {
            let calc = |steps: usize| -> Result<Vec<f32>> {
                if discard {
                    let mut s = comfy_sigmas(name, &model, steps + 1, o)?;
                    if s.len() >= 2 {
                        s.remove(s.len() - 2);
                    }
                    Ok(s)
                } else {
                    comfy_sigmas(name, &model, steps, o)
                }
            };
            if denoise > 0.9999 {
                calc(n)?
            } else {
                let total = (n as f64 / denoise) as usize;
                if total > 100_000 {
                    return Err(CoreError::invalid(
                        "denoise",
                        format!("{denoise} needs {total} schedule steps, more than 100000"),
                    ));
                }
                let s = calc(total)?;
                s[s.len().saturating_sub(n + 1)..].to_vec()
            }
        }
    };
    // KSamplerAdvanced (comfy/samplers.py KSampler.sample): last_step, with
    // force_full_denoise, truncates; then start_step.
    match last_step.filter(|&last| last < sigmas.len().saturating_sub(1)) {
        Some(last) => {
            sigmas.truncate(last + 1);
            if force_full_denoise {
                if let Some(l) = sigmas.last_mut() {
                    *l = 0.0;
                }
            }
        }
        None if force_full_denoise => warnings.push(
            "force_full_denoise has no effect: it zeroes the last sigma only when last_step \
             ends the schedule early"
                .into(),
        ),
        None => {}
    }
    if let Some(start) = start_step {
        if start >= sigmas.len().saturating_sub(1) {
            return Err(CoreError::invalid(
                "start_step",
                format!(
                    "{start} leaves no steps of {}",
                    sigmas.len().saturating_sub(1)
                ),
            ));
        }
        sigmas.drain(..start);
    }
    let s0 = first(&sigmas, "denoise")?;
    let (init, factor) = if model.is_flow() {
        (InitNoise::Flow, f64::from(s0))
    } else {
        // ComfyUI max_denoise: σ_0 within relative 1e-5 of σ_max, or above it.
        let smax = f64::from(model.sigma_max());
        let s = f64::from(s0);
        let max_denoise = (smax - s).abs() <= 1e-5 * smax.abs().max(s.abs()) || s > smax;
        if max_denoise {
            (InitNoise::Sqrt1p, sqrt1p(s0))
        } else {
            (InitNoise::Sigma, s)
        }
    };
    let eval = &sigmas[..sigmas.len().saturating_sub(1)];
    let ts: Vec<f32> = eval.iter().map(|&s| model.comfy_timestep(s)).collect();
    let mut out = base(&model, sigmas, ts, init, factor);
    warnings.append(&mut out.warnings);
    out.warnings = warnings;
    flow_warning(&mut out);
    zsnr_warning(&spec, true, &mut out);
    if req.name != "laplace" {
        steps_warning(&mut out, n);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// AUTOMATIC1111

/// Sampler label → (automatic scheduler, discard penultimate).
fn a1111_sampler(label: &str) -> Result<(&'static str, bool)> {
    Ok(match label {
        "dpm++ 2m" | "dpm++ sde" | "dpm++ 2s a" | "restart" => ("karras", false),
        "dpm++ 2m sde" | "dpm++ 2m sde heun" => ("exponential", false),
        "dpm++ 3m sde" => ("exponential", true),
        "dpm2" | "dpm2 a" => ("karras", true),
        "euler a" | "euler" | "lms" | "heun" | "dpm fast" | "dpm adaptive" => ("uniform", false),
        other => {
            return Err(CoreError::invalid(
                "sampler",
                format!(
                    "unknown A1111 sampler {other:?}; expected e.g. \"DPM++ 2M\", \"Euler a\", \"DPM2\""
                ),
            ))
        }
    })
}

pub(crate) fn a1111(req: &Request<'_>) -> Result<EcosystemSchedule> {
    let o = req.opts;
    let spec = resolve_spec(req)?;
    if !matches!(spec, Spec::Discrete(_)) {
        return Err(CoreError::invalid(
            "preset",
            "a1111 schedules are reproduced for discrete (SD1.x/SD2.x/SDXL-type) models only",
        ));
    }
    // Every A1111 setting is valid with every scheduler and sampler: all are read here, and
    // one without effect in this combination is named in the warnings.
    let downcast = o.bool_or("use_downcasted_alpha_bar", false)?;
    let model = kdiff_model(&spec, downcast)?;
    let quantize = o.bool_or("enable_quantization", false)?;
    let sampler = o.str("sampler")?;
    let (auto, sampler_discard) = match sampler.as_deref() {
        Some(s) => a1111_sampler(s)?,
        None => ("uniform", false),
    };
    let always_discard = o.bool_or("always_discard_next_to_last_sigma", false)?;
    let discard = sampler_discard || always_discard;
    let mut warnings = Vec::new();
    if always_discard && sampler_discard {
        warnings.push(format!(
            "always_discard_next_to_last_sigma has no effect: sampler {:?} discards the \
             penultimate sigma already",
            sampler.as_deref().unwrap_or_default()
        ));
    }
    let name = if req.name == "automatic" {
        auto
    } else {
        req.name
    };
    // σ range: model ends, or the pre-2022 Karras range, then the non-zero overrides.
    let old = o.bool_or("use_old_karras_scheduler_sigmas", false)?;
    let (mut smin, mut smax) = if old {
        (0.1, 10.0)
    } else {
        (f64::from(model.sigma_min()), f64::from(model.sigma_max()))
    };
    let omin = o.f64_or("sigma_min", 0.0)?;
    let omax = o.f64_or("sigma_max", 0.0)?;
    if omin != 0.0 {
        smin = positive("sigma_min", omin)?;
    }
    if omax != 0.0 {
        smax = positive("sigma_max", omax)?;
    }
    if smax <= smin {
        return Err(CoreError::invalid(
            "sigma_max",
            format!("must be greater than sigma_min ({smin}), got {smax}"),
        ));
    }
    let orho = o.f64_or("rho", 0.0)?;
    let rho_for = |default: f64| if orho != 0.0 { orho } else { default };
    if orho < 0.0 {
        return Err(CoreError::invalid(
            "rho",
            format!("must be >= 0, got {orho}"),
        ));
    }
    let (alpha, beta) = alpha_beta(o, "beta_dist_alpha", "beta_dist_beta")?;
    a1111_unused_settings(o, name, &mut warnings);
    let sdxl = is_sdxl(req.preset.as_deref());
    let schedule = |steps: usize| -> Vec<f32> {
        let s = match name {
            "uniform" => alg::kd_get_sigmas(&model, steps),
            "karras" => alg::karras(steps, smin, smax, rho_for(7.0)),
            "exponential" => alg::exponential(steps, smin, smax),
            "polyexponential" => alg::polyexponential(steps, smin, smax, rho_for(1.0)),
            "sgm_uniform" => alg::a1111_normal(&model, steps, (smin, smax), true, quantize),
            "normal" => alg::a1111_normal(&model, steps, (smin, smax), false, quantize),
            "kl_optimal" => alg::a1111_kl_optimal(steps, smin, smax),
            "align_your_steps" => alg::ays_a1111(ays_table_a1111(sdxl), steps),
            "simple" => alg::simple(&model, steps),
            "ddim" => alg::ddim_uniform(&model, steps, false),
            _ => alg::a1111_beta(steps, smin, smax, alpha, beta),
        };
        if discard && s.len() >= 2 {
            let mut s = s;
            s.remove(s.len() - 2);
            s
        } else {
            s
        }
    };
    let get = |steps: usize| schedule(if discard { steps + 1 } else { steps });
    let n = req.steps;
    let strength = o.f64("denoising_strength")?;
    let fix = o.bool_or("img2img_fix_steps", false)?;
    let sgm = o.bool_or("sgm_noise_multiplier", false)?;
    // sample() applies the SGM multiplier, sample_img2img() the fixed steps.
    if sgm && strength.is_some() {
        warnings.push(
            "sgm_noise_multiplier has no effect in img2img (A1111 scales by sigma_0 there)".into(),
        );
    }
    if fix && o.overridden("img2img_fix_steps") && strength.is_none() {
        warnings.push("img2img_fix_steps has no effect without denoising_strength".into());
    }
    let (sigmas, init, factor) = match strength {
        None => {
            let s = get(n);
            let s0 = first(&s, "num_inference_steps")?;
            if sgm {
                (s, InitNoise::Sqrt1p, sqrt1p(s0))
            } else {
                (s, InitNoise::Sigma, f64::from(s0))
            }
        }
        Some(d) => {
            if !(d > 0.0 && d <= 1.0) {
                return Err(CoreError::invalid(
                    "denoising_strength",
                    format!("must be in (0, 1], got {d}"),
                ));
            }
            let d = d.min(0.999);
            let (steps, t_enc) = if fix {
                ((n as f64 / d) as usize, n - 1)
            } else {
                (n, (d * n as f64) as usize)
            };
            let full = get(steps);
            let from = (steps - t_enc - 1).min(full.len().saturating_sub(1));
            let s = full[from..].to_vec();
            let s0 = first(&s, "denoising_strength")?;
            (s, InitNoise::Sigma, f64::from(s0))
        }
    };
    let eval = &sigmas[..sigmas.len().saturating_sub(1)];
    let ts: Vec<f32> = eval
        .iter()
        .map(|&s| model.kd_sigma_to_t(s, quantize))
        .collect();
    let mut out = base(&model, sigmas, ts, init, factor);
    out.warnings = warnings;
    zsnr_warning(&spec, false, &mut out);
    if strength.is_none() {
        steps_warning(&mut out, n);
    }
    Ok(out)
}

/// Names the A1111 settings the caller set that `scheduler` ignores (A1111 accepts them all:
/// they are global settings). The σ range reaches only the schedulers that take one
/// (`modules/sd_schedulers.py`), ρ only Karras and Polyexponential, the beta parameters only
/// Beta.
fn a1111_unused_settings(o: &Reader<'_>, scheduler: &str, warnings: &mut Vec<String>) {
    let takes_range = !matches!(
        scheduler,
        "uniform" | "simple" | "ddim" | "align_your_steps"
    );
    let used = |key: &str| match key {
        "sigma_min" | "sigma_max" | "use_old_karras_scheduler_sigmas" => takes_range,
        "rho" => matches!(scheduler, "karras" | "polyexponential"),
        _ => scheduler == "beta",
    };
    for key in [
        "sigma_min",
        "sigma_max",
        "use_old_karras_scheduler_sigmas",
        "rho",
        "beta_dist_alpha",
        "beta_dist_beta",
    ] {
        if o.overridden(key) && !used(key) {
            warnings.push(format!(
                "{key} has no effect on the {scheduler} scheduler (A1111 ignores it there)"
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// k-diffusion

pub(crate) fn kdiffusion(req: &Request<'_>) -> Result<EcosystemSchedule> {
    let o = req.opts;
    let n = req.steps;
    let spec = resolve_spec(req)?;
    let model = kdiff_model(&spec, false)?;
    let sigmas = match req.name {
        "karras" => {
            let (a, b) = sigma_range(o, &model)?;
            alg::karras(n, a, b, rho(o, 7.0)?)
        }
        "exponential" => {
            let (a, b) = sigma_range(o, &model)?;
            alg::exponential(n, a, b)
        }
        "polyexponential" => {
            let (a, b) = sigma_range(o, &model)?;
            alg::polyexponential(n, a, b, rho(o, 1.0)?)
        }
        "vp" => alg::vp(
            n,
            o.f64_or("beta_d", 19.9)?,
            o.f64_or("beta_min", 0.1)?,
            positive("eps_s", o.f64_or("eps_s", 1e-3)?)?,
            false,
        ),
        _ => {
            if model.kind != Kind::Discrete {
                return Err(CoreError::invalid(
                    "preset",
                    "kdiffusion:discrete (DiscreteSchedule.get_sigmas) needs a discrete model",
                ));
            }
            alg::kd_get_sigmas(&model, n)
        }
    };
    let quantize = o.bool_or("quantize", false)?;
    let eval = &sigmas[..sigmas.len().saturating_sub(1)];
    let ts: Vec<f32> = eval
        .iter()
        .map(|&s| {
            if model.kind == Kind::Discrete {
                model.kd_sigma_to_t(s, quantize)
            } else {
                model.comfy_timestep(s)
            }
        })
        .collect();
    let s0 = first(&sigmas, "num_inference_steps")?;
    let init = if model.is_flow() {
        InitNoise::Flow
    } else {
        InitNoise::Sigma
    };
    let mut out = base(&model, sigmas, ts, init, f64::from(s0));
    if req.name == "vp" {
        out.warnings.push(
            "vp is a continuous VP schedule; timesteps map its sigmas through the preset's table"
                .into(),
        );
    }
    flow_warning(&mut out);
    zsnr_warning(&spec, false, &mut out);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Align Your Steps

pub(crate) fn ays(req: &Request<'_>) -> Result<EcosystemSchedule> {
    let o = req.opts;
    let n = req.steps;
    let denoise = o.f64_or("denoise", 1.0)?;
    if denoise <= 0.0 {
        return Err(CoreError::invalid(
            "denoise",
            format!("must be > 0, got {denoise}"),
        ));
    }
    let total = if denoise < 1.0 {
        (n as f64 * denoise).round_ties_even() as usize
    } else {
        n
    };
    if total == 0 {
        return Err(CoreError::invalid("denoise", "leaves no steps"));
    }
    let sigmas = alg::ays_comfy(ays_table(req.name), n, total);
    let svd = req.name == "svd";
    let model = if svd {
        Model::comfy_continuous(Kind::Edm, 0.002, 700.0)?
    } else {
        Model::kdiff_discrete(
            &DiscreteParams {
                beta_start: 0.00085,
                beta_end: 0.012,
                num_train_timesteps: 1000,
                beta_schedule: "scaled_linear".into(),
                zsnr: false,
            },
            false,
        )?
    };
    let eval = &sigmas[..sigmas.len().saturating_sub(1)];
    let ts: Vec<f32> = eval
        .iter()
        .map(|&s| {
            if svd {
                0.25 * r32(f64::from(s).ln())
            } else {
                model.kd_sigma_to_t(s, false)
            }
        })
        .collect();
    let s0 = first(&sigmas, "denoise")?;
    let mut out = base(&model, sigmas, ts, InitNoise::Sigma, f64::from(s0));
    if let Some(p) = req.preset.as_deref() {
        let fits = match req.name {
            "sdxl" => is_sdxl(Some(p)),
            "svd" => p == "svd",
            _ => {
                preset_spec(Some(p)).is_ok_and(|s| matches!(s, Spec::Discrete(_)))
                    && !is_sdxl(Some(p))
            }
        };
        if !fits {
            out.warnings.push(format!(
                "ays:{} was tuned for another model than preset {p:?}",
                req.name
            ));
        }
    }
    Ok(out)
}

/// The universal `init_noise` option: force the tool's initial-noise rule.
pub(crate) fn override_init_noise(o: &Reader<'_>, out: &mut EcosystemSchedule) -> Result<()> {
    let Some(mode) = o.str("init_noise")? else {
        o.record("init_noise", Value::Str(out.init_noise.name().into()));
        return Ok(());
    };
    let s0 = out.sigmas.first().copied().unwrap_or(0.0);
    let (m, f) = match mode.as_str() {
        "sigma" => (InitNoise::Sigma, f64::from(s0)),
        "sqrt1p" => (InitNoise::Sqrt1p, sqrt1p(s0)),
        "flow" => (InitNoise::Flow, f64::from(s0)),
        other => {
            return Err(CoreError::invalid(
                "init_noise",
                format!("unknown {other:?}; expected sigma, sqrt1p or flow"),
            ))
        }
    };
    out.init_noise = m;
    out.init_noise_sigma = f;
    Ok(())
}
