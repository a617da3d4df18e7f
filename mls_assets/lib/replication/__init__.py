"""The replication rules as plain Python over pymongo: windows, routing, photos, rejects."""
