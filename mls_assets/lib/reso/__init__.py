"""The RESO Web API (OData) in its replication dialect (MLS Grid v2): filters, the client,
and the mapping of its records onto the pipeline's raw shape."""
