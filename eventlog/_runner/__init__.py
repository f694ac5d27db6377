"""The store runners: they run the core's operations on a backend's transactions."""
