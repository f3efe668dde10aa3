// Removed once coordinator has real sources.
