"""MediaPipe face-mesh index groups the retarget and render stages work with.

Lists run outer corner -> inner corner for eyes and left -> right in the image for lips, so
upper/lower lists pair up point by point.
"""

from __future__ import annotations

FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]

# subject's right eye (image left); corners (outer, inner)
R_EYE_CORNERS = (33, 133)
R_EYE_UPPER = [246, 161, 160, 159, 158, 157, 173]
R_EYE_LOWER = [7, 163, 144, 145, 153, 154, 155]
R_IRIS = 468
R_EYE_RING = [130, 25, 110, 24, 23, 22, 26, 112, 243, 190, 56, 28, 27, 29, 30, 247]
# subject's left eye (image right)
L_EYE_CORNERS = (263, 362)
L_EYE_UPPER = [466, 388, 387, 386, 385, 384, 398]
L_EYE_LOWER = [249, 390, 373, 374, 380, 381, 382]
L_IRIS = 473
L_EYE_RING = [359, 255, 339, 254, 253, 252, 256, 341, 463, 414, 286, 258, 257, 259, 260, 467]

R_BROW = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
L_BROW = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]

LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
MOUTH_CORNERS = (78, 308)  # inner corners, image left -> right
INNER_UPPER = [191, 80, 81, 82, 13, 312, 311, 310, 415]
INNER_LOWER = [95, 88, 178, 87, 14, 317, 402, 318, 324]
MOUTH_GAP_PAIRS = [(82, 87), (13, 14), (312, 317)]  # central inner-lip pairs for the opening

NOSE = [1, 2, 4, 5, 6, 168, 197, 195, 19, 94, 98, 327, 129, 358, 48, 278, 64, 294, 45, 275]
CHEEKS = [50, 280, 205, 425, 187, 411, 117, 346, 123, 352, 207, 427, 36, 266, 101, 330]

# points that move with the skull, not with expressions (forehead, nose bridge, eye corners, temples)
RIGID = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 33, 133, 362, 263, 234, 454, 127, 356, 93, 323,
         116, 345, 109, 338, 67, 297]
STABLE = [1, 33, 133, 362, 263]  # nose tip and eye corners: what jitter is measured on


def inner_lip_contour() -> list[int]:
    """Closed inner-lip polygon: left corner, upper lip, right corner, lower lip back."""
    return [MOUTH_CORNERS[0], *INNER_UPPER, MOUTH_CORNERS[1], *INNER_LOWER[::-1]]


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
