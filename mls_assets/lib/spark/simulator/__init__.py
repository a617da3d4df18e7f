"""A bundled Spark replication API: deterministic market data, a clock, faults on demand."""

from mls_assets.lib.spark.simulator.market import CRMLS_MLS_ID, GPS_MLS_ID, Market
from mls_assets.lib.spark.simulator.server import DEMO_TOKEN, SimulatorServer

__all__ = ["CRMLS_MLS_ID", "DEMO_TOKEN", "GPS_MLS_ID", "Market", "SimulatorServer"]
