"""Places (issue 12): the map-cell peer of the person path in this stage."""
