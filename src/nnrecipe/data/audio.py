"""Sound as arrays and log-mel features, in plain numpy and torch (no torchaudio).

``load_wav_folder`` reads ``<folder>/<class>/<clip>.wav`` into float32 waveforms of one
rate and one length; ``log_mel`` turns a batch of them into the (N, mels, frames) image a
small convolution reads. ``synthesize_spoken_digits`` makes a labelled spoken-digit set
with Debian's ``espeak-ng``, for demos and tests that need real speech and no download.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .images import ArraySet, class_folder_files

__all__ = ["AUDIO_EXTENSIONS", "DIGIT_WORDS", "DEFAULT_VOICES", "DEFAULT_RATES",
           "DEFAULT_PITCHES", "read_wav", "load_wav_folder", "mel_filterbank", "hz_to_mel",
           "mel_to_hz", "log_mel", "synthesize_spoken_digits"]

AUDIO_EXTENSIONS = (".wav",)
LOG_FLOOR = 1e-6  # log(0) is -inf; silence maps to log(1e-6) = -13.8 instead
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# espeak-ng voices that sound clearly different (accent, and +f/+m variants change the voice
# quality); speeds in words per minute (espeak's default is 175); pitch 0-99 (default 50).
DEFAULT_VOICES = ("en", "en-us", "en-gb-scotland", "en+f3", "en+m3")
DEFAULT_RATES = (130, 170, 210)
DEFAULT_PITCHES = (35, 65)


# ---- reading ------------------------------------------------------------------------------
def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(rate, mono float32 samples in [-1, 1]) from a PCM (8/16/24/32-bit) or float WAV."""
    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():  # unknown chunks (LIST, cue) are skipped, and say so
            warnings.simplefilter("ignore")
            rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"sound file {path} could not be read as WAV ({why}); "
                        "replace or delete it") from None
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        wave = (data.astype(np.float32) - 128) / 128
    elif data.dtype.kind == "i":  # scipy left-aligns 24-bit samples in int32
        wave = data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    else:
        wave = data.astype(np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if wave.size == 0:
        raise DataError(f"sound file {path} has no samples; replace or delete it")
    return int(rate), wave


def load_wav_folder(path: str | Path, sample_rate: int | None = None,
                    unlabelled: bool = False, length: int | None = None,
                    min_classes: int = 2) -> ArraySet:
    """Read ``path/<class>/<clip>.wav`` into float32 (N, T): mono, at ``sample_rate`` (by
    default the most common rate in the folder), padded or cut to ``length`` samples (by
    default the median length). ``unlabelled``: every WAV file under ``path``."""
    from scipy.signal import resample_poly

    root = Path(path)
    classes, files = class_folder_files(root, AUDIO_EXTENSIONS, "sound", unlabelled,
                                        min_classes)
    clips, rates, y, names = [], [], [], []
    for code, group in enumerate(files):
        for f in group:
            rate, wave = read_wav(f)
            clips.append(wave)
            rates.append(rate)
            y.append(code)
            names.append(f.relative_to(root).as_posix())
    if sample_rate is None:  # the most common rate; on a tie the higher one (loses nothing)
        counts = Counter(rates)
        sample_rate = max(counts, key=lambda r: (counts[r], r))
    if sample_rate <= 0:
        raise DataError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    # scipy's polyphase resampler low-passes before it decimates, so a 44.1 kHz clip brought
    # down to 8 kHz does not alias (plain linear interpolation would fold the highs back).
    for i, rate in enumerate(rates):
        if rate != sample_rate:
            g = math.gcd(rate, sample_rate)
            clips[i] = resample_poly(clips[i], sample_rate // g, rate // g).astype(np.float32)
    # The median length keeps half the clips whole and trims the (usually silent) tails of
    # the rest; the longest would waste compute on padding, and a few very long recordings
    # would set the size of every sample.
    if length is None:
        length = int(np.median([len(c) for c in clips]))
    x = np.zeros((len(clips), length), dtype=np.float32)
    for i, c in enumerate(clips):
        x[i, :min(length, len(c))] = c[:length]
    return ArraySet(x, np.asarray(y, dtype=np.int64), classes, names, spatial_dims=1,
                    sample_rate=int(sample_rate))


# ---- log-mel features -------------------------------------------------------------------------
def hz_to_mel(f):
    """HTK mel scale: 2595 log10(1 + f/700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    """(n_mels, n_fft//2 + 1) triangular filters with centres evenly spaced on the HTK mel
    scale between ``f_min`` and ``f_max`` (default sample_rate/2); each peaks at 1."""
    f_max = sample_rate / 2 if f_max is None else f_max
    return torch.tensor(_filterbank(n_mels, n_fft, sample_rate, float(f_min), float(f_max)))


@functools.lru_cache(maxsize=16)  # log_mel asks for the same bank on every batch
def _filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float,
                f_max: float) -> np.ndarray:
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise DataError(f"mel range must satisfy 0 <= f_min < f_max <= sample_rate/2 "
                        f"({sample_rate / 2:g}), got f_min={f_min}, f_max={f_max}")
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - left) / (centre - left)
    falling = (right - bins) / (right - centre)
    fb = np.maximum(0.0, np.minimum(rising, falling))
    empty = np.flatnonzero(fb.max(axis=1) == 0)
    if empty.size:
        raise DataError(f"{n_mels} mel bands are too many for n_fft={n_fft} at {sample_rate} "
                        f"Hz: {empty.size} band(s) fall between FFT bins; use fewer mels "
                        "or a larger n_fft")
    fb = fb.astype(np.float32)
    fb.flags.writeable = False  # shared by the cache
    return fb


def log_mel(waves: torch.Tensor, sample_rate: int, n_fft: int = 512, hop: int | None = None,
            n_mels: int = 40) -> torch.Tensor:
    """(N, T) waveforms to (N, n_mels, frames) log-mel power: Hann-windowed STFT (centred,
    zero-padded), |X|^2, mel filters, log(. + 1e-6). ``hop`` defaults to n_fft // 4."""
    if waves.dim() != 2:
        raise ValueError(f"waves must be (N, T), got shape {tuple(waves.shape)}")
    hop = n_fft // 4 if hop is None else hop
    waves = waves.to(torch.float32)
    window = torch.hann_window(n_fft, device=waves.device)  # periodic, as for spectra
    spec = torch.stft(waves, n_fft, hop_length=hop, win_length=n_fft, window=window,
                      center=True, pad_mode="constant", return_complex=True)
    power = spec.real.square() + spec.imag.square()  # (N, n_fft//2+1, frames)
    fb = mel_filterbank(n_mels, n_fft, sample_rate).to(waves.device)
    mel = torch.matmul(fb, power)  # (n_mels, F) @ (N, F, frames) -> (N, n_mels, frames)
    return torch.log(mel + LOG_FLOOR)


# ---- a spoken-digit set from espeak-ng ----------------------------------------------------------
def synthesize_spoken_digits(folder: str | Path, digits: Iterable[int] = range(10),
                             voices: Sequence[str] = DEFAULT_VOICES,
                             rates: Sequence[int] = DEFAULT_RATES,
                             pitches: Sequence[int] = DEFAULT_PITCHES, seed: int = 0) -> Path:
    """Write ``folder/<word>/<voice>_s<speed>_p<pitch>.wav`` for every digit word and every
    voice x rate x pitch (5 x 3 x 2 = 30 clips per digit by default). ``seed`` jitters each
    clip's speed, pitch and loudness a little, so no two clips are the same setting."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DataError("espeak-ng is not on PATH; install Debian's espeak-ng "
                        "(apt-get install espeak-ng) to synthesise spoken digits")
    words = []
    for d in digits:
        if not (isinstance(d, (int, np.integer)) and 0 <= d <= 9):
            raise DataError(f"digits must be whole numbers 0-9, got {d!r}")
        words.append(DIGIT_WORDS[int(d)])
    rng = np.random.default_rng(seed)
    root = Path(folder)
    for word in words:
        (root / word).mkdir(parents=True, exist_ok=True)
        for voice in voices:
            for rate in rates:
                for pitch in pitches:
                    speed = int(rate + rng.integers(-10, 11))
                    pitch_j = int(np.clip(pitch + rng.integers(-5, 6), 0, 99))
                    loud = int(rng.integers(70, 131))  # espeak's amplitude, default 100
                    name = f"{voice.replace('+', '-')}_s{rate}_p{pitch}.wav"
                    _espeak(exe, root / word / name, word, voice, speed, pitch_j, loud)
    return root


def _espeak(exe: str, out: Path, word: str, voice: str, speed: int, pitch: int,
            amplitude: int) -> None:
    cmd = [exe, "-w", str(out), "-v", voice, "-s", str(speed), "-p", str(pitch),
           "-a", str(amplitude), word]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    # espeak-ng can exit 0 after failing to load a voice; a missing or empty file tells.
    if done.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise DataError(f"espeak-ng could not say {word!r} with voice {voice!r} "
                        f"({why[0] if why else f'exit code {done.returncode}'}); "
                        "check the voice name with `espeak-ng --voices`")
