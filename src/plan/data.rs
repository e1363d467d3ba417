//! The data a recreate or a removal touches: the old container's mounts, as
//! observed, against the new spec. A recreate carries the old container's
//! anonymous volumes over to the new one by target (declared ones, and those
//! from the image's `VOLUME`), as docker-compose does; a mount of data
//! (named, anonymous or bind) the new container will not have is dropped, and
//! an action that drops data is destructive. tomo never deletes a volume it
//! was not told to by name, so dropped data stays on the server.

use std::collections::BTreeSet;

use crate::model::ContainerObs;
use crate::model::labels;
use crate::model::observed::{DataKind, DataMount, MountKind};
use crate::model::spec::{ContainerSpec, SpecMount, SpecMountKind};

/// What replacing a container does to its data.
#[derive(Debug, Default, PartialEq)]
pub struct Replaced {
    /// Anonymous volumes the new container mounts again, at the same target.
    pub keeps: Vec<DataMount>,
    /// Data the old container mounts and the new one will not.
    pub drops: Vec<DataMount>,
}

/// The mounts the container was created with, from its `tomo.spec` label
/// (`None` when the label is missing or from another tomo version).
fn declared_mounts(c: &ContainerObs) -> Option<Vec<SpecMount>> {
    let spec: serde_json::Value = serde_json::from_str(c.label(labels::SPEC)?).ok()?;
    serde_json::from_value(spec.get("mounts")?.clone()).ok()
}

/// The data mounts of `c`; a volume is named when `named` holds its name.
fn data_mounts(c: &ContainerObs, named: &BTreeSet<&str>) -> Vec<DataMount> {
    c.mounts
        .iter()
        .filter_map(|m| {
            let (kind, source) = match (m.kind, &m.name) {
                (MountKind::Volume, Some(name)) if named.contains(name.as_str()) => (DataKind::Named, name.clone()),
                (MountKind::Volume, Some(name)) => (DataKind::Anonymous, name.clone()),
                (MountKind::Bind, _) => (DataKind::Bind, m.source.clone()),
                _ => return None,
            };
            Some(DataMount { kind, source, target: m.target.clone() })
        })
        .collect()
}

fn named_in(mounts: &[SpecMount]) -> impl Iterator<Item = &str> {
    mounts.iter().filter(|m| m.kind == SpecMountKind::Volume).map(|m| m.source.as_str())
}

/// The data a removal of `c` drops (all of it; the volumes stay on the server).
pub fn held_by(c: &ContainerObs) -> Vec<DataMount> {
    let declared = declared_mounts(c).unwrap_or_default();
    data_mounts(c, &named_in(&declared).collect())
}

/// What the new spec mounts at `target` (its `tmpfs` list included).
fn mounted_at(new: &ContainerSpec, target: &str) -> Option<SpecMountKind> {
    let tmpfs = new.tmpfs.iter().any(|t| same_path(t.target(), target));
    new.mounts.iter().find(|n| same_path(&n.target, target)).map(|n| n.kind).or(tmpfs.then_some(SpecMountKind::Tmpfs))
}

fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// What replacing `old` by a container of `new` keeps and drops. An
/// anonymous volume is carried over when the new spec declares an anonymous
/// volume at its target, or when it came from the image (not declared) and
/// the new spec mounts nothing there; a named volume or bind mount is kept
/// when the new spec mounts the same source.
pub fn replace(old: &ContainerObs, new: &ContainerSpec) -> Replaced {
    let declared = declared_mounts(old);
    let named: BTreeSet<&str> =
        named_in(declared.as_deref().unwrap_or_default()).chain(named_in(&new.mounts)).collect();
    let mut out = Replaced::default();
    for m in data_mounts(old, &named) {
        let kept = match m.kind {
            DataKind::Anonymous => {
                let was_declared = declared.as_ref().is_some_and(|d| d.iter().any(|d| d.target == m.target));
                match mounted_at(new, &m.target) {
                    Some(kind) => kind == SpecMountKind::Anonymous,
                    None => !was_declared,
                }
            }
            DataKind::Named => new.mounts.iter().any(|n| n.kind == SpecMountKind::Volume && n.source == m.source),
            DataKind::Bind => {
                new.mounts.iter().any(|n| n.kind == SpecMountKind::Bind && same_path(&n.source, &m.source))
            }
        };
        match (kept, m.kind) {
            (true, DataKind::Anonymous) => out.keeps.push(m),
            (true, _) => {}
            (false, _) => out.drops.push(m),
        }
    }
    out
}
