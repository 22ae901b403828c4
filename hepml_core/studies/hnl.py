"""CMS heavy neutral leptons with a hadronic tau: parametrised DNN, BDT, transfer learning, Z vs mass.

The recipe of the talk (seeds/003): simulated three-lepton events in five channels with signal at 16
mass hypotheses (background gets a random hypothesis); a parametrised DNN on all 85 features plus the
mass hypothesis and the channel one-hot, hidden [83, 30]; an xgboost BDT on the same inputs; a
transfer-learning classifier whose trunk is a kinematic-regression network pre-trained on unlimited
generated events (drop-in every 3 layers, E_tot-scaled targets), frozen and then unfrozen with dropout;
and the best classical observable Mt_tot. For comparison, the per-mass variants of the earlier work: one
DNN and one BDT per mass hypothesis, each trained on the signal of its mass against all background
(``per_mass_models``). Every model is evaluated per (mass, channel) on test events with adaptively binned
S/sqrt(B) (``significance_vs_mass``).

The regression network defaults to 128 x 6 so that the whole study fits in minutes on two cores;
``HnlSettings().full_size_pretraining()`` gives the talk's 1024 x 25 (about 25 million weights), meant for
a GPU (``Trainer(device="auto")`` uses one when torch sees it).

Parametrised models score every test background event once per mass hypothesis (``HnlResult.scores``),
so the background at mass m is what the model says at m; the talk's own shortcut, each background event
scored only at its random hypothesis, is kept in ``HnlResult.events``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from hepml_core.config import SplitConfig, TrainSettings
from hepml_core.data.preprocessing import Preprocessor
from hepml_core.data.schema import Schema
from hepml_core.data.split import split_indices
from hepml_core.data.table import EventTable
from hepml_core.exceptions import ConfigError
from hepml_core.models.registry import build_model
from hepml_core.pipeline import train_on_table
from hepml_core.runs import RunStore
from hepml_core.scoring.score import predict_outputs
from hepml_core.simulate._hnl_features import GEV_FEATURES, REGRESSION_INPUTS, REGRESSION_TARGETS
from hepml_core.simulate.hnl import CHANNELS, FEATURES, MASSES, HnlKinematicsGenerator, simulate_hnl
from hepml_core.studies._hnl_bdt import booster_to_json, predict_bdt, train_bdt
from hepml_core.studies._hnl_per_mass import (
    PER_MASS_MODELS, save_per_mass_bdt, save_per_mass_dnn, train_per_mass_bdt, train_per_mass_dnn,
)
from hepml_core.studies._hnl_transfer import UnfreezeAt, predict_regression, pretrain_regressor
from hepml_core.training.data import TensorData
from hepml_core.training.trainer import Trainer

__all__ = ["HnlSettings", "HnlResult", "run_hnl", "load_hnl", "STUDY_NAME", "MODELS", "TRAINED_MODELS",
           "PARAMETRISED_MODELS", "PER_MASS_MODELS", "FULL_SIZE_REGRESSION", "CLASSICAL", "ONEHOT", "SIDE_COLUMNS",
           "RESIDUAL_FEATURES", "model_inputs", "with_models", "study_models", "transfer_classifier"]

STUDY_NAME = "hnl"
#: models that take the mass hypothesis as an input (one model for every mass)
PARAMETRISED_MODELS = ("bdt", "pnn", "transfer")
#: every trained model's score column; the per-mass variants (``PER_MASS_MODELS``) come last
TRAINED_MODELS = (*PARAMETRISED_MODELS, *PER_MASS_MODELS)
#: the talk's regression network (width x depth): ``HnlSettings.full_size_pretraining()``
FULL_SIZE_REGRESSION = (1024, 25)
MODELS = ("mt_tot", *TRAINED_MODELS)
#: classical observables kept per test event (any of them can be binned like a model score)
CLASSICAL = ("mt_tot", "m_3l", "e_tot", "lt_met", "met", "mt_3l_met", "max_mll", "min_mll", "ht", "pt_3l")
ONEHOT = tuple(f"is_{c}" for c in CHANNELS)
SIDE_COLUMNS = (*ONEHOT, "mass_hyp", "l1_charge", "l2_charge", "l3_charge")
RESIDUAL_FEATURES = ("dphi_12", "dr_13", "m_12", "mt_tot", "e_tot")
_CLASSES = ("background", "signal")


@dataclass(frozen=True)
class HnlSettings:
    """Defaults are the talk's numbers where it gives them; the regression network is smaller than the talk's
    1024 x 25 (``full_size_pretraining()`` is the full-size option).

    ``models`` says which of the study's models to (re)train; the study's models are the parametrised ones
    plus, with ``per_mass_models``, the per-mass DNN and BDT (names in ``models`` outside the study's models
    are not trained). ``per_mass_masses`` limits the per-mass variants to a few masses (None: all 16); the
    other masses get no per-mass score.
    """

    events: int = 1_600_000  # the talk: 1.6M events, ~216k signal
    seed: int = 1
    validation_fraction: float = 0.2
    test_fraction: float = 0.25
    models: tuple[str, ...] = TRAINED_MODELS  # which models to (re)train; others come from ``base``
    # parametrised DNN: all 85 features + mass hypothesis + channel one-hot, hidden [83, 30]
    pnn_hidden: tuple[int, ...] = (83, 30)
    pnn_dropout: float = 0.0
    pnn_lr: float = 1e-3
    pnn_batch_size: int = 1024
    pnn_epochs: int = 15
    # xgboost BDT on the same inputs
    bdt_trees: int = 200
    bdt_depth: int = 6
    bdt_lr: float = 0.15
    bdt_max_train: int | None = 300_000  # training events drawn from the training split (None: all)
    # regression pre-training on fresh generated events every epoch
    regression_width: int = 128
    regression_depth: int = 6
    drop_in_every: int = 3
    drop_in_comparison: bool = True  # also pre-train a twin without drop-in (residual plots)
    regression_events_per_epoch: int = 50_000
    regression_epochs: int = 10
    regression_lr: float = 1e-3
    regression_lr_decay: float = 0.9
    regression_batch_size: int = 512
    # transfer classifier: trunk + [128, 128] head, frozen until unfreeze_epoch, dropout 0.5 after
    transfer_hidden: tuple[int, ...] = (128, 128)
    transfer_dropout: float = 0.5
    transfer_unfreeze_epoch: int = 5
    transfer_lr: float = 5e-4
    transfer_batch_size: int = 1024
    transfer_epochs: int = 8
    transfer_max_train: int | None = 300_000  # training events drawn from the training split (None: all)
    patience: int | None = 5
    bdt_threads: int = 2
    # per-mass variants: one [83, 30] DNN and one BDT per mass, signal of that mass vs all background
    per_mass_models: bool = True
    per_mass_masses: tuple[float, ...] | None = None  # None: all 16 mass hypotheses
    per_mass_hidden: tuple[int, ...] = (83, 30)
    per_mass_epochs: int = 5
    per_mass_bdt_trees: int = 100
    # background drawn once (training: this many, validation: half), shared by all masses; None: all
    per_mass_max_background: int | None = 100_000

    def full_size_pretraining(self) -> HnlSettings:
        """These settings with the talk's regression network: 1024 wide, 25 hidden layers (~25M weights).

        Slow on a CPU (each pre-training epoch is ~250x the default network's work); run it where torch sees
        a GPU, e.g. ``python benchmarks/accept_hnl.py --full-size-pretraining``.
        """
        width, depth = FULL_SIZE_REGRESSION
        return replace(self, regression_width=width, regression_depth=depth)


@dataclass
class HnlResult:
    """A finished HNL study.

    Attributes:
        events: one row per test event: ``event``, ``label`` (1 signal), ``channel``, ``mass_hyp`` (signal:
            its mass; background: its random hypothesis), ``process``, ``weight`` (expected events, scaled
            to the whole sample), the ``CLASSICAL`` observables and each model's score at ``mass_hyp``.
        scores: parametrised scores, signal test events at their mass and every background test event once
            per mass hypothesis: ``event``, ``label``, ``channel``, ``mass_hyp``, ``weight`` and one column per
            trained model.
        residuals: regression check on test events: ``feature``, ``true``, ``pred``, ``drop_in``.
        histories: model -> loss history rows (epoch, train_loss, val_loss).
    """

    events: pd.DataFrame
    scores: pd.DataFrame
    residuals: pd.DataFrame
    settings: HnlSettings
    run_ids: dict[str, str]
    study_run_id: str
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)
    masses: tuple[float, ...] = MASSES
    channels: tuple[str, ...] = CHANNELS

    @property
    def models(self) -> tuple[str, ...]:
        """Model score columns present (``mt_tot`` first, the per-mass variants last)."""
        return ("mt_tot", *[m for m in TRAINED_MODELS if m in self.scores.columns])


def study_models(settings: HnlSettings) -> tuple[str, ...]:
    """The trained models a study with these settings has: the parametrised ones, and the per-mass ones
    when ``settings.per_mass_models``."""
    return PARAMETRISED_MODELS + (PER_MASS_MODELS if settings.per_mass_models else ())


def _per_mass_masses(settings: HnlSettings) -> tuple[float, ...]:
    return MASSES if settings.per_mass_masses is None else tuple(float(m) for m in settings.per_mass_masses)


def model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Inputs of the parametrised DNN and the BDT: the 85 features, the mass hypothesis, the channel one-hot."""
    onehot = {f"is_{c}": (frame["channel"] == c).to_numpy(dtype=np.float32) for c in CHANNELS}
    return pd.concat([frame[list(FEATURES) + ["mass_hyp"]].reset_index(drop=True),
                      pd.DataFrame(onehot)], axis=1)


def _train_weights(frame: pd.DataFrame) -> np.ndarray:
    """Balanced training weights: signal and background halves, each mass hypothesis an equal signal share."""
    w = frame["weight"].to_numpy(dtype=np.float64)
    y = frame["label"].to_numpy()
    n = len(frame)
    out = np.zeros(n)
    sig = y == 1
    masses = frame["mass_hyp"].to_numpy()
    sig_masses = np.unique(masses[sig])
    for m in sig_masses:
        rows = sig & (masses == m)
        out[rows] = w[rows] / w[rows].sum() * (n / 2 / len(sig_masses))
    bkg = ~sig
    if bkg.any():
        out[bkg] = w[bkg] / w[bkg].sum() * (n / 2)
    return out


def _settings_dict(settings: HnlSettings) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}


