"""State of the ALICE PID page: one study result, the chosen species, the threshold and a chosen track.

Scores never change on this page: every (method, species, subset) and every missing pattern is
sorted once when the result is loaded (``MetricScans``, cached per server with ``pn.cache``), so the
threshold slider only does binary searches. ``PidSettingsForm`` and ``pid_job_factory`` are the
Retrain form and its work for the TrainingService.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import panel as pn
import param
import torch

from hepml_core.runs import RunStore
from hepml_core.simulate.alice_pid import SPECIES
from hepml_core.studies.alice_pid import (
    REAL_SPECIES,
    STUDY_NAME,
    AlicePidResult,
    AlicePidSettings,
    load_alice_pid,
    run_alice_pid,
)
from hepml_core.studies.alice_pid_tables import MetricScans, roc_table

from app.state.training import JobProbe

__all__ = ["PidData", "PidState", "PidSettingsForm", "pid_job_factory", "list_pid_studies", "load_pid_data",
           "attention_of_track", "SMALL_SETTINGS"]

#: what the page's "train" button runs when no study is saved yet (minutes on a laptop CPU)
SMALL_SETTINGS = AlicePidSettings(events=20_000, fse_epochs=5, mlp_epochs=5, xgb_trees=100)


@dataclass(frozen=True, eq=False)
class PidData:
    """A loaded study with its precomputed scans (read-only, shared by sessions)."""

    result: AlicePidResult
    runs_dir: str
    scans: MetricScans
    pattern_scans: dict
    rocs: pd.DataFrame


@pn.cache(max_items=4)
def load_pid_data(runs_dir: str, study_run_id: str) -> PidData:
    """The alice-pid study ``study_run_id`` of ``runs_dir`` with its scans (cached per server)."""
    result = load_alice_pid(RunStore(runs_dir), study_run_id)
    pattern = result.frame["pattern"].astype(str).to_numpy()
    pattern_scans = {name: MetricScans(result, pattern == name) for name in result.patterns}
    return PidData(result, str(runs_dir), MetricScans(result), pattern_scans, roc_table(result))


@pn.cache(max_items=16)
def _fse_model(runs_dir: str, run_id: str):
    run = RunStore(runs_dir).load(run_id)
    return run, run.model()


def attention_of_track(data: PidData, species: str, row: int) -> pd.DataFrame:
    """Pooling attention of the FSE model of ``species`` on test track ``row``, one row per feature.

    Returns:
        feature, value (NaN = missing), attention (0 for missing features; sums to 1), present.
    """
    result = data.result
    run_id = result.run_ids.get("fse_attention", {}).get(species)
    features = list(result.features)
    values = result.frame.iloc[[row]][features].to_numpy(np.float32)
    if run_id is None:
        return pd.DataFrame({"feature": features, "value": values[0], "attention": np.nan,
                             "present": ~np.isnan(values[0])})
    run, model = _fse_model(data.runs_dir, run_id)
    x = torch.from_numpy(run.preprocessor.transform(values))
    weights = model.attention(x)["pooling"][0].numpy()
    return pd.DataFrame({"feature": features, "value": values[0], "attention": weights[: len(features)],
                         "present": ~np.isnan(values[0])})


class PidState(param.Parameterized):
    """What every view of the page reads: species, threshold, track, and the metrics at the threshold."""

    species = param.Selector(default=None, objects=[], doc="Species shown by the per-species views.")
    threshold = param.Number(default=0.5, bounds=(0.0, 1.0), step=0.01,
                             doc="Certainty cut of the learned models (n-sigma keeps its 3-sigma cut).")
    track = param.Integer(default=0, bounds=(0, None), doc="Row of the test track whose attention is shown.")
    metrics = param.DataFrame(default=None, constant=True, precedence=-1)
    pattern_metrics = param.DataFrame(default=None, constant=True, precedence=-1)

    def __init__(self, data: PidData, **params):
        self.data = data
        r = data.result
        super().__init__(**params)
        self.param.species.objects = list(r.species)
        self.param.track.bounds = (0, max(len(r.frame) - 1, 0))
        self.param.update(species=params.get("species", r.species[0]),
                          threshold=params.get("threshold", r.threshold))
        self._update()

    @param.depends("threshold", watch=True)
    def _update(self) -> None:
        t = float(self.threshold)
        patterns = [scan.at(t).assign(pattern=name) for name, scan in self.data.pattern_scans.items()]
        frame = pd.concat(patterns, ignore_index=True) if patterns else pd.DataFrame()
        if len(frame):
            # the complete pattern reads the "complete" subset (case deletion exists only there)
            keep = np.where(frame["pattern"] == "complete", frame["subset"] == "complete", frame["subset"] == "all")
            frame = frame[keep].drop(columns="subset").reset_index(drop=True)
        with param.edit_constant(self):
            self.param.update(metrics=self.data.scans.at(t), pattern_metrics=frame)

    def species_metrics(self, subset: str = "all") -> pd.DataFrame:
        """Rows of ``metrics`` for the chosen species and subset, in method order."""
        m = self.metrics
        rows = m[(m["species"] == self.species) & (m["subset"] == subset)]
        order = {name: i for i, name in enumerate(self.data.result.methods)}
        return rows.sort_values("method", key=lambda s: s.map(order)).reset_index(drop=True)

    def attention(self) -> pd.DataFrame:
        """Attention of the chosen track for the chosen species (see :func:`attention_of_track`)."""
        return attention_of_track(self.data, self.species, int(self.track))


class PidSettingsForm(param.Parameterized):
    """Settings of a Retrain of the PID study (defaults: the shown study's, or a small first size)."""

    events = param.Integer(default=SMALL_SETTINGS.events, bounds=(1_000, 5_000_000),
                           doc="Tracks to simulate (real: tracks read, 5 species).")
    real = param.Boolean(default=False, doc="Use the real ALICE pp 7 TeV samples instead of the simulation.")
    seed = param.Integer(default=1, bounds=(0, None))
    fse_epochs = param.Integer(default=SMALL_SETTINGS.fse_epochs, bounds=(1, 1000), label="FSE epochs")
    mlp_epochs = param.Integer(default=SMALL_SETTINGS.mlp_epochs, bounds=(1, 1000), label="MLP epochs")
    batch_size = param.Integer(default=64, bounds=(8, 100_000))
    lr = param.Number(default=5e-4, bounds=(1e-6, 1.0), step=1e-4)

    def __init__(self, settings: AlicePidSettings | None = None, **params):
        self._base = settings or SMALL_SETTINGS
        b = self._base
        values = dict(events=b.events, real=b.real, seed=b.seed, fse_epochs=b.fse_epochs, mlp_epochs=b.mlp_epochs,
                      batch_size=b.batch_size, lr=b.lr)
        values.update(params)
        super().__init__(**values)

    def to_settings(self) -> AlicePidSettings:
        """The AlicePidSettings this form describes."""
        return replace(self._base, events=self.events, real=self.real, seed=self.seed, fse_epochs=self.fse_epochs,
                       mlp_epochs=self.mlp_epochs, batch_size=self.batch_size, lr=self.lr)


def pid_job_factory(form: PidSettingsForm, runs_dir: str, extra_callbacks=()):
    """A TrainControl job factory: read the form now, run the study later in a training process.

    The work closes over settings and paths only: it is pickled to the worker process."""

    def factory():
        settings = form.to_settings()
        species = REAL_SPECIES if settings.real else SPECIES
        n_patterns = 2 if settings.real else 5  # ensemble networks per species (patterns with enough tracks)
        models = ("FSE", "mean imputation", "regression imputation", "case deletion",
                  *(f"ensemble {i + 1}" for i in range(n_patterns)))
        fits = [f"{m} · {s}" for s in species for m in models]
        planned = [settings.fse_epochs if f.startswith("FSE") else settings.mlp_epochs for f in fits]
        probe = JobProbe(fits, planned)

        def work(callbacks, cancel, say) -> str:
            result = run_alice_pid(settings, RunStore(runs_dir), callbacks=[*callbacks, *extra_callbacks],
                                   cancel=cancel, progress=say)
            return result.study_run_id

        sample = "real ALICE" if settings.real else "simulated"
        text = f"PID study: {settings.events:,} {sample} tracks, {settings.fse_epochs}/{settings.mlp_epochs} epochs"
        return work, text, probe

    return factory


def list_pid_studies(runs_dir: str) -> list[tuple[str, str]]:
    """(label, id) of every complete alice-pid study in ``runs_dir``, newest first."""
    store = RunStore(runs_dir)
    out = []
    for info in store.list():
        if info.status == "complete" and info.kind == "study" and info.study == STUDY_NAME:
            sample = store.load(info.id).config.get("sample", "simulation")
            out.append((info.created, f"{info.created:%Y-%m-%d %H:%M:%S} · {sample} · {info.id}", info.id))
    return [(label, run_id) for _, label, run_id in sorted(out, reverse=True)]
