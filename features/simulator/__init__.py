"""riskcast features: simulator."""