def _check(settings: HnlSettings) -> None:
    unknown = [m for m in settings.models if m not in TRAINED_MODELS]
    if unknown:
        raise ConfigError(f"HnlSettings.models: unknown {unknown}; accepted: {', '.join(TRAINED_MODELS)}")
    if settings.events < 2000:
        raise ConfigError(f"HnlSettings.events = {settings.events}; use at least 2000 (16 masses x 5 channels "
                          f"need signal in every test group)")
    if settings.per_mass_masses is not None:
        bad = [m for m in settings.per_mass_masses if not np.isclose(MASSES, float(m)).any()]
        if bad or not settings.per_mass_masses:
            raise ConfigError(f"HnlSettings.per_mass_masses = {settings.per_mass_masses!r}: "
                              f"{'unknown ' + str(bad) if bad else 'empty'}; accepted: some of "
                              f"{', '.join(f'{m:g}' for m in MASSES)} (None: all)")
    if not any(m in study_models(settings) for m in settings.models):
        raise ConfigError(f"HnlSettings.models = {settings.models!r} trains none of the study's models "
                          f"{study_models(settings)}; set per_mass_models=True to train per-mass variants")


@torch.no_grad()
def _classifier_p(model, x: np.ndarray) -> np.ndarray:
    return predict_outputs(model, x)[:, 1]


