"""Decode a character image into straight RGBA uint8, whatever its mode, depth or orientation."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from worker.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
# A 12000 x 12000 picture is 144 MP: decoding it would take ~0.6 GB and seconds for nothing.
MAX_PIXELS = 64_000_000


@dataclass
class LoadedImage:
    rgba: np.ndarray  # (h, w, 4) uint8, straight alpha, EXIF orientation applied
    data: bytes  # the file's bytes (hashed for the cache key)
    has_alpha: bool  # the file carries a real (not all-opaque) alpha channel
    mode: str  # the file's own PIL mode, for reports
    frames: int = 1  # more than one: an animation (GIF, APNG, animated WebP)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def load_image(path: str | Path) -> LoadedImage:
    """Read `path` into RGBA. Raises `UserError` naming the file for anything unusable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not an image") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    if not data:
        raise UserError(f"{path}: empty file (0 bytes)")
    return decode_image(data, str(path))


def decode_image(data: bytes, name: str) -> LoadedImage:
    import io

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img: Image.Image = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise UserError(
                    f"{name}: image too large ({w}x{h}, {w * h / 1e6:.0f} MP; the limit is "
                    f"{MAX_PIXELS / 1e6:.0f} MP): scale it down first"
                )
            img.load()
        except UserError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UserError(f"{name}: image too large (over {MAX_PIXELS / 1e6:.0f} MP): scale it down first") from None
        except UnidentifiedImageError:
            raise UserError(f"{name}: not a readable image (PNG, JPEG or WebP expected)") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise UserError(f"{name}: corrupt or truncated image ({e})") from None
    mode = img.mode
    frames = int(getattr(img, "n_frames", 1) or 1)
    img = ImageOps.exif_transpose(img)
    rgba = _to_rgba(img)
    has_alpha = _mode_has_alpha(img) and bool((rgba[..., 3] < 255).any())
    return LoadedImage(rgba=rgba, data=data, has_alpha=has_alpha, mode=mode, frames=frames)


def _mode_has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _to_rgba(img: Image.Image) -> np.ndarray:
    """Any PIL mode (1, L, P, I;16, I, F, RGB, RGBA, LA, CMYK...) to RGBA uint8."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: scale by the actual range rather than clipping at 255.
        a = np.asarray(img, dtype=np.float32)
        top = 65535.0 if a.max() > 255 else 255.0
        g = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.dstack([g, g, g, np.full_like(g, 255)])
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float32)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        g = np.clip((a - lo) / max(hi - lo, 1e-6) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.dstack([g, g, g, np.full_like(g, 255)])
    if img.mode != "RGBA":
        img = img.convert("RGBA")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
