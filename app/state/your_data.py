"""State of the "your data" page: any classifier run trained with ``hepml train`` on a user's ntuple.

Built from the same state classes as the He study page: ``ClassifierScores`` (score distributions and
ROC on the evaluation split), ``MigrationState`` at a cut on ``p_signal`` (``FlipMigration``), and the
signal-vs-rest views of ``app.state.efficiency``. One ``SignalChoice`` and one ``ThresholdCut`` link
them: changing the signal class re-labels the cut and rebuilds the migration tables.
"""

from __future__ import annotations

import numpy as np
import param

from hepml_core.runs import RunStore
from hepml_core.scoring.discriminants import class_fractions

from app.state.classifier import ClassifierScores
from app.state.cut import ThresholdCut
from app.state.efficiency import CutEfficiencyState, OvertrainingState, SignalChoice
from app.state.fractions import class_fractions_state
from app.state.loaders import RunData
from app.state.migration import FlipMigration, MigrationState

__all__ = ["YourDataState", "list_user_runs"]


class YourDataState(param.Parameterized):
    """Every view state of one user run.

    Args:
        data: the prepared run (from ``load_run_data``).
        signal: the class to treat as signal (default: the first class).
    """

    def __init__(self, data: RunData, *, signal: str | None = None, **params):
        super().__init__(**params)
        self.data = data
        names = data.class_names
        self.eval_split = "test" if "test" in data.splits else next(iter(data.splits))
        self.events = data.splits[self.eval_split]
        self.choice = SignalChoice(names, signal)
        self.cut = ThresholdCut(threshold=0.5, score_label=f"p_{self.choice.signal}", low=0.0, high=1.0,
                                step=0.001)
        train = data.splits.get("train")
        ref = train if train is not None else self.events
        known = ref.known()
        defaults = class_fractions(ref.truth[known], len(names), ref.weight[known])
        self.fractions = class_fractions_state(names, defaults)
        self.classifier = ClassifierScores(self.events, self.fractions, None, score_kind="p")
        self.efficiency = CutEfficiencyState(self.events, self.choice, self.cut)
        # Start at the cut of best S/sqrt(S+B): a fixed 0.5 means little for a multi-class softmax.
        self.cut.threshold = self.efficiency.best_threshold
        self.overtraining = (OvertrainingState(train, self.events, self.choice)
                             if train is not None and self.eval_split != "train" else None)
        self.migration = MigrationState(self.cut, self._tables(), normalisation="row %")
        self.choice.param.watch(self._on_signal, "signal")

    def _tables(self) -> dict:
        k = self.choice.index
        tables = {f"{self.eval_split} split": FlipMigration(self.events, k, f"{self.eval_split} events")}
        if "train" in self.data.splits and self.eval_split != "train":
            tables["train split"] = FlipMigration(self.data.splits["train"], k, "train events")
        return tables

    def _on_signal(self, event) -> None:
        self.cut.score_label = f"p_{event.new}"
        self.migration.set_tables(self._tables())

    @property
    def history(self):
        """The run's loss history (epoch, train_loss, val_loss...)."""
        return self.data.history

    def describe(self) -> str:
        """One paragraph about the run for the page header."""
        d, m = self.data, self.data.metrics
        n = {s: len(e) for s, e in d.splits.items()}
        auc = m.get("macro_auc")
        source = d.config.get("data", {}).get("source", "?")
        parts = [f"Run **{d.run_id}** on `{source}`", f"classes: {', '.join(d.class_names)}",
                 "events: " + ", ".join(f"{s} {v:,}" for s, v in n.items())]
        if auc is not None:
            parts.append(f"macro AUC {float(auc):.4f}")
        return " · ".join(parts)


def list_user_runs(runs_dir: str) -> list[tuple[str, str]]:
    """(label, id) of complete classifier runs not made by a built-in study, newest first."""
    out = []
    for info in RunStore(runs_dir).list():
        if info.status != "complete" or info.kind == "study" or info.study is not None:
            continue
        if info.model_kind == "autoencoder" or info.kind == "autoencoder":
            continue
        auc = info.metrics.get("macro_auc") if info.metrics else None
        extra = f" · AUC {auc:.3f}" if isinstance(auc, (int, float)) and np.isfinite(auc) else ""
        out.append((f"{info.created:%Y-%m-%d %H:%M:%S} · {info.model_kind or info.kind}{extra} · {info.id}",
                    info.id))
    return out