class _Scorer:
    """Scores of one trained model for a frame of events at a given mass hypothesis."""

    def __init__(self, name, fn):
        self.name, self.fn = name, fn

    def __call__(self, frame: pd.DataFrame, latent=None) -> np.ndarray:
        return self.fn(frame, latent)


def _pnn_scorer(run):
    model, pre = run.model(), run.preprocessor
    feats = list(run.schema.features)
    return _Scorer("pnn", lambda f, _: _classifier_p(model, pre.transform(model_inputs(f)[feats].to_numpy(np.float32))))


def _bdt_scorer(booster, feats):
    return _Scorer("bdt", lambda f, _: predict_bdt(booster, model_inputs(f)[feats].to_numpy(np.float32)))


def _transfer_scorer(model, pre):
    @torch.no_grad()
    def fn(frame, latent):
        model.eval()
        x = torch.from_numpy(_transfer_x(frame, pre))
        lat = model.latent(x[:, : model.n_raw]) if latent is None else latent
        return torch.softmax(model.head_logits(lat, x[:, model.n_raw:]), dim=1)[:, 1].numpy().astype(np.float64)

    @torch.no_grad()
    def latent_of(frame):
        model.eval()
        return model.latent(torch.from_numpy(_transfer_x(frame, pre))[:, : model.n_raw])

    scorer = _Scorer("transfer", fn)
    scorer.latent = latent_of  # the trunk does not depend on the mass hypothesis: one pass per event
    return scorer


