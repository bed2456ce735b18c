//! The three ways of producing a payload agree with each other and with the seed policy's
//! whole draw scaled element by element, on random requests of every mode.

use super::*;
use crate::rng::{self, Dtype, Noise, NoiseRequest};

/// splitmix64: a small deterministic generator for the random cases.
struct Cases(u64);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn args(shape: &[i128], seeds: &[i128]) -> LatentsArgs {
    LatentsArgs {
        shape: Some(shape.to_vec()),
        seeds: seeds.to_vec(),
        ..LatentsArgs::default()
    }
}

fn random_args(cases: &mut Cases) -> LatentsArgs {
    let batch = 1 + cases.below(3) as i128;
    let (c, h, w) = (
        1 + cases.below(4) as i128,
        1 + cases.below(9) as i128,
        1 + cases.below(9) as i128,
    );
    let mode = *cases.pick(&["per_item", "batch", "a1111"]);
    let source = *cases.pick(&["cpu", "cuda", "a1111_nv"]);
    let dtype = *cases.pick(&["float32", "float64", "float16", "bfloat16"]);
    let seeds: Vec<i128> = match mode {
        "per_item" => (0..batch).map(|_| cases.below(1 << 40) as i128).collect(),
        "batch" => vec![cases.below(1 << 40) as i128],
        _ => vec![cases.below(1000) as i128],
    };
    let mut noise_options = Vec::new();
    let feature = cases.below(4);
    if mode == "batch" && feature == 1 {
        let indices = (0..batch)
            .map(|_| OptionValue::Int(cases.below(4) as i128))
            .collect();
        noise_options.push(("batch_index".to_owned(), OptionValue::List(indices)));
    }
    if feature == 2 && h > 1 {
        let subs = match mode {
            "per_item" => (0..batch).map(|i| OptionValue::Int(i + 7)).collect(),
            _ => vec![OptionValue::Int(11)],
        };
        noise_options.push(("subseeds".to_owned(), OptionValue::List(subs)));
        noise_options.push((
            "subseed_strength".to_owned(),
            OptionValue::Float(0.1 + cases.below(8) as f64 / 10.0),
        ));
    }
    if feature == 3 && mode != "batch" {
        let size = vec![
            OptionValue::Int(1 + cases.below(12) as i128),
            OptionValue::Int(2 + cases.below(12) as i128),
        ];
        noise_options.push(("seed_resize_from".to_owned(), OptionValue::List(size)));
    }
    LatentsArgs {
        seed_mode: Some(mode.to_owned()),
        source: Some(source.to_owned()),
        dtype: Some(dtype.to_owned()),
        sigma: Some(*cases.pick(&[1.0, 14.614_643, 0.5, 0.0])),
        noise_options,
        ..args(&[batch, c, h, w], &seeds)
    }
}

/// The policy's whole draw, scaled element by element (the reference).
fn reference(request: &LatentsRequest) -> Vec<u8> {
    let mut noise: Noise = rng::sample_noise(request.noise()).expect("draw");
    scale_noise(noise.as_slice_mut(), request.init_noise_sigma());
    noise.to_le_bytes()
}

fn streamed(request: &LatentsRequest, step: usize) -> Vec<u8> {
    let mut stream = PayloadStream::new(request).expect("stream");
    let mut out = vec![0u8; stream.total_bytes()];
    let mut at = 0;
    while stream.remaining_bytes() > 0 {
        let n = step.min(stream.remaining_bytes());
        stream.write_next(&mut out[at..at + n]).expect("piece");
        at += n;
    }
    out
}

fn written(request: &LatentsRequest, start: usize) -> Vec<u8> {
    let mut buf = vec![0u8; start + request.nbytes() + 1];
    // An odd offset exercises the realigning move.
    let offset = 1;
    let end = offset + start + request.nbytes();
    request
        .write_payload(&mut buf[offset..end], start)
        .expect("payload");
    buf[offset + start..end].to_vec()
}

#[test]
fn payloads_agree_on_random_requests() {
    let mut cases = Cases(2024);
    let mut checked = 0;
    for _ in 0..400 {
        let args = random_args(&mut cases);
        let Ok(request) = LatentsRequest::new(args.clone()) else {
            continue; // combinations the policy refuses are tested elsewhere
        };
        let expected = reference(&request);
        let step = 1 + cases.below(97) as usize;
        assert_eq!(streamed(&request, step), expected, "stream {args:?}");
        assert_eq!(written(&request, 3), expected, "payload {args:?}");
        let mut noise = Noise::zeros(request.dtype(), request.numel());
        request.fill(noise.as_slice_mut()).expect("fill");
        assert_eq!(noise.to_le_bytes(), expected, "fill {args:?}");
        checked += 1;
    }
    assert!(checked > 300, "only {checked} valid random requests");
}

