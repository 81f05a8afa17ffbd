"""The CLI's parameters are coerced without pydantic when they are plain (typer 0.29.1 exactly).

typer 0.29 coerces every parameter value through a pydantic ``TypeAdapter`` (``typer._coercion.
build_runtime_param``, called lazily by ``typer.core._TyperParameter.get_runtime_param``): a command given one task
id imports pydantic and builds a schema per parameter, about a third of a stack-talking command's time (issue 13).
The values this CLI takes are plain: ``str``, ``int`` and ``float`` (some with a ``min``), ``bool``, ``Path`` and
``list[str]``. :class:`PlainParam` coerces those, and hands every value it does not accept as it stands (a number
out of range, text that is not a number, bytes) to typer's own coercion, which then raises typer's own error: the
happy path is lean, the messages are typer's. Annotations of any other kind (enums, literals, datetimes, a custom
parser, files) are typer's from the start.

Touch point: ``typer.core.build_runtime_param`` (the name ``get_runtime_param`` calls) is replaced once, at import
of :mod:`taskrail.cli`, and only when typer is the version below; :data:`DEPENDS` lists what of typer this relies
on, and ``tests/unit/test_cli_params.py`` checks it and compares every parameter of every command with typer's own
coercion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import typer.core
from typer import _coercion, _param_types

TYPER_VERSION = "0.29.1"
#: What of typer this module relies on: (symbol, fragments its source must still contain).
DEPENDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("typer.core._TyperParameter.get_runtime_param", ("build_runtime_param(self.type_descriptor)",)),
    ("typer.core._TyperParameter.process_value", ("self.get_runtime_param().coerce(value, param=self, ctx=ctx)",)),
    ("typer._coercion.RuntimeParam.coerce", ("return self._coerce_value(value, param=param, ctx=ctx)",)),
    ("typer._coercion.build_runtime_param", ("_adapters.try_build_adapter(**args)",)),
    ("typer._param_types.coerce_cli_path", ("if isinstance(value, path_type):", "os.stat(rv)")),
)
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_typers_own = _coercion.build_runtime_param


class _NotPlain(Exception):
    """The value is not one this module coerces: typer's own coercion takes it (and raises its own error)."""


def _is_plain_leaf(annotation: Any, info: Any) -> bool:
    if annotation is Path:
        return info.path_type is None
    if annotation in (str, bool):
        return True
    return annotation in (int, float) and not info.clamp


def is_plain(descriptor: _coercion.TypeDescriptor) -> bool:
    """A parameter :class:`PlainParam` coerces: a plain leaf type, or a list of one, with no parser or file."""
    info, annotation = descriptor.parameter_info, descriptor.annotation
    if descriptor.file_annotation is not None or info.parser is not None or getattr(info, "click_type", None):
        return False
    if descriptor.is_list:
        (item,) = _coercion.get_args(annotation) or (None,)
        return item in (str, int, float)
    return _is_plain_leaf(annotation, info)


def _number(value: Any, annotation: type, info: Any) -> Any:
    if isinstance(value, bool):
        raise _NotPlain
    if isinstance(value, str):
        text = value.strip()
        if not (_INTEGER if annotation is int else _DECIMAL).fullmatch(text):
            raise _NotPlain
        number = annotation(text)
    elif isinstance(value, int) or (annotation is float and isinstance(value, float)):
        number = annotation(value)
    else:
        raise _NotPlain
    if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
        raise _NotPlain
    return number


def _leaf(value: Any, annotation: Any, info: Any, param: Any, ctx: Any) -> Any:
    if annotation is str:
        if not isinstance(value, str):
            raise _NotPlain
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise _NotPlain
        return value
    if annotation is Path:
        if not isinstance(value, (str, Path)):
            raise _NotPlain
        # typer's own checks (exists, file or dir, readable), given a Path so that they need no pydantic
        return _param_types.coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
    return _number(value, annotation, info)


@dataclass(frozen=True)
class PlainParam(_coercion.RuntimeParam):
    """A plain parameter's coercion; typer's own one takes what it does not accept."""

    descriptor: _coercion.TypeDescriptor

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        info = self.parameter_info
        try:
            if self.descriptor.is_list:
                (item,) = _coercion.get_args(self.annotation)
                items = value if isinstance(value, (list, tuple)) else [value]
                return [_leaf(v, item, info, param, ctx) for v in items]
            return _leaf(value, self.annotation, info, param, ctx)
        except _NotPlain:
            return _typers_own(self.descriptor)._coerce_value(value, param=param, ctx=ctx)


def build_runtime_param(descriptor: _coercion.TypeDescriptor) -> _coercion.RuntimeParam:
    if is_plain(descriptor):
        return PlainParam(
            parameter_info=descriptor.parameter_info, annotation=descriptor.annotation, descriptor=descriptor
        )
    return _typers_own(descriptor)


def install() -> bool:
    """Coerce plain parameters here; only on the typer this was written against (else typer's own: slower, same)."""
    if typer.__version__ != TYPER_VERSION:
        return False
    typer.core.build_runtime_param = build_runtime_param  # type: ignore[assignment]
    return True


def installed() -> bool:
    return typer.core.build_runtime_param is build_runtime_param
