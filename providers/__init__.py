"""Provider contracts, implementations, storage and the provider registry; no Ray Serve inside."""
