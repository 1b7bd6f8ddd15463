"""Zero-shot and retrieval numbers of the shipped default alignments, as markdown tables.

    .venv/bin/python benchmarks/align_zeroshot.py                 # all tables (~2 min cached)
    .venv/bin/python benchmarks/align_zeroshot.py --json out.json
    .venv/bin/python benchmarks/align_zeroshot.py --split validation --zeroshot-only  # ~15 s

1. Image zero-shot on ``shared/data/clothing/test`` (10 classes, the folder names as labels):
   ConSE (no training: ImageNet probabilities weighting the class names' text vectors), ConSE
   turned around (each label as a distribution over ImageNet classes), the trained default
   head alone, and the shipped default: that head mixed with ConSE as recorded in the alignment.
   Every setting (ConSE's top-k and templates, the mixing weight, the prompt templates) was
   chosen on the clothing *validation* split; test is scored once, here.
   Each method also gets a *transductive* row (``ZeroShotClassifier(...).predict_proba(...,
   transductive=True)``, ``--transductive`` in the CLI): the split's unlabeled photos, classified
   together, refine the class prototypes from their own clusters (settings chosen on validation).
   Labels come three ways: as given, two non-words spelled out by hand (a reference), and
   expanded by ``polymodal.align.labels`` (readable names + WordNet gloss; the default), which
   also gets hierarchical-ConSE rows (ImageNet mass under each label's WordNet sense).
2. Audio zero-shot on all 3,000 FSDD clips (never trained on): which of "zero".."nine" is said,
   inductive and transductive.
3. Retrieval R@1/5/10 both ways on the held-out 10% of the training pair groups.
4. Training time of ``train_alignment`` for 5,000 pairs over cached embeddings.

Intervals are 95% Wilson intervals. Embeddings come from the cache that
``scripts/train_default_alignment.py`` filled (a first run here embeds what is missing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from scripts.train_default_alignment import (
    CLOTHING_CLASSES,
    COMBINE_WITH_CONSE,
    DIGITS,
    HELD_OUT,
    SEED,
    embed_pairs,
    label_vectors,
    retrieval,
    shared_data,
)

WORK = Path(__file__).resolve().parents[1] / "out" / "align"
CONSE_PAPER = {"top_k": 10, "templates": ("a photo of a {}.",)}  # Norouzi et al.; the 40.6% row
CONSE_TUNED = {
    "top_k": COMBINE_WITH_CONSE["conse_top_k"],
    "templates": tuple(COMBINE_WITH_CONSE["conse_templates"]),
}  # chosen on clothing validation, as the mixing weight
MIX = float(COMBINE_WITH_CONSE["weight"])
LABEL_SIDE_TEMPERATURE = 0.02
READABLE = {"longsleeve": "long sleeve", "outwear": "outerwear"}  # the two non-words, spelled


def proportion(hits: int, n: int) -> str:
    from polymodal.align.retrieval import proportion as wilson

    return str(wilson(hits, n))


def clothing_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    root = shared_data() / "clothing" / split
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise SystemExit(f"{root} is absent: the clothing data set is needed")
    frame = pd.DataFrame({"image": [str(p) for p in files], "text": [p.parent.name for p in files]})
    pooled, _, present = embed_pairs(frame, "image", progress=False)
    y = np.array([CLOTHING_CLASSES.index(c) for c in frame["text"]])
    return pooled[present], y[present]


def conse_vectors(pooled: np.ndarray, top_k: int, templates: Sequence[str]) -> Any:
    from polymodal.align.conse import ConSE

    space = ConSE(top_k=top_k, templates=templates)
    return space.embed("a", pooled), space


def label_side(probs: np.ndarray, labels: np.ndarray, class_text: np.ndarray) -> np.ndarray:
    """ConSE turned around: each label becomes a distribution over the 1000 ImageNet classes
    (a sharp softmax of its text similarity to their names), scored against the image's
    ImageNet probabilities. No training; the temperature was chosen on clothing validation."""
    s = labels @ class_text.T / LABEL_SIDE_TEMPERATURE
    q = np.exp(s - s.max(axis=1, keepdims=True))
    return probs @ (q / q.sum(axis=1, keepdims=True)).T


def image_rows(split: str) -> tuple[list[tuple[str, str, str]], dict[str, float]]:
    """Accuracy rows on clothing ``split`` for each method, raw and spelled labels."""
    from polymodal.align.default import load_default

    pooled, y = clothing_split(split)
    default = load_default("image-text")
    templates = default.record["templates"]
    z_shipped = default.embed("a", pooled)  # with the recorded ConSE mix, as users get it
    default.use_conse = False
    z_default = default.embed("a", pooled)  # the trained head alone
    z_paper, _ = conse_vectors(pooled, **CONSE_PAPER)
    z_tuned, _ = conse_vectors(pooled, **CONSE_TUNED)
    _, full = conse_vectors(pooled, top_k=None, templates=("{}",))
    probs, class_text = full.weights(pooled), full.class_embeddings()
    rows, numbers = [], {}
    for label_kind, labels in (
        ("folder names, as given (`--no-expand-labels`)", CLOTHING_CLASSES),
        ("two non-words spelled out by hand", tuple(READABLE.get(c, c) for c in CLOTHING_CLASSES)),
        (EXPANDED, CLOTHING_CLASSES),
    ):
        phrases = expand_labels(labels) if label_kind == EXPANDED else None
        lv = phrase_vectors(default, labels, templates, phrases)  # locked text side: MiniLM's
        lv_paper = phrase_vectors(default, labels, CONSE_PAPER["templates"], phrases)
        scores = {
            "ConSE, top-10, 'a photo of a {}.' (baseline)": z_paper @ lv_paper.T,
            "ConSE, top-5, class names bare, prompt ensemble": z_tuned @ lv.T,
            "label-side ImageNet matching (no training)": label_side(probs, lv, class_text),
            "trained head alone": z_default @ lv.T,
            SHIPPED: z_shipped @ lv.T,
        }
        scores["shipped default, transductive over the split's photos"] = transduce(
            default.scale * scores[SHIPPED], pooled
        )
        if label_kind == EXPANDED:
            mass = probs @ hierarchy_members(labels).T
            scores["WordNet hierarchy: ImageNet mass under each label's sense (no training)"] = mass
            scores["shipped default + 0.5 x log hierarchy mass"] = default.scale * scores[
                SHIPPED
            ] + 0.5 * np.log(mass + 1e-3)
        for method, s in scores.items():
            hits = int(np.sum(np.argmax(s, axis=1) == y))
            rows.append((label_kind, method, proportion(hits, len(y))))
            numbers[f"{label_kind} | {method}"] = hits / len(y)
    return rows, numbers


EXPANDED = "folder names, expanded (readable + WordNet gloss; the default)"


def expand_labels(labels: Sequence[str]) -> list[list[tuple[str, float]]]:
    from polymodal.align.labels import expand_labels as expand

    return expand(labels)


def phrase_vectors(
    alignment: Any,
    labels: Sequence[str],
    templates: Sequence[str],
    phrases: list[list[tuple[str, float]]] | None,
) -> np.ndarray:
    """(n_labels, dim) label vectors; with ``phrases``, as ``ZeroShotClassifier`` builds them."""
    if phrases is None:
        return label_vectors(alignment, labels, templates)
    from polymodal.align.zeroshot import build_zero_shot_classifier

    return build_zero_shot_classifier(alignment, labels, templates, phrases=phrases).T


def hierarchy_members(labels: Sequence[str]) -> np.ndarray:
    """(n_labels, 1000) hierarchical ConSE: ImageNet class c belongs to the label whose WordNet
    sense is c's nearest ancestor among the labels' senses (readable names, senses as chosen by
    ``polymodal.align.labels``)."""
    from polymodal.align.labels import label_senses, readable_label
    from polymodal.align.wordnet import imagenet_synsets, load_wordnet
    from polymodal.encoders.image_efficientnet import imagenet_class_names

    wn = load_wordnet()
    if wn is None:
        raise SystemExit("WordNet (Debian wordnet-base) is needed for the hierarchy rows")
    senses = label_senses(wn, [readable_label(label, wordnet=wn) for label in labels])
    below = [wn.descendants(s.offset) if s else set() for s in senses]
    depth = [len(wn.ancestors(s.offset)) if s else 0 for s in senses]
    members = np.zeros((len(labels), 1000))
    for c, offset in enumerate(imagenet_synsets(wn, imagenet_class_names())):
        owners = [i for i in range(len(labels)) if offset in below[i]]
        if owners:
            members[max(owners, key=lambda i: depth[i]), c] = 1.0
    return members


SHIPPED = f"shipped default: {MIX} x trained + {1 - MIX:g} x ConSE"


def transduce(text_logits: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """What ``predict_proba(pooled, transductive=True)`` computes, from the scaled logits."""
    from polymodal.align.transductive import batch_features, transductive_proba

    return transductive_proba(text_logits, batch_features(pooled))


def audio_rows() -> list[tuple[str, str, float]] | None:
    from polymodal.align.default import load_default

    files = sorted((shared_data() / "fsdd").rglob("*.wav"))
    if not files:
        return None
    default = load_default("audio-text")
    frame = pd.DataFrame({"audio": [str(p) for p in files], "text": [p.name for p in files]})
    pooled, _, present = embed_pairs(frame, "audio", progress=False)
    y = np.array([int(p.name.split("_")[0]) for p in files])[present]
    rows = []
    for how, phrases in (("as given", None), ("expanded (default)", expand_labels(DIGITS))):
        lv = phrase_vectors(default, DIGITS, default.record["templates"], phrases)
        logits = default.scale * default.embed("a", pooled[present]) @ lv.T
        for method, s in (
            (f"{how}, inductive", logits),
            (f"{how}, transductive over the 3,000 clips", transduce(logits, pooled[present])),
        ):
            hits = int(np.sum(np.argmax(s, axis=1) == y))
            rows.append((method, proportion(hits, len(y)), hits / len(y)))
    return rows


def held_out_pairs(kind: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The held-out pairs of the default alignment's training run (same builders, same seed)."""
    from scripts.pairs import audio_pairs, image_pairs, split_by_group
    from scripts.pairs.augment import augmented_pairs

    quiet = lambda _: None  # noqa: E731
    if kind == "image-text":
        pairs = image_pairs(WORK, log=quiet)
        drawings = pairs[~pairs["image"].str.contains("/Backgrounds/")]
        frame = pd.concat([pairs, augmented_pairs(drawings, WORK)], ignore_index=True)
    else:
        frame = audio_pairs(WORK, log=quiet)
    media = kind.split("-")[0]
    a, b, present = embed_pairs(frame, media, progress=False)
    frame, a, b = frame[present].reset_index(drop=True), a[present], b[present]
    held = split_by_group(frame, HELD_OUT, seed=SEED)
    return frame[held].reset_index(drop=True), a[held], b[held]


