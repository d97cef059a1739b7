"""The demo: cars, cloud, OTA and a charging depot composed on embedded defaults with twins,
simulated buses and simulated stations (``opensdv demo``)."""
