"""Generated ``sdv.databroker.v1`` stubs (``scripts/generate_sdv_v1_stubs.py``); do not edit."""
