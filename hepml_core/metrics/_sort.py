"""A faster argsort for float64 scores: one SIMD sort of packed (score, index) keys, then a fix-up.

``np.argsort`` on 10M floats is about 2x slower than ``np.sort`` on 10M uint64, because numpy's
vectorised sorts cover plain sorts much better than argsorts. So we pack each event into a single
uint64: the high bits are an order-preserving image of the score, the low ``b = bit_length(n-1)``
bits its index. Sorting those keys orders events by the top ``64-b`` bits of their score and, within
a group sharing those bits, by index. Scores that differ only in the dropped low mantissa bits can
then be out of order; they are found with one comparison pass and re-sorted group by group.
"""

from __future__ import annotations

import numpy as np

__all__: list[str] = []

_SIGN = np.uint64(1 << 63)
_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


def _ordered_keys(values: np.ndarray) -> np.ndarray:
    """Map float64 to uint64 so that unsigned order equals float order (-0.0 just below +0.0)."""
    bits = values.view(np.uint64)  # same item size, so this is a view even for a strided column
    # Negative floats: flip every bit (larger magnitude -> smaller key); others: set the sign bit.
    negative = bits >= _SIGN
    keys = bits ^ _SIGN
    np.bitwise_xor(bits, _ALL, out=keys, where=negative)
    return keys


def _sort_with_order(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort float64 ``values`` ascending; return ``(order, values[order])``.

    Ties come out in an unspecified order (like ``np.argsort``'s default kind). NaN sort to the ends
    (negative-signed NaN first), so callers can check ``sorted[0]`` and ``sorted[-1]`` for finiteness.
    """
    n = values.shape[0]
    if n < 2:
        return np.arange(n, dtype=np.intp), values.copy()
    index_bits = (n - 1).bit_length()
    low = np.uint64((1 << index_bits) - 1)
    keys = _ordered_keys(values)
    keys &= ~low
    keys |= np.arange(n, dtype=np.uint64)
    keys.sort()
    order = (keys & low).astype(np.intp)
    ordered = values[order]
    # Out-of-order neighbours can only sit inside a group of keys sharing the same high bits.
    bad = np.flatnonzero(ordered[1:] < ordered[:-1])
    if bad.size:
        _fix_groups(keys, low, bad, order, ordered)
    return order, ordered


def _fix_groups(keys, low, bad, order, ordered) -> None:
    """Re-sort, in place, each group of equal high key bits that contains an inversion."""
    prefixes = np.unique(keys[bad] & ~low)
    starts = np.searchsorted(keys, prefixes, side="left")
    # A group spans keys prefix .. prefix + low (its low bits hold the event index).
    ends = np.searchsorted(keys, prefixes + low, side="right")
    lengths = ends - starts
    group = np.repeat(np.arange(prefixes.size), lengths)
    offsets = np.cumsum(lengths) - lengths
    positions = np.arange(lengths.sum()) - np.repeat(offsets, lengths) + np.repeat(starts, lengths)
    sub = np.lexsort((ordered[positions], group))
    order[positions] = order[positions[sub]]
    ordered[positions] = ordered[positions[sub]]
