"""Search over the clothing photos: text queries, photo queries, composed queries, indexing cost.

    .venv/bin/python benchmarks/search_clothing.py                  # ~3-5 min on 2 busy cores
    .venv/bin/python benchmarks/search_clothing.py --json out/search_clothing.json

1. Indexing: ``polymodal index`` as a process on the *test* split (372 photos) with an empty
   embedding cache (cold), again with nothing changed, and on all 3,781 photos (train + test)
   through the user's cache; wall time, files per second and the process's peak RSS.
2. The space is chosen on the *train* split (3,068 photos): the shipped image-text alignment as
   it embeds (its trained head mixed 0.5/0.5 with ConSE, the mix its zero-shot was tuned with),
   its trained head alone, and ConSE alone.
3. Text queries "a dress", "a hat", ... through ``SearchEngine.search``: precision@10 per class,
   on the test-split store and on the full store, with the alternatives scored alongside.
4. Photo queries: 100 test photos (seed 0), each searching the test-split store; precision@10
   of same-class photos, the query itself excluded. Reference: cosine of the raw
   EfficientNet-Lite0 vectors (no alignment), over the same photos.
5. Composed queries (photo + text). The classes are the only labels, so two tasks are scored:
   *refine* (a photo plus its own class name: same-class photos wanted) and *change* (a photo
   plus another class name: that class wanted). The text weight is chosen on the *train* split
   (300 train photos as queries, all train photos the collection) by refine P@10, and scored
   once on test with every test photo as a query.

The clothing data is read in place (read-only); the stores go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from polymodal.modality import Modality

REPO = Path(__file__).resolve().parents[1]
READABLE = {"longsleeve": "long sleeve top", "outwear": "outerwear"}
MASS_NOUNS = {"outerwear", "pants", "shoes", "shorts"}  # no article
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
SEED = 0


def shared_clothing() -> Path:
    env = os.environ.get("POLYMODAL_SHARED")
    base = Path(env) if env else REPO.parent / "shared" / "data"
    return base / "clothing"


def query_text(cls: str) -> str:
    """The class name as a person would type it: "a dress", "a hat", "pants", "outerwear"."""
    name = READABLE.get(cls, cls)
    if name in MASS_NOUNS:
        return name
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


# ---------------------------------------------------------------------- indexing as a process
def run_index(root: Path, db: Path, env: dict[str, str]) -> dict[str, Any]:
    """``polymodal index`` in a child process: wall seconds, peak RSS (MiB), its report."""
    cmd = [sys.executable, "-m", "polymodal", "index", str(root), "--db", str(db), "-q", "--json"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"indexing failed: {err.decode(errors='replace')[-2000:]}")
    report = json.loads(out)
    return {
        "files": report["files"],
        "added": report["added"],
        "seconds_wall": round(seconds, 1),
        "seconds_indexing": round(report["seconds"], 1),
        "files_per_s": round(report["files"] / max(report["seconds"], 1e-9), 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
    }


# ---------------------------------------------------------------------- evaluation helpers
def labels_of(paths: list[str]) -> np.ndarray:
    """The class of a stored path: its folder (``test/hat/x.jpg`` or ``hat/x.jpg``)."""
    return np.array([p.split("/")[-2] if "/" in p else "" for p in paths])


def stored(engine: Any) -> tuple[list[str], np.ndarray]:
    table = engine.store.table("image-text")
    data = table.search().select(["path", "vector"]).limit(None).to_arrow()
    paths = data.column("path").to_pylist()
    dim = engine.store.spaces["image-text"].dim
    flat = data.column("vector").combine_chunks().flatten().to_numpy()
    return paths, np.asarray(flat, np.float32).reshape(-1, dim)


SHIPPED = "shipped alignment: trained head + ConSE, 0.5 each"
TRAINED = "trained head alone"
CONSE = "ConSE alone"
RAW = "raw EfficientNet-Lite0 (no alignment)"


class Views:
    """The same photos under each candidate space: the shipped one and the alternatives.

    The shipped image-text alignment mixes its trained head with ConSE (the mix its zero-shot
    classification was tuned with); ``use_conse = False`` gives the trained head alone. The text
    side is the same in all three (a locked head on MiniLM).
    """

    def __init__(self, space: Any, paths: list[Path]) -> None:
        from polymodal.align.conse import ConSE
        from polymodal.align.model import embed_values

        self.space = space
        alignment = space.alignment
        mix = alignment.conse_mix(space.media_side) or {}
        self.conse = ConSE(
            space.encoder(space.media),
            space.encoder(Modality.TEXT),
            templates=tuple(mix.get("conse_templates") or ("{}",)),
            top_k=mix.get("conse_top_k"),
            cache=space.cache,
        )
        col, report = embed_values(
            space.encoder(space.media), [str(p) for p in paths], cache=space.cache
        )
        if report.skipped:
            raise SystemExit(f"unreadable photos: {report.skipped[:3]}")
        alignment.use_conse = False
        trained = alignment.embed(space.media_side, col.pooled)
        alignment.use_conse = True
        self.gallery = {
            SHIPPED: alignment.embed(space.media_side, col.pooled),
            TRAINED: trained,
            CONSE: self.conse.embed("a", col.pooled),
            RAW: unit(col.pooled),
        }

    def text(self, query: str) -> dict[str, np.ndarray]:
        shared = self.space.embed_texts([query])
        return {SHIPPED: shared, TRAINED: shared, CONSE: self.conse.encode_values("b", [query])}


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True).clip(min=1e-12)).astype(np.float32)


def precision_at(scores: np.ndarray, labels: np.ndarray, want: str, k: int = 10) -> float:
    top = np.argsort(-scores, kind="stable")[:k]
    return float((labels[top] == want).mean())


def text_precision(views: Views, labels: np.ndarray, classes: list[str]) -> dict[str, dict]:
    rows: dict[str, dict[str, float]] = {name: {} for name in (SHIPPED, TRAINED, CONSE)}
    for cls in classes:
        for name, q in views.text(query_text(cls)).items():
            rows[name][cls] = precision_at(views.gallery[name] @ q[0], labels, cls)
    return rows


def photo_precision(views: Views, labels: np.ndarray, picks: np.ndarray) -> dict[str, float]:
    out = {}
    for name, mat in views.gallery.items():
        ps = []
        for i in picks:
            s = mat @ mat[i]
            s[i] = -np.inf
            ps.append(precision_at(s, labels, labels[i]))
        out[name] = float(np.mean(ps))
    return out


# ---------------------------------------------------------------------- the benchmark
def photos_in(engine: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Stored photo paths, their vectors and classes (the README is indexed too: left out)."""
    paths, vectors = stored(engine)
    labels = labels_of(paths)
    keep = labels != ""
    return [p for p, k in zip(paths, keep, strict=True) if k], vectors[keep], labels[keep]


