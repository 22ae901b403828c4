"""Counting-experiment significances: S/sqrt(B), the Asimov Z, the HiggsML AMS, and binned Z vs mass hypothesis."""

from __future__ import annotations

import numpy as np

from hepml_core.exceptions import DataError

__all__ = ["s_over_sqrt_b", "asimov_significance", "ams", "combined_significance", "make_bins",
           "significance_vs_mass", "average_over_channels"]


def _check(s, b) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(s, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if np.any(s < 0) or np.any(b < 0):
        raise DataError("significances need non-negative signal and background yields")
    return s, b


def s_over_sqrt_b(s, b):
    """``s / sqrt(b)`` (0 where b = 0): the small-signal approximation."""
    s, b = _check(s, b)
    return np.divide(s, np.sqrt(b), out=np.zeros(np.broadcast(s, b).shape), where=b > 0)


def asimov_significance(s, b):
    """Median discovery significance of the Asimov data set, ``sqrt(2((s+b) ln(1+s/b) - s))``.

    Args:
        s: expected signal yield(s).
        b: expected background yield(s), > 0 where s > 0.

    Returns:
        Z (0 where s = 0 or b = 0).
    """
    s, b = _check(s, b)
    safe_b = np.where(b > 0, b, 1.0)
    z2 = 2.0 * ((s + safe_b) * np.log1p(s / safe_b) - s)
    return np.where((b > 0) & (s > 0), np.sqrt(np.clip(z2, 0.0, None)), 0.0)


def ams(s, b, b_reg: float = 10.0):
    """Approximate median significance of the ATLAS Higgs ML challenge: the Asimov Z with b + b_reg.

    Args:
        s: selected signal weight.
        b: selected background weight.
        b_reg: regularisation term of the challenge (10).

    Returns:
        AMS = sqrt(2((s + b + b_reg) ln(1 + s/(b + b_reg)) - s)).
    """
    if not b_reg >= 0:
        raise DataError(f"b_reg must be >= 0; got {b_reg!r}")
    s, b = _check(s, b)
    return asimov_significance(s, b + b_reg)


# --- binned significance vs mass hypothesis (HNL study, seed talk 003) ------------------------------

_METHODS = {"s_over_sqrt_b": s_over_sqrt_b, "asimov": asimov_significance}


def combined_significance(s, b, method: str = "s_over_sqrt_b") -> float:
    """Per-bin significances combined in quadrature, ``sqrt(sum_i Z_i^2)``.

    Args:
        s, b: per-bin signal and background yields.
        method: ``"s_over_sqrt_b"`` or ``"asimov"`` (the per-bin formula).

    Returns:
        The combined Z.

    Raises:
        DataError: an unknown method, or negative yields.
    """
    fn = _METHODS.get(method)
    if fn is None:
        raise DataError(f"unknown significance method {method!r}; accepted: {', '.join(map(repr, _METHODS))}")
    z = fn(s, b)
    return float(np.sqrt(np.sum(np.square(z))))


def _binning_fn(binning: str):
    from hepml_core.metrics.binning import equal_signal_edges, right_to_left_edges

    fns = {"equal_signal": equal_signal_edges, "right_to_left": right_to_left_edges}
    if binning not in fns:
        raise DataError(f"unknown binning {binning!r}; accepted: {', '.join(map(repr, fns))}")
    return fns[binning]


def make_bins(signal, background, *, binning: str = "right_to_left", max_rel_unc: float = 0.15,
              max_bins: int = 100):
    """The adaptive binning ``binning`` of two samples (see ``hepml_core.metrics.binning``).

    Args:
        signal, background: ``SortedSample`` objects.
        binning: ``"equal_signal"`` or ``"right_to_left"``.
        max_rel_unc: bound on every bin's relative statistical uncertainty.
        max_bins: starting number of bins of the equal-signal scheme.

    Returns:
        A ``BinnedYields``, or None when no bin can meet the bound.

    Raises:
        DataError: an unknown binning name.
    """
    fn = _binning_fn(binning)
    if binning == "equal_signal":
        return fn(signal, background, max_rel_unc=max_rel_unc, max_bins=max_bins)
    return fn(signal, background, max_rel_unc=max_rel_unc)


def _groups(keys: list[np.ndarray], rows: np.ndarray) -> dict[tuple, np.ndarray]:
    """Row indices of ``rows`` grouped by the key arrays (one lexsort, no per-group masks)."""
    if rows.size == 0:
        return {}
    cols = [k[rows] for k in keys]
    order = np.lexsort(cols[::-1])
    sorted_keys = np.column_stack([c[order] for c in cols])
    change = np.concatenate([[True], (np.diff(sorted_keys, axis=0) != 0).any(axis=1)])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], order.size)
    return {tuple(sorted_keys[s].tolist()): rows[order[s:e]] for s, e in zip(starts, ends)}


