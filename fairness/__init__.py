"""riskcast stage: fairness."""
