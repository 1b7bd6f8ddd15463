"""Zero-shot classification: labels become text prompts, media are matched against them.

As in OpenCLIP: each label is written into every template ("a photo of a {}."), the prompts are
embedded through the alignment's text side, averaged per label and renormalised (a prompt
ensemble); an input's class probabilities are a softmax over its scaled cosine similarity to the
labels. Works with any *space*: a trained :class:`Alignment` (the shipped default, a user's
folder), a CLIP/CLAP checkpoint folder (both towers already share a space), or ConSE.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from polymodal.errors import ConfigError
from polymodal.modality import Modality

if TYPE_CHECKING:
    from polymodal.align.model import Alignment
    from polymodal.cache.embed import ColumnEmbeddings
    from polymodal.cache.store import EmbeddingCache
    from polymodal.encoders.base import Encoder

IMAGE_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a good photo of a {}.",
    "a cropped photo of a {}.",
    "a photo of a small {}.",
    "a photo of a large {}.",
    "an image of a {}.",
    "{}",
)
AUDIO_TEMPLATES = (
    "the sound of a {}.",
    "a recording of a {}.",
    "the sound of {}.",
    "a recording of {}.",
    "{}",
)


class Space(Protocol):
    """What zero-shot needs from a shared space (an :class:`Alignment`, ConSE)."""

    @property
    def scale(self) -> float: ...

    def side_of(self, modality: Modality | str) -> str: ...

    def embed(self, side: str, embeddings: Any) -> np.ndarray: ...

    def encode_values(self, side: str, values: Sequence[str], **kwargs: Any) -> np.ndarray: ...


def default_templates(modality: Modality | str) -> tuple[str, ...]:
    return AUDIO_TEMPLATES if Modality(modality) == Modality.AUDIO else IMAGE_TEMPLATES


def check_labels(labels: Sequence[str] | str) -> list[str]:
    """Labels as given (comma-separated text or a list), stripped; refuse empty and duplicates."""
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    out = [str(label).strip() for label in items]
    if not out or all(not label for label in out):
        raise ConfigError("no labels given: zero-shot needs at least two class names")
    if any(not label for label in out):
        raise ConfigError(f"an empty label in {out!r}: every label needs a name")
    seen: dict[str, str] = {}
    dupes = []
    for label in out:
        key = label.casefold()
        if key in seen:
            dupes.append(label)
        seen.setdefault(key, label)
    if dupes:
        raise ConfigError(f"duplicated labels: {', '.join(map(repr, dupes))}")
    if len(out) < 2:
        raise ConfigError(f"only one label ({out[0]!r}): zero-shot chooses between two or more")
    return out


def check_templates(templates: Sequence[str] | str) -> list[str]:
    items = [templates] if isinstance(templates, str) else list(templates)
    if not items:
        raise ConfigError("no prompt templates given")
    for t in items:
        if t.count("{}") != 1:
            raise ConfigError(f"prompt template {t!r} must hold exactly one {{}} for the label")
    return items


def build_zero_shot_classifier(
    space: Space,
    labels: Sequence[str],
    templates: Sequence[str],
    *,
    cache: EmbeddingCache | None = None,
    phrases: Sequence[Sequence[tuple[str, float]]] | None = None,
) -> np.ndarray:
    """Class weights (dim, n_labels): each label's prompt embeddings, averaged and renormalised.

    ``phrases`` (one list of (phrase, weight) per label, as :func:`polymodal.align.labels.
    expand_labels` gives) replaces each label by several phrases: every phrase is written into
    every template and averaged, then the phrases' unit vectors are summed with their weights.
    """
    labels, templates = check_labels(labels), check_templates(templates)
    if phrases is None:
        phrases = [[(label, 1.0)] for label in labels]
    if len(phrases) != len(labels) or any(not p for p in phrases):
        raise ConfigError(f"expected one non-empty phrase list per label ({len(labels)})")
    flat = [(i, phrase, w) for i, group in enumerate(phrases) for phrase, w in group]
    prompts = [t.replace("{}", phrase) for _, phrase, _ in flat for t in templates]
    text = space.side_of(Modality.TEXT)
    z = space.encode_values(text, prompts, cache=cache)
    per_phrase = z.reshape(len(flat), len(templates), -1).mean(axis=1)
    per_phrase /= np.linalg.norm(per_phrase, axis=1, keepdims=True).clip(min=1e-12)
    per_label = np.zeros((len(labels), per_phrase.shape[1]), dtype=np.float64)
    for (i, _, w), v in zip(flat, per_phrase, strict=True):
        per_label[i] += w * v
    per_label /= np.linalg.norm(per_label, axis=1, keepdims=True).clip(min=1e-12)
    return per_label.T.astype(np.float32)


class ZeroShotClassifier:
    """Classify images or audio into ``labels`` with no training examples.

    ``alignment`` is ``None``/``"default"`` (the shipped alignment for ``modality``), ``"conse"``
    (images through the ImageNet classifier), a saved alignment folder, a CLIP/CLAP checkpoint
    folder, or an object with the :class:`Space` methods (an :class:`Alignment`).
    ``expand_labels`` (default) makes folder-style names readable ("longsleeve" -> "long
    sleeve", "outwear" -> "outerwear") and adds each label's WordNet gloss as a second phrase
    (:mod:`polymodal.align.labels`); ``False`` uses the labels exactly as given.
    """

    def __init__(
        self,
        labels: Sequence[str] | str,
        templates: Sequence[str] | str | None = None,
        *,
        alignment: Space | str | Path | None = None,
        modality: Modality | str | None = None,
        cache: EmbeddingCache | None = None,
        expand_labels: bool = True,
    ) -> None:
        self.labels = check_labels(labels)
        self.space = resolve_space(alignment, modality)
        self.modality = Modality(modality) if modality is not None else _media_modality(self.space)
        self.side = self.space.side_of(self.modality)
        if templates is None:
            recorded = getattr(self.space, "record", {}).get("templates")
            templates = recorded or default_templates(self.modality)
        self.templates = check_templates(templates)
        self.cache = cache
        self.phrases: list[list[tuple[str, float]]] | None = None
        if expand_labels:
            from polymodal.align.labels import expand_labels as expand

            self.phrases = expand(self.labels)
        self.weights = build_zero_shot_classifier(
            self.space, self.labels, self.templates, cache=cache, phrases=self.phrases
        )

    def embed(
        self, inputs: np.ndarray | ColumnEmbeddings | Sequence[str], *, base: Path | None = None
    ) -> np.ndarray:
        """Unit vectors of inputs: pooled encoder vectors, a ColumnEmbeddings, or file paths."""
        if isinstance(inputs, np.ndarray) or hasattr(inputs, "pooled"):
            return self.space.embed(self.side, inputs)
        return self.space.encode_values(self.side, _values(inputs), base=base, cache=self.cache)

    def logits(
        self, inputs: Any, *, base: Path | None = None, transductive: bool = False
    ) -> np.ndarray:
        """(N, n_labels) scaled similarities; ``transductive`` returns refined log-probabilities."""
        if transductive:
            return np.log(self.predict_proba(inputs, base=base, transductive=True).clip(1e-30))
        return self.space.scale * (self.embed(inputs, base=base) @ self.weights)

    def predict_proba(
        self, inputs: Any, *, base: Path | None = None, transductive: bool = False
    ) -> np.ndarray:
        """(N, n_labels) class probabilities.

        ``transductive=True`` treats the inputs as one unlabeled batch whose own clusters refine
        the class prototypes (:mod:`polymodal.align.transductive`); with fewer than
        ``MIN_PER_LABEL`` inputs per label it warns and classifies each input on its own.
        """
        from polymodal.align.transductive import (
            batch_features,
            enough_inputs,
            fallback_reason,
            softmax,
            transductive_proba,
        )

        if not transductive:
            return softmax(self.logits(inputs, base=base))
        z, features = self.embed_with_features(inputs, base=base)
        text_logits = self.space.scale * (z @ self.weights)
        if not enough_inputs(len(z), len(self.labels)):
            warnings.warn(fallback_reason(len(z), len(self.labels)), TransductiveFallback, 2)
            return softmax(text_logits)
        return transductive_proba(text_logits, batch_features(features))

    def predict(
        self, inputs: Any, *, base: Path | None = None, transductive: bool = False
    ) -> list[str]:
        """The most likely label of each input."""
        p = self.predict_proba(inputs, base=base, transductive=transductive)
        return [self.labels[i] for i in np.argmax(p, axis=1)]

    def embed_with_features(
        self, inputs: Any, *, base: Path | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors in the space, and the vectors the batch is clustered in: the encoder's
        pooled vectors (classes separate best there), or the space's own vectors when the
        alignment fine-tuned the encoder (cached frozen vectors would not match it)."""
        if isinstance(inputs, np.ndarray) or hasattr(inputs, "pooled"):
            pooled = inputs if isinstance(inputs, np.ndarray) else inputs.pooled
            return self.embed(inputs), np.asarray(pooled, dtype=np.float32)
        if self.side in getattr(self.space, "tuned", {}):
            z = self.embed(inputs, base=base)
            return z, z
        from polymodal.align.model import embed_values
        from polymodal.errors import InputError

        col, report = embed_values(
            media_encoder(self.space, self.side), _values(inputs), base=base, cache=self.cache
        )
        if report.skipped:
            first = report.skipped[0]
            raise InputError(first.problem, row=first.row, path=first.path)
        return self.embed(col.pooled), col.pooled


class TransductiveFallback(UserWarning):
    """A transductive prediction fell back to inductive (too few inputs per label)."""


def media_encoder(space: Space, side: str) -> Encoder:
    """The encoder of one side of a space (checked against what it was trained on)."""
    from polymodal.align.conse import ConSE

    if isinstance(space, ConSE):
        return space.image_encoder if side == "a" else space.text_encoder
    return space.sides[side].build_encoder()  # type: ignore[attr-defined]


def _values(inputs: Sequence[str] | str | Path) -> list[str]:
    if isinstance(inputs, str | Path):
        return [str(inputs)]
    return [str(v) for v in inputs]


def _media_modality(space: Space) -> Modality:
    sides = getattr(space, "sides", None)
    if isinstance(sides, dict):
        others = [s.modality for s in sides.values() if s.modality not in (None, Modality.TEXT)]
        if len(others) == 1:
            return Modality(others[0])
    return Modality.IMAGE


def resolve_space(spec: Space | str | Path | None, modality: Modality | str | None) -> Space:
    """Turn what the user gave as ``alignment`` into a shared space (see ZeroShotClassifier)."""
    if spec is not None and not isinstance(spec, str | Path):
        return spec
    key = "default" if spec is None else str(spec)
    if key == "default":
        from polymodal.align.default import default_kind, load_default

        return load_default(default_kind(modality or Modality.IMAGE))
    if key == "conse":
        if modality not in (None, Modality.IMAGE, "image"):
            raise ConfigError("ConSE classifies images only (through the ImageNet classifier)")
        from polymodal.align.conse import ConSE

        return ConSE()
    folder = Path(key).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"alignment {key!r} is not 'default', 'conse', or a folder (an alignment saved "
            "by `polymodal align`, or a CLIP/CLAP checkpoint)"
        )
    from polymodal.align.model import Alignment, has_alignment_weights, is_alignment_folder

    # alignment weights without their config: Alignment.load says the folder is damaged
    if is_alignment_folder(folder) or has_alignment_weights(folder):
        return Alignment.load(folder)
    return two_tower_alignment(folder, modality or Modality.IMAGE)


