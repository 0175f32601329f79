"""The kernel every stage shares: errors, settings, configuration files, database engines,
atomic writes, names, and the hash chains. It imports no stage (`features`, `training`,
`fairness`, `serving`); every stage may import it. See docs/ARCHITECTURE.md."""
