"""Outputs: where rendered RGBA frames go (OBS, NUT stream, Spout, virtual camera, window, file).

One interface (`Output`), one factory (`create_output` from a config dict), and a runner
(`OutputFanout`) that gives each output its own thread behind a newest-wins slot.
"""

from worker.output.base import Output
from worker.output.factory import BACKENDS, create_output, create_outputs
from worker.output.fanout import OutputFanout

__all__ = ["BACKENDS", "Output", "OutputFanout", "create_output", "create_outputs"]
