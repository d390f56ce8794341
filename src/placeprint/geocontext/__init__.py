"""Geometric context (Hoiem, Efros & Hebert 2005/2007): per-pixel probabilities of ground,
vertical surfaces and sky, from superpixels, trained on the synthetic city's exactly
labelled renders."""
