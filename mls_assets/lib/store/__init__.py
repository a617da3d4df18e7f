"""MongoDB access: the embedded server, clients, collection naming, indexes and merge writes."""
