//! Noise schedules computed exactly as diffusers 0.42.1 computes them (`__init__` then
//! `set_timesteps`), with model presets and the known upstream quirks reported as warnings.
//!
//! Two entry points: [`get_schedule`], the bare `from_config` + `set_timesteps`, and
//! [`get_pipeline_schedule`], what a preset's pipeline sets on its scheduler. Precedence of
//! configuration layers: class defaults < preset < `config` < a scheduler alias's options <
//! `overrides`. The `set_timesteps` extras (`timesteps`, `sigmas`, `mu`, `strength`) travel in
//! `overrides`. Scheduler names resolve through the one resolver ([`resolve_scheduler`]).

pub mod aliases;
mod betas;
mod catalog;
mod classes;
mod cogvideox;
mod config;
mod consistency;
mod conversions;
mod discrete;
pub mod ecosystem;
mod edm;
mod flow_match;
mod flow_variants;
mod helios;
mod img2img;
mod kdiffusion;
mod lcm;
mod multistep;
mod multistep_inverse;
pub mod pipeline;
pub mod presets;
pub(crate) mod primitives;
mod proteina;
mod resolve;
mod special;
mod ve;
mod vp;
mod vp_variants;

pub use catalog::Family;
pub use config::{ConfigMap, ConfigValue};
pub use pipeline::{
    get_pipeline_call, get_pipeline_schedule, DynamicShift, PipelineArgs, PipelineCall,
};
pub use presets::{list_presets, preset_config, Preset};

use crate::error::{CoreError, Result};
use classes::{SchedulerClass, MAX_STEPS};
use config::Resolved;
use resolve::{Extras, Layer};

/// Timesteps in the dtype diffusers gives them.
#[derive(Debug, Clone, PartialEq)]
pub enum Timesteps {
    /// int64 (DDPM, DDIM, PNDM, DPM-Solver family, UniPC, DEIS, SASolver, LCM, TCD).
    I64(Vec<i64>),
    /// float32 (k-diffusion style schedulers, EDM, flow matching).
    F32(Vec<f32>),
    /// float64 (DPMSolverSDE; KDPM2 / KDPM2Ancestral with Karras, exponential or beta sigmas).
    F64(Vec<f64>),
}

impl Timesteps {
    /// The number of timesteps.
    pub fn len(&self) -> usize {
        match self {
            Timesteps::I64(v) => v.len(),
            Timesteps::F32(v) => v.len(),
            Timesteps::F64(v) => v.len(),
        }
    }

    /// Whether there are no timesteps.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Timestep `i` widened to float64.
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        match self {
            Timesteps::I64(v) => v.get(i).map(|&x| x as f64),
            Timesteps::F32(v) => v.get(i).map(|&x| f64::from(x)),
            Timesteps::F64(v) => v.get(i).copied(),
        }
    }

    /// The numpy dtype name of the timesteps.
    pub fn dtype(&self) -> &'static str {
        match self {
            Timesteps::I64(_) => "int64",
            Timesteps::F32(_) => "float32",
            Timesteps::F64(_) => "float64",
        }
    }
}

/// A float array in the dtype diffusers gives it (`sigmas`, `betas`, `alphas_cumprod`).
#[derive(Debug, Clone, PartialEq)]
pub enum FloatArray {
    /// float32 (almost every array).
    F32(Vec<f32>),
    /// float64 (for example FlowMapEuler and multi-stage Helios sigmas, CogVideoX training arrays
    /// from `scaled_linear` betas).
    F64(Vec<f64>),
}

