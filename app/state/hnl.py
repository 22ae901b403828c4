"""State of the HNL page: which models and binning the significance plot shows, the clicked mass, Retrain.

``HnlSignificanceState`` holds the choices of one session (models/features, binning, method, bound,
channel, clicked mass); the Z tables it shows are computed once per (model, binning, method, bound) and
kept, so toggling a model or switching the channel costs nothing. ``HnlSettingsForm`` and
``hnl_job_factory`` turn the Retrain form into work for the shared TrainingService; models that are not
ticked keep the shown study's scores.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import param

from hepml_core.metrics.binning import BINNINGS
from hepml_core.runs import RunStore
from hepml_core.simulate.hnl import MASSES
from hepml_core.studies._hnl_per_mass import PER_MASS_MODELS
from hepml_core.studies.hnl import CLASSICAL, STUDY_NAME, TRAINED_MODELS, HnlResult, HnlSettings, run_hnl, study_models
from hepml_core.studies.hnl_tables import METHODS, bins_for, score_samples, significance_table

from app.state.training import JobProbe

__all__ = ["HnlSignificanceState", "HnlSettingsForm", "hnl_job_factory", "list_hnl_studies", "HNL_NN_MODELS",
           "AVERAGE"]

AVERAGE = "average of channels"
#: the Trainer fits of a full study, in order (the BDTs are not Trainer fits; the per-mass DNNs count as one)
HNL_NN_MODELS = ("pnn", "regressor", "regressor_no_drop_in", "transfer", "dnn_per_mass")


class HnlSignificanceState(param.Parameterized):
    """What the significance views show for one HNL study.

    Args:
        result: the study (fresh or loaded).
    """

    models = param.ListSelector(default=[], objects=[], doc="Models and classical observables to compare.")
    binning = param.Selector(default="right_to_left", objects=list(BINNINGS))
    method = param.Selector(default="s_over_sqrt_b", objects=list(METHODS))
    max_rel_unc = param.Number(default=0.15, bounds=(0.02, 0.5), step=0.01, label="max. relative uncertainty")
    channel = param.Selector(default=AVERAGE, objects=[AVERAGE])
    mass = param.Selector(default=None, objects=[], allow_None=True, doc="The mass whose bins are shown.")
    detail_model = param.Selector(default=None, objects=[], allow_None=True, label="model of the bin view")
    detail_channel = param.Selector(default=None, objects=[], allow_None=True, label="channel of the bin view")

    table = param.DataFrame(default=None, constant=True, precedence=-1,
                            doc="Z per model, mass and channel for the current choices.")

    def __init__(self, result: HnlResult, **params):
        self.result = result
        self._cache: dict[tuple, pd.DataFrame] = {}
        super().__init__(**params)
        choices = [*result.models, *[c for c in CLASSICAL if c != "mt_tot"]]
        self.param.models.objects = choices
        self.param.channel.objects = [AVERAGE, *result.channels]
        self.param.mass.objects = list(result.masses)
        self.param.detail_model.objects = choices
        self.param.detail_channel.objects = list(result.channels)
        with param.parameterized.discard_events(self):
            self.models = list(result.models)
            # start the bin view where bins exist in any sample: a middle mass in the largest channel
            self.mass = 300.0 if 300.0 in result.masses else result.masses[len(result.masses) // 2]
            self.detail_model = "pnn" if "pnn" in result.models else result.models[0]
            self.detail_channel = "tau_mu_e" if "tau_mu_e" in result.channels else result.channels[0]
        self._update_table()

    def _z(self, model: str) -> pd.DataFrame:
        key = (model, self.binning, self.method, round(float(self.max_rel_unc), 6))
        if key not in self._cache:
            self._cache[key] = significance_table(self.result, [model], binning=self.binning, method=self.method,
                                                  max_rel_unc=self.max_rel_unc)
        return self._cache[key]

    @param.depends("models", "binning", "method", "max_rel_unc", watch=True)
    def _update_table(self) -> None:
        parts = [self._z(m) for m in self.models]
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["model", "mass", "channel", "z", "n_bins"])
        with param.edit_constant(self):
            self.table = table

    def curve(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(mass, Z) of one model for the chosen channel (or the channel average)."""
        t = self.table[self.table["model"] == model]
        if self.channel != AVERAGE:
            t = t[t["channel"] == self.channel]
            g = t.set_index("mass")["z"]
        else:
            g = t.groupby("mass")["z"].mean()
        g = g.sort_index()
        return g.index.to_numpy(dtype=float), g.to_numpy(dtype=float)

    def select_mass(self, x: float) -> None:
        """Select the mass hypothesis nearest to ``x`` GeV (a click on the plot)."""
        masses = np.asarray(self.result.masses, dtype=float)
        self.mass = float(masses[np.argmin(np.abs(np.log(masses) - np.log(max(float(x), 1.0))))])

    def detail(self):
        """``(bins, (xs, ws, xb, wb))`` of the bin view's model, mass and channel (bins None: no valid bin)."""
        samples = score_samples(self.result, self.detail_model, self.mass, self.detail_channel)
        bins = bins_for(self.result, self.detail_model, self.mass, self.detail_channel, binning=self.binning,
                        max_rel_unc=self.max_rel_unc)
        return bins, samples


