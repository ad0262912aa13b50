//! Unit tests of the task running a graph.

use super::*;

fn batch(rows: &[(u32, &str)]) -> Records {
    let mut em = Emitter::new();
    for (o, v) in rows {
        em.emit(*o, None, Some(v.as_bytes()), None, 0, []);
    }
    em.finish()
}

fn values(r: &Records) -> Vec<(u32, String)> {
    r.view()
        .iter()
        .zip(&r.origins)
        .map(|(x, &o)| (o, String::from_utf8(x.value.unwrap().to_vec()).unwrap()))
        .collect()
}

#[test]
fn a_batch_runs_through_the_graph_to_each_destination() {
    let text = "application_id = \"t\"\n[[sources]]\ntopic = \"in\"\n\
                [[steps]]\nname = \"g\"\nop = \"group_by_key\"\n\
                [[steps]]\nname = \"c\"\nop = \"count\"\n\
                [[sinks]]\ntopic = \"counts\"\n\
                [[sinks]]\ntopic = \"raw\"\nfrom = \"in\"\n\
                [[sinks]]\ntopic = \"raw-too\"\nfrom = \"in\"\n\
                [state]\ncache_size = \"0\"\nstore = \"memory\"\n";
    let t = crate::spec::validate_text(std::path::Path::new("t.toml"), text).unwrap();
    let mut task = TaskPipeline::new(&t, 0, None, &crate::state::global::Globals::new([])).unwrap();
    let mut chain = Chain::new(&[]).unwrap();
    let mut w = eddy_batch::BatchWriter::new();
    for (i, k) in ["a", "b", "a"].iter().enumerate() {
        w.record(i as u32, Some(k.as_bytes()), Some(b"v"), 10 + i as i64, []);
    }
    let input = Records::new(w.into_vec(), vec![0, 1, 2]);
    let out = task
        .process(SubInput::Source(0), &mut chain, input)
        .unwrap();
    let by_dest: Vec<(Destination, Vec<(u32, String)>)> = out
        .outputs
        .iter()
        .map(|o| (o.to.clone(), values(&o.records)))
        .collect();
    let count = |o: u32, v: &str| (o, v.to_string());
    assert_eq!(
        by_dest,
        [
            (
                Destination::Sinks(vec![0].into()),
                vec![count(0, "1"), count(1, "1"), count(2, "2")]
            ),
            (
                Destination::Sinks(vec![1, 2].into()),
                vec![count(0, "v"), count(1, "v"), count(2, "v")]
            ),
        ],
        "the counts, and the source records once for both sinks reading them"
    );
    assert_eq!(out.changelog.len(), 3, "every count to the changelog");
    assert!(task.flush(&mut chain).unwrap().outputs.is_empty());
}

#[test]
fn a_merge_follows_source_records_then_input_order() {
    let a = batch(&[(0, "a0"), (2, "a2"), (2, "a2'")]);
    let b = batch(&[(0, "b0"), (1, "b1"), (3, "b3")]);
    let m = merge(&[&a, &b]);
    let got: Vec<String> = values(&m).into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, ["a0", "b0", "b1", "a2", "a2'", "b3"]);
    let entries: Vec<u32> = (0..m.len()).map(|j| m.view().entry(j).index).collect();
    assert_eq!(
        entries,
        [0, 1, 2, 3, 4, 5],
        "numbered 0..n for the next node"
    );
}

#[test]
fn a_split_sends_each_record_to_its_branch() {
    let mut w = eddy_batch::BatchWriter::new();
    for (i, tag) in [1u32, 0, 1].into_iter().enumerate() {
        w.record_full(i as u32, None, Some(&b"v"[..]), None, tag, i as i64, []);
    }
    let r = Records::new(w.into_vec(), vec![5, 6, 7]);
    let parts = split(&r, 2);
    assert_eq!(parts[0].origins, [6]);
    assert_eq!(parts[1].origins, [5, 7]);
    assert!(parts[1].view().iter().all(|x| x.tag == 0));
}
