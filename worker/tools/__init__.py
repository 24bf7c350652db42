"""Measuring instruments and developer tools that are not part of the live pipeline."""
