"""Acceptance numbers of issue 7 (DARWIN): classifier accuracy and the p-value vs R curve at full size.

Checks (printed as PASS/FAIL lines):
  * classifier accuracy >= 0.95 on the simulated test sample;
  * for the 50 GeV injection, the median p-value vs R has its minimum at an R strictly between the
    VAE-only end (R = 0) and the classifier-dominated end (largest R), and below both ends.

Run:  python benchmarks/accept_darwin.py [--events 40000] [--data-events 60000] [--epochs N] [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from hepml_core.runs import RunStore  # noqa: E402
from hepml_core.studies.darwin import DarwinSettings, run_darwin  # noqa: E402
from hepml_core.studies.darwin_tables import optimum_table  # noqa: E402

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the study and print the acceptance numbers; exit code 0 when every check passes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--data-events", type=int, default=None)
    parser.add_argument("--signal-events", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    over = {"seed": args.seed}
    for name in ("events", "data_events", "signal_events"):
        if getattr(args, name) is not None:
            over[name] = getattr(args, name)
    if args.epochs is not None:
        over.update(classifier_epochs=args.epochs, vae_epochs=args.epochs)
    settings = dataclasses.replace(DarwinSettings(), **over)
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="darwin_accept_"))
    t0 = time.perf_counter()
    result = run_darwin(settings, RunStore(runs), progress=lambda s: print(f"[{time.perf_counter() - t0:6.1f}s] {s}"))
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(f"\nsettings: events={settings.events} data_events={settings.data_events} "
          f"signal_events={settings.signal_events} epochs=({settings.classifier_epochs}, {settings.vae_epochs}) "
          f"exposure={settings.exposure_t_yr} t y sigma={settings.sigma_cm2:g} cm^2; runs in {runs}")
    print(f"expected: B = {result.expected['background_total']:.0f} ER events, "
          + ", ".join(f"S({int(m)} GeV) = {result.expected[f'signal_total_{int(m)}']:.0f}"
                      for m in settings.wimp_masses))
    print("\nclassifier (test sample):", {k: round(v, 4) for k, v in result.classifier.items()})
    print("\nmedian p-value vs R:")
    print(result.pvalues.pivot(index="R", columns="wimp_mass", values="median_p_value").to_string(
        float_format=lambda v: f"{v:.3e}"))
    print("\noptimum per mass:")
    print(optimum_table(result.pvalues).to_string(index=False, float_format=lambda v: f"{v:.3e}"))
    print("\nbaseline (cS1, cS2) template:")
    print(result.baseline[["wimp_mass", "median_p_value", "expected_signal", "expected_background"]].to_string(
        index=False, float_format=lambda v: f"{v:.3e}"))

    ok = True
    acc = result.classifier["accuracy"]
    ok &= _check(acc >= 0.95, f"classifier accuracy {acc:.4f} >= 0.95")
    grp = result.pvalues[result.pvalues["wimp_mass"] == 50.0].sort_values("R")
    p = grp["median_p_value"].to_numpy()
    r = grp["R"].to_numpy()
    k = int(p.argmin())
    ok &= _check(0 < k < len(p) - 1, f"50 GeV: minimum at R = {r[k]:g}, strictly inside ({r[0]:g}, {r[-1]:g})")
    ok &= _check(p[k] < p[0] and p[k] < p[-1],
                 f"50 GeV: median p {p[k]:.3e} below both ends (R=0: {p[0]:.3e}, R={r[-1]:g}: {p[-1]:.3e})")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


def _check(passed: bool, text: str) -> bool:
    print(f"{'PASS' if passed else 'FAIL'}: {text}")
    return bool(passed)


if __name__ == "__main__":
    raise SystemExit(main())
