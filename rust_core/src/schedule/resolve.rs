//! Turns class defaults, a preset, a user config and overrides into one validated configuration
//! (precedence in that order) plus the `set_timesteps` extras (`timesteps`, `sigmas`, `mu`,
//! `strength`).

use super::classes::{Def, Kind, SchedulerClass, MAX_STEPS};
use super::config::{ConfigMap, ConfigValue, Resolved};
use crate::error::{CoreError, Result};

/// Keys that are `set_timesteps` arguments (or sigmaserve's own `fix_quirks`) rather than
/// configuration.
pub(crate) const EXTRA_KEYS: [&str; 12] = [
    "timesteps",
    "sigmas",
    "mu",
    "strength",
    "fix_quirks",
    "max_timesteps",
    "intermediate_timesteps",
    "jump_length",
    "jump_n_sample",
    "stage_index",
    "is_amplify_first_chunk",
    "start_time",
];

/// diffusers' marker (in `scheduler.config`) listing keys that only hold class defaults; those
/// keys are not carried into another class by `from_config`.
const USE_DEFAULT_VALUES: &str = "_use_default_values";

/// The `set_timesteps` arguments a request may carry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extras {
    pub(crate) timesteps: Option<Vec<f64>>,
    pub(crate) sigmas: Option<Vec<f64>>,
    pub(crate) mu: Option<f64>,
    pub(crate) strength: Option<f64>,
    /// sigmaserve option: return the corrected schedule instead of diffusers' (drops the
    /// trailing-spacing `-1` timestep, shifts flow matching's `sigma_min` once).
    pub(crate) fix_quirks: bool,
    /// SCMScheduler's `max_timesteps` / `intermediate_timesteps`: the outer `None` means not
    /// given (diffusers' default applies), an inner `None` an explicit `None`.
    pub(crate) max_timesteps: Option<Option<f64>>,
    pub(crate) intermediate_timesteps: Option<Option<f64>>,
    /// RePaintScheduler's resampling jumps.
    pub(crate) jump_length: Option<i64>,
    pub(crate) jump_n_sample: Option<i64>,
    /// HeliosScheduler / HeliosDMDScheduler: the pyramid stage and the first-chunk doubling.
    pub(crate) stage_index: Option<i64>,
    pub(crate) is_amplify_first_chunk: Option<bool>,
    /// RFD4ProteinaScheduler: start the trajectory part-way (partial diffusion).
    pub(crate) start_time: Option<f64>,
}

impl Extras {
    /// The names of the `set_timesteps` arguments given (not `strength` or `fix_quirks`, which
    /// every class takes).
    pub(crate) fn given(&self) -> Vec<&'static str> {
        [
            ("timesteps", self.timesteps.is_some()),
            ("sigmas", self.sigmas.is_some()),
            ("mu", self.mu.is_some()),
            ("max_timesteps", self.max_timesteps.is_some()),
            (
                "intermediate_timesteps",
                self.intermediate_timesteps.is_some(),
            ),
            ("jump_length", self.jump_length.is_some()),
            ("jump_n_sample", self.jump_n_sample.is_some()),
            ("stage_index", self.stage_index.is_some()),
            (
                "is_amplify_first_chunk",
                self.is_amplify_first_chunk.is_some(),
            ),
            ("start_time", self.start_time.is_some()),
        ]
        .into_iter()
        .filter(|&(_, present)| present)
        .map(|(name, _)| name)
        .collect()
    }
}

/// Where a configuration layer came from; decides how its unknown keys are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layer {
    /// A preset or a user config: keys the class lacks are ignored, as `from_config` does.
    Config,
    /// Explicit overrides: a key no scheduler knows is an error (a likely typo); a key of another
    /// scheduler is ignored with a warning.
    Overrides,
}

