"""State of the nuclei domain-adaptation page: what the views show of one study result, and Retrain.

``NucleiViewState`` holds one session's choices (selection, model, threshold, variable, domain) and
derives the numbers the views draw; the expensive parts (the efficiency scan over a threshold grid,
per-model score arrays) are computed once per result. ``NucleiSettingsForm`` and ``nuclei_job_factory``
turn the Retrain form into work for the shared TrainingService.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import param

from hepml_core.runs import RunStore
from hepml_core.studies.ams_nuclei import (MODELS, STUDY_NAME, VARIABLES, AmsNucleiResult, AmsNucleiSettings,
                                          run_ams_nuclei)
from hepml_core.studies.ams_nuclei_tables import SELECTION_NAMES, efficiency_scan, species_groups

from app.state.histograms import GroupedHistogram
from app.state.training import JobProbe

__all__ = ["NucleiViewState", "NucleiSettingsForm", "nuclei_job_factory", "list_nuclei_studies", "NUCLEI_MODELS",
           "SMALL_SETTINGS", "THRESHOLD_GRID", "group_order"]

#: the Trainer fits of a study, in order (one loss plot each on the Train tab)
NUCLEI_MODELS = MODELS
#: the first-start study: small enough for a few minutes on two cores
SMALL_SETTINGS = AmsNucleiSettings(events=20_000, data_events=16_000, adversarial_epochs=6, plain_epochs=6,
                                   probe_epochs=5)
THRESHOLD_GRID = np.round(np.linspace(0.0, 1.0, 101), 4)


def group_order(names) -> list[str]:
    """Stacking order of species groups: signal first, then above-L1, then below-L1 backgrounds."""
    rank = {"signal": 0, "above L1": 1, "below L1": 2}
    return sorted(names, key=lambda g: (rank.get(g.split(" ", 1)[1], 3), g))


class NucleiViewState(param.Parameterized):
    """One session's view of a nuclei study.

    Args:
        result: the study (fresh or loaded).
    """

    selection = param.Selector(default="all", objects=list(SELECTION_NAMES), doc="Event selection shown.")
    model = param.Selector(default="adversarial", objects=list(MODELS),
                           doc="Network whose cut / attention is shown.")
    threshold = param.Number(default=0.5, bounds=(0.0, 1.0), step=0.01, label="ML score threshold")
    variable = param.Selector(default="l1_charge", objects=list(VARIABLES), doc="Variable of the before/after view.")
    domain = param.Selector(default="mc", objects=["mc", "data"], doc="Domain of the before/after view.")
    log_y = param.Boolean(default=False, label="log y")

    def __init__(self, result: AmsNucleiResult, **params):
        self.result = result
        frame = result.frame
        self._groups = species_groups(frame)
        self._scan = efficiency_scan(result, THRESHOLD_GRID)
        super().__init__(**params)

    # ------------------------------------------------------------------ selections of rows

    def mask(self, domain: str | None = None, selection: str | None = None) -> np.ndarray:
        """Rows of the shown selection (or ``selection``) in ``domain`` (None: both)."""
        frame = self.result.frame
        sel = self.selection if selection is None else selection
        keep = np.ones(len(frame), dtype=bool) if domain is None else (frame["domain"] == domain).to_numpy()
        if sel != "all":
            keep = keep & (frame["selection"] == sel).to_numpy()
        return keep

    # ------------------------------------------------------------------ derived numbers

    def score_histograms(self, model: str, bins: int = 40) -> dict[str, GroupedHistogram]:
        """Per domain: weighted score histograms of true signal and background (data: hidden truth)."""
        frame = self.result.frame
        edges = np.linspace(0.0, 1.0, bins + 1)
        out = {}
        for domain in ("mc", "data"):
            m = self.mask(domain)
            score = frame[f"score_{model}"].to_numpy()[m]
            w = frame["weight"].to_numpy()[m]
            sig = (frame["true_label"].to_numpy()[m] == "signal")
            counts, sumw2 = [], []
            for part in (sig, ~sig):
                c, _ = np.histogram(score[part], edges, weights=w[part])
                s2, _ = np.histogram(score[part], edges, weights=w[part] ** 2)
                counts.append(c)
                sumw2.append(s2)
            out[domain] = GroupedHistogram(edges, np.array(counts), np.array(sumw2), ("signal", "background"))
        return out

    def efficiency_curves(self, selection: str | None = None) -> pd.DataFrame:
        """The precomputed scan (model, domain, threshold, signal_efficiency, background_fraction) of a selection."""
        sel = self.selection if selection is None else selection
        return self._scan[self._scan["selection"] == sel]

    def at_threshold(self) -> pd.DataFrame:
        """Efficiency and background fraction of both models and domains at the current threshold."""
        t = float(np.round(self.threshold, 2))
        scan = self.efficiency_curves()
        rows = scan[np.isclose(scan["threshold"], t)]
        return rows[["model", "domain", "signal_efficiency", "background_fraction"]].reset_index(drop=True)

    def variable_histograms(self, bins: int = 50) -> tuple[GroupedHistogram, GroupedHistogram]:
        """Before / after the cut: weighted histograms of the shown variable, one row per species group."""
        frame = self.result.frame
        base = self.mask(self.domain)
        values = frame[self.variable].to_numpy(dtype=np.float64)
        w = frame["weight"].to_numpy()
        finite = base & np.isfinite(values)
        if finite.any():
            lo, hi = np.percentile(values[finite], [0.2, 99.8])
        else:
            lo, hi = 0.0, 1.0
        if self.variable == "l1_charge":
            z = {"Si": 14, "P": 15, "S": 16}.get(self.selection)
            lo, hi = (z - 2.0, z + 3.0) if z else (12.0, 19.5)
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        names = group_order(np.unique(self._groups[base]).tolist())
        passed = frame[f"score_{self.model}"].to_numpy() >= self.threshold
        out = []
        for keep in (base, base & passed):
            counts = np.array([np.histogram(values[keep & (self._groups == g)], edges,
                                            weights=w[keep & (self._groups == g)])[0] for g in names])
            sumw2 = np.array([np.histogram(values[keep & (self._groups == g)], edges,
                                           weights=w[keep & (self._groups == g)] ** 2)[0] for g in names])
            out.append(GroupedHistogram(edges, counts.reshape(len(names), bins), sumw2.reshape(len(names), bins),
                                        tuple(names)))
        return out[0], out[1]

    def attention(self, model: str | None = None) -> pd.DataFrame:
        """Per-event attention weights of the shown model: branch columns, plus domain and true label."""
        frame = self.result.frame
        m = self.model if model is None else model
        cols = [c for c in frame.columns if c.startswith(f"att_{m}_")]
        out = frame.loc[self.mask(None), ["domain", "true_label", "true_species", "true_category", *cols]]
        return out.rename(columns={c: c[len(f"att_{m}_"):] for c in cols})


class NucleiSettingsForm(param.Parameterized):
    """Retrain form of the nuclei study (defaults: the shown study's settings)."""

    events = param.Integer(default=437_500, bounds=(1_000, 5_000_000), doc="MC events to simulate.")
    data_events = param.Integer(default=350_000, bounds=(1_000, 5_000_000), doc="Data events to simulate.")
    seed = param.Integer(default=1, bounds=(0, None))
    adversarial_epochs = param.Integer(default=20, bounds=(1, 1000))
    plain_epochs = param.Integer(default=20, bounds=(1, 1000))
    batch_size = param.Integer(default=512, bounds=(8, 100_000))
    lr = param.Number(default=1e-3, bounds=(1e-6, 1.0), step=1e-4)
    lambda_max = param.Number(default=1.0, bounds=(0.0, 10.0), step=0.1, label="lambda max")
    gamma = param.Number(default=10.0, bounds=(0.0, 100.0), step=1.0, label="lambda schedule gamma")
    domain_weight = param.Number(default=1.0, bounds=(0.0, 10.0), step=0.1)

    _FIELDS = ("events", "data_events", "seed", "adversarial_epochs", "plain_epochs", "batch_size", "lr",
               "lambda_max", "gamma", "domain_weight")

    def __init__(self, settings: AmsNucleiSettings | None = None, **params):
        self._base = settings or AmsNucleiSettings()
        values = {f: getattr(self._base, f) for f in self._FIELDS}
        values.update(params)
        super().__init__(**values)

    def to_settings(self) -> AmsNucleiSettings:
        """The AmsNucleiSettings this form describes."""
        return replace(self._base, **{f: getattr(self, f) for f in self._FIELDS})


def nuclei_job_factory(form: NucleiSettingsForm, runs_dir: str, extra_callbacks=()):
    """A TrainControl job factory: read the form now, train the study later in a training process.

    The work closes over settings and paths only: it is pickled to the worker process."""

    def factory():
        settings = form.to_settings()
        probe = JobProbe(NUCLEI_MODELS, (settings.adversarial_epochs, settings.plain_epochs))

        def work(callbacks, cancel, say) -> str:
            result = run_ams_nuclei(settings, RunStore(runs_dir), callbacks=[*callbacks, *extra_callbacks],
                                    cancel=cancel, progress=say)
            return result.study_run_id

        text = (f"nuclei study: {settings.events:,} MC + {settings.data_events:,} data events, "
                f"{settings.adversarial_epochs}+{settings.plain_epochs} epochs")
        return work, text, probe

    return factory


def list_nuclei_studies(runs_dir: str) -> list[tuple[str, str]]:
    """(label, id) of every complete nuclei study in ``runs_dir``, newest first."""
    out = []
    for info in RunStore(runs_dir).list():
        if info.status == "complete" and info.kind == "study" and info.study == STUDY_NAME:
            out.append((f"{info.created:%Y-%m-%d %H:%M:%S} · {info.id}", info.id))
    return out
