"""An alignment: two projection heads that map two encoders' pooled vectors into one space.

It records the encoders it sits on (name, cache id, modality, width), so it can encode raw values
itself and refuses pooled vectors or encoders that are not the ones it was trained on. Saved as a
folder: ``config.json`` (format, version, sides, heads, temperature, training record) and
``model.safetensors`` (head weights, and fine-tuned encoder weights when blocks were unfrozen).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from polymodal.align.heads import ProjectionHead
from polymodal.atomic import atomic_folder
from polymodal.errors import ConfigError, InputError
from polymodal.formats import read_format_config
from polymodal.modality import Modality

if TYPE_CHECKING:
    from polymodal.cache.embed import ColumnEmbeddings, EmbedReport
    from polymodal.cache.store import EmbeddingCache
    from polymodal.encoders.base import Encoder
    from polymodal.encoders.module import EncoderModule

FORMAT = "polymodal-alignment"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SideName = Literal["a", "b"]
SIDES: tuple[SideName, SideName] = ("a", "b")
_ENCODE_BATCH = 32


@dataclass(frozen=True)
class Side:
    """One side of an alignment: the encoder whose pooled vectors its head takes.

    ``encoder`` is what :func:`~polymodal.encoders.registry.build_encoder` takes (a registered
    name, a folder, a hub id; empty when not recorded); ``cache_id`` pins its weights and
    preprocessing; ``tiny`` marks the random tiny version of a registered encoder (tests).
    """

    modality: Modality | None
    encoder: str
    cache_id: str
    width: int
    tiny: bool = False
    column: str = ""

    @classmethod
    def of(cls, encoder: Encoder, *, column: str = "") -> Side:
        """The side an encoder gives."""
        return cls(
            modality=encoder.info.modality,
            encoder=encoder_spec(encoder),
            cache_id=encoder.info.cache_id,
            width=encoder.info.width,
            tiny=encoder.info.source.kind == "random" and encoder.info.name.endswith("-tiny"),
            column=column,
        )

    @classmethod
    def unrecorded(cls, width: int, *, modality: Modality | None = None, column: str = "") -> Side:
        """A side known only by its width (arrays from an unknown encoder)."""
        return cls(modality=modality, encoder="", cache_id="", width=width, column=column)

    def build_encoder(self) -> Encoder:
        """Build this side's encoder and check it is the one the alignment was trained on."""
        if not self.encoder:
            raise ConfigError(
                "this alignment does not record the encoder of its "
                f"{self.modality or 'unknown'} side; embed values yourself and use embed()"
            )
        from polymodal.encoders.registry import build_encoder

        encoder = build_encoder(self.encoder, modality=self.modality, tiny=self.tiny)
        self.check(encoder)
        return encoder

    def check(self, encoder: Encoder) -> None:
        """Raise ConfigError unless ``encoder`` produces the vectors this side was trained on."""
        if self.cache_id and not self.same_vectors(encoder.info.cache_id):
            raise ConfigError(
                f"this alignment was trained on encoder {self.cache_id} "
                f"({self.encoder or 'unnamed'}), not {encoder.info.cache_id}: its head cannot "
                "read that encoder's vectors; train an alignment for it"
            )
        if encoder.info.width != self.width:
            raise ConfigError(
                f"encoder {encoder.info.name} gives {encoder.info.width}-d vectors; "
                f"this alignment's head takes {self.width}-d"
            )

    def same_vectors(self, cache_id: str) -> bool:
        """True when ``cache_id`` names the vectors this side was trained on.

        A folder encoder's id starts with the folder as it was given ("tinyclip:image@..."), so
        loading the same folder by another spelling (absolute, from another working folder)
        changes only that part: then the tower, weights checksum and preprocessing decide.
        """
        if cache_id == self.cache_id:
            return True
        if not (self.cache_id and self.encoder and Path(self.encoder).is_absolute()):
            return False
        name, _, tail = cache_id.rpartition("@")
        recorded, _, recorded_tail = self.cache_id.rpartition("@")
        tower = f":{self.modality}"
        return tail == recorded_tail and name.endswith(tower) == recorded.endswith(tower)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["modality"] = None if self.modality is None else str(self.modality)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Side:
        modality = data.get("modality")
        return cls(
            modality=None if modality is None else Modality(modality),
            encoder=str(data.get("encoder", "")),
            cache_id=str(data.get("cache_id", "")),
            width=int(data["width"]),
            tiny=bool(data.get("tiny", False)),
            column=str(data.get("column", "")),
        )


