//! Model presets: the `scheduler/scheduler_config.json` each model repository ships, as data.
//!
//! A preset supplies the training configuration only. Using preset "sd15" with
//! "EulerDiscreteScheduler" equals `EulerDiscreteScheduler.from_config(sd15_pipe.scheduler.config)`:
//! keys the target class lacks are ignored, and keys the repository's JSON does not set keep the
//! target class's own defaults (diffusers' `_use_default_values` rule).

use std::sync::OnceLock;

use super::config::{ConfigMap, ConfigValue};
use crate::error::{CoreError, Result};

/// A model family whose scheduler configuration sigmaserve ships.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// The preset name used in requests (`"sd15"`, `"sdxl"`, ...).
    pub name: &'static str,
    /// The Hugging Face repository whose `scheduler/scheduler_config.json` this is.
    pub repo: &'static str,
    /// The scheduler class the repository's pipeline uses (`_class_name`).
    pub class_name: &'static str,
    /// Latent channels of the model (4 for SD1/2/XL, 16 for SD3 and Flux).
    pub latent_channels: usize,
    /// Pixels per latent cell along each axis (the VAE scale factor).
    pub vae_scale_factor: usize,
    /// Latent cells per packed patch side (Flux packs 2x2 patches, so its pipelines size
    /// latents from multiples of `vae_scale_factor * pack_factor` pixels); 1 when unpacked.
    pub pack_factor: usize,
    /// The JSON keys of the repository's scheduler config (without `_class_name` and
    /// `_diffusers_version`).
    entries: &'static [(&'static str, P)],
}

