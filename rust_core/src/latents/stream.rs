//! The latents payload produced front to back, with memory bounded by the piece being written:
//! what StreamInitLatents sends, byte-identical to the unary payload.
//!
//! - Plain draws (one per item, or one for the whole batch, or ComfyUI's `batch_index` draws)
//!   are read piece by piece ([`SequentialDraw`]); a `batch_index` item starts from the batch
//!   generator advanced to its draw (checkpoints keep repeated and backward indices cheap).
//! - Items with A1111 variation seeds or seed resize are computed one item at a time (the
//!   slerp normalises along H, so an item is the smallest independent unit).
//! - Batch-mode variation seeds (one generator over the whole batch, a sigmaserve combination
//!   neither tool has) are computed whole; [`LatentsRequest::working_bytes`] reports it so a
//!   server can admit it against its memory budget.

use std::collections::VecDeque;

use crate::error::{CoreError, Result};
use crate::rng::{
    self, policy::Plan, Dtype, Generator, Noise, NoiseRequest, NoiseSliceMut, SeedMode,
    SequentialDraw, Source,
};

use super::layout::Transform;
use super::request::LatentsRequest;
use super::scale::{put_scaled, Elem};

/// At most this many generator checkpoints are kept for `batch_index` draws.
const MAX_CHECKPOINTS: usize = 64;

/// The scaled little-endian payload of a request, written in order by [`PayloadStream::write_next`].
#[derive(Debug)]
pub struct PayloadStream {
    dtype: Dtype,
    factor: f64,
    total: usize,
    offset: usize,
    elements: Reader,
    scratch: Noise,
    /// The bytes of an element a previous piece ended inside.
    split: Option<[u8; 8]>,
}

impl PayloadStream {
    /// The stream of `request`'s payload.
    pub fn new(request: &LatentsRequest) -> Result<PayloadStream> {
        Ok(PayloadStream {
            dtype: request.dtype(),
            factor: request.init_noise_sigma(),
            total: request.nbytes(),
            offset: 0,
            elements: Reader::new(request)?,
            scratch: Noise::zeros(request.dtype(), 0),
            split: None,
        })
    }

    /// Payload bytes in all.
    pub fn total_bytes(&self) -> usize {
        self.total
    }

    /// Payload bytes not written yet.
    pub fn remaining_bytes(&self) -> usize {
        self.total - self.offset
    }

    /// Writes the next `out.len()` payload bytes (at most [`PayloadStream::remaining_bytes`]).
    pub fn write_next(&mut self, out: &mut [u8]) -> Result<()> {
        if out.len() > self.remaining_bytes() {
            return Err(CoreError::invalid(
                "chunk_bytes",
                format!("{} bytes asked, {} left", out.len(), self.remaining_bytes()),
            ));
        }
        match self.dtype {
            Dtype::Float32 => self.write_typed::<f32>(out),
            Dtype::Float64 => self.write_typed::<f64>(out),
            Dtype::Float16 | Dtype::BFloat16 => self.write_typed::<u16>(out),
        }
    }

    fn write_typed<T: Elem>(&mut self, mut out: &mut [u8]) -> Result<()> {
        let size = T::SIZE;
        let written = out.len();
        if let Some(bytes) = self.split {
            let inside = self.offset % size;
            let n = (size - inside).min(out.len());
            out[..n].copy_from_slice(&bytes[inside..inside + n]);
            out = &mut out[n..];
            if inside + n == size {
                self.split = None;
            }
        }
        let whole = out.len() / size;
        let (body, rest) = out.split_at_mut(whole * size);
        if whole > 0 {
            self.scratch.resize(whole);
            self.elements.read(self.scratch.as_slice_mut())?;
            put_typed::<T>(&self.scratch, body, self.dtype, self.factor);
        }
        if !rest.is_empty() {
            self.scratch.resize(1);
            self.elements.read(self.scratch.as_slice_mut())?;
            let mut bytes = [0u8; 8];
            put_typed::<T>(&self.scratch, &mut bytes[..size], self.dtype, self.factor);
            let n = rest.len();
            rest.copy_from_slice(&bytes[..n]);
            self.split = Some(bytes);
        }
        self.offset += written;
        Ok(())
    }
}