def _transfer_x(frame: pd.DataFrame, pre: Preprocessor) -> np.ndarray:
    cols = list(REGRESSION_INPUTS) + list(SIDE_COLUMNS)
    return pre.transform(model_inputs(frame)[cols].to_numpy(np.float32))


def _save_regressor(store, model, pre, generator, history, base, role, residuals):
    with store.create("kinematic_regressor") as writer:
        writer.write_yaml("config.yaml", {**base, "role": role, "model": {"kind": model.kind, **model.hparams}})
        writer.write_json("preprocessing.json", pre.to_dict())
        writer.write_json("generator.json", generator.to_dict())
        writer.write_tensors("model.safetensors", model.state_dict())
        writer.write_csv("history.csv", pd.DataFrame(history))
        last = history[-1]["val_loss"] if history else None
        writer.write_json("metrics.json", {"val_loss": last, "epochs": len(history)})
        writer.write_parquet("residuals.parquet", residuals)
    return writer.id


def _residuals(model, generator, pre_scale, test: pd.DataFrame, drop_in: bool, n: int = 4000) -> pd.DataFrame:
    """True vs predicted derived features (physical units) on real test events."""
    sub = test.iloc[:n]
    x = pre_scale(sub[list(REGRESSION_INPUTS)].to_numpy(np.float32))
    pred = predict_regression(model, x).astype(np.float64)
    e_true = sub["e_tot"].to_numpy()
    parts = []
    for name in RESIDUAL_FEATURES:
        j = REGRESSION_TARGETS.index(name)
        if j == 0:
            p = pred[:, 0] * 100.0
        else:
            p = pred[:, j] * generator.scale_[j] + generator.mean_[j]
            if name in GEV_FEATURES:
                p = p * e_true
        parts.append(pd.DataFrame({"feature": name, "true": sub[name].to_numpy(), "pred": p, "drop_in": drop_in}))
    return pd.concat(parts, ignore_index=True)


