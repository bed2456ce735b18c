//! Schedules outside diffusers, by the names the ecosystem tools give them:
//! ComfyUI (`comfyui:<name>`), AUTOMATIC1111 (`a1111:<name>`), k-diffusion
//! (`kdiffusion:<name>`) and NVIDIA's Align Your Steps tables (`ays:<model>`).
//!
//! Each result carries the sigmas, the timesteps the tool feeds its model and the factor the
//! tool multiplies its initial noise by (`init_noise_sigma`), so seeded initial latents can
//! be reproduced tool by tool. Entry point: [`get_schedule`].

mod algorithms;
mod bridge;
mod model;
mod options;
mod special;
mod tools;

pub use bridge::get_schedule_diffusers;
pub use options::{Options, Value};

use crate::error::{CoreError, Result};

/// The tools whose schedules are reproduced.
pub const TOOLS: [&str; 4] = ["comfyui", "a1111", "kdiffusion", "ays"];

/// Other spellings of the tool names (case, `-`, `_` and spaces never matter).
const TOOL_ALIASES: &[(&str, &str)] = &[
    ("comfy", "comfyui"),
    ("automatic1111", "a1111"),
    ("webui", "a1111"),
    ("sd-webui", "a1111"),
    ("forge", "a1111"),
    ("k-diffusion", "kdiffusion"),
    ("align_your_steps", "ays"),
];

/// The tool called `tool` (case-insensitive, aliases accepted; an unknown tool suggests the
/// nearest).
pub fn canonical_tool(tool: &str) -> Result<&'static str> {
    crate::names::resolve("scheduler", "tool", tool.trim(), &TOOLS, TOOL_ALIASES)
}

/// Schedule names per tool (canonical spelling; matching is case-insensitive).
pub fn names(tool: &str) -> Result<&'static [&'static str]> {
    Ok(match canonical_tool(tool)? {
        "comfyui" => tools::COMFY_NAMES,
        "a1111" => tools::A1111_NAMES,
        "kdiffusion" => tools::KDIFF_NAMES,
        _ => tools::AYS_NAMES,
    })
}

/// Every ecosystem schedule as `"<tool>:<name>"`.
pub fn all_names() -> Vec<String> {
    TOOLS
        .iter()
        .flat_map(|tool| {
            names(tool)
                .unwrap_or(&[])
                .iter()
                .map(move |name| format!("{tool}:{name}"))
        })
        .collect()
}

/// The canonical tool and schedule of `"<tool>:<name>"` (an unknown tool or schedule suggests
/// the nearest).
fn canonical(tool: &str, name: &str) -> Result<(&'static str, &'static str)> {
    let tool = canonical_tool(tool)?;
    let valid = names(tool)?;
    let name = name.trim();
    let folded = crate::names::fold(name);
    let canon = crate::names::lookup(name, valid, &[])
        .or_else(|| tools::alias(tool, &name.to_ascii_lowercase()))
        .or_else(|| {
            valid
                .iter()
                .copied()
                .find(|v| crate::names::fold(v) == folded)
        });
    match canon {
        Some(c) => Ok((tool, c)),
        None => {
            let prefixed: Vec<String> = valid.iter().map(|n| format!("{tool}:{n}")).collect();
            let candidates: Vec<&str> = valid.to_vec();
            let err = crate::names::unknown(
                "scheduler",
                &format!("{tool} schedule"),
                name,
                &candidates,
                &prefixed.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            Err(err)
        }
    }
}

/// The canonical `"<tool>:<name>"` spelling of an ecosystem schedule name.
pub fn canonical_name(scheduler: &str) -> Result<String> {
    let (tool, name) = scheduler.split_once(':').ok_or_else(|| {
        CoreError::invalid(
            "scheduler",
            format!("{scheduler:?} is not of the form \"<tool>:<name>\""),
        )
    })?;
    let (tool, name) = canonical(tool, name)?;
    Ok(format!("{tool}:{name}"))
}

/// How the tool turns unit Gaussian noise into its starting latent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitNoise {
    /// `x = noise · σ_0 (+ latent)`.
    Sigma,
    /// `x = noise · √(1 + σ_0²) (+ latent)`: ComfyUI at full denoise, A1111 with the SGM noise
    /// multiplier.
    Sqrt1p,
    /// Flow models: `x = σ_0 · noise + (1 − σ_0) · latent` (a mix, not a pure scale; for an
    /// empty latent it is `σ_0 · noise`).
    Flow,
}

impl InitNoise {
    /// The lower-case name (`"sigma"`, `"sqrt1p"`, `"flow"`).
    pub fn name(self) -> &'static str {
        match self {
            InitNoise::Sigma => "sigma",
            InitNoise::Sqrt1p => "sqrt1p",
            InitNoise::Flow => "flow",
        }
    }
}

