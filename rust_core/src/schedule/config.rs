//! Scheduler configuration values as they arrive from Python, JSON or protobuf `Struct`, and the
//! typed accessors the schedule builders use once a configuration has been validated.

use std::borrow::Cow;

use crate::error::{CoreError, Result};

/// One configuration value. This mirrors what a diffusers `scheduler_config.json` can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// JSON `null` / Python `None`.
    Null,
    /// A boolean. Never accepted where an integer is expected.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float. Accepted for integer keys when it has an integral value.
    Float(f64),
    /// A string.
    Str(String),
    /// A list of floats (for example `trained_betas`, custom `sigmas`).
    FloatList(Vec<f64>),
    /// A list of integers (for example custom `timesteps`, `disable_corrector`).
    IntList(Vec<i64>),
    /// A list of strings (for example diffusers' `_use_default_values`).
    StrList(Vec<String>),
    /// A value the caller could not represent (a nested mapping, an object); the text names its
    /// type. Harmless for keys the scheduler ignores, an error for keys it uses.
    Opaque(String),
}

impl ConfigValue {
    /// A short name of the value's type, used in error messages.
    pub fn type_name(&self) -> &str {
        match self {
            ConfigValue::Null => "None",
            ConfigValue::Bool(_) => "bool",
            ConfigValue::Int(_) => "int",
            ConfigValue::Float(_) => "float",
            ConfigValue::Str(_) => "str",
            ConfigValue::FloatList(_) => "list of float",
            ConfigValue::IntList(_) => "list of int",
            ConfigValue::StrList(_) => "list of str",
            ConfigValue::Opaque(name) => name,
        }
    }

    /// The value as an integer: an `Int`, or a `Float` with an integral value (protobuf `Struct`
    /// and JSON carry every number as a double). A `Bool` is never an integer.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            ConfigValue::Int(v) => Some(v),
            ConfigValue::Float(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some(v as i64),
            _ => None,
        }
    }

    /// The value as a float: a `Float` or an `Int` (never a `Bool`).
    pub fn as_float(&self) -> Option<f64> {
        match *self {
            ConfigValue::Float(v) => Some(v),
            ConfigValue::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as a list of floats (an integer list is widened).
    pub fn as_float_list(&self) -> Option<Vec<f64>> {
        match self {
            ConfigValue::FloatList(v) => Some(v.clone()),
            ConfigValue::IntList(v) => Some(v.iter().map(|&x| x as f64).collect()),
            _ => None,
        }
    }

    /// The value as a list of integers (a float list with integral values is narrowed).
    pub fn as_int_list(&self) -> Option<Vec<i64>> {
        match self {
            ConfigValue::IntList(v) => Some(v.clone()),
            ConfigValue::FloatList(v) => v
                .iter()
                .map(|&x| ConfigValue::Float(x).as_int())
                .collect::<Option<Vec<i64>>>(),
            _ => None,
        }
    }
}

/// An insertion-ordered map from configuration key to value. Inserting an existing key replaces
/// its value in place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigMap {
    entries: Vec<(Cow<'static, str>, ConfigValue)>,
}

impl ConfigMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, keeping the key's position if it is already present.
    pub fn insert<K: AsRef<str> + Into<String>>(&mut self, key: K, value: ConfigValue) {
        match self.entries.iter_mut().find(|(k, _)| k == key.as_ref()) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((Cow::Owned(key.into()), value)),
        }
    }

    /// An empty map with room for `capacity` entries.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        ConfigMap {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Appends a key known at compile time (no allocation); the caller ensures it is new.
    pub(crate) fn push_static(&mut self, key: &'static str, value: ConfigValue) {
        self.entries.push((Cow::Borrowed(key), value));
    }

    /// Replaces the value of the entry at `index` (insertion order); out of range: nothing.
    pub(crate) fn set_index(&mut self, index: usize, value: ConfigValue) {
        if let Some(entry) = self.entries.get_mut(index) {
            entry.1 = value;
        }
    }

    /// Mutable access to the values in insertion order.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = (&str, &mut ConfigValue)> {
        self.entries
            .iter_mut()
            .map(|entry| (&*entry.0, &mut entry.1))
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<ConfigValue> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ConfigValue)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl FromIterator<(String, ConfigValue)> for ConfigMap {
    fn from_iter<I: IntoIterator<Item = (String, ConfigValue)>>(iter: I) -> Self {
        let mut map = ConfigMap::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

/// A validated, fully resolved configuration of one scheduler class: typed reads that only fail
/// if a builder asks for a key its class does not declare (a programming error reported as an
/// error, never a panic).
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) map: ConfigMap,
}

impl Resolved {
    fn value(&self, key: &str) -> Result<&ConfigValue> {
        self.map
            .get(key)
            .ok_or_else(|| CoreError::invalid(key, "missing from the resolved configuration"))
    }

    fn wrong(key: &str, want: &str, got: &ConfigValue) -> CoreError {
        CoreError::invalid(key, format!("expected {want}, got {}", got.type_name()))
    }

    /// Whether the class declares `key`.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub(crate) fn int(&self, key: &str) -> Result<i64> {
        let v = self.value(key)?;
        v.as_int().ok_or_else(|| Self::wrong(key, "an int", v))
    }

    /// An integer key known to be at least 1 after validation.
    pub(crate) fn count(&self, key: &str) -> Result<usize> {
        usize::try_from(self.int(key)?).map_err(|_| CoreError::invalid(key, "must not be negative"))
    }

    pub(crate) fn float(&self, key: &str) -> Result<f64> {
        let v = self.value(key)?;
        v.as_float().ok_or_else(|| Self::wrong(key, "a float", v))
    }

    pub(crate) fn opt_float(&self, key: &str) -> Result<Option<f64>> {
        if !self.has(key) {
            return Ok(None);
        }
        match self.value(key)? {
            ConfigValue::Null => Ok(None),
            v => v
                .as_float()
                .map(Some)
                .ok_or_else(|| Self::wrong(key, "a float or None", v)),
        }
    }

    pub(crate) fn flag(&self, key: &str) -> Result<bool> {
        if !self.has(key) {
            return Ok(false);
        }
        match self.value(key)? {
            ConfigValue::Bool(b) => Ok(*b),
            ConfigValue::Null => Ok(false),
            v => Err(Self::wrong(key, "a bool", v)),
        }
    }

    pub(crate) fn text(&self, key: &str) -> Result<&str> {
        match self.value(key)? {
            ConfigValue::Str(s) => Ok(s),
            v => Err(Self::wrong(key, "a str", v)),
        }
    }

    pub(crate) fn opt_float_list(&self, key: &str) -> Result<Option<Vec<f64>>> {
        match self.value(key)? {
            ConfigValue::Null => Ok(None),
            v => v
                .as_float_list()
                .map(Some)
                .ok_or_else(|| Self::wrong(key, "a list of floats or None", v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_are_ints_but_bools_are_not() {
        assert_eq!(ConfigValue::Float(1000.0).as_int(), Some(1000));
        assert_eq!(ConfigValue::Float(1000.5).as_int(), None);
        assert_eq!(ConfigValue::Bool(true).as_int(), None);
        assert_eq!(ConfigValue::Bool(true).as_float(), None);
    }

    #[test]
    fn insert_replaces_in_place() {
        let mut map = ConfigMap::new();
        map.insert("a", ConfigValue::Int(1));
        map.insert("b", ConfigValue::Int(2));
        map.insert("a", ConfigValue::Int(3));
        let keys: Vec<&str> = map.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["a", "b"]);
        assert_eq!(map.get("a"), Some(&ConfigValue::Int(3)));
    }
}
