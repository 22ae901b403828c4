"""AMS-02 He charge confusion: FCNN classifier of confusion sources + autoencoder anomaly score.

The recipe of the talk (seeds/000): a 4-class FCNN [37, 15, 10, 4] trained on He Monte Carlo with
R_inner < 0 (Adam, lr 5e-4, batch 700, dropout 0.1); class-fraction discriminants D_k; an autoencoder
[41, 10, 5, 10, 41] (Adam, lr 1e-4, batch 100) trained on the *data* sample (62k + 62k events in the
talk: half for training, half for validation) whose input is the 37 features plus the 4 discriminants;
anomaly score tanh(MSE); MC migration matrices above anomaly-score thresholds 0, 0.08 and 0.10.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from hepml_core.config import SplitConfig, TrainSettings
from hepml_core.data.schema import Schema
from hepml_core.data.table import EventTable
from hepml_core.pipeline import train_on_table
from hepml_core.runs import RunStore
from hepml_core.scoring.discriminants import class_fractions, discriminant_names, discriminants
from hepml_core.scoring.score import score_table
from hepml_core.simulate.ams_he import CLASS_NAMES, FEATURES, simulate_ams_he

__all__ = ["AmsHeSettings", "AmsHeResult", "run_ams_he", "load_ams_he", "STUDY_NAME"]

STUDY_NAME = "ams-he"


@dataclass(frozen=True)
class AmsHeSettings:
    """Defaults are the talk's numbers; tests and the CLI shrink ``events`` and the epochs."""

    events: int = 360_000  # MC with R_inner < 0: ~178k train / 76k validation (the talk) + 108k test
    data_events: int = 125_000  # the talk's data sample: 1.25e5 events with R_inner < 0
    seed: int = 1
    anomaly_fraction: float = 0.005
    classifier_layers: tuple[int, ...] = (37, 15, 10, 4)
    dropout: float = 0.1
    classifier_lr: float = 5e-4
    classifier_batch_size: int = 700
    classifier_epochs: int = 30
    class_weight: str | None = None
    ae_layers: tuple[int, ...] = (41, 10, 5, 10, 41)
    ae_lr: float = 1e-4
    ae_batch_size: int = 100
    ae_epochs: int = 20
    patience: int | None = 5
    thresholds: tuple[float, ...] = (0.0, 0.08, 0.10)


@dataclass
class AmsHeResult:
    """Everything the study's views and tables need, one row per test-MC and data event in ``frame``."""

    frame: pd.DataFrame
    class_names: tuple[str, ...]
    fractions: np.ndarray
    classifier_run_id: str
    autoencoder_run_id: str
    study_run_id: str
    settings: AmsHeSettings = field(default_factory=AmsHeSettings)

    @property
    def proba(self) -> np.ndarray:
        """(n, 4) class probabilities of every row."""
        return self.frame[[f"p_{c}" for c in self.class_names]].to_numpy()


def _mc_schema() -> Schema:
    return Schema(features=tuple(FEATURES), label="label", classes=tuple(CLASS_NAMES), weight="weight")


def _with_discriminants(frame: pd.DataFrame, scores: pd.DataFrame, fractions: np.ndarray) -> pd.DataFrame:
    proba = scores[[f"p_{c}" for c in CLASS_NAMES]].to_numpy()
    d = pd.DataFrame(discriminants(proba, fractions), columns=discriminant_names(CLASS_NAMES), index=frame.index)
    return pd.concat([frame, scores, d], axis=1)


