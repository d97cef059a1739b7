"""OCPP: the CSMS (1.6, 2.0.1, 2.1) with its durable state, and the station simulators."""
