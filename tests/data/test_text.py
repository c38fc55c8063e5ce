import json

import numpy as np
import pandas as pd
import pytest

from nnrecipe.data.text import (
    MAX_MAX_LEN,
    MIN_MAX_LEN,
    PAD,
    UNK,
    Vocabulary,
    choose_max_len,
    find_text_column,
    token_counts,
    tokenize,
)
from nnrecipe.errors import DataError


def test_tokenize_keeps_words_numbers_and_tone_marks():
    assert tokenize("Great film!! 10/10, would watch again?") == [
        "great", "film", "!", "!", "10", "10", "would", "watch", "again", "?"]
    assert tokenize("Don't stop: it's CAFÉ time_") == ["don't", "stop", "it's", "café", "time"]
    assert tokenize(None) == [] and tokenize(float("nan")) == []


def test_find_text_column():
    n = 40
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "city": rng.choice(["New York", "Paris"], n),
        "title": [f"item {i}" for i in range(n)],  # distinct but two words
        "review": [f"this was a fine thing number {i}" for i in range(n)],
        "same": ["the very same long sentence here"] * n,  # long but not distinct
        "label": [f"label text that is long {i}" for i in range(n)],
        "x": rng.normal(size=n),
    })
    assert find_text_column(df, target="label") == "review"
    assert find_text_column(df[["city", "title", "x"]], target="x") is None
    df["review"] = df["review"].where(rng.random(n) > 0.2)  # missing values are fine
    assert find_text_column(df, target="label") == "review"


def test_vocabulary_fit_encode_and_round_trip():
    texts = ["the cat sat", "the dog sat", "the cat ran far away", "a bird"]
    vocab = Vocabulary().fit(texts, min_freq=2)
    assert vocab.tokens == ["<pad>", "<unk>", "the", "cat", "sat"]  # by count, then a-z
    assert len(vocab) == 5
    ids = vocab.encode(["the cat", "a dog sat on the cat"], max_len=4)
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, [[2, 3, PAD, PAD], [UNK, UNK, 4, UNK]])
    assert vocab.encode(["cat", "sat"], max_len=10).shape == (2, 1)  # L = longest text
    assert vocab.encode(["", None], max_len=10).shape == (2, 1)
    state = json.loads(json.dumps(vocab.to_dict()))
    again = Vocabulary.from_dict(state)
    assert again.tokens == vocab.tokens and again.min_freq == 2
    np.testing.assert_array_equal(again.encode(texts, 8), vocab.encode(texts, 8))
    assert vocab.unknown_share(["the zebra"]) == 0.5


def test_vocabulary_max_size_counts_the_reserved_ids_and_bad_input_is_refused():
    texts = ["a a a b b c c d d"]
    assert Vocabulary().fit(texts, min_freq=1, max_size=4).tokens == ["<pad>", "<unk>", "a", "b"]
    with pytest.raises(DataError, match="no token appears 2"):
        Vocabulary().fit(["one two three"], min_freq=2)
    with pytest.raises(DataError, match="malformed"):
        Vocabulary.from_dict({"tokens": ["x", "y"]})


def test_choose_max_len():
    assert choose_max_len(np.arange(1, 101)) == 96  # 95th percentile of 1..100 is 95.05
    assert choose_max_len([2, 3, 4]) == MIN_MAX_LEN
    assert choose_max_len([5000] * 10) == MAX_MAX_LEN
    assert choose_max_len([]) == MIN_MAX_LEN
    assert token_counts(["a b c", "", None, "x!"]).tolist() == [3, 0, 0, 2]


def test_length_order_makes_batches_of_similar_length_in_random_order():
    import torch

    from nnrecipe.data.text import length_order

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=1003)
    order = length_order(lengths, pool_batches=10)
    perm = order(torch.Generator().manual_seed(0), 16)
    assert sorted(perm.tolist()) == list(range(1003))  # every row once
    spans = [np.ptp(lengths[perm[i:i + 16].numpy()]) for i in range(0, 1003 - 3, 16)]
    random_spans = [np.ptp(lengths[i:i + 16]) for i in range(0, 1003 - 3, 16)]
    assert np.mean(spans) < 0.25 * np.mean(random_spans)  # far less padding per batch
    firsts = [lengths[perm[i]] for i in range(0, 1000, 16)]
    assert not np.all(np.diff(firsts) >= 0)  # the batches are shuffled, not sorted
    tail = lengths[perm[-(1003 % 16):].numpy()]  # the short batch (11 rows) comes last,
    assert np.all(np.diff(tail) >= 0)               # sorted within its pool like the rest
    again = order(torch.Generator().manual_seed(0), 16)
    assert torch.equal(perm, again)  # the shuffling generator decides everything
