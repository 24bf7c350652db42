"""Tools that measure the engine offline; nothing here runs in the live worker.

- `offline`: the one offline frame loop (driver -> track -> retarget -> render) with stage
  timers, shared by `demo`, `bench` and the fidelity table.
- `bench`: the benchmarks behind `stream-animator bench` (tracking, render, stages, character
  cache, the live worker).
- `fidelity`: expression-transfer fidelity on real footage, by re-tracking the output
  (`python -m worker.tools.fidelity`, `bench --fidelity`).
- `sweep`: synthetic driver faces and pose sweeps of a character (no camera, no tracker).
- `contact_sheet`: driver | output pairs at the frames that show the most (`demo --sheet`).
- `mark_page`: the local page where a character's face is marked by hand, with a preview
  rendered offline from the bundled clip (`stream-animator mark`).
"""
