"""Retarget stage: driver `FaceState` -> character `TargetPose` (see `retargeter`)."""

from worker.retarget.idle import Idle
from worker.retarget.pose import TargetPose
from worker.retarget.retargeter import Retargeter, RetargetOptions

__all__ = ["Idle", "RetargetOptions", "Retargeter", "TargetPose"]
