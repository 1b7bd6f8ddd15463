"""Clothing: 3,781 real phone photos in 10 classes -> the class (one image column).

The data set's own ``train/``, ``validation/`` and ``test/`` folders are the splits (so every seed
sees the same rows; the seed moves training only). One modality: this table measures what a
plain image classifier costs to fit and to re-fit over cached embeddings, not fusion.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import BenchData, shared_data

FOLDERS = {"train": "train", "val": "validation", "test": "test"}
SUFFIXES = {".jpg", ".jpeg", ".png"}


def build_clothing(
    work: Path, *, seed: int = 0, limit: int | None = None, folder: Path | None = None
) -> BenchData:
    """The clothing table (absolute photo paths, nothing written under ``work``); ``limit``
    keeps the first photos of each class in each split, in file-name order (for quick runs)."""
    del work, seed  # fixed split, shared files only
    root = folder or shared_data() / "clothing"
    rows = []
    for split, name in FOLDERS.items():
        split_dir = root / name
        if not split_dir.is_dir():
            raise FileNotFoundError(f"{split_dir} not found (the clothing data set is absent)")
        for kind in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            photos = sorted(
                p for p in kind.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file()
            )
            for photo in photos[:limit]:
                rows.append({"photo": str(photo.resolve()), "kind": kind.name, "split": split})
    frame = pd.DataFrame(rows)
    return BenchData(
        name="clothing",
        frame=frame,
        base=None,
        label="kind",
        problem="multiclass",
        columns={"photo": "image"},
        groups={"image": ("photo",)},
        notes={"photos": len(frame), "classes": int(frame["kind"].nunique())},
    )