def run_hnl(settings: HnlSettings, store: RunStore, *, callbacks: Sequence = (), cancel=None, progress=None,
            base: HnlResult | None = None) -> HnlResult:
    """Simulate, train the BDT, the parametrised DNN and the transfer model, score and save the study.

    Args:
        settings: sizes, seeds and hyperparameters.
        store: where the model runs and the study record are saved.
        callbacks: Trainer callbacks for the neural networks (in order: pnn, regressor(s), transfer, and
            dnn_per_mass as one fit of all its masses' epochs).
        cancel: optional CancelToken.
        progress: optional ``progress(step: str)``.
        base: a previous result of the same events (same events, seed and fractions): models not listed
            in ``settings.models`` keep its scores (the app's "retrain one model"), when it has them.

    Returns:
        The HnlResult (also saved; ``load_hnl`` finds it).

    Raises:
        ConfigError: bad settings, or a ``base`` made from other events.
    """
    _check(settings)
    say = progress or (lambda step: None)
    wanted = study_models(settings)
    retrain = tuple(m for m in wanted if m in settings.models)
    if base is not None:
        same = ("events", "seed", "validation_fraction", "test_fraction")
        diff = [k for k in same if getattr(base.settings, k) != getattr(settings, k)]
        if diff:
            raise ConfigError(f"run_hnl: base study differs in {diff}; retrain all models or use the same values")
    elif retrain != wanted:
        missing = [m for m in wanted if m not in retrain]
        raise ConfigError(f"run_hnl: models {missing} are not retrained but no base study was given to take them from")
    say(f"simulating {settings.events:,} events")
    frame = simulate_hnl(settings.events, seed=settings.seed)
    frame["train_weight"] = _train_weights(frame)
    y = frame["label"].to_numpy()
    parts = split_indices(len(frame), validation=settings.validation_fraction, test=settings.test_fraction,
                          seed=settings.seed, stratify=y)
    tr, va, te = parts.train, parts.validation, parts.test
    record = {"study": STUDY_NAME, "settings": _settings_dict(settings)}
    run_ids = dict(base.run_ids) if base is not None else {}
    histories = dict(base.histories) if base is not None else {}
    scorers = []
    inputs = model_inputs(frame)
    feats = list(inputs.columns)

    if "pnn" in retrain:
        say("training the parametrised DNN (85 features + mass + channel)")
        table = EventTable(pd.concat([inputs, frame[["label", "train_weight"]]], axis=1),
                           Schema(features=tuple(feats), label="label", classes=_CLASSES, weight="train_weight"))
        run = train_on_table(
            table, model={"kind": "mlp_classifier", "layers": [len(feats), *settings.pnn_hidden, 2],
                          "dropout": settings.pnn_dropout},
            train=TrainSettings(epochs=settings.pnn_epochs, batch_size=settings.pnn_batch_size, lr=settings.pnn_lr,
                                seed=settings.seed, early_stopping=settings.patience),
            split=SplitConfig(validation=settings.validation_fraction, test=settings.test_fraction, seed=settings.seed),
            store=store, config={**record, "role": "pnn"}, callbacks=callbacks, cancel=cancel)
        run_ids["pnn"] = run.id
        histories["pnn"] = run.history
        scorers.append(_pnn_scorer(run))

    if "bdt" in retrain:
        say(f"training the BDT ({settings.bdt_trees} trees of depth {settings.bdt_depth})")
        x = inputs.to_numpy(np.float32)
        tw = frame["train_weight"].to_numpy()
        sub = _cap(tr, settings.bdt_max_train, settings.seed)
        booster, hist = train_bdt(x[sub], y[sub], tw[sub] * len(tr) / len(sub), x[va], y[va], tw[va],
                                  trees=settings.bdt_trees,
                                  depth=settings.bdt_depth, lr=settings.bdt_lr, seed=settings.seed,
                                  n_jobs=settings.bdt_threads, early_stopping=settings.patience and 20,
                                  cancel=cancel, feature_names=feats)
        with store.create("xgboost_bdt") as writer:
            writer.write_yaml("config.yaml", {**record, "role": "bdt", "features": feats})
            writer.write_json("booster.json", booster_to_json(booster))
            writer.write_csv("history.csv", pd.DataFrame(hist))
            writer.write_json("metrics.json", {"val_logloss": hist[-1]["val_loss"], "trees": len(hist)})
        run_ids["bdt"] = writer.id
        histories["bdt"] = pd.DataFrame(hist)
        scorers.append(_bdt_scorer(booster, feats))

    residuals = base.residuals if base is not None else pd.DataFrame(columns=["feature", "true", "pred", "drop_in"])
    if "transfer" in retrain:
        scorer, residuals = _train_transfer(settings, store, frame, tr, va, te, record, run_ids, histories,
                                            callbacks, cancel, say)
        scorers.append(scorer)

    per_mass = _per_mass_masses(settings)
    if "dnn_per_mass" in retrain:
        say(f"training the per-mass DNNs ({len(per_mass)} masses, hidden {list(settings.per_mass_hidden)}, "
            f"{settings.per_mass_epochs} epochs each)")
        models, pre, feats_pm, hist = train_per_mass_dnn(
            frame, tr, va, per_mass, hidden=settings.per_mass_hidden, dropout=settings.pnn_dropout,
            epochs=settings.per_mass_epochs, batch_size=settings.pnn_batch_size, lr=settings.pnn_lr,
            max_background=settings.per_mass_max_background, seed=settings.seed, patience=settings.patience,
            callbacks=callbacks, cancel=cancel)
        run_ids["dnn_per_mass"], scorer = save_per_mass_dnn(store, record, models, pre, feats_pm, hist)
        histories["dnn_per_mass"] = pd.DataFrame(hist)
        scorers.append(scorer)
    if "bdt_per_mass" in retrain:
        say(f"training the per-mass BDTs ({len(per_mass)} masses, {settings.per_mass_bdt_trees} trees each)")
        boosters, feats_pm, hist = train_per_mass_bdt(
            frame, tr, va, per_mass, trees=settings.per_mass_bdt_trees, depth=settings.bdt_depth,
            lr=settings.bdt_lr, max_background=settings.per_mass_max_background, seed=settings.seed,
            threads=settings.bdt_threads, patience=settings.patience, cancel=cancel)
        run_ids["bdt_per_mass"], scorer = save_per_mass_bdt(store, record, boosters, feats_pm, hist)
        histories["bdt_per_mass"] = pd.DataFrame(hist)
        scorers.append(scorer)

    say("scoring test events at every mass hypothesis")
    events, scores = _score(settings, frame, te, scorers, base)
    with store.create("study") as writer:
        writer.write_yaml("config.yaml", {**record, "runs": run_ids, "masses": list(MASSES),
                                          "channels": list(CHANNELS)})
        writer.write_parquet("events.parquet", events)
        writer.write_parquet("scores.parquet", scores)
        writer.write_parquet("residuals.parquet", residuals)
    return HnlResult(events=events, scores=scores, residuals=residuals, settings=settings, run_ids=run_ids,
                     study_run_id=writer.id, histories=histories)