/// A schedule as an ecosystem tool builds it.
#[derive(Debug, Clone, PartialEq)]
pub struct EcosystemSchedule {
    /// `"<tool>:<name>"` in canonical spelling.
    pub scheduler: String,
    /// The descending sigmas the sampler walks (float32, as the tool holds them).
    pub sigmas: Vec<f32>,
    /// What the tool feeds the model at each of `sigmas[..len−1]` (ComfyUI: quantised integer
    /// timesteps for discrete models; A1111 / k-diffusion: interpolated fractional ones).
    pub timesteps: Vec<f32>,
    /// Discrete models only: the quantised (ComfyUI) mapping of the same sigmas.
    pub timesteps_quantized: Option<Vec<f32>>,
    /// Discrete models only: the interpolated (k-diffusion / A1111) mapping of the same sigmas.
    pub timesteps_interpolated: Option<Vec<f32>>,
    /// The factor the tool multiplies its unit noise by for the first step.
    pub init_noise_sigma: f64,
    /// How that factor is applied.
    pub init_noise: InitNoise,
    /// The steps the schedule actually has (`sigmas.len() − 1`; can differ from the request,
    /// e.g. ComfyUI `ddim_uniform` or `beta`).
    pub num_inference_steps: usize,
    /// Training betas of the model table (discrete models).
    pub betas: Option<Vec<f32>>,
    /// Training ᾱ of the model table (discrete models).
    pub alphas_cumprod: Option<Vec<f32>>,
    /// The model table's σ range `(σ_min, σ_max)`.
    pub model_sigma_range: (f64, f64),
    /// The model-sampling kind (`"discrete"`, `"edm"`, `"v"`, `"flow"`, `"flux"`).
    pub model_sampling: String,
    /// Every option the schedule used with its effective value (defaults included).
    pub config: Options,
    /// Things worth knowing (step-count quirks, flow mixing, ignored presets).
    pub warnings: Vec<String>,
}

/// Splits `"<tool>:<name>"` into a lower-case tool and name; `None` if `scheduler` is not an
/// ecosystem name (no colon).
pub fn split_name(scheduler: &str) -> Option<(String, String)> {
    let (tool, name) = scheduler.split_once(':')?;
    Some((
        tool.trim().to_ascii_lowercase(),
        name.trim().to_ascii_lowercase(),
    ))
}

/// Builds the schedule `tool:name` for `num_inference_steps` steps.
///
/// `preset` picks the model table (`"sd15"`, `"sdxl"`, `"sd21-v"`, `"sd3"`, `"flux-dev"`,
/// `"flux-schnell"`, `"auraflow"`, `"svd"`, `"playground25"`, ...; `None` is the SD table).
/// `config` is a diffusers scheduler config (keys this schedule does not use are ignored);
/// `overrides` are options (model: `beta_start`, `beta_end`, `num_train_timesteps`,
/// `beta_schedule`, `zsnr`, `shift`, `multiplier`, `mu`, `width`, `height`, ...; schedule:
/// `sigma_min`, `sigma_max`, `rho`, `denoise`, `sampler`, ...); an override this schedule
/// does not use is an error naming it. Precedence: preset < config < overrides.
pub fn get_schedule(
    tool: &str,
    name: &str,
    num_inference_steps: usize,
    preset: Option<&str>,
    config: &Options,
    overrides: &Options,
) -> Result<EcosystemSchedule> {
    if !(1..=10_000).contains(&num_inference_steps) {
        return Err(CoreError::invalid(
            "num_inference_steps",
            format!("must be between 1 and 10000, got {num_inference_steps}"),
        ));
    }
    let (tool, canon) = canonical(tool, name)?;
    let reader = options::Reader::new(config, overrides);
    let req = tools::Request {
        name: canon,
        steps: num_inference_steps,
        preset: preset.map(|p| p.trim().to_ascii_lowercase()),
        opts: &reader,
    };
    let mut out = match tool {
        "comfyui" => tools::comfyui(&req)?,
        "a1111" => tools::a1111(&req)?,
        "kdiffusion" => tools::kdiffusion(&req)?,
        _ => tools::ays(&req)?,
    };
    out.scheduler = format!("{tool}:{canon}");
    tools::override_init_noise(&reader, &mut out)?;
    out.config = reader.finish(&out.scheduler)?;
    if out.sigmas.iter().any(|s| !s.is_finite()) {
        let why = if out.model_sigma_range.1.is_finite() {
            ""
        } else {
            // A1111: zero terminal SNR pins the last ᾱ to 4.9e-8, float16's smallest
            // subnormal after the downcast, and (1 - ᾱ)/ᾱ overflows float16.
            " (the model table's sigma_max is infinite, as A1111's is with zero terminal SNR \
             on a float16 alphas_cumprod)"
        };
        return Err(CoreError::invalid(
            "scheduler",
            format!(
                "{} produced non-finite sigmas for these options{why}",
                out.scheduler
            ),
        ));
    }
    Ok(out)
}

/// [`get_schedule`] with the combined `"<tool>:<name>"` spelling.
pub fn get_schedule_by_name(
    scheduler: &str,
    num_inference_steps: usize,
    preset: Option<&str>,
    config: &Options,
    overrides: &Options,
) -> Result<EcosystemSchedule> {
    let (tool, name) = split_name(scheduler).ok_or_else(|| {
        CoreError::invalid(
            "scheduler",
            format!("{scheduler:?} is not of the form \"<tool>:<name>\""),
        )
    })?;
    get_schedule(&tool, &name, num_inference_steps, preset, config, overrides)
}

#[cfg(test)]
mod tests;
