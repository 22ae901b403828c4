"""DARWIN anomaly-aware search: a VAE on ER only + an ER/NR MLP classifier, TS = -ELBO + R H_B (seed talk 004).

The recipe: simulate labelled ER/NR events (x = [S1WaveformTotal, S2WaveformTotal, S2Pattern], log(1 + PE)
per bin or PMT, standardised); an MLP classifier ER vs NR (~40k events, 40 % test, as in the talk); a VAE
(Gaussian decoder with learned variance, loss -ELBO with beta) trained on the ER events of the
classifier's training and validation splits; then per event -ELBO and H_B = -log(1 - p_NR), scored on
independent pools: ER "null" events (half fit the null density f0, half make background pseudo-data)
and WIMP events of 30, 50 and 100 GeV. The median p-value of H0 under WIMP injection (exposure 200 t y,
sigma_SI = 6.5e-48 cm^2) is scanned over R, next to the classical 2-D (cS1, cS2) template analysis.

Assumption beyond the talk: an ER background of 5 events / (t y keV), flat in 1-100 keV (DARWIN's
pp-neutrino-dominated level), no neutron background in the pseudo-data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from hepml_core.config import SplitConfig, TrainSettings
from hepml_core.data.preprocessing import Preprocessor
from hepml_core.data.schema import Schema
from hepml_core.data.table import EventTable
from hepml_core.models.registry import build_model
from hepml_core.pipeline import train_on_table
from hepml_core.runs import RunStore
from hepml_core.simulate._darwin_wimp import wimp_events_per_tonne_year
from hepml_core.simulate.darwin import CLASS_NAMES, FEATURE_GROUPS, FEATURES, simulate_darwin
from hepml_core.studies.darwin_tables import baseline_pvalue, classifier_metrics, pvalue_scan
from hepml_core.training.data import TensorData
from hepml_core.training.trainer import Trainer

__all__ = ["DarwinSettings", "DarwinResult", "run_darwin", "load_darwin", "score_pools", "score_arrays", "STUDY_NAME",
           "log_features"]

STUDY_NAME = "darwin"
_BATCH = 4096  # fastest on CPU here: larger batches fall out of cache (see bench_darwin_throughput)


@dataclass(frozen=True)
class DarwinSettings:
    """Defaults are the talk's numbers; tests and the CLI shrink ``events`` and the epochs."""

    events: int = 40_000  # labelled ER/NR events ("train on ~40000 events, test ~40 %")
    data_events: int = 60_000  # independent ER events: half fit f0, half make background pseudo-data
    signal_events: int = 10_000  # WIMP events per mass (signal pools of the pseudo-experiments)
    seed: int = 1
    classifier_layers: tuple[int, ...] = (93, 64, 32, 2)
    dropout: float = 0.1
    classifier_lr: float = 1e-3
    classifier_batch_size: int = 256
    classifier_epochs: int = 30
    vae_layers: tuple[int, ...] = (93, 64, 32, 4)
    beta: float = 1.0
    vae_lr: float = 1e-3
    vae_batch_size: int = 256
    vae_epochs: int = 40
    patience: int | None = 5
    r_values: tuple[float, ...] = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 1e4, 1e5)
    wimp_masses: tuple[float, ...] = (30.0, 50.0, 100.0)
    exposure_t_yr: float = 200.0
    sigma_cm2: float = 6.5e-48
    er_rate_per_t_yr_kev: float = 5.0
    e_min_kev: float = 1.0
    e_max_kev: float = 100.0
    ts_cut_quantile: float | None = 0.99
    null_method: str = "kde"
    n_toys: int = 2000
    n_signal_toys: int = 500


@dataclass
class DarwinResult:
    """Scores of every pool in ``frame`` plus the study's statistics.

    ``frame`` has one row per scored event: ``pool`` ("mc_test", "null_fit", "null_toy", "wimp30" ...),
    ``label`` ("ER"/"NR"), ``source``, ``energy_kev``, ``cs1_pe``, ``cs2_pe``, ``neg_elbo``, ``h_b``,
    ``p_nr``, ``z_0..`` (VAE latent means) and ``weight``.
    """

    frame: pd.DataFrame
    pvalues: pd.DataFrame
    baseline: pd.DataFrame
    ppc: pd.DataFrame
    classifier: dict
    expected: dict
    classifier_run_id: str
    vae_run_id: str
    study_run_id: str
    settings: DarwinSettings = field(default_factory=DarwinSettings)

    @property
    def mc_test(self) -> pd.DataFrame:
        """Labelled test events (the classifier and VAE never trained on them)."""
        return self.frame[self.frame["pool"] == "mc_test"]

    def pools(self) -> dict[str, np.ndarray]:
        """``neg_elbo_<pool>`` and ``h_b_<pool>`` arrays, what ``pvalue_scan`` takes."""
        out = {}
        for name, grp in self.frame.groupby("pool", observed=True):
            out[f"neg_elbo_{name}"] = grp["neg_elbo"].to_numpy()
            out[f"h_b_{name}"] = grp["h_b"].to_numpy()
        return out


