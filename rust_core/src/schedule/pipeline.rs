//! What a preset's diffusers pipeline sets on its scheduler: the schedule a user's pipeline
//! really runs for a step count and an image (or video) size, not only the bare
//! `set_timesteps`.
//!
//! Each [`Convention`] reproduces the arguments one pipeline's `__call__` passes to
//! `retrieve_timesteps` / `set_timesteps` in diffusers 0.42.1 (`src/diffusers/pipelines/`):
//! FluxPipeline's own `sigmas` and its `mu` from the packed sequence length, SD3's `mu` when
//! the config enables dynamic shifting, HunyuanVideo's and LTX's sigmas, Mochi's
//! linear-quadratic schedule. The scheduler then computes exactly as [`super::get_schedule`]
//! does.

use super::catalog::Family;
use super::classes::{SchedulerClass, MAX_STEPS};
use super::config::{ConfigMap, ConfigValue, Resolved};
use super::presets::{self, Convention, ModelKind, Preset};
use super::primitives::np_linspace;
use super::resolve::Extras;
use super::{check_steps, compute, resolve_request, resolve_target, Schedule, Target};
use crate::error::{CoreError, Result};

/// Steps when neither the request nor a preset gives them (the pipelines' usual default).
pub const FALLBACK_STEPS: usize = 50;

/// The scheduler used when neither the request, the config's `_class_name` nor a preset names
/// one (the version-1 default).
pub const FALLBACK_SCHEDULER: &str = "EulerDiscreteScheduler";

/// The largest image side and frame count accepted (far beyond any model; keeps the sequence
/// lengths finite and meaningful).
const MAX_SIDE: usize = 1 << 20;

/// A schedule request at the pipeline level (every field optional, as in the Python API).
#[derive(Debug, Clone, Copy)]
pub struct PipelineArgs<'a> {
    /// A scheduler name (class, alias or `"<tool>:<name>"`); `None`: the config's `_class_name`,
    /// else the preset pipeline's default scheduler, else [`FALLBACK_SCHEDULER`].
    pub scheduler: Option<&'a str>,
    /// The steps; `None`: from custom `timesteps`/`sigmas`, else the preset pipeline's default.
    pub num_inference_steps: Option<usize>,
    /// The preset (model family and pipeline).
    pub preset: Option<&'a str>,
    /// Image width in pixels (`None`: the pipeline's default).
    pub width: Option<usize>,
    /// Image height in pixels.
    pub height: Option<usize>,
    /// Video frames (`None`: the pipeline's default).
    pub num_frames: Option<usize>,
    /// `true`: what the pipeline passes to its scheduler; `false`: the bare `set_timesteps`.
    pub pipeline: bool,
    /// A diffusers scheduler config (`pipe.scheduler.config`).
    pub config: &'a ConfigMap,
    /// Config keys and `set_timesteps` extras.
    pub overrides: &'a ConfigMap,
}

/// The size a pipeline runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) num_frames: Option<usize>,
}

/// What [`super::compute`] needs to apply a preset's pipeline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pipeline<'a> {
    pub(crate) preset: &'a Preset,
    pub(crate) size: Size,
}

/// The schedule of [`PipelineArgs`] (see the module documentation).
pub fn get_pipeline_schedule(args: &PipelineArgs<'_>) -> Result<Schedule> {
    let Prepared {
        preset,
        target,
        steps,
    } = prepare(args)?;
    if let Target::Ecosystem(ref scheduler) = target {
        let overrides = with_size(args.overrides, args.width, args.height, args.num_frames);
        return super::ecosystem::get_schedule_diffusers(
            scheduler,
            steps,
            preset.map(|p| p.name),
            args.config,
            &overrides,
        );
    }
    let pipeline = match (preset, args.pipeline) {
        (Some(preset), true) => Some(Pipeline {
            preset,
            size: pipeline_size(args, preset)?,
        }),
        _ => None,
    };
    compute(
        &target,
        steps,
        preset,
        args.config,
        args.overrides,
        pipeline.as_ref(),
    )
}

