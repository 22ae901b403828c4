"""Per-mass models of the HNL study: one DNN and one xgboost BDT per mass hypothesis, for comparison.

The talk's earlier work trained one classifier per mass (signal of that mass against all background); the
parametrised models learn every mass at once with the hypothesis as an input. A per-mass model takes the
85 features and the channel one-hot but not the mass hypothesis: background hypotheses are random, so the
column alone would tell the training signal (all at one mass) from background.

All models of a variant live in one run folder: the DNNs in one safetensors file (keys ``m<mass>.<param>``)
next to their shared scaler, the boosters in one JSON file (xgboost's own JSON, no pickles).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from hepml_core.data.preprocessing import Preprocessor
from hepml_core.data.schema import Schema
from hepml_core.models.registry import build_model
from hepml_core.scoring.score import predict_outputs
from hepml_core.simulate.hnl import CHANNELS, FEATURES
from hepml_core.studies._hnl_bdt import booster_from_json, booster_to_json, predict_bdt, train_bdt
from hepml_core.studies._hnl_transfer import _OneFit
from hepml_core.training.data import TensorData
from hepml_core.training.trainer import Trainer

__all__ = ["PER_MASS_MODELS", "per_mass_inputs", "PerMassScorer", "train_per_mass_dnn", "train_per_mass_bdt",
           "save_per_mass_dnn", "save_per_mass_bdt", "load_per_mass"]

PER_MASS_MODELS = ("dnn_per_mass", "bdt_per_mass")
_CLASSES = ("background", "signal")


def per_mass_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Inputs of a per-mass model: the 85 features and the channel one-hot (no mass hypothesis)."""
    onehot = {f"is_{c}": (frame["channel"] == c).to_numpy(dtype=np.float32) for c in CHANNELS}
    return pd.concat([frame[list(FEATURES)].reset_index(drop=True), pd.DataFrame(onehot)], axis=1)


def _key(mass: float) -> str:
    return f"m{float(mass):g}"


class PerMassScorer:
    """Scores of a per-mass variant: each event goes through the model of its ``mass_hyp`` (NaN: no model).

    Args:
        name: the score column (``dnn_per_mass`` or ``bdt_per_mass``).
        predictors: mass -> function of the input matrix returning the signal probability.
        transform: raw input matrix -> model input matrix (the DNN's scaler; identity for the BDT).
    """

    def __init__(self, name: str, predictors: dict[float, Callable[[np.ndarray], np.ndarray]],
                 transform: Callable[[np.ndarray], np.ndarray] = lambda x: x):
        self.name = name
        self.predictors = {float(m): fn for m, fn in predictors.items()}
        self.transform = transform

    @property
    def masses(self) -> tuple[float, ...]:
        """Mass hypotheses that have a model."""
        return tuple(sorted(self.predictors))

    def __call__(self, frame: pd.DataFrame, latent=None) -> np.ndarray:
        out = np.full(len(frame), np.nan)
        if not len(frame):
            return out
        masses = frame["mass_hyp"].to_numpy(dtype=np.float64)
        x = self.transform(per_mass_inputs(frame).to_numpy(np.float32))
        for m, fn in self.predictors.items():
            rows = np.flatnonzero(np.isclose(masses, m))
            if rows.size:
                out[rows] = fn(x if rows.size == len(frame) else x[rows])
        return out


