//! Model presets. A preset names a pipeline: the model repository's published
//! `scheduler/scheduler_config.json` (as data), the diffusers pipeline class that runs it, that
//! pipeline's default scheduler, steps and size, the layout of its initial latents, and what its
//! `__call__` passes to the scheduler (see [`Convention`]). Read from diffusers 0.42.1.
//!
//! The scheduler config alone: using preset "sd15" with "EulerDiscreteScheduler" equals
//! `EulerDiscreteScheduler.from_config(sd15_pipe.scheduler.config)`: keys the target class lacks
//! are ignored, and keys the repository's JSON does not set keep the target class's own
//! defaults (diffusers' `_use_default_values` rule).

use std::sync::OnceLock;

use super::config::{ConfigMap, ConfigValue};
use crate::error::{CoreError, Result};
use crate::names;

/// What a model was trained to denoise, which decides the scheduler families that fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A variance-preserving (DDPM-trained) model: epsilon or v prediction on ᾱ_t.
    Vp,
    /// A rectified-flow (flow-matching) model.
    Flow,
}

impl ModelKind {
    /// `"vp"` or `"flow_match"`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Vp => "vp",
            ModelKind::Flow => "flow_match",
        }
    }
}

/// What a pipeline's `__call__` passes to its scheduler besides the step count (diffusers
/// 0.42.1). User-given `timesteps` / `sigmas` replace the pipeline's own array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// `retrieve_timesteps(scheduler, n)` and nothing else (StableDiffusionPipeline,
    /// StableDiffusionXLPipeline, CogVideoXPipeline; WanPipeline calls `set_timesteps(n)`).
    Plain,
    /// StableDiffusion3Pipeline: `mu = calculate_shift((h / 2)(w / 2))` over the latent size,
    /// only when the config has `use_dynamic_shifting` (`max_shift` falls back to 1.16).
    Sd3,
    /// FluxPipeline: `sigmas = np.linspace(1, 1 / n, n)` (none with `use_flow_sigmas`) and
    /// `mu = calculate_shift(packed sequence length)`.
    Flux,
    /// HunyuanVideoPipeline: `sigmas = np.linspace(1, 0, n + 1)[:-1]`.
    Hunyuan,
    /// LTXPipeline: `sigmas = np.linspace(1, 1 / n, n)` and
    /// `mu = calculate_shift(latent frames * latent height * latent width)`.
    Ltx,
    /// MochiPipeline: `sigmas = linear_quadratic_schedule(n, 0.025)`.
    Mochi,
}

impl Convention {
    /// A short name for the catalog.
    pub fn name(self) -> &'static str {
        match self {
            Convention::Plain => "plain",
            Convention::Sd3 => "sd3_dynamic_shift",
            Convention::Flux => "flux_sigmas_mu",
            Convention::Hunyuan => "hunyuan_sigmas",
            Convention::Ltx => "ltx_sigmas_mu",
            Convention::Mochi => "mochi_linear_quadratic",
        }
    }
}

/// How a pipeline's `prepare_latents` turns its drawn noise into the latents it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// Returned as drawn.
    None,
    /// FluxPipeline `_pack_latents`: `(B, C, h, w)` viewed as `(B, C, h/2, 2, w/2, 2)`, permuted
    /// `(0, 2, 4, 1, 3, 5)`, reshaped to `(B, (h/2)(w/2), 4C)`.
    Flux2x2,
    /// LTXPipeline `_pack_latents` with patch sizes 1: `(B, C, F, h, w)` to `(B, F h w, C)`.
    LtxTokens,
}

impl Packing {
    /// A short name for the catalog.
    pub fn name(self) -> &'static str {
        match self {
            Packing::None => "none",
            Packing::Flux2x2 => "flux_2x2",
            Packing::LtxTokens => "ltx_tokens",
        }
    }
}

/// The axis order of the drawn noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axes {
    /// `(B, C, H, W)`: images.
    Bchw,
    /// `(B, C, F, H, W)`: Wan, HunyuanVideo, LTX, Mochi.
    Bcfhw,
    /// `(B, F, C, H, W)`: CogVideoX.
    Bfchw,
}

