"""Small seeded data sets for the modality tests: labelled short texts and toy volumes."""

from __future__ import annotations

import numpy as np
import pandas as pd

GOOD = ["great", "excellent", "lovely", "superb", "wonderful", "enjoyable", "brilliant", "fine"]
BAD = ["awful", "boring", "terrible", "dull", "poor", "weak", "horrible", "bland"]
NEUTRAL = ["the", "film", "plot", "was", "and", "actors", "music", "story", "really", "quite",
           "ending", "scenes", "a", "with", "very", "long", "director", "cast", "its", "at"]


def reviews(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Short 'reviews': neutral words with a few sentiment words; the label is the side with
    more sentiment words (a 'not' before one flips it, so word order matters a little)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = rng.integers(2)
        words = list(rng.choice(NEUTRAL, size=rng.integers(6, 14)))
        strong, weak = (GOOD, BAD) if label else (BAD, GOOD)
        for w in rng.choice(strong, size=rng.integers(2, 4)):
            words.insert(rng.integers(len(words) + 1), w)
        if rng.random() < 0.5:
            words.insert(rng.integers(len(words) + 1), rng.choice(weak))
        rows.append({"review": " ".join(words), "sentiment": "positive" if label else "negative"})
    return pd.DataFrame(rows)


def volumes(n: int = 120, side: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, D, H, W) volumes: class 1 holds a bright cube somewhere, class 0 a flat plate."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, size=(n, side, side, side)).astype(np.float32)
    y = rng.integers(2, size=n)
    for i in range(n):
        a, b, c = rng.integers(0, side - 3, size=3)
        if y[i]:
            x[i, a:a + 3, b:b + 3, c:c + 3] += 2
        else:
            x[i, a, b:b + 3, :] += 2
    return x, y


def sequences(n: int = 300, length: int = 60, seed: int = 0) -> pd.DataFrame:
    """One labelled sequence per row (steps t0..t59): a bump, a dip or a step, somewhere,
    over a random walk; the class is the shape, not where it is."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    rows, labels = [], []
    for _ in range(n):
        kind = rng.integers(3)
        at = rng.integers(10, length - 10)
        x = np.cumsum(rng.normal(0, 0.15, length)) + rng.normal(0, 0.3, length)
        if kind == 0:
            x += 2.5 * np.exp(-0.5 * ((t - at) / 3) ** 2)
        elif kind == 1:
            x -= 2.5 * np.exp(-0.5 * ((t - at) / 3) ** 2)
        else:
            x += 2.0 * (t >= at)
        rows.append(x)
        labels.append(["bump", "dip", "step"][kind])
    df = pd.DataFrame(np.asarray(rows), columns=[f"t{i}" for i in range(length)])
    df["shape"] = labels
    return df
