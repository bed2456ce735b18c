//! Seed policies over a batch, and the A1111 seed features on top of them.
//!
//! - [`SeedMode::PerItem`]: one fresh generator per batch item, one `(1, C, H, W)` draw each:
//!   diffusers' `randn_tensor` with a list of B generators.
//! - [`SeedMode::Batch`]: one generator, one draw of the whole `(B, C, H, W)` tensor:
//!   diffusers with a single generator, ComfyUI's `prepare_noise`. With `batch_index`,
//!   ComfyUI's rule: `max(batch_index) + 1` successive `(1, C, H, W)` draws, item j is draw
//!   `batch_index[j]` (comfy/sample.py `prepare_noise`).
//! - [`SeedMode::A1111`]: AUTOMATIC1111's per-image seeds, `seed + i` from one seed (all
//!   images share the seed when a variation strength is set) or an explicit list, one fresh
//!   generator per image; variation seeds (`subseed + i`) and seed resize as in
//!   `modules/processing.py` / `modules/rng.py` (1.10).

use rayon::prelude::*;

use crate::error::{CoreError, Result};

use super::a1111::{paste_centered, slerp_chw, SeedResize, SlerpFloat, MIN_SLERP_ROWS};
use super::dtype::{f32_to_bf16_bits, f32_to_f16_bits, Dtype, Noise, NoiseSliceMut};
use super::{Generator, Source};

/// How seeds map onto batch items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SeedMode {
    /// One seed per item, one generator per item (diffusers' list of generators).
    #[default]
    PerItem,
    /// One seed, one generator for the whole batch (diffusers' single generator, ComfyUI).
    Batch,
    /// A1111: `seed + i` per item (or an explicit list), one generator per item.
    A1111,
}

impl SeedMode {
    /// Parses `"per_item"`, `"batch"` or `"a1111"` (field `"seed_mode"`).
    pub fn parse(name: &str) -> Result<SeedMode> {
        let valid = Self::NAMES;
        Ok(
            match crate::names::resolve("seed_mode", "seed mode", name, &valid, &[])? {
                "per_item" => SeedMode::PerItem,
                "batch" => SeedMode::Batch,
                _ => SeedMode::A1111,
            },
        )
    }

    /// The names [`SeedMode::parse`] accepts.
    pub const NAMES: [&'static str; 3] = ["per_item", "batch", "a1111"];

    /// The name accepted by [`SeedMode::parse`].
    pub fn name(self) -> &'static str {
        match self {
            SeedMode::PerItem => "per_item",
            SeedMode::Batch => "batch",
            SeedMode::A1111 => "a1111",
        }
    }
}

/// A1111's variation seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Variation {
    /// Subseeds: per_item B of them; batch exactly 1; a1111 1 (→ `subseed + i`) or B.
    pub subseeds: Vec<u64>,
    /// Variation strength in [0, 1]: 0 is the seed's noise, 1 the subseed's.
    pub strength: f64,
}

/// A batch noise request: shape `(B, ...)`, seeds and the policy applied to them.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseRequest {
    /// The output shape, batch dimension first.
    pub shape: Vec<usize>,
    /// The seeds (already wrapped to u64, see [`super::wrap_seed`]).
    pub seeds: Vec<u64>,
    /// How seeds map onto items.
    pub seed_mode: SeedMode,
    /// The generator.
    pub source: Source,
    /// The output dtype.
    pub dtype: Dtype,
    /// ComfyUI's `batch_index` (only with [`SeedMode::Batch`]; one entry per item).
    pub batch_index: Option<Vec<usize>>,
    /// A1111 variation seeds (ignored when the strength is 0, as in A1111).
    pub variation: Option<Variation>,
    /// A1111 "resize seed from" (latent width, height); needs a 4-D shape, per_item or a1111.
    pub seed_resize_from: Option<SeedResize>,
    /// The largest element count accepted (checked before anything is allocated).
    pub max_elements: Option<u64>,
}

impl NoiseRequest {
    /// A request with the defaults: per_item, CPU source, float32, no extras, no limit.
    pub fn new(shape: Vec<usize>, seeds: Vec<u64>) -> NoiseRequest {
        NoiseRequest {
            shape,
            seeds,
            seed_mode: SeedMode::PerItem,
            source: Source::default(),
            dtype: Dtype::Float32,
            batch_index: None,
            variation: None,
            seed_resize_from: None,
            max_elements: None,
        }
    }

