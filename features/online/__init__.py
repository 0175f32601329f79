"""riskcast features: online."""
