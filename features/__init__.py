"""riskcast stage: features."""
