"""Development tools: measurements, benchmarks and the generators of stored data and README
pictures; nothing here runs in the live worker, and no stage package imports from here.

- `offline`: the one offline frame loop (driver -> track -> retarget -> render) with stage
  timers, shared by `demo`, `bench` and the fidelity table.
- `bench`: the benchmarks behind `stream-animator bench` (tracking, render, stages, character
  cache, the live worker).
- `fidelity`: expression-transfer fidelity on real footage, by re-tracking the output
  (`python -m worker.tools.fidelity`, `bench --fidelity`).
- `sweep`: synthetic driver faces and pose sweeps of a character (no camera, no tracker).
- `contact_sheet`: driver | output pairs at the frames that show the most (`demo --sheet`), and
  driver | before | after sheets over a green screen or a dark scene (`python -m worker.tools.contact_sheet`).
- `vowel_shapes`: each vowel's mouth width and height, re-tracked from the rendered voice mouth.
- `texture_jitter`: texture jitter as a viewer sees it (optical-flow corners in the face, output
  against driver), a column of the fidelity table.
- `studio_bench`, `studio_shots`: what the studio's caches save per clip, and the README's
  pictures of the studio (headless chromium).
- `audio_bench`: the voice (analysis cost, sound -> frame latency, talking renders; `bench --audio`).
- `output_bench`: the live outputs on loopback (`python -m worker.tools.output_bench`).
- `obs_run`, `obs_bench`: a headless OBS Studio with our script, and the recovery and start
  times measured in it (`bench --obs`); the OBS tests use the same runner.
- `liveportrait_overhead`: our own per-frame cost around LivePortrait's networks.
- `vowel_sheet`, `matte_sheet`: the README's vowel and cut-out pictures.
- `make_default_profile`: the built-in voice profile; `canonical_face`: the stored 3-D face;
  `make_driver`, `make_mascot`: the bundled demo clip's toon character and the mascots.
"""
