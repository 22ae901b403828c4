"""How ROOT branch types become flat columns: the catalog of a tree, and column-request resolution.

Private to :mod:`hepml_core.io.root`. Works on awkward *forms* (type descriptions), so a tree's
columns are known without reading any events.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

from hepml_core.exceptions import ConfigError, DataError, InputFileError, MissingKeyError
from hepml_core.io._util import _one_line, _sanitize, _unique

__all__: list[str] = []

_NUMERIC = {
    "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float16", "float32", "float64",
}  # fmt: skip


@dataclass(frozen=True)
class _Col:
    name: str  # the output column
    key: str  # what uproot is asked for: a full branch path (TTree) or a field (RNTuple)
    fields: tuple[str, ...]  # record fields to project inside that key's array
    kind: str  # "flat" | "regular" | "jagged" | "count"
    index: int = 0
    dtype: str = "float64"  # jagged columns: float32 for small types, float64 otherwise


@dataclass
class _Catalog:
    columns: dict[str, _Col] = field(default_factory=dict)
    aliases: dict[str, list[str]] = field(default_factory=dict)  # a name that stands for columns
    unsupported: dict[str, str] = field(default_factory=dict)  # name -> type description
    jagged: set[str] = field(default_factory=set)  # base names of jagged branches


def _check_width(width: int) -> None:
    if not isinstance(width, int) or isinstance(width, bool) or width < 0:
        raise ConfigError(f"jagged_width must be an integer >= 0, got {width!r}")


def _leaves(obj: Any) -> list[tuple[str, str, Any, str]]:
    """(key, leaf name, awkward form or None, type name) for every readable leaf of a tree."""
    if not hasattr(obj, "branches"):  # RNTuple: its top-level fields are what iterate() reads
        form = obj.to_akform()[0]
        return [(f, f, c, str(c.type)) for f, c in zip(form.fields, form.contents)]
    out = []
    for key, branch in obj.iteritems(recursive=True, full_paths=True):
        if branch.branches:  # a split struct: its sub-branches hold the data
            continue
        out.append((key, branch.name, _branch_form(branch), branch.typename))
    return out


def _branch_form(branch: Any) -> Any:
    """The awkward form of a leaf branch, or None when it has no usable description."""
    try:
        interp = branch.interpretation
    except Exception:
        return None
    try:
        return interp.awkward_form(branch.file)
    except Exception:
        # uproot cannot describe C structs (AsDtype with named fields) but reads them fine.
        dtype = getattr(interp, "to_dtype", None)
        return _dtype_form(dtype) if getattr(dtype, "names", None) else None


def _dtype_form(dtype: np.dtype) -> Any:
    if dtype.names:
        return ak.forms.RecordForm([_dtype_form(dtype[n]) for n in dtype.names], list(dtype.names))
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return ak.forms.NumpyForm(base.newbyteorder("=").name, inner_shape=shape)
    return ak.forms.NumpyForm(dtype.newbyteorder("=").name)


def _catalog(obj: Any, width: int, where: str) -> _Catalog:
    try:
        leaves = _leaves(obj)
    except Exception as err:
        raise InputFileError(f"cannot list the branches of {where} ({_one_line(err)})") from err
    bases = [_sanitize(leaf) for _, leaf, _, _ in leaves]
    counts = Counter(bases)
    cat = _Catalog()
    for (key, leaf, form, typename), base in zip(leaves, bases):
        if counts[base] > 1:  # two structs with a field "pt": fall back to the full path
            base = _sanitize(key)
        cols, bad = ([], {base: typename}) if form is None else _form_columns(form, base, key, (), width)
        for c in cols:
            cat.columns.setdefault(c.name, c)
            if c.kind == "jagged":
                cat.jagged.add(c.name.rsplit("_", 1)[0])
        for name, desc in bad.items():
            cat.unsupported.setdefault(name, desc)
        names = [c.name for c in cols]
        # A leaf name shared by two structs ("pt") would be ambiguous: only the full path then.
        aliases = {base, key} if counts[_sanitize(leaf)] > 1 else {base, key, leaf}
        for alias in aliases:
            if cols and alias not in cat.columns:
                cat.aliases.setdefault(alias, names)
            elif not cols:
                cat.unsupported.setdefault(alias, typename)
    return cat


def _form_columns(
    form: Any, base: str, key: str, fields: tuple[str, ...], width: int
) -> tuple[list[_Col], dict[str, str]]:
    """Columns made from one awkward form; parts that cannot be numbers go to the second result."""
    forms = ak.forms
    if isinstance(form, forms.NumpyForm) and form.primitive in _NUMERIC:
        if not form.inner_shape:
            return [_Col(base, key, fields, "flat")], {}
        if len(form.inner_shape) == 1:
            return [_Col(f"{base}_{i}", key, fields, "regular", i) for i in range(form.inner_shape[0])], {}
    elif isinstance(form, forms.RegularForm) and _is_number(form.content):
        return [_Col(f"{base}_{i}", key, fields, "regular", i) for i in range(form.size)], {}
    elif isinstance(form, forms.RecordForm):
        cols: list[_Col] = []
        bad: dict[str, str] = {}
        for name, content in zip(form.fields, form.contents):
            c, b = _form_columns(content, f"{base}_{name}", key, (*fields, name), width)
            cols += c
            bad.update(b)
        return cols, bad
    elif isinstance(form, (forms.ListOffsetForm, forms.ListForm)) and form.parameter("__array__") is None:
        content = form.content
        if _is_number(content):
            dtype = np.result_type(np.dtype(content.primitive), np.float32).name
            cols = [_Col(f"{base}_{i}", key, fields, "jagged", i, dtype) for i in range(width)]
            return [*cols, _Col(f"{base}_n", key, fields, "count")], {}
        if isinstance(content, forms.RecordForm):  # list of structs: one jagged branch per field
            cols, bad = [], {}
            for name, sub in zip(content.fields, content.contents):
                as_list = forms.ListOffsetForm("i64", sub)
                c, b = _form_columns(as_list, f"{base}_{name}", key, (*fields, name), width)
                cols += c
                bad.update(b)
            return cols, bad
    return [], {base: str(form.type)}


def _is_number(form: Any) -> bool:
    return isinstance(form, ak.forms.NumpyForm) and form.primitive in _NUMERIC and not form.inner_shape


def _resolve(columns: Sequence[str] | None, cat: _Catalog, where: str, width: int) -> list[_Col]:
    if columns is None:
        return list(cat.columns.values())
    if isinstance(columns, str):
        columns = [columns]
    names: list[str] = []
    for name in columns:
        if name in cat.columns:
            names.append(name)
        elif name in cat.aliases:
            names += cat.aliases[name]
        elif name in cat.unsupported:
            raise DataError(
                f"branch {name!r} in {where} has type {cat.unsupported[name]}, which cannot become "
                "numeric columns; leave it out of the columns"
            )
        else:
            m = re.fullmatch(r"(.+)_(\d+)", name)
            if m and m.group(1) in cat.jagged:
                raise DataError(
                    f"column {name!r} asks for element {m.group(2)} of jagged branch {m.group(1)!r} in "
                    f"{where}, but jagged_width is {width}; pass jagged_width={int(m.group(2)) + 1} or more"
                )
            raise MissingKeyError("branch", name, where, _unique([*cat.aliases, *cat.columns]))
    return [cat.columns[n] for n in _unique(names)]