fn put_typed<T: Elem>(values: &Noise, out: &mut [u8], dtype: Dtype, factor: f64) {
    match values {
        Noise::F32(v) => put_scaled(v, out, dtype, factor),
        Noise::F64(v) => put_scaled(v, out, dtype, factor),
        Noise::F16(v) | Noise::BF16(v) => put_scaled(v, out, dtype, factor),
    }
}

/// The unscaled elements as returned: the draw itself, or the draw cast and packed item by
/// item (memory: one item of each).
#[derive(Debug)]
enum Reader {
    Direct(Elements),
    Transformed {
        elements: Elements,
        transform: Transform,
        drawn: Noise,
        item: Noise,
        at: usize,
    },
}

impl Reader {
    fn new(request: &LatentsRequest) -> Result<Reader> {
        let elements = Elements::new(request)?;
        Ok(match &request.transform {
            None => Reader::Direct(elements),
            Some(transform) => Reader::Transformed {
                elements,
                transform: transform.clone(),
                drawn: Noise::zeros(transform.draw, transform.item),
                item: Noise::zeros(transform.out, transform.item),
                at: transform.item,
            },
        })
    }

    /// The next `out.len()` elements.
    fn read(&mut self, mut out: NoiseSliceMut<'_>) -> Result<()> {
        let Reader::Transformed {
            elements,
            transform,
            drawn,
            item,
            at,
        } = self
        else {
            let Reader::Direct(elements) = self else {
                return Err(exhausted());
            };
            return elements.read(out);
        };
        let total = out.len();
        let mut done = 0;
        while done < total {
            if *at == item.len() {
                elements.read(drawn.as_slice_mut())?;
                transform.apply(drawn, item.as_slice_mut())?;
                *at = 0;
            }
            let n = (item.len() - *at).min(total - done);
            copy_range(item, *at, out.sub(done, n));
            *at += n;
            done += n;
        }
        Ok(())
    }
}

/// The unscaled elements of the draw, in order.
#[derive(Debug)]
enum Elements {
    /// Successive plain draws.
    Draws {
        pending: VecDeque<Draw>,
        current: Option<SequentialDraw>,
        starter: DrawStarter,
    },
    /// Items computed one at a time (variation seeds, seed resize).
    Items {
        requests: VecDeque<NoiseRequest>,
        current: Noise,
        at: usize,
    },
}

/// A plain draw still to come.
#[derive(Debug, Clone, Copy)]
enum Draw {
    /// A fresh generator's first draw: (seed, values).
    Fresh(u64, usize),
    /// Draw `index` of the batch generator, `item` values each (ComfyUI `batch_index`).
    BatchIndex(usize),
}

/// What starting a [`Draw`] needs: the source, the dtype and, for `batch_index`, the batch
/// generator's checkpoints.
#[derive(Debug)]
struct DrawStarter {
    source: Source,
    dtype: Dtype,
    item: usize,
    /// (draw index, generator positioned at that draw), sorted by index.
    checkpoints: Vec<(usize, Generator)>,
}

impl DrawStarter {
    fn new(source: Source, dtype: Dtype, item: usize, batch_seed: Option<u64>) -> DrawStarter {
        let checkpoints = batch_seed
            .map(|seed| vec![(0, Generator::new(seed, source))])
            .unwrap_or_default();
        DrawStarter {
            source,
            dtype,
            item,
            checkpoints,
        }
    }

    fn start(&mut self, draw: Draw) -> Result<SequentialDraw> {
        match draw {
            Draw::Fresh(seed, numel) => Ok(SequentialDraw::new(
                Generator::new(seed, self.source),
                numel,
                self.dtype,
            )),
            Draw::BatchIndex(index) => {
                let generator = self.generator_at(index)?;
                Ok(SequentialDraw::new(generator, self.item, self.dtype))
            }
        }
    }

    /// The batch generator positioned at draw `index`: the nearest checkpoint at or below it,
    /// advanced draw by draw (skipping only advances the stream).
    fn generator_at(&mut self, index: usize) -> Result<Generator> {
        let at = self.checkpoints.partition_point(|(i, _)| *i <= index);
        let (from, base) = self
            .checkpoints
            .get(at.wrapping_sub(1))
            .ok_or_else(|| CoreError::invalid("batch_index", "no batch generator"))?;
        let mut generator = base.clone();
        for _ in *from..index {
            generator.skip(self.item, self.dtype);
        }
        if *from != index && self.checkpoints.len() < MAX_CHECKPOINTS {
            self.checkpoints.insert(at, (index, generator.clone()));
        }
        Ok(generator)
    }
}