#[test]
fn batch_index_streams_from_checkpoints() {
    // Backward, repeated and far indices.
    for source in ["cpu", "cuda"] {
        let request = LatentsRequest::new(LatentsArgs {
            seed_mode: Some("batch".into()),
            source: Some(source.into()),
            noise_options: vec![(
                "batch_index".into(),
                OptionValue::List([5, 0, 5, 2, 9].map(OptionValue::Int).to_vec()),
            )],
            ..args(&[5, 2, 3, 7], &[42])
        })
        .expect("request");
        assert_eq!(streamed(&request, 10), reference(&request), "{source}");
    }
}

#[test]
fn shape_rules_name_the_field() {
    let too_many = LatentsRequest::new(args(&[1; 65], &[1])).expect_err("65 dims");
    assert_eq!(too_many.field(), "shape");
    assert!(LatentsRequest::new(args(&[1; 64], &[1])).is_ok());
    let zero = LatentsRequest::new(args(&[1, 0], &[1])).expect_err("zero dim");
    assert_eq!(zero.field(), "shape");
    let no_seeds = LatentsRequest::new(args(&[1, 4], &[])).expect_err("no seeds");
    assert_eq!(no_seeds.field(), "seeds");
    let out_of_range = LatentsRequest::new(args(&[1, 4], &[1 << 64])).expect_err("seed");
    assert_eq!(out_of_range.field(), "seeds");
}

#[test]
fn image_sizes_use_the_preset_format() {
    let image = |preset: PresetArg, width: i128, height: i128| {
        LatentsRequest::new(LatentsArgs {
            width: Some(width),
            height: Some(height),
            batch_size: Some(2),
            preset,
            seeds: vec![1, 2],
            ..LatentsArgs::default()
        })
    };
    let sd = image(PresetArg::Default, 512, 768).expect("sd15");
    assert_eq!(sd.shape(), &[2, 4, 96, 64]);
    let flux = image(PresetArg::Named("flux-dev".into()), 1024, 520).expect("flux");
    // FluxPipeline draws (2, 16, 64, 128) and packs it into 2x2 patches.
    assert_eq!(flux.drawn_shape(), &[2, 16, 64, 128]);
    assert_eq!(flux.shape(), &[2, 32 * 64, 64]);
    let err = image(PresetArg::Default, 500, 512).expect_err("multiple of 8");
    assert_eq!(err.field(), "width");
    let err = image(PresetArg::Unset, 512, 512).expect_err("no preset");
    assert_eq!(err.field(), "preset");
}

#[test]
fn scale_comes_from_sigma_or_the_schedule() {
    let with = |sigma: Option<f64>, scheduler: Option<&str>| {
        LatentsRequest::new(LatentsArgs {
            sigma,
            scheduler: scheduler.map(str::to_owned),
            ..args(&[1, 4, 8, 8], &[1])
        })
    };
    assert_eq!(with(None, None).expect("none").init_noise_sigma(), 1.0);
    let lms = with(None, Some("LMSDiscreteScheduler")).expect("lms");
    assert!((lms.init_noise_sigma() - 14.6146).abs() < 1e-3);
    assert_eq!(
        with(Some(f64::NAN), None).expect_err("nan").field(),
        "sigma"
    );
    assert_eq!(
        with(Some(-1.0), None).expect_err("negative").field(),
        "sigma"
    );
}

#[test]
fn generator_states_replay_the_draw() {
    let request = LatentsRequest::new(LatentsArgs {
        return_generator_states: true,
        ..args(&[2, 4, 5, 5], &[3, 4])
    })
    .expect("request");
    let states = request.generator_states().expect("states");
    for (state, seed) in states.iter().zip([3u64, 4]) {
        let mut generator = rng::Generator::new(seed, rng::Source::default());
        generator.randn(100, Dtype::Float32).expect("draw");
        assert_eq!(state, &generator.get_state());
    }
    let a1111 = LatentsRequest::new(LatentsArgs {
        return_generator_states: true,
        seed_mode: Some("a1111".into()),
        ..args(&[2, 4, 5, 5], &[3])
    });
    assert_eq!(a1111.expect_err("a1111").field(), "return_generator_states");
}

#[test]
fn with_seeds_keeps_everything_else() {
    let request = LatentsRequest::new(LatentsArgs {
        sigma: Some(2.0),
        ..args(&[2, 4, 5, 5], &[3, 4])
    })
    .expect("request");
    let other = request.with_seeds(vec![5, -1]).expect("seeds");
    let direct = LatentsRequest::new(LatentsArgs {
        sigma: Some(2.0),
        ..args(&[2, 4, 5, 5], &[5, -1])
    })
    .expect("direct");
    assert_eq!(other, direct);
    assert_eq!(other.wrapped_seeds(), &[5, u64::MAX]);
    assert_eq!(
        request.with_seeds(vec![1]).expect_err("count").field(),
        "seeds"
    );
    let _ = NoiseRequest::new(vec![1], vec![1]);
}

