//! Binding of the core's diffusers schedules and catalog: `schedule_get`,
//! `schedule_pipeline_call`, `schedule_presets`,
//! `schedule_schedulers`, `schedule_families`, `schedule_family_descriptions`,
//! `schedule_excluded`, `schedule_aliases`, `schedule_ecosystem_names`, `resolve_name`,
//! `name_kinds`. Arguments are converted to owned core values while attached, the
//! schedule is computed detached (`py.detach`), arrays are moved into numpy without a copy.

use std::sync::Mutex;

use numpy::{npyffi, IntoPyArray, PyArray1, PyUntypedArrayMethods};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use sigmaserve_core::names::NameKind;
use sigmaserve_core::rng::{CpuKernel, Dtype, GpuGeometry, SeedMode, Source};
use sigmaserve_core::schedule::presets::{self, FrameRule, Preset};
use sigmaserve_core::schedule::{
    self, aliases, ConfigMap, ConfigValue, FloatArray, PipelineArgs, Schedule, Timesteps,
};
use sigmaserve_core::CoreError;

use crate::convert::int_arg;
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
pub(crate) fn to_map(obj: Option<&Bound<'_, PyAny>>, field: &str) -> CoreResult<ConfigMap> {
    let mut map = ConfigMap::new();
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(map);
    };
    let invalid = |msg: String| PyCoreError(CoreError::invalid(field, msg));
    if let Ok(dict) = obj.cast::<PyDict>() {
        for (key, value) in dict.iter() {
            let key: String = key
                .extract()
                .map_err(|_| invalid("keys must be strings".into()))?;
            let value = to_value(&value).map_err(|e| invalid(format!("{key}: {e}")))?;
            map.insert(key, value);
        }
        return Ok(map);
    }
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
        dict.set_item(PyString::intern(py, key), from_value(py, value)?)?;
    }
    Ok(dict)
}

/// `sigmaserve.schedules.ConfigDict`, the read-only dict type of `Schedule.config`.
fn config_dict_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static TYPE: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    TYPE.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("sigmaserve.schedules")?
                .getattr("ConfigDict")?
                .unbind(),
        )
    })
    .map(|t| t.bind(py))
}

/// Recently converted configurations: the same resolved config gives the same read-only
/// `ConfigDict` (building a 15-30 entry dict from scratch dominates a schedule call otherwise).
static CONFIG_DICTS: Mutex<Vec<(ConfigMap, Py<PyAny>)>> = Mutex::new(Vec::new());
const CONFIG_DICTS_CAPACITY: usize = 32;

fn cached_config_dict<'py>(py: Python<'py>, map: &ConfigMap) -> PyResult<Bound<'py, PyAny>> {
    let mut cache = CONFIG_DICTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(i) = cache.iter().position(|(m, _)| m == map) {
        // Most recently used first: repeated requests hit on the first comparison.
        let entry = cache.remove(i);
        let shared = entry.1.bind(py).clone();
        cache.insert(0, entry);
        return Ok(shared);
    }
    let frozen = config_dict_type(py)?.call1((config_dict(py, map)?,))?;
    cache.truncate(CONFIG_DICTS_CAPACITY - 1);
    cache.insert(0, (map.clone(), frozen.clone().unbind()));
    Ok(frozen)
}

