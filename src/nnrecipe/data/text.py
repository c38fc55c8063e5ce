"""Text as token ids: find the text column, split it into tokens, map tokens to ids.

The vocabulary is fitted on the training split only (a word first seen in the test split
is unknown, as it would be in use) and saved as plain JSON, never pickle.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import DataError

__all__ = ["TEXT_MIN_WORDS", "TEXT_MIN_UNIQUE", "PAD", "UNK", "MIN_MAX_LEN", "MAX_MAX_LEN",
           "find_text_column", "tokenize", "token_counts", "Vocabulary",
           "choose_max_len"]

TEXT_MIN_WORDS = 3.0  # mean words per value; "red", "New York" are categories, not text
TEXT_MIN_UNIQUE = 0.5  # share of distinct values; a repeated label is a category
PAD, UNK = 0, 1  # reserved ids: padding, and any token the vocabulary does not know
MIN_MAX_LEN = 8  # room for a short phrase, and for a convolution kernel to slide
MAX_MAX_LEN = 512  # attention costs grow with length squared; a small model gains little more
BUCKET_CHUNK = 50  # batches per chunk sorted by length: similar lengths, still shuffled
# Words (letters and digits, any script, with inner apostrophes: "don't") and the two
# punctuation marks that carry tone, "!" and "?". Other punctuation is dropped: in a small
# data set it is frequent, says little, and would spend the length budget.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]")


def find_text_column(df: pd.DataFrame, target: str | None = None) -> str | None:
    """The free-text column: a string column (not ``target``) whose values are mostly distinct
    and at least TEXT_MIN_WORDS words long on average; the wordiest such column, or None."""
    best, best_words = None, 0.0
    for col in df.columns:
        s = df[col]
        if col == target or not (pd.api.types.is_object_dtype(s)
                                 or pd.api.types.is_string_dtype(s)):
            continue
        values = s.dropna()
        values = values[values.map(lambda v: isinstance(v, str))]
        if values.empty:
            continue
        words = float(values.str.split().str.len().mean())
        unique = values.nunique() / len(values)
        if unique >= TEXT_MIN_UNIQUE and words >= TEXT_MIN_WORDS and words > best_words:
            best, best_words = str(col), words
    return best


def tokenize(text: Any) -> list[str]:
    """Lower-cased words and numbers, plus "!" and "?"; a missing value has no tokens."""
    if not isinstance(text, str):
        return []
    return _TOKEN.findall(text.lower())


def token_counts(texts: Iterable[Any]) -> np.ndarray:
    """Number of tokens in each text (what ``choose_max_len`` reads)."""
    return np.asarray([len(tokenize(t)) for t in texts], dtype=np.int64)


class Vocabulary:
    """Token <-> id. Id 0 pads, id 1 stands for any unknown token, then the kept tokens from
    most to least frequent (ties alphabetical, so fitting is deterministic)."""

    SPECIALS = ("<pad>", "<unk>")

    def __init__(self, tokens: Sequence[str] = (), min_freq: int = 2, max_size: int = 20000):
        self.min_freq, self.max_size = int(min_freq), int(max_size)
        self._set_tokens(tokens)

    def _set_tokens(self, tokens: Sequence[str]) -> None:
        self.tokens = list(self.SPECIALS) + [t for t in tokens if t not in self.SPECIALS]
        self.ids = {t: i for i, t in enumerate(self.tokens)}

    def fit(self, texts: Iterable[Any], min_freq: int = 2, max_size: int = 20000) -> Vocabulary:
        """Keep tokens seen at least ``min_freq`` times, at most ``max_size`` ids in all
        (the two reserved ones included). Returns self."""
        if min_freq < 1 or max_size < 3:
            raise DataError(f"vocabulary needs min_freq >= 1 and max_size >= 3, "
                            f"got min_freq={min_freq}, max_size={max_size}")
        counts = Counter(tok for t in texts for tok in tokenize(t))
        kept = sorted((t for t, n in counts.items() if n >= min_freq),
                      key=lambda t: (-counts[t], t))
        if not kept:
            raise DataError(f"no token appears {min_freq}+ times in the training text "
                            f"({len(counts)} distinct tokens); lower min_freq or give more text")
        self.min_freq, self.max_size = int(min_freq), int(max_size)
        self._set_tokens(kept[:max_size - len(self.SPECIALS)])
        return self

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, texts: Iterable[Any], max_len: int) -> np.ndarray:
        """int64 (N, L) ids, L = min(max_len, longest text): the first ``max_len`` tokens of
        each text (the opening usually says what a text is about), padded with 0 at the end."""
        seqs = [[self.ids.get(tok, UNK) for tok in tokenize(t)][:max_len] for t in texts]
        width = max(1, min(max_len, max((len(s) for s in seqs), default=0)))
        out = np.full((len(seqs), width), PAD, dtype=np.int64)
        for i, s in enumerate(seqs):
            out[i, :len(s)] = s
        return out

    def unknown_share(self, texts: Iterable[Any]) -> float:
        """Share of tokens in ``texts`` the vocabulary does not know (0 for no tokens)."""
        toks = [tok for t in texts for tok in tokenize(t)]
        return sum(tok not in self.ids for tok in toks) / len(toks) if toks else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "min_freq": self.min_freq, "max_size": self.max_size,
                "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Vocabulary:
        tokens = state.get("tokens") if isinstance(state, dict) else None
        if (not isinstance(tokens, list) or tuple(tokens[:2]) != cls.SPECIALS
                or not all(isinstance(t, str) for t in tokens)
                or len(set(tokens)) != len(tokens)):
            raise DataError("the saved vocabulary is malformed (expected 'tokens': a list of "
                            "distinct strings starting with '<pad>', '<unk>'); refit it")
        return cls(tokens, state.get("min_freq", 2), state.get("max_size", 20000))


def choose_max_len(lengths: Sequence[int]) -> int:
    """The 95th percentile of token counts, within [MIN_MAX_LEN, MAX_MAX_LEN]: nearly every
    text is kept whole, and a few very long ones do not set the padded length of all."""
    if len(lengths) == 0:
        return MIN_MAX_LEN
    p95 = math.ceil(float(np.percentile(np.asarray(lengths, dtype=np.float64), 95)))
    return int(min(MAX_MAX_LEN, max(MIN_MAX_LEN, p95)))


def length_order(lengths: Any, pool_batches: int = 50
                 ) -> Callable[[torch.Generator, int], torch.Tensor]:
    """An epoch order in which each run of ``batch_size`` rows holds texts of similar
    length, so a batch carries little padding (the bucket iterators of torchtext and
    AllenNLP). Each epoch: shuffle; cut into pools of ``pool_batches`` batches; sort each
    pool by length; cut it into batches; shuffle the full batches, the short one last (the
    loop slices at multiples of ``batch_size``)."""
    lengths = torch.as_tensor(np.asarray(lengths), dtype=torch.long)

    def order(gen: torch.Generator, batch_size: int) -> torch.Tensor:
        perm = torch.randperm(len(lengths), generator=gen)
        pool = batch_size * pool_batches
        batches: list[torch.Tensor] = []
        for i in range(0, len(perm), pool):
            chunk = perm[i:i + pool]
            batches += list(chunk[torch.argsort(lengths[chunk], stable=True)].split(batch_size))
        full = [b for b in batches if len(b) == batch_size]
        short = [b for b in batches if len(b) < batch_size]
        shuffled = [full[j] for j in torch.randperm(len(full), generator=gen)]
        return torch.cat(shuffled + short) if batches else perm

    return order
