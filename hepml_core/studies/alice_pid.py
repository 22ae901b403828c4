"""ALICE particle identification with missing detector signals: feature-set embedding vs imputation (seeds/002).

The recipe of the talk: tracks with 19 features, some of them missing (no TOF, no TRD, no ITS signal);
one-vs-all models per species: the feature-set embedding + Transformer + attention pooling model
(missing features absent from the set), and the simple network (64, 32, 16, leaky ReLU, dropout 0.1)
with mean imputation, regression imputation, case deletion (trained on complete tracks and, as in the
talk's second table, scored on complete tracks only: it cannot score a track with a missing signal)
and an ensemble of one network per missing pattern; plus the standard n-sigma selection
(|n_sigma_TPC| < 3 below pT = 0.5 GeV/c, sqrt(n_sigma_TPC^2 + n_sigma_TOF^2) < 3 above, TOF required
there) and gradient-boosted trees (xgboost, NaN native). 30 % of the tracks are the common test set;
of the rest 70 % train and 30 % validate. The talk's loop: Adam lr 5e-4, exponential decay 0.98 per
epoch, batch 64, binary cross entropy, no class weights.

Epochs. The talk's 30 epochs are over ~1.3M training tracks (~600k optimizer steps). A smaller
sample gives proportionally fewer steps per epoch, and case deletion (complete tracks only, ~18 %)
five times fewer again: at 30k tracks and 15 epochs its network took ~600 steps, had seen ~150
kaons, and still predicted "not a kaon" for every track (F1 = 0). So ``*_epochs`` is a ceiling,
early stopping on the validation loss (``patience``) ends each fit when it stops improving (the
best epoch's weights are kept), and epochs, patience and the per-epoch decay count passes over the
whole training pool: networks trained on a subset (case deletion, the ensemble's per-pattern
networks) get as many optimizer steps, at the same learning rates, as those that see every track
(``TrainPlan``).

``repeats`` > 1 trains every learned method again with seeds ``seed + r`` (initial weights,
shuffling, dropout and the training/validation split of the pool; same sample and test tracks),
so tables can quote the mean and spread of purity, efficiency and F1 over trainings, as the talk does.

With ``real=True`` the same methods run on the real ALICE pp 7 TeV samples (5 species, TPC + ITS
signals, ITS sometimes missing; the n-sigma selection is TPC-only with a response fitted on data).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from hepml_core.data.split import split_indices
from hepml_core.exceptions import ConfigError
from hepml_core.runs import RunStore
from hepml_core.simulate.alice_pid import (
    DETECTOR_GROUPS,
    FEATURES,
    SPECIES,
    CLASS_NAMES,
    simulate_alice_pid,
    species_charge,
    species_mass_name,
)
from hepml_core.studies import _alice_pid_methods as methods_mod
from hepml_core.studies._alice_pid_methods import METHOD_LABELS, METHODS, NN_METHODS, TrainPlan, missing_patterns
from hepml_core.studies._alice_pid_real import (
    REAL_FEATURES,
    REAL_SPECIES,
    TpcResponse,
    default_real_dir,
    load_real_tracks,
)

__all__ = ["AlicePidSettings", "AlicePidResult", "run_alice_pid", "load_alice_pid", "list_alice_pid", "nsigma_score",
           "STUDY_NAME", "METHODS", "METHOD_LABELS", "REAL_SPECIES", "TALK_EVENTS",
           "default_real_dir"]

STUDY_NAME = "alice-pid"
_REAL_GROUPS = {"ITS": ("dEdxITS",), "TPC": ("dEdxTPC",)}
_REAL_MAX_PER_SPECIES = 200_000


TALK_EVENTS = 2_700_000  # the talk's ~2.7M tracks: ``hepml study alice-pid --events 2700000``


@dataclass(frozen=True)
class AlicePidSettings:
    """The talk's loop settings; the default sample is small enough for minutes on a laptop CPU.

    The talk's size (``TALK_EVENTS``) is hours of CPU per species at batch 64; the defaults keep
    ``hepml study alice-pid`` under 20 minutes on one free CPU core (~18 estimated from the CPU time per
    optimizer step: 18 ms for the FSE model, 1.2 ms for the simple network; the FSE fits are ~55 % of it).
    At this size case deletion (~2.5k complete training tracks) does not yet beat the n-sigma selection
    on complete kaon tracks; from ~150k tracks it does for every species. Tests shrink ``events`` and the epochs.
    """

    events: int = 20_000  # simulated tracks (real: total tracks, at most 200k per species)
    seed: int = 1
    real: bool = False  # run on the real ALICE samples instead of the simulation
    real_its_missing: float = 0.0  # extra ITS signals hidden at random on real data (stress test)
    test_fraction: float = 0.30
    validation_fraction: float = 0.30
    threshold: float = 0.5  # the "certainty" cut of the tables (the app's slider starts here)
    methods: tuple[str, ...] = METHODS
    species: tuple[str, ...] = ()  # () = every species of the sample
    # Epoch ceilings (early stopping ends a fit when the validation loss stops improving). FSE: the talk's
    # 30 (a step costs ~16 simple-network steps); the simple networks need more epochs at small sizes.
    fse_epochs: int = 30
    mlp_epochs: int = 100
    batch_size: int = 64
    lr: float = 5e-4
    lr_decay: float | None = 0.98  # the talk's exponential scheduler (per epoch); None = constant lr
    patience: int | None = 10  # epochs without a better validation loss before a fit stops
    repeats: int = 1  # trainings per learned method (seeds seed, seed+1, ...) for mean +- std tables
    ensemble_min_tracks: int = 500
    xgb_trees: int = 300
    xgb_depth: int = 6
    threads: int = 1  # torch/xgboost threads while the study runs: batch-64 steps of small models lose
    # far more to thread synchronisation (worse on a shared machine) than they gain from a second core


@dataclass
class AlicePidResult:
    """Test tracks with every method's score per species (``score_<method>_<species>`` columns).

    ``frame`` also holds the features, ``label``, ``weight``, ``pattern`` (missing-signal pattern name)
    and ``complete``. ``run_ids[method][species]`` is the run of a one-vs-all model (for ``ensemble``:
    a dict pattern -> run id; xgboost and n-sigma have none). With ``settings.repeats`` > 1 the
    scores of repeat r >= 1 are the columns ``score_<method>_<species>_r<r>`` (n-sigma has one: it is
    not trained) and ``repeat_run_ids[r - 1]`` their runs; the views show repeat 0.
    """

    frame: pd.DataFrame
    sample: str  # "simulation" | "real"
    species: tuple[str, ...]
    methods: tuple[str, ...]
    class_names: tuple[str, ...]
    features: tuple[str, ...]
    run_ids: dict
    study_run_id: str
    settings: AlicePidSettings = field(default_factory=AlicePidSettings)
    repeat_run_ids: list = field(default_factory=list)

    @property
    def threshold(self) -> float:
        """The default threshold of the tables."""
        return float(self.settings.threshold)

    @property
    def patterns(self) -> list[str]:
        """Missing-signal pattern names, most frequent first."""
        return self.frame["pattern"].value_counts().index.astype(str).tolist()

    @property
    def repeats(self) -> int:
        """How many trainings of every learned method the frame holds scores of."""
        return int(self.settings.repeats)

    def score_column(self, method: str, species: str, repeat: int = 0) -> str:
        """The frame column of ``method``'s scores for ``species`` in ``repeat`` (n-sigma: always the one)."""
        if repeat and method != "nsigma":
            return f"score_{method}_{species}_r{repeat}"
        return f"score_{method}_{species}"

    def score(self, method: str, species: str, repeat: int = 0) -> np.ndarray:
        """Scores of ``method`` for ``species`` (NaN where the method cannot score: case deletion)."""
        return self.frame[self.score_column(method, species, repeat)].to_numpy(dtype=np.float64)

    def truth(self, species: str) -> np.ndarray:
        """True where the track is ``species``."""
        return (self.frame["label"] == species).to_numpy()


