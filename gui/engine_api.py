"""The GUI's single door to the engine's optional parts.

Parts of the engine are built by other people at the same time (quantization,
evaluation, diagnostics, sweeps, INT8).  The GUI imports them lazily through
this module, so a missing part disables the controls that need it (with a
tooltip saying why) instead of breaking the window.  Nothing here computes:
every call forwards to the engine.
"""

from __future__ import annotations

import importlib
from dataclasses import fields, replace
from types import ModuleType
from typing import Any

FEATURES = {
    "quant": "squeezelens.engine.quant",
    "evaluate": "squeezelens.engine.evaluate",
    "eval": "squeezelens.engine.eval",
    "diagnostics": "squeezelens.engine.diagnostics",
    "sweep": "squeezelens.engine.sweep",
    "int8": "squeezelens.engine.int8",
    "samples": "squeezelens.engine.samples",
}


def optional(module: str) -> ModuleType | None:
    """Import ``module`` or return None when it does not exist (yet)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise


def has(feature: str) -> bool:
    """Whether the engine part behind ``feature`` is installed."""
    return optional(FEATURES[feature]) is not None


def missing_reason(feature: str) -> str:
    """A tooltip for a control disabled because its engine part is absent."""
    return f"needs {FEATURES[feature]}, which this installation does not have yet"


def quant_config_class() -> type | None:
    mod = optional("squeezelens.engine.quant")
    return getattr(mod, "QuantConfig", None) if mod else None


def make_quant_config(**kwargs: Any) -> Any:
    """A QuantConfig from keyword arguments, ignoring keys the class does not know."""
    cls = quant_config_class()
    if cls is None:
        raise RuntimeError(missing_reason("quant"))
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in kwargs.items() if k in known})


def config_replace(config: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` keeping only fields the config class has."""
    known = {f.name for f in fields(config)}
    return replace(config, **{k: v for k, v in changes.items() if k in known})


def config_to_dict(config: Any) -> dict | None:
    if config is None:
        return None
    return config.to_dict()


def config_from_dict(data: dict | None) -> Any:
    if data is None:
        return None
    cls = quant_config_class()
    if cls is None:
        raise RuntimeError(missing_reason("quant"))
    return cls.from_dict(data)


def config_cli_args(config: Any) -> list[str]:
    """The CLI flags of a config (empty for float)."""
    if config is None:
        return []
    args = config.to_cli_args()
    return args.split() if isinstance(args, str) else list(args)
