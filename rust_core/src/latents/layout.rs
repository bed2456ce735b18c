//! The initial latents of a preset's pipeline: the shape its `prepare_latents` draws (axis
//! order, VAE factors, frame rules), the dtype it draws in, and what it does with the draw
//! afterwards (the cast to the pipeline's dtype, Flux's and LTX's packing), as diffusers 0.42.1
//! does it (the pipeline file is each preset's `pipeline_file`).
//!
//! A packing is a permutation inside each batch item, so it is applied item by item: the unary
//! payload, the typed buffer and the bounded stream all produce the same bytes.

use crate::error::{CoreError, Result};
use crate::rng::dtype::{round_to_bf16, round_to_f16, Dtype, Noise, NoiseSliceMut};
use crate::schedule::presets::{Axes, FrameRule, LatentLayout, Packing, Preset};

/// The shapes of a preset's latents.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shaped {
    /// What `randn_tensor` draws, batch first.
    pub(crate) drawn: Vec<usize>,
    /// What `prepare_latents` returns.
    pub(crate) output: Vec<usize>,
    /// The packing permutation of one item, when the pipeline packs.
    pub(crate) permute: Option<ItemPermute>,
    /// Whether the pipeline draws float32 whatever its dtype.
    pub(crate) draws_float32: bool,
}

/// The latents of `preset`'s pipeline for `batch` items of `height` x `width` pixels (and
/// `num_frames` frames for video presets; `None`: the pipeline's default).
pub(crate) fn preset_shape(
    preset: &Preset,
    batch: usize,
    width: usize,
    height: usize,
    num_frames: Option<usize>,
) -> Result<Shaped> {
    let layout = &preset.layout;
    let (h, w) = (
        latent_side(layout, height, "height")?,
        latent_side(layout, width, "width")?,
    );
    let c = layout.channels;
    let drawn = match (layout.vae_temporal_factor, layout.axes) {
        (None, _) => {
            if num_frames.is_some() {
                return Err(CoreError::invalid(
                    "num_frames",
                    format!(
                        "preset {:?} is an image model ({}); num_frames applies to video presets",
                        preset.name, preset.pipeline
                    ),
                ));
            }
            vec![batch, c, h, w]
        }
        (Some(temporal), axes) => {
            let frames = num_frames.or(preset.num_frames).unwrap_or(1);
            let f = latent_frames(layout.frames, temporal, frames)?;
            match axes {
                Axes::Bfchw => vec![batch, f, c, h, w],
                _ => vec![batch, c, f, h, w],
            }
        }
    };
    let (output, permute) = match layout.packing {
        Packing::None => (drawn.clone(), None),
        Packing::Flux2x2 => (
            vec![batch, (h / 2) * (w / 2), c * 4],
            Some(ItemPermute::new(
                vec![c, h / 2, 2, w / 2, 2],
                vec![1, 3, 0, 2, 4],
            )),
        ),
        Packing::LtxTokens => {
            let tokens: usize = drawn[2..].iter().product();
            (
                vec![batch, tokens, c],
                Some(ItemPermute::new(vec![c, tokens], vec![1, 0])),
            )
        }
    };
    Ok(Shaped {
        drawn,
        output,
        permute,
        draws_float32: layout.draws_float32,
    })
}

/// Latent cells along one side: the pipeline's `check_inputs` multiple, then
/// `pack * (size // (vae * pack))` (`size // vae` when unpacked; Flux:
/// `2 * (size // (vae_scale_factor * 2))`).
fn latent_side(layout: &LatentLayout, size: usize, field: &str) -> Result<usize> {
    let multiple = layout.size_multiple;
    if !size.is_multiple_of(multiple) {
        return Err(CoreError::invalid(
            field,
            format!("must be a multiple of {multiple}, got {size}"),
        ));
    }
    let step = layout.vae_scale_factor * layout.pack_factor;
    if size < step {
        return Err(CoreError::invalid(
            field,
            format!("must be at least {step} pixels, got {size}"),
        ));
    }
    Ok(layout.pack_factor * (size / step))
}

