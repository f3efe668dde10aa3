// Removed once worker has real sources.
