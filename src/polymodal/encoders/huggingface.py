"""Any Hugging Face checkpoint as a polymodal encoder, from a local folder or a hub id.

A folder is loaded with no network. A hub id is looked up in the local Hugging Face cache only;
polymodal downloads nothing unless the user sets ``POLYMODAL_ALLOW_DOWNLOAD=1``. OpenCLIP's
names are accepted too: ``hf-hub:org/name`` (a hub id) and ``local-dir:/path`` (a folder).

What the checkpoint is comes from its ``config.json`` (``model_type``) and the modality asked
for; the loaders live in :mod:`hf_text`, :mod:`hf_image` and :mod:`hf_audio`.
"""

from __future__ import annotations

import os
from pathlib import Path

from polymodal.encoders.base import Encoder
from polymodal.encoders.hf_common import Checkpoint, read_json, readme_licence, weights_checksum
from polymodal.encoders.weights import SourceKind, WeightSource
from polymodal.errors import ConfigError
from polymodal.modality import Modality

ALLOW_DOWNLOAD_ENV = "POLYMODAL_ALLOW_DOWNLOAD"
# Files worth fetching when downloads are allowed: configs, tokenizers and safetensors weights
# (not the TensorFlow / Flax / ONNX copies many repos also carry).
_DOWNLOAD_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "*.md", "*/*.json"]
_TWO_TOWERS = {"clip": "text or image", "clap": "text or audio"}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
_AUDIO_TYPES = frozenset(
    {
        "whisper",
        "wav2vec2",
        "hubert",
        "wavlm",
        "data2vec-audio",
        "unispeech",
        "unispeech-sat",
        "sew",
        "sew-d",
        "wav2vec2-conformer",
        "clap_audio_model",
    }
)


def from_folder(path: str | Path, *, modality: Modality | None = None) -> Encoder:
    """Load a checkpoint folder (Hugging Face, sentence-transformers or OpenCLIP format)."""
    root = Path(path).expanduser()
    return _load(root, modality, kind="folder", location=str(root))


def from_hub(hub_id: str, *, modality: Modality | None = None) -> Encoder:
    """Load a hub id from the local Hugging Face cache (see :func:`resolve_hub`)."""
    if hub_id.startswith("local-dir:"):
        return from_folder(hub_id.removeprefix("local-dir:"), modality=modality)
    repo_id = hub_id.removeprefix("hf-hub:")
    return _load(resolve_hub(repo_id), modality, kind="hub", location=repo_id)


def resolve_hub(repo_id: str) -> Path:
    """The cached snapshot folder of ``repo_id``; downloads only when the user allowed it."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except HFValidationError as exc:
        raise ConfigError(f"{repo_id!r} is not a local folder or a valid hub id: {exc}") from exc
    except LocalEntryNotFoundError:
        pass
    if os.environ.get(ALLOW_DOWNLOAD_ENV) != "1":
        raise ConfigError(
            f"{repo_id!r} is not available offline: it is not in the local Hugging Face cache, "
            "and polymodal does not download on its own. On a machine with a network run "
            f"`huggingface-cli download {repo_id} --local-dir DIR`, copy DIR here and pass the "
            f"folder instead, or set {ALLOW_DOWNLOAD_ENV}=1 to let polymodal download it."
        )
    return _download(repo_id)


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=_DOWNLOAD_PATTERNS))
        if not any(folder.rglob("*.safetensors")):
            # Older repos ship PyTorch pickles only.
            folder = Path(snapshot_download(repo_id, allow_patterns=[*_DOWNLOAD_PATTERNS, "*.bin"]))
    except Exception as exc:  # network, auth, missing repo: all reach the user the same way
        raise ConfigError(
            f"could not download {repo_id!r} from the Hugging Face hub: {exc}"
        ) from exc
    return folder


def _load(root: Path, modality: Modality | None, *, kind: SourceKind, location: str) -> Encoder:
    from polymodal.encoders import hf_text

    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder")
    layout = hf_text.sentence_transformers_layout(root)
    folder = layout.folder if layout else root
    if not (folder / "config.json").is_file():
        if (root / "open_clip_config.json").is_file():
            from polymodal.encoders import hf_openclip

            return hf_openclip.load(root, _require(modality, root, "text or image"), kind, location)
        raise ConfigError(
            f"{folder} has no config.json: it is not a Hugging Face checkpoint folder"
        )
    config = read_json(folder / "config.json")
    if not isinstance(config, dict):
        raise ConfigError(f"{folder / 'config.json'} does not hold a JSON object")
    source = WeightSource(
        kind=kind,
        location=location,
        licence=readme_licence(root),
        checksum=weights_checksum(folder),
    )
    model_type = str(config.get("model_type", ""))
    modality = modality or _guess_modality(root, folder, model_type, layout is not None)
    name = f"{location}:{modality}" if model_type in _TWO_TOWERS else location
    checkpoint = Checkpoint(folder=folder, root=root, config=config, name=name, source=source)
    if modality == Modality.TEXT:
        return hf_text.load_text(checkpoint, layout)
    if layout is not None:
        raise ConfigError(f"{root} is a sentence-transformers (text) model, not {modality}")
    if modality == Modality.IMAGE:
        from polymodal.encoders import hf_image

        return hf_image.load_image(checkpoint)
    if modality == Modality.AUDIO:
        from polymodal.encoders import hf_audio

        return hf_audio.load_audio(checkpoint)
    raise ConfigError(f"Hugging Face checkpoints encode text, image or audio, not {modality}")


def _guess_modality(root: Path, folder: Path, model_type: str, is_st: bool) -> Modality:
    """The modality a single-tower checkpoint encodes; two-tower ones must be told."""
    if model_type in _TWO_TOWERS:
        _require(None, root, _TWO_TOWERS[model_type])
    if is_st:
        return Modality.TEXT
    if model_type in _AUDIO_TYPES:
        return Modality.AUDIO
    pre = folder / "preprocessor_config.json"
    if pre.is_file():
        pre_config = read_json(pre)
        if "sampling_rate" in pre_config:
            return Modality.AUDIO
        if "image_mean" in pre_config or "image_processor_type" in pre_config:
            return Modality.IMAGE
    if any((folder / f).is_file() for f in _TOKENIZER_FILES):
        return Modality.TEXT
    raise ConfigError(f"cannot tell which modality {root} encodes: pass modality=")


def _require(modality: Modality | None, root: Path, choices: str) -> Modality:
    if modality is None:
        raise ConfigError(
            f"{root} holds several encoders (towers): say which modality to load ({choices})"
        )
    return modality