/// A shared read-only empty float32 array (EDM and flow matching have no betas).
fn empty_f32(py: Python<'_>) -> Bound<'_, PyAny> {
    static EMPTY: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    EMPTY
        .get_or_init(py, || readonly_array(py, Vec::<f32>::new()).unbind())
        .bind(py)
        .clone()
}

/// `readonly_array` in the array's dtype, sharing one empty float32 array.
fn float_array(py: Python<'_>, values: FloatArray) -> Bound<'_, PyAny> {
    match values {
        FloatArray::F32(v) if v.is_empty() => empty_f32(py),
        FloatArray::F32(v) => readonly_array(py, v),
        FloatArray::F64(v) => readonly_array(py, v),
    }
}

/// Arrays up to this length are copied into numpy-owned memory: cheaper than handing the `Vec`
/// over (which allocates a capsule object as the array's base) for schedule-sized data.
const COPY_BELOW: usize = 4096;

/// A new read-only numpy array holding `values` (a `Schedule` is immutable). Short arrays are
/// copied, long ones moved without a copy.
fn readonly_array<'py, T: numpy::Element>(py: Python<'py>, values: Vec<T>) -> Bound<'py, PyAny> {
    let array: Bound<'py, PyArray1<T>> = if values.len() < COPY_BELOW {
        PyArray1::from_slice(py, &values)
    } else {
        values.into_pyarray(py)
    };
    // SAFETY: the array was created just above and no other reference to it exists yet, so
    // clearing its WRITEABLE flag cannot invalidate a borrow; the pointer is valid while
    // `array` is alive.
    unsafe {
        (*array.as_array_ptr()).flags &= !npyffi::NPY_ARRAY_WRITEABLE;
    }
    array.into_any()
}

fn timesteps_array<'py>(py: Python<'py>, timesteps: Timesteps) -> Bound<'py, PyAny> {
    match timesteps {
        Timesteps::I64(v) => readonly_array(py, v),
        Timesteps::F32(v) => readonly_array(py, v),
        Timesteps::F64(v) => readonly_array(py, v),
    }
}

/// The attribute dict of a Python `Schedule` (field names are interned once).
fn schedule_dict<'py>(py: Python<'py>, s: Schedule) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item(intern!(py, "scheduler"), &s.scheduler)?;
    dict.set_item(intern!(py, "timesteps"), timesteps_array(py, s.timesteps))?;
    let sigmas = match s.sigmas {
        Some(sigmas) => float_array(py, sigmas),
        None => py.None().into_bound(py),
    };
    dict.set_item(intern!(py, "sigmas"), sigmas)?;
    dict.set_item(intern!(py, "init_noise_sigma"), s.init_noise_sigma)?;
    dict.set_item(intern!(py, "betas"), float_array(py, s.betas))?;
    let acp = float_array(py, s.alphas_cumprod);
    dict.set_item(intern!(py, "alphas_cumprod"), acp)?;
    dict.set_item(intern!(py, "config"), cached_config_dict(py, &s.config)?)?;
    dict.set_item(intern!(py, "warnings"), PyTuple::new(py, &s.warnings)?)?;
    let steps = s.num_inference_steps;
    dict.set_item(intern!(py, "num_inference_steps"), steps)?;
    dict.set_item(intern!(py, "order"), s.order)?;
    let img2img = match s.img2img {
        Some(i) => {
            let sub = PyDict::new(py);
            sub.set_item(intern!(py, "strength"), i.strength)?;
            sub.set_item(intern!(py, "begin_index"), i.begin_index)?;
            sub.set_item(intern!(py, "num_timesteps"), i.num_timesteps)?;
            sub.set_item(intern!(py, "start_timestep"), i.start_timestep)?;
            sub.into_any()
        }
        None => py.None().into_bound(py),
    };
    dict.set_item(intern!(py, "img2img"), img2img)?;
    Ok(dict)
}