def log_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The network inputs: log(1 + PE) of every waveform bin and PMT (S2 areas span 3 decades)."""
    return pd.DataFrame(np.log1p(np.clip(frame[list(FEATURES)].to_numpy(np.float64), 0, None)),
                        columns=list(FEATURES), index=frame.index)


def _settings_dict(settings: DarwinSettings) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}


def _train_vae(x_train: np.ndarray, x_val: np.ndarray, settings: DarwinSettings, store: RunStore, base: dict,
               callbacks: Sequence, cancel):
    """Train the VAE (task 'custom') on ER events and save it as a run (the pipeline handles classifiers/AEs)."""
    pre = Preprocessor(method="standard").fit(x_train)
    layers = [len(FEATURES), *settings.vae_layers[1:]]
    model = build_model("vae", layers[0], layers[-1], seed=settings.seed, layers=layers, beta=settings.beta)
    trainer = Trainer(epochs=settings.vae_epochs, batch_size=settings.vae_batch_size, lr=settings.vae_lr,
                      seed=settings.seed, early_stopping=settings.patience, callbacks=callbacks, cancel=cancel)
    result = trainer.fit(model, TensorData(pre.transform(x_train)), TensorData(pre.transform(x_val)))
    schema = Schema(features=tuple(FEATURES), groups=FEATURE_GROUPS)
    metrics = {"best_epoch": int(result.best_epoch), "train_seconds": float(result.seconds),
               "best_val_neg_elbo": float(min(r["val_loss"] for r in result.history)),
               "n_train": int(len(x_train)), "n_validation": int(len(x_val))}
    with store.create("vae") as writer:
        writer.write_yaml("config.yaml", {**base, "role": "vae", "inputs": "log1p(PE)",
                                          "model": {"kind": "vae", **model.hparams}})
        writer.write_json("schema.json", schema.to_dict())
        writer.write_json("preprocessing.json", pre.to_dict())
        writer.write_tensors("model.safetensors", result.best_state)
        writer.write_csv("history.csv", pd.DataFrame(result.history))
        writer.write_json("metrics.json", metrics)
    return store.load(writer.id)


@torch.no_grad()
def score_pools(classifier_run, vae_run, frame: pd.DataFrame) -> pd.DataFrame:
    """-ELBO, H_B, p_NR and latent means of each event (``frame`` holds the raw simulator columns).

    Args:
        classifier_run: the saved ER/NR MLP run.
        vae_run: the saved VAE run.
        frame: events with the ``FEATURES`` columns (PE).

    Returns:
        DataFrame row-aligned with ``frame``: neg_elbo, h_b, p_nr, z_0 .. z_{k-1}.
    """
    x = log_features(frame).to_numpy(np.float32)
    nr = list(classifier_run.schema.classes).index("NR")
    cols = score_arrays(classifier_run.model(), vae_run.model(), classifier_run.preprocessor.transform(x),
                        vae_run.preprocessor.transform(x), nr=nr)
    return pd.DataFrame(cols, index=frame.index)


@torch.no_grad()
def score_arrays(clf, vae, xc: np.ndarray, xv: np.ndarray, *, nr: int = 1, batch_size: int = _BATCH
                 ) -> dict[str, np.ndarray]:
    """-ELBO, H_B, p_NR and latent means from preprocessed inputs (``xc`` classifier's, ``xv`` the VAE's).

    Args:
        clf: the ER/NR classifier (logits).
        vae: the VAE.
        xc: classifier inputs after its preprocessing.
        xv: VAE inputs after its preprocessing.
        nr: index of the NR logit.
        batch_size: events per forward pass.

    Returns:
        Arrays ``neg_elbo``, ``h_b``, ``p_nr`` and ``z_0 .. z_{k-1}``.
    """
    clf.eval()
    vae.eval()
    out = {"neg_elbo": [], "h_b": [], "p_nr": [], "z": []}
    for s in range(0, len(xc), batch_size):
        logits = clf(torch.from_numpy(xc[s:s + batch_size]))
        margin = logits[:, nr] - logits[:, 1 - nr]
        # H_B = -log(1 - p_NR) = softplus(logit margin): exact where p_NR rounds to 1 in float32.
        out["h_b"].append(torch.nn.functional.softplus(margin.double()).numpy())
        out["p_nr"].append(torch.sigmoid(margin.double()).numpy())
        xb = torch.from_numpy(xv[s:s + batch_size])
        mu, logvar = vae.encode(xb)
        nll, kl = vae._terms(xb, mu, mu, logvar)  # -ELBO at the latent mean, as VAE.neg_elbo(n_samples=0)
        out["neg_elbo"].append((nll + vae.beta * kl).double().numpy())
        out["z"].append(mu.numpy())
    z = np.concatenate(out["z"])
    cols = {k: np.concatenate(out[k]) for k in ("neg_elbo", "h_b", "p_nr")}
    cols.update({f"z_{i}": z[:, i] for i in range(z.shape[1])})
    return cols


@torch.no_grad()
def _ppc(vae_run, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Mean posterior predictive check per input on ER test events: mean(x_sample - x_test) / std(x_test)."""
    x = vae_run.preprocessor.transform(log_features(frame).to_numpy(np.float32))
    gen = torch.Generator().manual_seed(seed)
    sample = vae_run.model().posterior_predictive(torch.from_numpy(x), generator=gen).numpy()
    sd = x.std(axis=0)
    ppc = np.divide((sample - x).mean(axis=0), sd, out=np.zeros(x.shape[1]), where=sd > 0)
    group = {name: g for g, names in FEATURE_GROUPS.items() for name in names}
    return pd.DataFrame({"feature": list(FEATURES), "group": [group[f] for f in FEATURES], "mean_ppc": ppc})