impl Axes {
    /// `"BCHW"`, `"BCFHW"` or `"BFCHW"`.
    pub fn name(self) -> &'static str {
        match self {
            Axes::Bchw => "BCHW",
            Axes::Bcfhw => "BCFHW",
            Axes::Bfchw => "BFCHW",
        }
    }
}

/// How a video pipeline turns `num_frames` into latent frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRule {
    /// `(num_frames - 1) // temporal + 1`.
    Plain,
    /// WanPipeline `__call__`: a `num_frames` with `num_frames % 4 != 1` becomes
    /// `num_frames // 4 * 4 + 1` (with a warning) first.
    WanRound,
    /// CogVideoXPipeline with `patch_size_t`: latent frames padded up to a multiple of it.
    PadTo(usize),
}

/// The layout of a pipeline's initial latents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatentLayout {
    /// Latent channels (the transformer's / UNet's `in_channels`; Flux's `in_channels // 4`).
    pub channels: usize,
    /// Pixels per latent cell along each spatial axis (the VAE spatial factor).
    pub vae_scale_factor: usize,
    /// Frames per latent frame (the VAE temporal factor); `None` for images.
    pub vae_temporal_factor: Option<usize>,
    /// Latent cells per packed patch side (Flux: 2); 1 when unpacked.
    pub pack_factor: usize,
    /// What `prepare_latents` does after drawing.
    pub packing: Packing,
    /// The axis order of the draw.
    pub axes: Axes,
    /// Whether the noise is drawn in float32 whatever the pipeline's dtype (Wan, HunyuanVideo
    /// and LTX pass `torch.float32`; Mochi draws float32 and casts to the pipeline's dtype).
    pub draws_float32: bool,
    /// How `num_frames` becomes latent frames (videos).
    pub frames: FrameRule,
    /// Image sizes must be multiples of this many pixels (the pipeline's `check_inputs`).
    pub size_multiple: usize,
    /// Whether `prepare_latents` multiplies by `scheduler.init_noise_sigma` (SD, SDXL,
    /// CogVideoX); flow-matching pipelines do not.
    pub scales: bool,
}

/// A model family: its scheduler configuration and the pipeline that runs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// The preset name used in requests (`"sd15"`, `"sdxl"`, ...).
    pub name: &'static str,
    /// The Hugging Face repository whose `scheduler/scheduler_config.json` this is.
    pub repo: &'static str,
    /// The scheduler class the repository's pipeline loads (`_class_name`): the pipeline's
    /// default scheduler.
    pub class_name: &'static str,
    /// The diffusers pipeline class (`model_index.json` `_class_name`).
    pub pipeline: &'static str,
    /// The pipeline's file in diffusers 0.42.1 (`src/diffusers/pipelines/...`).
    pub pipeline_file: &'static str,
    /// The `num_inference_steps` default of the pipeline's `__call__`.
    pub steps: usize,
    /// The pipeline's default image width in pixels.
    pub width: usize,
    /// The pipeline's default image height in pixels.
    pub height: usize,
    /// The pipeline's default `num_frames` (videos).
    pub num_frames: Option<usize>,
    /// What the model denoises.
    pub model: ModelKind,
    /// What the pipeline passes to `set_timesteps`.
    pub convention: Convention,
    /// The initial latents.
    pub layout: LatentLayout,
    /// Latent channels (as `layout.channels`).
    pub latent_channels: usize,
    /// Pixels per latent cell (as `layout.vae_scale_factor`).
    pub vae_scale_factor: usize,
    /// Latent cells per packed patch side (as `layout.pack_factor`).
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
    Ints(&'static [i64]),
}

