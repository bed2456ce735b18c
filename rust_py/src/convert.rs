//! Python objects into the core's loosely typed inputs. Only type mapping lives here (an int
//! is an int, a sequence a list); every rule about the values is the core's.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use sigmaserve_core::latents::OptionValue;
use sigmaserve_core::CoreError;

use crate::errors::{CoreResult, PyCoreError};

/// An `InvalidArgumentError` naming `field`.
pub(crate) fn invalid(field: &str, msg: impl Into<String>) -> PyCoreError {
    PyCoreError(CoreError::invalid(field, msg))
}

/// The type name of `obj`, for error messages.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// Python's bool or numpy's (`numpy.bool`, `bool_` before numpy 2).
fn is_bool(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyBool>() || matches!(type_name(obj).as_str(), "bool" | "bool_")
}

/// An integer: a Python int or anything with `__index__` (numpy integers), never a bool.
/// Values beyond 128 bits are reported as out of range by the caller's rules.
pub(crate) fn int_arg(obj: &Bound<'_, PyAny>, field: &str) -> CoreResult<i128> {
    // The common case first: a plain int (bool is a subclass, so not an exact int).
    if obj.is_exact_instance_of::<PyInt>() {
        return obj
            .extract::<i128>()
            .map_err(|_| invalid(field, "integer out of range"));
    }
    if is_bool(obj) || obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyString>() {
        return Err(invalid(
            field,
            format!("must be an integer, got {}", type_name(obj)),
        ));
    }
    obj.extract::<i128>().map_err(|_| {
        if obj.is_instance_of::<PyInt>() || obj.hasattr("__index__").unwrap_or(false) {
            invalid(field, "integer out of range")
        } else {
            invalid(field, format!("must be an integer, got {}", type_name(obj)))
        }
    })
}

/// An optional count (`None`: not given): a non-negative integer.
pub(crate) fn count_arg(obj: Option<&Bound<'_, PyAny>>, field: &str) -> CoreResult<Option<u64>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let value = int_arg(obj, field)?;
    u64::try_from(value).map(Some).map_err(|_| {
        invalid(
            field,
            format!("must be a non-negative integer, got {value}"),
        )
    })
}

/// One int, or a sequence of ints (list, tuple, numpy array, any iterable but text).
pub(crate) fn ints_arg(obj: &Bound<'_, PyAny>, field: &str) -> CoreResult<Vec<i128>> {
    if let Ok(value) = int_arg(obj, field) {
        return Ok(vec![value]);
    }
    items(obj, field)?
        .iter()
        .map(|item| int_arg(item, field))
        .collect()
}

/// The items of a sequence argument (not a string or bytes).
fn items<'py>(obj: &Bound<'py, PyAny>, field: &str) -> CoreResult<Vec<Bound<'py, PyAny>>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(invalid(
            field,
            format!(
                "must be an int or a sequence of ints, got {}",
                type_name(obj)
            ),
        ));
    }
    let iter = obj.try_iter().map_err(|_| {
        invalid(
            field,
            format!(
                "must be an int or a sequence of ints, got {}",
                type_name(obj)
            ),
        )
    })?;
    iter.collect::<PyResult<Vec<_>>>()
        .map_err(|e| invalid(field, e.to_string()))
}

/// A real number: a Python float or int, or anything with `__float__` (numpy and torch
/// scalars), never a bool or text.
pub(crate) fn float_arg(obj: &Bound<'_, PyAny>, field: &str) -> CoreResult<f64> {
    if is_bool(obj) || obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(invalid(
            field,
            format!("must be a number, got {}", type_name(obj)),
        ));
    }
    obj.extract::<f64>()
        .map_err(|_| invalid(field, format!("must be a number, got {}", type_name(obj))))
}

/// A string argument.
pub(crate) fn str_arg(obj: &Bound<'_, PyAny>, field: &str) -> CoreResult<String> {
    obj.extract::<String>()
        .map_err(|_| invalid(field, format!("must be a string, got {}", type_name(obj))))
}

/// A loosely typed option value.
pub(crate) fn option_value(obj: &Bound<'_, PyAny>) -> OptionValue {
    if obj.is_none() {
        return OptionValue::Null;
    }
    if is_bool(obj) {
        return OptionValue::Bool(obj.is_truthy().unwrap_or(false));
    }
    if obj.is_instance_of::<PyFloat>() {
        return obj
            .extract::<f64>()
            .map(OptionValue::Float)
            .unwrap_or_else(|_| OptionValue::Other("float".into()));
    }
    if obj.is_instance_of::<PyString>() {
        return obj
            .extract::<String>()
            .map(OptionValue::Str)
            .unwrap_or_else(|_| OptionValue::Other("str".into()));
    }
    if let Ok(v) = obj.extract::<i128>() {
        return OptionValue::Int(v);
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        return match obj.try_iter() {
            Ok(iter) => OptionValue::List(
                iter.map(|item| item.map(|i| option_value(&i)).unwrap_or(OptionValue::Null))
                    .collect(),
            ),
            Err(_) => OptionValue::Other(type_name(obj)),
        };
    }
    if obj.hasattr("tolist").unwrap_or(false) {
        // numpy arrays and scalars, torch tensors
        if let Ok(plain) = obj.call_method0("tolist") {
            if !plain.hasattr("tolist").unwrap_or(true) {
                return option_value(&plain);
            }
        }
    }
    if let Ok(v) = obj.extract::<f64>() {
        return OptionValue::Float(v);
    }
    OptionValue::Other(type_name(obj))
}

/// A mapping of option values (`None`: empty); keys must be strings.
pub(crate) fn option_map(
    obj: Option<&Bound<'_, PyAny>>,
    field: &str,
) -> CoreResult<Vec<(String, OptionValue)>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let pairs: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = match obj.cast::<PyDict>() {
        Ok(dict) => dict.iter().collect(),
        Err(_) => obj
            .call_method0("items")
            .and_then(|items| items.try_iter()?.map(|p| p?.extract()).collect())
            .map_err(|_| invalid(field, format!("must be a mapping, got {}", type_name(obj))))?,
    };
    pairs
        .into_iter()
        .map(|(key, value)| {
            let key = key
                .extract::<String>()
                .map_err(|_| invalid(field, "keys must be strings"))?;
            Ok((key, option_value(&value)))
        })
        .collect()
}
