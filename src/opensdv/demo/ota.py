"""The demo's OTA story, as an operator tells it to the OTA back end (``opensdv ota add-image`` and
``opensdv ota campaign create`` do the same): an app set with the departure-charge example app for
every car's app runtime (the ``APPS`` ECU), and a new firmware for the standard e-axle inverters in
a campaign targeted by their hardware ids — so it reaches every brand at once — in two stages.

The Mitsubishi's inverters are configured to fail their health check (``simulated_faults``): they
roll back to their old slot, and the report makes the campaign pause itself before stage 2. Cars
install only while stopped (their own primary reads the speed from their broker).
"""

from __future__ import annotations

import random

from opensdv.cloud.ota.backend import OtaBackend
from opensdv.cloud.ota.campaigns import CampaignSpec
from opensdv.model.vehicles import APP_RUNTIME_HARDWARE_ID, Vehicle
from opensdv.vehicle.apps.examples import EXAMPLES
from opensdv.vehicle.apps.package import app_set

__all__ = ["APP_CAMPAIGN", "DEMO_CAMPAIGN", "publish_demo_updates"]

DEMO_IMAGE = "eaxle/inverter-2.4.0.bin"
DEMO_CAMPAIGN = "eaxle-inverter-2-4"
DEMO_APP = "departure-charge"
VELOCITAS_APP = "seat-adjuster"
DEMO_APP_SET = "apps/app-set-1.0.0.tar.gz"
APP_CAMPAIGN = "apps-departure-charge"


def _firmware(size: int = 256 * 1024) -> bytes:
    return random.Random("standard e-axle inverter firmware").randbytes(size)


def publish_demo_updates(backend: OtaBackend, vehicles: list[Vehicle], *, velocitas: bool = False) -> None:
    """Sign the two images and open their campaigns (the cars are enrolled already); with
    ``velocitas`` the app set also holds Velocitas's seat-adjuster, run unchanged."""
    inverters = sorted({ecu.hardware_id for v in vehicles for name, ecu in v.ecus.items() if name.startswith("EAXLE_")})
    backend.images.add_image(DEMO_IMAGE, _firmware(), inverters, "2.4.0", 24)
    apps = [EXAMPLES / DEMO_APP, *([EXAMPLES / VELOCITAS_APP] if velocitas else [])]
    backend.images.add_image(DEMO_APP_SET, app_set(apps), [APP_RUNTIME_HARDWARE_ID], "1.0.0", 1)
    backend.campaigns.create(CampaignSpec(id=APP_CAMPAIGN, image=DEMO_APP_SET, stages=[100], mode="forced"))
    backend.campaigns.create(
        CampaignSpec(
            id=DEMO_CAMPAIGN,
            image=DEMO_IMAGE,
            stages=[50, 100],
            error_threshold=0.2,
            mode="forced",
            energy_kwh=1.0,
            rxswin_after="R156-EAXLE-INV-24",
        )
    )