impl P {
    fn value(self) -> ConfigValue {
        match self {
            P::Null => ConfigValue::Null,
            P::B(b) => ConfigValue::Bool(b),
            P::I(i) => ConfigValue::Int(i),
            P::F(f) => ConfigValue::Float(f),
            P::S(s) => ConfigValue::Str(s.to_owned()),
            P::Ints(v) => ConfigValue::IntList(v.to_vec()),
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

    /// The preset's latent format (channels, VAE factor, pack factor).
    pub fn latent_format(&self) -> LatentFormat {
        LatentFormat {
            channels: self.layout.channels,
            vae_scale_factor: self.layout.vae_scale_factor,
            pack_factor: self.layout.pack_factor,
        }
    }

    /// Whether the preset is a video model.
    pub fn is_video(&self) -> bool {
        self.layout.vae_temporal_factor.is_some()
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

const SD35_MEDIUM: &[(&str, P)] = &[("num_train_timesteps", P::I(1000)), ("shift", P::F(3.0))];

/// The UniPC config the Wan-AI Diffusers repositories ship (diffusers'
/// `scripts/convert_wan_to_diffusers.py`: `UniPCMultistepScheduler(prediction_type=
/// "flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0)`, saved
/// with every key).
const WAN: &[(&str, P)] = &[
    ("beta_end", P::F(0.02)),
    ("beta_schedule", P::S("linear")),
    ("beta_start", P::F(0.0001)),
    ("disable_corrector", P::Ints(&[])),
    ("dynamic_thresholding_ratio", P::F(0.995)),
    ("final_sigmas_type", P::S("zero")),
    ("flow_shift", P::F(3.0)),
    ("lower_order_final", P::B(true)),
    ("num_train_timesteps", P::I(1000)),
    ("predict_x0", P::B(true)),
    ("prediction_type", P::S("flow_prediction")),
    ("rescale_betas_zero_snr", P::B(false)),
    ("sample_max_value", P::F(1.0)),
    ("solver_order", P::I(2)),
    ("solver_p", P::Null),
    ("solver_type", P::S("bh2")),
    ("steps_offset", P::I(0)),
    ("thresholding", P::B(false)),
    ("timestep_spacing", P::S("linspace")),
    ("trained_betas", P::Null),
    ("use_beta_sigmas", P::B(false)),
    ("use_exponential_sigmas", P::B(false)),
    ("use_flow_sigmas", P::B(true)),
    ("use_karras_sigmas", P::B(false)),
];

const HUNYUAN_VIDEO: &[(&str, P)] = &[
    ("base_image_seq_len", P::I(256)),
    ("base_shift", P::F(0.5)),
    ("invert_sigmas", P::B(false)),
    ("max_image_seq_len", P::I(4096)),
    ("max_shift", P::F(1.15)),
    ("num_train_timesteps", P::I(1000)),
    ("shift", P::F(7.0)),
    ("shift_terminal", P::Null),
    ("use_beta_sigmas", P::B(false)),
    ("use_dynamic_shifting", P::B(false)),
    ("use_exponential_sigmas", P::B(false)),
    ("use_karras_sigmas", P::B(false)),
];

const LTX_VIDEO: &[(&str, P)] = &[
    ("base_image_seq_len", P::I(1024)),
    ("base_shift", P::F(0.95)),
    ("invert_sigmas", P::B(false)),
    ("max_image_seq_len", P::I(4096)),
    ("max_shift", P::F(2.05)),
    ("num_train_timesteps", P::I(1000)),
    ("shift", P::F(1.0)),
    ("shift_terminal", P::F(0.1)),
    ("use_beta_sigmas", P::B(false)),
    ("use_dynamic_shifting", P::B(true)),
    ("use_exponential_sigmas", P::B(false)),
    ("use_karras_sigmas", P::B(false)),
];

/// CogVideoX's DDIM config; `snr_shift_scale` is 3.0 for the 2B model and 1.0 for the 5B ones
/// (diffusers' `scripts/convert_cogvideox_to_diffusers.py`).
macro_rules! cogvideox {
    ($snr:expr) => {
        &[
            ("beta_end", P::F(0.012)),
            ("beta_schedule", P::S("scaled_linear")),
            ("beta_start", P::F(0.00085)),
            ("clip_sample", P::B(false)),
            ("clip_sample_range", P::F(1.0)),
            ("num_train_timesteps", P::I(1000)),
            ("prediction_type", P::S("v_prediction")),
            ("rescale_betas_zero_snr", P::B(true)),
            ("sample_max_value", P::F(1.0)),
            ("set_alpha_to_one", P::B(true)),
            ("snr_shift_scale", P::F($snr)),
            ("steps_offset", P::I(0)),
            ("timestep_spacing", P::S("trailing")),
            ("trained_betas", P::Null),
        ]
    };
}

const COGVIDEOX_2B: &[(&str, P)] = cogvideox!(3.0);
const COGVIDEOX_15_5B: &[(&str, P)] = cogvideox!(1.0);

const MOCHI: &[(&str, P)] = &[
    ("base_image_seq_len", P::I(256)),
    ("base_shift", P::F(0.5)),
    ("invert_sigmas", P::B(true)),
    ("max_image_seq_len", P::I(4096)),
    ("max_shift", P::F(1.15)),
    ("num_train_timesteps", P::I(1000)),
    ("shift", P::F(1.0)),
    ("use_dynamic_shifting", P::B(false)),
];

/// The pipeline facts of a preset (everything but its name, repository and config).
#[derive(Clone, Copy)]
struct Pipe {
    class: &'static str,
    file: &'static str,
    steps: usize,
    size: (usize, usize),
    frames: Option<usize>,
    model: ModelKind,
    convention: Convention,
    layout: LatentLayout,
}

const fn image_layout(
    channels: usize,
    pack_factor: usize,
    packing: Packing,
    scales: bool,
) -> LatentLayout {
    LatentLayout {
        channels,
        vae_scale_factor: 8,
        vae_temporal_factor: None,
        pack_factor,
        packing,
        axes: Axes::Bchw,
        draws_float32: false,
        frames: FrameRule::Plain,
        size_multiple: 8,
        scales,
    }
}

const fn video_layout(
    channels: usize,
    (spatial, temporal): (usize, usize),
    axes: Axes,
    draws_float32: bool,
    frames: FrameRule,
    size_multiple: usize,
) -> LatentLayout {
    LatentLayout {
        channels,
        vae_scale_factor: spatial,
        vae_temporal_factor: Some(temporal),
        pack_factor: 1,
        packing: Packing::None,
        axes,
        draws_float32,
        frames,
        size_multiple,
        scales: false,
    }
}

const SD_FILE: &str = "pipelines/stable_diffusion/pipeline_stable_diffusion.py";
const SDXL_FILE: &str = "pipelines/stable_diffusion_xl/pipeline_stable_diffusion_xl.py";
const SD3_FILE: &str = "pipelines/stable_diffusion_3/pipeline_stable_diffusion_3.py";

const fn sd(size: usize) -> Pipe {
    Pipe {
        class: "StableDiffusionPipeline",
        file: SD_FILE,
        steps: 50,
        size: (size, size),
        frames: None,
        model: ModelKind::Vp,
        convention: Convention::Plain,
        layout: image_layout(4, 1, Packing::None, true),
    }
}

const fn sdxl(size: usize) -> Pipe {
    Pipe {
        class: "StableDiffusionXLPipeline",
        file: SDXL_FILE,
        ..sd(size)
    }
}

const SD3_PIPE: Pipe = Pipe {
    class: "StableDiffusion3Pipeline",
    file: SD3_FILE,
    steps: 28,
    size: (1024, 1024),
    frames: None,
    model: ModelKind::Flow,
    convention: Convention::Sd3,
    // check_inputs refuses sizes that are not whole transformer patches:
    // vae_scale_factor * patch_size = 16 (pipeline_stable_diffusion_3.py, diffusers 0.42.1).
    layout: LatentLayout {
        size_multiple: 16,
        ..image_layout(16, 1, Packing::None, false)
    },
};

const FLUX_PIPE: Pipe = Pipe {
    class: "FluxPipeline",
    file: "pipelines/flux/pipeline_flux.py",
    steps: 28,
    size: (1024, 1024),
    frames: None,
    model: ModelKind::Flow,
    convention: Convention::Flux,
    layout: image_layout(16, 2, Packing::Flux2x2, false),
};

const WAN_PIPE: Pipe = Pipe {
    class: "WanPipeline",
    file: "pipelines/wan/pipeline_wan.py",
    steps: 50,
    size: (832, 480),
    frames: Some(81),
    model: ModelKind::Flow,
    convention: Convention::Plain,
    layout: video_layout(16, (8, 4), Axes::Bcfhw, true, FrameRule::WanRound, 16),
};

const HUNYUAN_PIPE: Pipe = Pipe {
    class: "HunyuanVideoPipeline",
    file: "pipelines/hunyuan_video/pipeline_hunyuan_video.py",
    steps: 50,
    size: (1280, 720),
    frames: Some(129),
    model: ModelKind::Flow,
    convention: Convention::Hunyuan,
    layout: video_layout(16, (8, 4), Axes::Bcfhw, true, FrameRule::Plain, 16),
};

const LTX_PIPE: Pipe = Pipe {
    class: "LTXPipeline",
    file: "pipelines/ltx/pipeline_ltx.py",
    steps: 50,
    size: (704, 512),
    frames: Some(161),
    model: ModelKind::Flow,
    convention: Convention::Ltx,
    layout: LatentLayout {
        packing: Packing::LtxTokens,
        ..video_layout(128, (32, 8), Axes::Bcfhw, true, FrameRule::Plain, 32)
    },
};

const fn cogvideox_pipe(size: (usize, usize), frames: usize, rule: FrameRule) -> Pipe {
    Pipe {
        class: "CogVideoXPipeline",
        file: "pipelines/cogvideo/pipeline_cogvideox.py",
        steps: 50,
        size,
        frames: Some(frames),
        model: ModelKind::Vp,
        convention: Convention::Plain,
        layout: LatentLayout {
            scales: true,
            ..video_layout(16, (8, 4), Axes::Bfchw, false, rule, 8)
        },
    }
}

const MOCHI_PIPE: Pipe = Pipe {
    class: "MochiPipeline",
    file: "pipelines/mochi/pipeline_mochi.py",
    steps: 64,
    size: (848, 480),
    frames: Some(19),
    model: ModelKind::Flow,
    convention: Convention::Mochi,
    layout: video_layout(12, (8, 6), Axes::Bcfhw, true, FrameRule::Plain, 8),
};

const fn preset(
    name: &'static str,
    repo: &'static str,
    class_name: &'static str,
    pipe: Pipe,
    entries: &'static [(&'static str, P)],
) -> Preset {
    Preset {
        name,
        repo,
        class_name,
        pipeline: pipe.class,
        pipeline_file: pipe.file,
        steps: pipe.steps,
        width: pipe.size.0,
        height: pipe.size.1,
        num_frames: pipe.frames,
        model: pipe.model,
        convention: pipe.convention,
        layout: pipe.layout,
        latent_channels: pipe.layout.channels,
        vae_scale_factor: pipe.layout.vae_scale_factor,
        pack_factor: pipe.layout.pack_factor,
        entries,
    }
}

const FLOW_EULER: &str = "FlowMatchEulerDiscreteScheduler";

/// Every preset. Default sizes are the pipelines' (`sample_size * vae_scale_factor` of the
/// repository's UNet / transformer config, or the `__call__` defaults for video pipelines;
/// CogVideoXPipeline reads `sample_height/width/frames` from the transformer config: 60/90/49 for
/// CogVideoX-2b, 300/300/81 for CogVideoX1.5-5B).
const PRESETS: [Preset; 17] = [
    preset(
        "sd15",
        "runwayml/stable-diffusion-v1-5",
        "PNDMScheduler",
        sd(512),
        SD15,
    ),
    preset(
        "sd21",
        "stabilityai/stable-diffusion-2-1-base",
        "PNDMScheduler",
        sd(512),
        SD21_BASE,
    ),
    preset(
        "sd21-v",
        "stabilityai/stable-diffusion-2-1",
        "DDIMScheduler",
        sd(768),
        SD21_V,
    ),
    preset(
        "sdxl",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "EulerDiscreteScheduler",
        sdxl(1024),
        SDXL,
    ),
    preset(
        "sdxl-turbo",
        "stabilityai/sdxl-turbo",
        "EulerAncestralDiscreteScheduler",
        sdxl(512),
        SDXL_TURBO,
    ),
    preset(
        "sd3",
        "stabilityai/stable-diffusion-3-medium-diffusers",
        FLOW_EULER,
        SD3_PIPE,
        SD3,
    ),
    preset(
        "sd35",
        "stabilityai/stable-diffusion-3.5-large",
        FLOW_EULER,
        SD3_PIPE,
        SD35,
    ),
    preset(
        "sd35-medium",
        "stabilityai/stable-diffusion-3.5-medium",
        FLOW_EULER,
        SD3_PIPE,
        SD35_MEDIUM,
    ),
    preset(
        "flux-dev",
        "black-forest-labs/FLUX.1-dev",
        FLOW_EULER,
        FLUX_PIPE,
        FLUX_DEV,
    ),
    preset(
        "flux-schnell",
        "black-forest-labs/FLUX.1-schnell",
        FLOW_EULER,
        FLUX_PIPE,
        FLUX_SCHNELL,
    ),
    preset(
        "wan2.1",
        "Wan-AI/Wan2.1-T2V-14B-Diffusers",
        "UniPCMultistepScheduler",
        WAN_PIPE,
        WAN,
    ),
    preset(
        "wan2.2",
        "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
        "UniPCMultistepScheduler",
        WAN_PIPE,
        WAN,
    ),
    preset(
        "hunyuan-video",
        "hunyuanvideo-community/HunyuanVideo",
        FLOW_EULER,
        HUNYUAN_PIPE,
        HUNYUAN_VIDEO,
    ),
    preset(
        "ltx-video",
        "Lightricks/LTX-Video",
        FLOW_EULER,
        LTX_PIPE,
        LTX_VIDEO,
    ),
    preset(
        "cogvideox",
        "THUDM/CogVideoX-2b",
        "CogVideoXDDIMScheduler",
        cogvideox_pipe((720, 480), 49, FrameRule::Plain),
        COGVIDEOX_2B,
    ),
    preset(
        "cogvideox-1.5",
        "THUDM/CogVideoX1.5-5B",
        "CogVideoXDDIMScheduler",
        cogvideox_pipe((2400, 2400), 81, FrameRule::PadTo(2)),
        COGVIDEOX_15_5B,
    ),
    preset(
        "mochi",
        "genmo/mochi-1-preview",
        FLOW_EULER,
        MOCHI_PIPE,
        MOCHI,
    ),
];

/// Other spellings of preset names (case, `-`, `_`, `.` and spaces never matter).
const ALIASES: &[(&str, &str)] = &[
    ("sd-v1-5", "sd15"),
    ("stable-diffusion-v1-5", "sd15"),
    ("sdxl-base", "sdxl"),
    ("sdxl-1.0", "sdxl"),
    ("sd3-medium", "sd3"),
    ("sd35-large", "sd35"),
    ("flux", "flux-dev"),
    ("flux.1-dev", "flux-dev"),
    ("flux.1-schnell", "flux-schnell"),
    ("wan", "wan2.1"),
    ("wan2.1-t2v", "wan2.1"),
    ("wan2.2-t2v", "wan2.2"),
    ("hunyuan", "hunyuan-video"),
    ("ltx", "ltx-video"),
    ("ltxv", "ltx-video"),
    ("cogvideox-2b", "cogvideox"),
    ("cogvideox1.5-5b", "cogvideox-1.5"),
    ("mochi-1", "mochi"),
    ("mochi-1-preview", "mochi"),
];

/// The preset used when a request names none.
pub const DEFAULT_PRESET: &str = "sd15";

/// How a model family's pipeline shapes its initial latents (the image part of
/// [`LatentLayout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatentFormat {
    /// Latent channels.
    pub channels: usize,
    /// Pixels per latent cell along each axis.
    pub vae_scale_factor: usize,
    /// Latent cells per packed patch side (1: unpacked).
    pub pack_factor: usize,
}

/// Every preset, in a stable order.
pub fn list_presets() -> &'static [Preset] {
    &PRESETS
}

