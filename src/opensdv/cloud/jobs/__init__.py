"""Fleet-scale batch jobs that run in this process or on a Ray cluster, with the same results:
the director's per-vehicle targets for a campaign, fleet state of health from stored telemetry."""
