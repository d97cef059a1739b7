"""OpenSDV benchmarks: one module per part; ``python -m bench`` runs them all and prints tables."""
