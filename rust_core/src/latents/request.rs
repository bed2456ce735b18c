//! The one latents request: every rule of a `sample_init_latents` call, whether it comes from
//! Python keyword arguments, a gRPC message or the Open Inference Protocol facade.

use crate::error::{CoreError, Result};
use crate::rng::policy::Plan;
use crate::rng::{
    wrap_seed, Dtype, Noise, NoiseRequest, NoiseSliceMut, SeedMode, Source, Variation, MAX_DIMS,
};
use crate::schedule::{self, presets, ConfigMap, PipelineArgs};

use super::layout::{self, Transform};
use super::options::{NoiseOptions, OptionValue};
use super::payload;

/// Steps used for the scale when a scheduler is named without `num_inference_steps` and no
/// preset gives its pipeline's default (the diffusers pipelines' usual default).
pub const DEFAULT_STEPS: usize = schedule::pipeline::FALLBACK_STEPS;

/// The preset a request names.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum PresetArg {
    /// Not given: [`presets::DEFAULT_PRESET`].
    #[default]
    Default,
    /// Explicitly none (Python `None`, an empty string on the wire): class defaults, no
    /// latent format.
    Unset,
    /// A preset name.
    Named(String),
}

impl PresetArg {
    fn name(&self) -> Option<&str> {
        match self {
            PresetArg::Default => Some(presets::DEFAULT_PRESET),
            PresetArg::Unset => None,
            PresetArg::Named(name) if name.is_empty() => None,
            PresetArg::Named(name) => Some(name),
        }
    }
}

/// The raw arguments of a latents request, as the caller gave them (`None`: not given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatentsArgs {
    /// An explicit shape, batch dimension first.
    pub shape: Option<Vec<i128>>,
    /// Image width in pixels (with `height` and a preset instead of `shape`).
    pub width: Option<i128>,
    /// Image height in pixels.
    pub height: Option<i128>,
    /// Images per batch with `width`/`height` (default 1).
    pub batch_size: Option<i128>,
    /// Video frames with `width`/`height` (video presets; default: the pipeline's).
    pub num_frames: Option<i128>,
    /// The model family.
    pub preset: PresetArg,
    /// torch seeds in [-2**63, 2**64).
    pub seeds: Vec<i128>,
    /// `"per_item"` (default), `"batch"` or `"a1111"`.
    pub seed_mode: Option<String>,
    /// `"cpu"` (default), `"cuda"` or `"a1111_nv"`.
    pub source: Option<String>,
    /// The dtype name (default float32).
    pub dtype: Option<String>,
    /// An explicit scale factor.
    pub sigma: Option<f64>,
    /// The scheduler whose `init_noise_sigma` scales the noise.
    pub scheduler: Option<String>,
    /// Its steps.
    pub num_inference_steps: Option<i128>,
    /// Its configuration overrides.
    pub scheduler_overrides: ConfigMap,
    /// Generator options and seed features.
    pub noise_options: Vec<(String, OptionValue)>,
    /// Also report each generator's state after the draw.
    pub return_generator_states: bool,
    /// The largest element count accepted (checked before anything is allocated).
    pub max_elements: Option<u64>,
}

/// A validated latents request: the shape, the seed policy, the noise options and the scale
/// factor, resolved once. Every way of producing the latents (an array, a reply payload, a
/// stream of chunks) reads from it.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentsRequest {
    pub(crate) noise: NoiseRequest,
    pub(crate) plan: Plan,
    /// The shape returned (the drawn shape unless the pipeline packs).
    shape: Vec<usize>,
    /// The dtype returned (the drawn dtype unless the pipeline draws float32).
    dtype: Dtype,
    /// The cast and packing between the draw and the result, when there is one.
    pub(crate) transform: Option<Transform>,
    seeds: Vec<i128>,
    preset: Option<String>,
    factor: f64,
    return_generator_states: bool,
}