/// Latent frames for `num_frames` video frames.
fn latent_frames(rule: FrameRule, temporal: usize, num_frames: usize) -> Result<usize> {
    if num_frames == 0 {
        return Err(CoreError::invalid(
            "num_frames",
            "must be at least 1, got 0",
        ));
    }
    let frames = match rule {
        // WanPipeline.__call__ rounds num_frames to 4k + 1 (down) before prepare_latents.
        FrameRule::WanRound if num_frames % temporal != 1 => {
            (num_frames / temporal * temporal + 1).max(1)
        }
        _ => num_frames,
    };
    let latent = (frames - 1) / temporal + 1;
    Ok(match rule {
        // CogVideoXPipeline: `additional_frames = patch_size_t - latent_frames % patch_size_t`.
        FrameRule::PadTo(patch) if !latent.is_multiple_of(patch) => latent + patch - latent % patch,
        _ => latent,
    })
}

/// A permutation of the axes of one batch item viewed as `view` (C order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemPermute {
    view: Vec<usize>,
    perm: Vec<usize>,
}

impl ItemPermute {
    fn new(view: Vec<usize>, perm: Vec<usize>) -> ItemPermute {
        ItemPermute { view, perm }
    }

    /// Elements per item.
    #[cfg(test)]
    fn item(&self) -> usize {
        self.view.iter().product()
    }

    /// `dst = src.view(view).permute(perm).reshape(-1)` for one item.
    fn apply<T: Copy>(&self, src: &[T], dst: &mut [T]) {
        let nd = self.view.len();
        let mut strides = vec![1usize; nd];
        for i in (0..nd.saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.view[i + 1];
        }
        let dims: Vec<usize> = self.perm.iter().map(|&p| self.view[p]).collect();
        let from: Vec<usize> = self.perm.iter().map(|&p| strides[p]).collect();
        let (inner, inner_stride) = (dims[nd - 1], from[nd - 1]);
        let mut index = vec![0usize; nd - 1];
        let mut o = 0;
        'items: loop {
            let base: usize = index.iter().zip(&from).map(|(i, s)| i * s).sum();
            for k in 0..inner {
                dst[o] = src[base + k * inner_stride];
                o += 1;
            }
            let mut d = nd - 1;
            loop {
                if d == 0 {
                    break 'items;
                }
                d -= 1;
                index[d] += 1;
                if index[d] < dims[d] {
                    break;
                }
                index[d] = 0;
            }
        }
    }
}

/// What happens to the drawn noise before it is returned: the cast from the draw dtype and
/// the packing, item by item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Transform {
    /// The dtype of the draw.
    pub(crate) draw: Dtype,
    /// The dtype returned.
    pub(crate) out: Dtype,
    /// The packing of one item.
    pub(crate) permute: Option<ItemPermute>,
    /// Elements per item.
    pub(crate) item: usize,
}

impl Transform {
    /// The drawn `src` (whole items, draw dtype) as returned, into `dst` (out dtype).
    pub(crate) fn apply(&self, src: &Noise, mut dst: NoiseSliceMut<'_>) -> Result<()> {
        if src.len() != dst.len() || src.dtype() != self.draw || dst.dtype() != self.out {
            return Err(CoreError::invalid(
                "out",
                format!(
                    "{} {} elements cannot hold {} {} elements",
                    dst.len(),
                    dst.dtype().name(),
                    src.len(),
                    src.dtype().name()
                ),
            ));
        }
        let Some(permute) = &self.permute else {
            cast_into(src, dst);
            return Ok(());
        };
        let mut cast = Noise::zeros(self.out, 0);
        let items: &Noise = if self.draw == self.out {
            src
        } else {
            cast.resize(src.len());
            cast_into(src, cast.as_slice_mut());
            &cast
        };
        let item = self.item.max(1);
        macro_rules! per_item {
            ($s:expr, $d:expr) => {
                for (s, d) in $s.chunks(item).zip($d.chunks_mut(item)) {
                    permute.apply(s, d);
                }
            };
        }
        match (items, dst.reborrow()) {
            (Noise::F32(s), NoiseSliceMut::F32(d)) => per_item!(s, d),
            (Noise::F64(s), NoiseSliceMut::F64(d)) => per_item!(s, d),
            (Noise::F16(s), NoiseSliceMut::F16(d)) | (Noise::BF16(s), NoiseSliceMut::BF16(d)) => {
                per_item!(s, d)
            }
            _ => return Err(CoreError::invalid("out", "dtype mismatch in the packing")),
        }
        Ok(())
    }
}

