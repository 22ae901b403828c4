"""The PID methods of the alice-pid study: how each is trained on the training pool and scores test tracks.

Every learned method is one-vs-all (one binary model per species, as in the talk) and goes through
``train_on_table``, so each model is an ordinary saved run (exportable to ONNX). The pool is split
70/30 into training and validation by the pipeline; the test tracks are chosen once by the study so
that every method and species is evaluated on the same tracks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hepml_core.config import SplitConfig, TrainSettings
from hepml_core.data.schema import Schema
from hepml_core.data.table import EventTable
from hepml_core.pipeline import train_on_table
from hepml_core.runs import Run, RunStore
from hepml_core.scoring.score import predict_outputs

__all__ = ["METHODS", "NN_METHODS", "MODEL_CONFIGS", "METHOD_LABELS", "MAX_EPOCH_SCALE", "TrainPlan",
           "missing_patterns", "score_positive", "train_binary", "train_ensemble", "score_ensemble", "train_xgboost",
           "REST"]

METHODS = ("fse_attention", "mean_imputation", "regression_imputation", "case_deletion", "ensemble", "nsigma",
           "xgboost")
NN_METHODS = ("fse_attention", "mean_imputation", "regression_imputation", "case_deletion", "ensemble")
METHOD_LABELS = {"fse_attention": "FSE + attention", "mean_imputation": "mean imputation",
                 "regression_imputation": "regression imputation", "case_deletion": "case deletion",
                 "ensemble": "NN ensemble", "nsigma": "n-sigma (standard)", "xgboost": "xgboost"}
MODEL_CONFIGS: Mapping[str, dict] = {
    "fse_attention": {"kind": "fse_transformer"},
    "mean_imputation": {"kind": "pid_mlp", "imputation": "mean"},
    "regression_imputation": {"kind": "pid_mlp", "imputation": "regression"},
    "case_deletion": {"kind": "pid_mlp", "imputation": "none"},
    "ensemble": {"kind": "pid_mlp", "imputation": "none"},
}
REST = "rest"
MAX_EPOCH_SCALE = 20.0  # the most a subset's epochs are multiplied by (TrainPlan)
_SCORE_BATCH = 4096  # small batches keep the set model's (n, F, 128) activations in cache


@dataclass(frozen=True)
class TrainPlan:
    """Loop settings shared by the study's trainings (``seed`` differs between repeats).

    ``epochs``, ``patience`` and ``lr_decay`` count passes over the whole training pool
    (``pool_size`` tracks). A network trained on a fraction f of the pool (case deletion: the
    complete tracks, ~18 %; the ensemble: one missing pattern) makes 1/f times fewer optimizer steps
    per epoch of its own, so it gets 1/f times the epochs and patience and a decay of
    ``lr_decay ** f`` per epoch: the same step budget and the same learning rate at every step as the
    networks that see every track (at most ``MAX_EPOCH_SCALE`` times the epochs, so a rare pattern's
    network does not spend its time in per-epoch validation). Without this, at sizes far below the
    talk's, case deletion stopped long before it had learned (see the study's docstring).
    """

    epochs: int
    batch_size: int
    lr: float
    seed: int
    patience: int | None
    validation: float
    lr_decay: float | None = None
    pool_size: int | None = None

    def settings(self, epochs: int | None = None, n_tracks: int | None = None) -> TrainSettings:
        """TrainSettings for one fit on ``n_tracks`` tracks of the pool (None: all of it)."""
        epochs = epochs or self.epochs
        patience, decay = self.patience, self.lr_decay
        if n_tracks is not None and self.pool_size and 0 < n_tracks < self.pool_size:
            scale = min(self.pool_size / n_tracks, MAX_EPOCH_SCALE)
            epochs = math.ceil(epochs * scale)
            patience = None if patience is None else math.ceil(patience * scale)
            decay = None if decay is None else decay ** (1.0 / scale)
        return TrainSettings(epochs=epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                             early_stopping=patience, lr_decay=decay)

    def split(self) -> SplitConfig:
        """Validation from the pool; no test split (the study holds its test tracks apart)."""
        return SplitConfig(validation=self.validation, test=0.0, seed=self.seed)


def missing_patterns(missing: np.ndarray, features: Sequence[str],
                     groups: Mapping[str, Sequence[str]]) -> tuple[np.ndarray, list[str]]:
    """Name each track's missing-value pattern by detector ("complete", "no TOF", "no TRD, no TOF"...).

    Args:
        missing: (n, F) bool, True where a feature is NaN.
        features: the F feature names.
        groups: detector -> its features (a feature in no group is named by itself).

    Returns:
        (pattern code per track, pattern names indexed by code).
    """
    index = {f: i for i, f in enumerate(features)}
    grouped = {f for cols in groups.values() for f in cols}
    parts = [(name, [index[c] for c in cols if c in index]) for name, cols in groups.items()]
    parts += [(f, [index[f]]) for f in features if f not in grouped]
    flags = np.stack([missing[:, cols].any(axis=1) if cols else np.zeros(len(missing), bool)
                      for _, cols in parts], axis=1)
    keys, codes = np.unique(flags, axis=0, return_inverse=True)
    names = ["complete" if not key.any() else ", ".join(f"no {parts[j][0]}" for j in np.flatnonzero(key))
             for key in keys]
    return codes.reshape(-1), names


def score_positive(run: Run, x_raw: np.ndarray) -> np.ndarray:
    """P(species) of a binary run for raw features (NaN = missing) through its saved preprocessing."""
    outputs = predict_outputs(run.model(), run.preprocessor.transform(x_raw), batch_size=_SCORE_BATCH)
    return outputs[:, 1].astype(np.float32)


def _binary_frame(pool: pd.DataFrame, features: Sequence[str], species: str) -> pd.DataFrame:
    frame = pool[list(features)].copy()
    frame["target"] = np.where(pool["label"].to_numpy() == species, species, REST)
    frame["weight"] = pool["weight"].to_numpy()
    return frame


def train_binary(pool: pd.DataFrame, features: Sequence[str], species: str, method: str, plan: TrainPlan,
                 store: RunStore, *, config: Mapping, epochs: int | None = None, callbacks=(), cancel=None,
                 model: Mapping | None = None) -> Run:
    """Train one one-vs-all model of ``method`` for ``species`` on ``pool`` (its rows as given)."""
    table = EventTable(_binary_frame(pool, features, species),
                       Schema(features=tuple(features), label="target", classes=(REST, species), weight="weight"))
    return train_on_table(table, model=dict(model or MODEL_CONFIGS[method]), train=plan.settings(epochs, len(pool)),
                          split=plan.split(), store=store, config={**config, "role": method, "species": species},
                          callbacks=callbacks, cancel=cancel)


def train_ensemble(pool: pd.DataFrame, features: Sequence[str], species: str, plan: TrainPlan, store: RunStore,
                   *, pool_codes: np.ndarray, names: Sequence[str], min_tracks: int, config: Mapping,
                   epochs: int | None = None, callbacks=(), cancel=None,
                   trained: Mapping[str, str] | None = None) -> dict[str, str]:
    """One network per missing pattern with at least ``min_tracks`` training tracks, on its present features.

    Args:
        trained: pattern name -> id of a run that already is that pattern's network (the case-deletion
            run is the "complete" network: same tracks, features, model and seed), reused, not retrained.

    Returns:
        pattern name -> run id (the "complete" network is always trained when complete tracks exist).
    """
    missing = pool[list(features)].isna().to_numpy()
    out = {}
    for code, name in enumerate(names):
        if trained and name in trained:
            out[name] = trained[name]
            continue
        rows = np.flatnonzero(pool_codes == code)
        labels = pool["label"].to_numpy()[rows]
        if len(rows) < (1 if name == "complete" else min_tracks) or len(np.unique(labels == species)) < 2:
            continue
        present = [f for j, f in enumerate(features) if not missing[rows[0], j]]
        run = train_binary(pool.iloc[rows], present, species, "ensemble", plan, store,
                           config={**config, "pattern": name}, epochs=epochs, callbacks=callbacks, cancel=cancel)
        out[name] = run.id
    return out


def score_ensemble(store: RunStore, runs: Mapping[str, str], test: pd.DataFrame, features: Sequence[str],
                   codes: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Score each test track with its pattern's network; rarer patterns with the complete-track network
    (missing values mean-filled by its preprocessing), or 0 when there is none."""
    score = np.zeros(len(test), dtype=np.float32)
    fallback = store.load(runs["complete"]) if "complete" in runs else None
    for code, name in enumerate(names):
        rows = np.flatnonzero(codes == code)
        if not len(rows):
            continue
        run = store.load(runs[name]) if name in runs else fallback
        if run is None:
            continue
        cols = list(run.schema.features)
        score[rows] = score_positive(run, test.iloc[rows][cols].to_numpy(np.float32))
    return score