def retrieval_rows() -> list[tuple[str, str, str, str]]:
    from polymodal.align.default import load_default

    rows = []
    for kind in ("image-text", "audio-text"):
        frame, a, b = held_out_pairs(kind)
        alignment = load_default(kind)
        variants = [("", alignment)]
        if alignment.conse_mix(kind.split("-")[0]) is not None:
            variants = [(", shipped (with ConSE mix)", alignment), (", trained head alone", None)]
        for label, _ in variants:
            alignment.use_conse = label != ", trained head alone"
            m = retrieval(alignment, a, b, frame["text"])
            media = kind.split("-")[0]
            for way, name in (("a_to_b", f"{media} -> text"), ("b_to_a", f"text -> {media}")):
                r = m[way]
                where = f"{kind}{label} ({m['n']} held-out pairs)"
                rows.append((where, name, str(r["R@1"]), str(r["R@5"]), str(r["R@10"])))
    return rows


def training_time(n: int = 5000, epochs: int = 20) -> dict[str, float]:
    """Seconds for ``train_alignment`` on ``n`` cached image-text pairs (LiT, full epochs)."""
    import torch

    from polymodal.align.train import train_alignment
    from scripts.pairs import image_pairs

    pairs = image_pairs(WORK, log=lambda _: None)
    a, b, present = embed_pairs(pairs, "image", progress=False)
    a, b = a[present][:n], b[present][:n]
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    _, history = train_alignment(
        a, b, epochs=epochs, patience=epochs, val_fraction=0.1, seed=0, progress=False
    )
    return {"pairs": len(a), "epochs": len(history.epochs), "seconds": time.perf_counter() - t0}


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="test", help="clothing split (choices used validation)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--zeroshot-only", action="store_true", help="no retrieval, no timing")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}

    rows, results["clothing"] = image_rows(args.split)
    print(f"### Image zero-shot: clothing {args.split} (10 classes)\n")
    print(table(("labels", "method", "accuracy [95% CI]"), rows))
    audio = audio_rows()
    if audio is not None:
        results["fsdd"] = {method: acc for method, _, acc in audio}
        print("\n### Audio zero-shot: FSDD, all 3,000 clips (never trained on)\n")
        rows = [("zero .. nine", method, ci) for method, ci, _ in audio]
        print(table(("labels", "method", "accuracy [95% CI]"), rows))
    if args.zeroshot_only:
        return _dump(args.json, results)
    print("\n### Retrieval on held-out pairs\n")
    print(table(("alignment", "direction", "R@1", "R@5", "R@10"), retrieval_rows()))
    if not args.skip_timing:
        timing = training_time()
        results["timing"] = timing
        print("\n### Training time over cached embeddings (2 torch threads)\n")
        print(
            table(
                ("pairs", "epochs", "seconds"),
                [(str(timing["pairs"]), str(timing["epochs"]), f"{timing['seconds']:.1f}")],
            )
        )
    print("\nCommand: .venv/bin/python benchmarks/align_zeroshot.py")
    return _dump(args.json, results)


def _dump(path: Path | None, results: dict[str, Any]) -> int:
    if path is not None:
        path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