/// A preset value (static data).
#[derive(Debug, Clone, Copy, PartialEq)]
enum P {
    Null,
    B(bool),
    I(i64),
    F(f64),
    S(&'static str),
}

impl P {
    fn value(self) -> ConfigValue {
        match self {
            P::Null => ConfigValue::Null,
            P::B(b) => ConfigValue::Bool(b),
            P::I(i) => ConfigValue::Int(i),
            P::F(f) => ConfigValue::Float(f),
            P::S(s) => ConfigValue::Str(s.to_owned()),
        }
    }
}

impl Preset {
    /// The preset's scheduler config as a map (what the repository's JSON holds, including
    /// `_class_name`).
    pub fn config(&self) -> ConfigMap {
        let mut map = ConfigMap::new();
        map.insert("_class_name", ConfigValue::Str(self.class_name.to_owned()));
        for &(key, value) in self.entries {
            map.insert(key, value.value());
        }
        map
    }
}

const SD_BETAS: [(&str, P); 3] = [
    ("beta_end", P::F(0.012)),
    ("beta_schedule", P::S("scaled_linear")),
    ("beta_start", P::F(0.00085)),
];

const SD15: &[(&str, P)] = &[
    SD_BETAS[0],
    SD_BETAS[1],
    SD_BETAS[2],
    ("clip_sample", P::B(false)),
    ("num_train_timesteps", P::I(1000)),
    ("set_alpha_to_one", P::B(false)),
    ("skip_prk_steps", P::B(true)),
    ("steps_offset", P::I(1)),
    ("trained_betas", P::Null),
];

const SD21_BASE: &[(&str, P)] = &[
    SD_BETAS[0],
    SD_BETAS[1],
    SD_BETAS[2],
    ("clip_sample", P::B(false)),
    ("num_train_timesteps", P::I(1000)),
    ("prediction_type", P::S("epsilon")),
    ("set_alpha_to_one", P::B(false)),
    ("skip_prk_steps", P::B(true)),
    ("steps_offset", P::I(1)),
    ("trained_betas", P::Null),
];

const SD21_V: &[(&str, P)] = &[
    SD_BETAS[0],
    SD_BETAS[1],
    SD_BETAS[2],
    ("clip_sample", P::B(false)),
    ("num_train_timesteps", P::I(1000)),
    ("prediction_type", P::S("v_prediction")),
    ("set_alpha_to_one", P::B(false)),
    ("skip_prk_steps", P::B(true)),
    ("steps_offset", P::I(1)),
    ("trained_betas", P::Null),
];

const SDXL: &[(&str, P)] = &[
    SD_BETAS[0],
    SD_BETAS[1],
    SD_BETAS[2],
    ("clip_sample", P::B(false)),
    ("interpolation_type", P::S("linear")),
    ("num_train_timesteps", P::I(1000)),
    ("prediction_type", P::S("epsilon")),
    ("sample_max_value", P::F(1.0)),
    ("set_alpha_to_one", P::B(false)),
    ("skip_prk_steps", P::B(true)),
    ("steps_offset", P::I(1)),
    ("timestep_spacing", P::S("leading")),
    ("trained_betas", P::Null),
    ("use_karras_sigmas", P::B(false)),
];

const SDXL_TURBO: &[(&str, P)] = &[
    SD_BETAS[0],
    SD_BETAS[1],
    SD_BETAS[2],
    ("clip_sample", P::B(false)),
    ("interpolation_type", P::S("linear")),
    ("num_train_timesteps", P::I(1000)),
    ("prediction_type", P::S("epsilon")),
    ("sample_max_value", P::F(1.0)),
    ("set_alpha_to_one", P::B(false)),
    ("skip_prk_steps", P::B(true)),
    ("steps_offset", P::I(1)),
    ("timestep_spacing", P::S("trailing")),
    ("trained_betas", P::Null),
    ("use_karras_sigmas", P::B(false)),
];

const SD3: &[(&str, P)] = &[("num_train_timesteps", P::I(1000)), ("shift", P::F(3.0))];

const SD35: &[(&str, P)] = &[
    ("base_image_seq_len", P::I(256)),
    ("base_shift", P::F(0.5)),
    ("invert_sigmas", P::B(false)),
    ("max_image_seq_len", P::I(4096)),
    ("max_shift", P::F(1.15)),
    ("num_train_timesteps", P::I(1000)),
    ("shift", P::F(3.0)),
    ("shift_terminal", P::Null),
    ("use_beta_sigmas", P::B(false)),
    ("use_dynamic_shifting", P::B(false)),
    ("use_exponential_sigmas", P::B(false)),
    ("use_karras_sigmas", P::B(false)),
];

const FLUX_DEV: &[(&str, P)] = &[
    ("base_image_seq_len", P::I(256)),
    ("base_shift", P::F(0.5)),
    ("max_image_seq_len", P::I(4096)),
    ("max_shift", P::F(1.15)),
    ("num_train_timesteps", P::I(1000)),
    ("shift", P::F(3.0)),
    ("use_dynamic_shifting", P::B(true)),
];

const FLUX_SCHNELL: &[(&str, P)] = &[
    ("base_image_seq_len", P::I(256)),
    ("base_shift", P::F(0.5)),
    ("max_image_seq_len", P::I(4096)),
    ("max_shift", P::F(1.15)),
    ("num_train_timesteps", P::I(1000)),
    ("shift", P::F(1.0)),
    ("use_dynamic_shifting", P::B(false)),
];

const fn preset(
    name: &'static str,
    repo: &'static str,
    class_name: &'static str,
    latent_channels: usize,
    entries: &'static [(&'static str, P)],
) -> Preset {
    Preset {
        name,
        repo,
        class_name,
        latent_channels,
        vae_scale_factor: 8,
        pack_factor: 1,
        entries,
    }
}

/// A preset whose pipeline packs its latents in 2x2 patches (Flux).
const fn packed(preset: Preset) -> Preset {
    Preset {
        pack_factor: 2,
        ..preset
    }
}

