"""The range-hijack warning every quantizing command prints on stderr (the GUI shows the same hint).

The rule lives in :mod:`squeezelens.engine.quant.hijack`; here one warning line per
hijacking tensor, with the remedies that clear it as command-line flags.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from squeezelens.cli.common import say


def _range_config(config):
    """The config with the fields that do not change any range or step set to their defaults
    (so a sweep's rounding x zero x seed points are checked once per distinct grid)."""
    return config.replace(rounding="nearest", seed=0, reserve_zero=False, activation_bits=None)


def warn_range_hijacks(weights: Mapping[str, np.ndarray], configs: Iterable) -> int:
    """Print ``warning: <hijack>`` on stderr for each tensor that hijacks a range under any of
    ``configs`` (None entries, float runs, are skipped); returns the number of warnings."""
    from squeezelens.engine.quant.hijack import find_range_hijacks

    distinct = list(dict.fromkeys(_range_config(c) for c in configs if c is not None))
    by_tensor: dict[tuple[str, str], list] = {}
    for config in distinct:
        for hijack in find_range_hijacks(weights, config, remedies=False):
            by_tensor.setdefault((hijack.tensor, hijack.unit), []).append((config, hijack))
    for found in by_tensor.values():
        config, first = found[0]
        hijack = next(h for h in find_range_hijacks(weights, config) if h.tensor == first.tensor)
        bits = sorted({h.bits for _, h in found})
        also = f" (at {', '.join(map(str, bits))} bits in this run)" if len(found) > 1 else ""
        say(f"warning: {hijack.describe()}{also}")
    return len(by_tensor)
