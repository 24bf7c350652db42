"""The skin under the lower lip gives way to it instead of folding.

A driver's tracked chin follows a wide-open mouth by well under the lower lip's drop (d12 at
0.49 eye distances open: lower lip 0.52, chin 0.21; MediaPipe's mesh is stiff there), so the
skin between them is squeezed. On a face drawn with a long chin that is barely seen; on a face
drawn turned the far side's jaw line runs a few pixels under the lower lip (s10, 33 degrees: the
outline points a lip's width below its far corner), the warp would fold there, and the fold
limit (`renderer._unfold`) scaled the whole expression back: in 19 frames of d12 the widest
openings were drawn at down to three quarters of the pose's, and re-tracked so. Here each warp
control point under the lower lip is pushed down along with it, so that the drawn skin between
them keeps at least 1 - MAX_SQUEEZE of its height: the jaw drops as a piece where there is no
room, and nothing moves where there is.
"""

from __future__ import annotations

import numpy as np

from worker.track import landmark_ids as L

# share of the drawn distance below a lower-lip point that the skin there may lose before the
# point under it is pushed along (the fold limit squeezes a grid cell to at most 0.94 of it)
MAX_SQUEEZE = 0.6
CONE = 1.0  # points within this slope (across / down) below a lip point are "under" it
_LOWER = sorted(set(L.LIPS_OUTER_LOWER[1:-1] + L.INNER_LOWER))
_LIPS = set(L.LIPS_OUTER + L.INNER_UPPER + L.INNER_LOWER + L.MOUTH_CORNERS)


class JawRelief:
    """Pushes the warp's control points under a character's lower lip along with it."""

    def __init__(self, ctrl_idx: np.ndarray, rest3: np.ndarray) -> None:
        """`ctrl_idx`: the landmark of each control point; `rest3`: (n, 3) their drawn positions
        (the face outline's depth flattened as the pose has it)."""
        pos = {int(j): k for k, j in enumerate(ctrl_idx)}
        lips = np.array([pos[j] for j in _LOWER if j in pos], np.intp)
        others = np.array([k for k, j in enumerate(ctrl_idx) if int(j) not in _LIPS], np.intp)
        c0, c1 = rest3[pos[L.MOUTH_CORNERS[0]], :2], rest3[pos[L.MOUTH_CORNERS[1]], :2]
        across = (c1 - c0) / max(float(np.linalg.norm(c1 - c0)), 1e-6)
        self.down = np.array([-across[1], across[0]]) * np.sign(across[0] or 1.0)  # image y grows down
        rel = rest3[None, others, :2] - rest3[lips, None, :2]  # (lips, others, 2)
        dv, du = rel @ self.down, rel @ across
        under = (dv > 0) & (np.abs(du) <= CONE * dv)
        cols = under.any(0)
        self.lips, self.points = lips, others[cols]  # the lower-lip points, the points under any
        # (points, lips): the drop each point may lag its lip by (inf: not under that lip point)
        room = MAX_SQUEEZE * np.linalg.norm(rel, axis=-1)
        self.room = np.where(under, room, np.inf)[:, cols].T.astype(np.float64)
        self.rows = np.concatenate([self.lips, self.points])  # the control points `apply` reads
        self.rest3 = np.asarray(rest3, np.float64)[self.rows]

    def apply(self, targets: np.ndarray, head_matrix: np.ndarray) -> None:
        """Move `targets` ((n, 2) float32 control targets, in place) for a pose whose head motion
        is `head_matrix` (3 x 4): what each point moves beyond that motion is measured along the
        face's down direction, and a point under a lip point gets at least the lip's drop less
        its room."""
        if not len(self.points):
            return
        h = np.asarray(head_matrix, np.float64)
        down = h[:2, :2] @ self.down
        down /= max(float(np.linalg.norm(down)), 1e-6)
        rigid = self.rest3 @ h[:2, :3].T + h[:2, 3]
        drop = (targets[self.rows] - rigid) @ down
        n = len(self.lips)
        push = (drop[None, :n] - self.room).max(1) - drop[n:]
        moved = push > 0
        if moved.any():
            targets[self.points[moved]] += (push[moved, None] * down).astype(np.float32)
