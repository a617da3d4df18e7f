"""Data quality: what the asset checks measure, and the alerts they raise."""
