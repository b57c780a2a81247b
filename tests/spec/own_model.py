"""Fixtures and checks of tests/spec/own_model.rs: small TorchScript models
(scripted and traced, HF's three output forms), datasets in each format
trainbox reads, and the Python side of every check (eval loss, metrics and
predictions recomputed with torch from the saved model.pt).

`python own_model.py export DIR` writes the fixtures; each test calls one
`check_*` function, which returns what the Rust side compares. The samples
are also kept in DIR/canon.json so that Python computes over exactly what
was written."""

import csv
import datetime
import json
import math
import os
import sys
from typing import Dict, Optional

import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

LABEL_PAD = -100
NAMES = {
    "regressor": ["x", "labels"],
    "classifier": ["features", "labels"],
    "tagger": ["input_ids", "attention_mask", "labels"],
    "scalar": ["x", "labels"],
}


class Regressor(torch.nn.Module):
    """Scripted; a dict with loss and logits [B, 1]; dropout, so that train
    and eval mode give other losses."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1)
        )

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.mse_loss(logits.squeeze(-1), labels)
        return out


class Classifier(torch.nn.Module):
    """Traced; (loss, logits) as HF's return_dict=False."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))

    def forward(self, features, labels):
        logits = self.net(features)
        return F.cross_entropy(logits, labels), logits


class Tagger(torch.nn.Module):
    """Scripted token tagger; the attention mask matters (a masked mean of
    the sequence is part of every token's features); labels -100 ignored."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(20, 8)
        self.head = torch.nn.Linear(16, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor):
        h = self.embed(input_ids)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        ctx = (h * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1.0)
        logits = self.head(torch.cat([h, ctx.expand_as(h)], -1))
        loss = F.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1), ignore_index=-100)
        return loss, logits


class Scalar(torch.nn.Module):
    """Scripted; returns the loss tensor only."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return ((self.lin(x).squeeze(-1) - labels) ** 2).mean()


class PerSample(torch.nn.Module):
    """One loss per sample: not a scalar."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (self.lin(x).squeeze(-1) - labels) ** 2


class FixedBatch(torch.nn.Module):
    """Traced with a batch of 8, which `view` bakes into the graph."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def forward(self, x, labels):
        return ((self.lin(x.view(8, 4)).squeeze(-1) - labels) ** 2).mean()


# ---------------------------------------------------------------- datasets

def regression(n, g):
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64) + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    return {"x": x.tolist(), "labels": y.tolist()}


def classification(n, g):
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    w = torch.tensor([[1.0, -1.0, 0.0], [0.5, 1.0, -1.5], [-1.0, 0.0, 1.0], [0.0, 0.5, 0.5]], dtype=torch.float64)
    labels = torch.argmax(x @ w + 0.7 * torch.randn(n, 3, generator=g, dtype=torch.float64), 1)
    return {"features": x.tolist(), "labels": labels.tolist()}


def tagging(n, g, lengths=None):
    ids, labels = [], []
    for i in range(n):
        length = lengths[i] if lengths else int(torch.randint(1, 8, (1,), generator=g))
        seq = torch.randint(1, 20, (length,), generator=g).tolist()
        ids.append(seq)
        labels.append([t % 3 for t in seq])
    return {"input_ids": ids, "labels": labels}


def write_parquet(path, cols, row_group_size=16):
    """As datasets.Dataset.to_parquet: pyarrow, snappy; lists as list<...>."""
    table = pa.table({k: pa.array(v) for k, v in cols.items()})
    pq.write_table(table, path, row_group_size=row_group_size, compression="snappy")


def write_safetensors(path, cols, dtypes):
    tensors = {}
    for k, v in cols.items():
        if isinstance(v[0], list) and len({len(r) for r in v}) > 1:
            tensors[k] = torch.tensor([x for r in v for x in r], dtype=dtypes[k])
            tensors[k + ".offsets"] = torch.tensor([0] + [len(r) for r in v]).cumsum(0)
        else:
            tensors[k] = torch.tensor(v, dtype=dtypes[k])
    save_file(tensors, path)


def write_jsonl(path, cols):
    with open(path, "w") as f:
        for i in range(len(next(iter(cols.values())))):
            f.write(json.dumps({k: v[i] for k, v in cols.items()}) + "\n")


def write_csv(path, cols):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(cols))
        for i in range(len(next(iter(cols.values())))):
            w.writerow([json.dumps(v[i]) if isinstance(v[i], list) else repr(v[i]) for v in cols.values()])


