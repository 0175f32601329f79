"""Offline store: bitemporal Parquet under RISKCAST_HOME."""