/// What a preset pipeline's `__call__` passes to its scheduler's `set_timesteps`, with the
/// numbers it derives them from: the explanation of [`get_pipeline_schedule`]'s result.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineCall {
    /// The preset (canonical name).
    pub preset: &'static str,
    /// The pipeline class.
    pub pipeline: &'static str,
    /// The scheduler that runs: a diffusers class name, or `"<tool>:<name>"` for an ecosystem
    /// schedule (which no pipeline passes anything to).
    pub scheduler: String,
    /// The convention's catalog name (`"flux_sigmas_mu"`, ...; `"ecosystem"` for ecosystem
    /// schedules).
    pub convention: &'static str,
    /// The steps (`None` where custom arrays give them).
    pub num_inference_steps: Option<usize>,
    /// The size the pipeline runs at (its defaults filled in).
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Video frames (`None` for image pipelines).
    pub num_frames: Option<usize>,
    /// The `sigmas` passed to `set_timesteps` (`None`: the scheduler's own spacing).
    pub sigmas: Option<Vec<f64>>,
    /// The `mu` passed to `set_timesteps`.
    pub mu: Option<f64>,
    /// How the pipeline computed `mu` (`None` where it passes none, or the request gave it).
    pub shift: Option<DynamicShift>,
}

/// [`PipelineCall`] of a request at the pipeline level; `args.preset` is required and
/// `args.pipeline` is not read. Errors are [`get_pipeline_schedule`]'s.
pub fn get_pipeline_call(args: &PipelineArgs<'_>) -> Result<PipelineCall> {
    let Prepared {
        preset,
        target,
        steps,
    } = prepare(args)?;
    let preset =
        preset.ok_or_else(|| CoreError::invalid("preset", "a pipeline call needs a preset"))?;
    let size = pipeline_size(args, preset)?;
    let mut call = PipelineCall {
        preset: preset.name,
        pipeline: preset.pipeline,
        scheduler: String::new(),
        convention: "ecosystem",
        num_inference_steps: steps,
        width: size.width,
        height: size.height,
        num_frames: size.num_frames,
        sigmas: None,
        mu: None,
        shift: None,
    };
    let (class, alias_options) = match &target {
        Target::Ecosystem(name) => {
            call.scheduler = name.clone();
            return Ok(call);
        }
        Target::Class(class, options) => (*class, options),
    };
    if let Some(n) = steps {
        check_steps(n)?;
    }
    let pipeline = Pipeline { preset, size };
    let resolution = resolve_request(
        class,
        alias_options,
        steps,
        Some(preset),
        args.config,
        args.overrides,
        Some(&pipeline),
        &mut Vec::new(),
    )?;
    call.scheduler = class.name().to_owned();
    call.convention = preset.convention.name();
    call.sigmas = resolution.extras.sigmas;
    call.mu = resolution.extras.mu;
    call.shift = resolution.shift;
    Ok(call)
}

/// What both entry points read off [`PipelineArgs`] first.
struct Prepared {
    preset: Option<&'static Preset>,
    target: Target,
    steps: Option<usize>,
}

fn prepare(args: &PipelineArgs<'_>) -> Result<Prepared> {
    let preset = args.preset.map(presets::find).transpose()?;
    let name = scheduler_name(args, preset)?;
    let target = resolve_target(name)?;
    // Checked even where no pipeline reads it: a bad size is an error everywhere.
    size(args, preset)?;
    let custom = custom_arrays(args.overrides);
    let steps = match args.num_inference_steps {
        Some(n) => Some(n),
        None if custom => None,
        None => Some(preset.map_or(FALLBACK_STEPS, |p| p.steps)),
    };
    Ok(Prepared {
        preset,
        target,
        steps,
    })
}

/// The size a preset's pipeline runs at: the request's, its defaults filled in.
fn pipeline_size(args: &PipelineArgs<'_>, preset: &Preset) -> Result<Size> {
    Ok(size(args, Some(preset))?.unwrap_or(Size {
        width: preset.width,
        height: preset.height,
        num_frames: preset.num_frames,
    }))
}

/// The scheduler the request names, or the config's `_class_name`, or the preset's default.
fn scheduler_name<'a>(args: &PipelineArgs<'a>, preset: Option<&'static Preset>) -> Result<&'a str> {
    if let Some(name) = args.scheduler {
        return Ok(name);
    }
    match args.config.get("_class_name") {
        Some(ConfigValue::Str(name)) => return Ok(name.as_str()),
        Some(ConfigValue::Null) | None => {}
        Some(other) => {
            return Err(CoreError::invalid(
                "config",
                format!("_class_name must be a str, got {}", other.type_name()),
            ))
        }
    }
    Ok(preset.map_or(FALLBACK_SCHEDULER, |p| p.class_name))
}