/// Resolves and validates the configuration of `class`.
pub(crate) fn resolve(
    class: SchedulerClass,
    layers: &[(&ConfigMap, Layer)],
    warnings: &mut Vec<String>,
) -> Result<(Resolved, Extras)> {
    let mut map = ConfigMap::with_capacity(class.keys().len());
    for spec in class.keys() {
        map.push_static(spec.name, spec.default.value());
    }
    // Which keys a layer set: only those need checking (class defaults are valid as declared).
    let mut given = vec![false; class.keys().len()];
    let mut extras = Extras::default();
    for &(layer, kind) in layers {
        apply_layer(class, &mut map, &mut given, layer, kind, warnings)?;
        if kind == Layer::Overrides && !layer.is_empty() {
            extras = parse_extras(layer)?;
        }
    }
    // The map holds exactly the class keys in declaration order (layers only replace them).
    for (((key, value), spec), &set) in map.values_mut().zip(class.keys()).zip(&given) {
        debug_assert_eq!(key, spec.name);
        if matches!(spec.default, Def::Required) && *value == ConfigValue::Null {
            return Err(CoreError::invalid(
                spec.name,
                format!(
                    "is required: {}.__init__ has no default for it",
                    class.name()
                ),
            ));
        }
        if set {
            *value = check_kind(spec.name, spec.kind, value)?;
        }
    }
    Ok((Resolved { map }, extras))
}

fn apply_layer(
    class: SchedulerClass,
    map: &mut ConfigMap,
    given: &mut [bool],
    layer: &ConfigMap,
    kind: Layer,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let defaulted: &[String] = match layer.get(USE_DEFAULT_VALUES) {
        Some(ConfigValue::StrList(keys)) => keys,
        _ => &[],
    };
    for (key, value) in layer.iter() {
        if key.starts_with('_') || defaulted.iter().any(|d| d == key) {
            continue;
        }
        if let Some(index) = class.keys().iter().position(|k| k.name == key) {
            map.set_index(index, value.clone());
            given[index] = true;
        } else if kind == Layer::Overrides && !EXTRA_KEYS.contains(&key) {
            if !SchedulerClass::any_declares(key) {
                return Err(unknown_option(class, key));
            }
            warnings.push(format!(
                "`{key}` is not a config option of {}; ignored (diffusers' from_config ignores it too)",
                class.name()
            ));
        }
    }
    Ok(())
}

/// An override no scheduler declares: a likely typo, answered with the nearest keys of this
/// class (then of any class).
fn unknown_option(class: SchedulerClass, key: &str) -> CoreError {
    let own: Vec<&str> = class
        .keys()
        .iter()
        .map(|k| k.name)
        .chain(EXTRA_KEYS)
        .collect();
    let mut nearest = crate::names::suggest(key, &own);
    if nearest.is_empty() {
        let mut all: Vec<&str> = SchedulerClass::ALL
            .iter()
            .flat_map(|c| c.keys().iter().map(|k| k.name))
            .collect();
        all.sort_unstable();
        all.dedup();
        nearest = crate::names::suggest(key, &all);
    }
    let hint = match nearest.as_slice() {
        [] => String::new(),
        names => {
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("; did you mean {}?", quoted.join(" or "))
        }
    };
    CoreError::invalid(
        key,
        format!(
            "unknown option: no diffusers scheduler has a config key `{key}` (and it is not a \
             set_timesteps argument){hint}"
        ),
    )
}

