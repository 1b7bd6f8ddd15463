"""Houses (Ahmed & Moustafa 2016): four photos + bedrooms, bathrooms, area, zipcode -> price.

``HousesInfo.txt`` row n (0-based) is house n+1, whose photos are ``images/{n+1}_{room}.jpg``.
535 houses, 49 zipcodes (zipcode is a category). Split by seed: 20% test, 20% val, rest train,
stratified by price quintile so every split spans the price range. Metrics: MAE, MAPE (also
reported for a model fitted on log price and exponentiated back).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import BenchData, random_split, shared_data

ROOMS = ("frontal", "kitchen", "bedroom", "bathroom")
TABULAR = ("bedrooms", "bathrooms", "area", "zipcode")
LABEL = "price"


def read_houses(folder: Path) -> pd.DataFrame:
    """The houses table with absolute photo paths; FileNotFoundError names what is missing."""
    info = folder / "HousesInfo.txt"
    if not info.is_file():
        raise FileNotFoundError(f"{info} not found (the Houses data set is absent)")
    frame = pd.read_csv(info, sep=r"\s+", header=None, names=[*TABULAR, LABEL])
    frame.insert(0, "house", np.arange(1, len(frame) + 1))
    images = (folder / "images").resolve()
    for room in ROOMS:
        frame[room] = [str(images / f"{n}_{room}.jpg") for n in frame["house"]]
    absent = [p for room in ROOMS for p in frame[room] if not Path(p).is_file()]
    if absent:
        raise FileNotFoundError(f"{len(absent)} house photos missing, e.g. {absent[0]}")
    frame["price"] = frame["price"].astype(float)
    frame["area"] = frame["area"].astype(float)
    # Categorical: a zipcode is a place, not a quantity.
    frame["zipcode"] = frame["zipcode"].astype(str)
    return frame


def build_houses(
    work: Path, *, seed: int = 0, limit: int | None = None, folder: Path | None = None
) -> BenchData:
    """The Houses table for ``seed``; ``limit`` keeps the first houses (for quick tests).

    Nothing is written under ``work``: all photos are the shared files, by absolute path.
    """
    frame = read_houses(folder or shared_data() / "houses")
    if limit is not None:
        frame = frame.iloc[:limit].reset_index(drop=True)
    quintile = pd.qcut(frame[LABEL], 5, labels=False, duplicates="drop").to_numpy()
    frame["split"] = random_split(len(frame), seed, fractions=(0.2, 0.2), strata=quintile)
    frame = frame[["house", *ROOMS, *TABULAR, LABEL, "split"]]
    columns = {
        **dict.fromkeys(ROOMS, "image"),
        "bedrooms": "numeric",
        "bathrooms": "numeric",
        "area": "numeric",
        "zipcode": "categorical",
    }
    return BenchData(
        name="houses",
        frame=frame,
        base=None,
        label=LABEL,
        problem="regression",
        columns=columns,
        groups={"image": ROOMS, "tabular": TABULAR},
        notes={"houses": len(frame), "zipcodes": int(frame["zipcode"].nunique())},
    )
