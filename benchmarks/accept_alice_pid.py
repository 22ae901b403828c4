"""Acceptance numbers of the alice-pid study (issue 5): F1 of every method and species, and the checks.

Every learned method is trained ``--repeats`` times (seeds seed, seed+1, ...; same sample and test
tracks); the tables show F1 mean +- standard deviation over the repeats (in %), and the checks
compare the means. Checks printed (PASS/FAIL):
  * simulation: the feature-set embedding's F1 >= mean imputation's for every species (all tracks);
  * simulation: every learned method beats the n-sigma selection in F1 for every species (all tracks;
    case deletion on complete tracks, the only ones it can score, as in the talk's second table);
  * real ALICE samples: the feature-set embedding's macro-averaged F1 >= mean imputation's.

Usage: .venv/bin/python benchmarks/accept_alice_pid.py [--events 60000] [--real-events 25000] [--repeats 3]
[--epochs N] [--fse-epochs N] (epoch ceilings; default the study's, early stopping ends each fit)
[--species kaon,antiproton] (simulation only; default all six) [--methods ...] (default all)
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
from hepml_core.studies.alice_pid_tables import repeat_table, spread_table  # noqa: E402

class _FitLine(Callback):
    """One line per fit (epochs run, best epoch, lr at the end), so a long run shows where it is."""

    def on_fit_end(self, state) -> None:
        if not state.history:
            return
        last = state.history[-1]
        seconds = sum(r["seconds"] for r in state.history)
        print(f"    {len(state.history)}/{state.n_epochs} epochs, best {state.best_epoch} "
              f"(val {state.best_val_loss:.4f}), lr {last['lr']:.2e}, {seconds:.0f} s", flush=True)


LEARNED = ("fse_attention", "mean_imputation", "regression_imputation", "case_deletion", "ensemble", "xgboost")


def _pivot(m: pd.DataFrame, subset: str, species) -> pd.DataFrame:
    """F1 in % as "mean +- std" (std over repeats; blank with one repeat), methods x species."""
    m = m[m["subset"] == subset]
    text = [f"{100 * a:6.2f}" + (f" +- {100 * b:4.2f}" if pd.notna(b) else "")
            for a, b in zip(m["f1_mean"], m["f1_std"])]
    t = m.assign(text=text).pivot(index="method", columns="species", values="text")
    return t[[s for s in species if s in t.columns]]


def _pm(row) -> str:
    return f"{row['f1_mean']:.4f}" + (f" +- {row['f1_std']:.4f}" if pd.notna(row["f1_std"]) else "")


def _settings(args, **kw) -> AlicePidSettings:
    epochs = {} if args.epochs is None else {"fse_epochs": args.epochs, "mlp_epochs": args.epochs}
    if args.fse_epochs is not None:
        epochs["fse_epochs"] = args.fse_epochs
    species = {"species": tuple(args.species.split(","))} if args.species and not kw.get("real") else {}
    methods = {"methods": tuple(args.methods.split(","))} if args.methods else {}
    return AlicePidSettings(seed=args.seed, repeats=args.repeats, **epochs, **species, **methods, **kw)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=AlicePidSettings().events)
    ap.add_argument("--real-events", type=int, default=25_000)
    ap.add_argument("--epochs", type=int, default=None, help="epoch ceiling (default: the study's)")
    ap.add_argument("--fse-epochs", type=int, default=None, help="epoch ceiling of the FSE model only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--species", default=None, help="comma-separated simulated species (default: all six)")
    ap.add_argument("--methods", default=None, help="comma-separated methods (default: all; checks need nsigma)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs-dir", type=Path, default=None)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-sim", action="store_true")
    args = ap.parse_args(argv)
    store = RunStore(args.runs_dir or tempfile.mkdtemp(prefix="accept_alice_pid_"))
    pd.set_option("display.width", 200)
    ok = True

    if not args.skip_sim:
        t0 = time.perf_counter()
        sim = run_alice_pid(_settings(args, events=args.events), store, callbacks=[_FitLine()],
                            progress=lambda s: print(f"[sim {time.perf_counter() - t0:6.0f}s] {s}", flush=True))
        m = spread_table(sim)
        print(f"\nsimulation: {args.events:,} tracks, test {len(sim.frame):,} tracks, threshold {sim.threshold}, "
              f"{sim.repeats} training(s) per method (F1 in %, mean +- std over them)")
        print("F1 on all tracks:\n" + _pivot(m, "all", sim.species).to_string())
        print("F1 on complete tracks only:\n" + _pivot(m, "complete", sim.species).to_string())
        f1 = m.set_index(["method", "species", "subset"])
        for s in sim.species:
            if ("fse_attention", s, "all") not in f1.index or ("mean_imputation", s, "all") not in f1.index:
                continue
            fse, mean = f1.loc[("fse_attention", s, "all")], f1.loc[("mean_imputation", s, "all")]
            good = fse["f1_mean"] >= mean["f1_mean"]
            ok &= good
            print(f"{'PASS' if good else 'FAIL'} sim {s}: F1 fse_attention {_pm(fse)} >= mean_imputation {_pm(mean)}")
        for s in sim.species:
            for method in LEARNED:
                subset = "complete" if method == "case_deletion" else "all"
                if (method, s, subset) not in f1.index:
                    continue
                learned, standard = f1.loc[(method, s, subset)], f1.loc[("nsigma", s, subset)]
                good = learned["f1_mean"] > standard["f1_mean"]
                ok &= good
                print(f"{'PASS' if good else 'FAIL'} sim {s} ({subset}): F1 {method} {_pm(learned)} > "
                      f"nsigma {standard['f1_mean']:.4f}")
        print(f"simulation took {time.perf_counter() - t0:.0f} s")

    if not args.skip_real:
        t1 = time.perf_counter()
        real = run_alice_pid(_settings(args, events=args.real_events, real=True), store, callbacks=[_FitLine()],
                             progress=lambda s: print(f"[real {time.perf_counter() - t1:6.0f}s] {s}", flush=True))
        mr = spread_table(real)
        print(f"\nreal ALICE pp 7 TeV: {args.real_events:,} tracks, test {len(real.frame):,}, "
              f"ITS signal missing in {real.frame['dEdxITS'].isna().mean():.2%} of them")
        print("F1 on all tracks:\n" + _pivot(mr, "all", real.species).to_string())
        per_repeat = repeat_table(real)
        macro = per_repeat[per_repeat["subset"] == "all"].groupby(["method", "repeat"])["f1"].mean().groupby("method")
        macro_mean, macro_std = macro.mean(), macro.std(ddof=1)
        print("macro-averaged F1 (all tracks), mean +- std over trainings:")
        for k in macro_mean.index:
            print(f"  {k:22s} {macro_mean[k]:.4f} +- {macro_std[k]:.4f}")
        good = macro_mean["fse_attention"] >= macro_mean["mean_imputation"]
        ok &= bool(good)
        print(f"{'PASS' if good else 'FAIL'} real: macro F1 fse_attention {macro_mean['fse_attention']:.4f} >= "
              f"mean_imputation {macro_mean['mean_imputation']:.4f}")
        print(f"real data took {time.perf_counter() - t1:.0f} s")
    print("\nALL PASS" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
