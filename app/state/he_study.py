"""State of the He charge-confusion page: one study result, the shared cut, fractions and training.

``HeStudyState`` wires the per-view states to one threshold (on the anomaly score) and one set of
class fractions, exactly as a physicist reads the talk: the fractions drive the discriminants, the
threshold drives the migration matrix and the anomaly view. ``HeSettingsForm`` is the Retrain form;
``he_job_factory`` turns it into work for the TrainingService.
"""

from __future__ import annotations

from dataclasses import replace

import param

from hepml_core.runs import RunStore
from hepml_core.studies.ams_he import STUDY_NAME, AmsHeSettings, run_ams_he

from app.state.anomaly import AnomalyState
from app.state.classifier import ClassifierScores
from app.state.cut import ThresholdCut
from app.state.fractions import class_fractions_state
from app.state.loaders import StudyData
from app.state.migration import MigrationState
from app.state.training import JobProbe

__all__ = ["HeStudyState", "HeSettingsForm", "he_job_factory", "list_he_studies", "HE_MODELS"]

HE_MODELS = ("classifier", "autoencoder")


class HeStudyState(param.Parameterized):
    """Every view state of one He study result, sharing one cut and one set of fractions.

    Args:
        data: the prepared study (from ``load_study_data``).
        threshold: starting anomaly-score threshold (the talk uses 0.08 and 0.10).
    """

    def __init__(self, data: StudyData, *, threshold: float | None = None, **params):
        super().__init__(**params)
        self.data = data
        default_t = threshold if threshold is not None else _first_positive(data.settings.thresholds, 0.08)
        self.cut = ThresholdCut(threshold=default_t, score_label="anomaly score")
        self.fractions = class_fractions_state(data.class_names, data.fractions)
        self.classifier = ClassifierScores(data.mc, self.fractions, data.data, score_kind="D")
        # AnomalyState sets the cut's range from the scores, so it is built before the migration.
        self.anomaly = AnomalyState(self.cut, data.mc, data.data)
        self.migration = MigrationState(self.cut, data.migration_tables, normalisation="row %")


def _first_positive(values, default: float) -> float:
    positive = [float(v) for v in values if v > 0]
    return positive[0] if positive else default


class HeSettingsForm(param.Parameterized):
    """Hyperparameters of a He study Retrain (defaults: the shown run's settings)."""

    events = param.Integer(default=360_000, bounds=(2_000, 5_000_000), doc="MC events to simulate.")
    data_events = param.Integer(default=125_000, bounds=(1_000, 5_000_000), doc="Data events to simulate.")
    seed = param.Integer(default=1, bounds=(0, None))
    classifier_hidden = param.String(default="15, 10", doc="FCNN hidden layer widths, comma-separated.")
    dropout = param.Number(default=0.1, bounds=(0.0, 0.9), step=0.05)
    classifier_lr = param.Number(default=5e-4, bounds=(1e-6, 1.0), step=1e-4, label="Classifier lr")
    classifier_batch_size = param.Integer(default=700, bounds=(8, 100_000))
    classifier_epochs = param.Integer(default=30, bounds=(1, 1000))
    ae_hidden = param.String(default="10, 5, 10", doc="Autoencoder hidden layer widths.", label="AE hidden")
    ae_lr = param.Number(default=1e-4, bounds=(1e-6, 1.0), step=1e-4, label="AE lr")
    ae_batch_size = param.Integer(default=100, bounds=(8, 100_000), label="AE batch size")
    ae_epochs = param.Integer(default=20, bounds=(1, 1000), label="AE epochs")

    def __init__(self, settings: AmsHeSettings | None = None, **params):
        self._base = settings or AmsHeSettings()
        b = self._base
        values = dict(
            events=b.events, data_events=b.data_events, seed=b.seed, dropout=b.dropout,
            classifier_lr=b.classifier_lr, classifier_batch_size=b.classifier_batch_size,
            classifier_epochs=b.classifier_epochs, ae_lr=b.ae_lr, ae_batch_size=b.ae_batch_size,
            ae_epochs=b.ae_epochs,
            classifier_hidden=", ".join(map(str, b.classifier_layers[1:-1])),
            ae_hidden=", ".join(map(str, b.ae_layers[1:-1])),
        )
        values.update(params)
        super().__init__(**values)

    def to_settings(self) -> AmsHeSettings:
        """The AmsHeSettings this form describes.

        Raises:
            ValueError: a layer list that is not comma-separated positive integers.
        """
        b = self._base
        return replace(
            b, events=self.events, data_events=self.data_events, seed=self.seed, dropout=self.dropout,
            classifier_lr=self.classifier_lr, classifier_batch_size=self.classifier_batch_size,
            classifier_epochs=self.classifier_epochs, ae_lr=self.ae_lr, ae_batch_size=self.ae_batch_size,
            ae_epochs=self.ae_epochs,
            classifier_layers=(b.classifier_layers[0], *_widths(self.classifier_hidden, "classifier hidden"),
                               b.classifier_layers[-1]),
            ae_layers=(b.ae_layers[0], *_widths(self.ae_hidden, "AE hidden"), b.ae_layers[-1]),
        )


def _widths(text: str, what: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(p) for p in text.replace(";", ",").split(",") if p.strip())
    except ValueError:
        raise ValueError(f"{what} layers must be comma-separated integers like '15, 10'; got {text!r}") from None
    if not widths or min(widths) < 1:
        raise ValueError(f"{what} layers need at least one positive width; got {text!r}")
    return widths


def he_job_factory(form: HeSettingsForm, runs_dir: str, extra_callbacks=()):
    """A TrainControl job factory: read the form now, train the study later in a training process.

    The work closes over settings and paths only: it is pickled to the worker process."""

    def factory():
        settings = form.to_settings()
        probe = JobProbe(HE_MODELS, (settings.classifier_epochs, settings.ae_epochs))

        def work(callbacks, cancel, say) -> str:
            result = run_ams_he(settings, RunStore(runs_dir), callbacks=[*callbacks, *extra_callbacks],
                                cancel=cancel, progress=say)
            return result.study_run_id

        text = (f"He study: {settings.events:,} MC + {settings.data_events:,} data events, "
                f"{settings.classifier_epochs}+{settings.ae_epochs} epochs")
        return work, text, probe

    return factory


def list_he_studies(runs_dir: str) -> list[tuple[str, str]]:
    """(label, id) of every complete He study in ``runs_dir``, newest first."""
    out = []
    for info in RunStore(runs_dir).list():
        if info.status == "complete" and info.kind == "study" and info.study == STUDY_NAME:
            out.append((f"{info.created:%Y-%m-%d %H:%M:%S} · {info.id}", info.id))
    return out

