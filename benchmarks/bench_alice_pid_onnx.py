"""Scoring throughput of the FSE + attention PID model: onnxruntime vs PyTorch on the same tracks.

Trains a small FSE run (the weights do not change the cost), exports it with ``export_onnx`` and
scores N simulated tracks (NaN for missing detectors) with both, one thread each, in batches of
4096. Prints tracks/s of each and the ratio, and the largest probability difference.

Usage: .venv/bin/python benchmarks/bench_alice_pid_onnx.py [--tracks 1000000] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hepml_core.config import SplitConfig, TrainSettings  # noqa: E402
from hepml_core.data.schema import Schema  # noqa: E402
from hepml_core.data.table import EventTable  # noqa: E402
from hepml_core.onnx_export import OnnxScorer, export_onnx, scoring_module, torch_outputs  # noqa: E402
from hepml_core.pipeline import train_on_table  # noqa: E402
from hepml_core.runs import RunStore  # noqa: E402
from hepml_core.simulate.alice_pid import FEATURES, simulate_alice_pid  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4096)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_pid_onnx_"))
    train = simulate_alice_pid(5000, seed=1)
    train["target"] = np.where(train["label"] == "kaon", "kaon", "rest")
    table = EventTable(train, Schema(features=FEATURES, label="target", classes=("rest", "kaon")))
    run = train_on_table(table, model={"kind": "fse_transformer"}, train=TrainSettings(epochs=1, batch_size=256),
                         split=SplitConfig(), store=RunStore(tmp / "runs"))
    path = export_onnx(run, tmp / "fse.onnx")
    scorer = OnnxScorer(path, threads=args.threads)
    module = scoring_module(run)
    x = simulate_alice_pid(args.tracks, seed=2)[list(FEATURES)].to_numpy(np.float32)
    scorer.predict(x[:8192], batch_size=args.batch)  # warm-up both
    torch_outputs(module, x[:8192], batch_size=args.batch)

    t0 = time.perf_counter()
    p_onnx = scorer.predict(x, batch_size=args.batch)
    t_onnx = time.perf_counter() - t0
    t0 = time.perf_counter()
    p_torch = torch_outputs(module, x, batch_size=args.batch)
    t_torch = time.perf_counter() - t0
    diff = float(np.abs(p_onnx - p_torch).max())
    print(f"FSE+attention scoring of {args.tracks:,} tracks ({args.threads} thread(s), batch {args.batch}): "
          f"onnxruntime {args.tracks / t_onnx:,.0f} tracks/s, PyTorch {args.tracks / t_torch:,.0f} tracks/s -> "
          f"onnxruntime is {t_torch / t_onnx:.2f}x PyTorch (max |dp| = {diff:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
