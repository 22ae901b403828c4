"""The gradient-boosted-tree baseline of the HNL study (xgboost, as in the talk's earlier work).

The booster is saved as xgboost's own JSON model (plain data, no pickle), so a run folder from a colleague
cannot run code when it is opened. xgboost is imported lazily: the rest of hepml works without it.
"""

from __future__ import annotations

import json

import numpy as np

from hepml_core.exceptions import ConfigError, TrainingCancelled

__all__ = ["train_bdt", "predict_bdt", "booster_to_json", "booster_from_json"]


def _xgb():
    try:
        import xgboost
    except ImportError as err:  # an optional dependency: say how to get it
        raise ConfigError("the HNL BDT baseline needs xgboost; install it with 'pip install xgboost'") from err
    return xgboost


def train_bdt(x_train: np.ndarray, y_train: np.ndarray, w_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
              w_val: np.ndarray, *, trees: int = 300, depth: int = 6, lr: float = 0.1, seed: int = 1,
              n_jobs: int = 2, early_stopping: int | None = 20, cancel=None, feature_names=None):
    """Fit a binary xgboost classifier (histogram trees, weighted log-loss, early stopping on validation).

    Args:
        x_train, y_train, w_train: training features, 0/1 labels and weights.
        x_val, y_val, w_val: validation set for early stopping and the history.
        trees, depth, lr: number of boosting rounds, maximum tree depth, learning rate.
        seed: xgboost's seed.
        n_jobs: threads.
        early_stopping: rounds without validation improvement before stopping (None: never).
        cancel: optional CancelToken, checked after every round.
        feature_names: names stored in the model.

    Returns:
        ``(booster, history)``: history rows ``{"epoch": round, "train_loss", "val_loss"}``.

    Raises:
        TrainingCancelled: the token was cancelled.
    """
    xgb = _xgb()

    class _Cancel(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            if cancel is not None and cancel.cancelled:
                raise TrainingCancelled(f"BDT training cancelled after {epoch + 1} trees; nothing was saved")
            return False

    names = list(feature_names) if feature_names is not None else None
    dtrain = xgb.QuantileDMatrix(x_train, label=y_train, weight=w_train, feature_names=names)
    dval = xgb.DMatrix(x_val, label=y_val, weight=w_val, feature_names=names)
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist",
              "max_depth": int(depth), "eta": float(lr), "seed": int(seed), "nthread": int(n_jobs),
              "subsample": 0.8, "colsample_bytree": 0.8}
    log: dict = {}
    booster = xgb.train(params, dtrain, num_boost_round=int(trees), evals=[(dtrain, "train"), (dval, "val")],
                        evals_result=log, early_stopping_rounds=early_stopping, verbose_eval=False,
                        callbacks=[_Cancel()])
    train_loss, val_loss = log["train"]["logloss"], log["val"]["logloss"]
    history = [{"epoch": i + 1, "train_loss": float(a), "val_loss": float(b)}
               for i, (a, b) in enumerate(zip(train_loss, val_loss))]
    return booster, history


def predict_bdt(booster, x: np.ndarray) -> np.ndarray:
    """Signal probability of each row (using the best iteration when early stopping chose one)."""
    xgb = _xgb()
    best = getattr(booster, "best_iteration", None)
    rng = (0, best + 1) if best is not None else (0, 0)
    names = booster.feature_names
    return booster.predict(xgb.DMatrix(x, feature_names=names), iteration_range=rng).astype(np.float64)


def booster_to_json(booster) -> dict:
    """The booster as xgboost's JSON model (a dict), with the best iteration kept."""
    model = json.loads(bytes(booster.save_raw(raw_format="json")).decode("utf-8"))
    best = getattr(booster, "best_iteration", None)
    return {"xgboost": model, "best_iteration": best, "feature_names": booster.feature_names}


def booster_from_json(d: dict):
    """Rebuild a booster saved with ``booster_to_json``."""
    xgb = _xgb()
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(d["xgboost"]).encode("utf-8")))
    if d.get("feature_names"):
        booster.feature_names = list(d["feature_names"])
    if d.get("best_iteration") is not None:
        booster.set_attr(best_iteration=str(d["best_iteration"]))
    return booster