def two_tower_alignment(folder: str | Path, modality: Modality | str) -> Alignment:
    """A CLIP-like checkpoint as an :class:`Alignment`: its ``modality`` tower and its text tower
    already share a space, so both heads are the identity; its temperature is the checkpoint's."""
    from polymodal.align.heads import ProjectionHead
    from polymodal.align.model import Alignment, Side
    from polymodal.encoders.registry import build_encoder

    media = build_encoder(folder, modality=Modality(modality))
    text = build_encoder(folder, modality=Modality.TEXT)
    if media.info.width != text.info.width:
        raise ConfigError(
            f"{folder}: its {modality} tower gives {media.info.width}-d vectors and its text "
            f"tower {text.info.width}-d; they do not share a space"
        )
    width = media.info.width
    return Alignment(
        Side.of(media),
        Side.of(text),
        ProjectionHead(width, width, lock=True),
        ProjectionHead(width, width, lock=True),
        loss="clip-checkpoint",
        logit_scale=_checkpoint_logit_scale(Path(folder), Modality(modality)),
        record={"checkpoint": str(Path(folder).expanduser().resolve())},
    )


def _checkpoint_logit_scale(folder: Path, modality: Modality) -> float:
    """CLIP's ``logit_scale`` (CLAP's ``logit_scale_a`` for audio), or log 100 if absent."""
    from safetensors import safe_open

    names = ("logit_scale_a", "logit_scale") if modality == Modality.AUDIO else ("logit_scale",)
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="np") as f:
            for name in names:
                if name in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                    return float(np.asarray(f.get_tensor(name)).reshape(-1)[0])
    return float(np.log(100.0))
