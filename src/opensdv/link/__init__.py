"""The vehicle<->cloud contract: the only package both halves import besides ``model``."""
