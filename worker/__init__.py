"""Stream Motion Animator worker: capture -> track -> retarget -> render -> outputs."""

__version__ = "0.1.0"
