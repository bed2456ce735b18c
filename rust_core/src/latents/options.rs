//! `noise_options`: the generator options and the ComfyUI / A1111 seed features of a latents
//! request, parsed once from loosely typed values (Python objects or a protobuf `Struct`).

use crate::error::{CoreError, Result};
use crate::rng::a1111::SeedResize;
use crate::rng::wrap_seed;

/// A loosely typed value as it arrives from Python or a protobuf `Struct` (whose numbers are
/// doubles: integral doubles count as integers).
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// `None` / JSON null.
    Null,
    /// A boolean (never an integer).
    Bool(bool),
    /// An integer (wide enough for every torch seed).
    Int(i128),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<OptionValue>),
    /// Anything else; the text names its type.
    Other(String),
}

impl OptionValue {
    fn type_name(&self) -> &str {
        match self {
            OptionValue::Null => "None",
            OptionValue::Bool(_) => "bool",
            OptionValue::Int(_) => "int",
            OptionValue::Float(_) => "float",
            OptionValue::Str(_) => "str",
            OptionValue::List(_) => "list",
            OptionValue::Other(name) => name,
        }
    }

    fn as_int(&self) -> Option<i128> {
        match self {
            OptionValue::Int(v) => Some(*v),
            OptionValue::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e38 => {
                Some(*f as i128)
            }
            _ => None,
        }
    }

    fn as_number(&self) -> Option<f64> {
        match self {
            OptionValue::Int(v) => Some(*v as f64),
            OptionValue::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// The accepted `noise_options` keys.
pub const NOISE_OPTION_KEYS: [&str; 8] = [
    "cpu_kernel",
    "gpu",
    "batch_index",
    "subseeds",
    "subseed_strength",
    "seed_resize_from",
    "seed_resize_from_w",
    "seed_resize_from_h",
];

/// A1111 sizes latents as pixels // 8 whatever the model (`modules/processing.py`, `opt_f`).
const A1111_LATENT_FACTOR: i128 = 8;

/// Parsed noise options (the source name itself is a request field).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NoiseOptions {
    /// torch CPU kernel name (`"avx2"`, `"default"`).
    pub cpu_kernel: Option<String>,
    /// GPU preset name or `"<SMs>x<threads per SM>"`.
    pub gpu: Option<String>,
    /// ComfyUI's `batch_index`.
    pub batch_index: Option<Vec<usize>>,
    /// A1111 variation subseeds (wrapped like seeds).
    pub subseeds: Option<Vec<u64>>,
    /// A1111 variation strength.
    pub subseed_strength: f64,
    /// A1111 "resize seed from", in latent pixels.
    pub seed_resize_from: Option<SeedResize>,
}

impl NoiseOptions {
    /// Parses `(key, value)` pairs; unknown keys and ill-typed values are errors naming the key.
    pub fn parse(entries: &[(String, OptionValue)]) -> Result<NoiseOptions> {
        let mut options = NoiseOptions::default();
        let mut resize_px: (Option<i128>, Option<i128>) = (None, None);
        for (key, value) in entries {
            match key.as_str() {
                "cpu_kernel" => options.cpu_kernel = optional_str(key, value)?,
                "gpu" => options.gpu = gpu_spec(value)?,
                "batch_index" => options.batch_index = optional(value, batch_index)?,
                "subseeds" => options.subseeds = optional(value, subseeds)?,
                "subseed_strength" => options.subseed_strength = strength(value)?,
                "seed_resize_from" => options.seed_resize_from = optional(value, resize_pair)?,
                "seed_resize_from_w" => resize_px.0 = optional(value, |v| int(key, v))?,
                "seed_resize_from_h" => resize_px.1 = optional(value, |v| int(key, v))?,
                other => {
                    return Err(crate::names::unknown(
                        "noise_options",
                        "noise option",
                        other,
                        &NOISE_OPTION_KEYS,
                        &NOISE_OPTION_KEYS,
                    ))
                }
            }
        }
        if let Some(resize) = a1111_pixel_resize(resize_px)? {
            if options.seed_resize_from.is_some() {
                return Err(CoreError::invalid(
                    "seed_resize_from",
                    "give seed_resize_from (latent pixels) or seed_resize_from_w/_h (image \
                     pixels), not both",
                ));
            }
            options.seed_resize_from = Some(resize);
        }
        if options.subseeds.is_none() && options.subseed_strength != 0.0 {
            return Err(CoreError::invalid(
                "subseeds",
                "subseed_strength needs subseeds",
            ));
        }
        Ok(options)
    }
}

fn optional<T>(
    value: &OptionValue,
    parse: impl Fn(&OptionValue) -> Result<T>,
) -> Result<Option<T>> {
    match value {
        OptionValue::Null => Ok(None),
        v => parse(v).map(Some),
    }
}

fn optional_str(key: &str, value: &OptionValue) -> Result<Option<String>> {
    match value {
        OptionValue::Null => Ok(None),
        OptionValue::Str(s) => Ok(Some(s.clone())),
        other => Err(CoreError::invalid(
            key,
            format!("must be a string, got {}", other.type_name()),
        )),
    }
}

fn int(key: &str, value: &OptionValue) -> Result<i128> {
    value.as_int().ok_or_else(|| {
        CoreError::invalid(
            key,
            format!("must be an integer, got {}", value.type_name()),
        )
    })
}

fn list<'a>(key: &str, value: &'a OptionValue) -> Result<&'a [OptionValue]> {
    match value {
        OptionValue::List(items) => Ok(items),
        other => Err(CoreError::invalid(
            key,
            format!("must be a list, got {}", other.type_name()),
        )),
    }
}

