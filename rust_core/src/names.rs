//! The one resolver of names: every name a caller gives (scheduler, preset, tool, ecosystem
//! schedule, noise source, seed mode, dtype, GPU preset, CPU kernel, option key) is matched
//! here, case-insensitively and through the aliases each table declares, and every unknown name
//! gets an error whose message suggests the nearest valid names.
//!
//! Tables stay with their owners (presets in `schedule::presets`, scheduler aliases in
//! `schedule::aliases`, sources in `rng`); this module only matches and explains.

use crate::error::{CoreError, Result};

/// What kind of name is being resolved (also the vocabulary of `resolve_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// A diffusers scheduler class, an alias (A1111 sampler, ComfyUI sampler/scheduler pair) or
    /// an ecosystem schedule `"<tool>:<name>"`.
    Scheduler,
    /// A model preset.
    Preset,
    /// An ecosystem tool (`comfyui`, `a1111`, `kdiffusion`, `ays`).
    Tool,
    /// A noise source (`cpu`, `cuda`, `a1111_nv`).
    Source,
    /// A seed mode (`per_item`, `batch`, `a1111`).
    SeedMode,
    /// A noise dtype.
    Dtype,
    /// A GPU preset of the CUDA source.
    GpuPreset,
    /// A torch CPU kernel of the CPU source.
    CpuKernel,
}

impl NameKind {
    /// Every kind, in a stable order.
    pub const ALL: [NameKind; 8] = [
        NameKind::Scheduler,
        NameKind::Preset,
        NameKind::Tool,
        NameKind::Source,
        NameKind::SeedMode,
        NameKind::Dtype,
        NameKind::GpuPreset,
        NameKind::CpuKernel,
    ];

    /// The kind's name (`"scheduler"`, `"preset"`, ...), as `resolve_name` takes it.
    pub fn name(self) -> &'static str {
        match self {
            NameKind::Scheduler => "scheduler",
            NameKind::Preset => "preset",
            NameKind::Tool => "tool",
            NameKind::Source => "source",
            NameKind::SeedMode => "seed_mode",
            NameKind::Dtype => "dtype",
            NameKind::GpuPreset => "gpu",
            NameKind::CpuKernel => "cpu_kernel",
        }
    }

    /// The kind called `name` (itself resolved like any other name).
    pub fn parse(name: &str) -> Result<NameKind> {
        let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
        let aliases = [("gpu_preset", "gpu"), ("ecosystem", "scheduler")];
        let canonical = resolve("kind", "name kind", name, &names, &aliases)?;
        Self::ALL
            .into_iter()
            .find(|k| k.name() == canonical)
            .ok_or_else(|| CoreError::invalid("kind", format!("unknown name kind {name:?}")))
    }
}

/// Every valid name of `kind` (canonical spellings; aliases resolve to these).
pub fn valid_names(kind: NameKind) -> Vec<String> {
    use crate::rng::{CpuKernel, Dtype, GpuGeometry, SeedMode, Source};
    use crate::schedule;
    let owned = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    match kind {
        NameKind::Scheduler => {
            let mut all = owned(&schedule::list_schedulers());
            all.extend(schedule::aliases::list().iter().map(|a| a.name.clone()));
            all.extend(schedule::ecosystem::all_names());
            all
        }
        NameKind::Preset => schedule::list_presets()
            .iter()
            .map(|p| p.name.to_owned())
            .collect(),
        NameKind::Tool => owned(&schedule::ecosystem::TOOLS),
        NameKind::Source => owned(&Source::NAMES),
        NameKind::SeedMode => owned(&SeedMode::NAMES),
        NameKind::Dtype => Dtype::ALL.iter().map(|d| d.name().to_owned()).collect(),
        NameKind::GpuPreset => owned(&GpuGeometry::preset_names()),
        NameKind::CpuKernel => owned(&CpuKernel::NAMES),
    }
}

