"""Acceptance numbers of the alice-pid study (issue 5): F1 of every method and species, and the checks.

Checks printed (PASS/FAIL):
  * simulation: the feature-set embedding's F1 >= mean imputation's for every species (all tracks);
  * simulation: every learned method beats the n-sigma selection in F1 for every species (all tracks;
    case deletion on complete tracks, where it is defined);
  * real ALICE samples: the feature-set embedding's macro-averaged F1 >= mean imputation's.

Usage: .venv/bin/python benchmarks/accept_alice_pid.py [--events 30000] [--real-events 25000] [--epochs 15]
(the talk's sizes are 2.7M tracks and 30 epochs: far beyond a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hepml_core.runs import RunStore  # noqa: E402
from hepml_core.training.callbacks import Callback  # noqa: E402
from hepml_core.studies.alice_pid import AlicePidSettings, run_alice_pid  # noqa: E402
from hepml_core.studies.alice_pid_tables import metrics_table  # noqa: E402

class _EpochLine(Callback):
    """One line per epoch, so a long run shows where it is."""

    def on_epoch_end(self, state) -> None:
        row = state.history[-1]
        print(f"    epoch {row['epoch']}/{state.n_epochs} train {row['train_loss']:.4f} val {row['val_loss']:.4f} "
              f"({row['seconds']:.1f} s)", flush=True)


LEARNED = ("fse_attention", "mean_imputation", "regression_imputation", "case_deletion", "ensemble", "xgboost")


def _pivot(m: pd.DataFrame, subset: str) -> pd.DataFrame:
    t = m[m["subset"] == subset].pivot_table(index="method", columns="species", values="f1")
    return (100 * t).round(2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--real-events", type=int, default=25_000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs-dir", type=Path, default=None)
    ap.add_argument("--skip-real", action="store_true")
    args = ap.parse_args(argv)
    store = RunStore(args.runs_dir or tempfile.mkdtemp(prefix="accept_alice_pid_"))
    pd.set_option("display.width", 200)
    ok = True

    t0 = time.perf_counter()
    sim = run_alice_pid(AlicePidSettings(events=args.events, seed=args.seed, fse_epochs=args.epochs,
                                         mlp_epochs=args.epochs), store, callbacks=[_EpochLine()],
                        progress=lambda s: print(f"[sim {time.perf_counter() - t0:6.0f}s] {s}", flush=True))
    m = metrics_table(sim)
    print(f"\nsimulation: {args.events:,} tracks, {args.epochs} epochs, test {len(sim.frame):,} tracks, "
          f"threshold {sim.threshold}")
    print("F1 (%) on all tracks:\n", _pivot(m, "all").to_string())
    print("F1 (%) on complete tracks only:\n", _pivot(m, "complete").to_string())
    f1 = m.set_index(["method", "species", "subset"])["f1"]
    for s in sim.species:
        fse, mean = f1[("fse_attention", s, "all")], f1[("mean_imputation", s, "all")]
        good = fse >= mean
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} sim {s}: F1 fse_attention {fse:.4f} >= mean_imputation {mean:.4f}")
    for s in sim.species:
        for method in LEARNED:
            subset = "complete" if method == "case_deletion" else "all"
            learned, standard = f1[(method, s, subset)], f1[("nsigma", s, subset)]
            good = learned > standard
            ok &= good
            print(f"{'PASS' if good else 'FAIL'} sim {s} ({subset}): F1 {method} {learned:.4f} > nsigma {standard:.4f}")
    print(f"simulation took {time.perf_counter() - t0:.0f} s")

    if not args.skip_real:
        t1 = time.perf_counter()
        real = run_alice_pid(AlicePidSettings(events=args.real_events, seed=args.seed, real=True,
                                              fse_epochs=args.epochs, mlp_epochs=args.epochs), store,
                             callbacks=[_EpochLine()],
                             progress=lambda s: print(f"[real {time.perf_counter() - t1:6.0f}s] {s}", flush=True))
        mr = metrics_table(real)
        print(f"\nreal ALICE pp 7 TeV: {args.real_events:,} tracks, test {len(real.frame):,}, "
              f"ITS signal missing in {real.frame['dEdxITS'].isna().mean():.2%} of them")
        print("F1 (%) on all tracks:\n", _pivot(mr, "all").to_string())
        macro = mr[mr["subset"] == "all"].groupby("method")["f1"].mean()
        print("macro-averaged F1 (all tracks):\n", macro.round(4).to_string())
        good = macro["fse_attention"] >= macro["mean_imputation"]
        ok &= bool(good)
        print(f"{'PASS' if good else 'FAIL'} real: macro F1 fse_attention {macro['fse_attention']:.4f} >= "
              f"mean_imputation {macro['mean_imputation']:.4f}")
        print(f"real data took {time.perf_counter() - t1:.0f} s")
    print("\nALL PASS" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
