//! What the loop does across the processes of a data-parallel run: each
//! rank's share of the batches, the control flags agreed after every event,
//! numbers averaged or summed over the ranks, and evaluation gathered.
//! With one process every function here is the identity.

use super::data::{epoch_batches, Dataset};
use super::eval::Kept;
use super::model::{MetricSum, Reduce};
use super::Trainer;
use crate::dist::shard::{shard, ShardBatch};
use crate::event::Event;
use crate::pyjson::Json;
use crate::state::TrainerControl;
use anyhow::{anyhow, bail, Result};
use tch::{Kind, Tensor};

/// The events after which the loop reads the control flags (to log,
/// evaluate, save or stop).
const LOOP_READS_CONTROL_AFTER: [Event; 6] = [
    Event::SubstepEnd,
    Event::StepEnd,
    Event::EpochEnd,
    Event::Log,
    Event::Evaluate,
    Event::Save,
];

impl Trainer {
    /// This rank's batches of training epoch `epoch`: the epoch's one order
    /// (from the seed), dealt out as accelerate's `BatchSamplerShard`.
    pub(super) fn train_shard(&self, epoch: u64) -> Vec<Vec<i64>> {
        let bs = self.args.per_device_train_batch_size as usize;
        // HF's sampler seed: --data_seed, else --seed.
        let order = Some((self.args.sampler_seed(), epoch));
        self.my_batches(self.train_data.len(), bs, order)
            .into_iter()
            .map(|b| b.indices)
            .collect()
    }

    /// This rank's evaluation batches of `data`, in order.
    pub(super) fn eval_shard(&self, data: &dyn Dataset) -> Vec<ShardBatch> {
        let bs = self.args.per_device_eval_batch_size as usize;
        self.my_batches(data.len(), bs, None)
    }

    /// This rank's share of the batches of `len` samples (shuffled by
    /// `order`'s seed and epoch when given).
    fn my_batches(&self, len: usize, bs: usize, order: Option<(u64, u64)>) -> Vec<ShardBatch> {
        let drop_last = self.args.dataloader_drop_last;
        let batches = epoch_batches(len, bs, drop_last, order);
        shard(
            &batches,
            bs,
            drop_last,
            self.world.size(),
            self.world.rank(),
        )
    }

    /// Makes the control flags the same on every rank after an event whose
    /// flags the loop reads next: a flag any rank's callbacks set is set on
    /// all (a stop a plugin asks for on one rank stops every rank at the
    /// same step). After the other events the flags wait, unchanged, for
    /// the next of these: the loop decides nothing before it, and no reset
    /// comes between, so every rank decides as if they had been agreed at
    /// once, for one collective a step instead of four.
    pub(super) fn agree_on_control(&mut self, after: Event) -> Result<()> {
        if !self.world.is_distributed() || !LOOP_READS_CONTROL_AFTER.contains(&after) {
            return Ok(());
        }
        let mut flags = self.control.flags();
        self.world
            .any("agreeing on the control flags", &mut flags)?;
        self.control = TrainerControl::from_flag_array(flags);
        Ok(())
    }

    /// Fails unless every rank resumes from the same checkpoint (or none):
    /// a rank that cannot see world zero's output_dir (no shared
    /// filesystem) would otherwise train from another step.
    pub(super) fn agree_on_resume(&self, checkpoint: Option<&std::path::Path>) -> Result<()> {
        if !self.world.is_distributed() {
            return Ok(());
        }
        let mine = checkpoint.map_or(String::new(), |p| p.display().to_string());
        let all = self
            .world
            .gather_bytes("agreeing on the checkpoint to resume from", mine.as_bytes())?;
        let all: Vec<String> = all
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        if let Some((rank, other)) = all.iter().enumerate().find(|(_, c)| **c != all[0]) {
            let say = |c: &str| {
                if c.is_empty() {
                    "no checkpoint".to_string()
                } else {
                    c.to_string()
                }
            };
            bail!(
                "rank {rank} resumes from {} but rank 0 from {}: every process must see the same                  output_dir (a shared filesystem when the run spans machines)",
                say(other),
                say(&all[0])
            );
        }
        Ok(())
    }