def significance_vs_mass(df, score: str, *, mass: str, channel: str, label: str, weight: str,
                         binning: str = "equal_signal", max_rel_unc: float = 0.15,
                         method: str = "s_over_sqrt_b", background: str = "all", max_bins: int = 100):
    """Binned significance of a score at every mass hypothesis and channel.

    At each mass, the signal events of that mass hypothesis are compared with the background of the same
    channel, in bins of ``score`` whose relative statistical uncertainty stays below ``max_rel_unc`` for
    signal and background; the per-bin S/sqrt(B) (or Asimov Z) values are combined in quadrature.

    Args:
        df: a DataFrame with the columns named below.
        score: the score or feature to bin.
        mass, channel, label, weight: column names; ``label`` holds 1 for signal, 0 for background.
        binning: ``"equal_signal"`` or ``"right_to_left"``.
        max_rel_unc: bound on ``sqrt(sum w^2)/sum w`` in every bin (signal and background).
        method: ``"s_over_sqrt_b"`` or ``"asimov"``.
        background: ``"all"`` uses every background event of the channel at each mass (the talk);
            ``"matching"`` only those whose ``mass`` column equals the hypothesis (for frames where each
            background event was scored once per hypothesis by a parametrised model).
        max_bins: starting number of bins of the equal-signal scheme.

    Returns:
        DataFrame with columns mass, channel, z, n_bins: one row per (signal mass, channel with signal);
        z is NaN and n_bins 0 where no bin can meet the bound.

    Raises:
        MissingKeyError: a column is missing. DataError: bad option, NaN scores/weights, labels not 0/1.
    """
    import pandas as pd

    from hepml_core.exceptions import MissingKeyError
    from hepml_core.metrics.binning import SortedSample

    for col in (score, mass, channel, label, weight):
        if col not in df.columns:
            raise MissingKeyError("column", col, "the significance input", list(df.columns))
    if background not in ("all", "matching"):
        raise DataError(f"background={background!r}; accepted: 'all', 'matching'")
    _binning_fn(binning)
    if method not in _METHODS:
        raise DataError(f"unknown significance method {method!r}; accepted: {', '.join(map(repr, _METHODS))}")
    x = df[score].to_numpy(dtype=np.float64)
    w = df[weight].to_numpy(dtype=np.float64)
    y = df[label].to_numpy()
    if not np.isin(y, (0, 1)).all():
        raise DataError(f"column {label!r} must hold 1 for signal and 0 for background; found "
                        f"{sorted(set(np.unique(y).tolist()) - {0, 1})[:5]}")
    chan = pd.Categorical(df[channel])
    c_codes = chan.codes.astype(np.int64)
    m_codes, m_values = pd.factorize(df[mass].to_numpy(dtype=np.float64), sort=True)
    sig_rows = np.flatnonzero(y == 1)
    bkg_rows = np.flatnonzero(y == 0)
    sig_groups = _groups([c_codes, m_codes], sig_rows)
    bkg_keys = [c_codes] if background == "all" else [c_codes, m_codes]
    bkg_groups = _groups(bkg_keys, bkg_rows)
    empty = SortedSample(np.zeros(0))
    bkg_sorted: dict[tuple, SortedSample] = {}
    rows = []
    for (c, m), idx in sorted(sig_groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        key = (c,) if background == "all" else (c, m)
        if key not in bkg_sorted:
            b_idx = bkg_groups.get(key)
            bkg_sorted[key] = empty if b_idx is None else SortedSample(x[b_idx], w[b_idx])
        yields = make_bins(SortedSample(x[idx], w[idx]), bkg_sorted[key], binning=binning,
                           max_rel_unc=max_rel_unc, max_bins=max_bins)
        if yields is None:
            z, n_bins = float("nan"), 0
        else:
            z, n_bins = combined_significance(yields.s, yields.b, method), yields.n_bins
        rows.append({"mass": float(m_values[m]), "channel": chan.categories[c], "z": z, "n_bins": n_bins})
    out = pd.DataFrame(rows, columns=["mass", "channel", "z", "n_bins"])
    out["n_bins"] = out["n_bins"].astype(np.int64)
    return out


def average_over_channels(table):
    """Significance vs mass averaged over channels (the talk's plot): columns mass, z, n_channels.

    Args:
        table: output of ``significance_vs_mass`` (extra grouping columns such as ``model`` are kept).

    Returns:
        One row per mass (and per value of the extra columns); channels with NaN z are left out.
    """
    extra = [c for c in table.columns if c not in ("mass", "channel", "z", "n_bins")]
    keys = [*extra, "mass"]
    g = table.groupby(keys, sort=True, observed=True)["z"]
    out = g.mean().rename("z").to_frame()
    out["n_channels"] = g.count()
    return out.reset_index()
