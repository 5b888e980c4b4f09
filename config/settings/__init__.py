"""Settings modules: `local` (the default) and `production`; both build on `base`."""
