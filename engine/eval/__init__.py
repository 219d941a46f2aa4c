"""KITTI object evaluation (the official devkit, reproduced in numpy) and result files."""

from squeezelens.engine.eval.devkit import PROTOCOLS, evaluate_detections, get_thresholds
from squeezelens.engine.eval.errors import ErrorAnalysis, analyse_errors
from squeezelens.engine.eval.kitti_io import read_kitti_detections, write_kitti_detections
from squeezelens.engine.eval.results import ClassDifficultyAP, EvalResult, max_attainable_ap

__all__ = [
    "PROTOCOLS",
    "ClassDifficultyAP",
    "ErrorAnalysis",
    "EvalResult",
    "analyse_errors",
    "evaluate_detections",
    "get_thresholds",
    "max_attainable_ap",
    "read_kitti_detections",
    "write_kitti_detections",
]
