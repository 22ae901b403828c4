"""Acceptance of the HNL study: does the parametrised DNN beat Mt_tot at every mass, and where are transfer
and the per-mass variants?

Runs ``run_hnl`` (the ``hepml study hnl`` recipe) at the given size, then prints the channel-averaged Z per
mass for Mt_tot, the BDT, the parametrised DNN, the transfer model and the per-mass DNN and BDT with both
binnings, the masses where the PNN does not beat Mt_tot, how the per-mass variants compare with their
parametrised twins, and the wall time of each stage.

Usage: ``python benchmarks/accept_hnl.py [--events 1600000] [--epochs N] [--runs-dir DIR] [--threads 2]
[--no-per-mass] [--full-size-pretraining]`` (the full-size 1024 x 25 pre-training wants a GPU).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

import pandas as pd
import torch

from hepml_core.runs import RunStore
from hepml_core.studies.hnl import HnlSettings, run_hnl
from hepml_core.studies.hnl_tables import comparison_table, significance_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=HnlSettings().events)
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every network (default: the study's)")
    parser.add_argument("--runs-dir", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-per-mass", action="store_true", help="skip the per-mass DNN and BDT")
    parser.add_argument("--full-size-pretraining", action="store_true",
                        help="the talk's 1024 x 25 regression network (slow without a GPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = HnlSettings(events=args.events, bdt_threads=args.threads, per_mass_models=not args.no_per_mass)
    if args.full_size_pretraining:
        settings = settings.full_size_pretraining()
    if args.epochs is not None:
        settings = replace(settings, pnn_epochs=args.epochs, regression_epochs=args.epochs,
                           transfer_epochs=args.epochs, per_mass_epochs=args.epochs)
    runs = args.runs_dir or tempfile.mkdtemp(prefix="hnl_accept_")
    t0, c0 = time.perf_counter(), time.process_time()
    last = [t0, c0]

    def say(step: str) -> None:
        # CPU seconds of this process too: on a shared machine the wall time says more about the neighbours
        now, cpu = time.perf_counter(), time.process_time()
        print(f"[{now - t0:7.1f} s, previous stage {now - last[0]:6.1f} s wall, {cpu - last[1]:6.1f} s CPU] {step}",
              flush=True)
        last[0], last[1] = now, cpu

    result = run_hnl(settings, RunStore(runs), progress=say)
    say("study saved; computing the significance tables")
    pd.set_option("display.width", 200)
    for binning in ("right_to_left", "equal_signal"):
        comp = comparison_table(significance_table(result, binning=binning))
        print(f"\nchannel-averaged S/sqrt(B), {binning} binning (bound 0.15), {args.events:,} events:")
        print(comp.round(4).to_string(index=False))
        losing = comp.loc[~comp["pnn_beats_mt_tot"], "mass"].tolist()
        print(f"PNN beats Mt_tot at {int(comp['pnn_beats_mt_tot'].sum())}/{len(comp)} masses"
              + (f"; not at {losing}" if losing else ""))
        print(f"transfer beats Mt_tot at {int(comp['transfer_beats_mt_tot'].sum())}/{len(comp)}, "
              f"beats the PNN at {int((comp['z_transfer'] > comp['z_pnn']).sum())}/{len(comp)}; "
              f"BDT beats Mt_tot at {int(comp['bdt_beats_mt_tot'].sum())}/{len(comp)}")
        for per_mass, twin in (("dnn_per_mass", "pnn"), ("bdt_per_mass", "bdt")):
            if f"z_{per_mass}" not in comp.columns:
                continue
            ratio = comp[f"z_{per_mass}"] / comp[f"z_{twin}"]
            print(f"{per_mass} beats Mt_tot at {int(comp[f'{per_mass}_beats_mt_tot'].sum())}/{len(comp)}, "
                  f"beats {twin} at {int((ratio > 1).sum())}/{len(comp)}; Z({per_mass})/Z({twin}): "
                  f"median {ratio.median():.3f}, range {ratio.min():.3f}..{ratio.max():.3f}")
    say("done")


if __name__ == "__main__":
    main()