    /// The number of output elements, checked against `max_elements` (error `TooLarge` on
    /// field `"shape"`).
    pub fn numel(&self) -> Result<usize> {
        let n = checked_numel(&self.shape)?;
        self.check_limit(n as u64, "shape")?;
        Ok(n)
    }

    fn check_limit(&self, n: u64, field: &str) -> Result<()> {
        if let Some(max) = self.max_elements {
            if n > max {
                return Err(CoreError::too_large(
                    field,
                    format!("{n} elements exceed the limit of {max}"),
                ));
            }
        }
        Ok(())
    }

    /// Validates the request and resolves the per-item seeds.
    pub fn plan(&self) -> Result<Plan> {
        if self.shape.is_empty() {
            return Err(CoreError::invalid(
                "shape",
                "needs at least one dimension (the batch size first)",
            ));
        }
        let b = self.shape[0];
        if b == 0 {
            return Err(CoreError::invalid(
                "shape",
                "the batch size must be at least 1",
            ));
        }
        let numel = self.numel()?;
        let item = checked_numel(&self.shape[1..])?;
        if self.seeds.is_empty() {
            return Err(CoreError::invalid("seeds", "at least one seed is required"));
        }
        let variation = match &self.variation {
            Some(v) => {
                if !v.strength.is_finite() || !(0.0..=1.0).contains(&v.strength) {
                    return Err(CoreError::invalid(
                        "subseed_strength",
                        format!("must be a number in [0, 1], got {}", v.strength),
                    ));
                }
                if v.subseeds.is_empty() {
                    return Err(CoreError::invalid(
                        "subseeds",
                        "at least one subseed is required",
                    ));
                }
                (v.strength != 0.0).then_some(v)
            }
            None => None,
        };
        if self.batch_index.is_some() && self.seed_mode != SeedMode::Batch {
            return Err(CoreError::invalid(
                "batch_index",
                "batch_index only applies to seed_mode=\"batch\" (ComfyUI's prepare_noise)",
            ));
        }
        let needs_chw = variation.is_some() || self.seed_resize_from.is_some();
        if needs_chw && self.shape.len() != 4 {
            let what = if variation.is_some() {
                "subseeds"
            } else {
                "seed_resize_from"
            };
            return Err(CoreError::invalid(
                what,
                format!(
                    "variation seeds and seed resize need a 4-D (B, C, H, W) shape, got {} dimensions",
                    self.shape.len()
                ),
            ));
        }
        let count_err = |field: &str, what: &str, got: usize, want: &str| {
            CoreError::invalid(
                field,
                format!(
                    "seed_mode=\"{}\" needs {want} {what}, got {got}",
                    self.seed_mode.name()
                ),
            )
        };
        let per_item = |list: &[u64], field: &str, what: &str, a1111_increment: bool| match list
            .len()
        {
            n if n == b => Ok(list.to_vec()),
            1 if a1111_increment => Ok((0..b as u64).map(|i| list[0].wrapping_add(i)).collect()),
            n => Err(count_err(
                field,
                what,
                n,
                &if a1111_increment {
                    format!("1 or {b} (one per batch item)")
                } else {
                    format!("{b} (one per batch item)")
                },
            )),
        };
        let (seeds, subseeds) = match self.seed_mode {
            SeedMode::PerItem => {
                if self.seeds.len() != b {
                    return Err(CoreError::invalid(
                        "seeds",
                        format!(
                            "seed_mode=\"per_item\" needs one seed per batch item ({b}), got {}; \
                             use seed_mode=\"batch\" for one generator over the whole batch or \
                             \"a1111\" for seed + i",
                            self.seeds.len()
                        ),
                    ));
                }
                let subs = variation
                    .map(|v| per_item(&v.subseeds, "subseeds", "subseeds", false))
                    .transpose()?;
                (self.seeds.clone(), subs)
            }
            SeedMode::Batch => {
                if self.seeds.len() != 1 {
                    return Err(count_err("seeds", "seed", self.seeds.len(), "exactly 1"));
                }
                if let Some(bi) = &self.batch_index {
                    if bi.len() != b {
                        return Err(CoreError::invalid(
                            "batch_index",
                            format!("needs one index per batch item ({b}), got {}", bi.len()),
                        ));
                    }
                    let max = bi.iter().copied().max().unwrap_or(0) as u64;
                    let work = (max + 1).saturating_mul(item as u64);
                    self.check_limit(work, "batch_index")?;
                }
                if self.seed_resize_from.is_some() {
                    return Err(CoreError::invalid(
                        "seed_resize_from",
                        "seed resize is per image: use seed_mode=\"per_item\" or \"a1111\"",
                    ));
                }
                let subs = match variation {
                    Some(v) if v.subseeds.len() != 1 => {
                        return Err(count_err(
                            "subseeds",
                            "subseed",
                            v.subseeds.len(),
                            "exactly 1",
                        ))
                    }
                    Some(v) => Some(v.subseeds.clone()),
                    None => None,
                };
                (self.seeds.clone(), subs)
            }
            SeedMode::A1111 => {
                // processing.py: all_seeds[i] = seed + i, or seed for every image when a
                // variation strength is set; all_subseeds[i] = subseed + i.
                let seeds = if self.seeds.len() == 1 && variation.is_some() {
                    vec![self.seeds[0]; b]
                } else {
                    per_item(&self.seeds, "seeds", "seeds", true)?
                };
                let subs = variation
                    .map(|v| per_item(&v.subseeds, "subseeds", "subseeds", true))
                    .transpose()?;
                (seeds, subs)
            }
        };
        let resize = match self.seed_resize_from {
            Some(r) if r.width == 0 || r.height == 0 => {
                return Err(CoreError::invalid(
                    "seed_resize_from",
                    format!(
                        "width and height must be >= 1 (latent pixels), got ({}, {})",
                        r.width, r.height
                    ),
                ))
            }
            Some(r) if r.height == self.shape[2] && r.width == self.shape[3] => None,
            Some(r) => {
                let small = checked_numel(&[self.shape[1], r.height, r.width])?;
                self.check_limit(small as u64, "seed_resize_from")?;
                Some(r)
            }
            None => None,
        };
        if variation.is_some() {
            let rows = resize.map_or(self.shape[2], |r| r.height);
            if rows < MIN_SLERP_ROWS {
                let (field, what) = if resize.is_some() {
                    (
                        "seed_resize_from",
                        "a seed resize height of 1 latent row (8 to 15 px)",
                    )
                } else {
                    ("subseeds", "a latent height of 1 row")
                };
                return Err(CoreError::invalid(
                    field,
                    format!(
                        "variation seeds are undefined with {what}: A1111 normalises each column \
                         along the height, so the slerp weights are NaN or about 1e7; use at \
                         least {MIN_SLERP_ROWS} rows"
                    ),
                ));
            }
        }
        Ok(Plan {
            batch: b,
            item,
            numel,
            seeds,
            subseeds,
            strength: variation.map(|v| v.strength).unwrap_or(0.0),
            resize,
        })
    }
}