/// `name` folded for matching: lower case, without spaces, `_`, `-` and `.`.
pub fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The canonical spelling of `name` among `valid` (exact, then case- and separator-
/// insensitive), or of an alias (`(alias, canonical)` pairs, matched the same way); else an
/// error on `field` suggesting the nearest names.
pub fn resolve<'a>(
    field: &str,
    what: &str,
    name: &str,
    valid: &[&'a str],
    aliases: &[(&str, &'a str)],
) -> Result<&'a str> {
    if let Some(found) = lookup(name, valid, aliases) {
        return Ok(found);
    }
    let mut candidates: Vec<&str> = valid.to_vec();
    candidates.extend(aliases.iter().map(|(alias, _)| *alias));
    Err(unknown(field, what, name, &candidates, valid))
}

/// [`resolve`] without the error: `None` when nothing matches.
pub fn lookup<'a>(name: &str, valid: &[&'a str], aliases: &[(&str, &'a str)]) -> Option<&'a str> {
    if let Some(exact) = valid.iter().find(|v| **v == name) {
        return Some(exact);
    }
    let key = fold(name);
    if key.is_empty() {
        return None;
    }
    valid.iter().copied().find(|v| fold(v) == key).or_else(|| {
        aliases
            .iter()
            .find(|(alias, _)| fold(alias) == key)
            .map(|(_, canonical)| *canonical)
    })
}

/// How many valid names an error lists in full before it only points to the catalog.
const LIST_ALL_BELOW: usize = 24;

/// The error for an unknown `name` on `field`: the nearest `candidates` as suggestions, then
/// every valid name when there are few of them (else a pointer to `sigmaserve.catalog()`).
pub fn unknown(
    field: &str,
    what: &str,
    name: &str,
    candidates: &[&str],
    valid: &[&str],
) -> CoreError {
    let nearest = suggest(name, candidates);
    let mut message = format!("unknown {what} {name:?}");
    if nearest.is_empty() {
        message.push('.');
    } else {
        let quoted: Vec<String> = nearest.iter().map(|n| format!("{n:?}")).collect();
        message.push_str(&format!("; did you mean {}?", join_or(&quoted)));
    }
    if valid.len() < LIST_ALL_BELOW {
        let quoted: Vec<String> = valid.iter().map(|n| format!("{n:?}")).collect();
        message.push_str(&format!(" Valid: {}.", quoted.join(", ")));
    } else {
        message.push_str(" See sigmaserve.catalog() for every valid name.");
    }
    CoreError::invalid(field, message)
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// At most this many suggestions.
const MAX_SUGGESTIONS: usize = 4;

/// The candidates nearest to `name` (edit distance on folded names, prefix and substring
/// matches), best first; empty when nothing is reasonably close.
pub fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Vec<&'a str> {
    let key = fold(name);
    if key.is_empty() {
        return Vec::new();
    }
    let limit = (key.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, usize, &'a str)> = Vec::new();
    for (order, candidate) in candidates.iter().enumerate() {
        let folded = fold(candidate);
        let distance = edit_distance(&key, &folded);
        let contains = key.len() >= 3 && (folded.contains(&key) || key.contains(&folded));
        let score = if distance <= limit {
            distance
        } else if contains {
            limit + 1
        } else {
            continue;
        };
        if !scored.iter().any(|(_, _, c)| fold(c) == folded) {
            scored.push((score, order, candidate));
        }
    }
    scored.sort();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, _, c)| c)
        .collect()
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_and_separators() {
        assert_eq!(fold("Per-Item"), "peritem");
        assert_eq!(fold("sd3.5 large"), "sd35large");
        let valid = ["per_item", "batch", "a1111"];
        assert_eq!(
            resolve("seed_mode", "seed mode", "PER_ITEM", &valid, &[]),
            Ok("per_item")
        );
        assert_eq!(
            resolve("seed_mode", "seed mode", "Batch", &valid, &[]),
            Ok("batch")
        );
    }

    #[test]
    fn unknown_names_suggest_the_nearest() {
        let valid = [
            "sd15",
            "sd21",
            "sdxl",
            "flux-dev",
            "flux-schnell",
            "wan2.1",
            "wan2.2",
        ];
        let err = resolve("preset", "preset", "fluxdevv", &valid, &[]).expect_err("unknown");
        assert_eq!(err.field(), "preset");
        assert!(
            err.to_string().contains("did you mean \"flux-dev\""),
            "{err}"
        );
        let err = resolve("preset", "preset", "wan", &valid, &[]).expect_err("unknown");
        assert!(
            err.to_string().contains("\"wan2.1\" or \"wan2.2\""),
            "{err}"
        );
        let err = resolve("preset", "preset", "zzzzzz", &valid, &[]).expect_err("unknown");
        assert!(!err.to_string().contains("did you mean"), "{err}");
        assert!(
            err.to_string().contains("\"zzzzzz\". Valid: \"sd15\""),
            "{err}"
        );
    }

    #[test]
    fn aliases_resolve_to_their_canonical_name() {
        let valid = ["sd35"];
        let aliases = [("sd3.5-large", "sd35")];
        assert_eq!(lookup("SD3.5 Large", &valid, &aliases), Some("sd35"));
        assert_eq!(lookup("", &valid, &aliases), None);
    }

    #[test]
    fn distance_counts_transpositions_once() {
        assert_eq!(edit_distance("karras", "karras"), 0);
        assert_eq!(edit_distance("karars", "karras"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(NameKind::parse("Seed-Mode"), Ok(NameKind::SeedMode));
        assert_eq!(NameKind::parse("gpu_preset"), Ok(NameKind::GpuPreset));
        assert_eq!(NameKind::parse("presett").expect_err("bad").field(), "kind");
    }
}