/// The pipeline's packing and cast written out plainly (the reference for the preset paths):
/// Flux `out[b, i*(w/2) + j, c*4 + a*2 + e] = drawn[b, c, 2i + a, 2j + e]`, LTX
/// `out[b, n, c] = drawn[b, c, n]`, a float32 draw cast element by element.
fn preset_reference(request: &LatentsRequest, preset: &str) -> Vec<u8> {
    let drawn: Noise = rng::sample_noise(request.noise()).expect("draw");
    let values: Vec<f64> = drawn.to_f64_vec();
    let shape = request.drawn_shape().to_vec();
    let item: usize = shape[1..].iter().product();
    let mut out = vec![0f64; values.len()];
    for b in 0..shape[0] {
        let src = &values[b * item..(b + 1) * item];
        let dst = &mut out[b * item..(b + 1) * item];
        match preset {
            "flux-dev" => {
                let (c, h, w) = (shape[1], shape[2], shape[3]);
                for ch in 0..c {
                    for i in 0..h / 2 {
                        for j in 0..w / 2 {
                            for (a, e) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                                let token = i * (w / 2) + j;
                                dst[token * c * 4 + ch * 4 + a * 2 + e] =
                                    src[ch * h * w + (2 * i + a) * w + 2 * j + e];
                            }
                        }
                    }
                }
            }
            "ltx-video" => {
                let c = shape[1];
                let n = item / c;
                for ch in 0..c {
                    for t in 0..n {
                        dst[t * c + ch] = src[ch * n + t];
                    }
                }
            }
            _ => dst.copy_from_slice(src),
        }
    }
    // Cast (exact from float32 for float64; nearest-even for the half types), then scale.
    let mut cast = Noise::zeros(request.dtype(), out.len());
    match cast.as_slice_mut() {
        crate::rng::NoiseSliceMut::F32(d) => {
            d.iter_mut().zip(&out).for_each(|(o, x)| *o = *x as f32)
        }
        crate::rng::NoiseSliceMut::F64(d) => d.copy_from_slice(&out),
        crate::rng::NoiseSliceMut::F16(d) => {
            let f: Vec<f32> = out.iter().map(|x| *x as f32).collect();
            crate::rng::dtype::round_to_f16(&f, d);
        }
        crate::rng::NoiseSliceMut::BF16(d) => {
            let f: Vec<f32> = out.iter().map(|x| *x as f32).collect();
            crate::rng::dtype::round_to_bf16(&f, d);
        }
    }
    scale_noise(cast.as_slice_mut(), request.init_noise_sigma());
    cast.to_le_bytes()
}

#[test]
fn preset_payloads_agree_with_the_pipeline_layouts() {
    let mut cases = Cases(1414);
    let mut checked = 0;
    for _ in 0..120 {
        let preset = *cases.pick(&[
            "flux-dev",
            "ltx-video",
            "mochi",
            "wan2.1",
            "cogvideox-1.5",
            "sdxl",
        ]);
        let multiple = match preset {
            "ltx-video" => 32,
            "wan2.1" => 16,
            _ => 8,
        };
        let side = |cases: &mut Cases| (multiple.max(16) * (1 + cases.below(4))) as i128;
        let batch = 1 + cases.below(3) as i128;
        let mode = *cases.pick(&["per_item", "batch"]);
        let seeds: Vec<i128> = match mode {
            "per_item" => (0..batch).map(|_| cases.below(1 << 40) as i128).collect(),
            _ => vec![cases.below(1 << 40) as i128],
        };
        let video = !matches!(preset, "flux-dev" | "sdxl");
        let args = LatentsArgs {
            width: Some(side(&mut cases)),
            height: Some(side(&mut cases)),
            num_frames: video.then(|| 1 + cases.below(20) as i128),
            batch_size: Some(batch),
            preset: PresetArg::Named(preset.into()),
            seeds,
            seed_mode: Some(mode.into()),
            source: Some((*cases.pick(&["cpu", "cuda"])).into()),
            dtype: Some((*cases.pick(&["float32", "float64", "float16", "bfloat16"])).into()),
            num_inference_steps: Some(1 + cases.below(60) as i128),
            ..LatentsArgs::default()
        };
        let request = LatentsRequest::new(args.clone()).expect("valid preset request");
        let expected = preset_reference(&request, preset);
        let step = 1 + cases.below(997) as usize;
        assert_eq!(streamed(&request, step), expected, "stream {args:?}");
        assert_eq!(written(&request, 5), expected, "payload {args:?}");
        let mut noise = Noise::zeros(request.dtype(), request.numel());
        request.fill(noise.as_slice_mut()).expect("fill");
        assert_eq!(noise.to_le_bytes(), expected, "fill {args:?}");
        checked += 1;
    }
    assert_eq!(checked, 120);
}
