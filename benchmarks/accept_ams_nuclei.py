"""Acceptance numbers of the nuclei domain-adaptation study (issue 6), at a size given on the command line.

Criteria on the simulated sample:
  1. domain accuracy of the adversarial model within 0.5 +/- 0.05, measured two ways:
     a. the model's own domain classifier (its head, on the learned features of the held-out events, MC
        and data weighing the same): the talk's measure;
     b. a fresh probe trained on the frozen learned features (equal MC and data counts), which also
        finds what the head was trained to miss: the stricter judge;
  2. on the data domain (hidden truth), the adversarial model's signal/background AUC >= the plain one's;
  3. |efficiency(MC) - efficiency(data)| at threshold 0.5 smaller for the adversarial model.
The differences of criteria 2 and 3 come with a paired bootstrap standard deviation over the held-out
events (both models scored on the same resampled events), so a "pass" inside the noise shows as such.
The plain network trains on the MC rows only; ``--epochs`` gives it as many optimiser steps as the
adversarial one (more epochs), otherwise the comparison measures training length, not adaptation.

    .venv/bin/python benchmarks/accept_ams_nuclei.py --events 40000 --data-events 32000 --epochs 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch

from hepml_core.metrics.roc import roc_auc
from hepml_core.runs import RunStore
from hepml_core.studies.ams_nuclei import MODELS, AmsNucleiSettings, run_ams_nuclei
from hepml_core.studies.ams_nuclei_tables import auc_table, efficiency_table


def _bootstrap(frame, n_boot: int = 200, seed: int = 0) -> tuple[float, float]:
    """Std of (AUC_data adv - plain) and of (|eff gap| adv - plain) at 0.5 over paired resamples."""
    rng = np.random.default_rng(seed)
    parts = {d: frame[frame["domain"] == d] for d in ("mc", "data")}
    d_auc, d_gap = [], []
    for _ in range(n_boot):
        picked = {d: f.iloc[rng.integers(0, len(f), len(f))] for d, f in parts.items()}
        data = picked["data"]
        y = (data["true_label"] == "signal").to_numpy()
        auc = {m: roc_auc(y, data[f"score_{m}"].to_numpy()) for m in MODELS}
        eff = {}
        for m in MODELS:
            e = []
            for f in picked.values():
                sig = (f["true_label"] == "signal").to_numpy()
                e.append(float(np.mean(f[f"score_{m}"].to_numpy()[sig] >= 0.5)))
            eff[m] = abs(e[0] - e[1])
        d_auc.append(auc["adversarial"] - auc["plain"])
        d_gap.append(eff["adversarial"] - eff["plain"])
    return float(np.std(d_auc)), float(np.std(d_gap))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=AmsNucleiSettings.events)
    parser.add_argument("--data-events", type=int, default=AmsNucleiSettings.data_events)
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of the adversarial network (default: the study's); the plain one gets "
                             "as many optimiser steps, i.e. (MC + data) / MC times the epochs, as it sees MC only")
    parser.add_argument("--plain-epochs", type=int, default=None, help="epochs of the plain network (overrides)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-shift", default=AmsNucleiSettings.data_shift,
                        help="'misaligned' (default), 'residual' or 'strong'")
    parser.add_argument("--data-signal-fraction", type=float, default=AmsNucleiSettings.data_signal_fraction,
                        help="signal share of the data sample (the MC's is 0.5)")
    parser.add_argument("--lambda-max", type=float, default=None)
    parser.add_argument("--domain-steps", type=int, default=None, help="extra domain-head updates per batch")
    parser.add_argument("--label-shift", action="store_true",
                        help="weight the MC classes in the domain loss by the data's estimated class mix")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--runs-dir", default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = replace(AmsNucleiSettings(), events=args.events, data_events=args.data_events, seed=args.seed,
                       data_shift=args.data_shift, data_signal_fraction=args.data_signal_fraction)
    if args.epochs is not None:
        same_steps = max(1, round(args.epochs * (args.events + args.data_events) / args.events))
        settings = replace(settings, adversarial_epochs=args.epochs, plain_epochs=same_steps)
    if args.plain_epochs is not None:
        settings = replace(settings, plain_epochs=args.plain_epochs)
    if args.lambda_max is not None:
        settings = replace(settings, lambda_max=args.lambda_max)
    if args.domain_steps is not None:
        settings = replace(settings, domain_steps=args.domain_steps)
    if args.label_shift:
        settings = replace(settings, label_shift=True)
    runs_dir = args.runs_dir or tempfile.mkdtemp(prefix="accept_ams_nuclei_")
    t0 = time.perf_counter()
    result = run_ams_nuclei(settings, RunStore(runs_dir), progress=lambda s: print(f"[ams-nuclei] {s}", flush=True))
    minutes = (time.perf_counter() - t0) / 60
    auc = auc_table(result).query("selection == 'all'").set_index(["model", "domain"])["auc"]
    eff = efficiency_table(result, [0.5]).query("selection == 'all'").set_index(["model", "domain"])
    print(f"\n{settings.events:,} MC + {settings.data_events:,} data events ({settings.data_shift} shift, "
          f"{settings.data_signal_fraction:.0%} signal in data), "
          f"{settings.adversarial_epochs}/{settings.plain_epochs} epochs, lambda_max {settings.lambda_max}, "
          f"domain_steps {settings.domain_steps}, label_shift {settings.label_shift}, {minutes:.1f} min; "
          f"runs in {runs_dir}")
    print(f"{'model':12s} {'probe acc':>9s} {'head acc':>8s} {'AUC mc':>8s} {'AUC data':>9s} {'eff mc':>8s} "
          f"{'eff data':>9s} {'|diff|':>7s} {'bkg mc':>7s} {'bkg data':>8s}")
    diff = {}
    for m in MODELS:
        e_mc, e_data = eff.loc[(m, "mc"), "signal_efficiency"], eff.loc[(m, "data"), "signal_efficiency"]
        diff[m] = abs(e_mc - e_data)
        head = result.domain_head_accuracy if m == "adversarial" else float("nan")
        print(f"{m:12s} {result.domain_accuracy[m]:9.3f} {head:8.3f} {auc[(m, 'mc')]:8.4f} {auc[(m, 'data')]:9.4f} "
              f"{e_mc:8.4f} {e_data:9.4f} {diff[m]:7.4f} {eff.loc[(m, 'mc'), 'background_fraction']:7.4f} "
              f"{eff.loc[(m, 'data'), 'background_fraction']:8.4f}")
    sd_auc, sd_gap = _bootstrap(result.frame)
    d_auc = auc[("adversarial", "data")] - auc[("plain", "data")]
    print(f"data AUC adversarial - plain: {d_auc:+.4f} +/- {sd_auc:.4f}; |eff gap| adversarial - plain: "
          f"{diff['adversarial'] - diff['plain']:+.4f} +/- {sd_gap:.4f} (paired bootstrap std)")
    checks = {
        f"1a. the adversarial model's domain head (balanced, held-out events) within 0.5 +/- 0.05: "
        f"{result.domain_head_accuracy:.3f}": abs(result.domain_head_accuracy - 0.5) <= 0.05,
        f"1b. a fresh probe on its learned features within 0.5 +/- 0.05: "
        f"{result.domain_accuracy['adversarial']:.3f}": abs(result.domain_accuracy["adversarial"] - 0.5) <= 0.05,
        "2. data AUC: adversarial >= plain": auc[("adversarial", "data")] >= auc[("plain", "data")],
        "3. |eff_mc - eff_data| at 0.5: adversarial < plain": diff["adversarial"] < diff["plain"],
    }
    for text, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {text}")


if __name__ == "__main__":
    main()
