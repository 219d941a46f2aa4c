"""The body of the window's Evaluate: AP of both models and their detection errors.

Float vs quantized (or INT8) runs :func:`engine.error_eval.evaluate_errors`, the
function behind ``squeezelens evaluate --errors``: one pass over the split runs
both models, scores both (the same EvalResults as ``evaluate``) and explains each
model's loss by TIDE's error types, so the window's numbers are the CLI's.  A vs B
runs each config once and explains it with :func:`engine.eval.errors.analyse_errors`
(what evaluate_errors calls per model); the float baseline is evaluated as before.
Everything is cached per model load, folder, split, configs and protocol.  Runs on
the model worker (the ``long`` lane); no Qt here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine's evaluation loads with the first Evaluate, not at start-up
    from squeezelens.engine.error_eval import ErrorEvaluation

Job = tuple[str, Any, bool, str]  # (which, config, int8, label)


def error_pair(evaluation: Any) -> list:
    """The ErrorAnalysis of the reference and of the other model of an EvalState ([] without
    errors); float vs float has one analysis, which stands for both."""
    errors = getattr(evaluation, "errors", None)
    if errors is None:
        return []
    analyses = list(errors.analyses.values())
    return analyses + analyses[-1:] * (2 - len(analyses))


def _float_vs_quantized(ctx: Any, handle: Any, dataset: Any, other: Job, protocol: str):
    """evaluate_errors of the float model against the other config (or INT8)."""
    from squeezelens.engine.error_eval import evaluate_errors

    _, config, int8, label = other
    quantized = handle.int8 if int8 else (handle.detector if config is not None else None)
    ctx.set_text(f"Evaluating float and {label.lower()} on {len(dataset)} images")
    return evaluate_errors(handle.detector, dataset, quantized, None if int8 else config,
                           protocol, progress=ctx.progress, cancel=ctx.token)  # fmt: skip


def _explained(ctx: Any, handle: Any, dataset: Any, job: Job, protocol: str):
    """One config detected on the split and explained (analyse_errors)."""
    from squeezelens.engine.eval.errors import analyse_errors
    from squeezelens.engine.evaluate import detect_dataset

    _, config, _, label = job
    ctx.set_text(f"Evaluating {label.lower()} on {len(dataset)} images")
    dets = detect_dataset(handle.detector, dataset, config, ctx.progress, ctx.token)
    classes = tuple(handle.detector.class_names)
    return analyse_errors(dataset.records, dets, protocol, classes)


def _calibrated(handle: Any, jobs: list[Job], calibration: Callable[[], Any]) -> None:
    """Activation ranges for the configs that quantize activations (as the CLI calibrates)."""
    if any(config is not None and config.activation_bits for _, config, _, _ in jobs):
        handle.calibrate(calibration())


def evaluations(handle: Any, dataset: Any, jobs: list[Job], protocol: str, cache: dict,
                calibration: Callable[[], Any]) -> Callable[[Any], tuple[dict, ErrorEvaluation]]:  # fmt: skip
    """The job body: ({which: EvalResult}, the errors of ref and other, in that order)."""
    base = (handle.generation, str(dataset.root), dataset.split, protocol)

    def key(config: Any, int8: bool, *extra: Any) -> tuple:
        return (*base, repr(config), int8, *extra)

    def run(ctx: Any) -> tuple[dict, ErrorEvaluation]:
        _calibrated(handle, jobs, calibration)
        ref, other = jobs[0], jobs[1]
        pair = key(ref[1], ref[2], "errors", repr(other[1]), other[2])
        if pair not in cache and ref[1] is None:
            errors = _float_vs_quantized(ctx, handle, dataset, other, protocol)
            cache[key(None, False)] = errors.analyses["float"].result
            cache[key(other[1], other[2])] = errors.result
            cache[pair] = errors
        elif pair not in cache:
            from squeezelens.engine.error_eval import TWIN_THRESHOLD, ErrorEvaluation

            analyses = {
                job[3]: _explained(ctx, handle, dataset, job, protocol) for job in (ref, other)
            }
            for job, analysis in zip((ref, other), analyses.values()):
                cache[key(job[1], job[2])] = analysis.result
            cache[pair] = ErrorEvaluation(analyses, None, None, TWIN_THRESHOLD)
        out = {}
        for which, config, int8, label in jobs:
            if key(config, int8) not in cache:  # the float baseline of A vs B
                from squeezelens.engine.evaluate import evaluate

                ctx.set_text(f"Evaluating {label.lower()} on {len(dataset)} images")
                cache[key(config, int8)] = evaluate(handle.detector, dataset, config, protocol,
                                                    progress=ctx.progress, cancel=ctx.token)  # fmt: skip
            out[which] = cache[key(config, int8)]
        return out, cache[pair]

    return run