class HnlSettingsForm(param.Parameterized):
    """Retrain form of the HNL study (defaults: the shown study's settings)."""

    # precedence -1: the generic form builder makes text boxes; the page shows a checkbox group instead
    retrain_models = param.ListSelector(default=list(TRAINED_MODELS), objects=list(TRAINED_MODELS),
                                        label="models to retrain", precedence=-1)
    events = param.Integer(default=1_600_000, bounds=(2_000, 10_000_000))
    seed = param.Integer(default=1, bounds=(0, None))
    pnn_hidden = param.String(default="83, 30", label="PNN hidden")
    pnn_epochs = param.Integer(default=15, bounds=(1, 1000), label="PNN epochs")
    bdt_trees = param.Integer(default=200, bounds=(1, 5000), label="BDT trees")
    regression_width = param.Integer(default=128, bounds=(4, 4096))
    regression_depth = param.Integer(default=6, bounds=(1, 64))
    drop_in_every = param.Integer(default=3, bounds=(0, 64), label="drop-in every")
    regression_epochs = param.Integer(default=10, bounds=(1, 1000))
    transfer_epochs = param.Integer(default=8, bounds=(1, 1000))
    transfer_unfreeze_epoch = param.Integer(default=5, bounds=(1, 1000), label="unfreeze at epoch")
    per_mass_epochs = param.Integer(default=5, bounds=(1, 1000), label="per-mass DNN epochs")
    per_mass_bdt_trees = param.Integer(default=100, bounds=(1, 5000), label="per-mass BDT trees")

    _FIELDS = ("events", "seed", "pnn_epochs", "bdt_trees", "regression_width", "regression_depth", "drop_in_every",
               "regression_epochs", "transfer_epochs", "transfer_unfreeze_epoch", "per_mass_epochs",
               "per_mass_bdt_trees")

    def __init__(self, settings: HnlSettings | None = None, **params):
        self._base = settings or HnlSettings()
        values = {f: getattr(self._base, f) for f in self._FIELDS}
        values["retrain_models"] = list(study_models(self._base))  # what the shown study has
        values["pnn_hidden"] = ", ".join(map(str, self._base.pnn_hidden))
        values.update(params)
        super().__init__(**values)

    def to_settings(self) -> HnlSettings:
        """The HnlSettings this form describes.

        Raises:
            ValueError: no model ticked, or hidden widths that are not comma-separated positive integers.
        """
        if not self.retrain_models:
            raise ValueError("tick at least one model to retrain")
        try:
            hidden = tuple(int(p) for p in self.pnn_hidden.replace(";", ",").split(",") if p.strip())
        except ValueError:
            raise ValueError(f"PNN hidden must be comma-separated integers like '83, 30'; got {self.pnn_hidden!r}") from None
        if not hidden or min(hidden) < 1:
            raise ValueError(f"PNN hidden needs at least one positive width; got {self.pnn_hidden!r}")
        # ticking a per-mass variant adds it to a study made without one
        per_mass = self._base.per_mass_models or any(m in PER_MASS_MODELS for m in self.retrain_models)
        return replace(self._base, pnn_hidden=hidden, models=tuple(self.retrain_models), per_mass_models=per_mass,
                       **{f: getattr(self, f) for f in self._FIELDS})


def hnl_job_factory(form: HnlSettingsForm, runs_dir: str, base_of=lambda: None):
    """A TrainControl job factory: read the form now, run the study later in a training process.

    The work closes over settings, the path and the shown result (plain data): it is pickled to the worker.

    Args:
        form: the Retrain form.
        runs_dir: the run store's folder.
        base_of: returns the shown HnlResult (its scores are kept for models that are not retrained).
    """

    def factory():
        settings = form.to_settings()
        base = base_of()
        every = set(settings.models) >= set(study_models(settings))
        if not every and base is None:
            raise ValueError("no study is shown to keep the other models from: tick all models")
        if base is not None and not every:
            same = ("events", "seed", "validation_fraction", "test_fraction")
            diff = [k for k in same if getattr(base.settings, k) != getattr(settings, k)]
            if diff:
                raise ValueError(f"changing {', '.join(diff)} changes the events: tick all models")
        fits, epochs = [], []
        if "pnn" in settings.models:
            fits.append("pnn"), epochs.append(settings.pnn_epochs)
        if "transfer" in settings.models:
            fits.append("regressor"), epochs.append(settings.regression_epochs)
            if settings.drop_in_comparison and settings.drop_in_every > 0:
                fits.append("regressor_no_drop_in"), epochs.append(settings.regression_epochs)
            fits.append("transfer"), epochs.append(settings.transfer_epochs)
        if "dnn_per_mass" in settings.models and settings.per_mass_models:
            n_masses = len(settings.per_mass_masses or MASSES)
            fits.append("dnn_per_mass"), epochs.append(n_masses * settings.per_mass_epochs)
        probe = JobProbe(fits or ("bdt",), epochs or (1,))

        def work(callbacks, cancel, say) -> str:
            keep = None if every else base
            result = run_hnl(settings, RunStore(runs_dir), callbacks=list(callbacks), cancel=cancel, progress=say,
                             base=keep)
            return result.study_run_id

        text = f"HNL study: {settings.events:,} events, retrain {', '.join(settings.models)}"
        return work, text, probe

    return factory


def list_hnl_studies(runs_dir: str) -> list[tuple[str, str]]:
    """(label, id) of every complete HNL study in ``runs_dir``, newest first."""
    out = []
    for info in RunStore(runs_dir).list():
        if info.status == "complete" and info.kind == "study" and info.study == STUDY_NAME:
            out.append((f"{info.created:%Y-%m-%d %H:%M:%S} · {info.id}", info.id))
    return out