const PRESETS: [Preset; 9] = [
    preset(
        "sd15",
        "runwayml/stable-diffusion-v1-5",
        "PNDMScheduler",
        4,
        SD15,
    ),
    preset(
        "sd21",
        "stabilityai/stable-diffusion-2-1-base",
        "PNDMScheduler",
        4,
        SD21_BASE,
    ),
    preset(
        "sd21-v",
        "stabilityai/stable-diffusion-2-1",
        "DDIMScheduler",
        4,
        SD21_V,
    ),
    preset(
        "sdxl",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "EulerDiscreteScheduler",
        4,
        SDXL,
    ),
    preset(
        "sdxl-turbo",
        "stabilityai/sdxl-turbo",
        "EulerAncestralDiscreteScheduler",
        4,
        SDXL_TURBO,
    ),
    preset(
        "sd3",
        "stabilityai/stable-diffusion-3-medium-diffusers",
        "FlowMatchEulerDiscreteScheduler",
        16,
        SD3,
    ),
    preset(
        "sd35",
        "stabilityai/stable-diffusion-3.5-large",
        "FlowMatchEulerDiscreteScheduler",
        16,
        SD35,
    ),
    packed(preset(
        "flux-dev",
        "black-forest-labs/FLUX.1-dev",
        "FlowMatchEulerDiscreteScheduler",
        16,
        FLUX_DEV,
    )),
    packed(preset(
        "flux-schnell",
        "black-forest-labs/FLUX.1-schnell",
        "FlowMatchEulerDiscreteScheduler",
        16,
        FLUX_SCHNELL,
    )),
];

/// The preset used when a request names none.
pub const DEFAULT_PRESET: &str = "sd15";

/// How a model family's pipeline shapes its initial latents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatentFormat {
    /// Latent channels.
    pub channels: usize,
    /// Pixels per latent cell along each axis.
    pub vae_scale_factor: usize,
    /// Latent cells per packed patch side (1: unpacked).
    pub pack_factor: usize,
}

impl LatentFormat {
    /// The `(B, C, H, W)` noise the pipeline draws for an image of `height` x `width` pixels
    /// (diffusers 0.42.1 `StableDiffusionPipeline.prepare_latents`: `size // vae_scale_factor`;
    /// `FluxPipeline.prepare_latents`: `2 * (size // (vae_scale_factor * 2))`). Sizes must be
    /// multiples of the VAE factor (field `width` / `height`).
    pub fn shape(&self, batch: usize, height: usize, width: usize) -> Result<Vec<usize>> {
        let step = self.vae_scale_factor * self.pack_factor;
        for (field, value) in [("width", width), ("height", height)] {
            if value % self.vae_scale_factor != 0 {
                return Err(CoreError::invalid(
                    field,
                    format!(
                        "must be a multiple of {}, got {value}",
                        self.vae_scale_factor
                    ),
                ));
            }
            if value < step {
                return Err(CoreError::invalid(
                    field,
                    format!("must be at least {step} pixels, got {value}"),
                ));
            }
        }
        Ok(vec![
            batch,
            self.channels,
            self.pack_factor * (height / step),
            self.pack_factor * (width / step),
        ])
    }
}

impl Preset {
    /// The preset's latent format.
    pub fn latent_format(&self) -> LatentFormat {
        LatentFormat {
            channels: self.latent_channels,
            vae_scale_factor: self.vae_scale_factor,
            pack_factor: self.pack_factor,
        }
    }
}

/// The latent format of preset `name`.
pub fn latent_format(name: &str) -> Result<LatentFormat> {
    preset_map(name)?;
    PRESETS
        .iter()
        .find(|p| p.name == name)
        .map(Preset::latent_format)
        .ok_or_else(|| CoreError::invalid("preset", format!("unknown preset {name:?}")))
}

/// Every preset, in a stable order.
pub fn list_presets() -> &'static [Preset] {
    &PRESETS
}

/// The scheduler config of preset `name` (exact, case-sensitive name).
pub fn preset_config(name: &str) -> Result<ConfigMap> {
    preset_map(name).cloned()
}

/// The preset's config map, built once per process.
pub(crate) fn preset_map(name: &str) -> Result<&'static ConfigMap> {
    static MAPS: OnceLock<Vec<ConfigMap>> = OnceLock::new();
    let maps = MAPS.get_or_init(|| PRESETS.iter().map(Preset::config).collect());
    PRESETS
        .iter()
        .position(|p| p.name == name)
        .and_then(|i| maps.get(i))
        .ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            CoreError::invalid(
                "preset",
                format!("unknown preset {name:?}; expected one of {names:?}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_resolve_by_name() {
        assert_eq!(list_presets().len(), 9);
        let sdxl = preset_config("sdxl").expect("known");
        assert_eq!(
            sdxl.get("timestep_spacing"),
            Some(&ConfigValue::Str("leading".into()))
        );
        assert_eq!(preset_config("SD15").expect_err("case").field(), "preset");
    }
}
