"""Readers for real collections and the synthetic route generator."""
