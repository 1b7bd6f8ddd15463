"""``Predictor``: a multi-modal classifier or regressor, scikit-learn style.

``__init__`` only stores its parameters; ``fit`` learns everything else (attributes ending in
``_``). The pipeline: load the table, validate the label, detect each column's modality, embed
text and media columns with frozen encoders through the embedding cache (or decode them when
encoders are fine-tuned), fit the tabular preprocessor on the training rows, then train one
fusion network (or, with ``fusion="auto"``, every candidate) and keep the best on validation.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import polymodal
from polymodal.cache.embed import ColumnEmbeddings, EmbedReport, embed_table
from polymodal.cache.store import EmbeddingCache
from polymodal.data.schema import ColumnSpec, Schema, detect_schema
from polymodal.data.table import load_table
from polymodal.encoders.base import Encoder
from polymodal.encoders.tabular import TabularBatch, TabularPreprocessor
from polymodal.errors import ConfigError, InputError, SkippedRow
from polymodal.fusion.base import SlotSpec
from polymodal.modality import Modality
from polymodal.predict.auto import FUSION_KINDS, candidates, fit_candidates
from polymodal.predict.features import (
    FeatureSet,
    build_features,
    decode_column,
    longest_tokens,
    slot_groups,
)
from polymodal.predict.metrics import PRIMARY_METRIC
from polymodal.predict.network import PredictorNetwork, make_network
from polymodal.predict.problem import (
    MISSING_LABEL,
    Target,
    check_label_column,
    class_weights,
    prepare_target,
    stratified_split,
)
from polymodal.predict.train import network_outputs, score_outputs, softmax, train_network

FORMAT_VERSION = 1
FUSIONS = ("auto", *FUSION_KINDS)
TOKEN_MODES = ("pooled", "sequence")
TABULAR_SLOT = "tabular"
# A text/media column's model input: cached embeddings, or decoded inputs and presence when the
# encoder is fine-tuned.
MediaInput = ColumnEmbeddings | tuple[list[Any], np.ndarray]
_TABULAR_WIDTH = 64  # FT-Transformer token width; the tabular slot rarely needs more


class Predictor:
    """Predict ``label`` from every other column of a table: text, images, audio, numbers.

    ``fusion``: "early", "late", "hybrid", or "auto" (each modality alone and every fusion,
    the best on validation kept). ``problem``: "binary", "multiclass" or "regression", inferred
    from the label when None. ``columns`` forces a column's modality; ``exclude`` leaves columns
    out; ``encoders`` maps a modality ("text", "image", "audio", "video") to an encoder name,
    folder or :class:`~polymodal.encoders.base.Encoder`. ``tokens="sequence"`` gives hybrid
    fusion every encoder token state (pooled down to ``max_tokens``) instead of one pooled
    vector per column. ``fine_tune_blocks=k`` trains the last k blocks of each encoder (slow on
    CPU: for small data). ``log_target``: regress on log(label); None chooses it for positive,
    right-skewed labels. ``class_weight="balanced"`` weighs classes inversely to their counts.
    """

    def __init__(
        self,
        label: str,
        *,
        fusion: str = "auto",
        problem: str | None = None,
        columns: Mapping[str, str] | None = None,
        exclude: Sequence[str] = (),
        encoders: Mapping[str, str | Encoder] | None = None,
        hidden: int = 256,
        depth: int = 2,
        epochs: int = 200,
        patience: int = 10,
        lr: float = 1e-3,
        batch_size: int = 256,
        modality_dropout: float = 0.2,
        seed: int = 0,
        val_fraction: float = 0.2,
        fine_tune_blocks: int = 0,
        cache_dir: str | None = None,
        progress: bool = True,
        tokens: str = "pooled",
        max_tokens: int = 16,
        dropout: float = 0.1,
        weight_decay: float = 1e-4,
        log_target: bool | None = None,
        class_weight: str | None = "balanced",
    ) -> None:
        self.label = label
        self.fusion = fusion
        self.problem = problem
        self.columns = columns
        self.exclude = exclude
        self.encoders = encoders
        self.hidden = hidden
        self.depth = depth
        self.epochs = epochs
        self.patience = patience
        self.lr = lr
        self.batch_size = batch_size
        self.modality_dropout = modality_dropout
        self.seed = seed
        self.val_fraction = val_fraction
        self.fine_tune_blocks = fine_tune_blocks
        self.cache_dir = cache_dir
        self.progress = progress
        self.tokens = tokens
        self.max_tokens = max_tokens
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.log_target = log_target
        self.class_weight = class_weight

    # ------------------------------------------------------------------------- parameters
    _PARAMS = (
        *("label", "fusion", "problem", "columns", "exclude", "encoders", "hidden", "depth"),
        *("epochs", "patience", "lr", "batch_size", "modality_dropout", "seed", "val_fraction"),
        *("fine_tune_blocks", "cache_dir", "progress", "tokens", "max_tokens", "dropout"),
        *("weight_decay", "log_target", "class_weight"),
    )

    def get_params(self) -> dict[str, Any]:
        """Every constructor parameter, JSON-friendly (encoder objects become their names)."""
        params = {name: getattr(self, name) for name in self._PARAMS}
        params["columns"] = dict(self.columns or {})
        params["exclude"] = list(self.exclude)
        params["encoders"] = {
            str(m): (e.info.name if isinstance(e, Encoder) else str(e))
            for m, e in (self.encoders or {}).items()
        }
        return params

    def __repr__(self) -> str:
        return f"Predictor(label={self.label!r}, fusion={self.fusion!r})"

    def _check_params(self) -> None:
        if self.fusion not in FUSIONS:
            raise ConfigError(f"fusion {self.fusion!r} is not one of {', '.join(FUSIONS)}")
        if self.tokens not in TOKEN_MODES:
            raise ConfigError(f"tokens {self.tokens!r} is not one of {', '.join(TOKEN_MODES)}")
        if self.class_weight not in (None, "balanced"):
            raise ConfigError("class_weight must be 'balanced' or None")
        for name in ("epochs", "patience", "batch_size", "hidden", "depth", "max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.fine_tune_blocks < 0:
            raise ConfigError("fine_tune_blocks must be >= 0")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ConfigError("modality_dropout must be in [0, 1)")

    # ------------------------------------------------------------------------------- fit
    def fit(
        self,
        train: str | Path | pd.DataFrame,
        val: str | Path | pd.DataFrame | None = None,
        *,
        test: str | Path | pd.DataFrame | None = None,
        base: str | Path | None = None,
    ) -> Predictor:
        """Learn from ``train``; validate on ``val`` (default: a stratified ``val_fraction`` of
        ``train``). ``test``, when given, is scored by every candidate for the leaderboard only.
        ``base`` is where relative paths start (default: each table's folder).
        """
        self._check_params()
        start = time.perf_counter()
        data, data_base = _load(train, base)
        prepared = prepare_target(
            data,
            self.label,
            problem=self.problem,
            log_target=self.log_target,
            stratify=val is None,
        )
        target = prepared.target
        frame = data.iloc[prepared.rows].reset_index(drop=True)
        schema = detect_schema(
            frame,
            base=data_base,
            overrides=dict(self.columns or {}),
            exclude=[self.label, *self.exclude],
        )
        self.notes_: list[str] = list(prepared.notes)
        self.notes_ += [
            f"column {n!r} not used: {r}" for n, r in schema.excluded if r != "excluded"
        ]
        self.skipped_: list[SkippedRow] = list(prepared.skipped)
        self.target_ = target
        self.problem_ = target.problem
        self.classes_ = target.labels(np.arange(len(target.classes))) if target.classes else None
        self.encoders_ = self._resolve_encoders(schema)

        if val is None:
            tr, va = stratified_split(
                prepared.y, self.val_fraction, self.seed, classification=target.is_classification
            )
        else:
            tr, va = np.arange(len(frame)), None
        media, report = self._media_inputs(frame, data_base, schema.columns, rows=prepared.rows)
        self.embed_report_ = report
        self.skipped_ += report.skipped
        self.notes_ += report.notes
        schema = self._drop_unusable(schema, frame.iloc[tr], media, tr)
        self.schema_ = schema
        self.slots_, self.slot_columns_, self.tabular_slot_ = self._make_slots(schema, media)
        self.tabular_ = self._fit_tabular(schema, frame.iloc[tr], prepared.rows[tr])
        full = self._build(frame, media, prepared.y, rows=prepared.rows)
        if full.tabular is not None:
            self.notes_ += full.tabular.notes
        train_fs = full.take(tr)
        if va is not None:
            val_fs = full.take(va)
        else:
            val_fs = self._extra_table(val, base, what="validation")
        test_fs = self._extra_table(test, base, what="test") if test is not None else None
        self._fit_networks(train_fs, val_fs, test_fs)
        self._val_features = val_fs  # kept in memory for report(); never saved
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _fit_networks(
        self, train_fs: FeatureSet, val_fs: FeatureSet, test_fs: FeatureSet | None
    ) -> None:
        target = self.target_
        weights = None
        if target.is_classification and self.class_weight == "balanced":
            assert train_fs.y is not None
            weights = class_weights(train_fs.y, target.n_outputs)
        groups = slot_groups(self.slots_)
        train_t, val_t = train_fs.tensors(), val_fs.tensors()

        def build(cand: Any) -> PredictorNetwork:
            return self._network(cand.kind, cand.slots)

        def train_one(network: PredictorNetwork, name: str) -> Any:
            return train_network(
                network,
                train_t,
                val_t,
                target=target,
                groups=groups,
                epochs=self.epochs,
                patience=self.patience,
                lr=self.lr,
                weight_decay=self.weight_decay,
                batch_size=self.batch_size,
                modality_dropout=self.modality_dropout,
                class_weight=weights,
                seed=self.seed,
                progress=self.progress,
                desc=f"fit {name}",
            )

        best, board = fit_candidates(
            candidates(self.fusion, self.slots_),
            build,
            train_one,
            target=target,
            seed=self.seed,
            test=None if test_fs is None else test_fs.tensors(),
        )
        self.network_ = best.network
        self.fusion_ = best.candidate.kind
        self.candidate_ = best.candidate.name
        self.slots_ = list(best.candidate.slots)
        self.slot_columns_ = {
            s: c for s, c in self.slot_columns_.items() if s in self.network_.specs
        }
        if self.tabular_slot_ not in self.network_.specs:
            self.tabular_slot_ = None
        self.groups_ = slot_groups(self.slots_)
        self.leaderboard_ = board
        self.val_metrics_ = dict(best.result.val_metrics)
        self.history_ = best.result.history

    def _network(self, kind: str, slots: Sequence[SlotSpec]) -> PredictorNetwork:
        fine_tune = None
        if self.fine_tune_blocks > 0:
            fine_tune = {
                s.name: self.encoders_[s.modality] for s in slots if s.name in self.slot_columns_
            }
        return make_network(
            kind,
            slots,
            n_outputs=self.target_.n_outputs,
            hidden=self.hidden,
            depth=self.depth,
            dropout=self.dropout,
            tokens=self.tokens,
            max_tokens=self.max_tokens,
            tabular=self.tabular_,
            tabular_slot=self.tabular_slot_,
            fine_tune=fine_tune,
            fine_tune_blocks=self.fine_tune_blocks,
        )

    # --------------------------------------------------------------------- fit internals
    def _embedding_cache(self) -> EmbeddingCache:
        if getattr(self, "_cache", None) is None:
            folder = self.cache_dir
            self._cache = EmbeddingCache(Path(folder) / "embeddings.sqlite3" if folder else None)
        return self._cache

    def _resolve_encoders(self, schema: Schema) -> dict[Modality, Encoder]:
        from polymodal.encoders.registry import build_encoder, default_encoder_name

        given: dict[Modality, str | Encoder] = {}
        for key, choice in (self.encoders or {}).items():
            try:
                given[Modality(str(key).lower())] = choice
            except ValueError:
                names = ", ".join(m.value for m in Modality if not m.is_tabular)
                raise ConfigError(f"encoders: {key!r} is not a modality; use {names}") from None
        out: dict[Modality, Encoder] = {}
        for modality in schema.modalities:
            if modality.is_tabular:
                continue
            choice = given.get(modality) or default_encoder_name(modality)
            encoder = (
                build_encoder(choice, modality=modality)
                if not isinstance(choice, Encoder)
                else choice
            )
            if encoder.info.modality != modality:
                raise ConfigError(
                    f"encoder {encoder.info.name!r} encodes {encoder.info.modality}, not {modality}"
                )
            out[modality] = encoder
        return out

    def _needs_tokens(self) -> bool:
        return self.tokens == "sequence" and self.fusion in ("hybrid", "auto")

    def _media_inputs(
        self,
        frame: pd.DataFrame,
        base: Path | None,
        specs: Sequence[ColumnSpec],
        *,
        rows: np.ndarray | None = None,
    ) -> tuple[dict[str, MediaInput], EmbedReport]:
        """Embeddings (frozen) or decoded inputs (fine-tuning) of the text/media ``specs``.

        Cells that cannot be used are absent in the features and listed in the report's
        ``skipped``, with their row in the original table (``rows`` maps frame positions back).
        """
        specs = [c for c in specs if not c.modality.is_tabular]
        report = EmbedReport(rows=len(frame))
        if not specs:
            return {}, report
        original = rows if rows is not None else np.arange(len(frame))
        out: dict[str, MediaInput] = {}
        if self.fine_tune_blocks > 0:
            for spec in specs:
                items, present, skipped = decode_column(
                    frame[spec.name], spec.name, self.encoders_[spec.modality], base=base
                )
                out[spec.name] = (items, present)
                report.skipped += skipped
                report.missing[spec.name] = int((~present).sum()) - len(skipped)
        else:
            embedded = embed_table(
                frame,
                Schema(tuple(specs)),
                base=base,
                encoders=self.encoders_,
                cache=self._embedding_cache(),
                tokens=self._needs_tokens(),
                progress=self.progress,
            )
            report = embedded.report
            out.update(embedded.columns)
        report.skipped = [_remap(s, original) for s in report.skipped]
        return out, report

    def _drop_unusable(
        self,
        schema: Schema,
        train_frame: pd.DataFrame,
        media: Mapping[str, MediaInput],
        train_rows: np.ndarray,
    ) -> Schema:
        """Leave out columns with no usable value in any training row, with a note."""
        kept: list[ColumnSpec] = []
        for spec in schema.columns:
            if spec.modality.is_tabular:
                usable = _tabular_has_values(train_frame[spec.name], spec.modality)
            else:
                item = media[spec.name]
                present = item.present if isinstance(item, ColumnEmbeddings) else item[1]
                usable = bool(present[train_rows].any())
            if usable:
                kept.append(spec)
            else:
                self.notes_.append(
                    f"column {spec.name!r} not used: no usable value in any training row"
                )
        if not kept:
            raise ConfigError(
                "no input column has a usable value in the training rows; see the notes: "
                + "; ".join(self.notes_[-5:])
            )
        return Schema(tuple(kept), schema.excluded)

    def _make_slots(
        self,
        schema: Schema,
        media: Mapping[str, MediaInput],
    ) -> tuple[list[SlotSpec], dict[str, str], str | None]:
        slots: list[SlotSpec] = []
        columns: dict[str, str] = {}
        for spec in schema.columns:
            if spec.modality.is_tabular:
                continue
            info = self.encoders_[spec.modality].info
            n_tokens = 1
            if self._needs_tokens():
                item = media[spec.name]
                longest = longest_tokens(item) if isinstance(item, ColumnEmbeddings) else 10**9
                n_tokens = min(self.max_tokens, longest)
            slots.append(SlotSpec(spec.name, spec.modality, info.width, info.token_width, n_tokens))
            columns[spec.name] = spec.name
        tabular = [c for c in schema.columns if c.modality.is_tabular]
        tabular_slot = None
        if tabular:
            tabular_slot = TABULAR_SLOT
            while tabular_slot in columns:
                tabular_slot += "_"
            modality = tabular[0].modality
            n_tokens = len(tabular) if self.tokens == "sequence" and len(tabular) > 1 else 1
            width = min(self.hidden, _TABULAR_WIDTH)
            slots.append(SlotSpec(tabular_slot, modality, width, width, n_tokens))
        return slots, columns, tabular_slot

    def _fit_tabular(
        self, schema: Schema, train_frame: pd.DataFrame, rows: np.ndarray
    ) -> TabularPreprocessor | None:
        numeric = schema.names(Modality.NUMERIC)
        categorical = schema.names(Modality.CATEGORICAL)
        if not numeric and not categorical:
            return None
        try:
            pre = TabularPreprocessor(numeric, categorical).fit(train_frame.reset_index(drop=True))
        except InputError as err:
            raise err if err.row is None else err.at(row=int(rows[err.row])) from None
        self.notes_ += pre.fit_notes_
        return pre

    def _build(
        self,
        frame: pd.DataFrame,
        media: Mapping[str, MediaInput],
        y: np.ndarray | None,
        *,
        rows: np.ndarray | None = None,
    ) -> FeatureSet:
        """Features of ``frame``; ``rows`` maps its positions to the user's table for errors."""
        embedded = {c: m for c, m in media.items() if isinstance(m, ColumnEmbeddings)}
        decoded = {c: m for c, m in media.items() if not isinstance(m, ColumnEmbeddings)}
        return build_features(
            self.slots_,
            len(frame),
            columns=self.slot_columns_,
            embedded=embedded,
            decoded=decoded,
            tabular=self._tabular_batch(frame, rows),
            tabular_slot=self.tabular_slot_,
            y=y,
        )

    def _tabular_batch(
        self, frame: pd.DataFrame, rows: np.ndarray | None = None
    ) -> TabularBatch | None:
        pre = getattr(self, "tabular_", None)
        if pre is None or self.tabular_slot_ is None:
            return None
        wanted = [*pre.numeric, *pre.categorical]
        absent = [c for c in wanted if c not in frame.columns]
        if absent:
            # A column the data lacks is missing in every row: the tabular module's learned
            # missing tokens stand in for it.
            frame = frame.assign(**{c: np.nan for c in absent})
        try:
            return pre.transform(frame[wanted])
        except InputError as err:
            if rows is None or err.row is None:
                raise
            raise err.at(row=int(rows[err.row])) from None

    # -------------------------------------------------------------------------- features
    def features(
        self, data: str | Path | pd.DataFrame, *, base: str | Path | None = None
    ) -> FeatureSet:
        """The model's inputs for ``data``: any subset of the training columns works (a column
        the data lacks is absent in every row; extra columns are ignored). What was noticed
        (missing columns, unseen categories, skipped cells) is in ``last_report_``.
        """
        self._check_fitted()
        frame, data_base = _load(data, base)
        return self._features(frame, data_base)

    def _features(
        self,
        frame: pd.DataFrame,
        base: Path | None,
        y: np.ndarray | None = None,
        *,
        rows: np.ndarray | None = None,
    ) -> FeatureSet:
        notes: list[str] = []
        needed = [*self.slot_columns_.values()]
        if self.tabular_ is not None and self.tabular_slot_ is not None:
            needed += [*self.tabular_.numeric, *self.tabular_.categorical]
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            notes.append(
                "columns not in the data, treated as missing in every row: "
                + ", ".join(map(repr, absent))
            )
        unused = [c for c in frame.columns if c not in needed and c != self.label]
        if unused:
            notes.append("columns the model does not use: " + ", ".join(map(repr, unused)))
        specs = [
            ColumnSpec(c, self.schema_.modality(c), "saved")
            for c in self.slot_columns_.values()
            if c in frame.columns
        ]
        self._encoders_for_predict()
        media, report = self._media_inputs(frame, base, specs, rows=rows)
        fs = self._build(frame, media, y, rows=rows)
        report.notes = notes + report.notes + (fs.tabular.notes if fs.tabular is not None else [])
        self.last_report_ = report
        return fs

    def _extra_table(
        self, data: str | Path | pd.DataFrame, base: str | Path | None, *, what: str
    ) -> FeatureSet:
        """A validation or test table during fit: its notes and embedding counts join the fit's."""
        fs, notes = self._labelled_features(data, base, what=what)
        self.notes_ += notes
        _merge_reports(self.embed_report_, self.last_report_)
        return fs

    def _labelled_features(
        self, data: str | Path | pd.DataFrame, base: str | Path | None, *, what: str
    ) -> tuple[FeatureSet, list[str]]:
        """Features and encoded labels of the rows of ``data`` that have a label, and notes."""
        frame, data_base = _load(data, base)
        check_label_column(frame, self.label)
        labels = frame[self.label]
        has = labels.notna().to_numpy() & (labels.astype(str).str.strip() != "").to_numpy()
        notes = []
        if not has.all():
            notes.append(f"{what} data: {int((~has).sum()):,} rows dropped: {MISSING_LABEL}")
        frame = frame.loc[has].reset_index(drop=True)
        if frame.empty:
            raise ConfigError(f"the {what} data has no row with a label")
        fs = self._features(
            frame, data_base, self.target_.encode(frame[self.label]), rows=np.flatnonzero(has)
        )
        notes += [f"{what} data: {n}" for n in self.last_report_.notes]
        self.last_report_.notes = notes
        return fs, notes

    # ------------------------------------------------------------------------ prediction
    def outputs(
        self, features: FeatureSet, keep: Mapping[str, bool | torch.Tensor] | None = None
    ) -> np.ndarray:
        """Raw network outputs (N, n_outputs): logits, or standardised regression predictions.

        ``keep`` forces slots absent (False, or a (N,) bool tensor False in some rows).
        """
        self._check_fitted()
        return network_outputs(self.network_, features.tensors(), keep)

    def predict_proba(
        self, data: str | Path | pd.DataFrame, *, base: str | Path | None = None
    ) -> np.ndarray:
        """Class probabilities (N, K), columns in the order of ``classes_``."""
        self._check_fitted()
        if not self.target_.is_classification:
            raise ConfigError("predict_proba is for classification; this model does regression")
        return softmax(self.outputs(self.features(data, base=base)))

    def predict(
        self, data: str | Path | pd.DataFrame, *, base: str | Path | None = None
    ) -> np.ndarray:
        """Predicted labels (classification) or values (regression), one per row."""
        return self.predictions_from(self.outputs(self.features(data, base=base)))

    def predictions_from(self, outputs: np.ndarray) -> np.ndarray:
        """Raw outputs -> labels or values on the label's scale."""
        if self.target_.is_classification:
            return self.target_.labels(outputs.argmax(axis=1))
        return self.target_.decode_regression(outputs[:, 0])

    def evaluate(
        self, data: str | Path | pd.DataFrame, *, base: str | Path | None = None
    ) -> dict[str, float]:
        """Metrics on labelled ``data`` (rows without a label are left out): accuracy, balanced
        accuracy, macro-F1, AUROC, log-loss; or MAE, RMSE, MAPE (a fraction), R2.
        """
        self._check_fitted()
        fs, _ = self._labelled_features(data, base, what="evaluation")
        assert fs.y is not None
        return score_outputs(self.target_, fs.y, self.outputs(fs))

    def explain(
        self, data: str | Path | pd.DataFrame, *, base: str | Path | None = None
    ) -> pd.DataFrame:
        """Per row, each modality group's Shapley contribution to the prediction (columns
        ``attr.<group>`` and ``attr.base``; see :mod:`polymodal.predict.attribution`).
        """
        return self.explain_features(self.features(data, base=base))

    def explain_features(self, features: FeatureSet) -> pd.DataFrame:
        """:meth:`explain` for already computed features."""
        from polymodal.predict.attribution import modality_attributions

        self._check_fitted()
        x = features.tensors()

        def forward(keep: dict[str, bool]) -> np.ndarray:
            out = network_outputs(self.network_, x, keep)
            if self.target_.is_classification:
                return torch.log_softmax(torch.from_numpy(out).double(), dim=1).numpy()
            return self.target_.decode_regression(out[:, 0])

        return modality_attributions(forward, self.groups_, problem=self.problem_, seed=self.seed)

    def report(
        self,
        path: str | Path,
        data: str | Path | pd.DataFrame | None = None,
        *,
        base: str | Path | None = None,
        title: str | None = None,
    ) -> Path:
        """Write a self-contained HTML report: the leaderboard, the robustness of the kept model
        to each missing modality, attributions, and the confusion matrix or residuals, computed
        on labelled ``data`` (test data) or, right after :meth:`fit`, on the validation rows.
        """
        from polymodal.predict.report import write_report
        from polymodal.predict.robustness import robustness_curve

        self._check_fitted()
        notes = list(self.notes_)
        if data is not None:
            fs, data_notes = self._labelled_features(data, base, what="report")
            notes += data_notes
        elif getattr(self, "_val_features", None) is not None:
            fs = self._val_features
        else:
            raise ConfigError("a loaded model needs labelled data to report on")
        assert fs.y is not None
        x, y, target = fs.tensors(), fs.y, self.target_
        metric = PRIMARY_METRIC[target.problem][0]
        outputs = network_outputs(self.network_, x)

        def score(drop: dict[str, np.ndarray]) -> float:
            keep = {
                slot: torch.from_numpy(~drop[g])
                for g, slots in self.groups_.items()
                for slot in slots
            }
            return score_outputs(target, y, network_outputs(self.network_, x, keep))[metric]

        present = {
            g: np.any([fs.present(s) for s in slots], axis=0) for g, slots in self.groups_.items()
        }
        curve = robustness_curve(
            score, list(self.groups_), len(fs), seed=self.seed, present=present
        )
        attributions = self.explain_features(fs)
        predicted = self.predictions_from(outputs)
        attributions["predicted"] = predicted
        confusion = residuals = None
        if target.is_classification:
            k = target.n_outputs
            counts = np.zeros((k, k), dtype=np.int64)
            np.add.at(counts, (y, outputs.argmax(axis=1)), 1)
            confusion = (list(target.classes), counts)
        else:
            residuals = (target.decode_regression(y), predicted)
        board = [
            {
                "model": row["candidate"],
                "kind": "single" if row["candidate"].endswith(" only") else "fusion",
                "val": row["val_score"],
                "test": row.get("test_score"),
                "metric": row["metric"],
                "chosen": row["chosen"],
                "seconds": row["fit_seconds"],
            }
            for row in self.leaderboard_
        ]
        return write_report(
            path,
            title=title or f"polymodal: predicting {self.label!r}",
            problem=target.problem,
            leaderboard=board,
            test_scores=score_outputs(target, y, outputs) if data is not None else None,
            robustness=curve,
            attributions=attributions,
            confusion=confusion,
            residuals=residuals,
            notes=notes,
            skipped=self.skipped_,
        )

    # ---------------------------------------------------------------------- save / load
    def save(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``tabular.json`` into ``directory``,
        replacing a previously saved model there; a crash leaves the old model or the new one.
        """
        from safetensors.torch import save_model

        self._check_fitted()
        target = Path(directory).expanduser()
        if target.exists() and any(target.iterdir()) and not (target / "config.json").exists():
            raise ConfigError(f"{target} exists and is not a saved model; refusing to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            (tmp / "config.json").write_text(json.dumps(_json_safe(self._config()), indent=2))
            save_model(self.network_, str(tmp / "model.safetensors"))
            tabular = None if self.tabular_ is None else self.tabular_.to_dict()
            (tmp / "tabular.json").write_text(json.dumps(tabular, indent=2))
            _replace_dir(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def _config(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "polymodal_version": polymodal.__version__,
            "params": self.get_params(),
            "target": self.target_.to_dict(),
            "schema": self.schema_.to_dict(),
            "slots": [{**asdict(s), "modality": str(s.modality)} for s in self.slots_],
            "slot_columns": self.slot_columns_,
            "tabular_slot": self.tabular_slot_,
            "fusion": self.fusion_,
            "candidate": self.candidate_,
            "encoders": {
                str(m): _encoder_entry(e)
                for m, e in self.encoders_.items()
                if m in {self.schema_.modality(c) for c in self.slot_columns_.values()}
            },
            "leaderboard": self.leaderboard_,
            "val_metrics": self.val_metrics_,
            "notes": self.notes_,
            "skipped": [asdict(s) for s in self.skipped_],
        }

    @classmethod
    def load(cls, directory: str | Path) -> Predictor:
        """A predictor saved with :meth:`save`; needs no network."""
        from safetensors.torch import load_model

        path = Path(directory).expanduser()
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ConfigError(f"{path} is not a saved model: it has no config.json")
        try:
            config = json.loads(config_file.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{config_file} is not valid JSON: {err}") from None
        version = config.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ConfigError(
                f"{path} was saved in model format {version!r}, newer than this polymodal "
                f"{polymodal.__version__} reads (format {FORMAT_VERSION}); upgrade polymodal"
            )
        model = cls(**config["params"])
        model.target_ = Target.from_dict(config["target"])
        model.problem_ = model.target_.problem
        classes = model.target_.classes
        model.classes_ = model.target_.labels(np.arange(len(classes))) if classes else None
        model.schema_ = Schema.from_dict(config["schema"])
        model.slots_ = [
            SlotSpec(**{**s, "modality": Modality(s["modality"])}) for s in config["slots"]
        ]
        model.slot_columns_ = dict(config["slot_columns"])
        model.tabular_slot_ = config["tabular_slot"]
        model.fusion_ = config["fusion"]
        model.candidate_ = config["candidate"]
        model.groups_ = slot_groups(model.slots_)
        model.leaderboard_ = config["leaderboard"]
        model.val_metrics_ = config["val_metrics"]
        model.notes_ = list(config["notes"])
        model.skipped_ = [SkippedRow(**s) for s in config["skipped"]]
        model.embed_report_ = EmbedReport()
        tabular = json.loads((path / "tabular.json").read_text())
        model.tabular_ = None if tabular is None else TabularPreprocessor.from_dict(tabular)
        model._encoder_entries = config["encoders"]
        model.encoders_ = {}
        if model.fine_tune_blocks > 0:
            model.encoders_ = model._encoders_for_predict()
        network = model._network(model.fusion_, model.slots_)
        missing, unexpected = load_model(network, str(path / "model.safetensors"), strict=False)
        if missing or unexpected:
            raise ConfigError(
                f"{path}/model.safetensors does not match the model described in config.json "
                f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        model.network_ = network.eval()
        return model

    _encoder_entries: dict[str, dict[str, str]]

    def _encoders_for_predict(self) -> dict[Modality, Encoder]:
        """The fitted encoders, or after :meth:`load` the same encoders rebuilt offline."""
        if getattr(self, "encoders_", None) or not getattr(self, "_encoder_entries", None):
            return self.encoders_
        self.encoders_ = {
            Modality(m): _rebuild_encoder(entry, self.encoders)
            for m, entry in self._encoder_entries.items()
        }
        return self.encoders_

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise ConfigError("this Predictor is not fitted yet: call fit() or Predictor.load()")


# ------------------------------------------------------------------------------- helpers
def _load(
    data: str | Path | pd.DataFrame, base: str | Path | None
) -> tuple[pd.DataFrame, Path | None]:
    """A table and the folder its relative paths start from (as :func:`load_dataset` decides)."""
    frame = load_table(data)
    if base is None and not isinstance(data, pd.DataFrame):
        src = Path(data).expanduser()
        base = src if src.is_dir() else src.parent
    return frame, (Path(base).expanduser().resolve() if base is not None else None)


def _tabular_has_values(series: pd.Series, modality: Modality) -> bool:
    if modality == Modality.NUMERIC:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return bool(np.isfinite(values).any())
    return bool((series.notna() & (series.astype(str).str.strip() != "")).any())


def _remap(skipped: SkippedRow, original: np.ndarray) -> SkippedRow:
    """A skipped cell with its row number in the user's table."""
    row = int(original[skipped.row]) if 0 <= skipped.row < len(original) else skipped.row
    return SkippedRow(row, skipped.column, skipped.problem, skipped.path)


def _merge_reports(into: EmbedReport, other: EmbedReport) -> None:
    into.rows += other.rows
    for name in ("encoded", "cached", "missing"):
        mine, theirs = getattr(into, name), getattr(other, name)
        for column, n in theirs.items():
            mine[column] = mine.get(column, 0) + n


def _encoder_entry(encoder: Encoder) -> dict[str, str]:
    info = encoder.info
    return {
        "name": info.name,
        "cache_id": info.cache_id,
        "source": info.source.kind,
        "location": info.source.location,
    }


def _rebuild_encoder(
    entry: Mapping[str, str], given: Mapping[str, str | Encoder] | None
) -> Encoder:
    """Build the encoder a saved model was trained with, and check it still embeds the same way."""
    from polymodal.encoders.registry import build_encoder, registered_encoders

    for value in (given or {}).values():
        if isinstance(value, Encoder) and value.info.cache_id == entry["cache_id"]:
            return value
    registered = {r.name for r in registered_encoders()}
    name = entry["name"]
    if name in registered:
        encoder = build_encoder(name)
    elif entry["source"] == "random" and name.removesuffix("-tiny") in registered:
        encoder = build_encoder(name.removesuffix("-tiny"), tiny=True)
    elif entry["source"] in ("folder", "hub"):
        encoder = build_encoder(entry["location"])
    else:
        raise ConfigError(
            f"cannot rebuild encoder {name!r} ({entry['source']}: {entry['location']})"
        )
    if encoder.info.cache_id != entry["cache_id"]:
        raise ConfigError(
            f"encoder {name!r} is not the one this model was trained with (its embeddings id "
            f"is {encoder.info.cache_id}, the model expects {entry['cache_id']})"
        )
    return encoder


def _replace_dir(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``; an existing ``target`` is renamed aside first, then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _json_safe(value: Any) -> Any:
    """NaN and infinities become None (strict JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