def _train_transfer(settings, store, frame, tr, va, te, record, run_ids, histories, callbacks, cancel, say):
    say("fitting the event generator of the regression pre-training")
    train_frame = frame.iloc[tr]
    generator = HnlKinematicsGenerator(seed=settings.seed).fit(train_frame)
    pre = Preprocessor().fit(_side_frame(train_frame).to_numpy(np.float32),
                             sample_weight=train_frame["train_weight"].to_numpy())
    n_side = len(SIDE_COLUMNS)

    def scale_raw(x14):
        return pre.transform(np.column_stack([x14, np.zeros((len(x14), n_side), np.float32)]))[:, : x14.shape[1]]

    test_frame = frame.iloc[te]
    residual_parts = []
    variants = [(settings.drop_in_every, True)]
    if settings.drop_in_comparison and settings.drop_in_every > 0:
        variants.append((0, False))
    regressor = None
    for every, is_drop_in in variants:
        role = "regressor" if is_drop_in else "regressor_no_drop_in"
        say(f"pre-training the kinematic regression ({settings.regression_width} x {settings.regression_depth}, "
            f"drop-in {'every ' + str(every) if every else 'off'}) on fresh events every epoch")
        model, history, _ = pretrain_regressor(
            generator, scale_raw, width=settings.regression_width, depth=settings.regression_depth,
            drop_in_every=every, epochs=settings.regression_epochs,
            events_per_epoch=settings.regression_events_per_epoch, batch_size=settings.regression_batch_size,
            lr=settings.regression_lr, lr_decay=settings.regression_lr_decay, seed=settings.seed,
            callbacks=callbacks, cancel=cancel)
        res = _residuals(model, generator, scale_raw, test_frame, is_drop_in)
        residual_parts.append(res)
        run_ids[role] = _save_regressor(store, model, pre, generator, history, record, role, res)
        histories[role] = pd.DataFrame(history)
        if is_drop_in:
            regressor = model

    say("training the transfer classifier (trunk frozen, then unfrozen with dropout)")
    x = _transfer_x(frame, pre)
    y = frame["label"].to_numpy()
    tw = frame["train_weight"].to_numpy()
    clf = transfer_classifier(settings, x.shape[1], regressor)
    trainer = Trainer(epochs=settings.transfer_epochs, batch_size=settings.transfer_batch_size, lr=settings.transfer_lr,
                      seed=settings.seed, early_stopping=settings.patience,
                      callbacks=[*callbacks, UnfreezeAt(clf, settings.transfer_unfreeze_epoch)], cancel=cancel)
    sub = _cap(tr, settings.transfer_max_train, settings.seed)
    result = trainer.fit(clf, TensorData(x[sub], y[sub], tw[sub]), TensorData(x[va], y[va], tw[va]))
    clf.set_frozen(False)
    with store.create("transfer_classifier") as writer:
        hp = dict(clf.hparams, frozen=False)
        writer.write_yaml("config.yaml", {**record, "role": "transfer", "model": {"kind": clf.kind, **hp},
                                          "upstream": {"regressor_run": run_ids["regressor"]}})
        writer.write_json("schema.json", Schema(features=tuple(REGRESSION_INPUTS) + SIDE_COLUMNS, label="label",
                                                classes=_CLASSES, weight="train_weight").to_dict())
        writer.write_json("preprocessing.json", pre.to_dict())
        writer.write_tensors("model.safetensors", result.best_state)
        writer.write_csv("history.csv", pd.DataFrame(result.history))
        writer.write_json("metrics.json", {"best_epoch": result.best_epoch, "train_seconds": result.seconds})
    run_ids["transfer"] = writer.id
    histories["transfer"] = pd.DataFrame(result.history)
    return _transfer_scorer(clf, pre), pd.concat(residual_parts, ignore_index=True)