/// `src` cast to `dst`'s dtype (torch's `.to(dtype)`: round to nearest even; float32 to
/// float64 is exact), or copied when the dtypes agree.
fn cast_into(src: &Noise, dst: NoiseSliceMut<'_>) {
    match (src, dst) {
        (Noise::F32(s), NoiseSliceMut::F32(d)) => d.copy_from_slice(s),
        (Noise::F32(s), NoiseSliceMut::F64(d)) => {
            for (o, x) in d.iter_mut().zip(s) {
                *o = f64::from(*x);
            }
        }
        (Noise::F32(s), NoiseSliceMut::F16(d)) => round_to_f16(s, d),
        (Noise::F32(s), NoiseSliceMut::BF16(d)) => round_to_bf16(s, d),
        (Noise::F64(s), NoiseSliceMut::F64(d)) => d.copy_from_slice(s),
        (Noise::F16(s), NoiseSliceMut::F16(d)) | (Noise::BF16(s), NoiseSliceMut::BF16(d)) => {
            d.copy_from_slice(s)
        }
        // Draws are float32 or already in the output dtype (see `Transform`).
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::presets::find;

    fn shape(preset: &str, w: usize, h: usize, f: Option<usize>) -> Result<Shaped> {
        preset_shape(find(preset).expect("preset"), 2, w, h, f)
    }

    #[test]
    fn video_layouts_follow_their_pipelines() {
        let wan = shape("wan2.1", 832, 480, Some(80)).expect("wan");
        // 80 frames: WanPipeline makes them 80 // 4 * 4 + 1 = 81, (81 - 1) // 4 + 1 = 21.
        assert_eq!(wan.drawn, vec![2, 16, 21, 60, 104]);
        let wan = shape("wan2.2", 832, 480, Some(78)).expect("wan");
        assert_eq!(wan.drawn[2], 20);
        assert!(wan.draws_float32 && wan.permute.is_none());
        let cog = shape("cogvideox-1.5", 1360, 768, Some(81)).expect("cog");
        assert_eq!(cog.drawn, vec![2, 22, 16, 96, 170]);
        let cog10 = shape("cogvideox", 720, 480, Some(81)).expect("cog 1.0");
        assert_eq!(cog10.drawn, vec![2, 21, 16, 60, 90]);
        let ltx = shape("ltx-video", 704, 512, Some(161)).expect("ltx");
        assert_eq!(ltx.drawn, vec![2, 128, 21, 16, 22]);
        assert_eq!(ltx.output, vec![2, 21 * 16 * 22, 128]);
        let mochi = shape("mochi", 848, 480, None).expect("mochi");
        assert_eq!(mochi.drawn, vec![2, 12, 4, 60, 106]);
        assert_eq!(
            shape("ltx-video", 700, 512, None).expect_err("32").field(),
            "width"
        );
        assert_eq!(
            shape("sdxl", 512, 512, Some(9)).expect_err("image").field(),
            "num_frames"
        );
    }

    #[test]
    fn flux_packing_matches_the_pipeline_permutation() {
        let flux = shape("flux-dev", 32, 48, None).expect("flux");
        assert_eq!(flux.drawn, vec![2, 16, 6, 4]);
        assert_eq!(flux.output, vec![2, 6, 64]);
        let permute = flux.permute.expect("packed");
        let src: Vec<usize> = (0..permute.item()).collect();
        let mut dst = vec![0usize; src.len()];
        permute.apply(&src, &mut dst);
        // Token (i, j) holds channel c's 2x2 patch: (c, 2i + a, 2j + b) at c*4 + a*2 + b.
        let (h, w) = (6, 4);
        for i in 0..h / 2 {
            for j in 0..w / 2 {
                for c in 0..16 {
                    for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let token = i * (w / 2) + j;
                        let got = dst[token * 64 + c * 4 + a * 2 + b];
                        assert_eq!(got, c * h * w + (2 * i + a) * w + 2 * j + b);
                    }
                }
            }
        }
    }
}
