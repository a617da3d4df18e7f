"""Expired and cancelled listings as the CRM's leads: reading them across a tenant's MLSs,
updating their lead fields, and the API keys that scope every read and write to a tenant."""
