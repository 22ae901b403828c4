"""State of the DARWIN anomaly-search page: one study result, R, the injected signal and the TS threshold.

``DarwinSearchState`` holds what a physicist turns while reading the talk's backup figure: the weight R of
the classifier term in TS = -ELBO + R H_B, the WIMP mass and the injected signal strength (a multiplier of
the study's cross-section). Moving any of them recomputes the median p-value of H0 with the same
machinery as the study (``hepml_core.studies.darwin_tables.pvalue_at``) on fewer pseudo-experiments, so
it answers in a fraction of a second; nothing is retrained or rescored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import panel as pn
import param

from hepml_core.runs import RunStore
from hepml_core.studies.darwin import STUDY_NAME, DarwinResult, DarwinSettings, load_darwin, run_darwin
from hepml_core.studies.darwin_tables import anomaly_function, optimum_table, pvalue_at

from app.state.training import JobProbe

__all__ = ["DarwinData", "load_darwin_data", "DarwinSearchState", "DarwinSettingsForm", "darwin_job_factory",
           "list_darwin_studies", "DARWIN_MODELS", "SMALL_SETTINGS"]

DARWIN_MODELS = ("classifier", "vae")
#: what the first-start button trains: small enough for a laptop in about a minute
SMALL_SETTINGS = DarwinSettings(events=8_000, data_events=8_000, signal_events=2_000, classifier_epochs=10,
                                vae_epochs=15, n_toys=500, n_signal_toys=200)
_LIVE_TOYS, _LIVE_SIGNAL_TOYS = 400, 150


@dataclass(frozen=True, eq=False)
class DarwinData:
    """A DARWIN study result prepared for the views (pool arrays, histories)."""

    result: DarwinResult
    pools: dict[str, np.ndarray]
    histories: dict[str, pd.DataFrame]

    @property
    def settings(self) -> DarwinSettings:
        """The study's settings."""
        return self.result.settings


def _history(store: RunStore, run_id: str) -> pd.DataFrame:
    try:
        return store.load(run_id).history
    except Exception:  # a history is a nice-to-have; its absence must not block the page
        return pd.DataFrame(columns=["epoch", "train_loss", "val_loss"])


def data_from_result(result: DarwinResult, histories: dict[str, pd.DataFrame] | None = None) -> DarwinData:
    """Prepare a DarwinResult (fresh or loaded) for the views."""
    return DarwinData(result, result.pools(), histories or {})


@pn.cache(max_items=4)
def load_darwin_data(runs_dir: str, study_run_id: str) -> DarwinData:
    """The DARWIN study saved as ``study_run_id`` in ``runs_dir`` (cached per server, read-only)."""
    store = RunStore(runs_dir)
    result = load_darwin(store, study_run_id)
    histories = {"classifier": _history(store, result.classifier_run_id), "vae": _history(store, result.vae_run_id)}
    return data_from_result(result, histories)


