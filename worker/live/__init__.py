"""The live worker as a package of small parts, one job each.

- `worker.py`: `LiveWorker`, assembled from the config (characters, tracker, animator, outputs,
  pipeline, control server); what `stream-animator run` runs.
- `pipeline.py`: `Pipeline`, the three parts below put together.
- `stages.py`: the stage threads (capture -> track -> retarget + render -> outputs) and the
  `Controls` flags they read.
- `ops.py`: the control channel's op table.
- `report.py`: the status report (a protocol `Status`).
- `records.py`: what travels between stages (`Captured`, `RenderInput`, `Tracked`).
- `ports.py`: the structural types of the parts the pipeline drives (real or fake).
- `animator.py`: retarget + render for one frame (shared with the offline demo and benchmarks).

The newest-wins hand-over between threads (`LatestSlot`) and the performance levels sit below
the stages (`worker.slot`, `worker.performance`): the outputs and the config use them too.
"""