/// The requested size with the preset's defaults filled in; `None` without a preset.
fn size(args: &PipelineArgs<'_>, preset: Option<&Preset>) -> Result<Option<Size>> {
    for (field, value) in [
        ("width", args.width),
        ("height", args.height),
        ("num_frames", args.num_frames),
    ] {
        if let Some(v) = value {
            if v == 0 || v > MAX_SIDE {
                return Err(CoreError::invalid(
                    field,
                    format!("must be in 1..={MAX_SIDE}, got {v}"),
                ));
            }
        }
    }
    let Some(preset) = preset else {
        return Ok(None);
    };
    if args.num_frames.is_some() && !preset.is_video() {
        return Err(CoreError::invalid(
            "num_frames",
            format!(
                "preset {:?} is an image model ({}); num_frames applies to video presets",
                preset.name, preset.pipeline
            ),
        ));
    }
    Ok(Some(Size {
        width: args.width.unwrap_or(preset.width),
        height: args.height.unwrap_or(preset.height),
        num_frames: args.num_frames.or(preset.num_frames),
    }))
}

fn custom_arrays(overrides: &ConfigMap) -> bool {
    ["timesteps", "sigmas"]
        .iter()
        .any(|k| !matches!(overrides.get(k), None | Some(ConfigValue::Null)))
}

/// Ecosystem schedules take the image size as options (Flux's resolution-dependent `mu`).
fn with_size(
    overrides: &ConfigMap,
    width: Option<usize>,
    height: Option<usize>,
    num_frames: Option<usize>,
) -> ConfigMap {
    let mut out = overrides.clone();
    for (key, value) in [
        ("width", width),
        ("height", height),
        ("num_frames", num_frames),
    ] {
        if let Some(v) = value {
            out.insert(key, ConfigValue::Int(v as i64));
        }
    }
    out
}

/// Whether a scheduler of `class` (with its resolved config) can run a `model`: flow models
/// take flow-matching schedulers and the DPM-Solver family with `use_flow_sigmas`; VP models
/// every VP family. EDM schedules fit neither (they belong to EDM-trained models).
pub(crate) fn fits(model: ModelKind, class: SchedulerClass, cfg: &Resolved) -> Result<bool> {
    let family = class.family();
    Ok(match model {
        ModelKind::Flow => {
            family == Family::FlowMatch
                || (family == Family::Multistep && cfg.flag("use_flow_sigmas")?)
        }
        ModelKind::Vp => match family {
            Family::Alpha | Family::Sigma | Family::Consistency => true,
            Family::Multistep => !cfg.flag("use_flow_sigmas")?,
            Family::FlowMatch | Family::Edm => false,
        },
    })
}

/// Why a scheduler does not fit the preset's model.
pub(crate) fn misfit(preset: &Preset, class: SchedulerClass) -> String {
    let model = match preset.model {
        ModelKind::Flow => "a flow-matching model",
        ModelKind::Vp => "a VP (DDPM-trained) model",
    };
    let hint = match preset.model {
        ModelKind::Flow => {
            "use a flow_match scheduler (its default is {default}) or a DPM-Solver-family one with \
             use_flow_sigmas=True"
        }
        ModelKind::Vp => {
            "use an alpha, sigma, multistep or consistency scheduler (its default is {default})"
        }
    };
    format!(
        "{} is a {} scheduler and preset {:?} is {model} ({}); {}",
        class.name(),
        class.family().name(),
        preset.name,
        preset.pipeline,
        hint.replace("{default}", preset.class_name),
    )
}

/// Applies the pipeline's `__call__` conventions to the `set_timesteps` extras (user-given
/// arrays and `mu` win); returns how the pipeline computed the `mu` it passes, if it did.
pub(crate) fn apply(
    pipeline: &Pipeline<'_>,
    cfg: &Resolved,
    steps: Option<usize>,
    extras: &mut Extras,
) -> Result<Option<DynamicShift>> {
    let preset = pipeline.preset;
    let size = pipeline.size;
    let custom = extras.sigmas.is_some() || extras.timesteps.is_some();
    let mut shift = None;
    match preset.convention {
        Convention::Plain => {}
        Convention::Sd3 => {
            if cfg.flag("use_dynamic_shifting")? && extras.mu.is_none() {
                // transformer.config.patch_size = 2 over the latent size.
                let factor = preset.layout.vae_scale_factor;
                let seq = (size.height / factor / 2) * (size.width / factor / 2);
                shift = Some(calculate_shift(seq, cfg, 1.16)?);
            }
        }
        Convention::Flux => {
            if !custom && !cfg.flag("use_flow_sigmas")? {
                let n = pipeline_steps(steps)?;
                extras.sigmas = Some(np_linspace(1.0, 1.0 / n as f64, n));
            }
            if extras.mu.is_none() {
                let patch = preset.layout.vae_scale_factor * 2;
                let seq = (size.height / patch) * (size.width / patch);
                shift = Some(calculate_shift(seq, cfg, 1.15)?);
            }
        }
        Convention::Hunyuan => {
            if !custom {
                let n = pipeline_steps(steps)?;
                let mut sigmas = np_linspace(1.0, 0.0, n + 1);
                sigmas.pop();
                extras.sigmas = Some(sigmas);
            }
        }
        Convention::Ltx => {
            if !custom {
                let n = pipeline_steps(steps)?;
                extras.sigmas = Some(np_linspace(1.0, 1.0 / n as f64, n));
            }
            if extras.mu.is_none() {
                let layout = preset.layout;
                let temporal = layout.vae_temporal_factor.unwrap_or(1);
                let frames = size.num_frames.unwrap_or(1);
                let seq = ((frames - 1) / temporal + 1)
                    * (size.height / layout.vae_scale_factor)
                    * (size.width / layout.vae_scale_factor);
                shift = Some(calculate_shift(seq, cfg, 1.15)?);
            }
        }
        Convention::Mochi => {
            if !custom {
                extras.sigmas = Some(linear_quadratic_schedule(pipeline_steps(steps)?, 0.025)?);
            }
        }
    }
    if let Some(derived) = shift {
        extras.mu = Some(derived.mu);
    }
    Ok(shift)
}