def nsigma_score(frame: pd.DataFrame, species: str) -> np.ndarray:
    """The standard selection as a score: 1 - n/6 (clipped at 0), so score >= 0.5 <=> n < 3.

    n = |n_sigma_TPC| below pT = 0.5 GeV/c and sqrt(n_sigma_TPC^2 + n_sigma_TOF^2) above (NaN without
    TOF: not selected); the charge sign must match the species.
    """
    hypothesis = species_mass_name(species)
    tpc = frame[f"nsigma_tpc_{hypothesis}"].to_numpy(np.float64)
    tof = frame[f"nsigma_tof_{hypothesis}"].to_numpy(np.float64)
    n = np.where(frame["pt"].to_numpy() < 0.5, np.abs(tpc), np.sqrt(tpc ** 2 + tof ** 2))
    score = np.clip(1.0 - n / 6.0, 0.0, 1.0)
    score[~np.isfinite(score) | (np.sign(frame["sign"].to_numpy()) != species_charge(species))] = 0.0
    return score.astype(np.float32)


@dataclass
class _Sample:
    frame: pd.DataFrame
    features: tuple[str, ...]
    species: tuple[str, ...]
    class_names: tuple[str, ...]
    groups: dict
    name: str


def _sample(settings: AlicePidSettings) -> _Sample:
    if settings.real:
        per = min(_REAL_MAX_PER_SPECIES, max(1, settings.events // len(REAL_SPECIES)))
        frame = load_real_tracks(per, seed=settings.seed, its_missing=settings.real_its_missing)
        return _Sample(frame, REAL_FEATURES, REAL_SPECIES, REAL_SPECIES, _REAL_GROUPS, "real")
    frame = simulate_alice_pid(settings.events, seed=settings.seed)
    return _Sample(frame, FEATURES, SPECIES, CLASS_NAMES, DETECTOR_GROUPS, "simulation")


def _check(settings: AlicePidSettings, sample: _Sample) -> tuple[tuple[str, ...], tuple[str, ...]]:
    repeats = settings.repeats
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ConfigError(f"alice-pid: repeats must be an int >= 1 (trainings per learned method), "
                          f"got {settings.repeats!r}")
    unknown = [m for m in settings.methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"alice-pid: unknown method(s) {unknown}; accepted: {', '.join(METHODS)}")
    species = tuple(settings.species) or sample.species
    bad = [s for s in species if s not in sample.species]
    if bad:
        raise ConfigError(f"alice-pid: species {bad} are not in the {sample.name} sample; "
                          f"it has {', '.join(sample.species)}")
    return tuple(settings.methods), species


def _nsigma_real(pool: pd.DataFrame, test: pd.DataFrame, species: Sequence[str]) -> dict[str, np.ndarray]:
    response = TpcResponse().fit(pool["p"].to_numpy(np.float64), pool["dEdxTPC"].to_numpy(np.float64),
                                 pool["label"].to_numpy())
    out = {}
    for s in species:
        n = np.abs(response.nsigma(test["p"].to_numpy(), test["dEdxTPC"].to_numpy(), s))
        score = np.clip(1.0 - n / 6.0, 0.0, 1.0)
        out[s] = np.where(np.isfinite(score), score, 0.0).astype(np.float32)
    return out


def run_alice_pid(settings: AlicePidSettings, store: RunStore, *, callbacks: Sequence = (), cancel=None,
                  progress=None) -> AlicePidResult:
    """Simulate (or read the real samples), train every method per species, score the test tracks, save.

    Args:
        settings: sizes, epochs and methods.
        store: where the model runs and the study record are saved.
        callbacks: Trainer callbacks for every fit (progress bars, live history).
        cancel: optional CancelToken checked during the trainings.
        progress: optional ``progress(step: str)`` told which stage has started.

    Returns:
        The AlicePidResult (also saved: ``load_alice_pid`` finds it).

    Raises:
        ConfigError: unknown methods or species. InputFileError: real data asked for but absent.
    """
    with _torch_threads(settings.threads):
        return _run(settings, store, callbacks, cancel, progress or (lambda step: None))


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run(settings: AlicePidSettings, store: RunStore, callbacks: Sequence, cancel, say) -> AlicePidResult:
    say("reading the real ALICE samples" if settings.real else f"simulating {settings.events:,} tracks")
    sample = _sample(settings)
    methods, species = _check(settings, sample)
    frame, features = sample.frame, sample.features
    lookup = {c: i for i, c in enumerate(sample.class_names)}
    parts = split_indices(len(frame), validation=0.0, test=settings.test_fraction, seed=settings.seed,
                          stratify=frame["label"].map(lookup).to_numpy())
    pool_idx = np.sort(np.concatenate([parts.train, parts.validation]))
    codes, names = missing_patterns(frame[list(features)].isna().to_numpy(), features, sample.groups)
    split = _Split(pool=frame.iloc[pool_idx].reset_index(drop=True),
                   test=frame.iloc[parts.test].reset_index(drop=True), features=tuple(features), names=list(names),
                   pool_codes=codes[pool_idx], test_codes=codes[parts.test])
    base = {"study": STUDY_NAME, "sample": sample.name, "settings": _settings_dict(settings)}
    scores: dict[str, np.ndarray] = {}
    run_ids: dict[str, dict] = {}
    repeat_run_ids: list[dict] = []
    for r in range(settings.repeats):
        tag = f" (repeat {r + 1}/{settings.repeats})" if settings.repeats > 1 else ""
        got, ids = _fit_learned(settings, sample, split, methods, species, store, seed=settings.seed + r,
                                config={**base, "repeat": r}, callbacks=callbacks, cancel=cancel,
                                say=lambda step, tag=tag: say(step + tag))
        scores.update({(k if r == 0 else f"{k}_r{r}"): v for k, v in got.items()})
        if r == 0:
            run_ids = ids
        else:
            repeat_run_ids.append(ids)

    if "nsigma" in methods:  # a fixed selection: nothing to repeat
        say("applying the standard n-sigma selection")
        if settings.real:
            for s, score in _nsigma_real(split.pool, split.test, species).items():
                scores[f"nsigma_{s}"] = score
        else:
            for s in species:
                scores[f"nsigma_{s}"] = nsigma_score(split.test, s)

    say("saving the study")
    is_complete_test = split.complete(split.test_codes)
    out = split.test[[*features, "label", "weight"]].copy()
    out["label"] = out["label"].astype(str)
    out["pattern"] = np.array(split.names, dtype=object)[split.test_codes]
    out["complete"] = is_complete_test
    score_frame = pd.DataFrame({f"score_{k}": v for k, v in scores.items()}, index=out.index)
    out = pd.concat([out, score_frame], axis=1)
    record = {**base, "species": list(species), "methods": list(methods), "class_names": list(sample.class_names),
              "features": list(features), "run_ids": run_ids, "repeat_run_ids": repeat_run_ids}
    with store.create("study") as writer:
        writer.write_yaml("config.yaml", record)
        writer.write_parquet("frame.parquet", out)
    return AlicePidResult(frame=out, sample=sample.name, species=species, methods=methods,
                          class_names=tuple(sample.class_names), features=tuple(features), run_ids=run_ids,
                          study_run_id=writer.id, settings=settings, repeat_run_ids=repeat_run_ids)


@dataclass
class _Split:
    """The training pool and the common test tracks, with each track's missing-pattern code."""

    pool: pd.DataFrame
    test: pd.DataFrame
    features: tuple[str, ...]
    names: list
    pool_codes: np.ndarray
    test_codes: np.ndarray

    def complete(self, codes: np.ndarray) -> np.ndarray:
        """True where the pattern is "complete" (no signal missing)."""
        return np.array(self.names)[codes] == "complete"


def _fit_learned(settings: AlicePidSettings, sample: _Sample, split: _Split, methods: Sequence[str],
                 species: Sequence[str], store: RunStore, *, seed: int, config: dict, callbacks: Sequence, cancel,
                 say) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Train every learned method with ``seed``; test scores ``{"<method>_<species>": score}`` and run ids."""
    pool, test, features = split.pool, split.test, split.features
    plan = TrainPlan(epochs=settings.mlp_epochs, batch_size=settings.batch_size, lr=settings.lr, seed=seed,
                     patience=settings.patience, validation=settings.validation_fraction, lr_decay=settings.lr_decay,
                     pool_size=len(pool))
    scores: dict[str, np.ndarray] = {}
    run_ids: dict[str, dict] = {m: {} for m in methods if m in NN_METHODS}
    x_test = test[list(features)].to_numpy(np.float32)
    is_complete_pool, is_complete_test = split.complete(split.pool_codes), split.complete(split.test_codes)
    for s in species:
        for method in (m for m in methods if m in NN_METHODS):
            say(f"training {method} for {s}")
            kw = dict(config=config, callbacks=callbacks, cancel=cancel)
            if method == "ensemble":
                # the case-deletion network is the ensemble's complete-track network: trained once
                done = {"complete": run_ids["case_deletion"][s]} if s in run_ids.get("case_deletion", {}) else {}
                runs = methods_mod.train_ensemble(pool, features, s, plan, store, pool_codes=split.pool_codes,
                                                  names=split.names, min_tracks=settings.ensemble_min_tracks,
                                                  trained=done, **kw)
                run_ids[method][s] = runs
                scores[f"{method}_{s}"] = methods_mod.score_ensemble(store, runs, test, features, split.test_codes,
                                                                     split.names)
                continue
            epochs = settings.fse_epochs if method == "fse_attention" else settings.mlp_epochs
            # case deletion: trained on complete tracks, and it cannot score the others (NaN)
            rows = is_complete_pool if method == "case_deletion" else slice(None)
            run = methods_mod.train_binary(pool[rows], features, s, method, plan, store, epochs=epochs, **kw)
            run_ids[method][s] = run.id
            score = np.full(len(test), np.nan, dtype=np.float32)
            keep = is_complete_test if method == "case_deletion" else np.ones(len(test), bool)
            score[keep] = methods_mod.score_positive(run, x_test[keep])
            scores[f"{method}_{s}"] = score
    if "xgboost" in methods:
        say("training xgboost (all species at once)")
        proba = methods_mod.train_xgboost(pool, test, features, sample.class_names, trees=settings.xgb_trees,
                                          depth=settings.xgb_depth, seed=seed,
                                          validation=settings.validation_fraction, threads=settings.threads,
                                          say=say)
        lookup = {c: i for i, c in enumerate(sample.class_names)}
        for s in species:
            scores[f"xgboost_{s}"] = proba[:, lookup[s]]
    return scores, run_ids


def _settings_dict(settings: AlicePidSettings) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}


def _settings_from(raw: dict) -> AlicePidSettings:
    fields = AlicePidSettings.__dataclass_fields__
    return AlicePidSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in fields})


def list_alice_pid(store: RunStore, *, real: bool | None = None) -> list[str]:
    """Ids of the saved alice-pid studies, newest first (``real`` filters by sample when given)."""
    out = []
    infos = [i for i in store.list() if i.status == "complete" and i.kind == "study" and i.study == STUDY_NAME]
    for info in sorted(infos, key=lambda i: i.created, reverse=True):
        if real is not None:
            sample = store.load(info.id).config.get("sample")
            if (sample == "real") != bool(real):
                continue
        out.append(info.id)
    return out


def load_alice_pid(store: RunStore, study_run_id: str | None = None, *, real: bool | None = None
                   ) -> AlicePidResult | None:
    """The newest saved alice-pid study in ``store`` (or the one named; ``real`` picks the sample), or None."""
    if study_run_id is None:
        ids = list_alice_pid(store, real=real)
        if not ids:
            return None
        study_run_id = ids[0]
    run = store.load(study_run_id)
    cfg = run.config
    frame = pd.read_parquet(run.path / "frame.parquet")
    return AlicePidResult(frame=frame, sample=cfg["sample"], species=tuple(cfg["species"]),
                          methods=tuple(cfg["methods"]), class_names=tuple(cfg["class_names"]),
                          features=tuple(cfg["features"]), run_ids=cfg["run_ids"], study_run_id=run.id,
                          settings=_settings_from(cfg.get("settings", {})),
                          repeat_run_ids=list(cfg.get("repeat_run_ids", [])))
