"""Matching sequences of frames against a database of places (batch and streaming)."""