fn invalid(field: &str, message: String) -> PyErr {
    PyErr::from(PyCoreError(CoreError::invalid(field, message)))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// A `str` argument, or an InvalidArgumentError naming `field`.
fn text_arg(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<String> {
    if obj.is_instance_of::<PyString>() {
        return obj.extract();
    }
    Err(invalid(
        field,
        format!("expected a str, got {}", type_name(obj)),
    ))
}

/// `num_inference_steps`: None or an int >= 1 (not a bool; numpy integers accepted).
fn steps_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    const FIELD: &str = "num_inference_steps";
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if obj.is_exact_instance_of::<PyInt>() {
        return match obj.extract::<i64>() {
            Ok(n) if n >= 1 => Ok(Some(n as usize)),
            Ok(n) => Err(invalid(FIELD, format!("must be at least 1, got {n}"))),
            Err(_) => Err(PyErr::from(PyCoreError(CoreError::too_large(
                FIELD,
                "out of range",
            )))),
        };
    }
    if obj.is_instance_of::<PyBool>() {
        return Err(invalid(FIELD, "expected an int, got bool".into()));
    }
    let index = obj
        .call_method0("__index__")
        .map_err(|_| invalid(FIELD, format!("expected an int, got {}", type_name(obj))))?;
    let n: i64 = index
        .extract()
        .map_err(|_| PyErr::from(PyCoreError(CoreError::too_large(FIELD, "out of range"))))?;
    match usize::try_from(n) {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(invalid(FIELD, format!("must be at least 1, got {n}"))),
    }
}

/// Schedules with more steps than this are computed with the GIL released.
const DETACH_ABOVE_STEPS: usize = 1000;

/// An image size or frame count argument: None or an int >= 1.
fn size_arg(obj: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Option<usize>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let value = int_arg(obj, field)?;
    match usize::try_from(value) {
        Ok(v) if v >= 1 => Ok(Some(v)),
        _ => Err(invalid(
            field,
            format!("must be a positive integer, got {value}"),
        )),
    }
}

/// A pipeline-level request's arguments, converted to owned core values while attached.
struct OwnedArgs {
    scheduler: Option<String>,
    steps: Option<usize>,
    preset: Option<String>,
    config: ConfigMap,
    overrides: ConfigMap,
    width: Option<usize>,
    height: Option<usize>,
    num_frames: Option<usize>,
}

impl OwnedArgs {
    #[allow(clippy::too_many_arguments)]
    fn parse(
        scheduler: Option<&Bound<'_, PyAny>>,
        num_inference_steps: Option<&Bound<'_, PyAny>>,
        preset: Option<&Bound<'_, PyAny>>,
        config: Option<Bound<'_, PyAny>>,
        overrides: Option<Bound<'_, PyAny>>,
        width: Option<&Bound<'_, PyAny>>,
        height: Option<&Bound<'_, PyAny>>,
        num_frames: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // An empty name is no name, as on the wire (an empty optional string field).
        let scheduler = match scheduler.filter(|s| !s.is_none()) {
            Some(s) => Some(text_arg(s, "scheduler")?).filter(|s| !s.is_empty()),
            None => None,
        };
        let preset = match preset.filter(|p| !p.is_none()) {
            Some(p) => Some(text_arg(p, "preset")?).filter(|p| !p.is_empty()),
            None => None,
        };
        Ok(Self {
            scheduler,
            steps: steps_arg(num_inference_steps)?,
            preset,
            config: to_map(config.as_ref(), "config").map_err(PyErr::from)?,
            overrides: to_map(overrides.as_ref(), "overrides").map_err(PyErr::from)?,
            width: size_arg(width, "width")?,
            height: size_arg(height, "height")?,
            num_frames: size_arg(num_frames, "num_frames")?,
        })
    }

    fn args(&self, pipeline: bool) -> PipelineArgs<'_> {
        PipelineArgs {
            scheduler: self.scheduler.as_deref(),
            num_inference_steps: self.steps,
            preset: self.preset.as_deref(),
            width: self.width,
            height: self.height,
            num_frames: self.num_frames,
            pipeline,
            config: &self.config,
            overrides: &self.overrides,
        }
    }

    /// A schedule of a few hundred steps takes about a microsecond: releasing and re-taking
    /// the GIL would cost a good part of that. Long ones (steps from custom arrays included)
    /// release it.
    fn is_long(&self) -> bool {
        self.steps.is_none_or(|n| n > DETACH_ABOVE_STEPS)
            || ["timesteps", "sigmas"]
                .iter()
                .any(|k| self.overrides.get(k).is_some())
    }
}