    /// The mean of `value` over the ranks (HF's `_nested_gather(x).mean()`).
    pub(super) fn mean_over_ranks(&self, what: &str, value: f64) -> Result<f64> {
        let mut v = [value];
        self.world.sum(what, &mut v)?;
        Ok(v[0] / self.world.size() as f64)
    }

    /// The evaluation sums of every rank added up: the loss sum, the samples
    /// with a loss, and each metric's sum and count (in the order the
    /// metrics first appear on the lowest rank that has them).
    pub(super) fn sum_evaluation(
        &self,
        loss: (f64, usize),
        sums: Vec<MetricSum>,
    ) -> Result<((f64, usize), Vec<MetricSum>)> {
        if !self.world.is_distributed() {
            return Ok((loss, sums));
        }
        let mine = Json::Array(
            std::iter::once(Json::Array(vec![
                Json::Float(loss.0),
                Json::Int(loss.1 as i64),
            ]))
            .chain(sums.iter().map(|s| {
                Json::Array(vec![
                    Json::Str(s.name.to_string()),
                    Json::Float(s.sum),
                    Json::Float(s.count),
                    Json::Int(i64::from(s.reduce == Reduce::ExpOfMean)),
                ])
            }))
            .collect(),
        );
        let all = self
            .world
            .gather_bytes("gathering the evaluation", mine.to_compact().as_bytes())?;
        let (mut loss_sum, mut with_loss) = (0.0, 0usize);
        let mut total: Vec<MetricSum> = Vec::new();
        for bytes in all {
            let text = String::from_utf8(bytes)?;
            let json = Json::parse(&text).map_err(|e| anyhow!("a rank's evaluation: {e}"))?;
            let mut items = json.as_array().unwrap_or_default().iter();
            if let Some(Json::Array(l)) = items.next() {
                loss_sum += l.first().and_then(Json::as_f64).unwrap_or(0.0);
                with_loss += l.get(1).and_then(Json::as_i64).unwrap_or(0) as usize;
            }
            for item in items {
                let Some([Json::Str(name), sum, count, reduce]) = item.as_array() else {
                    continue;
                };
                let (sum, count) = (sum.as_f64().unwrap_or(0.0), count.as_f64().unwrap_or(0.0));
                match total.iter_mut().find(|t| t.name == name) {
                    Some(t) => {
                        t.sum += sum;
                        t.count += count;
                    }
                    None => total.push(MetricSum {
                        name: intern(name),
                        sum,
                        count,
                        reduce: if reduce.as_i64() == Some(1) {
                            Reduce::ExpOfMean
                        } else {
                            Reduce::Mean
                        },
                    }),
                }
            }
        }
        Ok(((loss_sum, with_loss), total))
    }
}

impl Trainer {
    /// Replaces this rank's kept predictions and labels (one tensor per
    /// counted batch) by every rank's, in the order of the data: round by
    /// round, rank by rank, as the batches were dealt.
    pub(super) fn gather_predictions(&self, kept: &mut Kept) -> Result<()> {
        if !self.world.is_distributed() {
            return Ok(());
        }
        for list in [&mut kept.predictions, &mut kept.labels] {
            let all = self
                .world
                .gather_bytes("gathering the predictions", &encode(list)?)?
                .iter()
                .map(|b| decode(b))
                .collect::<Result<Vec<Vec<Tensor>>>>()?;
            let rounds = all.iter().map(Vec::len).max().unwrap_or(0);
            let mut ordered = Vec::new();
            for round in 0..rounds {
                for rank in &all {
                    if let Some(t) = rank.get(round) {
                        ordered.push(t.shallow_clone());
                    }
                }
            }
            *list = ordered;
        }
        Ok(())
    }
}