def train_xgboost(pool: pd.DataFrame, test: pd.DataFrame, features: Sequence[str], class_names: Sequence[str],
                  *, trees: int, depth: int, seed: int, validation: float, threads: int = 1,
                  say: Callable[[str], None] = lambda s: None) -> np.ndarray:
    """Multi-class gradient-boosted trees (NaN handled natively by xgboost); test probabilities (n, k)."""
    try:
        import xgboost as xgb
    except ImportError as err:  # optional: the study then skips the method with a message
        raise ImportError("xgboost is not installed: pip install xgboost-cpu") from err
    lookup = {c: i for i, c in enumerate(class_names)}
    codes = pool["label"].map(lookup).to_numpy()
    rng = np.random.default_rng(seed)
    is_val = rng.random(len(pool)) < validation
    # xgboost wants labels 0..k-1 that all occur in training: remap to the classes present
    present = np.unique(codes[~is_val])
    remap = np.full(len(class_names), -1)
    remap[present] = np.arange(len(present))
    y = remap[codes]
    keep_val = is_val & (y >= 0)
    x = pool[list(features)].to_numpy(np.float32)
    model = xgb.XGBClassifier(n_estimators=trees, max_depth=depth, learning_rate=0.1, tree_method="hist",
                              objective="multi:softprob" if len(present) > 2 else "binary:logistic",
                              random_state=seed, n_jobs=threads, early_stopping_rounds=20,
                              eval_metric="mlogloss" if len(present) > 2 else "logloss")
    model.fit(x[~is_val], y[~is_val], sample_weight=pool["weight"].to_numpy()[~is_val],
              eval_set=[(x[keep_val], y[keep_val])], verbose=False)
    say(f"xgboost: {model.best_iteration + 1} trees kept")
    proba = np.zeros((len(test), len(class_names)), dtype=np.float32)
    proba[:, present] = model.predict_proba(test[list(features)].to_numpy(np.float32))
    return proba
