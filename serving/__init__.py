"""riskcast stage: serving."""