/// A GPU given as a preset name, or `[sm_count, max_threads_per_sm]`, as the spec string
/// [`crate::rng::GpuGeometry::parse`] reads.
pub fn gpu_spec(value: &OptionValue) -> Result<Option<String>> {
    match value {
        OptionValue::Null => Ok(None),
        OptionValue::Str(s) => Ok(Some(s.clone())),
        OptionValue::List(items) if items.len() == 2 => {
            let dims: Vec<i128> = items.iter().map(|v| int("gpu", v)).collect::<Result<_>>()?;
            if dims
                .iter()
                .any(|&d| !(0..=i128::from(u32::MAX)).contains(&d))
            {
                return Err(CoreError::invalid(
                    "gpu",
                    format!("(sm_count, max_threads_per_sm) out of range: {dims:?}"),
                ));
            }
            Ok(Some(format!("{}x{}", dims[0], dims[1])))
        }
        other => Err(CoreError::invalid(
            "gpu",
            format!(
                "must be a preset name or (sm_count, max_threads_per_sm), got {}",
                other.type_name()
            ),
        )),
    }
}

fn batch_index(value: &OptionValue) -> Result<Vec<usize>> {
    list("batch_index", value)?
        .iter()
        .map(|v| {
            let i = int("batch_index", v)?;
            usize::try_from(i)
                .ok()
                .filter(|&i| i <= u32::MAX as usize)
                .ok_or_else(|| {
                    CoreError::invalid(
                        "batch_index",
                        format!("indices must be in [0, 2**32), got {i}"),
                    )
                })
        })
        .collect()
}

fn subseeds(value: &OptionValue) -> Result<Vec<u64>> {
    let seeds: Vec<i128> = match value {
        OptionValue::List(items) => items
            .iter()
            .map(|v| int("subseeds", v))
            .collect::<Result<_>>()?,
        v => vec![int("subseeds", v)?],
    };
    if seeds.is_empty() {
        return Err(CoreError::invalid(
            "subseeds",
            "at least one subseed is required",
        ));
    }
    seeds
        .into_iter()
        .map(|s| wrap_seed(s, "subseeds"))
        .collect()
}

fn strength(value: &OptionValue) -> Result<f64> {
    match value {
        OptionValue::Null => Ok(0.0),
        OptionValue::Bool(_) => Err(CoreError::invalid(
            "subseed_strength",
            "must be a number in [0, 1], got bool",
        )),
        v => v.as_number().ok_or_else(|| {
            CoreError::invalid(
                "subseed_strength",
                format!("must be a number in [0, 1], got {}", v.type_name()),
            )
        }),
    }
}

