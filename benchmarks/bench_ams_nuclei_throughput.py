"""Training throughput of the multimodal nuclei network, and the share of each branch in a training step.

Prints events/s of one Trainer epoch for the adversarial (MDA) and the plain multimodal network, and a
one-line ratio against a named peer measured in the same run: an MLP classifier with the same inputs
(``mlp_classifier`` [87, 128, 64, 2]). Then the share of a training step (forward + backward) that each
branch takes, timed in isolation on the same batch, with the rest (attention fusion, heads, loss,
optimiser) as "fusion + heads".

    .venv/bin/python benchmarks/bench_ams_nuclei_throughput.py [--events 20000] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hepml_core.data.preprocessing import Preprocessor
from hepml_core.models.multimodal import BRANCHES
from hepml_core.models.registry import build_model
from hepml_core.simulate.ams_nuclei import simulate_ams_nuclei
from hepml_core.studies.ams_nuclei import FEATURES, AmsNucleiSettings, model_params, prepare_frame
from hepml_core.training.data import TensorData
from hepml_core.training.trainer import Trainer


def _data(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mc = prepare_frame(simulate_ams_nuclei(n, seed=1))
    data = prepare_frame(simulate_ams_nuclei(n, seed=2, sample="data"))
    x = np.vstack([mc[list(FEATURES)].to_numpy(np.float32), data[list(FEATURES)].to_numpy(np.float32)])
    x = Preprocessor().fit(x).transform(x)
    y = np.r_[(mc["label"] == "signal").to_numpy(np.int64), np.zeros(n, dtype=np.int64)]
    domain = np.r_[np.zeros(n), np.ones(n)].astype(np.float32)
    return x, y, domain


def _build(params: dict, n_inputs: int):
    rest = {k: v for k, v in params.items() if k not in ("kind", "n_classes")}
    return build_model(params["kind"], n_inputs, params["n_classes"], seed=1, **rest)


def _throughput(model, data: TensorData, batch: int) -> float:
    trainer = Trainer(epochs=1, batch_size=batch, seed=1, early_stopping=None, device="cpu",
                      callbacks=list(getattr(model, "training_callbacks", list)()))
    t0 = time.perf_counter()
    trainer.fit(model, data)
    return len(data) / (time.perf_counter() - t0)


def _branch_shares(model, x: torch.Tensor, reps: int = 5) -> dict[str, float]:
    """Seconds per forward+backward of each branch alone, and of a whole training step."""
    n_trk, n_img, n_rig, n_tof = model._sizes
    trk, img, rig, tof = torch.split(x, model._sizes, dim=1)
    nodes = x.new_zeros(x.shape[0], 64).index_copy(1, model.slots, trk).view(-1, 32, 2)
    calls = {
        "tracker_gnn": lambda: model.tracker_gnn(nodes, model.available),
        "cluster_cnn": lambda: model.cluster_cnn(img),
        "rigidity_mlp": lambda: model.rigidity_mlp(rig),
        "tof_mlp": lambda: model.tof_mlp(tof),
    }
    extra = torch.stack([torch.zeros(len(x)), torch.ones(len(x))], dim=1)

    def step():
        return model.event_losses(x, None, extra).mean() if hasattr(model, "event_losses") else model(x).sum()

    calls["step"] = step
    seconds = {}
    for name, fn in calls.items():
        fn().sum().backward()  # warm-up
        t0 = time.perf_counter()
        for _ in range(reps):
            model.zero_grad(set_to_none=True)
            fn().sum().backward()
        seconds[name] = (time.perf_counter() - t0) / reps
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="MC events (and as many data events)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y, domain = _data(args.events)
    extra = np.column_stack([domain, np.where(domain == 0, y, np.nan)]).astype(np.float32)
    mc = domain == 0
    # The study's hyperparameters (the adversarial one's extra domain-head steps cost time too).
    params = {kind: model_params(AmsNucleiSettings(), adversarial=kind == "multimodal_dann")
              for kind in ("multimodal_dann", "multimodal_classifier")}
    rates = {}
    for kind, p in params.items():
        model = _build(p, x.shape[1])
        data = TensorData(x, None, extra=extra) if kind == "multimodal_dann" else TensorData(x[mc], y[mc])
        rates[kind] = _throughput(model, data, args.batch)
    peer = build_model("mlp_classifier", x.shape[1], 2, seed=1, layers=[x.shape[1], 128, 64, 2])
    rates["mlp_classifier"] = _throughput(peer, TensorData(x[mc], y[mc]), args.batch)
    for kind, rate in rates.items():
        print(f"{kind:24s} {rate:10.0f} events/s (one epoch, batch {args.batch}, {args.threads} thread(s))")
    print(f"multimodal_dann trains at {rates['multimodal_dann'] / rates['mlp_classifier']:.3f}x the events/s of "
          f"an mlp_classifier [87, 128, 64, 2] (peer, same run)")
    model = _build(params["multimodal_dann"], x.shape[1])
    seconds = _branch_shares(model, torch.from_numpy(x[: args.batch]))
    step = seconds.pop("step")
    rest = max(step - sum(seconds.values()), 0.0)
    shares = {**{b: seconds[b] / step for b in BRANCHES}, "fusion + heads + loss": rest / step}
    print("share of a training step (forward+backward, branches timed alone): "
          + ", ".join(f"{k} {100 * v:.1f} %" for k, v in shares.items()))


if __name__ == "__main__":
    main()
