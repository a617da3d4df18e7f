"""Resources shared by every asset: MongoDB access, configured from the environment."""


import os
from typing import Any

import dagster as dg
from pydantic import Field
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.database import Database

from mls_assets.lib.store import client as mongo_client


def env_or_default(name: str, default: Any) -> Any:
    """`EnvVar(name)` when the variable is set (shown as such in the UI), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


class MongoResource(dg.ConfigurableResource):
    """MongoDB: the server at `uri`, or the embedded server of this checkout when unset.

    Gives one pooled `MongoClient` per process, shared by every asset and IO manager.
    """

    uri: str | None = Field(
        default=None, description="MongoDB connection string; unset starts/uses the embedded one."
    )
    database: str = Field(default=mongo_client.DEFAULT_DATABASE, description="Database name.")

    def get_client(self) -> MongoClient:
        return mongo_client.get_client(self.uri)

    def get_database(self) -> Database:
        return self.get_client()[self.database]

    def collection(self, name: str) -> Collection:
        return self.get_database()[name]


def mongo_resource_from_env() -> MongoResource:
    return MongoResource(
        uri=env_or_default("MONGODB_URI", None),
        database=env_or_default("MONGODB_DATABASE", mongo_client.DEFAULT_DATABASE),
    )