fn checked_numel(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize / 8)
        .ok_or_else(|| CoreError::too_large("shape", "the element count overflows"))
}

/// A validated request: per-item seeds resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Batch size.
    pub batch: usize,
    /// Elements per item.
    pub item: usize,
    /// Total elements.
    pub numel: usize,
    /// Per-item seeds (per_item, a1111) or the one batch seed.
    pub seeds: Vec<u64>,
    /// Per-item subseeds (or the one batch subseed) when a variation strength is set.
    pub subseeds: Option<Vec<u64>>,
    /// The variation strength (0 when unused).
    pub strength: f64,
    /// The seed-resize source size, when it differs from the target.
    pub resize: Option<SeedResize>,
}

/// Element types the policies write: how to draw them, and the float type the variation
/// slerp runs in for them (float32 as A1111 does, float64 for float64 output).
trait Kind {
    type T: Copy + Send + Sync + Default;
    type W: SlerpFloat;
    fn fill(g: &mut Generator, out: &mut [Self::T]);
    /// Draws `n` values for the slerp.
    fn draw_work(g: &mut Generator, n: usize) -> Vec<Self::W>;
    fn from_work(x: Self::W) -> Self::T;
}

fn draw_f32_work(g: &mut Generator, n: usize) -> Vec<f32> {
    let mut v = vec![0f32; n];
    g.fill_f32(&mut v);
    v
}