def transfer_classifier(settings: HnlSettings, n_inputs: int, regressor):
    """The transfer classifier (frozen) whose trunk is a copy of ``regressor``'s hidden layers, head
    ``settings.transfer_hidden``; ``n_inputs`` counts the raw inputs and the side columns."""
    clf = build_model("transfer_classifier", n_inputs, 2, seed=settings.seed,
                      layers=[n_inputs, *settings.transfer_hidden, 2], trunk_layers=regressor.hparams["layers"],
                      drop_in_every=settings.drop_in_every, dropout=settings.transfer_dropout, frozen=True)
    clf.load_trunk(regressor.state_dict())
    return clf


def _cap(rows: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """At most ``limit`` of ``rows`` (a seeded random subset, sorted), for the slower models."""
    if limit is None or len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(seed + 7).choice(rows, size=int(limit), replace=False))


def _side_frame(frame: pd.DataFrame) -> pd.DataFrame:
    onehot = {f"is_{c}": (frame["channel"] == c).to_numpy(dtype=np.float32) for c in CHANNELS}
    cols = {c: frame[c].to_numpy() for c in REGRESSION_INPUTS}
    cols.update(onehot)
    cols.update({c: frame[c].to_numpy() for c in ("mass_hyp", "l1_charge", "l2_charge", "l3_charge")})
    return pd.DataFrame(cols)


