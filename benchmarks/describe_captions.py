"""Caption quality on held-out images: retrieval captions vs the trained decoder vs baselines.

    .venv/bin/python benchmarks/describe_captions.py                # tables + HTML (~4 min)
    .venv/bin/python benchmarks/describe_captions.py --json out.json --html report.html

The test split is the 10% of pair groups (Tux Paint stamps, OpenClipArt titles, emoji, Scratch
media) that the default image-text alignment held out (``scripts/train_caption_decoder.py``
makes the same split); neither the alignment, the decoder nor the caption bank saw them. Every
caption of an image's group is a reference. Settings (retrieval's ``combine``/``k``, the
decoder's beam) are compared on the validation split first, with a bank of training captions
only (and hubness from training images only), and the test split scores each system once.
Caveat: the default alignment was trained on the validation images (it held out only the test
groups), so retrieval's validation scores are optimistic; the decoder never saw them.
Metrics: corpus BLEU-4 and CIDEr-D (``polymodal.describe.captions.metrics``); a source's column
is CIDEr-D scored within that source. Baselines: the most frequent training caption for every
image, and the image encoder's top ImageNet class name (ConSE-style, no training).
The HTML report shows ten test images (fixed seed) with every system's caption.

Out of domain: real phone photos of clothing (``shared/data/clothing/test``, never trained on),
where no reference captions exist; the score is the share of captions that name the garment
(any word of the class's short list, see ``GARMENT_WORDS``; "clothing" alone does not count).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from scripts.train_caption_decoder import HUB_K, caption_pairs, embed_images, references

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "describe"
# (combine, k, hubness weight); the first row shows what the hubness correction does.
RETRIEVAL_SETTINGS = (
    ("top", 1, 0.0),
    ("top", 1, 1.0),
    ("consensus", 5, 1.0),
    ("consensus", 10, 1.0),
    ("consensus", 20, 1.0),
)
BEAMS = (1, 3)
HYBRID_MARGINS = (0.05, 0.1, 0.15, 0.2)
RETRIEVAL_DEFAULT = "retrieval, consensus k=20"
EXAMPLES = 10
# Words that name each clothing class in a caption (plural and compound forms included).
GARMENT_WORDS = {
    "dress": ("dress", "dresses", "gown"),
    "hat": ("hat", "hats", "cap", "caps", "beanie", "helmet", "sombrero"),
    "longsleeve": ("shirt", "sweater", "sweatshirt", "jersey", "blouse", "cardigan", "hoodie",
                   "top", "long sleeve"),
    "outwear": ("coat", "jacket", "parka", "anorak", "hoodie", "vest", "raincoat", "windbreaker"),
    "pants": ("pants", "jeans", "trousers", "slacks", "leggings"),
    "shirt": ("shirt", "blouse", "polo"),
    "shoes": ("shoe", "shoes", "sandal", "sandals", "sneaker", "sneakers", "boot", "boots",
              "heels", "slipper", "slippers", "loafer", "footwear", "clog", "clogs"),
    "shorts": ("shorts",),
    "skirt": ("skirt", "skirts"),
    "t-shirt": ("t shirt", "tshirt", "t-shirt", "tee", "shirt", "jersey"),
}  # fmt: skip


def log(message: str) -> None:
    print(message, flush=True)


def split_rows(pairs: pd.DataFrame, split: str) -> pd.DataFrame:
    """One row per distinct image of ``split`` (its references: every caption of its group)."""
    part = pairs[pairs["split"] == split].reset_index(drop=True)
    refs = references(part)
    part = part.assign(refs=refs).drop_duplicates("image").reset_index(drop=True)
    return part


def score(captions: Sequence[str], frame: pd.DataFrame) -> dict[str, Any]:
    """Overall and per-source BLEU-4 / CIDEr-D, with per-image CIDEr-D for bootstrap intervals."""
    from polymodal.describe.captions.metrics import caption_scores, cider_d_scores

    refs = list(frame["refs"])
    out = caption_scores(captions, refs)
    out["per_image"] = cider_d_scores(captions, refs).round(4).tolist()
    out["CIDEr-D CI"] = bootstrap(np.asarray(out["per_image"]))
    out["by_source"] = {}
    for source, idx in frame.groupby("source").indices.items():
        sub = caption_scores([captions[i] for i in idx], [refs[i] for i in idx])
        out["by_source"][source] = sub
    return out


def bootstrap(values: np.ndarray, *, n: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean over images (document frequencies held fixed)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    return [round(float(q), 4) for q in np.percentile(means, [2.5, 97.5])]


def choose_hybrid(val: dict[str, Any], photos: dict[str, Any] | None) -> str:
    """The hybrid margin with the best validation CIDEr-D among those whose captions name the
    garment on clothing validation photos at least 95% as often as retrieval alone does."""
    names = [n for n in val if n.startswith("hybrid")]
    if photos is not None:
        floor = 0.95 * photos[RETRIEVAL_DEFAULT]["share"]
        names = [n for n in names if photos[n]["share"] >= floor] or names
    return max(names, key=lambda n: val[n]["CIDEr-D"])


def paired_difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Mean per-image CIDEr-D of a minus b, with a paired bootstrap 95% interval."""
    diff = np.asarray(a["per_image"]) - np.asarray(b["per_image"])
    return {"mean": round(float(diff.mean()), 4), "ci": bootstrap(diff)}