/// Computes a schedule (`get_pipeline_schedule`: the preset pipeline's conventions unless
/// `pipeline` is false); returns the attribute dict of the Python `Schedule`.
#[pyfunction]
#[pyo3(signature = (
    scheduler, num_inference_steps, preset, config, overrides, width = None, height = None,
    num_frames = None, pipeline = true
))]
#[allow(clippy::too_many_arguments)]
fn schedule_get<'py>(
    py: Python<'py>,
    scheduler: Option<&Bound<'py, PyAny>>,
    num_inference_steps: Option<&Bound<'py, PyAny>>,
    preset: Option<&Bound<'py, PyAny>>,
    config: Option<Bound<'py, PyAny>>,
    overrides: Option<Bound<'py, PyAny>>,
    width: Option<&Bound<'py, PyAny>>,
    height: Option<&Bound<'py, PyAny>>,
    num_frames: Option<&Bound<'py, PyAny>>,
    pipeline: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let owned = OwnedArgs::parse(
        scheduler,
        num_inference_steps,
        preset,
        config,
        overrides,
        width,
        height,
        num_frames,
    )?;
    let args = owned.args(pipeline);
    let result = if owned.is_long() {
        py.detach(|| schedule::get_pipeline_schedule(&args))
    } else {
        schedule::get_pipeline_schedule(&args)
    };
    let schedule = result.map_err(|e| PyErr::from(PyCoreError(e)))?;
    schedule_dict(py, schedule)
}

/// What a preset pipeline's `__call__` passes to `set_timesteps` (`get_pipeline_call`), as a
/// dict; `shift` is a dict of `calculate_shift`'s inputs and `mu`, or None.
#[pyfunction]
#[pyo3(signature = (
    scheduler, num_inference_steps, preset, config, overrides, width = None, height = None,
    num_frames = None
))]
#[allow(clippy::too_many_arguments)]
fn schedule_pipeline_call<'py>(
    py: Python<'py>,
    scheduler: Option<&Bound<'py, PyAny>>,
    num_inference_steps: Option<&Bound<'py, PyAny>>,
    preset: Option<&Bound<'py, PyAny>>,
    config: Option<Bound<'py, PyAny>>,
    overrides: Option<Bound<'py, PyAny>>,
    width: Option<&Bound<'py, PyAny>>,
    height: Option<&Bound<'py, PyAny>>,
    num_frames: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let owned = OwnedArgs::parse(
        scheduler,
        num_inference_steps,
        preset,
        config,
        overrides,
        width,
        height,
        num_frames,
    )?;
    let call =
        schedule::get_pipeline_call(&owned.args(true)).map_err(|e| PyErr::from(PyCoreError(e)))?;
    let dict = PyDict::new(py);
    dict.set_item("preset", call.preset)?;
    dict.set_item("pipeline", call.pipeline)?;
    dict.set_item("scheduler", call.scheduler)?;
    dict.set_item("convention", call.convention)?;
    dict.set_item("num_inference_steps", call.num_inference_steps)?;
    dict.set_item("width", call.width)?;
    dict.set_item("height", call.height)?;
    dict.set_item("num_frames", call.num_frames)?;
    dict.set_item("sigmas", call.sigmas)?;
    dict.set_item("mu", call.mu)?;
    let shift = match call.shift {
        Some(s) => {
            let sub = PyDict::new(py);
            sub.set_item("image_seq_len", s.image_seq_len)?;
            sub.set_item("base_image_seq_len", s.base_image_seq_len)?;
            sub.set_item("max_image_seq_len", s.max_image_seq_len)?;
            sub.set_item("base_shift", s.base_shift)?;
            sub.set_item("max_shift", s.max_shift)?;
            sub.set_item("mu", s.mu)?;
            sub.into_any()
        }
        None => py.None().into_bound(py),
    };
    dict.set_item("shift", shift)?;
    Ok(dict)
}