def choose_on_train(space: Any, train_root: Path, classes: list[str], n: int) -> dict[str, Any]:
    """The candidate spaces scored on the train split: the choice is made here, not on test."""
    paths = sorted(p for p in train_root.glob("*/*") if p.is_file())
    labels = labels_of([str(p) for p in paths])
    views = Views(space, paths)
    text = text_precision(views, labels, classes)
    picks = np.random.default_rng(SEED).choice(
        len(paths), size=min(3 * n, len(paths)), replace=False
    )
    return {
        "text_mean_p@10": {name: float(np.mean(list(r.values()))) for name, r in text.items()},
        "photo_mean_p@10": photo_precision(views, labels, picks),
        "photos": len(paths),
        "photo_queries": len(picks),
    }


def text_queries(engine: Any, classes: list[str]) -> dict[str, Any]:
    paths, vectors, labels = photos_in(engine)
    views = Views(engine.space("image-text"), [engine.root / p for p in paths])
    assert np.allclose(views.gallery[SHIPPED], vectors, atol=1e-5)
    rows = text_precision(views, labels, classes)
    latency = []
    for cls in classes:
        t0 = time.perf_counter()
        hits = engine.search(text=query_text(cls), k=10, modality="image")
        latency.append(time.perf_counter() - t0)
        engine_p = float(np.mean([h.path.split("/")[-2] == cls for h in hits]))
        assert abs(rows[SHIPPED][cls] - engine_p) < 1e-9, (cls, rows[SHIPPED][cls], engine_p)
    return {
        "queries": {c: query_text(c) for c in classes},
        "per_class": rows,
        "mean": {name: float(np.mean(list(r.values()))) for name, r in rows.items()},
        "per_class_count": {c: int((labels == c).sum()) for c in classes},
        "latency_ms_median": round(1000 * float(np.median(latency)), 1),
        "n_items": len(paths),
    }


