"""Outputs: where rendered RGBA frames go (OBS, NUT stream, Spout, virtual camera, window, file)."""
