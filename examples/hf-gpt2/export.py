"""Export a tiny GPT-2 for `trainbox train --model`, with a byte-level dataset.

    python export.py OUT_DIR [--n_train 256] [--n_eval 32] [--seq_len 64] [--seed 0]

writes OUT_DIR/model.pt (a traced TorchScript module whose forward takes
`input_ids, labels, num_items_in_batch` and returns `(loss, logits)`, as HF's
`return_dict=False`; the count makes gradient accumulation HF's: each update
is the mean over all its tokens),
OUT_DIR/train.parquet and OUT_DIR/validation.parquet (`input_ids` and `labels`
list<int64> columns, snappy, as `datasets.Dataset.to_parquet` writes them).
Nothing is downloaded: the model is a randomly initialised `GPT2Config`, the
text is English made up here, tokens are its UTF-8 bytes.
"""

import argparse
import json
import random
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
import transformers
from transformers import GPT2Config
from transformers import GPT2LMHeadModel as HfGPT2LMHeadModel


class GPT2LMHeadModel(torch.nn.Module):
    """HF's contract for trainbox: columns in by name, (loss, logits) out.
    Named as transformers' class, so that trainbox reads it as HF's Trainer
    does: label smoothing shifts (a causal LM class), and num_items_in_batch
    counts all the labels (GPT-2's class name has no loss type, so HF 5.24
    counts them unshifted).
    `num_items_in_batch` (HF's loss kwarg): the labels of the whole update,
    by which GPT-2 divides its summed loss."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, labels, num_items_in_batch):
        loss, logits = self.model(
            input_ids=input_ids, labels=labels, num_items_in_batch=num_items_in_batch,
            return_dict=False, use_cache=False,
        )[:2]
        return loss, logits


def count(labels):
    """HF's num_items_in_batch of one batch: a 0-dim float32 tensor."""
    return labels.ne(-100).sum() / 1


PEOPLE = ["the old fisherman", "a young teacher", "my neighbour", "the baker", "her brother",
          "the captain", "a tired student", "the doctor", "our guide", "the farmer"]
VERBS = ["walked to", "looked at", "painted", "cleaned", "sold", "visited", "found", "carried"]
THINGS = ["the harbour", "a small boat", "the red door", "the market", "an old map",
          "the garden", "a basket of apples", "the bridge", "the station", "a wooden chair"]
WHEN = ["at dawn", "in the evening", "after lunch", "on Sunday", "before the rain", "every morning"]
THEN = ["Then {p} went home.", "It was quiet.", "Nobody said a word.", "The sky was grey.",
        "{P} smiled.", "The wind was cold.", "Everyone was happy."]


def sentence(rng):
    """One made-up English sentence."""
    p = rng.choice(PEOPLE)
    if rng.random() < 0.25:
        s = rng.choice(THEN).format(p=p, P=p[0].upper() + p[1:])
        return s
    s = f"{p} {rng.choice(VERBS)} {rng.choice(THINGS)} {rng.choice(WHEN)}."
    return s[0].upper() + s[1:]


def chunks(rng, n, seq_len):
    """`n` blocks of `seq_len` bytes of running text, as HF's run_clm.py
    `group_texts` cuts a tokenized corpus."""
    stream = bytearray()
    while len(stream) < n * seq_len:
        stream += (" ".join(sentence(rng) for _ in range(rng.randint(3, 6))) + "\n").encode()
    return [list(stream[i * seq_len:(i + 1) * seq_len]) for i in range(n)]


def write_parquet(path, rows):
    """`input_ids` and `labels` (the same: the model shifts them) as list<int64>."""
    ids = pa.array(rows, type=pa.list_(pa.int64()))
    table = pa.table({"input_ids": ids, "labels": ids})
    feature = {"feature": {"dtype": "int64", "_type": "Value"}, "_type": "List"}
    meta = {"info": {"features": {"input_ids": feature, "labels": feature}}}
    table = table.replace_schema_metadata({"huggingface": json.dumps(meta)})
    pq.write_table(table, path, compression="snappy", row_group_size=1000)


def check(model, traced, seq_len):
    """The traced module takes another batch size and sequence length than
    it was traced with (trainbox's last batch may be smaller)."""
    x = torch.randint(0, 256, (3, seq_len // 2 + 1))
    with torch.no_grad():
        (loss, logits), (want, _) = traced(x, x, count(x)), model(x, x, count(x))
        # Half the count: the loss of a batch that is half of its update.
        half, _ = traced(x, x, count(x) * 2)
    assert logits.shape == (3, seq_len // 2 + 1, 256), "the trace froze a shape"
    assert torch.allclose(loss, want, atol=1e-5), "the trace froze a shape"
    assert torch.allclose(half * 2, want, atol=1e-5), "the trace froze num_items_in_batch"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--n_train", type=int, default=256)
    ap.add_argument("--n_eval", type=int, default=32)
    ap.add_argument("--seq_len", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    a.out_dir.mkdir(parents=True, exist_ok=True)

    # The tracer warns about Python branches on shapes; none of them change
    # with the batch size or the sequence length here.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    transformers.logging.set_verbosity_error()
    torch.manual_seed(a.seed)
    # Dropout 0: a traced module keeps the train/eval mode it was traced in.
    config = GPT2Config(vocab_size=256, n_positions=max(128, a.seq_len), n_embd=64, n_layer=2,
                        n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(HfGPT2LMHeadModel(config)).eval()
    example = torch.randint(0, 256, (2, a.seq_len))
    traced = torch.jit.trace(model, (example, example, count(example)))
    check(model, traced, a.seq_len)
    traced.save(str(a.out_dir / "model.pt"))

    rng = random.Random(a.seed)
    write_parquet(a.out_dir / "train.parquet", chunks(rng, a.n_train, a.seq_len))
    write_parquet(a.out_dir / "validation.parquet", chunks(rng, a.n_eval, a.seq_len))
    print(f"wrote {a.out_dir}/model.pt, train.parquet ({a.n_train} x {a.seq_len} bytes), "
          f"validation.parquet ({a.n_eval})")


if __name__ == "__main__":
    main()