struct KF32;
struct KF64;
struct KF16;
struct KBF16;

impl Kind for KF32 {
    type T = f32;
    type W = f32;
    fn fill(g: &mut Generator, out: &mut [f32]) {
        g.fill_f32(out)
    }
    fn draw_work(g: &mut Generator, n: usize) -> Vec<f32> {
        draw_f32_work(g, n)
    }
    fn from_work(x: f32) -> f32 {
        x
    }
}

impl Kind for KF64 {
    type T = f64;
    type W = f64;
    fn fill(g: &mut Generator, out: &mut [f64]) {
        g.fill_f64(out)
    }
    fn draw_work(g: &mut Generator, n: usize) -> Vec<f64> {
        let mut v = vec![0f64; n];
        g.fill_f64(&mut v);
        v
    }
    fn from_work(x: f64) -> f64 {
        x
    }
}

impl Kind for KF16 {
    type T = u16;
    type W = f32;
    fn fill(g: &mut Generator, out: &mut [u16]) {
        g.fill_f16(out)
    }
    fn draw_work(g: &mut Generator, n: usize) -> Vec<f32> {
        draw_f32_work(g, n)
    }
    fn from_work(x: f32) -> u16 {
        f32_to_f16_bits(x)
    }
}

impl Kind for KBF16 {
    type T = u16;
    type W = f32;
    fn fill(g: &mut Generator, out: &mut [u16]) {
        g.fill_bf16(out)
    }
    fn draw_work(g: &mut Generator, n: usize) -> Vec<f32> {
        draw_f32_work(g, n)
    }
    fn from_work(x: f32) -> u16 {
        f32_to_bf16_bits(x)
    }
}

/// Items smaller than this are generated in parallel across items.
const ITEM_PAR_MAX: usize = 1 << 17;

fn run<K: Kind>(req: &NoiseRequest, plan: &Plan, out: &mut [K::T]) -> Result<()> {
    let src = req.source;
    let item = plan.item;
    if plan.numel == 0 {
        return Ok(());
    }
    let variation = plan.subseeds.is_some();
    match req.seed_mode {
        SeedMode::Batch => {
            let seed = plan.seeds[0];
            match &req.batch_index {
                None if !variation => K::fill(&mut Generator::new(seed, src), out),
                None => {
                    let mut g = Generator::new(seed, src);
                    let noise = K::draw_work(&mut g, plan.numel);
                    let sub_seed = plan.subseeds.as_ref().map(|s| s[0]).unwrap_or(0);
                    let sub = K::draw_work(&mut Generator::new(sub_seed, src), plan.numel);
                    let (c, h, w) = (req.shape[1], req.shape[2], req.shape[3]);
                    out.par_chunks_mut(item)
                        .zip(noise.par_chunks(item).zip(sub.par_chunks(item)))
                        .try_for_each(|(o, (n, s))| {
                            let r = slerp_chw(plan.strength, n, s, (c, h, w))?;
                            for (d, x) in o.iter_mut().zip(r) {
                                *d = K::from_work(x);
                            }
                            Ok(())
                        })?;
                }
                Some(bi) => {
                    let max = bi.iter().copied().max().unwrap_or(0);
                    let mut g = Generator::new(seed, src);
                    let mut sg = plan.subseeds.as_ref().map(|s| Generator::new(s[0], src));
                    let (c, h, w) = (req.shape[1], req.shape[2], req.shape[3]);
                    for draw in 0..=max {
                        let slots: Vec<usize> = (0..bi.len()).filter(|&j| bi[j] == draw).collect();
                        let dtype = req.dtype;
                        let Some(&first) = slots.first() else {
                            g.skip(item, dtype);
                            if let Some(sg) = sg.as_mut() {
                                sg.skip(item, dtype);
                            }
                            continue;
                        };
                        if let Some(sg) = sg.as_mut() {
                            let n = K::draw_work(&mut g, item);
                            let s = K::draw_work(sg, item);
                            let r = slerp_chw(plan.strength, &n, &s, (c, h, w))?;
                            for (d, x) in out[first * item..(first + 1) * item].iter_mut().zip(r) {
                                *d = K::from_work(x);
                            }
                        } else {
                            K::fill(&mut g, &mut out[first * item..(first + 1) * item]);
                        }
                        for &j in &slots[1..] {
                            out.copy_within(first * item..(first + 1) * item, j * item);
                        }
                    }
                }
            }
        }
        SeedMode::PerItem | SeedMode::A1111 => {
            let one = |i: usize, o: &mut [K::T]| per_image::<K>(req, plan, i, o);
            if item < ITEM_PAR_MAX {
                out.par_chunks_mut(item)
                    .enumerate()
                    .try_for_each(|(i, o)| one(i, o))?;
            } else {
                for (i, o) in out.chunks_mut(item).enumerate() {
                    one(i, o)?;
                }
            }
        }
    }
    Ok(())
}

