"""riskcast features: ingest."""