def export(out):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    canon = {
        "reg_train": regression(48, g), "reg_val": regression(20, g), "reg_test": regression(12, g),
        "cls_train": classification(48, g), "cls_val": classification(24, g),
        "tag_train": tagging(48, g), "tag_val": tagging(24, g), "tag_test": tagging(12, g, [2, 3, 1, 4, 2, 3, 4, 1, 6, 2, 5, 3]),
    }
    with open(f"{out}/canon.json", "w") as f:
        json.dump(canon, f)
    f32, i64 = torch.float32, torch.int64
    write_parquet(f"{out}/reg_train.parquet", canon["reg_train"])
    write_jsonl(f"{out}/reg_val.jsonl", canon["reg_val"])
    write_csv(f"{out}/reg_test.csv", canon["reg_test"])
    write_safetensors(f"{out}/cls_train.safetensors", canon["cls_train"], {"features": f32, "labels": i64})
    write_parquet(f"{out}/cls_val.parquet", canon["cls_val"], row_group_size=10)
    write_parquet(f"{out}/tag_train.parquet", canon["tag_train"])
    write_safetensors(f"{out}/tag_val.safetensors", canon["tag_val"], {"input_ids": i64, "labels": i64})
    write_jsonl(f"{out}/tag_test.jsonl", canon["tag_test"])

    # Other column names: bound by --model_input_names and --label_names,
    # or HF's renaming of `label` (and an unused column).
    for split in ("train", "val"):
        tag, cls = canon[f"tag_{split}"], canon[f"cls_{split}"]
        write_parquet(f"{out}/tag_renamed_{split}.parquet", {"tokens": tag["input_ids"], "tags": tag["labels"]})
        write_parquet(f"{out}/cls_label_{split}.parquet", {
            "idx": list(range(len(cls["labels"]))), "features": cls["features"], "label": cls["labels"]})

    torch.jit.script(Regressor()).save(f"{out}/regressor.pt")
    x = torch.tensor(canon["cls_train"]["features"][:8], dtype=f32)
    torch.jit.trace(Classifier(), (x, torch.tensor(canon["cls_train"]["labels"][:8]))).save(f"{out}/classifier.pt")
    torch.jit.script(Tagger()).save(f"{out}/tagger.pt")
    torch.jit.script(Scalar()).save(f"{out}/scalar.pt")

    # Bad input.
    torch.jit.script(PerSample()).save(f"{out}/per_sample.pt")
    torch.save(Regressor().state_dict(), f"{out}/state_dict.pt")
    with open(f"{out}/notes.pt", "w") as f:
        f.write("not a model\n")
    reg = canon["reg_train"]
    with open(f"{out}/reg_train.parquet", "rb") as f:
        whole = f.read()
    with open(f"{out}/truncated.parquet", "wb") as f:
        f.write(whole[: len(whole) * 2 // 3])
    write_parquet(f"{out}/no_x.parquet", {"features": reg["x"], "labels": reg["labels"]})
    empty = pa.table({"x": pa.array([], pa.list_(pa.float64())), "labels": pa.array([], pa.float64())})
    pq.write_table(empty, f"{out}/empty.parquet")
    write_csv(f"{out}/strings.csv", {"x": ["a b c d"] * 8, "labels": [1.0] * 8})
    save_file({"x": torch.randn(48, 4), "labels": torch.randn(40)}, f"{out}/mismatched.safetensors")
    save_file({"input_ids": torch.rand(16, 5) * 19, "attention_mask": torch.ones(16, 5, dtype=i64),
               "labels": torch.zeros(16, 5, dtype=i64)},
              f"{out}/float_ids.safetensors")
    write_parquet(f"{out}/wide.parquet", {"x": [r + [0.0] for r in reg["x"]], "labels": reg["labels"]})
    # Columns forward does not take, of types trainbox does not batch: ignored, never decoded.
    n = len(reg["x"])
    extra = pa.table({"x": pa.array(reg["x"]), "labels": pa.array(reg["labels"]),
                      "tokens": pa.array([["a", "b"]] * n),
                      "meta": pa.array([{"id": i, "src": "web"} for i in range(n)]),
                      "stamp": pa.array([datetime.datetime(2026, 1, 1)] * n)})
    pq.write_table(extra, f"{out}/extra_columns.parquet")
    write_parquet(f"{out}/string_labels.parquet", {"x": reg["x"], "labels": [str(v) for v in reg["labels"]]})
    # A trace that bakes the batch size in: the short last batch cannot pass.
    torch.jit.trace(FixedBatch(), (torch.zeros(8, 4), torch.zeros(8))).save(f"{out}/fixed_batch.pt")


# ------------------------------------------------------------------ checks

def canon(out, name):
    with open(f"{out}/canon.json") as f:
        return json.load(f)[name]


def collate(cols, idx, takes_mask, label_names=("labels",), pad_token_id=0):
    """A batch as trainbox and HF's DataCollatorWithPadding make it: ragged
    lists padded on the right (labels with -100), floats as float32."""
    batch = {}
    for k, v in cols.items():
        rows = [v[i] for i in idx]
        if isinstance(rows[0], list) and isinstance(rows[0][0] if rows[0] else 0, int):
            width = max(len(r) for r in rows)
            pad = LABEL_PAD if k in label_names else pad_token_id
            batch[k] = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.int64)
            if k == "input_ids" and takes_mask:
                batch["attention_mask"] = torch.tensor(
                    [[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=torch.int64)
        elif isinstance(rows[0], float) or isinstance(rows[0], list):
            batch[k] = torch.tensor(rows, dtype=torch.float64).float()
        else:
            batch[k] = torch.tensor(rows, dtype=torch.int64)
    return batch


def split(output):
    if isinstance(output, torch.Tensor):
        return output, None
    if isinstance(output, dict):
        return output["loss"], output.get("logits")
    return output[0], output[1] if len(output) > 1 else None


def evaluate(model_path, kind, cols, n=None, batch_size=8):
    """HF's evaluation_loop over `cols` with model.pt in eval mode: the loss
    averaged over samples, accuracy over non-ignored labels, mse and mae
    over all, and the logits of each batch."""
    model = torch.jit.load(model_path)
    model.eval()
    names = NAMES[kind]
    n = n if n is not None else len(next(iter(cols.values())))
    loss_sum, right, counted, se, ae, m = 0.0, 0, 0, 0.0, 0.0, 0
    logits_per_batch, labels_per_batch = [], []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            idx = list(range(start, min(n, start + batch_size)))
            batch = collate(cols, idx, "attention_mask" in names)
            loss, logits = split(model(*[batch[a] for a in names]))
            loss_sum += loss.item() * len(idx)
            labels = batch["labels"]
            if logits is not None:
                logits_per_batch.append(logits)
                labels_per_batch.append(labels)
                if labels.dtype == torch.int64:
                    keep = labels != LABEL_PAD
                    right += int((logits.argmax(-1) == labels)[keep].sum())
                    counted += int(keep.sum())
                else:
                    d = logits.squeeze(-1).double() - labels.double()
                    se += float((d ** 2).sum())
                    ae += float(d.abs().sum())
                    m += d.numel()
    loss = loss_sum / n
    metrics = {"loss": loss, "perplexity": math.exp(loss)}
    if counted:
        metrics["accuracy"] = right / counted
    if m:
        metrics["mse"], metrics["mae"] = se / m, ae / m
    return metrics, logits_per_batch, labels_per_batch


def nested_concat(parts):
    """HF's nested_concat: batches concatenated, the shorter ones padded
    with -100 along the second dimension."""
    if parts[0].dim() < 2:
        return torch.cat(parts)
    width = max(p.shape[1] for p in parts)
    padded = []
    for p in parts:
        shape = list(p.shape)
        shape[1] = width
        q = torch.full(shape, LABEL_PAD, dtype=p.dtype)
        q[:, : p.shape[1]] = p
        padded.append(q)
    return torch.cat(padded)


def is_hf_json(path):
    """The file is exactly json.dumps(..., indent=4, sort_keys=True)."""
    with open(path) as f:
        text = f.read()
    return text == json.dumps(json.loads(text), indent=4, sort_keys=True)


def same_weights(pt_path, st_path):
    """model.safetensors holds model.pt's parameters under their names."""
    state = dict(torch.jit.load(pt_path).named_parameters())
    stored = load_file(st_path)
    return sorted(stored) == sorted(state) and all(torch.equal(stored[k], state[k].detach()) for k in state)


# ------------------------------------------- the checks, one per test of own_model.rs

def check_regression(fx, out):
    """The regressor's output_dir: metrics, predictions, weights, results files."""
    val, test = canon(fx, "reg_val"), canon(fx, "reg_test")
    final, _, _ = evaluate(f"{out}/model.pt", "regressor", val)
    initial, _, _ = evaluate(f"{fx}/regressor.pt", "regressor", val)
    predict, logits, labels = evaluate(f"{out}/model.pt", "regressor", test)
    p = load_file(f"{out}/predictions.safetensors")
    model = torch.jit.load(f"{out}/model.pt")
    ckpts = sorted(d for d in os.listdir(out) if d.startswith("checkpoint-"))
    results = {}
    for split in ["train", "eval", "predict", "all"]:
        path = f"{out}/{split}_results.json"
        with open(path) as f:
            results[split] = {"hf_json": is_hf_json(path), "metrics": json.load(f)}
    return {
        "final": final, "initial": initial["loss"], "predict": predict,
        "shapes": {k: list(v.shape) for k, v in p.items()},
        "dtypes": {k: str(v.dtype) for k, v in p.items()},
        "pred_diff": (p["predictions"] - nested_concat(logits)).abs().max().item(),
        "label_ids_equal": torch.equal(p["label_ids"], nested_concat(labels)),
        "names": [n for n, _ in model.named_parameters()],
        "stored": sorted(load_file(f"{out}/model.safetensors")),
        "same": same_weights(f"{out}/model.pt", f"{out}/model.safetensors"),
        "checkpoints": {c: same_weights(f"{out}/{c}/model.pt", f"{out}/{c}/model.safetensors") for c in ckpts},
        "stats": {n: {"norm": t.norm().item(), "mean": t.mean().item(), "min": t.min().item(),
                      "max": t.max().item()} for n, t in model.named_parameters()},
        "results": results,
    }


def check_classifier(fx, out):
    """Each checkpoint's metrics from its model.pt; which one the final model is."""
    val = canon(fx, "cls_val")
    ckpts = {}
    for d in os.listdir(out):
        if d.startswith("checkpoint-"):
            m, _, _ = evaluate(f"{out}/{d}/model.pt", "classifier", val)
            m["final_is_it"] = same_weights(f"{out}/model.pt", f"{out}/{d}/model.safetensors")
            ckpts[d.split("-")[1]] = m
    return {"checkpoints": ckpts, "same": same_weights(f"{out}/model.pt", f"{out}/model.safetensors")}


def check_classifier_eval(fx, out, checkpoint, final):
    """--do_eval of `checkpoint` and --do_predict of `final` into `out`."""
    val = canon(fx, "cls_val")
    ckpt, _, _ = evaluate(checkpoint, "classifier", val)
    final, logits, labels = evaluate(final, "classifier", val)
    p = load_file(f"{out}/predictions.safetensors")
    return {
        "checkpoint": ckpt, "final": final,
        "shapes": {k: list(v.shape) for k, v in p.items()},
        "pred_diff": (p["predictions"] - nested_concat(logits)).abs().max().item(),
        "label_ids_equal": torch.equal(p["label_ids"], nested_concat(labels)),
        "hf_json": all(is_hf_json(f"{out}/{s}_results.json") for s in ["eval", "predict", "all"]),
    }


def check_eval(fx, out, kind, dataset, n):
    """The metrics of out/model.pt on the first `n` samples of `dataset`."""
    return evaluate(f"{out}/model.pt", kind, canon(fx, dataset), n=int(n))[0]


def check_tagger(fx, out):
    """The tagger's metrics over the first 20 validation samples, its predictions."""
    val, test = canon(fx, "tag_val"), canon(fx, "tag_test")
    final, logits, labels = evaluate(f"{out}/model.pt", "tagger", val, n=20)
    # The mean of per-batch accuracies, which an exact aggregate is not.
    batch_means = []
    for lg, lb in zip(logits, labels):
        keep = lb != LABEL_PAD
        batch_means.append(float((lg.argmax(-1) == lb)[keep].float().mean()))
    predict, logits, labels = evaluate(f"{out}/model.pt", "tagger", test)
    p = load_file(f"{out}/predictions.safetensors")
    want = nested_concat(logits)
    return {
        "final": final, "mean_of_batches": sum(batch_means) / len(batch_means),
        "predict": predict, "shapes": {k: list(v.shape) for k, v in p.items()},
        "want_shape": list(want.shape),
        "pred_diff": (p["predictions"] - want).abs().max().item(),
        "label_ids_equal": torch.equal(p["label_ids"], nested_concat(labels)),
    }


if __name__ == "__main__" and sys.argv[1] == "export":
    export(sys.argv[2])
