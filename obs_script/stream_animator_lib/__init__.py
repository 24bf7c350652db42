"""Pure-Python parts of the Stream Motion Animator OBS script (standard library only).

They live in a package with a distinctive name because every OBS script shares one embedded
interpreter: a top-level module called `logic` or `protocol` could collide with another
script's. Nothing here imports `obspython`; the OBS calls are passed in, so tests run without OBS.
"""