fn pipeline_steps(steps: Option<usize>) -> Result<usize> {
    let n = steps.ok_or_else(|| {
        CoreError::invalid(
            "num_inference_steps",
            "is required for this pipeline's schedule",
        )
    })?;
    if n < 1 || n as i64 > MAX_STEPS {
        return Err(CoreError::invalid(
            "num_inference_steps",
            format!("must be in 1..={MAX_STEPS}, got {n}"),
        ));
    }
    Ok(n)
}

/// A config value the pipeline reads with `scheduler.config.get(key, default)`.
fn config_or(cfg: &Resolved, key: &str, default: f64) -> Result<f64> {
    match cfg.map.get(key) {
        None | Some(ConfigValue::Null) => Ok(default),
        Some(v) => v.as_float().ok_or_else(|| {
            CoreError::invalid(key, format!("expected a number, got {}", v.type_name()))
        }),
    }
}

/// The `mu` a pipeline computes with `calculate_shift`, and what it computes it from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DynamicShift {
    /// The sequence length (latent tokens of the image or video).
    pub image_seq_len: usize,
    /// `scheduler.config.base_image_seq_len` (or the pipeline's fallback, 256).
    pub base_image_seq_len: f64,
    /// `scheduler.config.max_image_seq_len` (or 4096).
    pub max_image_seq_len: f64,
    /// `scheduler.config.base_shift` (or 0.5).
    pub base_shift: f64,
    /// `scheduler.config.max_shift` (or the pipeline's fallback: 1.15, SD3 1.16).
    pub max_shift: f64,
    /// `mu`, linear in the sequence length between the two points.
    pub mu: f64,
}

/// `calculate_shift(image_seq_len, base_seq_len, max_seq_len, base_shift, max_shift)` of the
/// pipelines (diffusers 0.42.1 `pipelines/flux/pipeline_flux.py`, copied into SD3, LTX and
/// others): `m = (max_shift - base_shift) / (max_seq - base_seq)`, `b = base_shift - m *
/// base_seq`, `mu = seq * m + b`, all in float64, with the config's values or the pipeline's
/// fallbacks (`max_shift`: 1.15, SD3 1.16).
pub(crate) fn calculate_shift(
    seq: usize,
    cfg: &Resolved,
    max_shift_default: f64,
) -> Result<DynamicShift> {
    let base_seq = config_or(cfg, "base_image_seq_len", 256.0)?;
    let max_seq = config_or(cfg, "max_image_seq_len", 4096.0)?;
    let base_shift = config_or(cfg, "base_shift", 0.5)?;
    let max_shift = config_or(cfg, "max_shift", max_shift_default)?;
    let m = (max_shift - base_shift) / (max_seq - base_seq);
    let b = base_shift - m * base_seq;
    let mu = seq as f64 * m + b;
    if !mu.is_finite() {
        return Err(CoreError::invalid(
            "max_image_seq_len",
            format!("calculate_shift is not finite with base_image_seq_len {base_seq} and max_image_seq_len {max_seq}"),
        ));
    }
    Ok(DynamicShift {
        image_seq_len: seq,
        base_image_seq_len: base_seq,
        max_image_seq_len: max_seq,
        base_shift,
        max_shift,
        mu,
    })
}

