"""Telemetry in the cloud: MQTT ingest into DuckDB, queries, Parquet export."""
