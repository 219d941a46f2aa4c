"""``squeezelens average``: the mean of several training snapshots of one model (SWA).

Late snapshots of a run at a small learning rate wander around one minimum; their
mean is usually as good as the best of them, with no snapshot picked by its score
on the evaluation split.  Writes OUT.npz (official names, HWIO) and its sidecar,
which records the averaged snapshots.
"""

from __future__ import annotations

from pathlib import Path

from squeezelens.cli.common import say
from squeezelens.cli.outputs import check_out_file


def register(sub) -> None:
    p = sub.add_parser(
        "average", help="average training snapshots of one model (SWA)", description=__doc__
    )
    p.add_argument("checkpoints", nargs="+", metavar="CKPT", help="two or more checkpoints")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.npz", help="output .npz")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelens.engine.checkpoint.writers import save_npz, write_sidecar
    from squeezelens.engine.train.average import average_checkpoints

    check_out_file(args.out, suffixes=(".npz",))
    result = average_checkpoints(args.checkpoints)
    path = save_npz(args.out, result.weights)
    write_sidecar(path, result.spec, {"averaged_from": [Path(s).name for s in result.sources]})
    say(f"averaged {len(result.sources)} checkpoints -> {path}")
    return 0
