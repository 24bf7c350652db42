"""How much voice each way in takes, stated once: longer is a mistake, and is refused in one line.

Every path that decodes a user's audio passes its limit here to `iter_audio` / `decode_audio` /
`check_length` (worker.audio.sources), which stop at it whatever a file's header claims.
"""

from __future__ import annotations

RENDER_VOICE_S = 4 * 3600.0  # `render --audio`, the studio's recording: longer is a job for an editor
RECORDING_S = 60.0  # one calibration recording (a vowel or the silence): a few seconds is right
SAY_S = 60.0  # one `say` line sent to the live worker
