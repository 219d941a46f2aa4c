"""``squeezelens gui``: the desktop tool (PySide6 + pyqtgraph; imported lazily).

Without --checkpoint, --kitti-root or --images it opens the bundled sample
model and data (when this install has them), or the last files when the setting
File > Reopen last files at start-up is on.  --screenshot PATH drives the window
to a state (--image, --bits, --view, --tab, --front, --evaluate), saves it as PNG and quits.
SQUEEZELENS_TIMING=1 prints launch timing markers on stdout.
"""

from __future__ import annotations

import argparse

from squeezelens.cli.common import parse_size


def register(sub) -> None:
    p = sub.add_parser("gui", help="open the desktop tool", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--checkpoint", help="checkpoint to open (TF1 prefix, folder, .h5, .npz)")
    p.add_argument("--kitti-root", metavar="ROOT", help="KITTI object folder to open")
    p.add_argument("--images", metavar="DIR", help="a plain folder of images (no labels)")
    p.add_argument("--split", default="val", help="KITTI split to browse (default val)")
    p.add_argument("--settings", metavar="INI", help="keep settings in this INI file")
    p.add_argument("--size", type=parse_size, metavar="WxH", help="initial window size")
    shot = p.add_argument_group("screenshot mode")
    shot.add_argument("--screenshot", metavar="PNG", help="save the window as PNG and quit")
    shot.add_argument("--image", type=int, metavar="N", help="show image N of the split")
    shot.add_argument("--bits", type=int, metavar="N", help="set the weight bits first")
    shot.add_argument("--view", choices=("overlay", "side"), help="canvas mode")
    shot.add_argument(
        "--tab",
        choices=("layers", "metrics", "errors", "sweep", "front"),
        help="bottom tab to show (errors: the Metrics tab's error chart; front: the Pareto "
        "front of a search)",
    )
    shot.add_argument("--front", metavar="PATH",
                      help="show a search's Pareto front (its folder, search.json or front.csv)")  # fmt: skip
    shot.add_argument("--evaluate", action="store_true", help="evaluate before the screenshot")
    shot.add_argument("--sweep", nargs="?", const="current", choices=("current", "fork", "both"),
                      help="run a sweep first: the current config, the fork's four curves, or both")  # fmt: skip
    shot.add_argument(
        "--sweep-bits", type=parse_size, metavar="LOxHI", help="sweep bit range, e.g. 4x8"
    )
    shot.add_argument("--screenshot-timeout", type=float, default=180.0, metavar="S")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelens.gui.app import run_app

    return run_app(args)