impl Elements {
    fn new(request: &LatentsRequest) -> Result<Elements> {
        let (noise, plan) = (&request.noise, &request.plan);
        let dtype = noise.dtype;
        let draws = |pending: VecDeque<Draw>, batch_seed: Option<u64>| Elements::Draws {
            pending,
            current: None,
            starter: DrawStarter::new(noise.source, dtype, plan.item, batch_seed),
        };
        if request.is_plain() {
            let pending = match noise.seed_mode {
                SeedMode::Batch => VecDeque::from([Draw::Fresh(plan.seeds[0], plan.numel)]),
                _ => plan
                    .seeds
                    .iter()
                    .map(|&s| Draw::Fresh(s, plan.item))
                    .collect(),
            };
            return Ok(draws(pending, None));
        }
        if noise.seed_mode == SeedMode::Batch {
            if let (Some(indices), None) = (&noise.batch_index, &plan.subseeds) {
                let pending = indices.iter().map(|&i| Draw::BatchIndex(i)).collect();
                return Ok(draws(pending, Some(plan.seeds[0])));
            }
            // Variation seeds over one batch generator: computed whole (see the module docs).
            let whole = rng::sample_noise(noise)?;
            return Ok(Elements::Items {
                requests: VecDeque::new(),
                current: whole,
                at: 0,
            });
        }
        Ok(Elements::Items {
            requests: (0..plan.batch)
                .map(|i| item_request(noise, plan, i))
                .collect(),
            current: Noise::zeros(dtype, 0),
            at: 0,
        })
    }

    /// The next `out.len()` elements.
    fn read(&mut self, mut out: NoiseSliceMut<'_>) -> Result<()> {
        let total = out.len();
        let mut done = 0;
        while done < total {
            let n = match self {
                Elements::Draws {
                    pending,
                    current,
                    starter,
                } => {
                    if current.as_ref().is_none_or(|d| d.remaining() == 0) {
                        let next = pending.pop_front().ok_or_else(exhausted)?;
                        *current = Some(starter.start(next)?);
                    }
                    let draw = current.as_mut().ok_or_else(exhausted)?;
                    let n = draw.remaining().min(total - done);
                    draw.read(out.sub(done, n))?;
                    n
                }
                Elements::Items {
                    requests,
                    current,
                    at,
                } => {
                    if *at == current.len() {
                        let next = requests.pop_front().ok_or_else(exhausted)?;
                        *current = rng::sample_noise(&next)?;
                        *at = 0;
                    }
                    let n = (current.len() - *at).min(total - done);
                    copy_range(current, *at, out.sub(done, n));
                    *at += n;
                    n
                }
            };
            done += n;
        }
        Ok(())
    }
}

fn exhausted() -> CoreError {
    CoreError::invalid("out", "read past the end of the payload")
}

/// Item `i` of a per_item / a1111 request as a request of its own (one fresh generator, the
/// item's resolved seed and subseed): the policy computes it exactly as inside the batch.
fn item_request(noise: &NoiseRequest, plan: &Plan, i: usize) -> NoiseRequest {
    let mut shape = noise.shape.clone();
    shape[0] = 1;
    NoiseRequest {
        shape,
        seeds: vec![plan.seeds[i]],
        seed_mode: SeedMode::PerItem,
        source: noise.source,
        dtype: noise.dtype,
        batch_index: None,
        variation: plan.subseeds.as_ref().map(|subs| rng::Variation {
            subseeds: vec![subs[i]],
            strength: plan.strength,
        }),
        seed_resize_from: noise.seed_resize_from,
        max_elements: None,
    }
}

fn copy_range(src: &Noise, at: usize, out: NoiseSliceMut<'_>) {
    let end = at + out.len();
    match (src, out) {
        (Noise::F32(v), NoiseSliceMut::F32(o)) => o.copy_from_slice(&v[at..end]),
        (Noise::F64(v), NoiseSliceMut::F64(o)) => o.copy_from_slice(&v[at..end]),
        (Noise::F16(v), NoiseSliceMut::F16(o)) | (Noise::BF16(v), NoiseSliceMut::BF16(o)) => {
            o.copy_from_slice(&v[at..end])
        }
        _ => {}
    }
}
