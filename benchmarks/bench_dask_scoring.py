"""Scoring many ROOT files: the single-process path against a LocalCluster of N worker processes.

Both score the same N TTrees (flat and jagged branches, written with uproot into a temporary folder)
with the same small classifier, through ``hepml_core.scale.scoring.score_files`` into Parquet
partitions plus histograms; the outputs are checked to be identical. The cluster is timed twice:
its whole wall time including starting the workers (what ``hepml score --scheduler local:N`` costs
once), and a second job on the already-warm workers (what a long job's throughput tends to).

The peer is the single-process path measured in the same run. On a machine whose cores are shared
with other work, N workers cannot give N times the throughput; the printed note says so.

Run:  python benchmarks/bench_dask_scoring.py [--files 8] [--events 250000] [--workers 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from hepml_core.pipeline import train_from_config  # noqa: E402
from hepml_core.runs import RunStore  # noqa: E402
from hepml_core.scale.scoring import read_histograms, read_scored, score_files  # noqa: E402

__all__ = ["main"]

FLAT = [f"x{i}" for i in range(8)]
FEATURES = [*FLAT, "jet_pt_0", "jet_pt_1", "jet_pt_n"]


def _write(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    counts = rng.integers(2, 5, n)  # jet_pt_0 and jet_pt_1 always exist: no missing inputs
    cols = {name: rng.normal(size=n) + 0.5 * y for name in FLAT}
    cols["jet_pt"] = ak.unflatten((rng.exponential(20, counts.sum()) + 10 * np.repeat(y, counts)).astype(np.float32),
                                  counts)
    cols["y"], cols["w"] = y.astype(np.int32), rng.uniform(0.5, 1.5, n)
    types = {k: "var * float32" if k == "jet_pt" else ("int32" if k == "y" else "float64") for k in cols}
    with uproot.recreate(path) as f:
        tree = f.mktree("Events", types)
        for start in range(0, n, 100_000):  # baskets of 100k entries, as a production ntuple might have
            tree.extend({k: v[start:start + 100_000] for k, v in cols.items()})


def _run(root: Path):
    _write(root / "train.root", 20_000, seed=0)
    cfg = {"data": {"source": f"{root / 'train.root'}:Events", "features": FEATURES, "label": "y",
                    "classes": ["background", "signal"], "weight": "w",
                    "split": {"validation": 0.2, "test": 0.2, "seed": 1}},
           "model": {"kind": "mlp_classifier", "layers": [len(FEATURES), 64, 64, 2]},
           "train": {"epochs": 1, "batch_size": 1024, "seed": 1}}
    return train_from_config(cfg, RunStore(root / "runs"))


def main(argv: list[str] | None = None) -> float:
    """Run the comparison, print throughputs and the ratio, return the warm-cluster speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--events", type=int, default=250_000, help="events per file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--step", type=int, default=500_000)
    args = parser.parse_args(argv)

    import distributed

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        root = Path(tmp)
        run = _run(root)
        data = root / "data"
        data.mkdir()
        for i in range(args.files):
            _write(data / f"file{i:02d}.root", args.events, seed=10 + i)
        pattern = f"{data}/*.root:Events"
        total = args.files * args.events
        kw = dict(step=args.step, weight="w")

        score_files(run, f"{data}/file00.root:Events", root / "warm", **kw)  # imports, first model build
        t0 = time.perf_counter()
        score_files(run, pattern, root / "single", **kw)
        single = time.perf_counter() - t0

        t0 = time.perf_counter()
        score_files(run, pattern, root / "cold", scheduler=f"local:{args.workers}", **kw)
        cold = time.perf_counter() - t0

        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
                distributed.Client(cluster) as client:
            score_files(run, f"{data}/file00.root:Events", root / "warm2", client=client, **kw)  # warm workers
            t0 = time.perf_counter()
            score_files(run, pattern, root / "cluster", client=client, **kw)
            warm = time.perf_counter() - t0

        same = read_scored(root / "single").equals(read_scored(root / "cluster"))
        h1, h2 = read_histograms(root / "single"), read_histograms(root / "cluster")
        same = same and all(h1[k].equals(h2[k]) for k in h1)

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.files} files x {args.events:,} events ({total:,}), {len(FEATURES)} inputs, step {args.step:,}")
    print(f"single process:                {single:7.2f} s  {total / single / 1e6:6.3f} M events/s")
    print(f"LocalCluster({args.workers}) incl. startup: {cold:7.2f} s  {total / cold / 1e6:6.3f} M events/s  "
          f"({single / cold:.2f}x the single process)")
    print(f"LocalCluster({args.workers}) warm workers:  {warm:7.2f} s  {total / warm / 1e6:6.3f} M events/s  "
          f"({single / warm:.2f}x the single process)")
    print(f"outputs identical: {same}")
    print(f"note: {cores} cores, load average {load:.1f}; {args.workers} workers can reach at most "
          f"{min(args.workers, cores)}x, and less on cores shared with other work (expect < 2x here)")
    if not same:
        raise SystemExit("the cluster's output differs from the single process's")
    return single / warm


if __name__ == "__main__":
    main()
