"""``Predictor``: a multi-modal classifier or regressor, scikit-learn style.

``__init__`` only stores its parameters; ``fit`` learns everything else (attributes ending in
``_``). The pipeline: load the table, validate the label, detect each column's modality, embed
text and media columns with frozen encoders through the embedding cache (or decode them when
encoders are fine-tuned), fit the tabular preprocessor on the training rows, then train one
fusion network (or, with ``fusion="auto"``, every candidate) and keep the best on validation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import polymodal
from polymodal.cache.embed import EmbedReport
from polymodal.cache.store import EmbeddingCache
from polymodal.data.schema import ColumnSpec, Schema, detect_schema
from polymodal.encoders.base import Encoder
from polymodal.errors import ConfigError, SkippedRow
from polymodal.fusion.base import SlotSpec
from polymodal.modality import Modality
from polymodal.predict.auto import FUSION_KINDS, candidates
from polymodal.predict.derived import Derived, add_derived, extend_schema, plan
from polymodal.predict.encoder_choice import encoder_entry, rebuild_encoder, resolve_encoders
from polymodal.predict.features import FeatureSet, slot_groups
from polymodal.predict.fitting import select_network
from polymodal.predict.inputs import (
    MediaInput,
    assemble_features,
    check_some_inputs,
    column_notes,
    load_frame,
    media_inputs,
    merge_reports,
)
from polymodal.predict.network import EnsembleNetwork, Network, PredictorNetwork, make_network
from polymodal.predict.persistence import FORMAT_VERSION, load_weights, read_model, write_model
from polymodal.predict.problem import (
    MISSING_LABEL,
    Target,
    check_finite_labels,
    check_label_column,
    prepare_target,
    stratified_split,
)
from polymodal.predict.reduce import fit_reducer
from polymodal.predict.slots import fit_tabular, make_slots, usable_schema
from polymodal.predict.train import network_outputs, score_outputs, softmax

__all__ = ["FORMAT_VERSION", "Predictor"]

FUSIONS = ("auto", *FUSION_KINDS)
TOKEN_MODES = ("pooled", "sequence")


class Predictor:
    """Predict ``label`` from every other column of a table: text, images, audio, numbers.

    ``fusion``: "early", "late", "hybrid", "linear" (early fusion without a hidden layer, for
    small tables), or "auto" (each modality alone and every fusion, the best on validation
    kept). ``problem``: "binary", "multiclass" or "regression", inferred from the label when
    None. ``columns`` forces a column's modality; ``exclude`` leaves columns
    out; ``encoders`` maps a modality ("text", "image", "audio", "video") to an encoder name,
    folder or :class:`~polymodal.encoders.base.Encoder`. ``tokens="sequence"`` gives hybrid
    fusion every encoder token state (pooled down to ``max_tokens``) instead of one pooled
    vector per column. ``fine_tune_blocks=k`` trains the last k blocks of each encoder (slow on
    CPU: for small data). ``log_target``: regress on log(label); None chooses it for positive,
    right-skewed labels. ``class_weight="balanced"`` weighs classes inversely to their counts.
    ``refit``: once validation has chosen the candidate and its number of epochs, train it again
    on the training and validation rows together (see :mod:`polymodal.predict.fitting`);
    ``ensemble=k`` keeps k such refits from consecutive seeds and averages them.
    ``video_sound``: a video column's audio track becomes an audio column of its own beside the
    frames. ``describe``: True (every image/audio/video column) or column names: add each one's
    caption, text in the image or transcript as a text column (see :mod:`.derived`).
    ``reduce_to``: cached embeddings wider than this are projected onto their leading principal
    components on the training rows (see :mod:`.reduce`); 0 keeps them whole.
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
        hidden: int = 128,
        depth: int = 2,
        epochs: int = 200,
        patience: int = 30,
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
        refit: bool = True,
        ensemble: int = 1,
        video_sound: bool = True,
        describe: bool | Sequence[str] = False,
        reduce_to: int = 128,
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
        self.refit = refit
        self.ensemble = ensemble
        self.video_sound = video_sound
        self.describe = describe
        self.reduce_to = reduce_to

    # ------------------------------------------------------------------------- parameters
    _PARAMS = (
        *("label", "fusion", "problem", "columns", "exclude", "encoders", "hidden", "depth"),
        *("epochs", "patience", "lr", "batch_size", "modality_dropout", "seed", "val_fraction"),
        *("fine_tune_blocks", "cache_dir", "progress", "tokens", "max_tokens", "dropout"),
        *("weight_decay", "log_target", "class_weight", "refit"),
        *("ensemble", "video_sound", "describe", "reduce_to"),
    )

    def get_params(self) -> dict[str, Any]:
        """Every constructor parameter, JSON-friendly (encoder objects become their names)."""
        params = {name: getattr(self, name) for name in self._PARAMS}
        params["columns"] = dict(self.columns or {})
        params["exclude"] = list(self.exclude)
        if not isinstance(self.describe, bool):
            params["describe"] = list(self.describe)
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
        if self.ensemble > 1 and not self.refit:
            raise ConfigError("ensemble > 1 needs refit=True: the members are refits")
        counts = ("epochs", "patience", "batch_size", "hidden", "depth", "max_tokens", "ensemble")
        for name in counts:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.fine_tune_blocks < 0:
            raise ConfigError("fine_tune_blocks must be >= 0")
        if self.reduce_to < 0:
            raise ConfigError("reduce_to must be >= 0 (0 keeps embeddings at full width)")
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
        data, data_base = load_frame(train, base)
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
        self.derived_ = plan(schema, video_sound=self.video_sound, describe=self.describe)
        if self.derived_:
            frame = add_derived(frame, self.derived_, data_base, progress=self.progress)
            schema = extend_schema(schema, self.derived_)
        self.notes_: list[str] = list(prepared.notes)
        self.notes_ += [
            f"column {n!r} not used: {r}" for n, r in schema.excluded if r != "excluded"
        ]
        self.skipped_: list[SkippedRow] = list(prepared.skipped)
        self.target_ = target
        self.problem_ = target.problem
        self.classes_ = target.labels(np.arange(len(target.classes))) if target.classes else None
        self.encoders_ = resolve_encoders(schema, self.encoders)

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
        schema, notes = usable_schema(schema, frame.iloc[tr], media, tr)
        self.notes_ += notes
        self.schema_ = schema
        self.slots_, self.slot_columns_, self.tabular_slot_ = make_slots(
            schema,
            media,
            self.encoders_,
            sequence=self._needs_tokens(),
            max_tokens=self.max_tokens,
            hidden=self.hidden,
        )
        self.tabular_ = fit_tabular(schema, frame.iloc[tr], prepared.rows[tr])
        if self.tabular_ is not None:
            self.notes_ += self.tabular_.fit_notes_
        self.reducer_ = None
        full = self._assemble(frame, media, prepared.y, rows=prepared.rows)
        if full.tabular is not None:
            self.notes_ += full.tabular.notes
        self.reducer_ = fit_reducer(full.take(tr), self.slots_, self.reduce_to)
        if self.reducer_ is not None:
            full = self.reducer_.transform(full)
            self.notes_ += self.reducer_.notes(self.slot_columns_)
        train_fs = full.take(tr)
        val_fs = full.take(va) if va is not None else self._extra_table(val, base, "validation")
        test_fs = self._extra_table(test, base, "test") if test is not None else None
        self._fit_networks(train_fs, val_fs, test_fs)
        self._val_features = val_fs  # kept in memory for report(); never saved
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _fit_networks(
        self, train_fs: FeatureSet, val_fs: FeatureSet, test_fs: FeatureSet | None
    ) -> None:
        best, board = select_network(
            candidates(self.fusion, self.slots_),
            lambda cand: self._network(cand.kind, cand.slots),
            train_fs,
            val_fs,
            test_fs,
            target=self.target_,
            epochs=self.epochs,
            patience=self.patience,
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            modality_dropout=self.modality_dropout,
            balanced=self.class_weight == "balanced",
            seed=self.seed,
            progress=self.progress,
            refit=self.refit,
            ensemble=self.ensemble,
        )
        self.network_ = best.network
        if "refit_rows" in next(r for r in board if r["chosen"]):
            self.notes_.append(
                "the kept model was retrained on the training and validation rows together: "
                "scores on the validation rows are no longer held out"
            )
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
        if getattr(self, "reducer_", None) is not None:
            slots = self.reducer_.specs(slots)
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

    # ---------------------------------------------------------------------------- inputs
    def _embedding_cache(self) -> EmbeddingCache:
        if getattr(self, "_cache", None) is None:
            folder = self.cache_dir
            self._cache = EmbeddingCache(Path(folder) / "embeddings.sqlite3" if folder else None)
        return self._cache

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
        return media_inputs(
            frame,
            base,
            specs,
            encoders=self.encoders_,
            cache=self._embedding_cache(),
            fine_tune=self.fine_tune_blocks > 0,
            tokens=self._needs_tokens(),
            progress=self.progress,
            rows=rows,
        )

    def _assemble(
        self,
        frame: pd.DataFrame,
        media: Mapping[str, MediaInput],
        y: np.ndarray | None,
        *,
        rows: np.ndarray | None = None,
    ) -> FeatureSet:
        features = assemble_features(
            self.slots_,
            frame,
            media,
            y,
            columns=self.slot_columns_,
            tabular=getattr(self, "tabular_", None),
            tabular_slot=self.tabular_slot_,
            rows=rows,
        )
        reducer = getattr(self, "reducer_", None)
        return features if reducer is None else reducer.transform(features)

    def features(
        self, data: str | Path | pd.DataFrame, *, base: str | Path | None = None
    ) -> FeatureSet:
        """The model's inputs for ``data``: any subset of the training columns works (a column
        the data lacks is absent in every row; extra columns are ignored). What was noticed
        (missing columns, unseen categories, skipped cells) is in ``last_report_``.
        """
        self._check_fitted()
        frame, data_base = load_frame(data, base)
        return self._features(frame, data_base)

    def _features(
        self,
        frame: pd.DataFrame,
        base: Path | None,
        y: np.ndarray | None = None,
        *,
        rows: np.ndarray | None = None,
    ) -> FeatureSet:
        used = {n: d for n, d in self.derived_.items() if n in self.slot_columns_.values()}
        frame = add_derived(frame, used, base, progress=self.progress)
        needed = [*self.slot_columns_.values()]
        if self.tabular_ is not None and self.tabular_slot_ is not None:
            needed += [*self.tabular_.numeric, *self.tabular_.categorical]
        check_some_inputs(frame, needed, self.label)
        notes = column_notes(frame, needed, self.label)
        specs = [
            ColumnSpec(c, self.schema_.modality(c), "saved")
            for c in self.slot_columns_.values()
            if c in frame.columns
        ]
        self._encoders_for_predict()
        media, report = self._media_inputs(frame, base, specs, rows=rows)
        fs = self._assemble(frame, media, y, rows=rows)
        report.notes = notes + report.notes + (fs.tabular.notes if fs.tabular is not None else [])
        self.last_report_ = report
        return fs

    def _extra_table(
        self, data: str | Path | pd.DataFrame, base: str | Path | None, what: str
    ) -> FeatureSet:
        """A validation or test table during fit: its notes and embedding counts join the fit's."""
        fs, notes = self._labelled_features(data, base, what=what)
        self.notes_ += notes
        merge_reports(self.embed_report_, self.last_report_)
        return fs

    def _labelled_features(
        self, data: str | Path | pd.DataFrame, base: str | Path | None, *, what: str
    ) -> tuple[FeatureSet, list[str]]:
        """Features and encoded labels of the rows of ``data`` that have a label, and notes."""
        frame, data_base = load_frame(data, base)
        check_label_column(frame, self.label)
        labels = frame[self.label]
        check_finite_labels(labels)
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
        from polymodal.predict.diagnostics import (
            confusion,
            report_leaderboard,
            robustness_or_reason,
        )
        from polymodal.predict.report import write_report

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
        target = self.target_
        outputs = network_outputs(self.network_, fs.tensors())
        curve, why = robustness_or_reason(self.network_, fs, self.groups_, target, seed=self.seed)
        if why is not None:
            notes.append(f"robustness not computed: {why}")
        attributions = self.explain_features(fs)
        predicted = self.predictions_from(outputs)
        attributions["predicted"] = predicted
        return write_report(
            path,
            title=title or f"polymodal: predicting {self.label!r}",
            problem=target.problem,
            leaderboard=report_leaderboard(self.leaderboard_),
            test_scores=score_outputs(target, fs.y, outputs) if data is not None else None,
            robustness=curve,
            robustness_skipped=why,
            attributions=attributions,
            confusion=confusion(target, fs.y, outputs) if target.is_classification else None,
            residuals=None
            if target.is_classification
            else (target.decode_regression(fs.y), predicted),
            notes=notes,
            skipped=self.skipped_,
        )

    # ---------------------------------------------------------------------- save / load
    def save(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``tabular.json`` into ``directory``,
        replacing a previously saved model there; a crash leaves the old model or the new one.
        """
        self._check_fitted()
        return write_model(
            directory, self._config(), self.network_, self.tabular_, reducer=self.reducer_
        )

    def _config(self) -> dict[str, Any]:
        used = {self.schema_.modality(c) for c in self.slot_columns_.values()}
        return {
            "polymodal_version": polymodal.__version__,
            "params": self.get_params(),
            "target": self.target_.to_dict(),
            "schema": self.schema_.to_dict(),
            "slots": [{**asdict(s), "modality": str(s.modality)} for s in self.slots_],
            "slot_columns": self.slot_columns_,
            "derived": {name: d.to_dict() for name, d in self.derived_.items()},
            "tabular_slot": self.tabular_slot_,
            "fusion": self.fusion_,
            "candidate": self.candidate_,
            "ensemble_size": (
                len(self.network_.members) if isinstance(self.network_, EnsembleNetwork) else 1
            ),
            "encoders": {str(m): encoder_entry(e) for m, e in self.encoders_.items() if m in used},
            "leaderboard": self.leaderboard_,
            "val_metrics": self.val_metrics_,
            "notes": self.notes_,
            "skipped": [asdict(s) for s in self.skipped_],
        }

    @classmethod
    def load(cls, directory: str | Path) -> Predictor:
        """A predictor saved with :meth:`save`; needs no network."""
        config, tabular, weights, reducer = read_model(directory)
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
        model.derived_ = {
            name: Derived.from_dict(d) for name, d in config.get("derived", {}).items()
        }
        model.tabular_slot_ = config["tabular_slot"]
        model.fusion_ = config["fusion"]
        model.candidate_ = config["candidate"]
        model.groups_ = slot_groups(model.slots_)
        model.leaderboard_ = config["leaderboard"]
        model.val_metrics_ = config["val_metrics"]
        model.notes_ = list(config["notes"])
        model.skipped_ = [SkippedRow(**s) for s in config["skipped"]]
        model.embed_report_ = EmbedReport()
        model.tabular_ = tabular
        model.reducer_ = reducer
        model._encoder_entries = config["encoders"]
        model.encoders_ = {}
        if model.fine_tune_blocks > 0:
            model.encoders_ = model._encoders_for_predict()
        # Models saved before ensembles existed have no size: one network.
        size = int(config.get("ensemble_size", 1))
        members = [model._network(model.fusion_, model.slots_) for _ in range(size)]
        network: Network = members[0]
        if size > 1:
            network = EnsembleNetwork(members, classification=model.target_.is_classification)
        model.network_ = load_weights(network, weights)
        return model

    _encoder_entries: dict[str, dict[str, str]]

    def _encoders_for_predict(self) -> dict[Modality, Encoder]:
        """The fitted encoders, or after :meth:`load` the same encoders rebuilt offline."""
        if getattr(self, "encoders_", None) or not getattr(self, "_encoder_entries", None):
            return self.encoders_
        self.encoders_ = {
            Modality(m): rebuild_encoder(entry, self.encoders)
            for m, entry in self._encoder_entries.items()
        }
        return self.encoders_

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise ConfigError("this Predictor is not fitted yet: call fit() or Predictor.load()")
