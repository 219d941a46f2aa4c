"""The range-hijack warning every quantizing command prints on stderr (the GUI shows the same hint).

The rule lives in :mod:`squeezelens.engine.quant.hijack`; here one warning line per
hijacking tensor (:func:`~squeezelens.engine.quant.hijack.hijack_warnings`), with the
remedies that clear it as command-line flags.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from squeezelens.cli.common import say


def warn_range_hijacks(weights: Mapping[str, np.ndarray], configs: Iterable) -> int:
    """Print ``warning: <hijack>`` on stderr for each tensor that hijacks a range under any of
    ``configs`` (None entries, float runs, are skipped); returns the number of warnings."""
    from squeezelens.engine.quant.hijack import hijack_warnings

    warnings = hijack_warnings(weights, configs)
    for warning in warnings:
        say(f"warning: {warning.text()}")
    return len(warnings)