class DarwinSearchState(param.Parameterized):
    """R, WIMP mass, injected strength and the live median p-value of one study.

    Args:
        data: the prepared study.
    """

    R = param.Selector(default=0.0, objects=[0.0], doc="Weight of the classifier term H_B in TS.")
    mass = param.Selector(default=50.0, objects=[50.0], doc="Injected WIMP mass (GeV).")
    strength = param.Number(default=1.0, bounds=(0.0, 10.0), step=0.1,
                            doc="Injected signal as a multiple of the study's cross-section.")
    cut_quantile = param.Number(default=0.99, bounds=(0.5, 0.9999), step=0.001,
                                doc="TS threshold as a quantile of the ER null TS (background acceptance).")

    median_p = param.Number(default=np.nan, constant=True, doc="Median p-value of H0 at the current settings.")
    point = param.Dict(default={}, constant=True, doc="Cut, expected counts above it, p-values.")
    curve = param.DataFrame(default=None, constant=True, doc="Median p-value vs R at the current mass/strength.")

    def __init__(self, data: DarwinData, **params):
        self.data = data
        s = data.settings
        r_values = [float(r) for r in s.r_values]
        masses = [float(m) for m in s.wimp_masses]
        opt = optimum_table(data.result.pvalues)
        start_mass = 50.0 if 50.0 in masses else masses[0]
        best = opt.loc[opt["wimp_mass"] == start_mass, "R_optimal"]
        super().__init__(**params)
        self.param.R.objects = r_values
        self.param.mass.objects = masses
        with param.discard_events(self):
            self.R = float(best.iloc[0]) if len(best) else r_values[0]
            self.mass = start_mass
            if s.ts_cut_quantile is not None:
                self.cut_quantile = float(s.ts_cut_quantile)
        self._update()
        self._update_curve()

    def ts(self, pool: str, r: float | None = None) -> np.ndarray:
        """TS of the events of ``pool`` at R (default: the current R)."""
        p = self.data.pools
        return anomaly_function(p[f"neg_elbo_{pool}"], p[f"h_b_{pool}"], self.R if r is None else r)

    def expected_signal_total(self) -> float:
        """Expected WIMP events of the current mass and strength (after the triggers)."""
        return self.strength * self.data.result.expected[f"signal_total_{int(self.mass)}"]

    def _point(self, r: float, seed: int) -> dict:
        return dict(pvalue_at(self.ts("null_fit", r), self.ts("null_toy", r), self.ts(f"wimp{int(self.mass)}", r),
                              background_total=self.data.result.expected["background_total"],
                              signal_total=self.expected_signal_total(), cut_quantile=self.cut_quantile,
                              method=self.data.settings.null_method, n_toys=_LIVE_TOYS,
                              n_signal_toys=_LIVE_SIGNAL_TOYS, rng=np.random.default_rng([self.data.settings.seed,
                                                                                          seed])))

    @param.depends("R", "mass", "strength", "cut_quantile", watch=True)
    def _update(self) -> None:
        point = self._point(self.R, 0)
        with param.edit_constant(self):
            self.param.update(point=point, median_p=point["median_p_value"])

    @param.depends("mass", "strength", "cut_quantile", watch=True)
    def _update_curve(self) -> None:
        rows = [{"R": r, **self._point(r, i + 1)} for i, r in enumerate(self.param.R.objects)]
        with param.edit_constant(self):
            self.curve = pd.DataFrame(rows)

    def ts_threshold(self) -> float:
        """The TS cut at the current R and quantile."""
        return float(np.quantile(self.ts("null_fit"), self.cut_quantile))

    def pseudo_data_ts(self, seed: int = 0) -> np.ndarray:
        """TS of one pseudo-experiment: Poisson(B) ER toy events plus Poisson(S) injected WIMP events."""
        rng = np.random.default_rng([self.data.settings.seed, 1000 + seed])
        bg, sig = self.ts("null_toy"), self.ts(f"wimp{int(self.mass)}")
        n_b = rng.poisson(self.data.result.expected["background_total"])
        n_s = rng.poisson(self.expected_signal_total())
        return np.concatenate([bg[rng.integers(0, len(bg), n_b)], sig[rng.integers(0, len(sig), n_s)]])


class DarwinSettingsForm(param.Parameterized):
    """Settings of a DARWIN Retrain (defaults: the shown run's settings, or the small first-start ones)."""

    events = param.Integer(default=40_000, bounds=(1_000, 2_000_000), doc="Labelled ER/NR events.")
    data_events = param.Integer(default=60_000, bounds=(1_000, 2_000_000), doc="ER null events.")
    signal_events = param.Integer(default=10_000, bounds=(200, 1_000_000), doc="WIMP events per mass.")
    seed = param.Integer(default=1, bounds=(0, None))
    classifier_epochs = param.Integer(default=30, bounds=(1, 1000))
    vae_epochs = param.Integer(default=40, bounds=(1, 1000), label="VAE epochs")
    beta = param.Number(default=1.0, bounds=(0.0, 100.0), step=0.1, doc="KL weight of the VAE.")

    def __init__(self, settings: DarwinSettings | None = None, **params):
        self._base = settings or DarwinSettings()
        b = self._base
        values = dict(events=b.events, data_events=b.data_events, signal_events=b.signal_events, seed=b.seed,
                      classifier_epochs=b.classifier_epochs, vae_epochs=b.vae_epochs, beta=b.beta)
        values.update(params)
        super().__init__(**values)

    def to_settings(self) -> DarwinSettings:
        """The DarwinSettings this form describes."""
        return replace(self._base, events=self.events, data_events=self.data_events,
                       signal_events=self.signal_events, seed=self.seed, classifier_epochs=self.classifier_epochs,
                       vae_epochs=self.vae_epochs, beta=self.beta)


def darwin_job_factory(form: DarwinSettingsForm, runs_dir: str):
    """A TrainControl job factory: read the form now, run the study later in a training process.

    The work closes over settings and paths only: it is pickled to the worker process."""

    def factory():
        settings = form.to_settings()
        probe = JobProbe(DARWIN_MODELS, (settings.classifier_epochs, settings.vae_epochs))

        def work(callbacks, cancel, say) -> str:
            return run_darwin(settings, RunStore(runs_dir), callbacks=callbacks, cancel=cancel,
                              progress=say).study_run_id

        text = (f"DARWIN study: {settings.events:,} labelled + {settings.data_events:,} null events, "
                f"{settings.classifier_epochs}+{settings.vae_epochs} epochs")
        return work, text, probe

    return factory


def list_darwin_studies(runs_dir: str) -> list[tuple[str, str]]:
    """(label, id) of every complete DARWIN study in ``runs_dir``, newest first."""
    out = []
    for info in RunStore(runs_dir).list():
        if info.status == "complete" and info.kind == "study" and info.study == STUDY_NAME:
            out.append((f"{info.created:%Y-%m-%d %H:%M:%S} · {info.id}", info.id))
    return out