fn parse_extras(layer: &ConfigMap) -> Result<Extras> {
    let float_list = |key: &str| -> Result<Option<Vec<f64>>> {
        match layer.get(key) {
            None | Some(ConfigValue::Null) => Ok(None),
            Some(v) => {
                let list = v.as_float_list().ok_or_else(|| {
                    CoreError::invalid(
                        key,
                        format!("expected a list of numbers, got {}", v.type_name()),
                    )
                })?;
                if list.is_empty() {
                    return Err(CoreError::invalid(key, "must not be empty"));
                }
                if list.len() as i64 > MAX_STEPS {
                    return Err(CoreError::too_large(
                        key,
                        format!("at most {MAX_STEPS} values"),
                    ));
                }
                if let Some(bad) = list.iter().find(|x| !x.is_finite()) {
                    return Err(CoreError::invalid(
                        key,
                        format!("values must be finite, got {bad}"),
                    ));
                }
                Ok(Some(list))
            }
        }
    };
    let float = |key: &str| -> Result<Option<f64>> {
        match layer.get(key) {
            None | Some(ConfigValue::Null) => Ok(None),
            Some(v) => {
                let x = v.as_float().ok_or_else(|| {
                    CoreError::invalid(key, format!("expected a number, got {}", v.type_name()))
                })?;
                if !x.is_finite() {
                    return Err(CoreError::invalid(key, format!("must be finite, got {x}")));
                }
                Ok(Some(x))
            }
        }
    };
    let strength = float("strength")?;
    if let Some(s) = strength {
        if !(0.0..=1.0).contains(&s) {
            return Err(CoreError::invalid(
                "strength",
                format!("must be in [0, 1], got {s}"),
            ));
        }
    }
    let fix_quirks = flag(layer, "fix_quirks")?.unwrap_or(false);
    Ok(Extras {
        fix_quirks,
        timesteps: float_list("timesteps")?,
        sigmas: float_list("sigmas")?,
        mu: float("mu")?,
        strength,
        max_timesteps: nullable_float(layer, "max_timesteps")?,
        intermediate_timesteps: nullable_float(layer, "intermediate_timesteps")?,
        jump_length: int(layer, "jump_length")?,
        jump_n_sample: int(layer, "jump_n_sample")?,
        stage_index: int(layer, "stage_index")?,
        is_amplify_first_chunk: flag(layer, "is_amplify_first_chunk")?,
        start_time: float("start_time")?,
    })
}

/// An extra where an explicit `None` differs from an absent key.
fn nullable_float(layer: &ConfigMap, key: &str) -> Result<Option<Option<f64>>> {
    match layer.get(key) {
        None => Ok(None),
        Some(ConfigValue::Null) => Ok(Some(None)),
        Some(v) => match v.as_float() {
            Some(x) if x.is_finite() => Ok(Some(Some(x))),
            Some(x) => Err(CoreError::invalid(key, format!("must be finite, got {x}"))),
            None => Err(CoreError::invalid(
                key,
                format!("expected a number or None, got {}", v.type_name()),
            )),
        },
    }
}

fn int(layer: &ConfigMap, key: &str) -> Result<Option<i64>> {
    match layer.get(key) {
        None | Some(ConfigValue::Null) => Ok(None),
        Some(v) => v.as_int().map(Some).ok_or_else(|| {
            CoreError::invalid(key, format!("expected an int, got {}", describe(v)))
        }),
    }
}

