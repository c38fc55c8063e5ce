"""Text: a table with a free-text column and a label column (``--modality text``). A
vocabulary from the training texts (ids 0 = padding, 1 = unknown), texts cut at the 95th
percentile of their lengths and batched by length, read by a bidirectional GRU over word
embeddings (a transformer encoder from 20,000 texts)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data.load import load_table
from ..data.profile import infer_task
from ..data.text import Vocabulary, choose_max_len, find_text_column, length_order, tokenize
from ..errors import DataError
from ..plan.network_rules import RNN_RULES, const, dropout_rule
from ..plan.rules import Ctx, Decision
from ..plan.schema import Plan
from ..tune.search import Dim, rnn_dims
from .samples import ClassModality, SampleEncoder, Samples, SampleSplits

__all__ = ["TextEncoder", "TextModality"]

LARGE_TEXT = 20_000  # texts from which a transformer beats a recurrent network


class TextEncoder(SampleEncoder):
    """Token ids from the training texts' vocabulary, cut or padded to ``max_len``."""

    @property
    def vocab_size(self) -> int | None:
        return self.state["vocab_size"]

    @property
    def input_shape(self) -> list[int]:
        return [self.state["max_len"]]

    def encode(self, data: Samples, pos: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        s = self.state
        ids = Vocabulary.from_dict(s["vocab"]).encode(list(data.x[pos]), s["max_len"])
        return torch.from_numpy(ids), data.y[pos]


def arch_rule(ctx: Ctx) -> Decision:
    if ctx.n_train >= LARGE_TEXT:
        return Decision("transformer", f"{ctx.n_train} texts: enough for a small transformer "
                        "encoder", "model.arch_by_modality")
    return Decision("gru", f"{ctx.n_train} texts (< {LARGE_TEXT:,}): a GRU over word "
                    "embeddings; transformers need more data (Vaswani et al. 2017 trained on "
                    "millions)", "model.arch_by_modality")


def max_len_rule(ctx: Ctx) -> Decision:
    n = ctx.profile.inputs["max_len"]
    return Decision(n, f"{n} tokens: the 95th percentile of the texts' lengths (longer texts "
                    "are cut)", "text.max_len")


def embedding_rule(ctx: Ctx) -> Decision:
    v = ctx.profile.inputs.get("vocab_size", 0)
    d = 32 if v < 5000 else 64
    return Decision(d, f"{d}-dimensional word embeddings for a vocabulary of {v:,} words",
                    "model.embedding_dim")


def _column(ctx: Ctx) -> str:
    return f"text: column '{ctx.profile.inputs.get('text_column')}' holds free text"


class TextModality(ClassModality):
    name = "text"
    encoder = TextEncoder
    encoder_keys = ("text.max_len", "text.min_freq")
    own_rules = (
        ("data.modality", lambda ctx: Decision("text", _column(ctx), "data.modality"), True),
        ("text.max_len", max_len_rule, False),
        ("text.min_freq", const(2, "a word seen once gets the 'unknown' id: it cannot be "
                                "learned from one example", "text.min_freq"), False),
        ("text.batching", const("by_length", "each batch holds texts of similar length, in "
                                "random batch order: little padding to read or mask",
                                "text.bucket_by_length"), True),
        ("model.arch", arch_rule, False),
        ("model.embedding_dim", embedding_rule, False),
        *RNN_RULES,
        ("model.bidirectional", const(True, "read the text both ways: a word's meaning "
                                      "depends on what follows too", "model.bidirectional"),
         False),
        ("model.heads", const(4, "4 attention heads (transformer only)", "model.heads"), False),
        ("model.dropout", dropout_rule, False),
    )


    def search_space(self, plan: Plan) -> list[Dim]:
        return rnn_dims(plan)

    def load(self, source: Any, target: str | None, task: str, *, like: Samples | None = None,
             min_classes: int = 2) -> Samples:
        df = load_table(source)
        if target is None or target not in df.columns:
            raise DataError(f"give --target, the label column (columns: "
                            f"{', '.join(map(str, df.columns))})")
        df = df[df[target].notna()]
        column = find_text_column(df, target)
        if column is None:
            raise DataError("no free-text column found (strings of several words, mostly "
                            "unique); for a table of features leave out --modality")
        task, why = infer_task(df[target])
        if task == "regression":
            raise DataError(f"text regression is not supported; '{target}' must hold classes")
        texts = df[column].fillna("").astype(str).tolist()
        codes, classes = pd.factorize(df[target].astype(str), sort=True)
        lengths = [len(tokenize(t)) for t in texts]
        vocab = Vocabulary().fit(texts, min_freq=2)
        info = {"text_column": column, "max_len": choose_max_len(lengths),
                "vocab_size": len(vocab), "mean_tokens": float(np.mean(lengths))}
        return Samples("text", np.asarray(texts, dtype=object), codes.astype(np.int64),
                       list(classes), [f"row {i}" for i in df.index], target, task, why, info)

    def read_for_run(self, source: Any, state: dict[str, Any], labelled: bool) -> Samples:
        df = load_table(source)
        target = state["target"]
        need = [state["text_column"]] + ([target] if labelled else [])
        lacking = [c for c in need if c not in df.columns]
        if lacking:
            raise DataError(f"{source} lacks the column(s) {', '.join(lacking)} the run "
                            f"reads; its columns: {', '.join(map(str, df.columns))}")
        if labelled:
            df = df[df[target].notna()]
        codes, classes = (pd.factorize(df[target].astype(str), sort=True) if labelled
                          else (np.zeros(len(df), dtype=np.int64), [""]))
        return Samples("text", df[state["text_column"]].fillna("").astype(str).to_numpy(object),
                       np.asarray(codes, dtype=np.int64), list(classes),
                       [f"row {i}" for i in df.index], target, state["task"], "", {})

    def like(self, x: np.ndarray, ref: np.ndarray, where: str) -> np.ndarray:
        return x  # texts of any length

    def duplicates(self, data: Samples) -> int:
        return len(data.x) - len({str(v) for v in data.x})

    def fit_features(self, data: Samples, train: np.ndarray, plan: Plan) -> TextEncoder:
        vocab = Vocabulary().fit(list(data.x[train]), min_freq=plan["text.min_freq"])
        state = SampleEncoder.base_state(data)
        state.update(vocab=vocab.to_dict(), vocab_size=len(vocab), max_len=plan["text.max_len"],
                     text_column=data.info["text_column"])
        return TextEncoder(state)

    def order(self, data: Samples, splits: SampleSplits, plan: Plan) -> Any:
        """Batches of similar length carry little padding."""
        lengths = [min(len(tokenize(t)), plan["text.max_len"]) for t in data.x[splits.train]]
        return length_order(lengths)

    def worst_extra(self, data: Samples, pos: int) -> dict[str, Any]:
        return {"text": str(data.x[pos])[:300]}

    def describe_inputs(self, profile: Any) -> str:
        column = (profile.inputs or {}).get("text_column")
        return f"the text in column '{column}'" if column else super().describe_inputs(profile)
