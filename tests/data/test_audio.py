import shutil
import time
import wave

import numpy as np
import pytest
import torch
from scipy.io import wavfile
from scipy.signal import get_window

from nnrecipe.data.audio import (
    hz_to_mel,
    load_wav_folder,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    read_wav,
    synthesize_spoken_digits,
)
from nnrecipe.errors import DataError


def _tone(freq, rate, seconds, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def _write_pcm(path, samples, rate, width):
    """Write with the standard library, so the reader is checked against another writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.atleast_2d(samples.T).T  # (T, channels)
    if width == 1:
        data = np.round(samples * 127 + 128).astype(np.uint8)
    else:
        data = np.round(samples * (2 ** (8 * width - 1) - 1)).astype(f"<i{width}")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


@pytest.mark.parametrize("width", [1, 2, 4])
def test_pcm_widths_read_to_the_unit_range(tmp_path, width):
    wave_in = _tone(440, 8000, 0.1, amp=0.8)
    _write_pcm(tmp_path / "t.wav", wave_in, 8000, width)
    rate, out = read_wav(tmp_path / "t.wav")
    assert rate == 8000 and out.dtype == np.float32
    np.testing.assert_allclose(out, wave_in, atol=2 / 2 ** (8 * width - 1) + 1e-6)


def test_folder_mono_resampled_and_cut_to_the_median_length(tmp_path):
    rate = 8000
    _write_pcm(tmp_path / "low" / "a.wav", _tone(300, rate, 0.50), rate, 2)
    _write_pcm(tmp_path / "low" / "b.wav", _tone(300, rate, 0.25), rate, 2)
    stereo = np.stack([_tone(1000, rate, 0.40), np.zeros(3200)], axis=1)
    _write_pcm(tmp_path / "high" / "c.WAV", stereo, rate, 2)
    _write_pcm(tmp_path / "high" / "d.wav", _tone(1000, 16000, 0.30), 16000, 2)
    wavfile.write(tmp_path / "high" / "e.wav", rate, _tone(1000, rate, 0.3).astype(np.float32))
    data = load_wav_folder(tmp_path)
    assert data.classes == ["high", "low"] and data.y.tolist() == [0, 0, 0, 1, 1]
    assert data.sample_rate == rate and data.spatial_dims == 1
    assert data.x.shape == (5, 2400) and data.x.dtype == np.float32  # median of 0.25..0.5 s
    assert data.names[0] == "high/c.WAV"
    np.testing.assert_allclose(data.x[0], _tone(1000, rate, 0.3, amp=0.25), atol=1e-4)  # L+R / 2
    # the 16 kHz clip, brought to 8 kHz, is still the same tone
    np.testing.assert_allclose(data.x[1, 100:-100], _tone(1000, rate, 0.3)[100:-100], atol=0.02)
    assert np.all(data.x[4, 2000:] == 0)  # the 0.25 s clip is padded with silence
    assert load_wav_folder(tmp_path, sample_rate=4000).x.shape == (5, 1200)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_wav_folder(tmp_path / "nope")
    _write_pcm(tmp_path / "a" / "x.wav", _tone(300, 8000, 0.1), 8000, 2)
    with pytest.raises(DataError, match="at least 2"):
        load_wav_folder(tmp_path)
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="holds no sound files"):
        load_wav_folder(tmp_path)
    (tmp_path / "b" / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(DataError, match=r"bad\.wav could not be read"):
        load_wav_folder(tmp_path)


def test_stft_power_matches_numpy_for_one_frame():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=4000)
    n_fft, hop, sr = 256, 64, 8000
    fb = mel_filterbank(40, n_fft, sr).double().numpy()
    frame = 20  # an interior frame: centred at sample frame * hop
    seg = signal[frame * hop - n_fft // 2: frame * hop + n_fft // 2]
    power = np.abs(np.fft.rfft(seg * get_window("hann", n_fft))) ** 2  # periodic Hann
    expected = np.log(fb @ power + 1e-6)
    out = log_mel(torch.from_numpy(signal)[None], sr, n_fft=n_fft, hop=hop, n_mels=40)
    assert out.shape == (1, 40, 4000 // hop + 1) and out.dtype == torch.float32
    np.testing.assert_allclose(out[0, :, frame].numpy(), expected, rtol=1e-4, atol=1e-4)


def test_mel_filters_are_triangles_peaking_at_their_centres():
    n_fft, sr, n_mels = 4096, 16000, 20
    fb = mel_filterbank(n_mels, n_fft, sr).numpy()
    assert fb.shape == (n_mels, n_fft // 2 + 1) and fb.min() >= 0
    bins = np.linspace(0, sr / 2, n_fft // 2 + 1)
    centres = mel_to_hz(np.linspace(0, hz_to_mel(sr / 2), n_mels + 2))[1:-1]
    for row, centre in zip(fb, centres, strict=True):
        peak = int(row.argmax())
        assert abs(bins[peak] - centre) <= sr / n_fft  # the peak sits at the centre bin
        assert row[peak] > 0.95
        nonzero = np.flatnonzero(row)
        up, down = row[nonzero[0]:peak + 1], row[peak:nonzero[-1] + 1]
        assert np.all(np.diff(up) > 0) and np.all(np.diff(down) < 0)  # one rise, one fall
        # straight sides: a constant slope on each side of the peak
        assert np.abs(np.diff(up[:-1], 2)).max(initial=0) < 1e-6
        assert np.abs(np.diff(down[1:], 2)).max(initial=0) < 1e-6
    with pytest.raises(DataError, match="too many"):
        mel_filterbank(128, 256, 16000)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0])
def test_a_pure_tone_lights_the_nearest_mel_band(freq):
    sr, n_mels = 8000, 40
    tone = torch.from_numpy(_tone(freq, sr, 0.5)).float()
    feats = log_mel(tone[None], sr, n_mels=n_mels)
    band = int(feats[0, :, 5:-5].mean(dim=1).argmax())
    centres = mel_to_hz(np.linspace(0, hz_to_mel(sr / 2), n_mels + 2))[1:-1]
    assert band == int(np.abs(centres - freq).argmin())


def test_log_mel_batches_and_short_clips():
    waves = torch.randn(3, 1000)
    assert log_mel(waves, 8000).shape == (3, 40, 1000 // 128 + 1)
    assert log_mel(torch.randn(2, 100), 8000, n_fft=512).shape == (2, 40, 1)
    assert torch.isfinite(log_mel(torch.zeros(1, 800), 8000)).all()  # silence: log(1e-6)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="Debian's espeak-ng not installed")
def test_spoken_digits_are_synthesised_and_load(tmp_path):
    start = time.perf_counter()
    folder = synthesize_spoken_digits(tmp_path / "digits", digits=[0, 7],
                                      voices=["en", "en+f3"], rates=[150, 200], pitches=[50])
    seconds = time.perf_counter() - start
    assert sorted(p.name for p in folder.iterdir()) == ["seven", "zero"]
    assert len(list((folder / "zero").glob("*.wav"))) == 4
    data = load_wav_folder(folder, sample_rate=8000)
    assert data.classes == ["seven", "zero"] and data.x.shape[0] == 8
    assert 0.2 < data.x.shape[1] / 8000 < 2.0 and np.abs(data.x).max() > 0.05  # speech
    assert seconds < 5
    with pytest.raises(DataError, match="voice 'xx-nope'"):
        synthesize_spoken_digits(tmp_path / "bad", digits=[1], voices=["xx-nope"], rates=[150],
                                 pitches=[50])
    with pytest.raises(DataError, match="0-9"):
        synthesize_spoken_digits(tmp_path / "bad", digits=[12])


def test_missing_espeak_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DataError, match="install Debian's espeak-ng"):
        synthesize_spoken_digits(tmp_path / "d")