def photo_queries(engine: Any, n: int) -> dict[str, Any]:
    paths, _, labels = photos_in(engine)
    picks = np.random.default_rng(SEED).choice(len(paths), size=min(n, len(paths)), replace=False)
    engine_p, latency = [], []
    for i in picks:
        t0 = time.perf_counter()
        hits = engine.search(image=engine.root / paths[i], k=11)
        latency.append(time.perf_counter() - t0)
        others = [h for h in hits if h.path != paths[i]][:10]
        engine_p.append(np.mean([h.path.split("/")[-2] == labels[i] for h in others]))
    views = Views(engine.space("image-text"), [engine.root / p for p in paths])
    return {
        "engine_mean_p@10": float(np.mean(engine_p)),
        "views": photo_precision(views, labels, picks),
        "queries": len(picks),
        "latency_ms_median": round(1000 * float(np.median(latency)), 1),
    }


def composed_scores(
    gallery: np.ndarray,
    labels: np.ndarray,
    photos: np.ndarray,
    photo_idx: np.ndarray,
    text_vecs: dict[str, np.ndarray],
    weight: float,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Mean P@10 of the refine and change tasks at one text weight."""
    from polymodal.search.query import compose

    classes = sorted(text_vecs)
    refine, change = [], []
    for j, i in enumerate(photo_idx):
        own = labels[i]
        other = classes[(classes.index(own) + 1 + rng.integers(len(classes) - 1)) % len(classes)]
        for target, bucket in ((own, refine), (other, change)):
            q = compose(photos[j], text_vecs[target], weight)
            s = gallery @ q
            s[i] = -np.inf
            bucket.append(precision_at(s, labels, target))
    return {"refine": float(np.mean(refine)), "change": float(np.mean(change))}


def composed(engine: Any, train_root: Path, n: int) -> dict[str, Any]:
    space = engine.space("image-text")
    classes = sorted({p.name for p in train_root.iterdir() if p.is_dir()})
    text_vecs = dict(zip(classes, space.embed_texts([query_text(c) for c in classes]), strict=True))
    # Choose the weight on train: train photos are the queries and the collection.
    train_paths = sorted(str(p) for p in train_root.glob("*/*") if p.is_file())
    out = space.embed_files([Path(p) for p in train_paths], space.media)
    train_vecs = out.vectors
    train_labels = labels_of([train_paths[i] for i in out.ok])
    rng = np.random.default_rng(SEED)
    pick = rng.choice(len(train_vecs), size=min(3 * n, len(train_vecs)), replace=False)
    by_weight = {}
    for w in WEIGHTS:
        r = composed_scores(
            train_vecs,
            train_labels,
            train_vecs[pick],
            pick,
            text_vecs,
            w,
            np.random.default_rng(SEED),
        )
        by_weight[w] = r
    # Refine is the task where the photo and the text both carry information (in change, the
    # class name alone says everything the labels can check): the weight is chosen on it.
    best = max(WEIGHTS, key=lambda w: (by_weight[w]["refine"], -w))
    # Score once on test, every test photo a query.
    paths, vectors = stored(engine)
    labels = labels_of(paths)
    every = np.arange(len(paths))
    test = {}
    for name, w in (("photo only", 0.0), ("text only", 1.0), (f"weighted, w={best}", best)):
        test[name] = composed_scores(
            vectors, labels, vectors, every, text_vecs, w, np.random.default_rng(SEED)
        )
    return {
        "train_by_weight": by_weight,
        "chosen_weight": best,
        "test": test,
        "train_queries": len(pick),
        "test_queries": len(every),
    }


def composed_example(engine: Any, weight: float) -> dict[str, Any]:
    query = engine.root / "dress" / sorted(os.listdir(engine.root / "dress"))[0]
    hits = engine.search(image=query, text="a skirt", weight=weight, k=5)
    photo = engine.search(image=query, k=6)
    return {
        "query": f"{query.relative_to(engine.root)} + 'a skirt' (weight {weight})",
        "results": [(h.path, round(h.score, 3)) for h in hits],
        "photo_only": [(h.path, round(h.score, 3)) for h in photo[1:6]],
    }


def markdown(r: dict[str, Any]) -> str:
    """The results as the tables of BENCHMARKS.md's Search section."""
    out = []
    idx = [("test split (372 photos), empty embedding cache", "index_test_cold")]
    idx += [("test split again, nothing changed", "index_test_again")]
    if "index_full_user_cache" in r:
        idx += [
            ("all of clothing (3,781 photos + README), warm user cache", "index_full_user_cache")
        ]
    out += ["| indexing run | files | wall s (process) | indexing s | files/s | peak RSS MiB |"]
    out += ["|---|---|---|---|---|---|"]
    for name, key in idx:
        x = r[key]
        out += [
            f"| {name} | {x['files']} | {x['seconds_wall']} | {x['seconds_indexing']} | "
            f"{x['files_per_s']} | {x['peak_rss_mib']} |"
        ]
    choice = r["choice_on_train"]
    out += ["", f"Space chosen on train ({choice['photos']} photos):", ""]
    out += ["| space | text P@10 (10 queries) | photo P@10 (300 queries) |", "|---|---|---|"]
    for name, p in choice["photo_mean_p@10"].items():
        t = choice["text_mean_p@10"].get(name)
        out += [f"| {name} | {'—' if t is None else f'{t:.2f}'} | {p:.3f} |"]
    for key, title in (("text_test", "test split, 372 photos"), ("text_full", "all 3,781 photos")):
        if key not in r:
            continue
        t = r[key]
        classes = list(t["queries"])
        out += [
            "",
            f"Text queries, precision@10 ({title}; median latency {t['latency_ms_median']} ms):",
        ]
        out += [
            "",
            "| space | " + " | ".join(f'"{t["queries"][c]}"' for c in classes) + " | mean |",
        ]
        out += ["|---" * (len(classes) + 2) + "|"]
        for name, row in t["per_class"].items():
            cells = " | ".join(f"{row[c]:.1f}" for c in classes)
            out += [f"| {name} | {cells} | **{t['mean'][name]:.2f}** |"]
    ph = r["photo_test"]
    out += [
        "",
        f"Photo queries ({ph['queries']} test photos; "
        f"median latency {ph['latency_ms_median']} ms):",
    ]
    out += ["", "| vectors | same-class precision@10 |", "|---|---|"]
    for name, p in ph["views"].items():
        out += [f"| {name} | {p:.3f} |"]
    c = r["composed"]
    out += ["", f"Composed queries, test split ({c['test_queries']} queries per task):", ""]
    out += ["| query | refine P@10 | change P@10 |", "|---|---|---|"]
    for name, x in c["test"].items():
        out += [f"| {name} | {x['refine']:.3f} | {x['change']:.3f} |"]
    out += ["", "Text weight on train (refine / change P@10):", ""]
    out += ["| w | " + " | ".join(str(w) for w in c["train_by_weight"]) + " |"]
    out += ["|---" * (len(c["train_by_weight"]) + 1) + "|"]
    for task in ("refine", "change"):
        vals = " | ".join(f"{x[task]:.2f}" for x in c["train_by_weight"].values())
        out += [f"| {task} | {vals} |"]
    ex = r["composed_example"]
    out += ["", f"Example: {ex['query']}", ""]
    out += ["| rank | composed result (cosine) | photo alone (cosine) |", "|---|---|---|"]
    for i, (a, b) in enumerate(zip(ex["results"], ex["photo_only"], strict=False), 1):
        out += [f"| {i} | {a[0]} ({a[1]}) | {b[0]} ({b[1]}) |"]
    return "\n".join(out)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=shared_clothing())
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--skip-full", action="store_true", help="Do not index all 3,781 photos.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (args.data / "test").is_dir():
        print(f"clothing data not found at {args.data}", file=sys.stderr)
        return 1
    import torch

    torch.set_num_threads(2)
    from polymodal.search import SearchEngine

    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="polymodal-search-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "POLYMODAL_HOME": str(work / "cold-home")}
        log("indexing the test split, cold cache")
        results["index_test_cold"] = run_index(args.data / "test", work / "test-db", env)
        results["index_test_again"] = run_index(args.data / "test", work / "test-db", env)
        if not args.skip_full:
            results["index_full_user_cache"] = run_index(
                args.data, work / "full-db", dict(os.environ)
            )
        log(f"indexed: {results}")
        engine = SearchEngine.open(work / "test-db")
        classes = sorted(p.name for p in (args.data / "test").iterdir() if p.is_dir())
        log("choosing the space on train")
        results["choice_on_train"] = choose_on_train(
            engine.space("image-text"), args.data / "train", classes, args.queries
        )
        log("text queries")
        results["text_test"] = text_queries(engine, classes)
        if not args.skip_full:
            results["text_full"] = text_queries(SearchEngine.open(work / "full-db"), classes)
        log("photo queries")
        results["photo_test"] = photo_queries(engine, args.queries)
        log("composed queries")
        results["composed"] = composed(engine, args.data / "train", args.queries)
        results["composed_example"] = composed_example(engine, results["composed"]["chosen_weight"])
    print(json.dumps(results, indent=2, default=str))
    print(markdown(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
