"""Hand-built scored frames shaped like the core's outputs, for logic tests of the app's state classes.

``make_study_frame`` mimics ``AmsHeResult.frame`` and ``make_run_scores`` mimics ``Run.scores`` of a
``hepml train`` classifier run; both come from seeded numpy random numbers, so tests run in
milliseconds without training anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hepml_core.scoring.discriminants import discriminants

__all__ = ["CLASSES", "FRACTIONS", "make_study_frame", "make_run_scores", "study_result", "tiny_settings",
           "build_tiny_runs"]

CLASSES = ("spillover", "had_inel", "el_scat", "other")
FRACTIONS = np.array([0.14, 0.53, 0.025, 0.305])


def make_study_frame(n_mc: int = 4000, n_data: int = 2000, seed: int = 3) -> pd.DataFrame:
    """A frame shaped like ``AmsHeResult.frame``: MC test and data rows, p_k, D_k and anomaly.

    Probabilities peak at the true class (a decent classifier); data carries a few "anomaly" rows whose
    anomaly score is high, like the toy simulation.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for sample, n in (("mc", n_mc), ("data", n_data)):
        truth = rng.choice(len(CLASSES), size=n, p=FRACTIONS)
        logits = rng.normal(0.0, 1.0, size=(n, len(CLASSES)))
        logits[np.arange(n), truth] += 2.0
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        labels = np.asarray(CLASSES, dtype=object)[truth]
        anomaly = np.tanh(rng.exponential(0.02, size=n))
        if sample == "data":
            k = max(1, n // 100)
            labels[:k] = "anomaly"
            anomaly[:k] = np.tanh(rng.uniform(0.15, 0.4, size=k))
        frame = pd.DataFrame({"sample": sample, "label": labels,
                              "weight": rng.uniform(0.5, 1.5, n) if sample == "mc" else np.ones(n)})
        for j, c in enumerate(CLASSES):
            frame[f"p_{c}"] = p[:, j]
        d = discriminants(p, FRACTIONS)
        for j, c in enumerate(CLASSES):
            frame[f"D_{c}"] = d[:, j]
        frame["anomaly"] = anomaly
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def make_run_scores(n: int = 3000, seed: int = 5, classes=("signal", "background")) -> pd.DataFrame:
    """A frame shaped like ``Run.scores`` of a ``hepml train`` classifier run (split, label, weight, p_k)."""
    rng = np.random.default_rng(seed)
    k = len(classes)
    truth = rng.integers(0, k, size=n)
    logits = rng.normal(0.0, 1.0, size=(n, k))
    logits[np.arange(n), truth] += 1.5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    split = rng.choice(["train", "validation", "test"], size=n, p=[0.5, 0.25, 0.25])
    frame = pd.DataFrame({"split": split, "label": np.asarray(classes, dtype=object)[truth],
                          "weight": rng.uniform(0.5, 2.0, n)})
    for j, c in enumerate(classes):
        frame[f"p_{c}"] = p[:, j]
    return frame


def study_result(frame: pd.DataFrame | None = None):
    """An ``AmsHeResult`` around a hand-built frame (no training)."""
    from hepml_core.studies.ams_he import AmsHeResult, AmsHeSettings

    frame = make_study_frame() if frame is None else frame
    return AmsHeResult(frame=frame, class_names=CLASSES, fractions=FRACTIONS, classifier_run_id="clf",
                       autoencoder_run_id="ae", study_run_id="study", settings=AmsHeSettings())


def tiny_settings():
    """He study settings small enough for tests: a few seconds of training on 2 cores."""
    from hepml_core.studies.ams_he import AmsHeSettings

    return AmsHeSettings(events=6000, data_events=3000, classifier_epochs=2, ae_epochs=2)


def build_tiny_runs(runs_dir) -> dict:
    """Train a tiny He study and a ``hepml train``-style user run into ``runs_dir``.

    Returns:
        ``{"study": study run id, "user": user run id}``.
    """
    from pathlib import Path

    from hepml_core.pipeline import train_from_config
    from hepml_core.runs import RunStore
    from hepml_core.studies.ams_he import run_ams_he

    runs_dir = Path(runs_dir)
    store = RunStore(runs_dir)
    study = run_ams_he(tiny_settings(), store)
    # A user's ntuple: three processes separated by four features, as a CSV next to the runs.
    rng = np.random.default_rng(2)
    n = 3000
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)) + y[:, None] * np.array([0.9, 0.5, -0.4, 0.2])
    frame = pd.DataFrame(x, columns=["jet_pt", "jet_eta", "met", "ht"])
    frame["process"] = np.array(["signal", "ttbar", "wjets"])[y]
    frame["w"] = rng.uniform(0.5, 1.5, n)
    source = runs_dir.parent / "user_ntuple.csv"
    frame.to_csv(source, index=False)
    config = {"data": {"source": str(source), "features": ["jet_pt", "jet_eta", "met", "ht"],
                       "label": "process", "weight": "w"},
              "model": {"kind": "mlp_classifier"}, "train": {"epochs": 5, "batch_size": 256, "lr": 0.01}}
    user = train_from_config(config, store)
    return {"study": study.study_run_id, "user": user.id}
