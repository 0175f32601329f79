"""The evidence pack (issue 13, section 4): `riskcast evidence-pack VERSION --out DIR`.

What a public deployer of a high-risk system must keep, assembled from what riskcast already
holds, never recomputed: the registry's model card and metadata (`sources`), the kept fairness
audit and the promotion ledger, the monitoring configuration, the service's decisions table
and the explanation code. `documents` and `person` build the documents as typed values
(pure), `render` turns each into HTML in the fairness report's style, `pack` writes the HTML
and JSON of each with a manifest of sha256 digests and records the manifest's sha256 in the
ledger (kind ``evidence_pack``).
"""
