"""The wire: ``kuksa.val.v2`` and ``kuksa.val.v1`` gRPC adapters over the broker core.

They only translate messages and map ``BrokerError`` subclasses to status codes; every rule lives
in the core. The generated stubs are the ones the ``kuksa-client`` package ships.
"""
