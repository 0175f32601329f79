"""Append-only, keyed hash chains (the access log and the promotion ledger stand on them).

`core` holds the chain, `db` its SQL side, `anchors` the heads kept outside the database,
`verify` the checks, `settings` the key and the anchor directory, `cli` the commands' factory.
"""

from riskcast.chain.core import (
    CHAIN_COLUMNS,
    GENESIS,
    Along,
    ChainBacked,
    ChainSpec,
    ChainVerification,
    HashChain,
    JsonText,
    canonical_json,
    entry_hash,
    masked,
    plain_hash,
)
from riskcast.clock import as_utc as utc

__all__ = [
    "CHAIN_COLUMNS",
    "GENESIS",
    "Along",
    "ChainBacked",
    "ChainSpec",
    "ChainVerification",
    "HashChain",
    "JsonText",
    "canonical_json",
    "entry_hash",
    "masked",
    "plain_hash",
    "utc",
]
