"""Index groups of MediaPipe's 478-point face mesh (refine_landmarks=True): the one table.

Every stage indexes landmarks through this module: the tracker (features, smoothing, head
pose), retargeting, the renderers and character preprocessing. Groups are tuples (immutable);
index a numpy array with `lm[GROUP, :2]` or `lm[list(GROUP)]` (a bare tuple index means
"one index per axis" to numpy).

"Left"/"right" are the subject's: the subject's right eye appears on the image's left. The
`RIGHT_*`/`LEFT_*` contours run corner to corner (corners included) so that they can be drawn
or interpolated as polylines; the `R_*`/`L_*` lid rows leave the corners out and run from the
outer corner to the inner one, so upper and lower rows pair up point by point (the layout
retargeting and the mesh-warp eyes were built on).
"""

from __future__ import annotations

# --- eyes -------------------------------------------------------------------------------------
# corners: outer (temple side), inner (nose side)
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_INNER, LEFT_EYE_OUTER = 362, 263

RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)
LEFT_EYE_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
RIGHT_EYE = tuple(dict.fromkeys(RIGHT_EYE_UPPER + RIGHT_EYE_LOWER))
LEFT_EYE = tuple(dict.fromkeys(LEFT_EYE_UPPER + LEFT_EYE_LOWER))

# upper/lower lid points facing each other across the opening (middle three pairs)
RIGHT_LID_PAIRS = ((160, 144), (159, 145), (158, 153))
LEFT_LID_PAIRS = ((385, 380), (386, 374), (387, 373))

# the same eyes as retargeting and the mesh warp use them: corners (outer, inner) and the lid
# rows between the corners, both running from the outer corner
R_EYE_CORNERS = (RIGHT_EYE_OUTER, RIGHT_EYE_INNER)
R_EYE_UPPER = RIGHT_EYE_UPPER[1:-1]
R_EYE_LOWER = RIGHT_EYE_LOWER[1:-1]
L_EYE_CORNERS = (LEFT_EYE_OUTER, LEFT_EYE_INNER)
L_EYE_UPPER = LEFT_EYE_UPPER[-2:0:-1]
L_EYE_LOWER = LEFT_EYE_LOWER[-2:0:-1]
# a ring of skin around each eye (socket, lid crease, under-eye): moves with the eye as a whole
R_EYE_RING = (130, 25, 110, 24, 23, 22, 26, 112, 243, 190, 56, 28, 27, 29, 30, 247)
L_EYE_RING = (359, 255, 339, 254, 253, 252, 256, 341, 463, 414, 286, 258, 257, 259, 260, 467)

# --- irises (only with refine_landmarks=True) ---------------------------------------------------
RIGHT_IRIS_CENTER = 468
RIGHT_IRIS = (469, 470, 471, 472)  # ring around the centre
LEFT_IRIS_CENTER = 473
LEFT_IRIS = (474, 475, 476, 477)
R_IRIS, L_IRIS = RIGHT_IRIS_CENTER, LEFT_IRIS_CENTER

# --- brows (upper edge, lower edge; from the nose side outwards) --------------------------------
RIGHT_BROW_UPPER = (107, 66, 105, 63, 70)
RIGHT_BROW_LOWER = (55, 65, 52, 53, 46)
LEFT_BROW_UPPER = (336, 296, 334, 293, 300)
LEFT_BROW_LOWER = (285, 295, 282, 283, 276)
RIGHT_BROW = RIGHT_BROW_UPPER + RIGHT_BROW_LOWER
LEFT_BROW = LEFT_BROW_UPPER + LEFT_BROW_LOWER
# as one outline: the upper edge from the temple in, then the lower edge out
R_BROW = RIGHT_BROW_UPPER[::-1] + RIGHT_BROW_LOWER
L_BROW = LEFT_BROW_UPPER[::-1] + LEFT_BROW_LOWER

