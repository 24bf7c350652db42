"""Index groups of MediaPipe's 478-point face mesh (refine_landmarks=True).

"Left"/"right" are the subject's: the subject's right eye appears on the image's left.
Contours run from one corner to the other so that they can be drawn or interpolated as polylines.
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

# --- irises (only with refine_landmarks=True) ---------------------------------------------------
RIGHT_IRIS_CENTER = 468
RIGHT_IRIS = (469, 470, 471, 472)  # ring around the centre
LEFT_IRIS_CENTER = 473
LEFT_IRIS = (474, 475, 476, 477)

# --- brows (upper edge, lower edge; from the nose side outwards) --------------------------------
RIGHT_BROW_UPPER = (107, 66, 105, 63, 70)
RIGHT_BROW_LOWER = (55, 65, 52, 53, 46)
LEFT_BROW_UPPER = (336, 296, 334, 293, 300)
LEFT_BROW_LOWER = (285, 295, 282, 283, 276)
RIGHT_BROW = RIGHT_BROW_UPPER + RIGHT_BROW_LOWER
LEFT_BROW = LEFT_BROW_UPPER + LEFT_BROW_LOWER

# --- lips (corner to corner, subject's right corner first) -------------------------------------
MOUTH_RIGHT_CORNER, MOUTH_LEFT_CORNER = 61, 291
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# inner-lip points facing each other across the mouth opening (middle three pairs)
INNER_LIP_PAIRS = ((82, 87), (13, 14), (312, 317))
LIPS_OUTER = tuple(dict.fromkeys(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER))
LIPS_INNER = tuple(dict.fromkeys(LIPS_INNER_UPPER + LIPS_INNER_LOWER))

# --- face oval (clockwise in the image from the top of the forehead) ---------------------------
FACE_OVAL = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)
FOREHEAD_TOP, CHIN = 10, 152

# --- nose ---------------------------------------------------------------------------------------
NOSE_BRIDGE = (168, 6, 197, 195, 5)
NOSE_TIP = 1
NOSE_LOWER = (4, 1, 19, 94, 2)
NOSE_ALAR = (98, 97, 326, 327, 64, 294, 48, 278, 240, 460)
NOSE = NOSE_BRIDGE + NOSE_LOWER[:1] + NOSE_LOWER[2:] + NOSE_ALAR + (NOSE_TIP,)

# --- points that barely move with expressions: the rigid set for head-pose fitting -------------
# forehead, nose bridge and tip, eye corners, temples and cheekbones; no lips, lids, brows or jaw.
RIGID = (
    10,
    151,
    9,
    108,
    337,
    67,
    297,
    109,
    338,  # forehead
    168,
    6,
    197,
    195,
    5,
    4,
    1,  # nose bridge and tip
    98,
    327,  # nostril wings
    33,
    133,
    362,
    263,  # eye corners
    127,
    356,
    234,
    454,
    93,
    323,  # temples / sides of the face at eye level
    116,
    345,
    123,
    352,
    50,
    280,  # cheekbones
)