/// `(alias, preset)` for every other spelling the presets accept.
pub fn preset_aliases() -> &'static [(&'static str, &'static str)] {
    ALIASES
}

/// The preset called `name` (case-insensitive, aliases accepted; an unknown name suggests the
/// nearest).
pub fn find(name: &str) -> Result<&'static Preset> {
    if let Some(exact) = PRESETS.iter().find(|p| p.name == name) {
        return Ok(exact);
    }
    let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    let canonical = names::resolve("preset", "preset", name, &names, ALIASES)?;
    PRESETS
        .iter()
        .find(|p| p.name == canonical)
        .ok_or_else(|| CoreError::invalid("preset", format!("unknown preset {name:?}")))
}

/// The latent format of preset `name`.
pub fn latent_format(name: &str) -> Result<LatentFormat> {
    find(name).map(Preset::latent_format)
}

/// The scheduler config of preset `name`.
pub fn preset_config(name: &str) -> Result<ConfigMap> {
    preset_map(name).cloned()
}

/// The preset's config map, built once per process.
pub(crate) fn preset_map(name: &str) -> Result<&'static ConfigMap> {
    static MAPS: OnceLock<Vec<ConfigMap>> = OnceLock::new();
    let maps = MAPS.get_or_init(|| PRESETS.iter().map(Preset::config).collect());
    // The exact name first: no allocation on the common path.
    let index = match PRESETS.iter().position(|p| p.name == name) {
        Some(i) => i,
        None => {
            let found = find(name)?;
            PRESETS
                .iter()
                .position(|p| p.name == found.name)
                .ok_or_else(|| CoreError::invalid("preset", format!("unknown preset {name:?}")))?
        }
    };
    maps.get(index)
        .ok_or_else(|| CoreError::invalid("preset", format!("unknown preset {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_resolve_by_name() {
        assert_eq!(list_presets().len(), 17);
        let sdxl = preset_config("sdxl").expect("known");
        assert_eq!(
            sdxl.get("timestep_spacing"),
            Some(&ConfigValue::Str("leading".into()))
        );
        assert_eq!(
            preset_config("SD15").expect("case-insensitive"),
            preset_config("sd15").expect("sd15")
        );
        assert_eq!(find("FLUX.1-dev").expect("alias").name, "flux-dev");
        assert_eq!(find("Wan 2.2").expect("spaces").name, "wan2.2");
        let err = find("flux-devv").expect_err("typo");
        assert_eq!(err.field(), "preset");
        assert!(err.to_string().contains("\"flux-dev\""), "{err}");
    }

    #[test]
    fn names_and_aliases_are_unique_and_aliases_point_to_presets() {
        let mut folded: Vec<String> = PRESETS.iter().map(|p| names::fold(p.name)).collect();
        folded.extend(ALIASES.iter().map(|(a, _)| names::fold(a)));
        let count = folded.len();
        folded.sort();
        folded.dedup();
        assert_eq!(folded.len(), count);
        for (alias, target) in ALIASES {
            assert!(PRESETS.iter().any(|p| p.name == *target), "{alias}");
        }
    }

    #[test]
    fn layouts_are_consistent() {
        for p in list_presets() {
            assert_eq!(p.latent_channels, p.layout.channels);
            assert_eq!(p.is_video(), p.num_frames.is_some(), "{}", p.name);
            assert_eq!(p.width % p.layout.size_multiple, 0, "{}", p.name);
            assert_eq!(p.height % p.layout.size_multiple, 0, "{}", p.name);
            assert_eq!(
                p.config().get("_class_name"),
                Some(&ConfigValue::Str(p.class_name.into()))
            );
        }
    }
}