/// A1111's `ImageRNG.first` for image `i` (also plain per-item generation).
fn per_image<K: Kind>(req: &NoiseRequest, plan: &Plan, i: usize, out: &mut [K::T]) -> Result<()> {
    let src = req.source;
    let seed = plan.seeds[i];
    let fresh = |s: u64| Generator::new(s, src);
    let (c, h, w) = if req.shape.len() == 4 {
        (req.shape[1], req.shape[2], req.shape[3])
    } else {
        (0, 0, 0)
    };
    let (nh, nw) = match plan.resize {
        Some(r) => (r.height, r.width),
        None => (h, w),
    };
    let small = c * nh * nw;
    let noise: Option<Vec<K::T>> = match &plan.subseeds {
        Some(subs) => {
            let sub = K::draw_work(
                &mut fresh(subs[i]),
                if plan.resize.is_some() {
                    small
                } else {
                    out.len()
                },
            );
            let n = K::draw_work(&mut fresh(seed), sub.len());
            let r = slerp_chw(plan.strength, &n, &sub, (c, nh, nw))?;
            let v: Vec<K::T> = r.into_iter().map(K::from_work).collect();
            if plan.resize.is_none() {
                out.copy_from_slice(&v);
                return Ok(());
            }
            Some(v)
        }
        None => None,
    };
    match plan.resize {
        None => K::fill(&mut fresh(seed), out),
        Some(_) => {
            let small_noise = match noise {
                Some(v) => v,
                None => {
                    let mut v = vec![K::T::default(); small];
                    K::fill(&mut fresh(seed), &mut v);
                    v
                }
            };
            K::fill(&mut fresh(seed), out);
            paste_centered(out, (c, h, w), &small_noise, (nh, nw));
        }
    }
    Ok(())
}

/// Generates the request into `out`, whose length must be the shape's element count and
/// whose dtype must be `req.dtype` (field `"out"` otherwise). All checks, including
/// `max_elements`, happen before anything is generated, except one that depends on the drawn
/// values: a variation slerp column whose seed and subseed noise are parallel (field
/// `"subseeds"`, see [`slerp_chw`]), after which `out` is partly written.
pub fn sample_noise_into(req: &NoiseRequest, mut out: NoiseSliceMut<'_>) -> Result<()> {
    let plan = req.plan()?;
    if out.len() != plan.numel || out.dtype() != req.dtype {
        return Err(CoreError::invalid(
            "out",
            format!(
                "expected a {} buffer of {} elements, got {} of {}",
                req.dtype,
                plan.numel,
                out.dtype(),
                out.len()
            ),
        ));
    }
    match out.reborrow() {
        NoiseSliceMut::F32(v) => run::<KF32>(req, &plan, v),
        NoiseSliceMut::F64(v) => run::<KF64>(req, &plan, v),
        NoiseSliceMut::F16(v) => run::<KF16>(req, &plan, v),
        NoiseSliceMut::BF16(v) => run::<KBF16>(req, &plan, v),
    }
}

/// Generates the request into a new buffer (validated before allocating).
pub fn sample_noise(req: &NoiseRequest) -> Result<Noise> {
    let plan = req.plan()?;
    let mut noise = Noise::zeros(req.dtype, plan.numel);
    sample_noise_into(req, noise.as_slice_mut())?;
    Ok(noise)
}