def encoder_spec(encoder: Encoder) -> str:
    """What ``build_encoder`` takes to build ``encoder`` again."""
    from polymodal.encoders.registry import registered_encoders

    info = encoder.info
    names = {r.name for r in registered_encoders()}
    if info.name in names:
        return info.name
    if info.source.kind == "random" and info.name.removesuffix("-tiny") in names:
        return info.name.removesuffix("-tiny")
    if info.source.kind == "folder":
        # a relative folder would name another folder (or none) once loaded from elsewhere
        return str(Path(info.source.location).expanduser().resolve())
    if info.source.kind == "hub":
        return info.source.location
    return info.name


class Alignment(nn.Module):
    """Two heads into one space, the temperature learned with them, and what they sit on.

    ``tuned`` holds encoder modules fine-tuned with the heads (``unfreeze_blocks``); a tuned side
    must be encoded through :meth:`encode_values`, since cached pooled vectors come from the
    frozen encoder.
    """

    def __init__(
        self,
        a: Side,
        b: Side,
        head_a: ProjectionHead,
        head_b: ProjectionHead,
        *,
        loss: str = "infonce",
        logit_scale: float = float(np.log(1 / 0.07)),
        logit_bias: float | None = None,
        tuned: Mapping[str, EncoderModule] | None = None,
        record: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for side, head in ((a, head_a), (b, head_b)):
            if head.in_dim != side.width:
                raise ValueError(f"head takes {head.in_dim}-d input, encoder gives {side.width}")
        if head_a.out_dim != head_b.out_dim:
            raise ValueError(
                f"heads disagree on the shared width: {head_a.out_dim}, {head_b.out_dim}"
            )
        self.sides: dict[str, Side] = {"a": a, "b": b}
        self.heads = nn.ModuleDict({"a": head_a, "b": head_b})
        self.tuned = nn.ModuleDict(dict(tuned or {}))
        self.loss = loss
        self.logit_scale = float(logit_scale)
        self.logit_bias = logit_bias
        self.record: dict[str, Any] = dict(record or {})
        self.use_conse = True
        self._conse: Any = None
        self.eval()

    # ------------------------------------------------------------------ sides
    @property
    def a(self) -> Side:
        return self.sides["a"]

    @property
    def b(self) -> Side:
        return self.sides["b"]

    @property
    def dim(self) -> int:
        """Width of the shared space."""
        return int(self.heads["a"].out_dim)

    @property
    def scale(self) -> float:
        """exp(logit_scale): multiplies cosine similarities into logits."""
        return float(np.exp(min(self.logit_scale, np.log(100.0))))

    def side_of(self, modality: Modality | str) -> SideName:
        """The side that holds ``modality``; an error if neither or both do."""
        m = Modality(modality)
        found = [s for s in SIDES if self.sides[s].modality == m]
        if len(found) != 1:
            have = ", ".join(str(self.sides[s].modality) for s in SIDES)
            what = "no" if not found else "two"
            raise ConfigError(f"this alignment has {what} {m} side (its sides: {have})")
        return found[0]

    def _side(self, side: str) -> SideName:
        if side in SIDES:
            return side  # type: ignore[return-value]
        return self.side_of(side)

    # ------------------------------------------------------------------ embedding
    def embed(self, side: str, embeddings: np.ndarray | ColumnEmbeddings) -> np.ndarray:
        """Pooled encoder vectors (N, width) of ``side`` -> unit vectors (N, dim).

        ``side`` is "a", "b" or a modality. A :class:`ColumnEmbeddings` is checked against the
        encoder the side was trained on, and must have every row present.
        """
        name = self._side(side)
        if name in self.tuned:
            raise ConfigError(
                f"side {name} was fine-tuned with its encoder: pooled vectors from the frozen "
                "encoder do not fit it; use encode_values()"
            )
        pooled = self._pooled(name, embeddings)
        z = self._project(name, torch.from_numpy(pooled))
        mix = self.conse_mix(name)
        if mix is None:
            return z
        return self._mix_with_conse(z, pooled, mix)

    def conse_mix(self, side: str) -> dict[str, Any] | None:
        """The recorded ConSE mix for ``side``'s vectors, or None when it does not apply.

        A training run may record ``combine_with_conse`` ({weight, conse_top_k,
        conse_templates}): the image side's vector is then ``weight`` x the trained head's plus
        the rest x ConSE's (ImageNet probabilities over the class names' text vectors). Both sit
        in the text side's space only when that side is locked, so the mix needs a locked text
        head; set ``use_conse = False`` to get the trained head alone.
        """
        mix = self.record.get("combine_with_conse")
        name = self._side(side)
        other: SideName = "b" if name == "a" else "a"
        if not mix or not self.use_conse or name in self.tuned:
            return None
        if self.sides[name].modality != Modality.IMAGE:
            return None
        if self.sides[other].modality != Modality.TEXT or not self.heads[other].lock:
            return None
        return dict(mix)

    def _mix_with_conse(
        self, z: np.ndarray, pooled: np.ndarray, mix: Mapping[str, Any]
    ) -> np.ndarray:
        if self._conse is None:
            from polymodal.align.conse import ConSE

            self._conse = ConSE(
                self.a.build_encoder() if self.a.modality == Modality.IMAGE else None,
                self.b.build_encoder() if self.b.modality == Modality.TEXT else None,
                templates=tuple(mix.get("conse_templates") or ("{}",)),
                top_k=mix.get("conse_top_k"),
            )
        weight = float(mix.get("weight", 0.5))
        mixed = weight * z + (1 - weight) * self._conse.embed("a", pooled)
        return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True).clip(min=1e-12)).astype(
            np.float32
        )

    def _pooled(self, name: SideName, embeddings: np.ndarray | ColumnEmbeddings) -> np.ndarray:
        side = self.sides[name]
        if not isinstance(embeddings, np.ndarray):
            if side.cache_id and not side.same_vectors(embeddings.encoder):
                raise ConfigError(
                    f"column {embeddings.column!r} was embedded by {embeddings.encoder}, but "
                    f"this alignment's side {name} was trained on {side.cache_id}"
                )
            absent = np.flatnonzero(~embeddings.present)
            if absent.size:
                raise InputError(
                    f"{absent.size} rows have no embedding (first: row {absent[0]}); "
                    "select the present rows first",
                    column=embeddings.column,
                )
            embeddings = embeddings.pooled
        pooled = np.asarray(embeddings, dtype=np.float32)
        if pooled.ndim != 2 or pooled.shape[1] != side.width:
            raise ConfigError(
                f"side {name} takes (N, {side.width}) pooled vectors, got shape {pooled.shape}"
            )
        if not np.isfinite(pooled).all():
            row = int(np.flatnonzero(~np.isfinite(pooled).all(axis=1))[0])
            raise InputError("embedding has NaN or infinite values", row=row)
        return pooled

    @torch.no_grad()
    def _project(self, name: SideName, pooled: torch.Tensor) -> np.ndarray:
        out = self.heads[name](pooled.float())
        return out.numpy().astype(np.float32, copy=False)

    def encode_values(
        self,
        side: str,
        values: Sequence[str],
        *,
        encoder: Encoder | None = None,
        base: Path | None = None,
        cache: EmbeddingCache | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Raw cells of ``side`` (file paths, or texts) -> unit vectors (N, dim).

        Frozen sides go through the embedding cache; a bad value raises InputError naming it.
        """
        name = self._side(side)
        enc = encoder if encoder is not None else self.sides[name].build_encoder()
        self.sides[name].check(enc)
        if name in self.tuned:
            if base is not None and self.sides[name].modality not in (None, Modality.TEXT):
                from polymodal.data.paths import resolve_path

                # decoded here directly, not through the cache's path handling
                values = [str(resolve_path(v, base)) for v in values]
            return self._encode_tuned(name, enc, values)
        col, report = embed_values(enc, values, base=base, cache=cache, progress=progress)
        if report.skipped:
            first = report.skipped[0]
            raise InputError(first.problem, row=first.row, path=first.path)
        if not col.present.all():
            row = int(np.flatnonzero(~col.present)[0])
            raise InputError("empty value", row=row)
        return self.embed(name, col.pooled)

    @torch.no_grad()
    def _encode_tuned(self, name: SideName, encoder: Encoder, values: Sequence[str]) -> np.ndarray:
        module = self.tuned[name]
        out = []
        for start in range(0, len(values), _ENCODE_BATCH):
            items = []
            for i, value in enumerate(values[start : start + _ENCODE_BATCH]):
                try:
                    items.append(encoder.decode(value))
                except InputError as err:
                    raise err.at(row=start + i) from None
            pooled = module(encoder.collate(items))[2]
            out.append(self._project(name, pooled))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def logits(self, za: np.ndarray, zb: np.ndarray) -> np.ndarray:
        """Scaled similarities between unit vectors of the two sides (plus SigLIP's bias)."""
        out = self.scale * (np.asarray(za) @ np.asarray(zb).T)
        return out + (self.logit_bias or 0.0)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "sides": {s: self.sides[s].to_dict() for s in SIDES},
            "heads": {s: self.heads[s].config() for s in SIDES},
            "loss": self.loss,
            "logit_scale": self.logit_scale,
            "logit_bias": self.logit_bias,
            "tuned": sorted(self.tuned.keys()),
            "record": self.record,
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder``, as one unit.

        Both go into a fresh sibling folder that then replaces ``folder`` whole, so a kill (save
        runs as the checkpoint at every improving epoch) never leaves a config beside weights of
        another epoch. Only an empty folder or a saved alignment is replaced.
        """
        from safetensors.torch import save_file

        out = Path(folder).expanduser()
        check_replaceable(out)
        tensors = {
            f"heads.{k}": v.detach().contiguous().clone()
            for k, v in self.heads.state_dict().items()
        }
        for name, module in self.tuned.items():
            for k, v in module.state_dict().items():
                tensors[f"tuned.{name}.{k}"] = v.detach().contiguous().clone()
        text = json.dumps(self.config(), indent=2, default=_json_default) + "\n"
        with atomic_folder(out) as tmp:
            save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
            (tmp / CONFIG_FILE).write_text(text, encoding="utf-8")
        return out

    @classmethod
    def load(
        cls, folder: str | Path, *, encoders: Mapping[str, Encoder] | None = None
    ) -> Alignment:
        """Load a saved alignment; ``encoders`` ("a"/"b" -> Encoder) are checked against it."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        root = Path(folder).expanduser()
        config = read_config(root)
        sides = {s: Side.from_dict(config["sides"][s]) for s in SIDES}
        heads = {s: ProjectionHead(**config["heads"][s]) for s in SIDES}
        try:
            tensors = load_file(str(root / WEIGHTS_FILE))
        except (OSError, SafetensorError) as err:
            raise ConfigError(
                f"{root / WEIGHTS_FILE}: cannot read alignment weights: {err}"
            ) from None
        for s in SIDES:
            state = {
                k[len(f"heads.{s}.") :]: v
                for k, v in tensors.items()
                if k.startswith(f"heads.{s}.")
            }
            _load_state(heads[s], state, root)
        tuned: dict[str, EncoderModule] = {}
        given = dict(encoders or {})
        for s in config.get("tuned", []):
            enc = given.get(s) or sides[s].build_encoder()
            module = enc.module()
            prefix = f"tuned.{s}."
            _load_state(
                module,
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)},
                root,
            )
            module.eval()
            tuned[s] = module
        for s, enc in given.items():
            sides[cls._check_side_name(s)].check(enc)
        return cls(
            sides["a"],
            sides["b"],
            heads["a"],
            heads["b"],
            loss=str(config.get("loss", "infonce")),
            logit_scale=float(config["logit_scale"]),
            logit_bias=config.get("logit_bias"),
            tuned=tuned,
            record=config.get("record") or {},
        )

    @staticmethod
    def _check_side_name(side: str) -> SideName:
        if side not in SIDES:
            raise ConfigError(f"alignment sides are 'a' and 'b', not {side!r}")
        return side  # type: ignore[return-value]

    def __repr__(self) -> str:
        a, b = self.a, self.b
        return (
            f"Alignment({a.modality}:{a.encoder or '?'} <-> {b.modality}:{b.encoder or '?'}, "
            f"dim={self.dim}, loss={self.loss})"
        )