impl LatentsRequest {
    /// Validates `args` (every rule; nothing is generated).
    pub fn new(args: LatentsArgs) -> Result<LatentsRequest> {
        let preset = match args.preset.name() {
            Some(name) => Some(presets::find(name)?),
            None => None,
        };
        let shaped = resolve_shape(&args, preset)?;
        let dtype = Dtype::parse(args.dtype.as_deref().unwrap_or("float32"))?;
        let draw_dtype = if shaped.draws_float32 {
            Dtype::Float32
        } else {
            dtype
        };
        if args.seeds.is_empty() {
            return Err(CoreError::invalid("seeds", "at least one seed is required"));
        }
        let seeds = args
            .seeds
            .iter()
            .map(|&s| wrap_seed(s, "seeds"))
            .collect::<Result<Vec<u64>>>()?;
        let factor = resolve_scale(&args, preset)?;
        let options = NoiseOptions::parse(&args.noise_options)?;
        let transform = (draw_dtype != dtype || shaped.permute.is_some()).then(|| Transform {
            draw: draw_dtype,
            out: dtype,
            item: shaped.drawn[1..].iter().product(),
            permute: shaped.permute.clone(),
        });
        let noise = NoiseRequest {
            shape: shaped.drawn,
            seeds,
            seed_mode: SeedMode::parse(args.seed_mode.as_deref().unwrap_or("per_item"))?,
            source: Source::parse(
                args.source.as_deref().unwrap_or("cpu"),
                options.cpu_kernel.as_deref(),
                options.gpu.as_deref(),
            )?,
            dtype: draw_dtype,
            batch_index: options.batch_index,
            variation: options.subseeds.map(|subseeds| Variation {
                subseeds,
                strength: options.subseed_strength,
            }),
            seed_resize_from: options.seed_resize_from,
            max_elements: args.max_elements,
        };
        let plan = noise.plan()?;
        let request = LatentsRequest {
            noise,
            plan,
            shape: shaped.output,
            dtype,
            transform,
            seeds: args.seeds,
            preset: preset.map(|p| p.name.to_owned()),
            factor,
            return_generator_states: args.return_generator_states,
        };
        if request.return_generator_states {
            request.check_states_defined()?;
        }
        Ok(request)
    }

    /// The same request for other seeds (everything else stays validated).
    pub fn with_seeds(&self, seeds: Vec<i128>) -> Result<LatentsRequest> {
        if seeds.is_empty() {
            return Err(CoreError::invalid("seeds", "at least one seed is required"));
        }
        let mut noise = self.noise.clone();
        noise.seeds = seeds
            .iter()
            .map(|&s| wrap_seed(s, "seeds"))
            .collect::<Result<Vec<u64>>>()?;
        let plan = noise.plan()?;
        Ok(LatentsRequest {
            noise,
            plan,
            seeds,
            ..self.clone()
        })
    }

    /// The latents' shape, batch dimension first (after the pipeline's packing).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The shape the noise is drawn in (before packing).
    pub fn drawn_shape(&self) -> &[usize] {
        &self.noise.shape
    }

    /// The element type of the result.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The element type the noise is drawn in (float32 for the pipelines that draw float32).
    pub fn draw_dtype(&self) -> Dtype {
        self.noise.dtype
    }

    /// The element count.
    pub fn numel(&self) -> usize {
        self.plan.numel
    }

    /// The payload size in bytes.
    pub fn nbytes(&self) -> usize {
        self.plan.numel * self.dtype.itemsize()
    }

    /// The seeds as the caller gave them.
    pub fn seeds(&self) -> &[i128] {
        &self.seeds
    }

    /// The seeds as torch stores them (two's complement of negative seeds).
    pub fn wrapped_seeds(&self) -> &[u64] {
        &self.noise.seeds
    }

    /// The factor the noise is multiplied by.
    pub fn init_noise_sigma(&self) -> f64 {
        self.factor
    }

    /// The preset, if any.
    pub fn preset(&self) -> Option<&str> {
        self.preset.as_deref()
    }

    /// The noise request underneath (seed policy, source, options).
    pub fn noise(&self) -> &NoiseRequest {
        &self.noise
    }

    /// Whether the caller asked for the generator states after the draw.
    pub fn wants_generator_states(&self) -> bool {
        self.return_generator_states
    }

    /// Whether every item is one fresh, plain draw from its own generator, or the whole batch
    /// is one plain draw: no batch_index, variation seeds or seed resize.
    pub fn is_plain(&self) -> bool {
        self.noise.batch_index.is_none()
            && self.plan.subseeds.is_none()
            && self.plan.resize.is_none()
    }

    /// Whether producing the payload is cheaper than handing it to another thread: a plain
    /// request of at most [`payload::SMALL_ELEMENTS`] elements, without generator states.
    pub fn is_small(&self) -> bool {
        self.is_plain()
            && self.plan.numel <= payload::SMALL_ELEMENTS
            && !self.return_generator_states
    }