def best(results: dict[str, Any], prefix: str) -> str:
    """The name of the best-scoring (CIDEr-D) system whose name starts with ``prefix``."""
    return max((n for n in results if n.startswith(prefix)), key=lambda n: results[n]["CIDEr-D"])


def systems(
    train_texts: Sequence[str], bank_part: pd.DataFrame | None
) -> dict[str, Callable[[np.ndarray, np.ndarray], list[str]]]:
    """Name -> captions from (pooled, tokens). ``bank_part`` holds the pairs whose captions and
    images make the bank (as the training script builds it); None: the shipped bank."""
    from polymodal.align.default import load_default
    from polymodal.describe.captions import decoder_captioner, weights_dir
    from polymodal.describe.captions.bank import CaptionBank
    from polymodal.describe.captions.hybrid import HybridCaptioner
    from polymodal.describe.captions.retrieval import RetrievalCaptioner
    from polymodal.encoders.registry import build_encoder

    encoder = build_encoder("efficientnet-lite0")
    alignment = load_default("image-text")
    if bank_part is None:
        bank = CaptionBank.load(weights_dir("caption-bank"))
    else:
        _, pooled, _ = embed_images(bank_part.drop_duplicates("image"), tokens=False)
        images = alignment.embed("image", pooled)
        bank = CaptionBank.build(bank_part["text"], alignment, images=images, hub_k=HUB_K)
    decoder = decoder_captioner(encoder=encoder)
    frequent = pd.Series(list(train_texts)).value_counts().index[0]
    out: dict[str, Callable[[np.ndarray, np.ndarray], list[str]]] = {
        "most frequent training caption": lambda p, t: [frequent] * len(p),
        "top ImageNet class (no training)": lambda p, t: [
            top[0][0]
            for top in encoder.imagenet_top(p, k=1)  # type: ignore[attr-defined]
        ],
    }
    for combine, k, hub in RETRIEVAL_SETTINGS:
        r = RetrievalCaptioner(
            bank, alignment, encoder=encoder, combine=combine, k=k, hub_weight=hub
        )
        name = f"retrieval, {combine}" + (f" k={k}" if combine == "consensus" else "")
        name += "" if hub else ", no hubness correction"
        out[name] = lambda p, t, r=r: r.caption_vectors(alignment.embed("image", p))
    memo: dict[tuple[int, int], list[str]] = {}  # decoding is the slow part: once per input

    def decode(t: np.ndarray, beam: int) -> list[str]:
        if (id(t), beam) not in memo:
            decoder.beam = beam
            memo[id(t), beam] = decoder.caption_tokens(t)
        return memo[id(t), beam]

    for beam in BEAMS:
        out[f"decoder, beam {beam}"] = lambda p, t, beam=beam: decode(t, beam)
    retrieval = RetrievalCaptioner(bank, alignment, encoder=encoder, combine="consensus", k=20)
    assert out[RETRIEVAL_DEFAULT]  # the hybrids pair the decoder with this one
    for margin in HYBRID_MARGINS:
        hybrid = HybridCaptioner(retrieval, decoder, margin=margin)

        def run(p: np.ndarray, t: np.ndarray, h: HybridCaptioner = hybrid) -> list[str]:
            z = alignment.embed("image", p)
            return h.combine(z, decode(t, 1), retrieval.caption_vectors(z))

        out[f"hybrid, margin {margin:g}"] = run
    return out