def is_alignment_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds a saved polymodal alignment (not, say, a CLIP checkpoint)."""
    path = Path(folder).expanduser() / CONFIG_FILE
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text("utf-8")).get("format") == FORMAT
    except (ValueError, OSError, AttributeError):
        return False


def has_alignment_weights(folder: str | Path) -> bool:
    """True when ``folder`` holds a ``model.safetensors`` that :meth:`Alignment.save` wrote (its
    metadata names the format, or it holds both heads): an alignment even without config.json."""
    path = Path(folder).expanduser() / WEIGHTS_FILE
    if not path.is_file():
        return False
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            if (f.metadata() or {}).get("format") == FORMAT:
                return True
            keys = list(f.keys())
    except (SafetensorError, OSError, ValueError):
        return False
    return all(any(k.startswith(f"heads.{s}.") for k in keys) for s in SIDES)


def check_replaceable(out: Path) -> None:
    """Refuse to save over a file, the working folder, or a folder holding something else."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file: an alignment is saved as a folder; give another path")
    if not out.is_dir():
        return
    if Path.cwd().resolve().is_relative_to(out.resolve()):
        raise ConfigError(f"{out} is the working folder (or holds it): save into a new folder")
    if any(out.iterdir()) and not (is_alignment_folder(out) or has_alignment_weights(out)):
        raise ConfigError(
            f"{out} exists and is not a saved alignment: saving would replace what it holds; "
            "give a new or empty folder"
        )


