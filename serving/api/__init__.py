"""The JSON API: its dependencies (`deps`), routes (`routes`), error mapping and OpenAPI."""