fn flag(layer: &ConfigMap, key: &str) -> Result<Option<bool>> {
    match layer.get(key) {
        None | Some(ConfigValue::Null) => Ok(None),
        Some(ConfigValue::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(CoreError::invalid(
            key,
            format!("expected a bool, got {}", describe(v)),
        )),
    }
}

/// Checks `value` against `kind` and returns it in canonical form (integral floats become ints).
fn check_kind(key: &str, kind: Kind, value: &ConfigValue) -> Result<ConfigValue> {
    let wrong =
        |want: &str| CoreError::invalid(key, format!("expected {want}, got {}", describe(value)));
    match kind {
        Kind::Int { min, max } => {
            let v = value.as_int().ok_or_else(|| wrong("an int"))?;
            if v > max && max >= MAX_STEPS {
                return Err(CoreError::too_large(key, format!("at most {max}, got {v}")));
            }
            if !(min..=max).contains(&v) {
                return Err(CoreError::invalid(
                    key,
                    format!("must be in [{min}, {max}], got {v}"),
                ));
            }
            Ok(ConfigValue::Int(v))
        }
        Kind::Float { min, max } => {
            let v = finite(key, value)?;
            if !(min..=max).contains(&v) {
                return Err(CoreError::invalid(
                    key,
                    format!("must be in [{min}, {max}], got {v}"),
                ));
            }
            Ok(ConfigValue::Float(v))
        }
        Kind::Finite => finite(key, value).map(ConfigValue::Float),
        Kind::Positive => positive(key, value).map(ConfigValue::Float),
        Kind::OptPositive => match value {
            ConfigValue::Null => Ok(ConfigValue::Null),
            v => positive(key, v).map(ConfigValue::Float),
        },
        Kind::OptBelowOne => match value {
            ConfigValue::Null => Ok(ConfigValue::Null),
            v => {
                let x = finite(key, v)?;
                if x >= 1.0 {
                    return Err(CoreError::invalid(key, format!("must be < 1, got {x}")));
                }
                Ok(ConfigValue::Float(x))
            }
        },
        Kind::FloatOrNegInf => {
            let v = value.as_float().ok_or_else(|| wrong("a float"))?;
            if v.is_nan() || v == f64::INFINITY {
                return Err(CoreError::invalid(
                    key,
                    format!("must be finite or -inf, got {v}"),
                ));
            }
            Ok(ConfigValue::Float(v))
        }
        Kind::Bool => match value {
            ConfigValue::Bool(b) => Ok(ConfigValue::Bool(*b)),
            _ => Err(wrong("a bool")),
        },
        Kind::Choice(choices) => choice(key, value, choices).map(ConfigValue::Str),
        Kind::OptChoice(choices) => match value {
            ConfigValue::Null => Ok(ConfigValue::Null),
            v => choice(key, v, choices).map(ConfigValue::Str),
        },
        Kind::Text => match value {
            ConfigValue::Str(s) => Ok(ConfigValue::Str(s.clone())),
            _ => Err(wrong("a str")),
        },
        Kind::OptText => match value {
            ConfigValue::Null | ConfigValue::Str(_) => Ok(value.clone()),
            _ => Err(wrong("a str or None")),
        },
        Kind::OptInt => match value {
            ConfigValue::Null => Ok(ConfigValue::Null),
            v => v
                .as_int()
                .map(ConfigValue::Int)
                .ok_or_else(|| wrong("an int or None")),
        },
        Kind::Betas => betas(key, value),
        Kind::IntList => value
            .as_int_list()
            .map(ConfigValue::IntList)
            .ok_or_else(|| wrong("a list of ints")),
        Kind::FloatList => float_list(key, value),
        Kind::OptFloatList => match value {
            ConfigValue::Null => Ok(ConfigValue::Null),
            v => float_list(key, v),
        },
        Kind::NullOnly => match value {
            ConfigValue::Null => Ok(ConfigValue::Null),
            _ => Err(CoreError::invalid(
                key,
                "only None is supported (a Python object cannot be part of a schedule request)",
            )),
        },
    }
}

fn describe(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Str(s) => format!("str {s:?}"),
        ConfigValue::Float(x) => format!("float {x}"),
        ConfigValue::Int(i) => format!("int {i}"),
        ConfigValue::Bool(b) => format!("bool {b}"),
        other => other.type_name().to_owned(),
    }
}

fn finite(key: &str, value: &ConfigValue) -> Result<f64> {
    let v = value.as_float().ok_or_else(|| {
        CoreError::invalid(key, format!("expected a float, got {}", describe(value)))
    })?;
    if !v.is_finite() {
        return Err(CoreError::invalid(key, format!("must be finite, got {v}")));
    }
    Ok(v)
}

fn positive(key: &str, value: &ConfigValue) -> Result<f64> {
    let v = finite(key, value)?;
    if v <= 0.0 {
        return Err(CoreError::invalid(key, format!("must be > 0, got {v}")));
    }
    Ok(v)
}

fn choice(key: &str, value: &ConfigValue, choices: &[&str]) -> Result<String> {
    match value {
        ConfigValue::Str(s) if choices.contains(&s.as_str()) => Ok(s.clone()),
        _ => Err(CoreError::invalid(
            key,
            format!("must be one of {choices:?}, got {}", describe(value)),
        )),
    }
}

