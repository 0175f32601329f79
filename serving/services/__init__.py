"""The service layer: what the service does, as functions over its state, without HTTP.

The API's routes and the pages both call these, so a rule (purpose, regions, population) and
its access-log entry are the same whichever door a request came through. Refusals are riskcast
errors (`riskcast.errors`), mapped to HTTP once (`serving.api.errors`).
"""
