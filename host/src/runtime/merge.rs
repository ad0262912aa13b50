//! Putting batches together and apart between a task's nodes: merging
//! inputs in source-record order, tagging a join's sides, splitting a
//! branching step's output.

use crate::ops::{Emitter, Records};

/// A branching step's output, by branch (tags cleared, numbered 0..n).
pub(super) fn split(records: &Records, branches: usize) -> Vec<Records> {
    let mut parts: Vec<Emitter> = (0..branches).map(|_| Emitter::new()).collect();
    for (r, &o) in records.view().iter().zip(&records.origins) {
        if let Some(part) = parts.get_mut(r.tag as usize) {
            part.emit(o, r.key, r.value, r.aux, r.timestamp, r.headers.iter());
        }
    }
    parts.into_iter().map(Emitter::finish).collect()
}

/// A join's two inputs as one batch in the order of the source records
/// they came from (left first), each record tagged with its side.
pub(super) fn merge_sides(left: Option<&Records>, right: Option<&Records>) -> Records {
    let mut order: Vec<(u32, usize, usize)> = Vec::new();
    let sides = [left, right];
    for (side, part) in sides.iter().enumerate() {
        if let Some(part) = part {
            order.extend(part.origins.iter().enumerate().map(|(i, &o)| (o, side, i)));
        }
    }
    order.sort_unstable();
    let views: Vec<_> = sides.iter().map(|p| p.map(Records::view)).collect();
    let mut em = Emitter::new();
    for (o, side, i) in order {
        let r = views[side].as_ref().expect("a side with records").get(i);
        em.emit_tagged(
            o,
            r.key,
            r.value,
            r.aux,
            side as u32,
            r.timestamp,
            r.headers.iter(),
        );
    }
    em.finish()
}

/// Merges batches in the order of the source records they came from; the
/// records of one source record keep the order of `parts`.
pub fn merge(parts: &[&Records]) -> Records {
    if let [one] = parts {
        return (*one).clone();
    }
    let mut order: Vec<(u32, usize, usize)> = Vec::new();
    for (p, part) in parts.iter().enumerate() {
        order.extend(part.origins.iter().enumerate().map(|(i, &o)| (o, p, i)));
    }
    order.sort_unstable();
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let mut em = Emitter::new();
    for (o, p, i) in order {
        let r = views[p].get(i);
        em.emit(o, r.key, r.value, r.aux, r.timestamp, r.headers.iter());
    }
    em.finish()
}
