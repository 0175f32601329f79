"""riskcast features: frames."""
