"""Bundled assets: sample characters and the demo's driving clip (both the project's own)."""
