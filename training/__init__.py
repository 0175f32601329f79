"""riskcast stage: training."""