impl Trainer {
    /// `TRAINBOX_FAULT_INJECT=kill-rank:R:N` (fault injection for tests):
    /// the process of rank R kills itself with SIGKILL, as `kill -9` would,
    /// after update N, on the launcher's first attempt only (so that a
    /// restarted group runs through).
    pub(super) fn die_if_injected(&self) {
        let rank = self.world.rank();
        let step = self.state.global_step;
        let first_attempt = self.world.restart_count() == 0;
        if first_attempt && super::checkpoint::injected(&format!("kill-rank:{rank}"), step) {
            eprintln!("trainbox: TRAINBOX_FAULT_INJECT: rank {rank} dies after step {step}");
            // SAFETY: signalling this process.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

/// A metric's name as the `&'static str` a [`MetricSum`] holds: another
/// rank's metric this rank's batches had none of. Each name is kept once.
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// The kinds a gathered tensor may have, by their code in [`encode`].
const KINDS: [Kind; 10] = [
    Kind::Uint8,
    Kind::Int8,
    Kind::Int16,
    Kind::Int,
    Kind::Int64,
    Kind::Half,
    Kind::Float,
    Kind::Double,
    Kind::Bool,
    Kind::BFloat16,
];

/// Tensors as bytes: for each, its kind's code, its dimensions and its
/// data (little-endian, as the machine's).
fn encode(tensors: &[Tensor]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    for t in tensors {
        let Some(code) = KINDS.iter().position(|k| *k == t.kind()) else {
            bail!(
                "predictions of kind {:?} cannot be gathered across processes",
                t.kind()
            );
        };
        let t = t.to_device(tch::Device::Cpu).contiguous();
        let size = t.size();
        out.push(code as u8);
        out.extend_from_slice(&(size.len() as u64).to_le_bytes());
        for d in &size {
            out.extend_from_slice(&d.to_le_bytes());
        }
        let bytes = t.numel() * t.kind().elt_size_in_bytes();
        let mut data = vec![0u8; bytes];
        t.copy_data_u8(&mut data, t.numel());
        out.extend_from_slice(&(bytes as u64).to_le_bytes());
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// The tensors [`encode`] wrote.
fn decode(bytes: &[u8]) -> Result<Vec<Tensor>> {
    let mut at = 0;
    let mut take = |n: usize| -> Result<std::ops::Range<usize>> {
        if bytes.len() - at < n {
            bail!("a rank's gathered predictions are cut short");
        }
        at += n;
        Ok(at - n..at)
    };
    let word =
        |r: std::ops::Range<usize>| u64::from_le_bytes(bytes[r].try_into().expect("8 bytes"));
    let count = word(take(8)?);
    let mut out = Vec::new();
    for _ in 0..count {
        let code = bytes[take(1)?][0] as usize;
        let kind = *KINDS
            .get(code)
            .ok_or_else(|| anyhow!("a rank's gathered predictions have an unknown kind"))?;
        let dims = word(take(8)?) as usize;
        let size = (0..dims)
            .map(|_| Ok(word(take(8)?) as i64))
            .collect::<Result<Vec<i64>>>()?;
        let n = word(take(8)?) as usize;
        out.push(Tensor::f_from_data_size(&bytes[take(n)?], &size, kind)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_survive_encoding() {
        let a = Tensor::from_slice(&[1.5f32, -2.0, 3.0, 4.0]).reshape([2, 2]);
        let b = Tensor::from_slice(&[7i64, 8, 9]);
        let back = decode(&encode(&[a.shallow_clone(), b.shallow_clone()]).unwrap()).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back[0].equal(&a) && back[1].equal(&b));
        assert_eq!(back[0].size(), [2, 2]);
        assert!(decode(&encode(&[a]).unwrap()[..20]).is_err());
    }
}
