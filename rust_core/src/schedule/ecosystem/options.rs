//! Option values and a reader that tracks which keys a schedule used, so unknown overrides
//! are reported by name while unrelated keys of a diffusers config are ignored.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{CoreError, Result};

/// One option value, as it arrives from Python / gRPC.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
}

/// Named options (`config` or `overrides`).
pub type Options = BTreeMap<String, Value>;

/// Reads options with precedence overrides > config, recording what was used and the
/// effective values (defaults included).
pub(crate) struct Reader<'a> {
    config: &'a Options,
    overrides: &'a Options,
    used: RefCell<BTreeSet<String>>,
    resolved: RefCell<Options>,
}

fn type_error(key: &str, want: &str, got: &Value) -> CoreError {
    CoreError::invalid(key, format!("must be {want}, got {got:?}"))
}

impl<'a> Reader<'a> {
    pub(crate) fn new(config: &'a Options, overrides: &'a Options) -> Self {
        Reader {
            config,
            overrides,
            used: RefCell::new(BTreeSet::new()),
            resolved: RefCell::new(Options::new()),
        }
    }

    fn raw(&self, key: &str) -> Option<&'a Value> {
        self.used.borrow_mut().insert(key.to_string());
        self.overrides.get(key).or_else(|| self.config.get(key))
    }

    /// Whether the caller set `key` as an override (not just in the config).
    pub(crate) fn overridden(&self, key: &str) -> bool {
        self.overrides.contains_key(key)
    }

    /// Marks a key as consumed without reading it (a config key deliberately ignored).
    pub(crate) fn ignore(&self, key: &str) {
        self.used.borrow_mut().insert(key.to_string());
    }

    /// Records an effective value in the resolved configuration.
    pub(crate) fn record(&self, key: &str, v: Value) {
        self.resolved.borrow_mut().insert(key.to_string(), v);
    }

    /// A finite float (ints accepted).
    pub(crate) fn f64(&self, key: &str) -> Result<Option<f64>> {
        let v = match self.raw(key) {
            None => return Ok(None),
            Some(Value::Float(f)) => *f,
            Some(Value::Int(i)) => *i as f64,
            Some(other) => return Err(type_error(key, "a number", other)),
        };
        if !v.is_finite() {
            return Err(CoreError::invalid(key, format!("must be finite, got {v}")));
        }
        self.record(key, Value::Float(v));
        Ok(Some(v))
    }

    /// A float with a default, recorded.
    pub(crate) fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        let v = self.f64(key)?.unwrap_or(default);
        self.record(key, Value::Float(v));
        Ok(v)
    }

    /// A boolean.
    pub(crate) fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        let v = match self.raw(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(type_error(key, "a boolean", other)),
        };
        self.record(key, Value::Bool(v));
        Ok(v)
    }

    /// A non-negative integer.
    pub(crate) fn usize(&self, key: &str) -> Result<Option<usize>> {
        let v = match self.raw(key) {
            None => return Ok(None),
            Some(Value::Int(i)) if *i >= 0 => *i as usize,
            Some(Value::Float(f)) if f.fract() == 0.0 && *f >= 0.0 && *f < 1e15 => *f as usize,
            Some(other) => return Err(type_error(key, "a non-negative integer", other)),
        };
        self.record(key, Value::Int(v as i64));
        Ok(Some(v))
    }

    /// A string, lower-cased.
    pub(crate) fn str(&self, key: &str) -> Result<Option<String>> {
        match self.raw(key) {
            None => Ok(None),
            Some(Value::Str(s)) => {
                self.record(key, Value::Str(s.clone()));
                Ok(Some(s.to_ascii_lowercase()))
            }
            Some(other) => Err(type_error(key, "a string", other)),
        }
    }

    /// Fails on the first override this schedule did not read.
    pub(crate) fn finish(&self, scheduler: &str) -> Result<Options> {
        let used = self.used.borrow();
        if let Some(k) = self.overrides.keys().find(|k| !used.contains(k.as_str())) {
            return Err(CoreError::invalid(
                k.as_str(),
                format!("is not an option of {scheduler}"),
            ));
        }
        Ok(self.resolved.borrow().clone())
    }
}
