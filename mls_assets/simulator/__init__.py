"""The bundled MLS simulator: one deterministic market with a clock (`market.py`), served in
each source's API dialect (`spark.py`, `reso.py`) by one HTTP server (`server.py`) with
faults on demand (`faults.py`). Tests and local mode use it; production code never imports
it (local mode reaches it through `mls_assets.lib.local_source`)."""

from mls_assets.simulator.market import CRMLS_MLS_ID, GPS_MLS_ID, Market
from mls_assets.simulator.server import DEMO_TOKEN, SimulatorServer

__all__ = ["CRMLS_MLS_ID", "DEMO_TOKEN", "GPS_MLS_ID", "Market", "SimulatorServer"]
