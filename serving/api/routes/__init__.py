"""The API's routers, one module per tag: scores, oversight, audit, admin."""
