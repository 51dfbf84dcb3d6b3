"""Placeholder: filled in by the convolutional-family work (issue 6)."""