def _score(settings: HnlSettings, frame: pd.DataFrame, te: np.ndarray, scorers, base: HnlResult | None):
    test = frame.iloc[te].reset_index(drop=True)
    scale = 1.0 / settings.test_fraction  # test yields stand for the whole sample
    events = pd.DataFrame({"event": te.astype(np.int64), "label": test["label"].to_numpy(np.int8),
                           "channel": test["channel"], "mass_hyp": test["mass_hyp"].to_numpy(),
                           "process": test["process"], "weight": test["weight"].to_numpy() * scale})
    for c in CLASSICAL:
        events[c] = test[c].to_numpy()
    latents = {s.name: s.latent(test) for s in scorers if hasattr(s, "latent")}
    for s in scorers:
        events[s.name] = s(test, latents.get(s.name)).astype(np.float32)
    sig = test["label"].to_numpy() == 1
    bkg_idx = np.flatnonzero(~sig)
    parts = [events.loc[sig, ["event", "label", "channel", "mass_hyp", "weight", *[s.name for s in scorers]]]]
    bkg = test.iloc[bkg_idx]
    for m in MASSES:
        at_m = bkg.assign(mass_hyp=m)
        cols = {s.name: s(at_m, None if s.name not in latents else latents[s.name][torch.from_numpy(bkg_idx)])
                .astype(np.float32) for s in scorers}
        parts.append(events.loc[~sig, ["event", "label", "channel", "weight"]].assign(mass_hyp=m, **cols))
    scores = pd.concat(parts, ignore_index=True)[["event", "label", "channel", "mass_hyp", "weight",
                                                 *[s.name for s in scorers]]]
    if base is not None:
        for name in TRAINED_MODELS:
            if name not in scores.columns and name in base.scores.columns:
                if len(base.scores) != len(scores) or not np.array_equal(base.scores["event"].to_numpy(),
                                                                         scores["event"].to_numpy()):
                    raise ConfigError("run_hnl: the base study was made from other events; retrain all models")
                scores[name] = base.scores[name].to_numpy()
                events[name] = base.events[name].to_numpy()
    ordered = [m for m in TRAINED_MODELS if m in scores.columns]
    scores = scores[["event", "label", "channel", "mass_hyp", "weight", *ordered]]
    events = events[[c for c in events.columns if c not in TRAINED_MODELS] + ordered]
    return events, scores


def load_hnl(store: RunStore, study_run_id: str | None = None) -> HnlResult | None:
    """The newest saved HNL study in ``store`` (or the one named), or None when there is none yet."""
    run = store.load_study(STUDY_NAME, study_run_id)
    if run is None:
        return None
    cfg = run.config
    fields = HnlSettings.__dataclass_fields__
    raw = {k: v for k, v in cfg.get("settings", {}).items() if k in fields}
    settings = HnlSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    histories = {}
    for role, run_id in cfg.get("runs", {}).items():
        try:
            histories[role] = store.load(run_id).history
        except Exception:  # a deleted model run must not hide the study's saved scores
            histories[role] = pd.DataFrame(columns=["epoch", "train_loss", "val_loss"])
    return HnlResult(events=pd.read_parquet(run.path / "events.parquet"),
                     scores=pd.read_parquet(run.path / "scores.parquet"),
                     residuals=pd.read_parquet(run.path / "residuals.parquet"), settings=settings,
                     run_ids=dict(cfg.get("runs", {})), study_run_id=run.id, histories=histories,
                     masses=tuple(cfg.get("masses", MASSES)), channels=tuple(cfg.get("channels", CHANNELS)))


def with_models(settings: HnlSettings, models: Sequence[str]) -> HnlSettings:
    """``settings`` with another list of models to retrain."""
    return replace(settings, models=tuple(models))
