"""The expired-leads HTTP API that the CRM calls (`mls-assets api`)."""
