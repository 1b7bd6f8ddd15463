"""The fusion benchmark data sets of issue 3 (and a one-image-column clothing table), built
from real data into a work folder.

Each builder returns a :class:`BenchData`: one table with a fixed ``split`` column (train / val /
test, chosen by the seed), the label, and which input columns form each modality group. Shared
data is referenced by absolute path and never copied; generated files (degraded images and audio,
rasterised SVG stamps) are written under the work folder, never into the repository.

    from benchmarks.datasets import build
    data = build("houses", work=Path("out/bench"), seed=0)
    Predictor(label=data.label).fit(data.part("train"), data.part("val"))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")
NAMES = ("av_digits", "houses", "tuxpaint", "tuxpaint_sounds")  # the fusion tables


@dataclass(frozen=True)
class BenchData:
    """A benchmark table: inputs, label and the fixed split, plus how columns group by modality."""

    name: str
    frame: pd.DataFrame  # input columns, the label, "split" and any bookkeeping columns
    base: Path | None  # folder relative paths start from (all paths here are absolute)
    label: str
    problem: str  # "multiclass" or "regression"
    columns: dict[str, str]  # input column -> modality name
    groups: dict[str, tuple[str, ...]]  # modality group ("image", "tabular", ...) -> input columns
    notes: dict[str, object] = field(default_factory=dict)  # counts and degradation settings

    def part(self, split: str, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
        """Rows of ``split`` with only the input ``columns`` (default: all inputs) and the label."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        keep = [*(columns if columns is not None else self.columns), self.label]
        rows = self.frame[self.frame["split"] == split]
        return rows[keep].reset_index(drop=True)

    def modalities(self, columns: tuple[str, ...] | None = None) -> dict[str, str]:
        """The column -> modality map for ``columns`` (default: all inputs)."""
        names = columns if columns is not None else tuple(self.columns)
        return {c: self.columns[c] for c in names}

    def sizes(self) -> dict[str, int]:
        counts = self.frame["split"].value_counts()
        return {s: int(counts.get(s, 0)) for s in SPLITS}


def shared_data() -> Path:
    """``$POLYMODAL_SHARED`` (the shared data folder), else ``../shared/data`` beside the repo."""
    env = os.environ.get("POLYMODAL_SHARED")
    if env:
        return Path(env).resolve()
    return (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()


def random_split(
    n: int,
    seed: int,
    *,
    fractions: tuple[float, float] = (0.2, 0.2),
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """``split`` labels for ``n`` rows: ``fractions`` = (val, test), stratified by ``strata``.

    Every stratum with at least 3 rows gets at least one val and one test row, so a rare class is
    never missing from the test split.
    """
    val_frac, test_frac = fractions
    rng = np.random.default_rng(seed)
    out = np.full(n, "train", dtype=object)
    groups = (
        [np.arange(n)]
        if strata is None
        else [np.flatnonzero(strata == s) for s in pd.unique(strata)]
    )
    for idx in groups:
        idx = rng.permutation(idx)
        k = len(idx)
        n_test = round(test_frac * k)
        n_val = round(val_frac * k)
        if k >= 3:
            n_test, n_val = max(n_test, 1), max(n_val, 1)
        out[idx[:n_test]] = "test"
        out[idx[n_test : n_test + n_val]] = "val"
    return out


def check_frame(data: BenchData) -> BenchData:
    """Fail early on a builder bug: missing columns, unknown splits, an empty split."""
    missing = [c for c in [*data.columns, data.label, "split"] if c not in data.frame.columns]
    if missing:
        raise RuntimeError(f"{data.name}: columns {missing} missing from the built table")
    unknown = set(data.frame["split"]) - set(SPLITS)
    if unknown:
        raise RuntimeError(f"{data.name}: unknown split values {sorted(unknown)}")
    empty = [s for s, k in data.sizes().items() if k == 0]
    if empty:
        raise RuntimeError(f"{data.name}: split(s) {empty} are empty")
    grouped = sorted(c for cols in data.groups.values() for c in cols)
    if grouped != sorted(data.columns):
        raise RuntimeError(f"{data.name}: groups {data.groups} do not cover {list(data.columns)}")
    return data


def build(
    name: str, work: str | Path = "out/bench", *, seed: int = 0, **options: object
) -> BenchData:
    """Build the benchmark ``name`` (one of :data:`NAMES`, or "clothing") under ``work``."""
    builders = _builders()
    if name not in builders:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(builders)}")
    return check_frame(builders[name](Path(work), seed=seed, **options))


def _builders() -> Mapping[str, Callable[..., BenchData]]:
    # Imported here: each builder module imports BenchData from this package.
    from .av_digits import build_av_digits
    from .clothing import build_clothing
    from .houses import build_houses
    from .tuxpaint import build_tuxpaint, build_tuxpaint_sounds

    return {
        "av_digits": build_av_digits,
        "houses": build_houses,
        "tuxpaint": build_tuxpaint,
        "tuxpaint_sounds": build_tuxpaint_sounds,
        "clothing": build_clothing,
    }
