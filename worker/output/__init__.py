"""Outputs: where rendered RGBA frames go (OBS, NUT stream, Spout, virtual camera, window, file).

One interface (`Output`), one registry (`registry.OUTPUTS`: each output's options, `--output`
short form and availability here; `create_output` builds one from a config dict), and a runner
(`OutputFanout`) that gives each output its own thread behind a newest-wins slot.
"""

from worker.output.base import Output
from worker.output.fanout import OutputFanout
from worker.output.registry import OUTPUTS, create_output, create_outputs

__all__ = ["OUTPUTS", "Output", "OutputFanout", "create_output", "create_outputs"]
