//! Each process's share of an epoch's batches, as accelerate's
//! `BatchSamplerShard` (`split_batches=False`, `even_batches=True`, the
//! sampler HF's Trainer gets under several processes): the batches of the
//! one global order are dealt out whole, in turn, so that N processes with
//! batch B see in each step exactly the samples one process with batch N·B
//! would. A last round with fewer batches than processes (or a short last
//! batch) is filled with samples from the start of the epoch, so that every
//! process runs the same number of batches, all full; with `drop_last` it
//! is dropped instead.

/// One process's batch: its samples, of which the first `real` are new; the
/// rest repeat the epoch's first samples, only to even the ranks out
/// (training uses them, as accelerate; evaluation leaves them out of its
/// metrics, as `gather_for_metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardBatch {
    pub indices: Vec<i64>,
    pub real: usize,
}

/// The batches process `index` of `num` takes from `batches` (the epoch's
/// batches of `batch_size`, in order; only the last may be short).
pub fn shard(
    batches: &[Vec<i64>],
    batch_size: usize,
    drop_last: bool,
    num: usize,
    index: usize,
) -> Vec<ShardBatch> {
    assert!(index < num, "process {index} of {num}");
    // One process is not sharded (accelerate leaves its loader alone):
    // a short last batch stays short.
    if num == 1 {
        return batches
            .iter()
            .map(|b| ShardBatch {
                indices: b.clone(),
                real: b.len(),
            })
            .collect();
    }
    let full = |b: &Vec<i64>| b.len() == batch_size;
    // Whole rounds: `num` batches whose last is full.
    let mut rounds = batches.len() / num;
    if rounds > 0 && !full(&batches[rounds * num - 1]) {
        rounds -= 1;
    }
    let mut mine: Vec<ShardBatch> = (0..rounds)
        .map(|r| ShardBatch {
            indices: batches[r * num + index].clone(),
            real: batches[r * num + index].len(),
        })
        .collect();
    let trailing = &batches[rounds * num..];
    if drop_last || trailing.is_empty() {
        return mine;
    }
    // The samples that fill the last round: those of the first `num`
    // batches, repeated until there are enough.
    let mut fill: Vec<i64> = batches.iter().take(num).flatten().copied().collect();
    let first = fill.clone();
    while fill.len() < num * batch_size {
        fill.extend_from_slice(&first);
    }
    let mut cursor = 0;
    for rank in 0..num {
        let (mut indices, real) = match trailing.get(rank) {
            Some(b) => (b.clone(), b.len()),
            None => (Vec::new(), 0),
        };
        let missing = batch_size - indices.len();
        indices.extend_from_slice(&fill[cursor..cursor + missing]);
        cursor += missing;
        if rank == index {
            mine.push(ShardBatch { indices, real });
        }
    }
    mine
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::data::epoch_batches;

    fn indices(shard: &[ShardBatch]) -> Vec<Vec<i64>> {
        shard.iter().map(|b| b.indices.clone()).collect()
    }

    /// The examples below were computed with accelerate's BatchSamplerShard
    /// (accelerate 1.x) over `BatchSampler(range(n), B, drop_last)`.
    #[test]
    fn an_uneven_end_is_filled_from_the_start() {
        let batches = epoch_batches(10, 4, false, None);
        let r0 = shard(&batches, 4, false, 2, 0);
        let r1 = shard(&batches, 4, false, 2, 1);
        assert_eq!(indices(&r0), [vec![0, 1, 2, 3], vec![8, 9, 0, 1]]);
        assert_eq!(indices(&r1), [vec![4, 5, 6, 7], vec![2, 3, 4, 5]]);
        assert_eq!((r0[1].real, r1[1].real), (2, 0));
    }

    #[test]
    fn one_process_keeps_its_short_last_batch() {
        let batches = epoch_batches(10, 4, false, None);
        assert_eq!(indices(&shard(&batches, 4, false, 1, 0)), batches);
    }

    #[test]
    fn fewer_samples_than_one_round_repeat() {
        let batches = epoch_batches(3, 4, false, None);
        assert_eq!(
            indices(&shard(&batches, 4, false, 2, 0)),
            [vec![0, 1, 2, 0]]
        );
        assert_eq!(
            indices(&shard(&batches, 4, false, 2, 1)),
            [vec![1, 2, 0, 1]]
        );
    }

    #[test]
    fn a_short_last_batch_in_a_whole_round_is_filled() {
        // 7 samples, B=2, 2 processes: batches [0,1] [2,3] [4,5] [6].
        let batches = epoch_batches(7, 2, false, None);
        assert_eq!(
            indices(&shard(&batches, 2, false, 2, 0)),
            [vec![0, 1], vec![4, 5]]
        );
        assert_eq!(
            indices(&shard(&batches, 2, false, 2, 1)),
            [vec![2, 3], vec![6, 0]]
        );
    }

    #[test]
    fn drop_last_drops_the_incomplete_round() {
        let batches = epoch_batches(10, 2, true, None);
        assert_eq!(batches.len(), 5);
        for rank in 0..2 {
            let mine = shard(&batches, 2, true, 2, rank);
            assert_eq!(mine.len(), 2);
        }
        assert_eq!(
            indices(&shard(&batches, 2, true, 2, 1)),
            [vec![2, 3], vec![6, 7]]
        );
    }

    /// N processes × batch B take, step by step, the samples of one process
    /// with batch N·B; and every rank has the same number of batches.
    #[test]
    fn n_processes_see_the_samples_of_one_with_n_times_the_batch() {
        for (len, b, n) in [(64, 4, 2), (64, 4, 3), (30, 5, 3), (17, 2, 4)] {
            let order = epoch_batches(len, b, false, Some((7, 1))).concat();
            let one = epoch_batches(len, b * n, false, Some((7, 1)));
            let shards: Vec<_> = (0..n)
                .map(|r| shard(&epoch_batches(len, b, false, Some((7, 1))), b, false, n, r))
                .collect();
            assert!(shards.iter().all(|s| s.len() == shards[0].len()));
            for (step, big) in one.iter().enumerate() {
                if big.len() < b * n {
                    continue; // the filled end differs by design
                }
                let together: Vec<i64> = shards
                    .iter()
                    .flat_map(|s| s[step].indices.clone())
                    .collect();
                assert_eq!(&together, big, "len {len} B {b} N {n} step {step}");
            }
            let real: usize = shards.iter().flatten().map(|s| s.real).sum();
            assert_eq!(real, len, "every sample counts once");
            assert_eq!(order.len(), len);
        }
    }
}