def _expected(settings: DarwinSettings, acceptance: dict[str, float]) -> dict:
    width = settings.e_max_kev - settings.e_min_kev
    exp = {"background_total": settings.er_rate_per_t_yr_kev * width * settings.exposure_t_yr
           * acceptance["er_flat"], "acceptance": dict(acceptance)}
    for m in settings.wimp_masses:
        rate = wimp_events_per_tonne_year(m, settings.sigma_cm2, settings.e_min_kev, settings.e_max_kev)
        exp[f"signal_total_{int(m)}"] = rate * settings.exposure_t_yr * acceptance[f"wimp{int(m)}"]
    return exp


def run_darwin(settings: DarwinSettings, store: RunStore, *, callbacks: Sequence = (), cancel=None,
               progress=None) -> DarwinResult:
    """Simulate, train the classifier and the VAE, score the pools, scan R, and save the study.

    Args:
        settings: sizes, seeds, hyperparameters and the statistics' settings.
        store: where the two model runs and the study record are saved.
        callbacks: Trainer callbacks used for both trainings.
        cancel: optional CancelToken, checked during both trainings.
        progress: optional ``progress(step: str)`` told which stage has started.

    Returns:
        The DarwinResult (also saved, so ``load_darwin`` finds it).
    """
    say = progress or (lambda step: None)
    rng = np.random.default_rng(settings.seed)
    e_range = {"e_min": settings.e_min_kev, "e_max": settings.e_max_kev}
    say(f"simulating {settings.events:,} labelled ER/NR events, {settings.data_events:,} ER null events and "
        f"{settings.signal_events:,} WIMP events per mass")
    mc = simulate_darwin(settings.events, seed=rng, **e_range)
    null = simulate_darwin(settings.data_events, seed=rng, recoil="ER", **e_range)
    acceptance = {"er_flat": null.attrs["acceptance"]["er_flat"]}
    pools = []
    for m in settings.wimp_masses:
        sig = simulate_darwin(settings.signal_events, seed=rng, recoil="NR", nr_spectrum="wimp", wimp_mass=m,
                              **e_range)
        acceptance[f"wimp{int(m)}"] = sig.attrs["acceptance"][f"wimp{int(m)}"]
        pools.append(sig.assign(pool=f"wimp{int(m)}"))
    base = {"study": STUDY_NAME, "settings": _settings_dict(settings)}

    say("training the ER/NR MLP classifier")
    table = EventTable(pd.concat([log_features(mc), mc[["label", "weight"]]], axis=1),
                       Schema(features=tuple(FEATURES), label="label", classes=CLASS_NAMES, weight="weight",
                              groups=FEATURE_GROUPS))
    classifier = train_on_table(
        table,
        model={"kind": "mlp_classifier", "layers": [len(FEATURES), *settings.classifier_layers[1:]],
               "dropout": settings.dropout},
        train=TrainSettings(epochs=settings.classifier_epochs, batch_size=settings.classifier_batch_size,
                            lr=settings.classifier_lr, seed=settings.seed, early_stopping=settings.patience),
        split=SplitConfig(validation=0.2, test=0.4, seed=settings.seed),
        store=store, config={**base, "role": "classifier", "inputs": "log1p(PE)"}, callbacks=callbacks,
        cancel=cancel,
    )
    split = classifier.scores["split"].to_numpy()
    is_er = (mc["label"] == "ER").to_numpy()
    x_log = log_features(mc).to_numpy(np.float32)

    say("training the VAE on ER events only")
    vae = _train_vae(x_log[(split == "train") & is_er], x_log[(split == "validation") & is_er], settings, store,
                     base, callbacks, cancel)

    say("scoring -ELBO and H_B on the test, null and WIMP pools")
    half = rng.permutation(len(null)) < len(null) // 2
    frames = [mc[split == "test"].assign(pool="mc_test"), null[half].assign(pool="null_fit"),
              null[~half].assign(pool="null_toy"), *pools]
    events = pd.concat(frames, ignore_index=True)
    keep = ["pool", "label", "source", "energy_kev", "cs1_pe", "cs2_pe", "drift_time_us", "weight"]
    frame = pd.concat([events[keep], score_pools(classifier, vae, events)], axis=1)
    frame["pool"] = frame["pool"].astype("category")
    test = frame[frame["pool"] == "mc_test"]
    clf_metrics = classifier_metrics(test["label"] == "NR", test["p_nr"], test["weight"])
    ppc = _ppc(vae, mc[(split == "test") & is_er], settings.seed)

    say(f"scanning R over {len(settings.r_values)} values with {settings.n_toys:,} pseudo-experiments each")
    expected = _expected(settings, acceptance)
    result = DarwinResult(frame=frame, pvalues=pd.DataFrame(), baseline=pd.DataFrame(), ppc=ppc,
                          classifier=clf_metrics, expected=expected, classifier_run_id=classifier.id,
                          vae_run_id=vae.id, study_run_id="", settings=settings)
    totals = {m: expected[f"signal_total_{int(m)}"] for m in settings.wimp_masses}
    result.pvalues = pvalue_scan(result.pools(), settings.r_values, settings.wimp_masses,
                                 background_total=expected["background_total"], signal_totals=totals,
                                 cut_quantile=settings.ts_cut_quantile, method=settings.null_method,
                                 n_toys=settings.n_toys, n_signal_toys=settings.n_signal_toys, seed=settings.seed)
    result.baseline = _baseline(mc[(split != "test") & is_er], frame, settings, expected)

    say("saving the study")
    record = {**base, "classifier_run": classifier.id, "vae_run": vae.id, "classifier": clf_metrics,
              "expected": expected}
    with store.create("study") as writer:
        writer.write_yaml("config.yaml", record)
        writer.write_parquet("frame.parquet", frame)
        writer.write_parquet("pvalues.parquet", result.pvalues)
        writer.write_parquet("baseline.parquet", result.baseline)
        writer.write_parquet("ppc.parquet", ppc)
    result.study_run_id = writer.id
    return result