def _cap(rows: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or len(rows) <= limit:
        return rows
    return np.sort(rng.choice(rows, size=int(limit), replace=False))


def _balanced(w: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Training weights: signal and background each half of the events' count, in proportion to ``w``."""
    out = np.zeros(len(w))
    for cls in (0, 1):
        rows = y == cls
        if rows.any() and w[rows].sum() > 0:
            out[rows] = w[rows] / w[rows].sum() * (len(w) / 2)
    return out


class _Sets:
    """Row indices of each mass's training and validation events (shared background subsets)."""

    def __init__(self, frame: pd.DataFrame, tr: np.ndarray, va: np.ndarray, masses: Sequence[float],
                 max_background: int | None, seed: int):
        y = frame["label"].to_numpy()
        m = frame["mass_hyp"].to_numpy(dtype=np.float64)
        rng = np.random.default_rng(seed + 11)
        self.bkg_tr = _cap(tr[y[tr] == 0], max_background, rng)
        # validation only picks each mass's best epoch: half as much background is plenty
        self.bkg_va = _cap(va[y[va] == 0], None if max_background is None else max(1, max_background // 2), rng)
        self.sig_tr = {float(k): tr[(y[tr] == 1) & np.isclose(m[tr], k)] for k in masses}
        self.sig_va = {float(k): va[(y[va] == 1) & np.isclose(m[va], k)] for k in masses}
        self.masses = tuple(float(k) for k in masses)
        self.rows = np.unique(np.concatenate([self.bkg_tr, self.bkg_va, *self.sig_tr.values(),
                                              *self.sig_va.values()]))
        # inputs for every row used, once (row i of x is frame row self.rows[i])
        self.x = per_mass_inputs(frame.iloc[self.rows]).to_numpy(np.float32)
        self.columns = list(per_mass_inputs(frame.iloc[:0]).columns)
        self._y = y
        self._w = frame["weight"].to_numpy(dtype=np.float64)

    def take(self, sig: np.ndarray, bkg: np.ndarray):
        """(x, y, balanced weights) of these frame rows."""
        rows = np.concatenate([sig, bkg])
        pos = np.searchsorted(self.rows, rows)
        y = self._y[rows].astype(np.int64)
        return self.x[pos], y, _balanced(self._w[rows], y)

    def train(self, mass: float):
        return self.take(self.sig_tr[mass], self.bkg_tr)

    def validation(self, mass: float):
        return self.take(self.sig_va[mass], self.bkg_va)


def train_per_mass_dnn(frame: pd.DataFrame, tr: np.ndarray, va: np.ndarray, masses: Sequence[float], *,
                       hidden: Sequence[int], dropout: float, epochs: int, batch_size: int, lr: float,
                       max_background: int | None, seed: int, patience: int | None, callbacks: Sequence = (),
                       cancel=None):
    """One MLP classifier per mass: signal of that mass against the (sub-sampled) background of every channel.

    Args:
        frame: the simulated events (``label``, ``mass_hyp``, ``channel``, ``weight`` and the features).
        tr, va: training and validation rows of ``frame``.
        masses: the mass hypotheses that get a model.
        hidden, dropout: the MLP's hidden widths and dropout.
        epochs, batch_size, lr, patience: Trainer settings of every mass.
        max_background: training background events drawn once, shared by every mass (validation: half as
            many; None: all).
        seed: weights, shuffling and the background draw.
        callbacks: Trainer callbacks, called as for one fit of ``len(masses) * epochs`` epochs.
        cancel: optional CancelToken.

    Returns:
        ``(models: {mass: nn.Module}, preprocessor, feature names, history rows with a mass column)``.
    """
    sets = _Sets(frame, tr, va, masses, max_background, seed)
    fit_rows = np.searchsorted(sets.rows, np.concatenate([sets.bkg_tr, *sets.sig_tr.values()]))
    pre = Preprocessor().fit(sets.x[fit_rows])
    models, history = {}, []
    outer = _OneFit(callbacks, len(sets.masses) * int(epochs))
    outer.start()
    try:
        for mass in sets.masses:
            x, y, w = sets.train(mass)
            xv, yv, wv = sets.validation(mass)
            model = build_model("mlp_classifier", x.shape[1], 2, seed=seed,
                                layers=[x.shape[1], *hidden, 2], dropout=dropout)
            trainer = Trainer(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, early_stopping=patience,
                              callbacks=[outer], cancel=cancel)
            result = trainer.fit(model, TensorData(pre.transform(x), y, w),
                                 TensorData(pre.transform(xv), yv, wv) if len(yv) and (yv == 1).any() else None)
            models[mass] = model.cpu().eval()
            history += [dict(row, mass=mass, mass_epoch=row["epoch"]) for row in result.history]
    finally:
        outer.end()
    for i, row in enumerate(history, start=1):
        row["epoch"] = i
    return models, pre, sets.columns, history


def train_per_mass_bdt(frame: pd.DataFrame, tr: np.ndarray, va: np.ndarray, masses: Sequence[float], *,
                       trees: int, depth: int, lr: float, max_background: int | None, seed: int, threads: int,
                       patience: int | None, cancel=None):
    """One xgboost BDT per mass, on the same events as ``train_per_mass_dnn``.

    Returns:
        ``(boosters: {mass: Booster}, feature names, history rows with a mass column)``.
    """
    sets = _Sets(frame, tr, va, masses, max_background, seed)
    boosters, history = {}, []
    for mass in sets.masses:
        x, y, w = sets.train(mass)
        xv, yv, wv = sets.validation(mass)
        booster, hist = train_bdt(x, y, w, xv, yv, wv, trees=trees, depth=depth, lr=lr, seed=seed, n_jobs=threads,
                                  early_stopping=patience and 20, cancel=cancel, feature_names=sets.columns)
        boosters[mass] = booster
        history += [dict(row, mass=mass) for row in hist]
    return boosters, sets.columns, history


def _dnn_scorer(models: dict, pre: Preprocessor) -> PerMassScorer:
    fns = {m: (lambda x, model=model: predict_outputs(model, x)[:, 1].astype(np.float64))
           for m, model in models.items()}
    return PerMassScorer("dnn_per_mass", fns, pre.transform)


def _bdt_scorer(boosters: dict) -> PerMassScorer:
    return PerMassScorer("bdt_per_mass", {m: (lambda x, b=b: predict_bdt(b, x)) for m, b in boosters.items()})


def save_per_mass_dnn(store, record: dict, models: dict, pre: Preprocessor, features: Sequence[str],
                      history: list[dict]) -> tuple[str, PerMassScorer]:
    """Save every mass's MLP in one run (kind ``per_mass_dnn``); returns ``(run id, scorer)``."""
    masses = sorted(models)
    hp = models[masses[0]].hparams
    tensors = {f"{_key(m)}.{k}": v for m in masses for k, v in models[m].state_dict().items()}
    with store.create("per_mass_dnn") as writer:
        writer.write_yaml("config.yaml", {**record, "role": "dnn_per_mass", "masses": masses,
                                          "model": {"kind": "mlp_classifier", **hp}})
        writer.write_json("schema.json", Schema(features=tuple(features), label="label", classes=_CLASSES,
                                                weight="weight").to_dict())
        writer.write_json("preprocessing.json", pre.to_dict())
        writer.write_tensors("model.safetensors", tensors)
        writer.write_csv("history.csv", pd.DataFrame(history))
        writer.write_json("metrics.json", {"masses": len(masses), "epochs": len(history)})
    return writer.id, _dnn_scorer(models, pre)


def save_per_mass_bdt(store, record: dict, boosters: dict, features: Sequence[str],
                      history: list[dict]) -> tuple[str, PerMassScorer]:
    """Save every mass's booster in one run (kind ``per_mass_bdt``); returns ``(run id, scorer)``."""
    masses = sorted(boosters)
    with store.create("per_mass_bdt") as writer:
        writer.write_yaml("config.yaml", {**record, "role": "bdt_per_mass", "masses": masses,
                                          "features": list(features)})
        writer.write_json("boosters.json", {_key(m): booster_to_json(boosters[m]) for m in masses})
        writer.write_csv("history.csv", pd.DataFrame(history))
        writer.write_json("metrics.json", {"masses": len(masses), "trees": len(history)})
    return writer.id, _bdt_scorer(boosters)


def load_per_mass(run) -> PerMassScorer:
    """The scorer of a saved per-mass run (``per_mass_dnn`` or ``per_mass_bdt``).

    Raises:
        ValueError: the run is not a per-mass variant.
    """
    import json

    cfg = run.config
    role = cfg.get("role")
    masses = [float(m) for m in cfg.get("masses", [])]
    if role == "dnn_per_mass":
        tensors = run.tensors("model.safetensors")
        spec = {k: v for k, v in cfg["model"].items() if k != "kind"}
        models = {}
        for m in masses:
            prefix = _key(m) + "."
            model = build_model("mlp_classifier", spec["layers"][0], spec["layers"][-1], **spec)
            model.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            models[m] = model.eval()
        return _dnn_scorer(models, run.preprocessor)
    if role == "bdt_per_mass":
        saved = json.loads(run.read_bytes("boosters.json"))
        return _bdt_scorer({m: booster_from_json(saved[_key(m)]) for m in masses})
    raise ValueError(f"run {run.id} is a {role!r} run, not a per-mass variant ('dnn_per_mass' or 'bdt_per_mass')")