/// `seed_resize_from = (width, height)` in latent pixels, both at least 1.
fn resize_pair(value: &OptionValue) -> Result<SeedResize> {
    let items = list("seed_resize_from", value)?;
    let dims: Vec<i128> = items
        .iter()
        .map(|v| int("seed_resize_from", v))
        .collect::<Result<_>>()?;
    match dims[..] {
        [w, h] if w >= 1 && h >= 1 && w <= u32::MAX as i128 && h <= u32::MAX as i128 => {
            Ok(SeedResize {
                width: w as usize,
                height: h as usize,
            })
        }
        _ => Err(CoreError::invalid(
            "seed_resize_from",
            format!("must be (width, height) in latent pixels, both >= 1, got {dims:?}"),
        )),
    }
}

/// A1111's `seed_resize_from_w/_h` in image pixels: applied only when both are positive
/// (A1111 uses 0 for "off"), sized `pixels // 8` in latent pixels.
fn a1111_pixel_resize((w, h): (Option<i128>, Option<i128>)) -> Result<Option<SeedResize>> {
    let (w, h) = (w.unwrap_or(0), h.unwrap_or(0));
    for (field, v) in [("seed_resize_from_w", w), ("seed_resize_from_h", h)] {
        if !(0..=i128::from(u32::MAX)).contains(&v) {
            return Err(CoreError::invalid(
                field,
                format!("must be a size in pixels (0 for off), got {v}"),
            ));
        }
    }
    if w == 0 || h == 0 {
        return Ok(None);
    }
    let (lw, lh) = (w / A1111_LATENT_FACTOR, h / A1111_LATENT_FACTOR);
    if lw == 0 || lh == 0 {
        let field = if lw == 0 {
            "seed_resize_from_w"
        } else {
            "seed_resize_from_h"
        };
        return Err(CoreError::invalid(
            field,
            format!("{w}x{h} pixels is under one latent pixel (8 px)"),
        ));
    }
    Ok(Some(SeedResize {
        width: lw as usize,
        height: lh as usize,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(entries: &[(&str, OptionValue)]) -> Result<NoiseOptions> {
        let owned: Vec<(String, OptionValue)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        NoiseOptions::parse(&owned)
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_field() {
        let err = parse(&[("seedz", OptionValue::Int(1))]).expect_err("unknown");
        assert_eq!(err.field(), "noise_options");
        let err = parse(&[("batch_index", OptionValue::List(vec![OptionValue::Int(-1)]))])
            .expect_err("negative");
        assert_eq!(err.field(), "batch_index");
        let huge = OptionValue::List(vec![OptionValue::Int(1 << 40)]);
        assert_eq!(
            parse(&[("batch_index", huge)]).expect_err("huge").field(),
            "batch_index"
        );
        let err = parse(&[("subseed_strength", OptionValue::Float(0.5))]).expect_err("no subs");
        assert_eq!(err.field(), "subseeds");
    }

    #[test]
    fn a1111_pixel_sizes_become_latent_pixels() {
        let options = parse(&[
            ("seed_resize_from_w", OptionValue::Int(512)),
            ("seed_resize_from_h", OptionValue::Float(768.0)),
        ])
        .expect("parse");
        assert_eq!(
            options.seed_resize_from,
            Some(SeedResize {
                width: 64,
                height: 96
            })
        );
        let off = parse(&[("seed_resize_from_w", OptionValue::Int(512))]).expect("parse");
        assert_eq!(off.seed_resize_from, None);
        assert!(parse(&[
            ("seed_resize_from_w", OptionValue::Int(4)),
            ("seed_resize_from_h", OptionValue::Int(64)),
        ])
        .is_err());
    }

    #[test]
    fn gpu_pairs_and_subseed_scalars() {
        let options = parse(&[
            (
                "gpu",
                OptionValue::List(vec![OptionValue::Int(82), OptionValue::Int(1536)]),
            ),
            ("subseeds", OptionValue::Int(-1)),
            ("subseed_strength", OptionValue::Int(1)),
        ])
        .expect("parse");
        assert_eq!(options.gpu.as_deref(), Some("82x1536"));
        assert_eq!(options.subseeds, Some(vec![u64::MAX]));
        assert_eq!(options.subseed_strength, 1.0);
    }
}
