"""Throughput of the DARWIN toy: simulated events/s and TS-scored events/s, each against a named peer.

* Simulator: full ``simulate_darwin`` events/s (quanta, S1/S2 waveforms, top pattern, triggers); its
  quanta step (NEST tabulated once, fluctuations drawn in numpy) against calling nestpy per event
  (``GetYields`` + ``GetQuanta``), the same physics output.
* TS scoring: ``score_arrays`` (-ELBO, H_B, p_NR and latent means in 4096-event batches) against the
  same models and inputs in batches of 256 events (a DataLoader-style inference loop).

Run:  python benchmarks/bench_darwin_throughput.py [--events 100000] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from hepml_core.runs import RunStore  # noqa: E402
from hepml_core.simulate import _darwin_nest as nest  # noqa: E402
from hepml_core.simulate.darwin import simulate_darwin  # noqa: E402
from hepml_core.studies.darwin import DarwinSettings, log_features, run_darwin, score_arrays  # noqa: E402

__all__ = ["main"]


def _nestpy_per_event(n: int, seed: int) -> float:
    """Seconds for n per-event nestpy quanta calls (ER, flat 1-100 keV)."""
    nestpy, calc, _ = nest._calculator()
    energies = np.random.default_rng(seed).uniform(1, 100, n)
    with nest._quiet_native():
        t0 = time.perf_counter()
        for e in energies:
            y = calc.GetYields(nestpy.interactions.beta, float(e), nest.LXE_DENSITY, nest.DRIFT_FIELD_V_CM)
            calc.GetQuanta(y, nest.LXE_DENSITY)
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Print events/s of the simulator and of TS scoring, with their ratios to the peers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--peer-events", type=int, default=20_000, help="events for the per-event nestpy loop")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    nest.quanta_table("ER"), nest.quanta_table("NR")  # the one-off table (~3 s) is not per-event cost
    t0 = time.perf_counter()
    frame = simulate_darwin(args.events, seed=1)
    t_sim = time.perf_counter() - t0
    print(f"simulate_darwin: {args.events / t_sim:,.0f} events/s ({args.events:,} events with waveforms and "
          f"hit patterns in {t_sim:.1f} s)")
    energies = np.random.default_rng(2).uniform(1, 100, args.events)
    t0 = time.perf_counter()
    nest.sample_quanta(energies, "ER", np.random.default_rng(3))
    t_quanta = time.perf_counter() - t0
    t_peer = _nestpy_per_event(args.peer_events, 1)
    rate, peer = args.events / t_quanta, args.peer_events / t_peer
    print(f"NEST quanta: {rate:,.0f} events/s = {rate / peer:.1f}x per-event nestpy GetYields+GetQuanta "
          f"({peer:,.0f} events/s)")

    with tempfile.TemporaryDirectory() as tmp:
        settings = DarwinSettings(events=4000, data_events=2000, signal_events=300, classifier_epochs=2,
                                  vae_epochs=2, n_toys=50, n_signal_toys=20, r_values=(0.0, 1.0))
        result = run_darwin(settings, RunStore(tmp))
        store = RunStore(tmp)
        clf_run, vae_run = store.load(result.classifier_run_id), store.load(result.vae_run_id)
        clf, vae = clf_run.model(), vae_run.model()
        x = log_features(frame).to_numpy(np.float32)
        xc, xv = clf_run.preprocessor.transform(x), vae_run.preprocessor.transform(x)
    best = {}
    for batch in (4096, 256, 4096, 256):  # alternating rounds, best of each
        t0 = time.perf_counter()
        score_arrays(clf, vae, xc, xv, batch_size=batch)
        best[batch] = min(best.get(batch, np.inf), time.perf_counter() - t0)
    rate, small = args.events / best[4096], args.events / best[256]
    print(f"TS scoring: {rate:,.0f} events/s = {rate / small:.1f}x the same models in batches of 256 "
          f"({small:,.0f} events/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