impl FloatArray {
    /// The number of values.
    pub fn len(&self) -> usize {
        match self {
            FloatArray::F32(v) => v.len(),
            FloatArray::F64(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` widened to float64.
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        match self {
            FloatArray::F32(v) => v.get(i).map(|&x| f64::from(x)),
            FloatArray::F64(v) => v.get(i).copied(),
        }
    }

    /// The numpy dtype name of the values.
    pub fn dtype(&self) -> &'static str {
        match self {
            FloatArray::F32(_) => "float32",
            FloatArray::F64(_) => "float64",
        }
    }

    /// The values when they are float32.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            FloatArray::F32(v) => Some(v),
            FloatArray::F64(_) => None,
        }
    }
}

impl Default for FloatArray {
    /// An empty float32 array (EDM and flow matching have no betas).
    fn default() -> Self {
        FloatArray::F32(Vec::new())
    }
}

impl From<Vec<f32>> for FloatArray {
    fn from(values: Vec<f32>) -> Self {
        FloatArray::F32(values)
    }
}

impl From<Vec<f64>> for FloatArray {
    fn from(values: Vec<f64>) -> Self {
        FloatArray::F64(values)
    }
}

/// What an img2img pipeline does with the schedule for a given `strength`.
#[derive(Debug, Clone, PartialEq)]
pub struct Img2Img {
    /// The requested strength in `[0, 1]`.
    pub strength: f64,
    /// The index into `timesteps` where denoising starts (`t_start * order`); the pipeline calls
    /// `scheduler.set_begin_index(begin_index)`.
    pub begin_index: usize,
    /// How many timesteps the pipeline iterates (`len(timesteps) - begin_index`).
    pub num_timesteps: usize,
    /// The timestep the init image is noised to (`timesteps[begin_index]`), `None` when the
    /// truncated schedule is empty (strength 0).
    pub start_timestep: Option<f64>,
}

/// A schedule as the diffusers scheduler holds it after `set_timesteps`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The scheduler name as requested.
    pub scheduler: String,
    /// `scheduler.num_inference_steps` after `set_timesteps`.
    pub num_inference_steps: usize,
    /// `scheduler.timesteps`.
    pub timesteps: Timesteps,
    /// `scheduler.sigmas` in diffusers' dtype, `None` where the scheduler has none.
    /// KarrasVeScheduler reports its `schedule` attribute here (the values its pipeline reads as
    /// sigma); ScoreSdeVeScheduler the sigmas of `set_sigmas(num_inference_steps)`, which its
    /// pipeline calls after `set_timesteps`.
    pub sigmas: Option<FloatArray>,
    /// `scheduler.init_noise_sigma` as a Python float. Schedulers without that attribute
    /// (flow matching and others whose pipelines do not scale their latents): 1.0.
    pub init_noise_sigma: f64,
    /// `scheduler.betas` in diffusers' dtype (empty where the scheduler has none).
    pub betas: FloatArray,
    /// `scheduler.alphas_cumprod` in diffusers' dtype (empty where the scheduler has none).
    pub alphas_cumprod: FloatArray,
    /// The fully resolved configuration (what `scheduler.config` holds).
    pub config: ConfigMap,
    /// Upstream quirks that shaped this schedule, and ignored inputs.
    pub warnings: Vec<String>,
    /// `scheduler.order` (2 for Heun, KDPM2, KDPM2Ancestral, DPM-SDE, FlowMatchHeun).
    pub order: usize,
    /// The img2img truncation, present when `strength` was given.
    pub img2img: Option<Img2Img>,
}

/// What a family builder returns before the common fields are attached.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub(crate) timesteps: Timesteps,
    pub(crate) sigmas: Option<FloatArray>,
    pub(crate) init_noise_sigma: f64,
    pub(crate) betas: FloatArray,
    pub(crate) alphas_cumprod: FloatArray,
    pub(crate) num_inference_steps: usize,
}

/// Everything a family builder reads.
pub(crate) struct Request<'a> {
    pub(crate) class: SchedulerClass,
    pub(crate) cfg: &'a mut Resolved,
    pub(crate) steps: Option<usize>,
    pub(crate) extras: &'a Extras,
}

/// Computes the schedule of `scheduler` (a diffusers class name, an alias or `"<tool>:<name>"`,
/// resolved case-insensitively): `Scheduler.from_config(config)` then `set_timesteps`.
///
/// `num_inference_steps` may be `None` only where custom `timesteps` / `sigmas` in `overrides`
/// give the length. `preset` names a model family (see [`list_presets`]); its pipeline's own
/// conventions are [`get_pipeline_schedule`]'s.
pub fn get_schedule(
    scheduler: &str,
    num_inference_steps: Option<usize>,
    preset: Option<&str>,
    config: &ConfigMap,
    overrides: &ConfigMap,
) -> Result<Schedule> {
    let target = resolve_target(scheduler)?;
    if let Target::Ecosystem(name) = &target {
        // Ecosystem schedules ("<tool>:<name>") live in their own module; this is the one
        // dispatch. Their model tables also know presets sigmaserve has no pipeline for.
        let preset = preset.map(|p| presets::find(p).map_or(p, |found| found.name));
        return ecosystem::get_schedule_diffusers(
            name,
            num_inference_steps,
            preset,
            config,
            overrides,
        );
    }
    let preset = preset.map(presets::find).transpose()?;
    compute(
        &target,
        num_inference_steps,
        preset,
        config,
        overrides,
        None,
    )
}

/// A scheduler name after resolution.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// A diffusers class, with the options of the alias that named it (empty otherwise).
    Class(SchedulerClass, ConfigMap),
    /// An ecosystem schedule, canonical `"<tool>:<name>"`.
    Ecosystem(String),
}

/// A scheduler name as the resolver reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedScheduler {
    /// The canonical name: a diffusers class name or `"<tool>:<name>"`.
    pub name: String,
    /// `"diffusers"`, or the tool whose name this was (`"a1111"`, `"comfyui"`, `"kdiffusion"`,
    /// `"ays"`).
    pub tool: &'static str,
    /// The config options an alias selects (`use_karras_sigmas`, ...); empty otherwise.
    pub options: ConfigMap,
}

/// Resolves a scheduler name: a diffusers class (exact, or ignoring case, separators and the
/// `Scheduler` suffix), an A1111 sampler name or ComfyUI sampler/scheduler pair, or an
/// ecosystem schedule `"<tool>:<name>"`. An unknown name is an error suggesting the nearest.
pub fn resolve_scheduler(name: &str) -> Result<ResolvedScheduler> {
    Ok(match resolve_target(name)? {
        Target::Class(class, options) => {
            let tool = match aliases::find(name) {
                Ok(Some(alias)) if SchedulerClass::from_name(name).is_none() => alias.tool,
                _ => "diffusers",
            };
            ResolvedScheduler {
                name: class.name().to_owned(),
                tool,
                options,
            }
        }
        Target::Ecosystem(canonical) => {
            let tool = ecosystem::TOOLS
                .iter()
                .copied()
                .find(|t| canonical.starts_with(&format!("{t}:")))
                .unwrap_or("ecosystem");
            ResolvedScheduler {
                name: canonical,
                tool,
                options: ConfigMap::new(),
            }
        }
    })
}

pub(crate) fn resolve_target(name: &str) -> Result<Target> {
    if let Some(class) = SchedulerClass::from_name(name) {
        return Ok(Target::Class(class, ConfigMap::new()));
    }
    if name.contains(':') {
        return ecosystem::canonical_name(name).map(Target::Ecosystem);
    }
    let key = crate::names::fold(name);
    let by_fold = SchedulerClass::ALL.into_iter().find(|c| {
        let full = crate::names::fold(c.name());
        full == key || full.strip_suffix("scheduler") == Some(key.as_str())
    });
    if let Some(class) = by_fold {
        return Ok(Target::Class(class, ConfigMap::new()));
    }
    if let Some(alias) = aliases::find(name)? {
        let class = SchedulerClass::from_name(alias.scheduler).ok_or_else(|| {
            CoreError::invalid(
                "scheduler",
                format!("alias of unknown class {}", alias.scheduler),
            )
        })?;
        return Ok(Target::Class(class, alias.options.clone()));
    }
    if let Some((excluded, reason)) = catalog::EXCLUDED.iter().find(|(n, _)| {
        let full = crate::names::fold(n);
        full == key || full.strip_suffix("scheduler") == Some(key.as_str())
    }) {
        return Err(CoreError::invalid(
            "scheduler",
            format!(
                "`{excluded}` is a diffusers scheduler that sigmaserve does not reproduce: {reason}"
            ),
        ));
    }
    let mut candidates: Vec<&str> = list_schedulers();
    candidates.extend(aliases::names());
    let ecosystem_names = ecosystem::all_names();
    candidates.extend(ecosystem_names.iter().map(String::as_str));
    let nearest = crate::names::suggest(name, &candidates);
    let mut message = format!("unknown scheduler {name:?}");
    if !nearest.is_empty() {
        let quoted: Vec<String> = nearest.iter().map(|n| format!("{n:?}")).collect();
        message.push_str(&format!("; did you mean {}?", quoted.join(" or ")));
    }
    message.push_str(&format!(
        " A scheduler is a diffusers class name, an A1111 sampler name (\"DPM++ 2M Karras\"), a \
         ComfyUI sampler/scheduler pair (\"dpmpp_2m karras\") or an ecosystem schedule \
         \"<tool>:<name>\" with tool one of {:?}; see sigmaserve.catalog().",
        ecosystem::TOOLS
    ));
    Err(CoreError::invalid("scheduler", message))
}

/// Resolves the configuration of a diffusers class, applies a pipeline's conventions when one
/// is given, and builds the schedule.
pub(crate) fn compute(
    target: &Target,
    num_inference_steps: Option<usize>,
    preset: Option<&presets::Preset>,
    config: &ConfigMap,
    overrides: &ConfigMap,
    pipeline: Option<&pipeline::Pipeline<'_>>,
) -> Result<Schedule> {
    let Target::Class(class, alias_options) = target else {
        return Err(CoreError::invalid("scheduler", "not a diffusers class"));
    };
    let class = *class;
    if let Some(n) = num_inference_steps {
        check_steps(n)?;
    }
    let mut warnings = Vec::new();
    let Resolution {
        mut resolved,
        extras,
        ..
    } = resolve_request(
        class,
        alias_options,
        num_inference_steps,
        preset,
        config,
        overrides,
        pipeline,
        &mut warnings,
    )?;
    let request = Request {
        class,
        cfg: &mut resolved,
        steps: num_inference_steps,
        extras: &extras,
    };
    let built = build(request, &mut warnings)?;
    if resolved.flag("rescale_betas_zero_snr")? {
        warnings.push(betas::ZERO_SNR_PRECISION.into());
    }
    let order = class_order(class);
    let img2img = match extras.strength {
        Some(strength) if !matches!(class, SchedulerClass::Lcm | SchedulerClass::Tcd) => Some(
            img2img::truncate(class, &built, num_inference_steps, strength, order),
        ),
        _ => None,
    };
    Ok(Schedule {
        scheduler: class.name().to_owned(),
        num_inference_steps: built.num_inference_steps,
        timesteps: built.timesteps,
        sigmas: built.sigmas,
        init_noise_sigma: built.init_noise_sigma,
        betas: built.betas,
        alphas_cumprod: built.alphas_cumprod,
        config: resolved.map,
        warnings,
        order,
        img2img,
    })
}

/// A request's configuration resolved for its class, with the `set_timesteps` extras (the
/// pipeline's among them) and how the pipeline derived its `mu`.
pub(crate) struct Resolution {
    pub(crate) resolved: Resolved,
    pub(crate) extras: Extras,
    pub(crate) shift: Option<pipeline::DynamicShift>,
}

/// Layers the configuration (class defaults < preset < `config` < alias options < overrides),
/// checks that the class fits the preset's model and applies the pipeline's conventions.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resolve_request(
    class: SchedulerClass,
    alias_options: &ConfigMap,
    num_inference_steps: Option<usize>,
    preset: Option<&presets::Preset>,
    config: &ConfigMap,
    overrides: &ConfigMap,
    pipeline: Option<&pipeline::Pipeline<'_>>,
    warnings: &mut Vec<String>,
) -> Result<Resolution> {
    let preset_map = match preset {
        Some(p) => Some(presets::preset_map(p.name)?),
        None => None,
    };
    let mut layers: Vec<(&ConfigMap, Layer)> = Vec::with_capacity(4);
    if let Some(map) = preset_map {
        layers.push((map, Layer::Config));
    }
    layers.push((config, Layer::Config));
    if !alias_options.is_empty() {
        layers.push((alias_options, Layer::Config));
    }
    layers.push((overrides, Layer::Overrides));
    let (resolved, mut extras) = resolve::resolve(class, &layers, warnings)?;
    if let Some(preset) = preset {
        if !pipeline::fits(preset.model, class, &resolved)? {
            // A VP schedule on a flow-matching model is the silent "157.4" of issue 14: the
            // pipeline would run it. A flow or EDM scheduler ignores a VP preset's betas (the
            // result is its own class defaults), which a warning makes plain.
            let why = pipeline::misfit(preset, class);
            if pipeline.is_some() && preset.model == presets::ModelKind::Flow {
                return Err(CoreError::invalid("scheduler", why));
            }
            warnings.push(format!(
                "{why}. This is the bare from_config + set_timesteps result, not a schedule the \
                 model runs"
            ));
        }
    }
    let shift = match pipeline {
        Some(pipeline) => pipeline::apply(pipeline, &resolved, num_inference_steps, &mut extras)?,
        None => None,
    };
    Ok(Resolution {
        resolved,
        extras,
        shift,
    })
}

/// The names of the diffusers scheduler classes [`get_schedule`] accepts.
pub fn list_schedulers() -> Vec<&'static str> {
    SchedulerClass::ALL.iter().map(|c| c.name()).collect()
}

/// The family of a supported diffusers scheduler class (case-sensitive name).
pub fn scheduler_family(name: &str) -> Option<Family> {
    SchedulerClass::from_name(name).map(SchedulerClass::family)
}

/// `(class name, family name)` for every supported diffusers scheduler class, in
/// [`list_schedulers`] order.
pub fn scheduler_families() -> Vec<(&'static str, &'static str)> {
    SchedulerClass::ALL
        .iter()
        .map(|c| (c.name(), c.family().name()))
        .collect()
}

/// `(family name, description)` of every family, the vocabulary of [`scheduler_families`].
pub fn family_descriptions() -> Vec<(&'static str, &'static str)> {
    Family::ALL
        .iter()
        .map(|f| (f.name(), f.description()))
        .collect()
}

/// `(class name, reason)` for the scheduler classes diffusers 0.42.1 exports that sigmaserve
/// does not reproduce (discrete-token samplers without a continuous noise schedule). With
/// [`list_schedulers`] this accounts for every class `diffusers.schedulers` exports.
pub fn excluded_schedulers() -> Vec<(&'static str, &'static str)> {
    catalog::EXCLUDED.to_vec()
}

fn check_steps(n: usize) -> Result<()> {
    if n < 1 {
        return Err(CoreError::invalid(
            "num_inference_steps",
            "must be at least 1",
        ));
    }
    if n as i64 > MAX_STEPS {
        return Err(CoreError::too_large(
            "num_inference_steps",
            format!("at most {MAX_STEPS}, got {n}"),
        ));
    }
    Ok(())
}

/// `scheduler.order` (1 for the classes that do not define it, which the pipelines never read).
fn class_order(class: SchedulerClass) -> usize {
    match class {
        SchedulerClass::Heun
        | SchedulerClass::Kdpm2
        | SchedulerClass::Kdpm2Ancestral
        | SchedulerClass::DpmSde
        | SchedulerClass::FlowMatchHeun
        | SchedulerClass::KarrasVe => 2,
        _ => 1,
    }
}

fn build(req: Request<'_>, warnings: &mut Vec<String>) -> Result<Built> {
    use SchedulerClass as C;
    match req.class {
        C::Lms
        | C::Euler
        | C::EulerAncestral
        | C::Heun
        | C::Kdpm2
        | C::Kdpm2Ancestral
        | C::DpmSde => kdiffusion::build(req, warnings),
        C::DpmMultistep | C::DpmSinglestep | C::UniPc | C::Deis | C::SaSolver => {
            multistep::build(req, warnings)
        }
        C::DpmMultistepInverse => multistep_inverse::build(req, warnings),
        C::Ddpm | C::Ddim | C::Pndm | C::DdimParallel | C::DdpmParallel | C::DdimInverse => {
            discrete::build(req, warnings)
        }
        C::CogVideoXDdim | C::CogVideoXDpm => cogvideox::build(req, warnings),
        C::UnClip | C::RePaint | C::Ipndm | C::DdpmWuerstchen | C::ScoreSdeVp => {
            vp_variants::build(req, warnings)
        }
        C::Lcm | C::Tcd => lcm::build(req, warnings),
        C::CmStochasticIterative | C::Scm | C::ConsistencyDecoder => {
            consistency::build(req, warnings)
        }
        C::EdmEuler | C::EdmDpm | C::CosineDpm => edm::build(req, warnings),
        C::ScoreSdeVe | C::KarrasVe => ve::build(req, warnings),
        C::FlowMatchEuler | C::FlowMatchHeun | C::FlowMatchLcm | C::LtxEulerAncestralRf => {
            flow_match::build(req, warnings)
        }
        C::FlowMapEuler | C::MiniMaxH3 | C::Piflow => flow_variants::build(req, warnings),
        C::Helios | C::HeliosDmd => helios::build(req, warnings),
        C::Rfd4Proteina => proteina::build(req, warnings),
    }
}

/// Rejects an extra that this class's `set_timesteps` does not take (`strength` and
/// `fix_quirks` are sigmaserve's own and always accepted).
pub(crate) fn reject_extras(
    class: SchedulerClass,
    extras: &Extras,
    allowed: &[&str],
) -> Result<()> {
    for name in extras.given() {
        if !allowed.contains(&name) {
            return Err(CoreError::invalid(
                name,
                format!("{}.set_timesteps does not accept `{name}`", class.name()),
            ));
        }
    }
    Ok(())
}

/// The step count when no custom array gives it.
pub(crate) fn required_steps(steps: Option<usize>) -> Result<usize> {
    steps.ok_or_else(|| {
        CoreError::invalid(
            "num_inference_steps",
            "is required unless custom `timesteps` or `sigmas` give the length",
        )
    })
}

/// With custom arrays, `num_inference_steps` must be absent or equal to the implied length.
pub(crate) fn steps_from_custom(
    steps: Option<usize>,
    implied: usize,
    source: &str,
) -> Result<usize> {
    match steps {
        Some(n) if n != implied => Err(CoreError::invalid(
            "num_inference_steps",
            format!("{n} disagrees with the {implied} steps that `{source}` implies; pass None"),
        )),
        _ => Ok(implied),
    }
}