/// The latent layout of a preset as a dict.
fn layout_dict<'py>(py: Python<'py>, p: &Preset) -> PyResult<Bound<'py, PyDict>> {
    let l = p.layout;
    let dict = PyDict::new(py);
    dict.set_item("channels", l.channels)?;
    dict.set_item("vae_scale_factor", l.vae_scale_factor)?;
    dict.set_item("vae_temporal_factor", l.vae_temporal_factor)?;
    dict.set_item("pack_factor", l.pack_factor)?;
    dict.set_item("packing", l.packing.name())?;
    dict.set_item("axes", l.axes.name())?;
    dict.set_item(
        "noise_dtype",
        if l.draws_float32 {
            "float32"
        } else {
            "pipeline"
        },
    )?;
    let frames = match l.frames {
        FrameRule::Plain => "(num_frames - 1) // vae_temporal_factor + 1".to_owned(),
        FrameRule::WanRound => {
            "num_frames rounded to 4k + 1 (num_frames // 4 * 4 + 1), then (num_frames - 1) // 4 + 1"
                .to_owned()
        }
        FrameRule::PadTo(n) => {
            format!("(num_frames - 1) // vae_temporal_factor + 1, padded up to a multiple of {n}")
        }
    };
    dict.set_item(
        "frames",
        if l.vae_temporal_factor.is_some() {
            Some(frames)
        } else {
            None
        },
    )?;
    dict.set_item("size_multiple", l.size_multiple)?;
    dict.set_item("scales_by_init_noise_sigma", l.scales)?;
    Ok(dict)
}

/// The presets: a list of dicts (name, repo, class_name, pipeline, steps, default size, latent
/// layout, schedule convention, config, aliases).
#[pyfunction]
fn schedule_presets(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for p in schedule::list_presets() {
        let dict = PyDict::new(py);
        dict.set_item("name", p.name)?;
        dict.set_item("repo", p.repo)?;
        dict.set_item("class_name", p.class_name)?;
        dict.set_item("pipeline", p.pipeline)?;
        dict.set_item(
            "pipeline_file",
            format!("diffusers 0.42.1 src/diffusers/{}", p.pipeline_file),
        )?;
        dict.set_item("steps", p.steps)?;
        dict.set_item("width", p.width)?;
        dict.set_item("height", p.height)?;
        dict.set_item("num_frames", p.num_frames)?;
        dict.set_item("model", p.model.name())?;
        dict.set_item("convention", p.convention.name())?;
        dict.set_item("latent_channels", p.latent_channels)?;
        dict.set_item("vae_scale_factor", p.vae_scale_factor)?;
        dict.set_item("pack_factor", p.pack_factor)?;
        dict.set_item("layout", layout_dict(py, p)?)?;
        let aliases: Vec<&str> = presets::preset_aliases()
            .iter()
            .filter(|(_, target)| *target == p.name)
            .map(|(alias, _)| *alias)
            .collect();
        dict.set_item("aliases", aliases)?;
        dict.set_item("config", config_dict(py, &p.config())?)?;
        list.append(dict)?;
    }
    Ok(list)
}

/// The A1111 / ComfyUI scheduler aliases: dicts (name, tool, scheduler, options).
#[pyfunction]
fn schedule_aliases(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for a in aliases::list() {
        let dict = PyDict::new(py);
        dict.set_item("name", &a.name)?;
        dict.set_item("tool", a.tool)?;
        dict.set_item("scheduler", a.scheduler)?;
        dict.set_item("options", config_dict(py, &a.options)?)?;
        list.append(dict)?;
    }
    Ok(list)
}

/// Every ecosystem schedule as `"<tool>:<name>"`.
#[pyfunction]
fn schedule_ecosystem_names() -> Vec<String> {
    schedule::ecosystem::all_names()
}