def run_ams_he(settings: AmsHeSettings, store: RunStore, *, callbacks: Sequence = (), cancel=None,
               progress=None) -> AmsHeResult:
    """Simulate, train the classifier and the autoencoder, score, and save the study's result.

    Args:
        settings: sizes, seeds and hyperparameters.
        store: where the two model runs and the study record are saved.
        callbacks: Trainer callbacks used for both trainings (progress bars, live history).
        cancel: optional CancelToken, checked during both trainings.
        progress: optional function ``progress(step: str)`` told which stage has started.

    Returns:
        The AmsHeResult (also saved, so ``load_ams_he`` finds it on the next start).
    """
    say = progress or (lambda step: None)
    say(f"simulating {settings.events:,} MC and {settings.data_events:,} data events")
    mc = simulate_ams_he(settings.events, seed=settings.seed, sample="mc")
    data = simulate_ams_he(settings.data_events, seed=settings.seed + 1, sample="data",
                           anomaly_fraction=settings.anomaly_fraction)
    base = {"study": STUDY_NAME, "settings": _settings_dict(settings)}

    say("training the FCNN classifier")
    mc_table = EventTable(mc, _mc_schema())
    classifier = train_on_table(
        mc_table,
        model={"kind": "mlp_classifier", "layers": list(settings.classifier_layers), "dropout": settings.dropout},
        train=TrainSettings(epochs=settings.classifier_epochs, batch_size=settings.classifier_batch_size,
                            lr=settings.classifier_lr, seed=settings.seed, early_stopping=settings.patience,
                            class_weight=settings.class_weight),
        split=SplitConfig(validation=0.21, test=0.30, seed=settings.seed),
        store=store, config={**base, "role": "classifier"}, callbacks=callbacks, cancel=cancel,
    )
    is_train = (classifier.scores["split"] == "train").to_numpy()
    fractions = class_fractions(mc_table.labels()[is_train], len(CLASS_NAMES), mc_table.weights()[is_train])

    say("scoring MC test and data events with the classifier")
    mc_test = mc[(classifier.scores["split"] == "test").to_numpy()].reset_index(drop=True)
    data_schema = Schema(features=tuple(FEATURES), weight="weight")
    mc_scored = _with_discriminants(mc_test, score_table(classifier, EventTable(mc_test, data_schema)), fractions)
    data_scored = _with_discriminants(data, score_table(classifier, EventTable(data, data_schema)), fractions)

    say("training the autoencoder on data (37 features + 4 discriminants)")
    ae_features = tuple(FEATURES) + tuple(discriminant_names(CLASS_NAMES))
    ae_table = EventTable(data_scored, Schema(features=ae_features, weight="weight"))
    autoencoder = train_on_table(
        ae_table,
        model={"kind": "autoencoder", "layers": list(settings.ae_layers)},
        train=TrainSettings(epochs=settings.ae_epochs, batch_size=settings.ae_batch_size, lr=settings.ae_lr,
                            seed=settings.seed, early_stopping=settings.patience),
        split=SplitConfig(validation=0.5, test=0.0, seed=settings.seed),
        store=store,
        config={**base, "role": "autoencoder", "upstream": {"classifier_run": classifier.id,
                                                              "fractions": fractions.tolist()}},
        callbacks=callbacks, cancel=cancel,
    )

    say("scoring anomalies and saving the study")
    columns = ["sample", "label", "weight", *(f"p_{c}" for c in CLASS_NAMES), *discriminant_names(CLASS_NAMES),
               "anomaly"]
    parts = []
    for name, scored in (("mc", mc_scored), ("data", data_scored)):
        anomaly = score_table(autoencoder, EventTable(scored, Schema(features=ae_features)))["anomaly"]
        parts.append(scored.assign(sample=name, anomaly=anomaly.to_numpy())[columns])
    frame = pd.concat(parts, ignore_index=True)
    frame["sample"] = frame["sample"].astype("category")
    frame["label"] = frame["label"].astype(str)

    record = {**base, "classifier_run": classifier.id, "autoencoder_run": autoencoder.id,
              "class_names": list(CLASS_NAMES), "fractions": fractions.tolist()}
    with store.create("study") as writer:
        writer.write_yaml("config.yaml", record)
        writer.write_parquet("frame.parquet", frame)
    return AmsHeResult(frame=frame, class_names=tuple(CLASS_NAMES), fractions=fractions,
                       classifier_run_id=classifier.id, autoencoder_run_id=autoencoder.id,
                       study_run_id=writer.id, settings=settings)


def _settings_dict(settings: AmsHeSettings) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}


def load_ams_he(store: RunStore, study_run_id: str | None = None) -> AmsHeResult | None:
    """The newest saved He study in ``store`` (or the one named), or None when there is none yet."""
    run = store.load_study(STUDY_NAME, study_run_id)
    if run is None:
        return None
    cfg = run.config
    frame = pd.read_parquet(run.path / "frame.parquet")
    fields = AmsHeSettings.__dataclass_fields__
    raw = {k: v for k, v in cfg.get("settings", {}).items() if k in fields}
    settings = AmsHeSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    return AmsHeResult(frame=frame, class_names=tuple(cfg["class_names"]), fractions=np.asarray(cfg["fractions"]),
                       classifier_run_id=cfg["classifier_run"], autoencoder_run_id=cfg["autoencoder_run"],
                       study_run_id=run.id, settings=settings)
