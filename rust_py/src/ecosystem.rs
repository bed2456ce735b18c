//! Binding of the core's ecosystem schedules (ComfyUI, A1111, k-diffusion, AYS) with every
//! detail the diffusers-shaped `Schedule` has no field for (both timestep mappings, the
//! initial-noise rule, the model's σ range).

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use sigmaserve_core::schedule::ecosystem::{self, EcosystemSchedule, Options, Value};
use sigmaserve_core::CoreError;

use crate::errors::PyCoreError;

fn err(e: CoreError) -> PyErr {
    PyErr::from(PyCoreError(e))
}

/// Converts a mapping of scalar options; `strict` rejects non-scalar values (overrides),
/// otherwise they are skipped (a diffusers config carries lists the schedules never read).
fn to_options(obj: Option<&Bound<'_, PyAny>>, field: &str, strict: bool) -> PyResult<Options> {
    let mut out = Options::new();
    let Some(obj) = obj else {
        return Ok(out);
    };
    if obj.is_none() {
        return Ok(out);
    }
    let dict = obj
        .cast::<PyDict>()
        .map_err(|_| err(CoreError::invalid(field, "must be a dict")))?;
    for (k, v) in dict.iter() {
        let key: String = k
            .extract()
            .map_err(|_| err(CoreError::invalid(field, "keys must be strings")))?;
        let value = if v.is_none() {
            continue;
        } else if v.is_instance_of::<PyBool>() {
            Value::Bool(v.extract()?)
        } else if v.is_instance_of::<PyInt>() {
            match v.extract::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => return Err(err(CoreError::invalid(key, "integer out of range"))),
            }
        } else if v.is_instance_of::<PyFloat>() {
            Value::Float(v.extract()?)
        } else if v.is_instance_of::<PyString>() {
            Value::Str(v.extract()?)
        } else if let Ok(f) = v.extract::<f64>() {
            // numpy scalars and other number-likes.
            Value::Float(f)
        } else if strict {
            return Err(err(CoreError::invalid(
                key,
                "must be a bool, int, float or str",
            )));
        } else {
            continue;
        };
        out.insert(key, value);
    }
    Ok(out)
}

fn value_obj<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::Str(s) => s.into_pyobject(py)?.into_any(),
    })
}

fn to_dict<'py>(py: Python<'py>, s: EcosystemSchedule) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("scheduler", &s.scheduler)?;
    d.set_item("num_inference_steps", s.num_inference_steps)?;
    d.set_item("init_noise_sigma", s.init_noise_sigma)?;
    d.set_item("init_noise", s.init_noise.name())?;
    d.set_item("model_sampling", &s.model_sampling)?;
    d.set_item("model_sigma_range", s.model_sigma_range)?;
    d.set_item("warnings", &s.warnings)?;
    let cfg = PyDict::new(py);
    for (k, v) in &s.config {
        cfg.set_item(k, value_obj(py, v)?)?;
    }
    d.set_item("config", cfg)?;
    d.set_item("sigmas", s.sigmas.into_pyarray(py))?;
    d.set_item("timesteps", s.timesteps.into_pyarray(py))?;
    d.set_item(
        "timesteps_quantized",
        s.timesteps_quantized.map(|v| v.into_pyarray(py)),
    )?;
    d.set_item(
        "timesteps_interpolated",
        s.timesteps_interpolated.map(|v| v.into_pyarray(py)),
    )?;
    d.set_item("betas", s.betas.map(|v| v.into_pyarray(py)))?;
    d.set_item(
        "alphas_cumprod",
        s.alphas_cumprod.map(|v| v.into_pyarray(py)),
    )?;
    Ok(d)
}

/// Computes `"<tool>:<name>"` and returns a dict with every field of the ecosystem schedule.
#[pyfunction]
#[pyo3(signature = (scheduler, num_inference_steps, preset=None, config=None, overrides=None))]
fn ecosystem_schedule<'py>(
    py: Python<'py>,
    scheduler: String,
    num_inference_steps: i64,
    preset: Option<String>,
    config: Option<Bound<'py, PyAny>>,
    overrides: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let steps = usize::try_from(num_inference_steps).map_err(|_| {
        err(CoreError::invalid(
            "num_inference_steps",
            format!("must be at least 1, got {num_inference_steps}"),
        ))
    })?;
    let config = to_options(config.as_ref(), "config", false)?;
    let overrides = to_options(overrides.as_ref(), "overrides", true)?;
    let result = py.detach(|| {
        ecosystem::get_schedule_by_name(&scheduler, steps, preset.as_deref(), &config, &overrides)
    });
    to_dict(py, result.map_err(err)?)
}

/// The schedule names of one tool (`comfyui`, `a1111`, `kdiffusion`, `ays`).
#[pyfunction]
fn ecosystem_names(tool: String) -> PyResult<Vec<&'static str>> {
    Ok(ecosystem::names(&tool).map_err(err)?.to_vec())
}

/// Adds this module's functions to `sigmaserve._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ecosystem_schedule, m)?)?;
    m.add_function(wrap_pyfunction!(ecosystem_names, m)?)?;
    Ok(())
}