    /// Refuses a request over a server's limits before anything is allocated: more than
    /// `max_elements` elements, or (for a unary reply) more than `max_bytes` bytes.
    pub fn check_size(&self, max_elements: u64, max_bytes: Option<u64>) -> Result<()> {
        let count = self.plan.numel as u64;
        if count > max_elements {
            return Err(CoreError::too_large(
                "shape",
                format!(
                    "{:?} has {count} elements, over this server's limit of {max_elements}",
                    self.shape
                ),
            ));
        }
        let size = self.nbytes() as u64;
        match max_bytes {
            Some(max) if size > max => Err(CoreError::too_large(
                "shape",
                format!(
                    "the reply would be {size} bytes, over the unary limit of {max}; use \
                     StreamInitLatents for tensors this large"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Draws the scaled latents into `out` (length and dtype of the request).
    pub fn fill(&self, mut out: NoiseSliceMut<'_>) -> Result<()> {
        match &self.transform {
            None => payload::generate(&self.noise, &self.plan, out.reborrow())?,
            Some(transform) => {
                if out.len() != self.plan.numel || out.dtype() != self.dtype {
                    return Err(CoreError::invalid(
                        "out",
                        format!(
                            "needs {} {} elements, got {} {}",
                            self.plan.numel,
                            self.dtype.name(),
                            out.len(),
                            out.dtype().name()
                        ),
                    ));
                }
                let mut drawn = Noise::zeros(self.noise.dtype, self.plan.numel);
                payload::generate(&self.noise, &self.plan, drawn.as_slice_mut())?;
                transform.apply(&drawn, out.reborrow())?;
            }
        }
        super::scale::scale_noise(out, self.factor);
        Ok(())
    }

    /// Writes the scaled latents as little-endian bytes into `buf[start..]` (exactly
    /// [`LatentsRequest::nbytes`] bytes), at any alignment; `buf[..start]` is scratch space
    /// on return (the caller writes its prefix afterwards).
    pub fn write_payload(&self, buf: &mut [u8], start: usize) -> Result<()> {
        payload::write_payload(self, buf, start)
    }

    /// The state of each generator after the draw (per_item: one per item; batch: one),
    /// in the byte layout of torch's `Generator.get_state()` for the CPU source.
    pub fn generator_states(&self) -> Result<Vec<Vec<u8>>> {
        self.check_states_defined()?;
        let per_draw = if self.noise.seed_mode == SeedMode::PerItem {
            self.plan.item
        } else {
            self.plan.numel
        };
        Ok(self
            .noise
            .seeds
            .iter()
            .map(|&seed| {
                // A replay that only advances the stream costs a fraction of the draw.
                let mut generator = crate::rng::Generator::new(seed, self.noise.source);
                generator.skip(per_draw, self.noise.dtype);
                generator.get_state()
            })
            .collect())
    }

    fn check_states_defined(&self) -> Result<()> {
        let mode_ok = matches!(self.noise.seed_mode, SeedMode::PerItem | SeedMode::Batch);
        if mode_ok && self.is_plain() {
            return Ok(());
        }
        Err(CoreError::invalid(
            "return_generator_states",
            "generator states are defined for per_item and batch seed modes without \
             batch_index, variation seeds or seed resize",
        ))
    }

    /// Bytes of memory producing the whole payload needs besides the payload itself (the
    /// working arrays of variation seeds and seed resize), for admission against a budget.
    pub fn working_bytes(&self) -> usize {
        let item_bytes = self.plan.item * 8;
        // A cast or packing holds the draw (and its cast) beside the result.
        let transform = match &self.transform {
            Some(t) => self.plan.numel * (t.draw.itemsize() + t.out.itemsize()),
            None => 0,
        };
        transform
            + match (&self.plan.subseeds, &self.plan.resize) {
                (None, None) => 0,
                // noise and subnoise in float64, and the result before rounding
                _ if self.noise.seed_mode == SeedMode::Batch => 3 * self.plan.numel * 8,
                _ => 4 * item_bytes * rayon::current_num_threads(),
            }
    }
}

/// The shape from an explicit `shape` (drawn and returned as given) or from the image size and
/// the preset pipeline's latent layout.
fn resolve_shape(args: &LatentsArgs, preset: Option<&presets::Preset>) -> Result<layout::Shaped> {
    if let Some(shape) = &args.shape {
        for (field, given) in [
            ("width", args.width.is_some()),
            ("height", args.height.is_some()),
            ("num_frames", args.num_frames.is_some()),
        ] {
            if given {
                return Err(CoreError::invalid(
                    "shape",
                    format!(
                        "give either shape or width/height (and num_frames), not shape and {field}"
                    ),
                ));
            }
        }
        if shape.is_empty() {
            return Err(CoreError::invalid(
                "shape",
                "must have at least one dimension",
            ));
        }
        check_ndim(shape.len())?;
        let dims = shape
            .iter()
            .map(|&d| positive(d, "shape"))
            .collect::<Result<Vec<usize>>>()?;
        return Ok(layout::Shaped {
            drawn: dims.clone(),
            output: dims,
            permute: None,
            draws_float32: false,
        });
    }
    let (Some(width), Some(height)) = (args.width, args.height) else {
        return Err(CoreError::invalid(
            "shape",
            "give shape=(B, C, H, W) or both width and height",
        ));
    };
    let Some(preset) = preset else {
        return Err(CoreError::invalid(
            "preset",
            "width/height need a preset to know the latent layout",
        ));
    };
    let width = positive(width, "width")?;
    let height = positive(height, "height")?;
    let batch = positive(args.batch_size.unwrap_or(1), "batch_size")?;
    let frames = args
        .num_frames
        .map(|f| positive(f, "num_frames"))
        .transpose()?;
    layout::preset_shape(preset, batch, width, height, frames)
}

/// At most [`MAX_DIMS`] dimensions.
fn check_ndim(ndim: usize) -> Result<()> {
    if ndim > MAX_DIMS {
        return Err(CoreError::invalid(
            "shape",
            format!("at most {MAX_DIMS} dimensions (numpy's limit), got {ndim}"),
        ));
    }
    Ok(())
}

fn positive(value: i128, field: &str) -> Result<usize> {
    if value <= 0 {
        return Err(CoreError::invalid(
            field,
            format!("must be positive, got {value}"),
        ));
    }
    usize::try_from(value)
        .ok()
        .filter(|&v| v <= isize::MAX as usize)
        .ok_or_else(|| CoreError::too_large(field, format!("{value} is too large")))
}

/// `sigma` when given; else, with a preset, what its pipeline's `prepare_latents` multiplies by
/// (`scheduler.init_noise_sigma` of the named scheduler, or of the pipeline's default, at the
/// given or default steps, for the pipelines that scale; 1 for flow-matching pipelines); else
/// the named scheduler's `init_noise_sigma`; else 1.
fn resolve_scale(args: &LatentsArgs, preset: Option<&presets::Preset>) -> Result<f64> {
    if let Some(sigma) = args.sigma {
        return check_sigma(sigma);
    }
    let scheduler = args.scheduler.as_deref().filter(|s| !s.is_empty());
    let unscaled = preset.is_some_and(|p| !p.layout.scales);
    if unscaled && scheduler.is_none() && args.scheduler_overrides.is_empty() {
        // A flow-matching pipeline never scales its noise; its default scheduler needs no check.
        return Ok(1.0);
    }
    if scheduler.is_none() && preset.is_none() {
        if let Some((key, _)) = args.scheduler_overrides.iter().next() {
            return Err(CoreError::invalid(
                key,
                "scheduler options need a scheduler",
            ));
        }
        return Ok(1.0);
    }
    let steps = match args.num_inference_steps {
        None => None,
        Some(n) => Some(usize::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(|| {
            CoreError::invalid(
                "num_inference_steps",
                format!("must be at least 1, got {n}"),
            )
        })?),
    };
    let size = |v: Option<i128>| v.and_then(|v| usize::try_from(v).ok());
    let empty = ConfigMap::new();
    let schedule = schedule::get_pipeline_schedule(&PipelineArgs {
        scheduler,
        num_inference_steps: steps.or(if preset.is_none() {
            Some(DEFAULT_STEPS)
        } else {
            None
        }),
        preset: preset.map(|p| p.name),
        width: size(args.width),
        height: size(args.height),
        num_frames: size(args.num_frames),
        pipeline: true,
        config: &empty,
        overrides: &args.scheduler_overrides,
    })?;
    if preset.is_some_and(|p| !p.layout.scales) {
        return Ok(1.0);
    }
    check_sigma(schedule.init_noise_sigma)
}

/// A scale factor must be a finite, non-negative number.
pub fn check_sigma(sigma: f64) -> Result<f64> {
    if sigma.is_finite() && sigma >= 0.0 {
        return Ok(sigma);
    }
    Err(CoreError::invalid(
        "sigma",
        format!("must be finite and non-negative, got {sigma}"),
    ))
}