# --- lips (corner to corner, subject's right corner first) -------------------------------------
MOUTH_RIGHT_CORNER, MOUTH_LEFT_CORNER = 61, 291
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# inner-lip points facing each other across the mouth opening (middle three pairs)
INNER_LIP_PAIRS = ((82, 87), (13, 14), (312, 317))
# the outer lip line as one closed polygon: the lower lip, then the upper lip back
LIPS_OUTER = LIPS_OUTER_LOWER + LIPS_OUTER_UPPER[-2:0:-1]
LIPS_INNER = tuple(dict.fromkeys(LIPS_INNER_UPPER + LIPS_INNER_LOWER))
# inner corners (image left -> right) and the inner lip lines between them, paired point by point
MOUTH_CORNERS = (LIPS_INNER_UPPER[0], LIPS_INNER_UPPER[-1])
INNER_UPPER = LIPS_INNER_UPPER[1:-1]
INNER_LOWER = LIPS_INNER_LOWER[1:-1]

# --- face oval (clockwise in the image from the top of the forehead) ---------------------------
# fmt: off
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
# fmt: on
FOREHEAD_TOP, CHIN = 10, 152
RIGHT_FACE_EDGE, LEFT_FACE_EDGE = 234, 454  # the outline at eye level, each side
# the outline below the eyes, from the subject's right ear round the chin to the left one
LOWER_FACE = FACE_OVAL[28:7:-1]

# --- nose ---------------------------------------------------------------------------------------
NOSE_BRIDGE = (168, 6, 197, 195, 5)
NOSE_TIP = 1
NOSE_LOWER = (4, 1, 19, 94, 2)
NOSE_ALAR = (98, 97, 326, 327, 64, 294, 48, 278, 240, 460)
# the nose as the mesh warp pins it: bridge, tip, nostrils and the sides of the nose
NOSE = (1, 2, 4, 5, 6, 168, 197, 195, 19, 94, 98, 327, 129, 358, 48, 278, 64, 294, 45, 275)
CHEEKS = (50, 280, 205, 425, 187, 411, 117, 346, 123, 352, 207, 427, 36, 266, 101, 330)

# --- points that barely move with expressions ---------------------------------------------------
# Two sets, tuned apart; changing either one changes what the tracker or the renderer outputs.
# RIGID: the tracker's head-pose fit and jitter measures (forehead, nose bridge and tip, nostril
# wings, eye corners, temples, cheekbones; no lips, lids, brows or jaw).
# fmt: off
RIGID = (10, 151, 9, 108, 337, 67, 297, 109, 338,  # forehead
         168, 6, 197, 195, 5, 4, 1,  # nose bridge and tip
         98, 327,  # nostril wings
         33, 133, 362, 263,  # eye corners
         127, 356, 234, 454, 93, 323,  # temples / sides of the face at eye level
         116, 345, 123, 352, 50, 280)  # cheekbones
# SKULL: the head's pivot and rigid fit in retargeting and the mesh warp (forehead, nose bridge,
# eye corners, temples: what moves with the skull).
SKULL = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 33, 133, 362, 263, 234, 454, 127, 356, 93, 323,
         116, 345, 109, 338, 67, 297)
# fmt: on
STABLE = (1, 33, 133, 362, 263)  # nose tip and eye corners: what fidelity measures jitter on


def inner_lip_contour() -> tuple[int, ...]:
    """Closed inner-lip polygon: left corner, upper lip, right corner, lower lip back."""
    return (MOUTH_CORNERS[0], *INNER_UPPER, MOUTH_CORNERS[1], *INNER_LOWER[::-1])


def jaw_weights(n: int = 478) -> list[float]:
    """How much each point follows the lower jaw when the mouth opens (lower lip 1, chin less)."""
    w = [0.0] * n
    for i in INNER_LOWER:
        w[i] = 1.0
    for i in (84, 17, 314, 405, 321, 375, 181, 91, 146):
        w[i] = 0.95
    for i in (152, 148, 176, 377, 400, 149, 378, 200, 199, 175, 18, 83, 313, 201, 421):
        w[i] = 0.75
    for i in (136, 150, 365, 379, 172, 397, 32, 262, 208, 428):
        w[i] = 0.4
    for i in (58, 288, 169, 394):
        w[i] = 0.2
    return w
