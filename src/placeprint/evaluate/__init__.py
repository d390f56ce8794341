"""Metrics and baselines: recall of sequence matches and the methods placeprint is compared to."""