def _cs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return frame["cs1_pe"].to_numpy(), np.log10(np.clip(frame["cs2_pe"].to_numpy(), 1.0, None))


def _baseline(er_train: pd.DataFrame, frame: pd.DataFrame, settings: DarwinSettings, expected: dict) -> pd.DataFrame:
    """The classical analysis' median p-value per WIMP mass (2-D cS1, log10 cS2 ER template)."""
    def pool(name):
        return _cs(frame[frame["pool"] == name])

    rows = []
    for j, m in enumerate(settings.wimp_masses):
        point = baseline_pvalue(_cs(er_train), pool("null_fit"), pool("null_toy"), pool(f"wimp{int(m)}"),
                                background_total=expected["background_total"],
                                signal_total=expected[f"signal_total_{int(m)}"],
                                cut_quantile=settings.ts_cut_quantile, method=settings.null_method,
                                n_toys=settings.n_toys, n_signal_toys=settings.n_signal_toys,
                                rng=np.random.default_rng([settings.seed, 99, j]))
        rows.append({"wimp_mass": float(m), "method": "cs1_cs2_template", **point})
    return pd.DataFrame(rows)


def load_darwin(store: RunStore, study_run_id: str | None = None) -> DarwinResult | None:
    """The newest saved DARWIN study in ``store`` (or the one named), or None when there is none yet."""
    run = store.load_study(STUDY_NAME, study_run_id)
    if run is None:
        return None
    cfg = run.config
    read = lambda name: pd.read_parquet(run.path / name)  # noqa: E731 - files were verified by load()
    fields = DarwinSettings.__dataclass_fields__
    raw = {k: v for k, v in cfg.get("settings", {}).items() if k in fields}
    settings = DarwinSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    return DarwinResult(frame=read("frame.parquet"), pvalues=read("pvalues.parquet"),
                        baseline=read("baseline.parquet"), ppc=read("ppc.parquet"), classifier=cfg["classifier"],
                        expected=cfg["expected"], classifier_run_id=cfg["classifier_run"], vae_run_id=cfg["vae_run"],
                        study_run_id=run.id, settings=settings)