fn float_list(key: &str, value: &ConfigValue) -> Result<ConfigValue> {
    let list = value.as_float_list().ok_or_else(|| {
        CoreError::invalid(
            key,
            format!("expected a list of floats, got {}", describe(value)),
        )
    })?;
    if list.len() as i64 > MAX_STEPS {
        return Err(CoreError::too_large(
            key,
            format!("at most {MAX_STEPS} values"),
        ));
    }
    if let Some(bad) = list.iter().find(|x| !x.is_finite()) {
        return Err(CoreError::invalid(
            key,
            format!("values must be finite, got {bad}"),
        ));
    }
    Ok(ConfigValue::FloatList(list))
}

fn betas(key: &str, value: &ConfigValue) -> Result<ConfigValue> {
    if let ConfigValue::Null = value {
        return Ok(ConfigValue::Null);
    }
    let list = value.as_float_list().ok_or_else(|| {
        CoreError::invalid(
            key,
            format!("expected a list of floats or None, got {}", describe(value)),
        )
    })?;
    if list.len() as i64 > MAX_STEPS {
        return Err(CoreError::too_large(
            key,
            format!("at most {MAX_STEPS} values"),
        ));
    }
    if let Some(bad) = list
        .iter()
        .find(|b| !(b.is_finite() && (0.0..=1.0).contains(*b)))
    {
        return Err(CoreError::invalid(
            key,
            format!("every beta must be in [0, 1], got {bad}"),
        ));
    }
    Ok(ConfigValue::FloatList(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, ConfigValue)]) -> ConfigMap {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn precedence_and_normalisation() {
        let preset = map(&[("beta_schedule", ConfigValue::Str("scaled_linear".into()))]);
        let overrides = map(&[("num_train_timesteps", ConfigValue::Float(500.0))]);
        let mut warnings = Vec::new();
        let (resolved, _) = resolve(
            SchedulerClass::Euler,
            &[(&preset, Layer::Config), (&overrides, Layer::Overrides)],
            &mut warnings,
        )
        .expect("valid");
        assert_eq!(
            resolved.text("beta_schedule").expect("str"),
            "scaled_linear"
        );
        assert_eq!(
            resolved.map.get("num_train_timesteps"),
            Some(&ConfigValue::Int(500))
        );
    }

    #[test]
    fn errors_name_the_key() {
        let mut warnings = Vec::new();
        let cases = [
            ("num_train_timesteps", ConfigValue::Bool(true)),
            ("beta_start", ConfigValue::Float(f64::NAN)),
            ("timestep_spacing", ConfigValue::Str("evenly".into())),
            ("use_karras_sigmas", ConfigValue::Int(1)),
            ("use_karas_sigmas", ConfigValue::Bool(true)),
        ];
        for (key, value) in cases {
            let overrides = map(&[(key, value)]);
            let err = resolve(
                SchedulerClass::Euler,
                &[(&overrides, Layer::Overrides)],
                &mut warnings,
            )
            .expect_err(key);
            assert_eq!(err.field(), key);
        }
    }

    #[test]
    fn other_schedulers_keys_warn_and_config_typos_are_ignored() {
        let mut warnings = Vec::new();
        let overrides = map(&[("skip_prk_steps", ConfigValue::Bool(true))]);
        let config = map(&[("whatever", ConfigValue::Opaque("dict".into()))]);
        resolve(
            SchedulerClass::Euler,
            &[(&config, Layer::Config), (&overrides, Layer::Overrides)],
            &mut warnings,
        )
        .expect("valid");
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn class_defaults_are_canonical_so_only_given_keys_need_checking() {
        for class in SchedulerClass::ALL {
            for spec in class.keys() {
                if matches!(spec.default, Def::Required) {
                    continue;
                }
                let default = spec.default.value();
                let checked = check_kind(spec.name, spec.kind, &default);
                assert_eq!(
                    checked.as_ref(),
                    Ok(&default),
                    "{} {}",
                    class.name(),
                    spec.name
                );
            }
        }
    }
}
