"""HF 5.24's loss kwargs on a causal LM: a tiny GPT-2 whose forward takes
num_items_in_batch (HF's Trainer passes it, as to any model that accepts
loss kwargs), traced with that argument, named GPT2LMHeadModel (case
"kwargs": counted unshifted) or LlamaForCausalLM ("kwargs_causal": counted
over labels[..., 1:]); padded labels (-100) of unequal
counts per row. main(dir, case, flags) writes dir/model.pt, train.parquet,
validation.parquet and hf_log.json (HF's log_history); with flags
{"hf": false}, the files only."""

import json
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn


def tiny_gpt2():
    from transformers import GPT2Config
    from transformers import GPT2LMHeadModel as Hf

    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=2,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=None, eos_token_id=None)
    return Hf(config)


class GPT2LMHeadModel(nn.Module):
    """Named as transformers' class, so that HF's Trainer shifts its labels
    under label smoothing (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES) but counts
    them unshifted (a GPT2LMHeadModel has no loss_type: no key of
    LOSS_MAPPING is in its name); accepts_loss_kwargs, as the model's
    forward has **kwargs."""

    accepts_loss_kwargs = True

    def __init__(self):
        super().__init__()
        self.model = tiny_gpt2()
        self.config = self.model.config

    def forward(self, input_ids, labels=None, num_items_in_batch=None):
        return self.model(input_ids=input_ids, labels=labels, num_items_in_batch=num_items_in_batch,
                          return_dict=False, use_cache=False)


class LlamaForCausalLM(GPT2LMHeadModel):
    """The same model named as a class whose loss_type is ForCausalLM (as
    PreTrainedModel sets it from the name), so that HF counts
    labels[..., 1:] for num_items_in_batch."""

    def __init__(self):
        super().__init__()
        self.loss_type = "ForCausalLM"


class GPT2LMHeadModelNoKwargs(nn.Module):
    """A causal LM (by its class name, given below) without loss kwargs:
    label smoothing shifts, each batch is its own mean."""

    accepts_loss_kwargs = False

    def __init__(self):
        super().__init__()
        self.model = tiny_gpt2()
        self.config = self.model.config

    def forward(self, input_ids, labels=None):
        return self.model(input_ids=input_ids, labels=labels, return_dict=False, use_cache=False)


# transformers' class name, which HF's Trainer and trainbox read.
GPT2LMHeadModelNoKwargs.__name__ = "GPT2LMHeadModel"
GPT2LMHeadModelNoKwargs.__qualname__ = "GPT2LMHeadModel"


def data(n):
    """Token ids; labels the ids with the last 0 to 12 positions -100."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 64, (n, 16), generator=g)
    labels = ids.clone()
    for i in range(n):
        pad = (i * 7) % 13
        if pad:
            labels[i, 16 - pad:] = -100
    return {"input_ids": ids.tolist(), "labels": labels.tolist()}


def rows(path):
    table = pq.read_table(path).to_pydict()
    n = len(next(iter(table.values())))
    return [{k: torch.tensor(v[i]).long() for k, v in table.items()} for i in range(n)]


def main(out, case, flags_path):
    from transformers import Trainer, TrainingArguments

    flags = json.load(open(flags_path))
    n_train, n_eval = flags.pop("n_train"), flags.pop("n_eval")
    columns = data(n_train + n_eval)
    for name, part in [("train", slice(0, n_train)), ("validation", slice(n_train, None))]:
        table = pa.table({k: pa.array(v[part]) for k, v in columns.items()})
        pq.write_table(table, f"{out}/{name}.parquet")

    torch.manual_seed(0)
    first = rows(f"{out}/train.parquet")[:2]
    ids = torch.stack([r["input_ids"] for r in first])
    labels = torch.stack([r["labels"] for r in first])
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    if case in ("kwargs", "kwargs_causal"):
        model = GPT2LMHeadModel() if case == "kwargs" else LlamaForCausalLM()
        count = labels.ne(-100).sum() / 1
        torch.jit.trace(model, (ids, labels, count)).save(f"{out}/model.pt")
    else:
        model = GPT2LMHeadModelNoKwargs()
        torch.jit.trace(model, (ids, labels)).save(f"{out}/model.pt")

    if not flags.pop("hf", True):
        return
    args = TrainingArguments(output_dir=f"{out}/hf", use_cpu=True, report_to=[], disable_tqdm=True,
                             save_strategy="no", **flags)
    trainer = Trainer(model=model, args=args, train_dataset=rows(f"{out}/train.parquet"),
                      eval_dataset=rows(f"{out}/validation.parquet"))
    assert trainer.model_accepts_loss_kwargs == (case != "no_kwargs")
    assert trainer._loss_shifts_labels == (case == "kwargs_causal")
    trainer.train()
    log = {"log_history": trainer.state.log_history, "decay": [], "params": []}
    json.dump(log, open(f"{out}/hf_log.json", "w"), indent=1)
