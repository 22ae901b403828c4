"""One runs folder holding a tiny run of each page's study, each trained the first time a test asks for it.

The URL and export tests open every page; training each study once per test process (at sizes that
take seconds) into one shared temp folder, removed at exit, keeps them from paying for it per module.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

__all__ = ["study_run", "ROUTES", "tiny_settings_of"]

#: every page route of the app, in menu order
ROUTES = ("he_study", "hnl", "alice_pid", "ams_nuclei", "darwin", "your_data")


def tiny_settings_of(route: str):
    """Settings of a study small enough for tests (seconds on two cores)."""
    if route == "hnl":
        from hepml_core.studies.hnl import HnlSettings

        return HnlSettings(events=12_000, test_fraction=0.5, validation_fraction=0.15, pnn_epochs=1, bdt_trees=5,
                           regression_width=8, regression_depth=3, regression_events_per_epoch=1000,
                           regression_epochs=1, transfer_epochs=1, transfer_unfreeze_epoch=1, transfer_hidden=(8,),
                           drop_in_comparison=False, per_mass_models=False)
    if route == "darwin":
        from hepml_core.studies.darwin import DarwinSettings

        return DarwinSettings(events=2500, data_events=3000, signal_events=600, classifier_epochs=2, vae_epochs=2,
                              n_toys=100, n_signal_toys=40, r_values=(0.0, 10.0, 1e4))
    if route == "alice_pid":
        from hepml_core.studies.alice_pid import AlicePidSettings

        return AlicePidSettings(events=2500, fse_epochs=1, mlp_epochs=1, xgb_trees=10, ensemble_min_tracks=100,
                                species=("pion", "kaon"))
    if route == "ams_nuclei":
        from hepml_core.studies.ams_nuclei import AmsNucleiSettings

        return AmsNucleiSettings(events=2000, data_events=1600, adversarial_epochs=1, plain_epochs=1, probe_epochs=1,
                                 batch_size=256, branch_dim=8, gnn_hidden=8, gnn_rounds=1, heads=2, fused_dim=16)
    raise KeyError(route)


@functools.lru_cache(maxsize=1)
def _folder() -> Path:
    root = Path(tempfile.mkdtemp(prefix="hepml-study-runs-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root / "runs"


@functools.lru_cache(maxsize=1)
def _he_and_user() -> dict[str, str]:
    from app_frames import build_tiny_runs

    return build_tiny_runs(_folder())


@functools.lru_cache(maxsize=None)
def study_run(route: str) -> tuple[str, str]:
    """(runs folder, run id) of a tiny run shown by the page ``route`` (trained on first use)."""
    from hepml_core.runs import RunStore

    if route in ("he_study", "your_data"):
        ids = _he_and_user()
        return str(_folder()), ids["study" if route == "he_study" else "user"]
    from hepml_core.studies.alice_pid import run_alice_pid
    from hepml_core.studies.ams_nuclei import run_ams_nuclei
    from hepml_core.studies.darwin import run_darwin
    from hepml_core.studies.hnl import run_hnl

    train = {"hnl": run_hnl, "darwin": run_darwin, "alice_pid": run_alice_pid, "ams_nuclei": run_ams_nuclei}[route]
    return str(_folder()), train(tiny_settings_of(route), RunStore(_folder())).study_run_id
