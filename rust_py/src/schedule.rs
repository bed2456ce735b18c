//! Binding of the core's diffusers schedules: `schedule_get`, `schedule_presets`,
//! `schedule_schedulers`. Arguments are converted to owned core values while attached, the
//! schedule is computed detached (`py.detach`), arrays are moved into numpy without a copy.

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use sigmaserve_core::schedule::{self, ConfigMap, ConfigValue, Schedule, Timesteps};
use sigmaserve_core::CoreError;

use crate::errors::{CoreResult, PyCoreError};

/// Converts one Python value (None, bool, int, float, str, a sequence of those, or anything with
/// `tolist()` such as numpy arrays, numpy scalars and torch tensors) into a config value.
/// Values it cannot represent become `Opaque` (an error only if the scheduler uses the key).
fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<ConfigValue> {
    if obj.is_none() {
        return Ok(ConfigValue::Null);
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(ConfigValue::Bool(obj.extract::<bool>()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i64>() {
            Ok(v) => ConfigValue::Int(v),
            Err(_) => ConfigValue::Opaque("int out of the int64 range".into()),
        });
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(ConfigValue::Float(obj.extract::<f64>()?));
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(ConfigValue::Str(obj.extract::<String>()?));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items: Vec<ConfigValue> = obj
            .try_iter()?
            .map(|item| item.and_then(|i| to_value(&i)))
            .collect::<PyResult<_>>()?;
        return Ok(list_value(items));
    }
    if obj.hasattr("tolist")? {
        let plain = obj.call_method0("tolist")?;
        if !plain.hasattr("tolist")? {
            return to_value(&plain);
        }
    }
    let name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    Ok(ConfigValue::Opaque(name))
}

/// The narrowest list variant that holds every item.
fn list_value(items: Vec<ConfigValue>) -> ConfigValue {
    if items.iter().all(|v| matches!(v, ConfigValue::Int(_))) {
        return ConfigValue::IntList(items.iter().filter_map(ConfigValue::as_int).collect());
    }
    if items
        .iter()
        .all(|v| matches!(v, ConfigValue::Int(_) | ConfigValue::Float(_)))
    {
        return ConfigValue::FloatList(items.iter().filter_map(ConfigValue::as_float).collect());
    }
    if items.iter().all(|v| matches!(v, ConfigValue::Str(_))) {
        return ConfigValue::StrList(
            items
                .into_iter()
                .filter_map(|v| match v {
                    ConfigValue::Str(s) => Some(s),
                    _ => None,
                })
                .collect(),
        );
    }
    ConfigValue::Opaque("list of mixed values".into())
}

/// A Python mapping (anything with `items()`) as a config map; keys must be strings.
fn to_map(obj: Option<&Bound<'_, PyAny>>, field: &str) -> CoreResult<ConfigMap> {
    let mut map = ConfigMap::new();
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(map);
    };
    let invalid = |msg: String| PyCoreError(CoreError::invalid(field, msg));
    let items = obj
        .call_method0("items")
        .map_err(|_| invalid("expected a mapping (dict)".into()))?;
    for pair in items.try_iter().map_err(|e| invalid(e.to_string()))? {
        let pair = pair.map_err(|e| invalid(e.to_string()))?;
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
            pair.extract().map_err(|e: PyErr| invalid(e.to_string()))?;
        let key: String = key
            .extract()
            .map_err(|_| invalid("keys must be strings".into()))?;
        let value = to_value(&value).map_err(|e| invalid(format!("{key}: {e}")))?;
        map.insert(key, value);
    }
    Ok(map)
}

fn from_value<'py>(py: Python<'py>, value: &ConfigValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        ConfigValue::Null => py.None().into_bound(py),
        ConfigValue::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        ConfigValue::Int(i) => i.into_pyobject(py)?.into_any(),
        ConfigValue::Float(f) => f.into_pyobject(py)?.into_any(),
        ConfigValue::Str(s) | ConfigValue::Opaque(s) => PyString::new(py, s).into_any(),
        ConfigValue::FloatList(v) => PyList::new(py, v)?.into_any(),
        ConfigValue::IntList(v) => PyList::new(py, v)?.into_any(),
        ConfigValue::StrList(v) => PyList::new(py, v)?.into_any(),
    })
}