/// The canonical spelling of a name of `kind` (`scheduler`, `preset`, `tool`, `source`,
/// `seed_mode`, `dtype`, `gpu`, `cpu_kernel`), with the tool a scheduler name belongs to and
/// the options an alias selects: `(name, tool, options)`.
#[pyfunction]
fn resolve_name<'py>(
    py: Python<'py>,
    kind: &str,
    name: &Bound<'py, PyAny>,
) -> PyResult<(String, Option<&'static str>, Bound<'py, PyDict>)> {
    let kind = NameKind::parse(kind).map_err(PyCoreError)?;
    let name = text_arg(name, kind.name())?;
    let empty = ConfigMap::new();
    let (canonical, tool, options) = match kind {
        NameKind::Scheduler => {
            let r = schedule::resolve_scheduler(&name).map_err(PyCoreError)?;
            (r.name, Some(r.tool), r.options)
        }
        NameKind::Preset => (
            presets::find(&name).map_err(PyCoreError)?.name.to_owned(),
            None,
            empty,
        ),
        NameKind::Tool => (
            schedule::ecosystem::canonical_tool(&name)
                .map_err(PyCoreError)?
                .to_owned(),
            None,
            empty,
        ),
        NameKind::Source => (
            Source::parse(&name, None, None)
                .map_err(PyCoreError)?
                .name()
                .to_owned(),
            None,
            empty,
        ),
        NameKind::SeedMode => (
            SeedMode::parse(&name)
                .map_err(PyCoreError)?
                .name()
                .to_owned(),
            None,
            empty,
        ),
        NameKind::Dtype => (
            Dtype::parse(&name).map_err(PyCoreError)?.name().to_owned(),
            None,
            empty,
        ),
        NameKind::CpuKernel => (
            CpuKernel::parse(&name)
                .map_err(PyCoreError)?
                .name()
                .to_owned(),
            None,
            empty,
        ),
        NameKind::GpuPreset => (
            GpuGeometry::canonical_preset(&name)
                .map_err(PyCoreError)?
                .to_owned(),
            None,
            empty,
        ),
    };
    Ok((canonical, tool, config_dict(py, &options)?))
}

/// The name kinds `resolve_name` takes.
#[pyfunction]
fn name_kinds() -> Vec<&'static str> {
    NameKind::ALL.iter().map(|k| k.name()).collect()
}

/// Every valid (canonical) name of `kind`.
#[pyfunction]
fn valid_names(kind: &str) -> PyResult<Vec<String>> {
    let kind = NameKind::parse(kind).map_err(PyCoreError)?;
    Ok(sigmaserve_core::names::valid_names(kind))
}

/// The diffusers scheduler class names `schedule_get` accepts.
#[pyfunction]
fn schedule_schedulers() -> Vec<&'static str> {
    schedule::list_schedulers()
}

/// `(class name, family)` for every diffusers scheduler class `schedule_get` accepts.
#[pyfunction]
fn schedule_families() -> Vec<(&'static str, &'static str)> {
    schedule::scheduler_families()
}

/// `(family, description)` of every scheduler family.
#[pyfunction]
fn schedule_family_descriptions() -> Vec<(&'static str, &'static str)> {
    schedule::family_descriptions()
}

/// `(class name, reason)` for the diffusers scheduler classes sigmaserve does not reproduce.
#[pyfunction]
fn schedule_excluded() -> Vec<(&'static str, &'static str)> {
    schedule::excluded_schedulers()
}

/// Adds this module's functions and classes to `sigmaserve._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(schedule_get, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_pipeline_call, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_presets, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_schedulers, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_families, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_family_descriptions, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_excluded, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_aliases, m)?)?;
    m.add_function(wrap_pyfunction!(schedule_ecosystem_names, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_name, m)?)?;
    m.add_function(wrap_pyfunction!(name_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(valid_names, m)?)?;
    Ok(())
}
