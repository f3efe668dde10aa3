// Removed once ctl has real sources.