def read_config(root: Path) -> dict[str, Any]:
    """The alignment's config.json, checked for format and version."""
    if not (root / CONFIG_FILE).is_file() and has_alignment_weights(root):
        raise ConfigError(
            f"{root} is a damaged polymodal alignment: its {WEIGHTS_FILE} is there but its "
            f"{CONFIG_FILE} is missing (an interrupted copy?); copy or train it again"
        )
    return read_format_config(
        root, CONFIG_FILE, fmt=FORMAT, version=FORMAT_VERSION, what="alignment"
    )


def _load_state(module: nn.Module, state: dict[str, torch.Tensor], root: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        # torch's first line only names the module ("Error(s) in loading state_dict for
        # ProjectionHead:"); the first line after it says what does not fit.
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else type(err).__name__)
        raise ConfigError(f"{root / WEIGHTS_FILE} does not match its config: {detail}") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def embed_values(
    encoder: Encoder,
    values: Sequence[str],
    *,
    base: Path | None = None,
    cache: EmbeddingCache | None = None,
    progress: bool = False,
    column: str = "value",
) -> tuple[ColumnEmbeddings, EmbedReport]:
    """Pooled vectors of raw cells through the embedding cache; bad cells are reported."""
    import pandas as pd

    from polymodal.cache.embed import embed_table
    from polymodal.data.schema import ColumnSpec, Schema

    modality = encoder.info.modality
    frame = pd.DataFrame({column: list(values)}, dtype=object)
    schema = Schema((ColumnSpec(column, modality, "given"),))
    result = embed_table(
        frame,
        schema,
        base=base,
        encoders={modality: encoder},
        cache=cache,
        progress=progress,
    )
    return result.columns[column], result.report
