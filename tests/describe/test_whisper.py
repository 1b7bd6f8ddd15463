from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polymodal.describe import whisper


@pytest.mark.real_weights
def test_shared_encoder_gives_the_registered_encoders_vectors(speech_wav: Path) -> None:
    from polymodal.encoders.audio_whisper import whisper_tiny_en

    shared = whisper.audio_encoder()
    assert shared.info.cache_id == whisper_tiny_en().info.cache_id  # what the alignment checks
    got = shared.embed([str(speech_wav)])
    want = whisper_tiny_en().embed([str(speech_wav)])  # loads its own copy: the reference
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.real_weights
def test_transcripts_and_sound_tags_load_whisper_once(
    monkeypatch: pytest.MonkeyPatch, speech_wav: Path
) -> None:
    import ctranslate2

    from polymodal.describe.transcribe import Transcriber

    loaded: list[str] = []
    real = ctranslate2.models.Whisper

    def counting(path: str, *args: object, **kwargs: object) -> object:
        loaded.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ctranslate2.models, "Whisper", counting)
    whisper.whisper_model.cache_clear()
    whisper.audio_encoder.cache_clear()
    try:
        Transcriber().transcribe(speech_wav)
        whisper.audio_encoder().embed([str(speech_wav)])
        assert whisper.audio_encoder() is whisper.audio_encoder()
    finally:
        whisper.whisper_model.cache_clear()
        whisper.audio_encoder.cache_clear()
    assert len(loaded) == 1