/// MochiPipeline's `linear_quadratic_schedule(num_steps, threshold_noise)` (diffusers 0.42.1
/// `pipelines/mochi/pipeline_mochi.py`, from genmoai/models `infer.py`): the first half of the
/// steps linear up to `threshold_noise`, the rest quadratic up to 1, returned as `1 - x`.
/// Python float arithmetic, evaluated in the same order.
pub(crate) fn linear_quadratic_schedule(
    num_steps: usize,
    threshold_noise: f64,
) -> Result<Vec<f64>> {
    let linear_steps = num_steps / 2;
    if linear_steps == 0 {
        // Python divides by linear_steps: ZeroDivisionError.
        return Err(CoreError::invalid(
            "num_inference_steps",
            "MochiPipeline's linear_quadratic_schedule needs at least 2 steps",
        ));
    }
    let ls = linear_steps as f64;
    let n = num_steps as f64;
    let quadratic_steps = (num_steps - linear_steps) as f64;
    let diff = ls - threshold_noise * n;
    let quadratic_coef = diff / (ls * (quadratic_steps * quadratic_steps));
    let linear_coef = threshold_noise / ls - 2.0 * diff / (quadratic_steps * quadratic_steps);
    let constant = quadratic_coef * (ls * ls);
    let mut out = Vec::with_capacity(num_steps);
    for i in 0..linear_steps {
        out.push(1.0 - i as f64 * threshold_noise / ls);
    }
    for i in linear_steps..num_steps {
        let i = i as f64;
        out.push(1.0 - (quadratic_coef * (i * i) + linear_coef * i + constant));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mochi_schedule_runs_from_one_down_to_zero() {
        let s = linear_quadratic_schedule(64, 0.025).expect("64 steps");
        assert_eq!(s.len(), 64);
        assert_eq!(s[0], 1.0);
        assert!(s.windows(2).all(|w| w[1] < w[0]));
        assert!((s[32] - 0.975).abs() < 1e-12, "{}", s[32]);
        assert!(linear_quadratic_schedule(1, 0.025).is_err());
    }

    fn args<'a>(
        scheduler: Option<&'a str>,
        preset: &'a str,
        steps: usize,
        empty: &'a ConfigMap,
    ) -> PipelineArgs<'a> {
        PipelineArgs {
            scheduler,
            num_inference_steps: Some(steps),
            preset: Some(preset),
            width: Some(1024),
            height: Some(768),
            num_frames: None,
            pipeline: true,
            config: empty,
            overrides: empty,
        }
    }

    #[test]
    fn the_call_explains_the_schedule() {
        let empty = ConfigMap::new();
        let flux = args(None, "flux-dev", 4, &empty);
        let call = get_pipeline_call(&flux).expect("flux-dev");
        let shift = call.shift.expect("FluxPipeline computes mu");
        // 1024 x 768 pixels in 16-pixel packed patches: 64 x 48 tokens.
        assert_eq!(shift.image_seq_len, 64 * 48);
        assert_eq!(call.mu, Some(shift.mu));
        assert_eq!(call.sigmas, Some(np_linspace(1.0, 0.25, 4)));
        assert_eq!(
            (call.convention, call.scheduler.as_str()),
            ("flux_sigmas_mu", "FlowMatchEulerDiscreteScheduler")
        );
        // The schedule is the one these arguments give the bare scheduler.
        let mut extras = ConfigMap::new();
        extras.insert("mu", ConfigValue::Float(shift.mu));
        extras.insert(
            "sigmas",
            ConfigValue::FloatList(call.sigmas.clone().unwrap_or_default()),
        );
        let bare = PipelineArgs {
            pipeline: false,
            overrides: &extras,
            ..flux
        };
        let pipeline = get_pipeline_schedule(&flux).expect("pipeline");
        assert_eq!(
            get_pipeline_schedule(&bare).expect("bare").sigmas,
            pipeline.sigmas
        );
        // SD3 passes mu only with dynamic shifting; SD 1.5 passes nothing; ecosystem: nothing.
        let sd3 = get_pipeline_call(&args(None, "sd3", 4, &empty)).expect("sd3");
        assert_eq!((sd3.sigmas, sd3.mu, sd3.shift), (None, None, None));
        let sd15 = get_pipeline_call(&args(Some("euler"), "sd15", 4, &empty)).expect("sd15");
        assert_eq!(
            (sd15.convention, sd15.scheduler.as_str()),
            ("plain", "EulerDiscreteScheduler")
        );
        let comfy = get_pipeline_call(&args(Some("comfyui:karras"), "sd15", 4, &empty));
        assert_eq!(comfy.expect("ecosystem").convention, "ecosystem");
        let none = PipelineArgs {
            preset: None,
            ..flux
        };
        assert_eq!(
            get_pipeline_call(&none).expect_err("no preset").field(),
            "preset"
        );
    }
}