fn config_dict<'py>(py: Python<'py>, map: &ConfigMap) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (key, value) in map.iter() {
        dict.set_item(key, from_value(py, value)?)?;
    }
    Ok(dict)
}

fn timesteps_array<'py>(py: Python<'py>, timesteps: Timesteps) -> Bound<'py, PyAny> {
    match timesteps {
        Timesteps::I64(v) => v.into_pyarray(py).into_any(),
        Timesteps::F32(v) => v.into_pyarray(py).into_any(),
        Timesteps::F64(v) => v.into_pyarray(py).into_any(),
    }
}

fn schedule_dict<'py>(py: Python<'py>, s: Schedule) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("scheduler", &s.scheduler)?;
    dict.set_item("num_inference_steps", s.num_inference_steps)?;
    dict.set_item("timesteps", timesteps_array(py, s.timesteps))?;
    match s.sigmas {
        Some(sigmas) => dict.set_item("sigmas", sigmas.into_pyarray(py))?,
        None => dict.set_item("sigmas", py.None())?,
    }
    dict.set_item("init_noise_sigma", s.init_noise_sigma)?;
    dict.set_item("betas", s.betas.into_pyarray(py))?;
    dict.set_item("alphas_cumprod", s.alphas_cumprod.into_pyarray(py))?;
    dict.set_item("config", config_dict(py, &s.config)?)?;
    dict.set_item("warnings", PyTuple::new(py, &s.warnings)?)?;
    dict.set_item("order", s.order)?;
    match s.img2img {
        Some(i) => {
            let sub = PyDict::new(py);
            sub.set_item("strength", i.strength)?;
            sub.set_item("begin_index", i.begin_index)?;
            sub.set_item("num_timesteps", i.num_timesteps)?;
            sub.set_item("start_timestep", i.start_timestep)?;
            dict.set_item("img2img", sub)?;
        }
        None => dict.set_item("img2img", py.None())?,
    }
    Ok(dict)
}

/// Computes a diffusers schedule; returns a dict the Python `Schedule` is built from.
#[pyfunction]
#[pyo3(signature = (scheduler, num_inference_steps, preset, config, overrides))]
fn schedule_get<'py>(
    py: Python<'py>,
    scheduler: String,
    num_inference_steps: Option<i64>,
    preset: Option<String>,
    config: Option<Bound<'py, PyAny>>,
    overrides: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let steps = match num_inference_steps {
        None => None,
        Some(n) => Some(
            usize::try_from(n)
                .map_err(|_| {
                    PyCoreError(CoreError::invalid(
                        "num_inference_steps",
                        format!("must be at least 1, got {n}"),
                    ))
                })
                .map_err(PyErr::from)?,
        ),
    };
    let config = to_map(config.as_ref(), "config").map_err(PyErr::from)?;
    let overrides = to_map(overrides.as_ref(), "overrides").map_err(PyErr::from)?;
    let result = py.detach(|| {
        schedule::get_schedule(&scheduler, steps, preset.as_deref(), &config, &overrides)
    });
    let schedule = result.map_err(|e| PyErr::from(PyCoreError(e)))?;
    schedule_dict(py, schedule)
}

/// The presets: a list of dicts (name, repo, class_name, latent_channels, vae_scale_factor,
/// config).
#[pyfunction]
fn schedule_presets(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for p in schedule::list_presets() {
        let dict = PyDict::new(py);
        dict.set_item("name", p.name)?;
        dict.set_item("repo", p.repo)?;
        dict.set_item("class_name", p.class_name)?;
        dict.set_item("latent_channels", p.latent_channels)?;
        dict.set_item("vae_scale_factor", p.vae_scale_factor)?;
        dict.set_item("config", config_dict(py, &p.config())?)?;
        list.append(dict)?;
    }
    Ok(list)
}

/// The diffusers scheduler class names `schedule_get` accepts.
#[pyfunction]
fn schedule_schedulers() -> Vec<&'static str> {
    schedule::list_schedulers()
}

/// Adds this module's functions and classes to `sigmaserve._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(schedule_get, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_presets, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_schedulers, m)?)?;
    Ok(())
}