def evaluate(
    frame: pd.DataFrame, named: dict[str, Callable[[np.ndarray, np.ndarray], list[str]]]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    _, pooled, toks = embed_images(frame, tokens=True, progress=False)
    assert toks is not None
    toks = toks.astype(np.float32)
    results, captions = {}, {}
    for name, fn in named.items():
        t0 = time.perf_counter()
        captions[name] = fn(pooled, toks)
        results[name] = {**score(captions[name], frame), "seconds": time.perf_counter() - t0}
        r = results[name]
        log(f"  {name}: BLEU-4 {r['BLEU-4']:.4f} CIDEr-D {r['CIDEr-D']:.4f}")
    return results, captions


def names_garment(caption: str, label: str) -> bool:
    from polymodal.describe.captions.text import words

    text = " " + " ".join(words(caption.replace("-", " "))) + " "
    return any(f" {w.replace('-', ' ')} " in text for w in GARMENT_WORDS[label])


def clothing_photos(
    named: dict[str, Callable[[np.ndarray, np.ndarray], list[str]]], split: str
) -> dict[str, Any] | None:
    """Share of captions naming the garment on clothing photos (None: data absent)."""
    from polymodal.align.retrieval import proportion
    from scripts.train_default_alignment import shared_data

    root = shared_data() / "clothing" / split
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        return None
    frame = pd.DataFrame(
        {"image": [str(p) for p in files], "label": [p.parent.name for p in files]}
    )
    frame, pooled, toks = embed_images(frame, tokens=True, progress=False)
    assert toks is not None
    toks = toks.astype(np.float32)
    out: dict[str, Any] = {}
    for name, fn in named.items():
        captions = fn(pooled, toks)
        hits = sum(names_garment(c, y) for c, y in zip(captions, frame["label"], strict=True))
        share = proportion(hits, len(frame))
        out[name] = {"hits": hits, "n": len(frame), "share": float(share.value), "ci": str(share)}
        out[name]["examples"] = captions[:: max(1, len(captions) // 10)][:10]
        log(f"  {name}: {out[name]['ci']}")
    return out


def table(results: dict[str, Any]) -> str:
    sources = sorted(next(iter(results.values()))["by_source"])
    head = ["captioner", "BLEU-1", "BLEU-4", "CIDEr-D [95% CI]", *sources]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, r in results.items():
        lo, hi = r["CIDEr-D CI"]
        cells = [name, f"{r['BLEU-1']:.3f}", f"{r['BLEU-4']:.3f}"]
        cells.append(f"{r['CIDEr-D']:.3f} [{lo:.3f}, {hi:.3f}]")
        cells += [f"{r['by_source'][s]['CIDEr-D']:.3f}" for s in sources]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def thumbnail(path: str, px: int = 160) -> str:
    from polymodal.data.readers.image import read_image

    image = read_image(path)
    image.thumbnail((px, px))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def examples(frame: pd.DataFrame, captions: dict[str, list[str]], seed: int = 0) -> list[dict]:
    rows = np.random.default_rng(seed).choice(len(frame), size=EXAMPLES, replace=False)
    return [
        {
            "image": frame["image"][i],
            "source": frame["source"][i],
            "references": list(frame["refs"][i]),
            "captions": {name: caps[i] for name, caps in captions.items()},
        }
        for i in sorted(rows)
    ]


def write_html(path: Path, shown: list[dict], results: dict[str, Any]) -> None:
    from polymodal.atomic import atomic_write_bytes

    parts = [
        "<!doctype html><meta charset='utf-8'><title>polymodal captions</title>",
        "<style>body{font:14px sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:6px;"
        "vertical-align:top}table{border-collapse:collapse}img{max-width:160px}</style>",
        "<h1>Captions of held-out images</h1>",
        "<p>Test split of scripts/train_caption_decoder.py (never trained on). "
        "Command: <code>python benchmarks/describe_captions.py</code></p><table><tr>"
        "<th>captioner</th><th>BLEU-4</th><th>CIDEr-D</th></tr>",
    ]
    for name, r in results.items():
        parts.append(
            f"<tr><td>{html.escape(name)}</td><td>{r['BLEU-4']:.3f}</td>"
            f"<td>{r['CIDEr-D']:.3f}</td></tr>"
        )
    parts.append("</table><h2>Ten examples</h2><table>")
    for ex in shown:
        lines = [f"<b>reference</b>: {html.escape(' | '.join(ex['references']))}"]
        lines += [f"<b>{html.escape(k)}</b>: {html.escape(v)}" for k, v in ex["captions"].items()]
        parts.append(
            f"<tr><td><img alt='{html.escape(ex['references'][0])}' "
            f"src='data:image/png;base64,{thumbnail(ex['image'])}'><br>"
            f"<small>{html.escape(ex['source'])}</small></td>"
            f"<td>{'<br>'.join(lines)}</td></tr>"
        )
    parts.append("</table>")
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=OUT / "captions.json")
    parser.add_argument("--html", type=Path, default=OUT / "captions.html")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    pairs = caption_pairs()
    train_texts = list(pairs["text"][pairs["split"] == "train"])
    val, test = split_rows(pairs, "val"), split_rows(pairs, "test")
    log(f"validation ({len(val)} images; bank of training captions only):")
    val_systems = systems(train_texts, pairs[pairs["split"] == "train"])
    val_results, _ = evaluate(val, val_systems)
    log("clothing validation photos (out of domain):")
    val_photos = clothing_photos(val_systems, "validation")
    log(f"test ({len(test)} images; the shipped bank):")
    test_systems = systems(train_texts, None)
    test_results, test_captions = evaluate(test, test_systems)
    log("clothing test photos (out of domain):")
    photos = clothing_photos(test_systems, "test")
    shown = examples(test, test_captions)
    chosen = {kind: best(val_results, kind) for kind in ("retrieval", "decoder")}
    chosen["hybrid"] = choose_hybrid(val_results, val_photos)
    versus = {
        f"{a} minus {b}": paired_difference(test_results[chosen[a]], test_results[chosen[b]])
        for a, b in (("retrieval", "decoder"), ("hybrid", "decoder"), ("hybrid", "retrieval"))
    }
    report = {
        "validation": val_results,
        "test": test_results,
        "chosen_on_validation": chosen,
        "test_paired_differences": versus,
        "clothing_validation_photos": val_photos,
        "clothing_test_photos": photos,
        "examples": shown,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    args.html.parent.mkdir(parents=True, exist_ok=True)
    write_html(args.html, shown, test_results)
    print(f"\nValidation ({len(val)} images)\n\n{table(val_results)}")
    print(f"\nTest ({len(test)} images)\n\n{table(test_results)}")
    if photos is not None:
        print("\nClothing photos: captions that name the garment\n")
        print("| captioner | share [95% CI] |\n|---|---|")
        print("\n".join(f"| {n} | {r['ci']} |" for n, r in photos.items()))
    print(f"\nchosen on validation: {chosen}")
    print(f"test CIDEr-D differences (paired bootstrap 95% CI): {versus}")
    print(f"\nwrote {args.json} and {args.html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
